//! The RPC server over a real devnet chain and pools, called over HTTP as clients call it:
//! private transactions, MEV-Share bundles and the per-IP budget.

mod blocks;
mod conformance;
mod filters;
mod history;
mod logs;
mod mev;
mod private;
mod replicate;
mod sim_budget;
mod spec;
mod ws;

use std::{net::SocketAddr, sync::Arc};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::{BlockAttributes, Chain, Genesis};
use cobuild_pool::{BundlePool, OrderLimit, PoolConfig, TxPool};
use cobuild_primitives::{ChainSpec, DEFAULT_GAS_LIMIT, DEVNET_CHAIN_ID, INITIAL_BASE_FEE};
use cobuild_rpc::{Bundles, Eth, OrderflowLimits, RpcConfig};
use serde_json::{Value, json};

const GWEI: u128 = 1_000_000_000;

/// A chain, its pools and the RPC server over them, on loopback.
struct Node {
    url: String,
    chain: Chain,
    txs: TxPool,
    bundles: BundlePool,
    _server: jsonrpsee::server::ServerHandle,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(limits: OrderflowLimits) -> Self {
        Self::start_with(limits, None)
    }

    /// A node whose RPC hands every accepted order to `hook` before answering.
    fn start_with(limits: OrderflowLimits, hook: Option<Arc<dyn cobuild_rpc::Replicate>>) -> Self {
        Self::start_configured(
            limits,
            hook,
            RpcConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))),
            |eth| eth,
        )
    }

    /// A node whose server has `config` (its address is ignored: loopback, any port) and
    /// whose eth API `eth_api` sets up.
    fn start_configured(
        limits: OrderflowLimits,
        hook: Option<Arc<dyn cobuild_rpc::Replicate>>,
        config: RpcConfig,
        eth_api: impl FnOnce(Eth) -> Eth,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = Chain::open(
            &dir.path().join("c.redb"),
            Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
            &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
        )
        .expect("chain");
        let limit = OrderLimit::new(1_000);
        let txs = TxPool::with_limit(chain.clone(), PoolConfig::default(), &limit);
        let bundles = BundlePool::with_limit(&limit);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut eth = eth_api(Eth::new(chain.clone(), txs.clone()));
        let mut api = Bundles::new(chain.clone(), txs.clone(), bundles.clone(), limits);
        if let Some(hook) = hook {
            eth = eth.with_replication(hook.clone());
            api = api.with_replication(hook);
        }
        let server = runtime
            .block_on(cobuild_rpc::start(
                RpcConfig {
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                    ..config
                },
                eth,
                api,
            ))
            .expect("server starts");
        Self {
            url: format!("http://{}", server.local_addr),
            chain,
            txs,
            bundles,
            _server: server.handle,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// A JSON-RPC call, signed as ethers-provider-bundle signs it when `auth` is given.
    fn call(&self, auth: Option<&PrivateKeySigner>, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        self.post(auth, &body)
    }

    /// Posts a raw body, signed by `auth` if given.
    fn post(&self, auth: Option<&PrivateKeySigner>, body: &str) -> Value {
        let header = auth.map(|auth| cobuild_test_utils::flashbots_header(auth, body.as_bytes()));
        let headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("X-Flashbots-Signature", h.as_str()))
            .collect();
        let (status, reply) = cobuild_test_utils::http_post(&self.url, body.as_bytes(), &headers);
        assert_eq!(status, 200, "{reply}");
        serde_json::from_str(&reply).expect("json-rpc reply")
    }

    /// Seals `n` empty blocks and tells the pools.
    fn seal_empty(&self, n: usize) {
        for _ in 0..n {
            self.seal(&[]);
        }
    }

    /// Seals a block of `txs` (each must be included) and tells the pools.
    fn seal(&self, txs: &[Bytes]) {
        let head = self.chain.head();
        let mut builder = self
            .chain
            .builder(BlockAttributes {
                timestamp: head.timestamp + 1,
                fee_recipient: Address::ZERO,
                prev_randao: B256::ZERO,
                gas_limit: head.gas_limit,
                withdrawals: Vec::new(),
                parent_beacon_block_root: B256::ZERO,
                extra_data: Bytes::new(),
            })
            .expect("builder");
        for raw in txs {
            let tx = TxEnvelope::decode_2718(&mut raw.as_ref()).expect("a signed transaction");
            let tx = tx.try_into_recovered().expect("a valid signature");
            builder.execute(tx).expect("executes").expect("included");
        }
        self.chain
            .commit(&builder.finish().expect("seal"))
            .expect("commit");
        let (head, state) = self.chain.head_state().expect("state");
        self.txs.on_block(&state);
        self.bundles.on_block(head.number);
    }
}

