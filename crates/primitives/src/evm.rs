//! The EVM every cobuild crate executes with: alloy-evm's Ethereum EVM, made cheaply.

use std::cell::RefCell;

use alloy_evm::{Database, EvmEnv, eth::EthEvm, precompiles::PrecompilesMap};
use alloy_primitives::{Address, U256};
use revm::{
    Context, MainContext,
    bytecode::opcode::{BALANCE, CALL, EXTCODEHASH, SELFBALANCE, SELFDESTRUCT},
    context::{Evm as RevmEvm, FrameStack},
    context_interface::Host,
    handler::instructions::EthInstructions,
    inspector::NoOpInspector,
    interpreter::{
        Instruction, InstructionContext, InstructionExecResult, Interpreter, InterpreterTypes,
        instructions::{contract, host, utility::IntoAddress},
        interpreter_types::{InputsTr, StackTr},
    },
    precompile::{PrecompileSpecId, Precompiles},
};

thread_local! {
    /// Accounts whose balance a `BALANCE` or `SELFBALANCE` on this thread read, while watched.
    static BALANCES_READ: RefCell<Option<Vec<Address>>> = const { RefCell::new(None) };
}

/// Notes, on this thread, the accounts whose balance code run by an EVM from [`eth_evm`]
/// depends on, from [`start`](Self::start) until [`finish`](Self::finish) or drop: those it
/// reads (`BALANCE`, `SELFBALANCE`), and those whose emptiness (no balance, nonce or code)
/// decides a result or a gas cost (`EXTCODEHASH`, `CALL` with value, `SELFDESTRUCT`'s
/// beneficiary). Threads nobody watches note nothing.
///
/// A builder runs many orders on one block, and most of them change balances the others only
/// check: every order pays the coinbase, and a transfer's sender only needs to hold at least
/// what it sends. Code that never read an account's balance did the same thing whatever that
/// balance was, as long as such checks still pass, so a simulated result can be committed to
/// a block where the balance differs (the simulator's replay). revm's host offers no channel
/// out of an instruction, so the list is thread-local: an EVM runs on the thread that calls it.
#[derive(Debug)]
#[must_use = "watching stops when the watch is dropped"]
pub struct BalanceReads(());

impl BalanceReads {
    /// Starts watching this thread, afresh.
    pub fn start() -> Self {
        BALANCES_READ.with(|read| *read.borrow_mut() = Some(Vec::new()));
        Self(())
    }

    /// The accounts noted since [`start`](Self::start), in the order read, repeats included.
    pub fn finish(self) -> Vec<Address> {
        BALANCES_READ.with(|read| read.borrow_mut().take().unwrap_or_default())
    }
}

impl Drop for BalanceReads {
    fn drop(&mut self) {
        BALANCES_READ.with(|read| *read.borrow_mut() = None);
    }
}

fn note_balance_read(address: Address) {
    BALANCES_READ.with(|read| {
        if let Some(read) = read.borrow_mut().as_mut() {
            read.push(address);
        }
    });
}

/// The stack's `n`th word from the top (0: the top), if it is that deep.
fn word<W: InterpreterTypes>(interpreter: &Interpreter<W>, n: usize) -> Option<U256> {
    let data = interpreter.stack.data();
    data.len().checked_sub(n + 1).map(|i| data[i])
}

/// `BALANCE`, noting the account before revm's own instruction runs.
fn balance_noted<W: InterpreterTypes, H: Host + ?Sized>(
    context: InstructionContext<'_, H, W>,
) -> InstructionExecResult {
    if let Some(address) = word(context.interpreter, 0) {
        note_balance_read(address.into_address());
    }
    host::balance(context)
}

/// `SELFBALANCE`, noting the account before revm's own instruction runs.
fn selfbalance_noted<W: InterpreterTypes, H: Host + ?Sized>(
    context: InstructionContext<'_, H, W>,
) -> InstructionExecResult {
    note_balance_read(context.interpreter.input.target_address());
    host::selfbalance(context)
}

/// `EXTCODEHASH`, which tells an empty account (zero) from one with a balance or a nonce.
fn extcodehash_noted<W: InterpreterTypes, H: Host + ?Sized>(
    context: InstructionContext<'_, H, W>,
) -> InstructionExecResult {
    if let Some(address) = word(context.interpreter, 0) {
        note_balance_read(address.into_address());
    }
    host::extcodehash(context)
}

