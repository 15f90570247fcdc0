//! The incremental block builder: open on a parent, execute transactions one by one (each is
//! either committed or rejected without touching the block), then seal.

use std::{borrow::Cow, sync::Arc};

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header, ReceiptEnvelope, Sealed, TxEnvelope, TxReceipt,
    proofs::calculate_withdrawals_root, transaction::Recovered,
};
use alloy_eips::{eip2718::Encodable2718, eip7685::EMPTY_REQUESTS_HASH};
use alloy_evm::{
    Evm as _, EvmEnv, EvmFactory,
    block::{BlockExecutionError, BlockExecutor, BlockValidationError},
    eth::{EthBlockExecutionCtx, EthBlockExecutor, EthEvmFactory},
};
use alloy_primitives::{Address, B256, Bloom, U256};
use cobuild_primitives::{ChainSpec, eth_evm};
use revm::{
    context::result::ExecutionResult,
    context_interface::result::{HaltReason, InvalidTransaction},
    database::{State, WrapDatabaseRef, states::bundle_state::BundleRetention},
    database_interface::DatabaseRef,
    state::AccountInfo,
};

use crate::{
    block::{
        BlockAttributes,
        receipts::MemoReceipts,
        roots::{OrderedGroups, ordered_root},
        touched::{self, Touch},
    },
    state::{DiffMemo, HashedStateDiff, SlotsBefore, StateError, StateSnapshot},
    store::{StoreError, StoredBlock},
};

type Db = State<WrapDatabaseRef<StateSnapshot>>;
type Evm = <EthEvmFactory as EvmFactory>::Evm<Db, revm::inspector::NoOpInspector>;
type Executor = EthBlockExecutor<'static, Evm, Arc<ChainSpec>, MemoReceipts>;
/// A transaction's execution, ready to commit.
pub(super) type TxOutput = <Executor as BlockExecutor>::Result;

/// This block attempt cannot go on (the state failed to read, or a system call failed).
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// Execution failed for a reason that is not the transaction's fault.
    #[error("block execution: {0}")]
    Execution(#[from] BlockExecutionError),
    /// The state root could not be computed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The parent state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The attributes break a consensus rule for this parent.
    #[error("invalid block attributes: {0}")]
    Attributes(&'static str),
    /// The block executed, but its state cannot give it roots.
    #[error("cannot seal: {0}")]
    Unsealable(&'static str),
}

/// Why a transaction was not added to the block. The block is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxRejected {
    /// The transaction is invalid on the current block state (nonce, funds, fees, chain id ...).
    #[error("{0}")]
    Invalid(InvalidTransaction),
    /// Its gas limit exceeds what is left in the block.
    #[error("gas limit {gas_limit} exceeds the {available} gas left in the block")]
    BlockGasExhausted {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// Gas left in the block.
        available: u64,
    },
    /// Its blobs exceed what is left of the block's blob gas.
    #[error("blob gas exceeds what is left in the block")]
    BlobGasExhausted,
    /// The caller's acceptance check (e.g. a bundle's revert rule) refused the outcome.
    #[error("outcome refused")]
    Refused,
}

/// What a transaction would do if committed, shown to an acceptance check before the block
/// changes.
#[derive(Debug)]
pub struct TxTrial<'a> {
    /// The execution result (success, revert or halt, with gas and logs).
    pub result: &'a ExecutionResult<HaltReason>,
    /// What the block's coinbase would gain: priority fees plus direct payments.
    pub coinbase_profit: U256,
}

/// What a committed transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Gas the transaction used (after refunds).
    pub gas_used: u64,
    /// Whether it succeeded (did not revert or halt).
    pub success: bool,
    /// What the coinbase gained from it.
    pub coinbase_profit: U256,
}

/// A sealed block with everything needed to store it.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    /// The block, its hash and senders.
    pub block: StoredBlock,
    /// One receipt per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// The state changes, hashed, with the new state root.
    pub diff: HashedStateDiff,
}

impl ExecutedBlock {
    /// The sealed header.
    pub fn header(&self) -> &Header {
        &self.block.block.header
    }
}

