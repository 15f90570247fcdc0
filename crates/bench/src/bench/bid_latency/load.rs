//! The orders of the accepted → bid benchmark: raw transfers from the dev accounts (sequential
//! nonces, so every one is valid in turn) and one-transaction bundles from funded senders,
//! each sender used at most once a slot with its nonce read from the head state, so every
//! bundle is valid for the block it names.

use alloy_consensus::TxEnvelope;
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, U256, hex};
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{Chain, dev_signers};
use cobuild_relay::events::ReceivedSlot;
use hyper::body::Bytes as HttpBytes;
use revm::DatabaseRef;
use serde_json::json;
use tokio::sync::watch;

use super::{BidLatencyError, Node, next_slot};
use crate::{
    bench::{http::JsonRpc, intake::signed_bundle},
    workload::{account_key, sign},
};

/// What a funded sender gets: far more than its transfers can cost.
const FUNDING: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// Tip of the raw transfers; bundles tip twice as much.
const TIP: u128 = 1_000_000_000;
/// Most pending transactions the pool keeps per sender (the pool's default).
const MAX_PER_SENDER: usize = 256;
/// Slots the funding block may take to land.
const FUNDING_SLOTS: usize = 10;
/// Calls per funding batch (the server takes 1,000).
const BATCH: usize = 500;

/// How an order is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OrderKind {
    /// `eth_sendRawTransaction`, unsigned request.
    Raw,
    /// `eth_sendBundle` with `X-Flashbots-Signature`.
    Bundle,
}

/// One request, ready to send.
#[derive(Debug, Clone)]
pub(super) struct Order {
    /// Its transaction's hash, as a bid lists it.
    pub(super) hash: B256,
    pub(super) kind: OrderKind,
    pub(super) body: HttpBytes,
    /// The `X-Flashbots-Signature` header, for bundles.
    pub(super) header: Option<String>,
}

/// The accounts, their nonces and the block bundles are for.
pub(super) struct Load {
    dev: Vec<PrivateKeySigner>,
    dev_nonces: Vec<u64>,
    senders: Vec<PrivateKeySigner>,
    probes: Vec<PrivateKeySigner>,
    /// Head-state nonces of `senders`, read at each slot.
    nonces: Vec<u64>,
    /// The next sender not yet used this slot.
    cursor: usize,
    target: u64,
    sink: Address,
}

impl Load {
    /// `senders` bundle senders and `probes` one-shot probe senders; the dev accounts' nonces
    /// are read from `chain`'s head.
    pub(super) fn new(
        senders: usize,
        probes: usize,
        chain: &Chain,
    ) -> Result<Self, BidLatencyError> {
        let dev = dev_signers();
        let dev_nonces = nonces(chain, dev.iter().map(PrivateKeySigner::address))?;
        if (senders + probes).div_ceil(dev.len()) > MAX_PER_SENDER {
            return Err(BidLatencyError::Setup(format!(
                "{} senders to fund from {} dev accounts is over the pool's {MAX_PER_SENDER} \
                 pending per sender: lower the rate or the slot",
                senders + probes,
                dev.len()
            )));
        }
        Ok(Self {
            dev,
            dev_nonces,
            senders: (0..senders)
                .map(|i| account_key("bid-latency", i))
                .collect(),
            probes: (0..probes)
                .map(|i| account_key("bid-latency-probe", i))
                .collect(),
            nonces: vec![0; senders],
            cursor: 0,
            target: chain.head().number + 1,
            sink: Address::repeat_byte(0x5c),
        })
    }

    /// Funds every sender from the dev accounts and waits for the block that does it.
    pub(super) async fn fund(
        &mut self,
        node: &Node,
        slots: &mut watch::Receiver<Option<ReceivedSlot>>,
    ) -> Result<(), BidLatencyError> {
        let accounts: Vec<Address> = self
            .senders
            .iter()
            .chain(&self.probes)
            .map(PrivateKeySigner::address)
            .collect();
        let mut raws = Vec::with_capacity(accounts.len());
        for (i, account) in accounts.into_iter().enumerate() {
            let tx = self.dev_transfer(i, account, FUNDING)?;
            raws.push(json!([hex::encode_prefixed(tx.encoded_2718())]));
        }
        let mut rpc = JsonRpc::connect(node.rpc).await?;
        for chunk in raws.chunks(BATCH) {
            for reply in rpc
                .batch("eth_sendRawTransaction", chunk.iter().cloned())
                .await?
            {
                reply?;
            }
        }
        for _ in 0..FUNDING_SLOTS {
            next_slot(slots).await?;
            let landed = nonces(&node.chain, self.dev.iter().map(PrivateKeySigner::address))?;
            if landed == self.dev_nonces {
                return Ok(());
            }
        }
        Err(BidLatencyError::Setup(format!(
            "the funding transfers did not land in {FUNDING_SLOTS} slots"
        )))
    }

