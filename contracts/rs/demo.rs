//! The demo DeFi state: two tokens and a pool between them, deployed by signed transactions.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolValue};

use crate::{IPool, IToken, pool_creation_code, token_creation_code};

/// What the demo deployment needs to know about the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoParams {
    /// Chain id to sign for.
    pub chain_id: u64,
    /// The deployer's next nonce.
    pub nonce: u64,
    /// Max fee per gas of the deployment transactions.
    pub max_fee_per_gas: u128,
    /// Whole tokens of each kind minted to the deployer; [`DemoDeployment::LIQUIDITY`] of
    /// each go to the pool.
    pub supply: u128,
}

impl DemoParams {
    /// The devnet's supply of each demo token.
    pub const DEVNET_SUPPLY: u128 = 1_000_000;
}

/// The demo contracts and the transactions that deploy and fund them, in order.
#[derive(Debug, Clone)]
pub struct DemoDeployment {
    /// First token ("Demo A", the whole supply to the deployer).
    pub token_a: Address,
    /// Second token ("Demo B").
    pub token_b: Address,
    /// The A/B pool, seeded with [`Self::LIQUIDITY`] of each.
    pub pool: Address,
    /// Signed transactions: deploy A, deploy B, deploy pool, approve twice, add liquidity.
    pub transactions: Vec<Recovered<TxEnvelope>>,
}

/// 10^18: one whole token.
const UNIT: u128 = 1_000_000_000_000_000_000;

impl DemoDeployment {
    /// Whole tokens of each kind the deployment puts in the pool.
    pub const LIQUIDITY: u128 = 100_000;

    /// Builds and signs the deployment from `deployer`.
    pub fn new(deployer: &PrivateKeySigner, params: DemoParams) -> Self {
        let from = deployer.address();
        let n = params.nonce;
        let (token_a, token_b, pool) = (from.create(n), from.create(n + 1), from.create(n + 2));
        let supply = U256::from(params.supply) * U256::from(UNIT);
        let liquidity = U256::from(Self::LIQUIDITY * UNIT);
        let deploy_token = |name: &str, symbol: &str| {
            let mut code = token_creation_code().to_vec();
            code.extend((name.to_string(), symbol.to_string(), supply).abi_encode_params());
            code
        };
        let mut pool_code = pool_creation_code().to_vec();
        pool_code.extend((token_a, token_b).abi_encode_params());
        let approve = IToken::approveCall {
            spender: pool,
            value: U256::MAX,
        }
        .abi_encode();
        let calls: [(TxKind, Vec<u8>, u64); 6] = [
            (TxKind::Create, deploy_token("Demo A", "DMA"), 1_500_000),
            (TxKind::Create, deploy_token("Demo B", "DMB"), 1_500_000),
            (TxKind::Create, pool_code, 2_000_000),
            (TxKind::Call(token_a), approve.clone(), 100_000),
            (TxKind::Call(token_b), approve, 100_000),
            (
                TxKind::Call(pool),
                IPool::addLiquidityCall {
                    amount0: liquidity,
                    amount1: liquidity,
                }
                .abi_encode(),
                300_000,
            ),
        ];
        let transactions = calls
            .into_iter()
            .enumerate()
            .map(|(i, (to, input, gas_limit))| {
                sign(
                    deployer,
                    TxEip1559 {
                        chain_id: params.chain_id,
                        nonce: n + i as u64,
                        gas_limit,
                        max_fee_per_gas: params.max_fee_per_gas,
                        max_priority_fee_per_gas: 1_000_000_000,
                        to,
                        value: U256::ZERO,
                        access_list: Default::default(),
                        input: Bytes::from(input),
                    },
                )
            })
            .collect();
        Self {
            token_a,
            token_b,
            pool,
            transactions,
        }
    }
}

fn sign(signer: &PrivateKeySigner, tx: TxEip1559) -> Recovered<TxEnvelope> {
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .expect("a local key signs any 32-byte hash");
    Recovered::new_unchecked(tx.into_signed(signature).into(), signer.address())
}
