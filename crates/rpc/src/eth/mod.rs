//! The eth, net and web3 namespaces.

mod call;
mod convert;
mod debug;
mod fees;
mod filters;
mod logs;
mod pubsub;
mod refused;

use std::sync::Arc;

use alloy_consensus::{Header, Sealed, Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_eips::{BlockId, BlockNumberOrTag, Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, U64, U128, U256};
use alloy_rpc_types_eth::{
    Block, FeeHistory, Filter, FilterChanges, Log, Transaction, TransactionReceipt,
    TransactionRequest, state::StateOverride,
};
use cobuild_chain::{Chain, ReadView, StateSnapshot, StoredBlock};
use cobuild_pool::{Reservation, TxPool};
use cobuild_primitives::{AcceptedOrder, SenderCache};
use jsonrpsee::{Extensions, core::RpcResult, proc_macros::rpc};
use revm::{database_interface::DatabaseRef, state::AccountInfo};

use crate::RpcError;

pub use debug::DebugApiServer;
pub use filters::FilterLimits;
pub use logs::LogLimits;
pub use pubsub::EthPubSubApiServer;
pub(crate) use refused::refused;

/// The methods of the eth, net and web3 namespaces that take no parameters: jsonrpsee would
/// ignore any given, the server refuses them (`-32602`).
pub const WITHOUT_PARAMS: &[&str] = &[
    "eth_chainId",
    "eth_blockNumber",
    "eth_syncing",
    "eth_accounts",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_newBlockFilter",
    "eth_blobBaseFee",
    "eth_baseFee",
    "eth_coinbase",
    "eth_mining",
    "eth_hashrate",
    "eth_newPendingTransactionFilter",
    "net_version",
    "web3_clientVersion",
];

/// The `eth_` methods a wallet, `cast` or an ethers provider needs.
#[rpc(server, namespace = "eth")]
pub trait EthApi {
    /// The chain id.
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<U64>;
    /// The head block number.
    #[method(name = "blockNumber")]
    fn block_number(&self) -> RpcResult<U64>;
    /// This node is never syncing.
    #[method(name = "syncing")]
    fn syncing(&self) -> RpcResult<bool>;
    /// The node holds no keys.
    #[method(name = "accounts")]
    fn accounts(&self) -> RpcResult<Vec<Address>>;
    /// A block by number or tag.
    #[method(name = "getBlockByNumber")]
    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>>;
    /// A block by hash.
    #[method(name = "getBlockByHash")]
    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    /// All receipts of a block.
    #[method(name = "getBlockReceipts")]
    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;
    /// An account's nonce; with `pending`, counting its transactions in the pool.
    #[method(name = "getTransactionCount")]
    async fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    /// An account's balance.
    #[method(name = "getBalance")]
    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    /// An account's code.
    #[method(name = "getCode")]
    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    /// A storage slot.
    #[method(name = "getStorageAt")]
    async fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256>;
    /// Executes a call without creating a transaction.
    #[method(name = "call")]
    async fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes>;
    /// The least gas limit with which the transaction succeeds.
    #[method(name = "estimateGas")]
    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64>;
    /// The EIP-1186 proof of an account and some of its storage slots, at the head.
    #[method(name = "getProof")]
    async fn proof(
        &self,
        address: Address,
        keys: Vec<alloy_serde::JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<alloy_rpc_types_eth::EIP1186AccountProofResponse>;
    /// The access list a transaction would use, with the gas it then uses.
    #[method(name = "createAccessList")]
    async fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<alloy_eips::eip2930::AccessListResult>;
    /// A legacy gas price that gets a transaction into the next block.
    #[method(name = "gasPrice")]
    async fn gas_price(&self) -> RpcResult<U256>;
    /// A priority fee that gets a transaction into the next block.
    #[method(name = "maxPriorityFeePerGas")]
    async fn max_priority_fee(&self) -> RpcResult<U256>;
    /// Base fees, gas used ratios and reward percentiles of recent blocks.
    #[method(name = "feeHistory")]
    async fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    /// The logs a filter matches: a block range or one block by hash, addresses, and topic
    /// sets by position.
    #[method(name = "getLogs")]
    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    /// Installs a filter of the logs of the blocks sealed from now on; returns its id.
    #[method(name = "newFilter")]
    async fn new_filter(&self, filter: Filter) -> RpcResult<U128>;
    /// Installs a filter of the blocks sealed from now on.
    #[method(name = "newBlockFilter")]
    async fn new_block_filter(&self) -> RpcResult<U128>;
    /// Installs a filter of the public transactions entering the pool from now on.
    #[method(name = "newPendingTransactionFilter")]
    async fn new_pending_transaction_filter(&self) -> RpcResult<U128>;
    /// What a filter has seen since it was last polled: logs, or block or transaction hashes.
    #[method(name = "getFilterChanges")]
    async fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges>;
    /// Every log a log filter matches, over its whole range.
    #[method(name = "getFilterLogs")]
    async fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>>;
    /// Removes a filter; whether there was one.
    #[method(name = "uninstallFilter")]
    async fn uninstall_filter(&self, id: U128) -> RpcResult<bool>;
    /// The transaction at `index` of the block with `hash`.
    #[method(name = "getTransactionByBlockHashAndIndex")]
    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;
    /// The transaction at `index` of block `number`.
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;
    /// A transaction's signed bytes, included or publicly pending.
    #[method(name = "getRawTransactionByHash")]
    async fn raw_transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Bytes>>;
    /// How many transactions the block with `hash` holds.
    #[method(name = "getBlockTransactionCountByHash")]
    async fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// How many transactions block `number` holds.
    #[method(name = "getBlockTransactionCountByNumber")]
    async fn block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>>;
    /// Uncles of the block with `hash`: none since the merge.
    #[method(name = "getUncleCountByBlockHash")]
    async fn uncle_count_by_block_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// Uncles of block `number`: none since the merge.
    #[method(name = "getUncleCountByBlockNumber")]
    async fn uncle_count_by_block_number(&self, number: BlockNumberOrTag)
    -> RpcResult<Option<U64>>;
    /// An uncle of the block with `hash`: there are none.
    #[method(name = "getUncleByBlockHashAndIndex")]
    fn uncle_by_block_hash_and_index(&self, hash: B256, index: U64) -> RpcResult<Option<Block>>;
    /// An uncle of block `number`: there are none.
    #[method(name = "getUncleByBlockNumberAndIndex")]
    fn uncle_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Block>>;
    /// The base fee of the next block.
    #[method(name = "baseFee")]
    fn base_fee(&self) -> RpcResult<U256>;
    /// Storage slots of several accounts at one block: per address, the values of its keys.
    #[method(name = "getStorageValues")]
    async fn storage_values(
        &self,
        requests: std::collections::BTreeMap<Address, Vec<alloy_serde::JsonStorageKey>>,
        block: Option<BlockId>,
    ) -> RpcResult<std::collections::BTreeMap<Address, Vec<B256>>>;
    /// The blob base fee of the next block.
    #[method(name = "blobBaseFee")]
    fn blob_base_fee(&self) -> RpcResult<U256>;
    /// The fee recipient of the head block: this node mines nothing itself, its builder's
    /// blocks name their own.
    #[method(name = "coinbase")]
    fn coinbase(&self) -> RpcResult<Address>;
    /// This node does not mine.
    #[method(name = "mining")]
    fn mining(&self) -> RpcResult<bool>;
    /// This node does not mine: no hashes.
    #[method(name = "hashrate")]
    fn hashrate(&self) -> RpcResult<U64>;
    /// A transaction's receipt, once included.
    #[method(name = "getTransactionReceipt")]
    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;
    /// A transaction, included or pending.
    #[method(name = "getTransactionByHash")]
    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    /// Submits a signed transaction to the pool.
    #[method(name = "sendRawTransaction", with_extensions)]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
}

/// The `net_` methods.
#[rpc(server, namespace = "net")]
pub trait NetApi {
    /// The network id (the chain id, as a decimal string).
    #[method(name = "version")]
    fn version(&self) -> RpcResult<String>;
}

/// The `web3_` methods.
#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    /// Name and version of this node.
    #[method(name = "clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
}

/// The eth API over a chain and its pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Eth {
    chain: Chain,
    pool: TxPool,
    replication: crate::replicate::Hook,
    log_limits: LogLimits,
    proof_window: u64,
    filters: filters::Filters,
}

