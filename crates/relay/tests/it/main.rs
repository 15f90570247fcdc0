//! Integration tests of the relay: a real devnet `Chain` in a tempdir behind the devnet relay
//! on 127.0.0.1, driven by the real `RelayClient`.

mod events;
mod gate;
mod relays;
mod strict;
mod submit;

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use alloy_consensus::EMPTY_ROOT_HASH;
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use alloy_rpc_types_beacon::{
    relay::{BidTrace, SignedBidSubmissionV5, SubmitBlockRequest},
    requests::ExecutionRequestsV4,
};
use alloy_rpc_types_engine::{BlobsBundleV2, ExecutionPayloadV3};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{BlockAttributes, Chain, ExecutedBlock, Genesis, dev_signers};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_relay::{
    Clock, RelayClient, RelayServer,
    bid::{BidParams, BuilderKey, build_submission, sign_bid},
    client,
    server::{self, SlotContext},
};
use tokio::sync::oneshot;

/// The proposer's fee recipient: an address with no code and no balance.
const FEE_RECIPIENT: Address = address!("0x00000000000000000000000000000000000fee01");
/// Receives the filler transfer each test block carries before the payment.
const SINK: Address = address!("0x000000000000000000000000000000000000beef");
const GWEI: u128 = 1_000_000_000;
/// The `prev_randao` of every test slot.
const PREV_RANDAO: B256 = B256::repeat_byte(0x42);

/// A devnet chain, the relay serving it on loopback, and the slot open for bids.
struct Devnet {
    _dir: tempfile::TempDir,
    chain: Chain,
    relay: RelayServer<Chain>,
    url: String,
    builder: BuilderKey,
    signers: Vec<PrivateKeySigner>,
    ctx: SlotContext,
    _shutdown: oneshot::Sender<()>,
}