/// What a seal keeps for the next seal of a block on the same parent and attributes: the state
/// diff with what its hashing leaves for the next ([`DiffMemo`]), the keys the post-block
/// changes touched, and the hashes of the transactions and receipts tries' complete groups of
/// 16. A block that begins with the same transactions hashes only what comes after them and
/// what its state changes differently ([`BlockBuilder::finish_cached`]).
#[derive(Debug, Clone)]
pub struct SealCache {
    parent: B256,
    attrs: BlockAttributes,
    diff: HashedStateDiff,
    transactions: Vec<B256>,
    transaction_groups: OrderedGroups,
    receipt_groups: OrderedGroups,
    memo: DiffMemo,
    post_block: Vec<Touch>,
}

/// Builds one block on a parent. CPU-bound and synchronous: run it off the async runtime.
pub struct BlockBuilder {
    executor: Executor,
    block: Parts,
}

/// A block under construction besides its executor: what [`BlockBuilder::detach`] copies as
/// it is, and [`Detached::resume`] hands back to a new executor.
#[derive(Clone)]
struct Parts {
    parent: Arc<Sealed<Header>>,
    snapshot: StateSnapshot,
    attrs: BlockAttributes,
    base_fee: u64,
    excess_blob_gas: u64,
    transactions: Vec<Recovered<TxEnvelope>>,
    /// Per transaction, the state keys its commit changed.
    touched: Vec<Arc<[Touch]>>,
}

impl std::fmt::Debug for BlockBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockBuilder")
            .field("parent", &self.block.parent.hash())
            .field("transactions", &self.block.transactions.len())
            .finish_non_exhaustive()
    }
}

/// A [`BlockBuilder`]'s block so far without the EVM ([`BlockBuilder::detach`]): the
/// executor's state and counters, and the block's [`Parts`].
pub(crate) struct Detached {
    env: EvmEnv,
    db: Db,
    ctx: EthBlockExecutionCtx<'static>,
    spec: Arc<ChainSpec>,
    receipts: Vec<ReceiptEnvelope>,
    cumulative_tx_gas_used: u64,
    block_regular_gas_used: u64,
    block_state_gas_used: u64,
    blob_gas_used: u64,
    skip_state_gas_capacity_check: bool,
    block: Parts,
}

impl Detached {
    /// The block again, with an EVM of its own, going on from where it was detached.
    pub(crate) fn resume(self) -> BlockBuilder {
        let evm = eth_evm(self.db, self.env);
        let mut executor = EthBlockExecutor::new(evm, self.ctx, self.spec, MemoReceipts::default());
        // The pre-execution system calls are already in the copied state; what the executor
        // counts per block is copied so the copy's gas and receipts go on from here.
        executor.receipts = self.receipts;
        executor.cumulative_tx_gas_used = self.cumulative_tx_gas_used;
        executor.block_regular_gas_used = self.block_regular_gas_used;
        executor.block_state_gas_used = self.block_state_gas_used;
        executor.blob_gas_used = self.blob_gas_used;
        executor.skip_state_gas_capacity_check = self.skip_state_gas_capacity_check;
        BlockBuilder {
            executor,
            block: self.block,
        }
    }
}

impl BlockBuilder {
    /// Opens a block on `parent` (whose post-state is `snapshot`) and applies the fork's
    /// pre-execution system calls (EIP-2935 and EIP-4788).
    pub fn new(
        spec: Arc<ChainSpec>,
        parent: Arc<Sealed<Header>>,
        snapshot: StateSnapshot,
        attrs: BlockAttributes,
    ) -> Result<Self, BlockError> {
        if attrs.timestamp <= parent.timestamp {
            return Err(BlockError::Attributes("timestamp not after parent"));
        }
        if attrs.extra_data.len() > 32 {
            return Err(BlockError::Attributes("extra data longer than 32 bytes"));
        }
        if !super::attributes::gas_limit_valid(parent.gas_limit, attrs.gas_limit) {
            return Err(BlockError::Attributes(
                "gas limit moves too far from the parent's",
            ));
        }
        let base_fee = parent
            .next_block_base_fee(spec.base_fee_params())
            .ok_or(BlockError::Attributes("parent has no base fee"))?;
        let excess_blob_gas = parent
            .next_block_excess_blob_gas(spec.blob_params())
            .unwrap_or_default();
        let env = super::env::next_evm_env(
            &spec,
            &parent,
            super::NextBlock {
                number: parent.number + 1,
                timestamp: attrs.timestamp,
                beneficiary: attrs.fee_recipient,
                gas_limit: attrs.gas_limit,
                base_fee,
                prev_randao: attrs.prev_randao,
            },
        );
        // The per-transaction lists (receipts, transactions, touched keys) are sized for a full
        // block: growing them by doubling copied ever larger buffers into fresh pages, 5.6 % of
        // a greedy build's samples. Room never filled is never touched. (Sizing the state's
        // hash tables the same way made more page faults, not fewer: their entries scatter.)
        let room = tx_room(attrs.gas_limit);
        let db = State::builder()
            .with_database(WrapDatabaseRef(snapshot.clone()))
            .with_bundle_update()
            .build();
        let evm = eth_evm(db, env);
        let ctx = EthBlockExecutionCtx {
            parent_hash: parent.hash(),
            parent_beacon_block_root: Some(attrs.parent_beacon_block_root),
            ommers: &[],
            withdrawals: Some(Cow::Owned(attrs.withdrawals.clone())),
            extra_data: attrs.extra_data.clone(),
            tx_count_hint: Some(room),
            slot_number: None,
        };
        let mut executor = EthBlockExecutor::new(evm, ctx, spec, MemoReceipts::default());
        executor.apply_pre_execution_changes()?;
        Ok(Self {
            executor,
            block: Parts {
                parent,
                snapshot,
                attrs,
                base_fee,
                excess_blob_gas,
                transactions: Vec::with_capacity(room),
                touched: Vec::with_capacity(room),
            },
        })
    }