/// How many blocks behind the head `eth_getProof` answers by default. A proof at a past block
/// walks every leaf and every key written since, so a deep one costs a node real work.
pub const DEFAULT_PROOF_WINDOW: u64 = 1024;

impl Eth {
    /// Serves `chain` and submits transactions to `pool`.
    pub fn new(chain: Chain, pool: TxPool) -> Self {
        Self {
            chain,
            pool,
            replication: None,
            log_limits: LogLimits::DEFAULT,
            proof_window: DEFAULT_PROOF_WINDOW,
            filters: filters::Filters::new(FilterLimits::DEFAULT),
        }
    }

    /// Keeps installed filters within `limits` (default [`FilterLimits::DEFAULT`]); filters
    /// installed before are dropped.
    #[must_use]
    pub fn with_filter_limits(mut self, limits: FilterLimits) -> Self {
        self.filters = filters::Filters::new(limits);
        self
    }

    /// Answers log queries within `limits` (default [`LogLimits::DEFAULT`]).
    #[must_use]
    pub const fn with_log_limits(mut self, limits: LogLimits) -> Self {
        self.log_limits = limits;
        self
    }

    /// Answers `eth_getProof` at blocks up to `blocks` behind the head (default
    /// [`DEFAULT_PROOF_WINDOW`]; 0: the head only).
    #[must_use]
    pub const fn with_proof_window(mut self, blocks: u64) -> Self {
        self.proof_window = blocks;
        self
    }

