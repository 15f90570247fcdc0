//! Committing an order as the simulator ran it, without executing it again.
//!
//! The simulator runs every order on the parent state; a builder then commits orders one after
//! another into its block. Execution is deterministic: a transaction that reads the same values
//! in the same block environment does the same thing. So when every account and storage slot an
//! order read is, in the block so far, what it was when the order was simulated, the simulated
//! result is the block's result, and committing it is exact (receipts, state, roots).
//!
//! The coinbase is the exception every transaction touches: its balance grows with each fee, so
//! it never matches the simulated value. It enters as a delta instead (the block's balance plus
//! what the simulated transaction added), which is right as long as execution never depended on
//! that balance. [`CoinbaseWatch`] watches the simulation for what can: `BALANCE` or
//! `EXTCODEHASH` of the coinbase, `SELFBALANCE` in code running at it (any of these makes the
//! order unreplayable), and a value call or self-destruct to it, whose gas depends on whether the
//! coinbase is empty: such a transaction replays only where the coinbase is as empty, or not, as
//! it was in the simulation. Its code must be the simulation's too. A transaction that changes the
//! coinbase's nonce or code (an authorization signed by its key) is never replayed.
//!
//! Only orders whose every transaction ran are replayable: a dropped transaction's fate depends on
//! state its discarded run read, which is not recorded.

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_evm::{Evm as _, eth::EthTxResult};
use alloy_primitives::{Address, B256, U256, map::HashMap};
use revm::{
    DatabaseRef, Inspector,
    bytecode::opcode,
    context::BlockEnv,
    context_interface::result::{HaltReason, ResultAndState},
    interpreter::{Interpreter, interpreter::EthInterpreter, interpreter_types::Jumps},
    state::AccountInfo,
};

use super::{BlockBuilder, BlockError, BundleOutcome, BundleRejected, BundleTrial};

/// An inspector for a simulation: notes what execution learnt of the coinbase beyond what is the
/// same in the simulation and the block.
#[derive(Debug, Clone, Copy)]
pub struct CoinbaseWatch {
    coinbase: Address,
    read_balance: bool,
    calls: bool,
}

impl CoinbaseWatch {
    /// Watches `coinbase`.
    pub const fn new(coinbase: Address) -> Self {
        Self {
            coinbase,
            read_balance: false,
            calls: false,
        }
    }

    /// Whether execution read the coinbase's balance (or its code hash, which is zero while the
    /// coinbase is empty).
    pub const fn read_balance(&self) -> bool {
        self.read_balance
    }

    /// Whether execution called the coinbase or self-destructed to it: what that costs depends
    /// on whether the coinbase is empty.
    pub const fn calls(&self) -> bool {
        self.calls
    }

    fn is_coinbase(&self, interp: &Interpreter<EthInterpreter>, depth: usize) -> bool {
        interp
            .stack
            .peek(depth)
            .is_ok_and(|word| Address::from_word(B256::from(word)) == self.coinbase)
    }
}

impl<CTX> Inspector<CTX, EthInterpreter> for CoinbaseWatch {
    // Before the instruction, so a call that runs out of gas before it starts is seen too.
    #[inline]
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        match interp.bytecode.opcode() {
            opcode::BALANCE | opcode::EXTCODEHASH => {
                self.read_balance |= self.is_coinbase(interp, 0);
            }
            opcode::SELFBALANCE => {
                self.read_balance |= interp.input.target_address == self.coinbase;
            }
            opcode::CALL | opcode::CALLCODE => self.calls |= self.is_coinbase(interp, 1),
            opcode::SELFDESTRUCT => self.calls |= self.is_coinbase(interp, 0),
            _ => {}
        }
    }
}

/// An account as a transaction found it: `None` when it did not exist.
type AccountRead = Option<(U256, u64, B256)>;

fn account_read(info: Option<&AccountInfo>) -> AccountRead {
    info.map(|a| (a.balance, a.nonce, a.code_hash))
}

/// One simulated transaction: its result and what it gave the coinbase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TxReplay {
    result: ResultAndState<HaltReason>,
    coinbase_gain: U256,
    /// Whether the coinbase was empty when it ran, if that mattered (it called the coinbase).
    coinbase_empty: Option<bool>,
}