impl Devnet {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A devnet whose relay has the devnet settings changed by `tune`.
    async fn start_with(tune: impl FnOnce(&mut server::Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = Chain::open(
            &dir.path().join("chain.redb"),
            Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
            &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
        )
        .expect("chain opens");
        let builder = BuilderKey::from_seed(b"cobuild test builder");
        let mut config =
            server::Config::devnet(vec![builder.public_key()], FEE_RECIPIENT, DEFAULT_GAS_LIMIT);
        tune(&mut config);
        let relay = RelayServer::new(config, chain.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(relay.clone().serve(listener, async {
            let _ = stop.await;
        }));
        let mut devnet = Self {
            _dir: dir,
            chain,
            relay,
            url,
            builder,
            signers: dev_signers(),
            ctx: SlotContext {
                slot: 0,
                parent_hash: B256::ZERO,
                timestamp: 0,
                parent_beacon_block_root: B256::ZERO,
                prev_randao: PREV_RANDAO,
                withdrawals_root: EMPTY_ROOT_HASH,
            },
            _shutdown: shutdown,
        };
        devnet.open_next_slot();
        devnet
    }

    /// Opens the slot after the current one on the chain's head.
    fn open_next_slot(&mut self) {
        let head = self.chain.head();
        self.ctx = SlotContext {
            slot: self.ctx.slot + 1,
            parent_hash: head.hash(),
            timestamp: head.timestamp + 2,
            parent_beacon_block_root: B256::repeat_byte(0xbe),
            prev_randao: PREV_RANDAO,
            withdrawals_root: EMPTY_ROOT_HASH,
        };
        self.relay.open_slot(self.ctx);
    }

    /// The coinbase: the dev account that signs the proposer payment.
    fn coinbase(&self) -> &PrivateKeySigner {
        &self.signers[0]
    }

    fn attrs(&self) -> BlockAttributes {
        BlockAttributes {
            timestamp: self.ctx.timestamp,
            fee_recipient: self.coinbase().address(),
            prev_randao: PREV_RANDAO,
            gas_limit: self.chain.head().gas_limit,
            withdrawals: Vec::new(),
            parent_beacon_block_root: self.ctx.parent_beacon_block_root,
            extra_data: Bytes::from_static(b"cobuild"),
        }
    }

    /// A block on the head: a filler transfer, then `payment` wei from the coinbase to the
    /// proposer's fee recipient as the last transaction.
    fn paying_block(&self, payment: u128) -> ExecutedBlock {
        self.block_with_last(transfer(
            self.coinbase(),
            self.nonce(),
            FEE_RECIPIENT,
            payment,
        ))
    }

    /// A block on the head whose last transaction is `last`.
    fn block_with_last(&self, last: Recovered<TxEnvelope>) -> ExecutedBlock {
        let mut builder = self.chain.builder(self.attrs()).expect("builder");
        let filler = transfer(&self.signers[1], self.nonce(), SINK, GWEI);
        builder
            .execute(filler)
            .expect("no fatal")
            .expect("filler included");
        builder
            .execute(last)
            .expect("no fatal")
            .expect("last tx included");
        builder.finish().expect("sealed")
    }

    /// The next nonce of the coinbase and of the filler sender: every committed test block
    /// has one transaction from each.
    fn nonce(&self) -> u64 {
        self.chain.head().number
    }

    fn params(&self) -> BidParams {
        BidParams {
            slot: self.ctx.slot,
            proposer_pubkey: self.relay.proposer_pubkey(),
            proposer_fee_recipient: FEE_RECIPIENT,
            domain: self.relay.domain(),
        }
    }

    /// The honest, signed bid for `executed`.
    fn bid(&self, executed: &ExecutedBlock) -> SubmitBlockRequest {
        build_submission(executed, &self.params(), &self.builder).expect("block can be bid")
    }

    /// A bid for `executed` claiming `value`, signed by `key`, with no honesty check.
    fn raw_bid(
        &self,
        executed: &ExecutedBlock,
        value: U256,
        key: &BuilderKey,
    ) -> SignedBidSubmissionV5 {
        let header = executed.header();
        let message = BidTrace {
            slot: self.ctx.slot,
            parent_hash: header.parent_hash,
            block_hash: executed.block.hash,
            builder_pubkey: key.public_key(),
            proposer_pubkey: self.relay.proposer_pubkey(),
            proposer_fee_recipient: FEE_RECIPIENT,
            gas_limit: header.gas_limit,
            gas_used: header.gas_used,
            value,
        };
        let signature = sign_bid(key, &message, self.relay.domain());
        SignedBidSubmissionV5 {
            message,
            execution_payload: ExecutionPayloadV3::from_block_unchecked(
                executed.block.hash,
                &executed.block.block,
            ),
            blobs_bundle: BlobsBundleV2::empty(),
            execution_requests: ExecutionRequestsV4::default(),
            signature,
        }
    }

    /// A client whose cap never holds a bid back (the tests of the cap use
    /// [`Devnet::client_with`]), on the system clock.
    fn client(&self) -> RelayClient {
        let config = client::Config {
            max_submissions_per_second: NonZeroU32::MAX,
            ..client::Config::new(&self.url)
        };
        RelayClient::new(config).expect("client")
    }

    /// A client with `per_second` submissions a second, reading `clock`.
    fn client_with(&self, per_second: u32, clock: Arc<dyn Clock>) -> RelayClient {
        let config = client::Config {
            max_submissions_per_second: NonZeroU32::new(per_second).expect("non-zero cap"),
            timeout: Duration::from_secs(30),
            ..client::Config::new(&self.url)
        };
        RelayClient::with_clock(config, clock).expect("client")
    }
}

fn transfer(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: u128,
) -> Recovered<TxEnvelope> {
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let sig = signer
        .sign_hash_sync(&tx.signature_hash())
        .expect("signing works");
    Recovered::new_unchecked(tx.into_signed(sig).into(), signer.address())
}

/// The Fulu submission inside a request.
fn fulu(request: SubmitBlockRequest) -> SignedBidSubmissionV5 {
    match request {
        SubmitBlockRequest::Fulu(submission) => submission,
        other => panic!("expected a Fulu submission, got {other:?}"),
    }
}