/// `CALL`, whose value sent to an empty account costs the gas of a new one.
fn call_noted<W: InterpreterTypes, H: Host + ?Sized>(
    context: InstructionContext<'_, H, W>,
) -> InstructionExecResult {
    // gas, address, value, ...
    if let (Some(address), Some(value)) =
        (word(context.interpreter, 1), word(context.interpreter, 2))
        && !value.is_zero()
    {
        note_balance_read(address.into_address());
    }
    contract::call::<CALL, W, H>(context)
}

/// `SELFDESTRUCT`, which costs the gas of a new account when its beneficiary is empty.
fn selfdestruct_noted<W: InterpreterTypes, H: Host + ?Sized>(
    context: InstructionContext<'_, H, W>,
) -> InstructionExecResult {
    if let Some(address) = word(context.interpreter, 0) {
        note_balance_read(address.into_address());
    }
    host::selfdestruct(context)
}

/// The EVM `EthEvmFactory::create_evm` makes over `db` in `env` (the same type, precompiles and
/// instructions), except that its call frames are made as calls reach them and the opcodes whose
/// outcome depends on an account's balance note that account ([`BalanceReads`]).
///
/// revm's builders make eight frames up front, each with a 32 KiB operand stack. Simulation and
/// bundle dry runs make an EVM per order and most orders call one or two frames deep, so making
/// and dropping the other six was about a tenth of simulating an order.
pub fn eth_evm<DB: Database>(db: DB, env: EvmEnv) -> EthEvm<DB, NoOpInspector, PrecompilesMap> {
    let spec = env.cfg_env.spec;
    let precompiles =
        PrecompilesMap::from_static(Precompiles::new(PrecompileSpecId::from_spec_id(spec)));
    let ctx = Context::mainnet()
        .with_block(env.block_env)
        .with_cfg(env.cfg_env)
        .with_db(db);
    let mut instruction = EthInstructions::new_mainnet_with_spec(spec);
    let table = instruction.instruction_table_mut();
    table[BALANCE as usize] = Instruction::new(balance_noted);
    table[SELFBALANCE as usize] = Instruction::new(selfbalance_noted);
    table[EXTCODEHASH as usize] = Instruction::new(extcodehash_noted);
    table[CALL as usize] = Instruction::new(call_noted);
    table[SELFDESTRUCT as usize] = Instruction::new(selfdestruct_noted);
    let inner = RevmEvm {
        ctx,
        inspector: NoOpInspector,
        instruction,
        precompiles,
        frame_stack: FrameStack::new(),
    };
    EthEvm::new(inner, false)
}

#[cfg(test)]
mod tests {
    use alloy_evm::{Evm, EvmFactory, eth::EthEvmFactory};
    use alloy_primitives::{Address, Bytes, TxKind, U256};
    use revm::{
        context::TxEnv,
        database::{CacheDB, EmptyDB},
        primitives::hardfork::SpecId,
        state::{AccountInfo, Bytecode},
    };

    use super::*;

    /// A contract that calls itself as many frames deep as its calldata says, each frame adding
    /// one to slot 0 on the way out: deeper than the eight frames revm would have made up front.
    fn recursive_db(to: Address, caller: Address) -> CacheDB<EmptyDB> {
        let code = alloy_primitives::hex::decode(concat!(
            "600035",                         // PUSH1 0 CALLDATALOAD: d, the depth left
            "80601d57",                       // DUP1 PUSH1 0x1d JUMPI: recurse while d != 0
            "50",                             // POP
            "6001600055",                     // SSTORE(0, 1)
            "00",                             // STOP
            "000000000000000000000000000000", // up to 0x1d
            "5b",                             // JUMPDEST
            "600190036000",
            "52", // MSTORE(0, d - 1)
            "60006000602060006000",
            "305af150",           // CALL(gas, self, 0, 0, 32, 0, 0) POP
            "600054600101600055", // SSTORE(0, SLOAD(0) + 1)
            "00",
        ))
        .expect("hex");
        let code = Bytecode::new_raw(code.into());
        let mut db = CacheDB::new(EmptyDB::default());
        db.insert_account_info(
            to,
            AccountInfo {
                code_hash: code.hash_slow(),
                code: Some(code),
                ..Default::default()
            },
        );
        db.insert_account_info(
            caller,
            AccountInfo {
                balance: U256::from(10u128.pow(18)),
                ..Default::default()
            },
        );
        db
    }

