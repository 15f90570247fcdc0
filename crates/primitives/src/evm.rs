//! The EVM every cobuild crate executes with: alloy-evm's Ethereum EVM, made cheaply.

use alloy_evm::{Database, EvmEnv, eth::EthEvm, precompiles::PrecompilesMap};
use revm::{
    Context, MainContext,
    context::{Evm as RevmEvm, FrameStack},
    handler::instructions::EthInstructions,
    inspector::NoOpInspector,
    precompile::{PrecompileSpecId, Precompiles},
};

/// The EVM `EthEvmFactory::create_evm` makes over `db` in `env` (the same type, precompiles and
/// instructions), except that its call frames are made as calls reach them.
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
    let inner = RevmEvm {
        ctx,
        inspector: NoOpInspector,
        instruction: EthInstructions::new_mainnet_with_spec(spec),
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
}