    /// Hands every accepted raw transaction to `hook` before answering.
    #[must_use]
    pub fn with_replication(mut self, hook: std::sync::Arc<dyn crate::Replicate>) -> Self {
        self.replication = Some(hook);
        self
    }

    /// Decodes a raw transaction and reserves it in the pool (blocking: decoding, signature
    /// recovery and the state read).
    pub(crate) fn reserve_raw(&self, raw: &[u8]) -> Result<Reservation, RpcError> {
        let tx = decode_raw_transaction(raw)?;
        tracing::debug!(hash = %tx.tx_hash(), nonce = tx.nonce(), "rpc.eth.send_raw_transaction");
        Ok(self.pool.reserve(tx, None)?)
    }

    /// The chain served.
    pub const fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Runs chain reads or EVM work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, RpcError> + Send + 'static,
    ) -> RpcResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(RpcError::internal)?
            .map_err(Into::into)
    }

    /// The header and state of `block` (the head when none is named): any block the chain
    /// holds, while the store keeps what the blocks after it overwrote.
    fn state_at(
        &self,
        block: Option<BlockId>,
    ) -> Result<(Arc<Sealed<Header>>, StateSnapshot), RpcError> {
        let (head, state) = self.chain.head_state().map_err(RpcError::internal)?;
        let number = match block.unwrap_or_default() {
            // Pending, safe and finalized are the head on this chain.
            BlockId::Number(BlockNumberOrTag::Number(n)) => n,
            BlockId::Number(BlockNumberOrTag::Earliest) => 0,
            BlockId::Number(_) => return Ok((head, state)),
            BlockId::Hash(hash) if hash.block_hash == head.hash() => return Ok((head, state)),
            BlockId::Hash(hash) => {
                let view = self.chain.read().map_err(RpcError::internal)?;
                view.block_number(&hash.block_hash)
                    .map_err(RpcError::internal)?
                    .ok_or(RpcError::UnknownBlock)?
            }
        };
        if number == head.number {
            return Ok((head, state));
        }
        if number > head.number {
            return Err(RpcError::UnknownBlock);
        }
        drop(state);
        match self.chain.state_at(number) {
            Ok(past) => Ok(past),
            Err(cobuild_chain::ChainError::NoHistory { number, .. }) => {
                Err(RpcError::HistoricalState(format!(
                    "after block {number}: this node keeps the state of its last blocks only (--history-blocks)"
                )))
            }
            Err(e) => Err(RpcError::internal(e)),
        }
    }

    fn resolve_number(&self, tag: BlockNumberOrTag) -> u64 {
        match tag {
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Earliest => 0,
            _ => self.chain.head().number,
        }
    }

    fn stored_block(&self, view: &ReadView, id: BlockId) -> Result<Option<StoredBlock>, RpcError> {
        let number = match id {
            BlockId::Number(tag) => Some(self.resolve_number(tag)),
            BlockId::Hash(hash) => view
                .block_number(&hash.block_hash)
                .map_err(RpcError::internal)?,
        };
        match number {
            Some(n) => view.block(n).map_err(RpcError::internal),
            None => Ok(None),
        }
    }

    /// The block that included the transaction `hash`, its position, and the view it came from.
    fn included(&self, hash: &B256) -> Result<Option<(ReadView, StoredBlock, usize)>, RpcError> {
        let view = self.chain.read().map_err(RpcError::internal)?;
        let Some((number, index)) = view.tx_location(hash).map_err(RpcError::internal)? else {
            return Ok(None);
        };
        let stored = view
            .block(number)
            .map_err(RpcError::internal)?
            .ok_or(RpcError::UnknownBlock)?;
        Ok(Some((view, stored, index as usize)))
    }

    /// An account at `block` (only the head is kept), or `None` if it does not exist.
    fn account(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> Result<Option<AccountInfo>, RpcError> {
        let (_, state) = self.state_at(block)?;
        state.basic_ref(address).map_err(RpcError::internal)
    }

    /// The transaction at `index` of block `id`, if both exist.
    fn transaction_in(&self, id: BlockId, index: U64) -> Result<Option<Transaction>, RpcError> {
        let view = self.chain.read().map_err(RpcError::internal)?;
        let Some(stored) = self.stored_block(&view, id)? else {
            return Ok(None);
        };
        let index = usize::try_from(index.to::<u64>()).unwrap_or(usize::MAX);
        Ok(convert::block_transactions(&stored).into_iter().nth(index))
    }

    /// `count` of block `id`, if it exists.
    fn count_in(
        &self,
        id: BlockId,
        count: impl FnOnce(&alloy_consensus::Block<TxEnvelope>) -> usize,
    ) -> Result<Option<U64>, RpcError> {
        let view = self.chain.read().map_err(RpcError::internal)?;
        let stored = self.stored_block(&view, id)?;
        Ok(stored.map(|b| U64::from(count(&b.block))))
    }

    fn rpc_block(&self, id: BlockId, full: bool) -> Result<Option<Block>, RpcError> {
        let view = self.chain.read().map_err(RpcError::internal)?;
        Ok(self
            .stored_block(&view, id)?
            .map(|b| convert::block(b, full)))
    }
}

