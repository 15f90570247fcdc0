//! The chain a workload runs on: a genesis funding every sender with ETH, then setup blocks that
//! deploy the demo tokens and pool, hand out tokens and approve the pool.
//!
//! The setup transactions are kept block by block, so the anvil baseline can replay exactly the
//! same history before it mines the same pending transactions.

use std::{path::Path, sync::Arc};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use cobuild_chain::{BlockAttributes, Chain, Genesis, GenesisAccount, TxRejected, dev_signers};
use cobuild_contracts::{DemoDeployment, DemoParams, IToken};
use cobuild_primitives::{ChainSpec, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};

use super::WorkloadError;

/// 10^18: one whole token, one ether.
pub(crate) const UNIT: u128 = 1_000_000_000_000_000_000;
/// One gwei.
pub(crate) const GWEI: u128 = 1_000_000_000;
/// Fee cap of every workload transaction: far above any base fee the setup can reach.
pub(crate) const MAX_FEE: u128 = 100 * GWEI;
/// ETH each user starts with.
pub(crate) const USER_ETH: u128 = 100 * UNIT;
/// ETH each searcher starts with.
pub(crate) const SEARCHER_ETH: u128 = 10 * UNIT;
/// Tokens of each kind each user receives.
pub(crate) const USER_TOKENS: u128 = 200 * UNIT;
/// Gas limit of the setup token transfers and approvals.
const SETUP_CALL_GAS: u64 = 80_000;

/// Storage slots of the pool's reserves (`reserve0`, `reserve1`; the token addresses are
/// immutables and take no slot).
const RESERVE0_SLOT: u64 = 0;
const RESERVE1_SLOT: u64 = 1;

/// A deterministic key for the `index`-th account of `role`.
pub(crate) fn account_key(role: &str, index: usize) -> PrivateKeySigner {
    let secret = keccak256(format!("cobuild-bench/{role}/{index}"));
    PrivateKeySigner::from_bytes(&secret)
        .expect("a keccak output is a valid secp256k1 key but with negligible probability")
}

/// The key of the builder's coinbase in every workload.
pub fn coinbase_key() -> PrivateKeySigner {
    account_key("coinbase", 0)
}

/// Signs an EIP-1559 transaction on the devnet chain id.
pub(crate) fn sign(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: U256,
    input: Bytes,
    gas_limit: u64,
    tip: u128,
) -> Result<Recovered<TxEnvelope>, WorkloadError> {
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: MAX_FEE,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input,
    };
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .map_err(|e| WorkloadError::Sign(e.to_string()))?;
    Ok(Recovered::new_unchecked(
        tx.into_signed(signature).into(),
        signer.address(),
    ))
}

/// Who receives which token at setup.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The account.
    pub(crate) signer: PrivateKeySigner,
    /// ETH at genesis.
    pub(crate) eth: u128,
    /// Token A, token B.
    pub(crate) tokens: [u128; 2],
}

/// The chain after setup.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) chain: Chain,
    pub(crate) demo: DemoDeployment,
    /// Accounts funded at genesis besides the development accounts, with their balance.
    pub(crate) funded: Vec<(Address, U256)>,
    /// The setup blocks' transactions, block by block.
    pub(crate) blocks: Vec<Vec<Recovered<TxEnvelope>>>,
    /// Pool reserves of token A and token B on the head.
    pub(crate) reserves: (U256, U256),
}

/// The deployer of the demo contracts: the last development account, as on the devnet.
fn deployer() -> PrivateKeySigner {
    dev_signers()
        .pop()
        .expect("the devnet has development accounts")
}

/// Attributes of the block after `chain`'s head, paying `fee_recipient`.
pub(crate) fn next_attrs(chain: &Chain, fee_recipient: Address) -> BlockAttributes {
    let head = chain.head();
    BlockAttributes {
        timestamp: head.timestamp + 12,
        fee_recipient,
        prev_randao: B256::repeat_byte(0x42),
        gas_limit: head.gas_limit,
        withdrawals: Vec::new(),
        parent_beacon_block_root: B256::repeat_byte(0x01),
        extra_data: Bytes::from_static(b"cobuild-bench"),
    }
}

