//! A consensus client of the project's own, for tests and trials of real-chain mode: it drives
//! an execution client that mines on demand (anvil) one slot at a time, through a relay that
//! checks bids on that same execution client.
//!
//! ```text
//!  open_slot: anvil head ─▶ ElChain::follow ─▶ relay.open_slot + relay.announce ─▶ builders (SSE)
//!  close_slot: relay.close_and_take_best ─▶ the winner's transactions sent to anvil and mined
//!              with its coinbase, timestamp and base fee ─▶ the mined header, to compare roots
//!  reorg: anvil_reorg ─▶ the slot opened again on the new parent
//! ```
//! The relay's `/eth/v1/events` stream is the Beacon API event stream the builders follow, and
//! the relay's server also answers the genesis and spec reads, so one URL is both the beacon
//! and the relay. Slot `n`'s block carries the clock's start of `n` as its timestamp; the
//! clock starts so that the first slot is one slot after anvil's head. Randomness and beacon root are zero: anvil puts zero in
//! its headers and keeps no EIP-4788 contract.

use std::time::{Duration, Instant};

use alloy_eips::Encodable2718;
use alloy_primitives::{Address, B256, Bytes};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::Header as RpcHeader;
use cobuild_chain::BlockAttributes;
use cobuild_el::{ElChain, ElClient, ElError};
use cobuild_relay::{
    BlsPublicKey, RelayServer,
    bid::DEVNET_GENESIS_FORK_VERSION,
    events::{GENESIS_PATH, SPEC_PATH, SlotClock, payload_event},
    server::{Config as ServerConfig, SlotContext, WinningBid},
};

use super::ElVerifier;

/// Seconds between two slots' timestamps, as on mainnet.
pub const SECONDS_PER_SLOT: u64 = 12;

/// The mock could not drive its execution client.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// A JSON-RPC call to the execution client failed.
    #[error("execution client {method}: {source}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// Why.
        source: alloy_transport::TransportError,
    },
    /// The execution client's chain could not be followed.
    #[error(transparent)]
    El(#[from] ElError),
    /// The URL is not one a client can connect to.
    #[error("execution client url {0}")]
    Url(String),
    /// The execution client has no head block.
    #[error("execution client has no latest block")]
    NoHead,
    /// A blocking task died.
    #[error("task: {0}")]
    Join(String),
    /// The relay could not listen.
    #[error("relay: {0}")]
    Relay(std::io::Error),
}

/// A slot opened on the relay and announced.
#[derive(Debug, Clone)]
pub struct OpenSlot {
    /// The slot number.
    pub slot: u64,
    /// The parent the block must build on.
    pub parent: RpcHeader,
    /// The block's timestamp.
    pub timestamp: u64,
    /// When bids stop being taken.
    pub deadline: Instant,
}

/// What came of a slot.
#[derive(Debug)]
pub struct SlotOutcome {
    /// The slot.
    pub slot: u64,
    /// The relay's best valid bid, if any came.
    pub winner: Option<WinningBid>,
    /// The block the execution client mined for the slot: the winner's transactions in the
    /// winner's environment, or an empty block.
    pub mined: RpcHeader,
}

impl SlotOutcome {
    /// The header fields in which the block the execution client mined differs from the
    /// winning bid's (empty when they agree, as they must): number, parent, gas used, and every
    /// root and the bloom. Also names a missing winner.
    pub fn replay_differences(&self) -> Vec<String> {
        let Some(winner) = &self.winner else {
            return vec!["no winning bid".to_owned()];
        };
        let (ours, theirs) = (winner.executed.header(), &self.mined.inner);
        let fields: [(&str, String, String); 9] = [
            ("number", ours.number.to_string(), theirs.number.to_string()),
            (
                "parent hash",
                ours.parent_hash.to_string(),
                theirs.parent_hash.to_string(),
            ),
            (
                "gas used",
                ours.gas_used.to_string(),
                theirs.gas_used.to_string(),
            ),
            (
                "state root",
                ours.state_root.to_string(),
                theirs.state_root.to_string(),
            ),
            (
                "transactions root",
                ours.transactions_root.to_string(),
                theirs.transactions_root.to_string(),
            ),
            (
                "receipts root",
                ours.receipts_root.to_string(),
                theirs.receipts_root.to_string(),
            ),
            (
                "logs bloom",
                ours.logs_bloom.to_string(),
                theirs.logs_bloom.to_string(),
            ),
            (
                "withdrawals root",
                format!("{:?}", ours.withdrawals_root),
                format!("{:?}", theirs.withdrawals_root),
            ),
            (
                "requests hash",
                format!("{:?}", ours.requests_hash),
                format!("{:?}", theirs.requests_hash),
            ),
        ];
        fields
            .into_iter()
            .filter(|(_, ours, theirs)| ours != theirs)
            .map(|(name, ours, theirs)| format!("{name}: bid {ours}, mined {theirs}"))
            .collect()
    }