    /// A new slot opened for block `target`: every sender may send again, at its nonce in the
    /// head state.
    pub(super) fn new_slot(
        &mut self,
        chain: &Chain,
        target: Option<u64>,
    ) -> Result<(), BidLatencyError> {
        self.nonces = nonces(chain, self.senders.iter().map(PrivateKeySigner::address))?;
        self.cursor = 0;
        self.target = target.unwrap_or_else(|| chain.head().number + 1);
        Ok(())
    }

    /// The next order of `kind` (request id `id`); `None` for a bundle when every sender
    /// already sent one this slot.
    pub(super) fn next(
        &mut self,
        kind: OrderKind,
        id: u64,
    ) -> Result<Option<Order>, BidLatencyError> {
        match kind {
            OrderKind::Raw => {
                let tx = self.dev_transfer(id as usize / 2, self.sink, U256::from(1))?;
                let body = serde_json::to_vec(&json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "method": "eth_sendRawTransaction",
                    "params": [hex::encode_prefixed(tx.encoded_2718())],
                }))
                .map_err(|e| BidLatencyError::Setup(e.to_string()))?;
                Ok(Some(Order {
                    hash: *tx.tx_hash(),
                    kind,
                    body: HttpBytes::from(body),
                    header: None,
                }))
            }
            OrderKind::Bundle => {
                let Some(key) = self.senders.get(self.cursor) else {
                    return Ok(None);
                };
                let nonce = self.nonces[self.cursor];
                self.cursor += 1;
                bundle(key, nonce, self.sink, id, self.target).map(Some)
            }
        }
    }

    /// Probe `i` of the idle baseline: the one bundle of its own sender (nonce 0), for block
    /// `target`.
    pub(super) fn probe(&self, i: usize, target: Option<u64>) -> Result<Order, BidLatencyError> {
        bundle(
            &self.probes[i],
            0,
            self.sink,
            i as u64,
            target.unwrap_or(self.target),
        )
    }

    /// A transfer of `value` to `to` from dev account `i` (round robin), at its next nonce.
    fn dev_transfer(
        &mut self,
        i: usize,
        to: Address,
        value: U256,
    ) -> Result<TxEnvelope, BidLatencyError> {
        let account = i % self.dev.len();
        let nonce = self.dev_nonces[account];
        self.dev_nonces[account] += 1;
        let tx = sign(
            &self.dev[account],
            nonce,
            to,
            value,
            Bytes::new(),
            21_000,
            TIP,
        )?;
        Ok(tx.into_inner())
    }
}

/// A one-transfer bundle from `key` at `nonce` for block `target`, signed. The value is the
/// request id, so a sender that sends the same nonce again (its bundle missed its block) sends
/// another transaction, and each order's first bid is its own.
fn bundle(
    key: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    id: u64,
    target: u64,
) -> Result<Order, BidLatencyError> {
    let tx = sign(
        key,
        nonce,
        to,
        U256::from(id + 1),
        Bytes::new(),
        21_000,
        2 * TIP,
    )?;
    let signed = signed_bundle(key, id, tx.inner(), target)?;
    Ok(Order {
        hash: *tx.tx_hash(),
        kind: OrderKind::Bundle,
        body: signed.body,
        header: Some(signed.header),
    })
}

/// The head-state nonces of `accounts` (0 for an account the state does not hold).
fn nonces(
    chain: &Chain,
    accounts: impl Iterator<Item = Address>,
) -> Result<Vec<u64>, BidLatencyError> {
    let (_, state) = chain
        .head_state()
        .map_err(|e| BidLatencyError::State(e.to_string()))?;
    accounts
        .map(|account| {
            state
                .basic_ref(account)
                .map(|info| info.map_or(0, |info| info.nonce))
                .map_err(|e| BidLatencyError::State(e.to_string()))
        })
        .collect()
}