/// The Flashbots auth key of a test sender.
fn auth(byte: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(byte)).expect("key")
}

/// A signed transfer (or call, with `to` and `gas`) by dev account `account`, as raw bytes.
fn raw_tx(account: usize, nonce: u64, to: Address, gas: u64, tip_gwei: u128) -> Bytes {
    raw_tx_with_fee(account, nonce, to, gas, 50, tip_gwei)
}

/// [`raw_tx`] with a max fee of `max_fee_gwei`.
fn raw_tx_with_fee(
    account: usize,
    nonce: u64,
    to: Address,
    gas: u64,
    max_fee_gwei: u128,
    tip_gwei: u128,
) -> Bytes {
    let signer = &cobuild_chain::dev_signers()[account];
    let tx = TxEip1559 {
        chain_id: DEVNET_CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: max_fee_gwei * GWEI,
        max_priority_fee_per_gas: tip_gwei * GWEI,
        to: TxKind::Call(to),
        value: U256::from(1),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into()
}

fn hash_of(raw: &Bytes) -> B256 {
    alloy_primitives::keccak256(raw)
}

/// The error code of a reply, or a panic with the reply if it succeeded.
fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {reply}"))
}

#[test]
fn test_ip_budget_is_shared_by_every_sender_of_one_peer() {
    let node = Node::start(OrderflowLimits {
        ip_rate: 1,
        ip_burst: 3,
        ..OrderflowLimits::default()
    });
    let cancel = json!([{"replacementUuid": "nothing"}]);
    // Unsigned attempts spend the peer's budget too ...
    assert_eq!(
        error_code(&node.call(None, "eth_cancelBundle", cancel.clone())),
        -32600
    );
    // ... then two different senders take what is left ...
    for key in [1, 2] {
        let reply = node.call(Some(&auth(key)), "eth_cancelBundle", cancel.clone());
        assert!(reply.get("error").is_none(), "{reply}");
    }
    // ... and a third sender from the same address is refused at once.
    let refused = node.call(Some(&auth(3)), "eth_cancelBundle", cancel);
    assert_eq!(error_code(&refused), -32005, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("rate limit")),
        "{refused}"
    );
    // The unsigned eth methods are not metered.
    let reply = node.call(None, "eth_blockNumber", json!([]));
    assert_eq!(reply["result"], "0x0", "{reply}");
}

#[test]
fn test_raw_block_imports_into_another_replica_and_unknown_blocks_are_errors() {
    let node = Node::start(OrderflowLimits::default());
    let raw = raw_tx(0, 0, Address::repeat_byte(0xbe), 21_000, 2);
    let reply = node.call(None, "eth_sendRawTransaction", json!([raw]));
    assert!(reply.get("error").is_none(), "{reply}");
    // A block with the transaction.
    node.seal(&[raw]);

    let dir = tempfile::tempdir().expect("tempdir");
    let replica = Chain::open(
        &dir.path().join("r.redb"),
        Arc::new(ChainSpec::devnet(DEVNET_CHAIN_ID)),
        &Genesis::devnet(DEFAULT_GAS_LIMIT, INITIAL_BASE_FEE),
    )
    .expect("replica");
    for id in [json!("0x1"), json!("latest")] {
        let reply = node.call(None, "debug_getRawBlock", json!([id]));
        let hex = reply["result"].as_str().expect("raw block hex");
        let bytes = alloy_primitives::hex::decode(hex).expect("hex");
        let block: alloy_consensus::Block<TxEnvelope> =
            alloy_rlp::Decodable::decode(&mut bytes.as_slice()).expect("rlp block");
        assert_eq!(block.body.transactions.len(), 1);
        if replica.head().number == 0 {
            assert_eq!(
                replica.import(block).expect("imports"),
                node.chain.head().hash()
            );
        }
    }
    let missing = node.call(None, "debug_getRawBlock", json!(["0x9"]));
    assert_eq!(error_code(&missing), -32000, "{missing}");
}