    /// Whether the winning block holds the transaction `hash`.
    pub fn winner_holds(&self, hash: B256) -> bool {
        self.winner.as_ref().is_some_and(|winner| {
            winner
                .executed
                .block
                .block
                .body
                .transactions
                .iter()
                .any(|tx| *tx.tx_hash() == hash)
        })
    }
}

/// Drives an anvil slot by slot through `relay`.
#[derive(Debug)]
pub struct MockConsensus {
    anvil: DynProvider,
    chain: ElChain,
    relay: RelayServer<ElVerifier>,
    relay_url: String,
    proposer_fee_recipient: Address,
    gas_limit: u64,
    clock: SlotClock,
    next_slot: u64,
}

impl MockConsensus {
    /// A mock over the anvil at `url`, with a relay on loopback (any free port) that takes bids
    /// from `builders`, pays `proposer_fee_recipient`, registers `gas_limit` and, `strict`,
    /// checks submissions as mev-boost-relay does. The first slot is the head's number plus one.
    pub async fn start(
        url: &str,
        builders: Vec<BlsPublicKey>,
        proposer_fee_recipient: Address,
        gas_limit: u64,
        strict: bool,
    ) -> Result<Self, MockError> {
        let connect = url.to_owned();
        let chain =
            tokio::task::spawn_blocking(move || ElChain::connect(ElClient::connect(&connect)?))
                .await
                .map_err(|e| MockError::Join(e.to_string()))??;
        let relay = RelayServer::new(
            ServerConfig {
                strict,
                ..ServerConfig::devnet(builders, proposer_fee_recipient, gas_limit)
            },
            ElVerifier(chain.clone()),
        );
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(MockError::Relay)?;
        let relay_url = format!(
            "http://{}",
            listener.local_addr().map_err(MockError::Relay)?
        );
        let anvil = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect(url)
            .await
            .map_err(|_| MockError::Url(url.to_owned()))?
            .erased();
        let head = head_of(&anvil).await?;
        // The clock puts the first slot one slot after the head, whenever anvil mined it.
        let next_slot = head.number + 1;
        let genesis_time = (head.timestamp + SECONDS_PER_SLOT)
            .saturating_sub(next_slot.saturating_mul(SECONDS_PER_SLOT));
        let clock = SlotClock::new(genesis_time, SECONDS_PER_SLOT).ok_or(MockError::NoHead)?;
        tokio::spawn(relay.clone().serve_with(
            listener,
            beacon_routes(genesis_time),
            std::future::pending(),
        ));
        Ok(Self {
            anvil,
            chain,
            relay,
            relay_url,
            proposer_fee_recipient,
            gas_limit,
            clock,
            next_slot,
        })
    }

    /// Base URL of the relay: its builder API, and the `payload_attributes` stream builders
    /// take as their Beacon API.
    pub fn relay_url(&self) -> &str {
        &self.relay_url
    }

    /// The relay bids go to.
    pub const fn relay(&self) -> &RelayServer<ElVerifier> {
        &self.relay
    }

    /// The execution client's head.
    pub async fn head(&self) -> Result<RpcHeader, MockError> {
        head_of(&self.anvil).await
    }

    /// Lets the next slot pass without a block, as when its proposer is offline: the slot
    /// after it builds on the same parent, two slots later.
    pub fn miss_slot(&mut self) {
        tracing::info!(slot = self.next_slot, "mock_cl.slot.missed");
        self.next_slot += 1;
    }

    /// Opens the next slot on the execution client's head and announces it, bids taken for
    /// `window`.
    pub async fn open_slot(&mut self, window: Duration) -> Result<OpenSlot, MockError> {
        let slot = self.next_slot;
        self.next_slot += 1;
        let parent = self.head().await?;
        self.announce(slot, parent, window).await
    }

    /// Reorgs the execution client `depth` blocks deep (the blocks mined again, the first of
    /// them with `txs`, signed transactions) and opens `open`'s slot again on the new head,
    /// bids taken for `window`: what a consensus client does when the head it announced a slot
    /// on is replaced.
    pub async fn reorg(
        &mut self,
        open: &OpenSlot,
        depth: u64,
        txs: &[Bytes],
        window: Duration,
    ) -> Result<OpenSlot, MockError> {
        let pairs: Vec<(&Bytes, u64)> = txs.iter().map(|tx| (tx, 0)).collect();
        self.rpc::<serde_json::Value>(
            "anvil_reorg",
            serde_json::json!({ "depth": depth, "tx_block_pairs": pairs }),
        )
        .await?;
        let parent = self.head().await?;
        self.announce(open.slot, parent, window).await
    }