/// An order as simulated, with the state it read, ready to commit into a block that agrees with
/// that state ([`BlockBuilder::replay_if`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    block: BlockEnv,
    /// The coinbase's code hash in the simulation.
    coinbase_code: B256,
    /// Each account the order read, as it was when the order first read it.
    accounts: Vec<(Address, AccountRead)>,
    /// Each storage slot the order read, as it was when the order first read it.
    slots: Vec<(Address, U256, U256)>,
    txs: Vec<TxReplay>,
}

impl Replay {
    /// How many accounts and slots a block must agree on.
    pub fn reads(&self) -> usize {
        self.accounts.len() + self.slots.len()
    }
}

/// Records an order's simulation, transaction by transaction, into a [`Replay`].
#[derive(Debug)]
pub struct ReplayRecorder {
    block: BlockEnv,
    coinbase_code: Option<B256>,
    accounts: HashMap<Address, AccountRead>,
    slots: HashMap<(Address, U256), U256>,
    txs: Vec<TxReplay>,
    void: bool,
    ran_code: bool,
}

impl ReplayRecorder {
    /// Starts recording an order simulated in `block`.
    pub fn new(block: &BlockEnv) -> Self {
        Self {
            block: block.clone(),
            coinbase_code: None,
            accounts: HashMap::default(),
            slots: HashMap::default(),
            txs: Vec::new(),
            void: false,
            ran_code: false,
        }
    }

    /// Adds a transaction's `result`, simulated on `pre` (the state before it) under `watch`.
    /// The first read of each account and slot is the one that counts: a later transaction of
    /// the order reads what an earlier one left, which the replay reproduces.
    pub fn record<DB: DatabaseRef>(
        &mut self,
        pre: &DB,
        result: &ResultAndState<HaltReason>,
        watch: &CoinbaseWatch,
    ) -> Result<(), DB::Error> {
        if self.void {
            return Ok(());
        }
        let coinbase = self.block.beneficiary;
        if watch.read_balance() {
            self.void = true;
            return Ok(());
        }
        let before = pre.basic_ref(coinbase)?;
        let coinbase_empty = watch
            .calls()
            .then(|| before.as_ref().is_none_or(AccountInfo::is_empty));
        let before = before.unwrap_or_default();
        self.coinbase_code.get_or_insert(before.code_hash);
        let mut coinbase_gain = U256::ZERO;
        for (address, account) in &result.state {
            if *address == coinbase {
                // A fee or payment only adds to the balance; anything else is not a delta.
                if account.info.nonce != before.nonce
                    || account.info.code_hash != before.code_hash
                    || account.info.balance < before.balance
                    || account.is_selfdestructed()
                    || !account.storage.is_empty()
                {
                    self.void = true;
                    return Ok(());
                }
                coinbase_gain = account.info.balance - before.balance;
                continue;
            }
            self.ran_code |= !account.info.is_empty_code_hash() || account.is_created();
            if !self.accounts.contains_key(address) {
                let before = pre.basic_ref(*address)?;
                self.accounts
                    .insert(*address, account_read(before.as_ref()));
            }
            for (slot, value) in &account.storage {
                self.slots
                    .entry((*address, *slot))
                    .or_insert(value.original_value);
            }
        }
        self.txs.push(TxReplay {
            result: result.clone(),
            coinbase_gain,
            coinbase_empty,
        });
        Ok(())
    }

    /// Notes that a transaction of the order was left out: the order cannot be replayed.
    pub fn left_out(&mut self) {
        self.void = true;
    }

    /// The replay, unless something made the order unreplayable, or it is not worth keeping: an
    /// order that ran no code (plain transfers, no contract called or created) executes about
    /// as fast as its replay is checked.
    pub fn finish(self) -> Option<Replay> {
        let coinbase_code = self.coinbase_code?;
        if self.void || self.txs.is_empty() || !self.ran_code {
            return None;
        }
        // Sorted, so the same order simulated twice records the same replay.
        let mut accounts: Vec<_> = self.accounts.into_iter().collect();
        accounts.sort_unstable_by_key(|(address, _)| *address);
        let mut slots: Vec<_> = self
            .slots
            .into_iter()
            .map(|((address, slot), value)| (address, slot, value))
            .collect();
        slots.sort_unstable();
        Some(Replay {
            block: self.block,
            coinbase_code,
            accounts,
            slots,
            txs: self.txs,
        })
    }
}