    #[test]
    fn test_the_lean_evm_runs_a_call_stack_deeper_than_revms_eight_prepared_frames_as_the_factorys_does()
     {
        let to = Address::repeat_byte(0x11);
        let caller = Address::repeat_byte(0x22);
        let mut env: EvmEnv = EvmEnv::default();
        env.cfg_env.spec = SpecId::PRAGUE;
        env.cfg_env.disable_nonce_check = true;
        env.block_env.gas_limit = 30_000_000;
        let tx = TxEnv {
            caller,
            kind: TxKind::Call(to),
            gas_limit: 5_000_000,
            data: Bytes::from(U256::from(20).to_be_bytes::<32>().to_vec()),
            ..Default::default()
        };
        let lean = eth_evm(recursive_db(to, caller), env.clone())
            .transact(tx.clone())
            .expect("runs");
        let factory = EthEvmFactory::default()
            .create_evm(recursive_db(to, caller), env)
            .transact(tx)
            .expect("runs");
        assert!(lean.result.is_success(), "{:?}", lean.result);
        let depth = lean.state[&to].storage[&U256::ZERO].present_value;
        assert_eq!(depth, U256::from(21), "every frame down to the last ran");
        assert_eq!(lean.result, factory.result);
        assert_eq!(lean.state, factory.state);
    }

    #[test]
    fn test_a_watch_notes_the_accounts_whose_balance_the_code_depends_on() {
        let to = Address::repeat_byte(0x11);
        let caller = Address::repeat_byte(0x22);
        let coinbase = Address::repeat_byte(0xcb);
        let probed = Address::repeat_byte(0x33);
        let paid = Address::repeat_byte(0x44);
        let mut code = vec![0x41, 0x31, 0x50]; // COINBASE BALANCE POP
        code.push(0x73); // PUSH20 probed EXTCODEHASH POP
        code.extend_from_slice(probed.as_slice());
        code.extend_from_slice(&[0x3f, 0x50]);
        code.extend_from_slice(&[0x60, 0, 0x60, 0, 0x60, 0, 0x60, 0, 0x60, 1]); // out, in, value 1
        code.push(0x73); // PUSH20 paid GAS CALL POP
        code.extend_from_slice(paid.as_slice());
        code.extend_from_slice(&[0x5a, 0xf1, 0x50]);
        code.extend_from_slice(&[0x47, 0x50, 0x00]); // SELFBALANCE POP STOP
        let code = Bytecode::new_raw(code.into());
        let mut db = CacheDB::new(EmptyDB::default());
        db.insert_account_info(
            to,
            AccountInfo {
                balance: U256::from(10),
                code_hash: code.hash_slow(),
                code: Some(code),
                ..Default::default()
            },
        );
        db.insert_account_info(
            caller,
            AccountInfo {
                balance: U256::from(10u128.pow(18)),
                ..Default::default()
            },
        );
        let mut env: EvmEnv = EvmEnv::default();
        env.cfg_env.spec = SpecId::PRAGUE;
        env.block_env.gas_limit = 30_000_000;
        env.block_env.beneficiary = coinbase;
        let tx = TxEnv {
            caller,
            kind: TxKind::Call(to),
            gas_limit: 1_000_000,
            ..Default::default()
        };
        let mut evm = eth_evm(db, env);
        // Unwatched, nothing is noted.
        let unwatched = evm.transact(tx.clone()).expect("runs");
        assert!(unwatched.result.is_success(), "{:?}", unwatched.result);
        assert_eq!(BalanceReads::start().finish(), Vec::<Address>::new());

        let watch = BalanceReads::start();
        let watched = evm.transact(tx).expect("runs");
        assert!(watched.result.is_success());
        assert_eq!(watch.finish(), vec![coinbase, probed, paid, to]);
        // The notes are a side channel: the results are revm's own.
        assert_eq!(watched.result, unwatched.result);
    }
}