    async fn announce(
        &self,
        slot: u64,
        parent: RpcHeader,
        window: Duration,
    ) -> Result<OpenSlot, MockError> {
        let chain = self.chain.clone();
        let hash = parent.hash;
        tokio::task::spawn_blocking(move || chain.follow(hash))
            .await
            .map_err(|e| MockError::Join(e.to_string()))??;
        let attrs = BlockAttributes {
            timestamp: self.clock.start(slot),
            fee_recipient: self.proposer_fee_recipient,
            prev_randao: B256::ZERO,
            gas_limit: self.gas_limit,
            withdrawals: Vec::new(),
            parent_beacon_block_root: B256::ZERO,
            extra_data: Bytes::new(),
        };
        self.relay.open_slot(SlotContext {
            slot,
            parent_hash: parent.hash,
            timestamp: attrs.timestamp,
            parent_beacon_block_root: attrs.parent_beacon_block_root,
            prev_randao: attrs.prev_randao,
            withdrawals_root: alloy_consensus::proofs::calculate_withdrawals_root(&[]),
        });
        let deadline = Instant::now() + window;
        self.relay.announce(
            payload_event(slot, parent.number, parent.hash, &attrs, self.gas_limit),
            deadline,
        );
        tracing::info!(slot, parent = %parent.hash, number = parent.number, "mock_cl.slot.open");
        Ok(OpenSlot {
            slot,
            timestamp: attrs.timestamp,
            parent,
            deadline,
        })
    }

    /// Waits for `open`'s deadline, takes the relay's best bid and has the execution client
    /// mine the winner's transactions in the winner's environment (an empty block when no bid
    /// came).
    pub async fn close_slot(&self, open: &OpenSlot) -> Result<SlotOutcome, MockError> {
        tokio::time::sleep_until(open.deadline.into()).await;
        let winner = self
            .relay
            .close_and_take_best(open.slot, Duration::from_secs(2))
            .await;
        let (coinbase, timestamp, base_fee) = match &winner {
            Some(winner) => {
                let header = winner.executed.header();
                (
                    header.beneficiary,
                    header.timestamp,
                    header.base_fee_per_gas.unwrap_or_default(),
                )
            }
            None => (
                self.proposer_fee_recipient,
                open.timestamp,
                open.parent
                    .next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum())
                    .unwrap_or_default(),
            ),
        };
        self.rpc::<()>("anvil_setCoinbase", (coinbase,)).await?;
        self.rpc::<()>("evm_setNextBlockTimestamp", (timestamp,))
            .await?;
        self.rpc::<()>(
            "anvil_setNextBlockBaseFeePerGas",
            (format!("{base_fee:#x}"),),
        )
        .await?;
        // The proposer's block replaces whatever anvil would have mined from its own pool.
        self.rpc::<serde_json::Value>("anvil_dropAllTransactions", ())
            .await?;
        if let Some(winner) = &winner {
            for tx in &winner.executed.block.block.body.transactions {
                let raw = Bytes::from(tx.encoded_2718());
                self.rpc::<B256>("eth_sendRawTransaction", (raw,)).await?;
            }
        }
        self.rpc::<String>("evm_mine", ()).await?;
        let mined = self.head().await?;
        tracing::info!(
            slot = open.slot,
            number = mined.number,
            hash = %mined.hash,
            won = winner.is_some(),
            "mock_cl.slot.mined"
        );
        Ok(SlotOutcome {
            slot: open.slot,
            winner,
            mined,
        })
    }

    async fn rpc<
        T: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    >(
        &self,
        method: &'static str,
        params: impl serde::Serialize + Clone + std::fmt::Debug + Send + Sync + Unpin,
    ) -> Result<T, MockError> {
        self.anvil
            .raw_request(method.into(), params)
            .await
            .map_err(|source| MockError::Rpc { method, source })
    }
}

async fn head_of(anvil: &DynProvider) -> Result<RpcHeader, MockError> {
    let block = anvil
        .get_block_by_number(alloy_eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|source| MockError::Rpc {
            method: "eth_getBlockByNumber",
            source,
        })?
        .ok_or(MockError::NoHead)?;
    Ok(block.header)
}

/// The Beacon API reads a builder makes at start: the genesis (time and fork version) and the
/// slot length.
fn beacon_routes(genesis_time: u64) -> axum::Router {
    use axum::{Json, routing::get};
    let genesis = serde_json::json!({"data": {
        "genesis_time": genesis_time.to_string(),
        "genesis_validators_root": B256::ZERO,
        "genesis_fork_version": format!("0x{}", alloy_primitives::hex::encode(DEVNET_GENESIS_FORK_VERSION)),
    }});
    let spec = serde_json::json!({"data": {
        "SECONDS_PER_SLOT": SECONDS_PER_SLOT.to_string(),
        "SLOTS_PER_EPOCH": "32",
    }});
    axum::Router::new()
        .route(GENESIS_PATH, get(move || async move { Json(genesis) }))
        .route(SPEC_PATH, get(move || async move { Json(spec) }))
}