    /// Base fee of the block being built.
    pub const fn base_fee(&self) -> u64 {
        self.block.base_fee
    }

    /// Number of the block being built.
    pub fn number(&self) -> u64 {
        self.block.parent.number + 1
    }

    /// Gas used so far.
    pub fn gas_used(&self) -> u64 {
        self.executor
            .receipts()
            .last()
            .map(|r| r.cumulative_gas_used())
            .unwrap_or_default()
    }

    /// Gas still available for transactions.
    pub fn gas_left(&self) -> u64 {
        self.block.attrs.gas_limit.saturating_sub(self.gas_used())
    }

    /// Blob gas still available.
    pub fn blob_gas_left(&self) -> u64 {
        self.executor
            .spec
            .blob_params()
            .max_blob_gas_per_block()
            .saturating_sub(self.executor.blob_gas_used)
    }

    /// Transactions committed so far.
    pub fn transactions(&self) -> &[Recovered<TxEnvelope>] {
        &self.block.transactions
    }

    /// The EVM the executor runs, for read-only access to the block state so far.
    pub(super) fn executor_evm(&self) -> &Evm {
        self.executor.evm()
    }

    /// The block's coinbase (fee recipient).
    pub const fn coinbase(&self) -> Address {
        self.block.attrs.fee_recipient
    }

    /// An account as the block state so far has it.
    pub fn account(&self, address: Address) -> Result<Option<AccountInfo>, BlockError> {
        DatabaseRef::basic_ref(alloy_evm::Evm::db(self.executor.evm()), address)
            .map_err(|e| BlockError::Execution(BlockExecutionError::msg(e)))
    }

    /// [`account`](Self::account), keeping what it read from the parent state in the block's
    /// cache: a builder that checks a sender's nonce before executing its transaction reads the
    /// account from the store once, not once to check and again to execute.
    pub fn load_account(&mut self, address: Address) -> Result<Option<AccountInfo>, BlockError> {
        revm::Database::basic(self.executor.evm_mut().db_mut(), address)
            .map_err(|e| BlockError::Execution(BlockExecutionError::msg(e)))
    }