#[jsonrpsee::core::async_trait]
impl EthApiServer for Eth {
    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.chain.spec().chain_id()))
    }

    fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.chain.head().number))
    }

    fn syncing(&self) -> RpcResult<bool> {
        Ok(false)
    }

    fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(Vec::new())
    }

    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>> {
        self.blocking(move |this| this.rpc_block(BlockId::Number(number), full))
            .await
    }

    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        self.blocking(move |this| this.rpc_block(BlockId::from(hash), full))
            .await
    }

    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        self.blocking(move |this| {
            let view = this.chain.read().map_err(RpcError::internal)?;
            let Some(stored) = this.stored_block(&view, block)? else {
                return Ok(None);
            };
            let receipts = view
                .receipts(stored.block.header.number)
                .map_err(RpcError::internal)?
                .unwrap_or_default();
            Ok(Some(convert::receipts(&stored, receipts)))
        })
        .await
    }

    async fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.blocking(move |this| {
            let nonce = this.account(address, block)?.map_or(0, |a| a.nonce);
            let pending = matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending)));
            Ok(U256::from(if pending {
                this.pool.pending_nonce(address, nonce)
            } else {
                nonce
            }))
        })
        .await
    }

    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.blocking(move |this| {
            Ok(this
                .account(address, block)?
                .map_or(U256::ZERO, |a| a.balance))
        })
        .await
    }

    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.blocking(move |this| {
            let code = this.account(address, block)?.and_then(|a| a.code);
            Ok(code.map(|c| c.original_bytes()).unwrap_or_default())
        })
        .await
    }

    async fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        self.blocking(move |this| {
            let (_, state) = this.state_at(block)?;
            Ok(B256::from(
                state
                    .storage_at(address, slot)
                    .map_err(RpcError::internal)?,
            ))
        })
        .await
    }

    async fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        self.blocking(move |this| {
            let (head, state) = this.state_at(block)?;
            call::call(this.chain.spec(), &head, state, request, overrides)
        })
        .await
    }

    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64> {
        self.blocking(move |this| {
            let (head, state) = this.state_at(block)?;
            call::estimate_gas(this.chain.spec(), &head, state, request, overrides).map(U64::from)
        })
        .await
    }

    async fn proof(
        &self,
        address: Address,
        keys: Vec<alloy_serde::JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<alloy_rpc_types_eth::EIP1186AccountProofResponse> {
        self.blocking(move |this| {
            let slots: Vec<B256> = keys
                .iter()
                .map(alloy_serde::JsonStorageKey::as_b256)
                .collect();
            let (header, state) = this.state_at(block)?;
            let behind = this.chain.head().number.saturating_sub(header.number);
            if behind > this.proof_window {
                return Err(RpcError::HistoricalState(format!(
                    "proof at block {}: {behind} blocks behind the head, and this node proves \
                     up to {} behind (--proof-window)",
                    header.number, this.proof_window
                )));
            }
            let proof = state
                .prove(header.state_root, address, &slots)
                .map_err(RpcError::internal)?;
            // An account that does not exist proves as the empty one.
            let record = proof.record.unwrap_or(cobuild_chain::AccountRecord {
                nonce: 0,
                balance: U256::ZERO,
                code_hash: revm::primitives::KECCAK_EMPTY,
                storage_root: alloy_trie::EMPTY_ROOT_HASH,
            });
            let storage_proof = keys
                .into_iter()
                .zip(proof.storage)
                .map(|(key, (_, value, nodes))| {
                    alloy_rpc_types_eth::EIP1186StorageProof::new(key, value, nodes)
                })
                .collect();
            Ok(alloy_rpc_types_eth::EIP1186AccountProofResponse {
                address,
                balance: record.balance,
                code_hash: record.code_hash,
                nonce: record.nonce,
                storage_hash: record.storage_root,
                account_proof: proof.account_proof,
                storage_proof,
            })
        })
        .await
    }

    async fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<alloy_eips::eip2930::AccessListResult> {
        self.blocking(move |this| {
            let (head, state) = this.state_at(block)?;
            call::create_access_list(this.chain.spec(), &head, state, request, overrides)
        })
        .await
    }

    async fn gas_price(&self) -> RpcResult<U256> {
        let head = self.chain.head();
        let base_fee = head
            .next_block_base_fee(self.chain.spec().base_fee_params())
            .unwrap_or_default();
        Ok(U256::from(u128::from(base_fee) + fees::SUGGESTED_TIP))
    }

    async fn max_priority_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(fees::SUGGESTED_TIP))
    }

    async fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        self.blocking(move |this| {
            let head = this.chain.head().number;
            let newest = this.resolve_number(newest);
            // geth's answer too: a window that ends past the head would silently be another one.
            if newest > head {
                return Err(RpcError::InvalidParams(format!(
                    "request beyond head block: requested {newest}, head {head}"
                )));
            }
            let view = this.chain.read().map_err(RpcError::internal)?;
            fees::fee_history(
                this.chain.spec(),
                &view,
                block_count.to(),
                newest,
                percentiles.as_deref(),
            )
        })
        .await
    }

    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        self.blocking(move |this| {
            let view = this.chain.read().map_err(RpcError::internal)?;
            let head = view
                .head_number()
                .map_err(RpcError::internal)?
                .unwrap_or_default();
            match logs::range(&view, head, &filter)? {
                Some(range) => logs::logs(&view, &filter, range, this.log_limits),
                None => Ok(Vec::new()),
            }
        })
        .await
    }

    async fn new_filter(&self, filter: Filter) -> RpcResult<U128> {
        let next = self.chain.head().number + 1;
        let watch = filters::Watch::Logs {
            filter: Box::new(filter),
            next,
        };
        Ok(self.filters.install(watch)?)
    }

    async fn new_block_filter(&self) -> RpcResult<U128> {
        let next = self.chain.head().number + 1;
        Ok(self.filters.install(filters::Watch::Blocks { next })?)
    }

    async fn new_pending_transaction_filter(&self) -> RpcResult<U128> {
        let watch = filters::Watch::Pending(self.pool.public_hashes());
        Ok(self.filters.install(watch)?)
    }

    async fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges> {
        self.blocking(move |this| {
            let view = this.chain.read().map_err(RpcError::internal)?;
            let head = view
                .head_number()
                .map_err(RpcError::internal)?
                .unwrap_or_default();
            Ok(match this.filters.poll(id, head)? {
                filters::Due::Pending(hashes) => FilterChanges::Hashes(hashes),
                filters::Due::Blocks { from, to } => {
                    let hashes = (from..=to)
                        .map(|n| view.canonical_hash(n).map_err(RpcError::internal))
                        .filter_map(Result::transpose)
                        .collect::<Result<_, _>>()?;
                    FilterChanges::Hashes(hashes)
                }
                filters::Due::Logs { filter, from, to } => {
                    // Within both the filter's own bounds and what is new since the last poll.
                    let (lo, hi) = logs::watched(&view, &filter)?;
                    let range = (from.max(lo), to.min(hi));
                    let found = if range.0 <= range.1 {
                        logs::logs(&view, &filter, range, this.log_limits)?
                    } else {
                        Vec::new()
                    };
                    FilterChanges::Logs(found)
                }
            })
        })
        .await
    }

    async fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>> {
        let filter = self.filters.log_filter(id)?;
        self.logs(*filter).await
    }

    async fn uninstall_filter(&self, id: U128) -> RpcResult<bool> {
        Ok(self.filters.uninstall(id))
    }

    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        self.blocking(move |this| this.transaction_in(BlockId::from(hash), index))
            .await
    }

    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        self.blocking(move |this| this.transaction_in(BlockId::Number(number), index))
            .await
    }

    async fn raw_transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Bytes>> {
        // As `eth_getTransactionByHash`: a private transaction is never shown.
        if let Some(pending) = self.pool.visible(&hash, None) {
            return Ok(Some(pending.tx.inner().encoded_2718().into()));
        }
        self.blocking(move |this| {
            let Some((_, stored, index)) = this.included(&hash)? else {
                return Ok(None);
            };
            let tx = stored.block.body.transactions.get(index);
            Ok(tx.map(|tx| tx.encoded_2718().into()))
        })
        .await
    }

    async fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        self.blocking(move |this| this.count_in(BlockId::from(hash), |b| b.body.transactions.len()))
            .await
    }

    async fn block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>> {
        let id = BlockId::Number(number);
        self.blocking(move |this| this.count_in(id, |b| b.body.transactions.len()))
            .await
    }

    async fn uncle_count_by_block_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        self.blocking(move |this| this.count_in(BlockId::from(hash), |b| b.body.ommers.len()))
            .await
    }

    async fn uncle_count_by_block_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>> {
        let id = BlockId::Number(number);
        self.blocking(move |this| this.count_in(id, |b| b.body.ommers.len()))
            .await
    }

    fn uncle_by_block_hash_and_index(&self, _hash: B256, _index: U64) -> RpcResult<Option<Block>> {
        Ok(None)
    }

    fn uncle_by_block_number_and_index(
        &self,
        _number: BlockNumberOrTag,
        _index: U64,
    ) -> RpcResult<Option<Block>> {
        Ok(None)
    }

    fn base_fee(&self) -> RpcResult<U256> {
        let head = self.chain.head();
        let fee = head
            .next_block_base_fee(self.chain.spec().base_fee_params())
            .unwrap_or_default();
        Ok(U256::from(fee))
    }

    async fn storage_values(
        &self,
        requests: std::collections::BTreeMap<Address, Vec<alloy_serde::JsonStorageKey>>,
        block: Option<BlockId>,
    ) -> RpcResult<std::collections::BTreeMap<Address, Vec<B256>>> {
        // One request reads at most as many slots as a batch may hold calls.
        let slots: usize = requests.values().map(Vec::len).sum();
        if slots > 1_000 {
            return Err(RpcError::LimitExceeded(format!(
                "{slots} storage slots asked for: at most 1000 per request"
            ))
            .into());
        }
        self.blocking(move |this| {
            let (_, state) = this.state_at(block)?;
            requests
                .into_iter()
                .map(|(address, keys)| {
                    let values = keys
                        .iter()
                        .map(|key| {
                            let slot = U256::from_be_bytes(key.as_b256().0);
                            let value = state
                                .storage_at(address, slot)
                                .map_err(RpcError::internal)?;
                            Ok(B256::from(value))
                        })
                        .collect::<Result<Vec<_>, RpcError>>()?;
                    Ok((address, values))
                })
                .collect()
        })
        .await
    }

    fn blob_base_fee(&self) -> RpcResult<U256> {
        let head = self.chain.head();
        let fee = head
            .next_block_blob_fee(self.chain.spec().blob_params())
            .unwrap_or_default();
        Ok(U256::from(fee))
    }

    fn coinbase(&self) -> RpcResult<Address> {
        Ok(self.chain.head().beneficiary)
    }

    fn mining(&self) -> RpcResult<bool> {
        Ok(false)
    }

    fn hashrate(&self) -> RpcResult<U64> {
        Ok(U64::ZERO)
    }

    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        self.blocking(move |this| {
            let Some((view, stored, index)) = this.included(&hash)? else {
                return Ok(None);
            };
            let receipts = view
                .receipts(stored.block.header.number)
                .map_err(RpcError::internal)?
                .unwrap_or_default();
            Ok(convert::receipts(&stored, receipts).into_iter().nth(index))
        })
        .await
    }

    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        // An unsigned query sees public pending transactions only: never a private one.
        if let Some(pending) = self.pool.visible(&hash, None) {
            return Ok(Some(convert::pending_transaction(pending.tx.clone())));
        }
        self.blocking(move |this| {
            let Some((_, stored, index)) = this.included(&hash)? else {
                return Ok(None);
            };
            Ok(convert::block_transactions(&stored).into_iter().nth(index))
        })
        .await
    }

    async fn send_raw_transaction(&self, ext: &Extensions, raw: Bytes) -> RpcResult<B256> {
        let payload = raw.clone();
        let reservation = self.blocking(move |this| this.reserve_raw(&raw)).await?;
        let hash = reservation.id();
        let order = || Ok(AcceptedOrder::raw_transaction(payload));
        crate::replicate::acknowledge(&self.replication, ext, order, reservation).await?;
        Ok(hash)
    }
}

/// Decodes one signed EIP-2718 transaction and recovers its sender (through the process's
/// [`SenderCache`]), with geth's messages.
pub(crate) fn decode_raw_transaction(raw: &[u8]) -> Result<Recovered<TxEnvelope>, RpcError> {
    let mut slice = raw;
    if slice.is_empty() {
        return Err(RpcError::InvalidParams("empty transaction data".into()));
    }
    let tx = TxEnvelope::decode_2718(&mut slice)
        .map_err(|e| RpcError::InvalidParams(format!("rlp: {e}")))?;
    if !slice.is_empty() {
        return Err(RpcError::InvalidParams(
            "rlp: input contains more than one value".into(),
        ));
    }
    SenderCache::global()
        .recover(tx)
        .map_err(|_| RpcError::InvalidParams("invalid transaction signature".into()))
}

impl NetApiServer for Eth {
    fn version(&self) -> RpcResult<String> {
        Ok(self.chain.spec().chain_id().to_string())
    }
}

impl Web3ApiServer for Eth {
    fn client_version(&self) -> RpcResult<String> {
        Ok(format!("cobuild/v{}", env!("CARGO_PKG_VERSION")))
    }
}