impl BlockBuilder {
    /// Commits the order whose transactions are `txs` from its simulation `replay`, if the block
    /// so far agrees with everything the order read and `accept` approves; the block is unchanged
    /// otherwise.
    ///
    /// `None` means the replay does not apply here (the block changed something the order read,
    /// or a gas or blob limit needs the executor's own check): execute the order instead, which
    /// decides as it always would.
    pub fn replay_if(
        &mut self,
        txs: &[Recovered<TxEnvelope>],
        replay: &Replay,
        accept: impl FnOnce(&BundleTrial) -> bool,
    ) -> Result<Option<Result<BundleOutcome, BundleRejected>>, BlockError> {
        if !self.replayable(txs, replay)? {
            return Ok(None);
        }
        let trial = BundleTrial {
            coinbase_profit: replay.txs.iter().map(|tx| tx.coinbase_gain).sum(),
            gas_used: replay
                .txs
                .iter()
                .map(|tx| tx.result.result.tx_gas_used())
                .sum(),
        };
        if !accept(&trial) {
            return Ok(Some(Err(BundleRejected::Refused)));
        }
        let coinbase = self.coinbase();
        let mut included = Vec::with_capacity(txs.len());
        let mut gas_used = 0;
        for (tx, simulated) in txs.iter().zip(&replay.txs) {
            let mut result = simulated.result.clone();
            if let Some(account) = result.state.get_mut(&coinbase) {
                let mut info = self.load_account(coinbase)?.unwrap_or_default();
                info.balance = info.balance.saturating_add(simulated.coinbase_gain);
                account.info = info;
            }
            let output = EthTxResult {
                result,
                blob_gas_used: 0,
                tx_type: tx.inner().tx_type(),
            };
            included.push(*tx.tx_hash());
            gas_used += self.commit_output(tx.clone(), output);
        }
        Ok(Some(Ok(BundleOutcome {
            included,
            gas_used,
            coinbase_profit: trial.coinbase_profit,
        })))
    }

    /// Whether `replay` is what executing `txs` on the block so far would do. Loads what it
    /// checks into the block's cache, as executing would: the commit then finds every account
    /// as the block has it, whatever the simulation's own copy says of its past.
    fn replayable(
        &mut self,
        txs: &[Recovered<TxEnvelope>],
        replay: &Replay,
    ) -> Result<bool, BlockError> {
        if txs.len() != replay.txs.len() || *self.executor_evm().block() != replay.block {
            return Ok(false);
        }
        // Blob transactions and the gas limit are left to the executor's checks.
        if txs.iter().any(|tx| tx.inner().blob_gas_used().is_some()) {
            return Ok(false);
        }
        let gas_limit = txs
            .iter()
            .try_fold(0u64, |sum, tx| sum.checked_add(tx.inner().gas_limit()));
        if gas_limit.is_none_or(|limit| limit > self.gas_left()) {
            return Ok(false);
        }
        let coinbase = self.load_account(self.coinbase())?.unwrap_or_default();
        if coinbase.code_hash != replay.coinbase_code {
            return Ok(false);
        }
        // The coinbase's balance as each transaction finds it, for those whose gas depends on
        // whether it is empty.
        let mut balance = coinbase.balance;
        for tx in &replay.txs {
            if let Some(empty) = tx.coinbase_empty {
                let now = balance.is_zero() && coinbase.nonce == 0 && coinbase.is_empty_code_hash();
                if now != empty {
                    return Ok(false);
                }
            }
            balance = balance.saturating_add(tx.coinbase_gain);
        }
        // Slots first: where orders collide, it is mostly over a contract's storage (a pool's
        // reserves), so a replay that does not apply is found out sooner.
        for (address, slot, value) in &replay.slots {
            if self.load_storage(*address, *slot)? != *value {
                return Ok(false);
            }
        }
        for (address, read) in &replay.accounts {
            if account_read(self.load_account(*address)?.as_ref()) != *read {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