    /// An account's balance as the block state so far has it.
    pub fn balance(&self, address: Address) -> Result<U256, BlockError> {
        Ok(self
            .account(address)?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    /// Executes `tx` and commits it to the block.
    ///
    /// The outer error stops the block attempt; the inner one rejects only this transaction.
    pub fn execute(
        &mut self,
        tx: Recovered<TxEnvelope>,
    ) -> Result<Result<TxOutcome, TxRejected>, BlockError> {
        self.execute_if(tx, |_| true)
    }

    /// Executes `tx` and commits it only if `accept` approves the outcome; otherwise the block
    /// is left exactly as it was.
    pub fn execute_if(
        &mut self,
        tx: Recovered<TxEnvelope>,
        accept: impl FnOnce(&TxTrial<'_>) -> bool,
    ) -> Result<Result<TxOutcome, TxRejected>, BlockError> {
        let coinbase = self.coinbase();
        let before = self.balance(coinbase)?;
        let output = match self
            .executor
            .execute_transaction_without_commit(tx.as_recovered_ref())
        {
            Ok(output) => output,
            Err(err) => return rejection(err).map(Err),
        };
        let blob_limit = self.executor.spec.blob_params().max_blob_gas_per_block();
        if self.executor.blob_gas_used + output.blob_gas_used > blob_limit {
            return Ok(Err(TxRejected::BlobGasExhausted));
        }
        let after = output
            .result
            .state
            .get(&coinbase)
            .map_or(before, |account| account.info.balance);
        let trial = TxTrial {
            result: &output.result.result,
            coinbase_profit: after.saturating_sub(before),
        };
        let coinbase_profit = trial.coinbase_profit;
        if !accept(&trial) {
            return Ok(Err(TxRejected::Refused));
        }
        let success = output.result.result.is_success();
        let gas_used = self.commit_output(tx, output);
        Ok(Ok(TxOutcome {
            gas_used,
            success,
            coinbase_profit,
        }))
    }

    /// Commits `tx` with the result of its execution on the block state as it is now (by the
    /// executor, or by a dry run over it: execution being deterministic, the two are the same)
    /// and returns the gas it used.
    pub(super) fn commit_output(&mut self, tx: Recovered<TxEnvelope>, output: TxOutput) -> u64 {
        let touched = touched::touches(&output.result.state);
        let gas = self.executor.commit_transaction(output);
        self.block.transactions.push(tx);
        self.block.touched.push(touched);
        gas.tx_gas_used()
    }

    /// A copy of the block so far that goes on on its own: one copy can be sealed while the
    /// other keeps taking transactions, so a builder that adds orders round after round never
    /// executes the earlier ones again. Costs a copy of the state the block has touched.
    pub fn fork(&self) -> Self {
        self.detach().resume()
    }

    /// A copy of the block so far without its EVM, which cannot leave its thread: kept to go on
    /// with later, on any thread ([`Detached::resume`]).
    pub(crate) fn detach(&self) -> Detached {
        let evm = self.executor.evm();
        let state = evm.db();
        // Every field of the state that execution reads or writes is copied; the database below
        // it is the parent's immutable snapshot, shared.
        let db = State {
            cache: state.cache.clone(),
            database: WrapDatabaseRef(self.block.snapshot.clone()),
            transition_state: state.transition_state.clone(),
            bundle_state: state.bundle_state.clone(),
            use_preloaded_bundle: state.use_preloaded_bundle,
            block_hashes: state.block_hashes.clone(),
            bal_state: state.bal_state.clone(),
            state_hook: None,
        };
        let executor = &self.executor;
        Detached {
            env: EvmEnv::new(evm.cfg_env().clone(), evm.block().clone()),
            db,
            ctx: executor.ctx.clone(),
            spec: executor.spec.clone(),
            receipts: executor.receipts.clone(),
            cumulative_tx_gas_used: executor.cumulative_tx_gas_used,
            block_regular_gas_used: executor.block_regular_gas_used,
            block_state_gas_used: executor.block_state_gas_used,
            blob_gas_used: executor.blob_gas_used,
            skip_state_gas_capacity_check: executor.skip_state_gas_capacity_check,
            block: self.block.clone(),
        }
    }

    /// Applies the post-block changes (withdrawals, EIP-7002/7251 requests), computes the roots
    /// and seals the block.
    pub fn finish(self) -> Result<ExecutedBlock, BlockError> {
        Ok(self.seal(None, false)?.0)
    }

    /// [`finish`](Self::finish), starting from what an earlier seal on the same parent kept,
    /// and keeping what the next one needs. A builder that seals a growing block round after
    /// round pays for the round's changes, not the block's: the state is hashed where it
    /// differs from the earlier block's, and of the transactions and receipts roots only what
    /// follows the transactions the two blocks begin with. The block is the same as
    /// [`finish`](Self::finish) seals; a cache from another parent or other attributes is
    /// ignored.
    pub fn finish_cached(
        self,
        earlier: Option<SealCache>,
    ) -> Result<(ExecutedBlock, SealCache), BlockError> {
        let (block, kept) = self.seal(earlier, true)?;
        let cache = SealCache {
            diff: block.diff.clone(),
            ..kept
        };
        Ok((block, cache))
    }

    /// Seals, from `earlier` where it holds; `cached` says the caller keeps what the seal
    /// returns beside the block (everything of a [`SealCache`] but the diff, which the block
    /// holds), so the state keys are hashed through the cache.
    fn seal(
        self,
        earlier: Option<SealCache>,
        cached: bool,
    ) -> Result<(ExecutedBlock, SealCache), BlockError> {
        let Self {
            mut executor,
            block:
                Parts {
                    parent,
                    snapshot,
                    attrs,
                    base_fee,
                    excess_blob_gas,
                    transactions,
                    touched,
                },
        } = self;
        if snapshot.is_past() {
            // The store's tables hold the head's trie, not this state's: roots would be wrong.
            return Err(BlockError::Unsealable("a replayed block cannot be sealed"));
        }
        // Without the store's tables (a state read from an execution client) the state root
        // comes from the source's proofs.
        let view = snapshot.view();
        let post_block = cached.then(|| touched::record(executor.evm_mut().db_mut()));
        let (evm, result) = executor.finish()?;
        let (mut db, _env) = alloy_evm::Evm::finish(evm);
        db.set_state_hook(None);
        let post_block = post_block.map(|r| r.take()).unwrap_or_default();
        let hashes: Vec<B256> = transactions.iter().map(|tx| *tx.tx_hash()).collect();
        // What a seal kept holds only on the parent and attributes it was kept for.
        let mut earlier = earlier.filter(|c| c.parent == parent.hash() && c.attrs == attrs);
        let mut memo = earlier
            .as_mut()
            .map(|c| std::mem::take(&mut c.memo))
            .unwrap_or_default();
        // The earlier diff is built on (moved, not copied) where the round allows.
        let previous = earlier.as_mut().map(|c| std::mem::take(&mut c.diff));
        let earlier = earlier.as_ref();
        let no_groups = OrderedGroups::default();
        let (transaction_groups, receipt_groups, unchanged) = match earlier {
            Some(c) => (
                &c.transaction_groups,
                &c.receipt_groups,
                // Same parent, attributes and transactions: the same receipts.
                c.transactions
                    .iter()
                    .zip(&hashes)
                    .take_while(|(a, b)| a == b)
                    .count(),
            ),
            None => (&no_groups, &no_groups, 0),
        };
        // A block that extends the earlier one differs from it only where the transactions
        // since, or either block's post-block changes, touched the state.
        let round = earlier
            .filter(|c| unchanged == c.transactions.len())
            .and_then(|c| {
                let since = touched[unchanged..].iter().flat_map(|keys| keys.iter());
                touched::present(&db, since.chain(&post_block).chain(&c.post_block))
            });
        // The state roots, the transactions root and the receipts root share nothing: they are
        // hashed side by side. Once the state is hashed from an earlier seal, the receipts
        // (each with its bloom) are the largest of the three.
        let (
            diff,
            (
                ((transactions_root, transaction_groups), (envelopes, senders)),
                ((receipts_root, receipt_groups), logs_bloom),
            ),
        ) = rayon::join(
            || -> Result<HashedStateDiff, BlockError> {
                let Some(view) = view else {
                    db.merge_transitions(BundleRetention::PlainState);
                    let changes = db
                        .take_bundle()
                        .to_plain_state(revm::database::OriginalValuesKnown::Yes);
                    return Ok(HashedStateDiff {
                        state_root: snapshot.root_from_proofs(&changes)?,
                        ..HashedStateDiff::default()
                    });
                };
                let nodes = snapshot.trie().filter(|_| cached);
                let mut previous = previous;
                if let (Some(nodes), Some(round)) = (nodes, &round)
                    && let Some(earlier) = previous.take()
                {
                    match HashedStateDiff::after_round(earlier, view, nodes, round, &mut memo)? {
                        Ok(diff) => return Ok(diff),
                        Err(earlier) => previous = Some(earlier),
                    }
                }
                db.merge_transitions(BundleRetention::PlainState);
                let bundle = db.take_bundle();
                let changes = bundle.to_plain_state(revm::database::OriginalValuesKnown::Yes);
                // Execution read every changed slot's old value: the walk need not read it again.
                let before = SlotsBefore::of(&bundle);
                Ok(match nodes {
                    Some(nodes) => HashedStateDiff::after(
                        previous.as_ref(),
                        view,
                        nodes,
                        &changes,
                        &before,
                        &mut memo,
                    )?,
                    None => HashedStateDiff::new_knowing(view, snapshot.trie(), &changes, &before)?,
                })
            },
            || {
                rayon::join(
                    move || {
                        let root = ordered_root(
                            &transactions,
                            |tx, out| tx.inner().encode_2718(out),
                            transaction_groups,
                            unchanged,
                        );
                        // Unwrapping the envelopes moves each one: done here, beside the state
                        // root, rather than before it.
                        let parts: (Vec<TxEnvelope>, Vec<Address>) =
                            transactions.into_iter().map(Recovered::into_parts).unzip();
                        (root, parts)
                    },
                    || {
                        let mut logs_bloom = Bloom::ZERO;
                        for receipt in &result.receipts {
                            logs_bloom.accrue_bloom(&receipt.bloom());
                        }
                        let receipts = ordered_root(
                            &result.receipts,
                            |receipt, out| receipt.encode_2718(out),
                            receipt_groups,
                            unchanged,
                        );
                        (receipts, logs_bloom)
                    },
                )
            },
        );
        // The execution state holds every account and slot the block touched: it is freed on
        // the pool while the block is put together, not before the block is returned.
        rayon::spawn(move || drop((db, touched)));
        let diff = diff?;
        let kept = SealCache {
            parent: parent.hash(),
            attrs: attrs.clone(),
            diff: HashedStateDiff::default(),
            transactions: hashes,
            transaction_groups,
            receipt_groups,
            memo,
            post_block,
        };
        let requests_hash = if result.requests.is_empty() {
            EMPTY_REQUESTS_HASH
        } else {
            result.requests.requests_hash()
        };
        let header = Header {
            parent_hash: parent.hash(),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: attrs.fee_recipient,
            state_root: diff.state_root,
            transactions_root,
            receipts_root,
            logs_bloom,
            difficulty: U256::ZERO,
            number: parent.number + 1,
            gas_limit: attrs.gas_limit,
            gas_used: result.gas_used,
            timestamp: attrs.timestamp,
            extra_data: attrs.extra_data,
            mix_hash: attrs.prev_randao,
            nonce: Default::default(),
            base_fee_per_gas: Some(base_fee),
            withdrawals_root: Some(calculate_withdrawals_root(&attrs.withdrawals)),
            blob_gas_used: Some(result.blob_gas_used),
            excess_blob_gas: Some(excess_blob_gas),
            parent_beacon_block_root: Some(attrs.parent_beacon_block_root),
            requests_hash: Some(requests_hash),
            // Amsterdam fields: not active on this chain.
            block_access_list_hash: None,
            slot_number: None,
        };
        let hash = header.hash_slow();
        let block = alloy_consensus::Block {
            header,
            body: alloy_consensus::BlockBody {
                transactions: envelopes,
                ommers: Vec::new(),
                withdrawals: Some(attrs.withdrawals.into()),
            },
        };
        let executed = ExecutedBlock {
            block: StoredBlock {
                hash,
                block,
                senders,
            },
            receipts: result.receipts,
            diff,
        };
        Ok((executed, kept))
    }
}

/// How many transactions a block of `gas_limit` can hold (each needs at least 21,000 gas),
/// capped so a devnet's huge gas limit does not reserve gigabytes.
fn tx_room(gas_limit: u64) -> usize {
    const MAX_ROOM: u64 = 1 << 14;
    (gas_limit / 21_000).min(MAX_ROOM) as usize
}

/// Sorts an execution error into "this transaction is rejected" or "this attempt is over".
fn rejection(err: BlockExecutionError) -> Result<TxRejected, BlockError> {
    match err {
        BlockExecutionError::Validation(BlockValidationError::InvalidTx { error, .. }) => {
            match error.as_invalid_tx_err() {
                Some(invalid) => Ok(TxRejected::Invalid(invalid.clone())),
                None => Err(BlockError::Execution(BlockExecutionError::msg(error))),
            }
        }
        BlockExecutionError::Validation(
            BlockValidationError::TransactionGasLimitMoreThanAvailableBlockGas {
                transaction_gas_limit,
                block_available_gas,
            },
        ) => Ok(TxRejected::BlockGasExhausted {
            gas_limit: transaction_gas_limit,
            available: block_available_gas,
        }),
        other => Err(BlockError::Execution(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_room_is_what_the_gas_limit_holds_of_the_cheapest_transactions_capped() {
        assert_eq!(tx_room(60_000_000), 2_857);
        assert_eq!(tx_room(20_999), 0);
        // A devnet may set any gas limit: the room stays small enough to reserve.
        assert_eq!(tx_room(u64::MAX), 1 << 14);
    }
}