/// Opens a chain in `dir` funding `grants`, deploys the demo contracts and hands out the
/// tokens, committing as many full setup blocks as that takes.
pub(crate) fn setup(dir: &Path, gas_limit: u64, grants: &[Grant]) -> Result<Setup, WorkloadError> {
    let mut genesis = Genesis::devnet(gas_limit, INITIAL_BASE_FEE);
    let mut funded = Vec::with_capacity(grants.len());
    for grant in grants {
        let balance = U256::from(grant.eth);
        genesis.accounts.insert(
            grant.signer.address(),
            GenesisAccount {
                balance,
                ..Default::default()
            },
        );
        funded.push((grant.signer.address(), balance));
    }
    // The devnet's supply when it covers the grants, so workloads that fit keep the devnet's
    // state; else enough for them, in whole tokens.
    let need = (0..2)
        .map(|t| grants.iter().map(|g| g.tokens[t]).sum::<u128>())
        .max()
        .unwrap_or(0);
    let supply = (need.div_ceil(UNIT) + DemoDeployment::LIQUIDITY).max(DemoParams::DEVNET_SUPPLY);
    let chain = Chain::open(
        &dir.join("chain.redb"),
        Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        &genesis,
    )?;

    let deployer = deployer();
    let demo = DemoDeployment::new(
        &deployer,
        DemoParams {
            chain_id: DEVNET_CHAIN_ID,
            nonce: 0,
            max_fee_per_gas: MAX_FEE,
            supply,
        },
    );
    let tokens = [demo.token_a, demo.token_b];
    let mut txs = demo.transactions.clone();
    let mut deployer_nonce = txs.len() as u64;
    for grant in grants {
        let to = grant.signer.address();
        for (token, amount) in tokens.iter().zip(grant.tokens) {
            if amount == 0 {
                continue;
            }
            let input = IToken::transferCall {
                to,
                value: U256::from(amount),
            }
            .abi_encode();
            txs.push(sign(
                &deployer,
                deployer_nonce,
                *token,
                U256::ZERO,
                input.into(),
                SETUP_CALL_GAS,
                GWEI,
            )?);
            deployer_nonce += 1;
        }
        let mut nonce = 0;
        for (token, amount) in tokens.iter().zip(grant.tokens) {
            if amount == 0 {
                continue;
            }
            let input = IToken::approveCall {
                spender: demo.pool,
                value: U256::MAX,
            }
            .abi_encode();
            txs.push(sign(
                &grant.signer,
                nonce,
                *token,
                U256::ZERO,
                input.into(),
                SETUP_CALL_GAS,
                GWEI,
            )?);
            nonce += 1;
        }
    }
    let blocks = commit_setup(&chain, txs)?;
    let (_, state) = chain.head_state()?;
    let reserves = (
        state.storage_at(demo.pool, U256::from(RESERVE0_SLOT))?,
        state.storage_at(demo.pool, U256::from(RESERVE1_SLOT))?,
    );
    if reserves.0.is_zero() || reserves.1.is_zero() {
        return Err(WorkloadError::Setup(
            "the demo pool has no reserves after setup".into(),
        ));
    }
    Ok(Setup {
        chain,
        demo,
        funded,
        blocks,
        reserves,
    })
}

/// Commits `txs` in order into as many blocks as their gas needs; every one must succeed.
fn commit_setup(
    chain: &Chain,
    txs: Vec<Recovered<TxEnvelope>>,
) -> Result<Vec<Vec<Recovered<TxEnvelope>>>, WorkloadError> {
    let fee_recipient = Address::repeat_byte(0xc0);
    let mut blocks = Vec::new();
    let mut builder = chain.builder(next_attrs(chain, fee_recipient))?;
    for tx in txs {
        let hash = *tx.tx_hash();
        let outcome = match builder.execute(tx.clone())? {
            Err(TxRejected::BlockGasExhausted { .. }) if !builder.transactions().is_empty() => {
                blocks.push(builder.transactions().to_vec());
                chain.commit(&builder.finish()?)?;
                builder = chain.builder(next_attrs(chain, fee_recipient))?;
                builder.execute(tx)?
            }
            other => other,
        };
        match outcome {
            Ok(outcome) if outcome.success => {}
            Ok(_) => return Err(WorkloadError::Setup(format!("setup tx {hash} reverted"))),
            Err(reason) => {
                return Err(WorkloadError::Setup(format!(
                    "setup tx {hash} rejected: {reason}"
                )));
            }
        }
    }
    if !builder.transactions().is_empty() {
        blocks.push(builder.transactions().to_vec());
        chain.commit(&builder.finish()?)?;
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use alloy_sol_types::SolValue;

    use super::*;

    #[test]
    fn test_grants_beyond_the_devnet_supply_are_minted() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Together more of token A than the devnet mints; each transfer reverts if the
        // deployer lacks it, which fails the setup.
        let grants: Vec<Grant> = (0..2)
            .map(|i| Grant {
                signer: account_key("test-whale", i),
                eth: UNIT,
                tokens: [600_000 * UNIT, UNIT],
            })
            .collect();
        let setup = setup(dir.path(), 30_000_000, &grants).expect("the setup succeeds");
        let (_, state) = setup.chain.head_state().expect("a head state");
        // `balanceOf` is the token's fourth slot.
        let slot = |holder: Address| {
            U256::from_be_bytes(keccak256((holder.into_word(), U256::from(3)).abi_encode()).0)
        };
        for grant in &grants {
            let balance = state
                .storage_at(setup.demo.token_a, slot(grant.signer.address()))
                .expect("a readable state");
            assert_eq!(balance, U256::from(600_000 * UNIT));
        }
    }
}
