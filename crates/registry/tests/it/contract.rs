//! The contract registry against real ELs: `Registry.sol` deployed on anvil (pinned 1.7.1) and
//! on the embedded devnet chain, changed by signed transactions and read back through
//! `ContractRegistry`, as `cobuild registry` and a running node use it.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes};
use alloy_signer_local::PrivateKeySigner;
use cobuild_node::devnet::{Devnet, DevnetConfig, default_builder_key};
use cobuild_registry::{
    Member, NodeKeys, Registry,
    contract::{
        ContractConfig, ContractError, ContractRegistry, MemberSpec, Refusal, RegistryWriter,
        read_members,
    },
};
use cobuild_test_utils::Anvil;

/// A member with fresh, valid keys (ed25519 node key, BLS key on the curve).
fn spec(port: u16) -> MemberSpec {
    let keys = NodeKeys::generate().expect("keys");
    keys.public()
        .member(0, format!("127.0.0.1:{port}"), None)
        .into()
}

/// The member the registry should list for `spec` under `id`.
fn member(id: u32, spec: &MemberSpec) -> Member {
    Member {
        id,
        address: spec.address.clone(),
        node_key: spec.node_key,
        bls_key: spec.bls_key.clone(),
        attestation: spec.attestation,
    }
}

/// Development accounts 0 (the owner) and 1 (anyone else), funded on anvil and the devnet.
fn accounts() -> (PrivateKeySigner, PrivateKeySigner) {
    let signers = cobuild_chain::dev_signers();
    (signers[0].clone(), signers[1].clone())
}

/// A config that only refreshes when asked, so each step sees exactly its own change.
fn on_demand(rpc_url: &str, address: Address) -> ContractConfig {
    ContractConfig {
        refresh_interval: Duration::from_secs(3600),
        ..ContractConfig::new(rpc_url, address)
    }
}

/// Deploy, add two members, read them back, update one, remove one; each change is seen. A
/// non-owner's add and a duplicate node key are refused.
async fn add_update_remove(rpc_url: &str) {
    let (owner, _) = accounts();
    let writer = RegistryWriter::deploy(rpc_url, owner.clone(), owner.address())
        .await
        .expect("deploys");
    assert_eq!(writer.owner().await.expect("owner"), owner.address());
    let registry = ContractRegistry::connect(on_demand(rpc_url, writer.address()))
        .await
        .expect("follows the new registry");
    assert_eq!(registry.members().expect("members"), vec![], "starts empty");

    let (a, b) = (spec(9000), spec(9001));
    assert_eq!(writer.add_member(&a).await.expect("adds a"), 0);
    assert_eq!(writer.add_member(&b).await.expect("adds b"), 1);
    let fresh = registry.refresh().await.expect("refresh");
    assert_eq!(fresh, vec![member(0, &a), member(1, &b)]);
    assert_eq!(registry.members().expect("members"), fresh);

    let moved = MemberSpec {
        address: "10.0.0.2:9101".into(),
        attestation: Some(B256::repeat_byte(0xa7)),
        ..b.clone()
    };
    writer.update_member(1, &moved).await.expect("updates b");
    registry.refresh().await.expect("refresh");
    assert_eq!(
        registry.members().expect("members"),
        vec![member(0, &a), member(1, &moved)]
    );

    writer.remove_member(0).await.expect("removes a");
    registry.refresh().await.expect("refresh");
    assert_eq!(
        registry.members().expect("members"),
        vec![member(1, &moved)]
    );
    assert_eq!(
        read_members(&on_demand(rpc_url, writer.address()))
            .await
            .expect("one-shot read"),
        vec![member(1, &moved)],
        "a one-shot read agrees"
    );

    // Refused changes: the EL's revert data decodes to the contract's reason.
    let (_, other) = accounts();
    let intruder = RegistryWriter::connect(rpc_url, writer.address(), other.clone())
        .await
        .expect("connects");
    assert!(matches!(
        intruder.add_member(&spec(9002)).await,
        Err(ContractError::Refused(Refusal::NotOwner { caller })) if caller == other.address()
    ));
    let same_key = MemberSpec {
        node_key: moved.node_key,
        ..spec(9003)
    };
    assert!(matches!(
        writer.add_member(&same_key).await,
        Err(ContractError::Refused(Refusal::DuplicateNodeKey { node_key })) if node_key == moved.node_key
    ));

    // A removed member's key may come back, under a new id.
    assert_eq!(writer.add_member(&a).await.expect("re-adds a"), 2);
    registry.refresh().await.expect("refresh");
    assert_eq!(
        registry.members().expect("members"),
        vec![member(1, &moved), member(2, &a)]
    );
}

#[tokio::test]
async fn test_members_added_updated_and_removed_are_read_back_on_anvil() {
    let anvil = Anvil::start(&[]);
    add_update_remove(&anvil.cast.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_members_added_updated_and_removed_are_read_back_on_the_devnet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = Devnet::start(DevnetConfig {
        data_dir: dir.path().to_path_buf(),
        http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        chain_id: cobuild_primitives::DEVNET_CHAIN_ID,
        slot: Duration::from_millis(300),
        gas_limit: cobuild_primitives::DEFAULT_GAS_LIMIT,
        fee_recipient: Address::repeat_byte(0xfe),
        demo_contracts: false,
        limits: cobuild_node::OrderflowLimits {
            sender_rate: 100,
            sender_burst: 100,
            ip_rate: 1_000,
            ip_burst: 1_000,
            ..cobuild_node::OrderflowLimits::default()
        },
        max_orders: 10_000,
        bundle_horizon: 256,
        log_limits: cobuild_node::LogLimits::DEFAULT,
        history_blocks: None,
        proof_window: cobuild_node::DEFAULT_PROOF_WINDOW,
        accept_chain_rollback: false,
        builder_key: default_builder_key(),
        bid_percent: 90,
        relay_port: 0,
        max_bids_per_second: 20,
        extra_relays: Vec::new(),
        strict_relay: false,
    })
    .await
    .expect("devnet starts");
    let rpc_url = format!("http://{}", devnet.rpc_addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(devnet.run(async {
        let _ = stopped.await;
    }));

    add_update_remove(&rpc_url).await;

    let _ = stop.send(());
    running.await.expect("joins").expect("devnet stops cleanly");
}

#[tokio::test]
async fn test_a_running_registry_sees_changes_without_being_asked() {
    let anvil = Anvil::start(&[]);
    let (owner, _) = accounts();
    let writer = RegistryWriter::deploy(&anvil.cast.url, owner.clone(), owner.address())
        .await
        .expect("deploys");
    let registry = ContractRegistry::connect(ContractConfig {
        refresh_interval: Duration::from_millis(100),
        ..ContractConfig::new(&anvil.cast.url, writer.address())
    })
    .await
    .expect("follows");
    let a = spec(9000);
    writer.add_member(&a).await.expect("adds");
    let deadline = Instant::now() + Duration::from_secs(5);
    // `members()` is what a node polls: it changes once the background refresh ran.
    while registry.members().expect("members") != vec![member(0, &a)] {
        assert!(Instant::now() < deadline, "the change is never seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = registry.status();
    assert_eq!(status.failures, 0);
    assert!(status.last_error.is_none());

    // With the EL gone, the last list stays and the failures are counted.
    drop(anvil);
    assert!(registry.refresh().await.is_err(), "the endpoint is down");
    assert_eq!(registry.members().expect("members"), vec![member(0, &a)]);
    assert!(registry.status().failures >= 1);
    assert!(registry.status().last_error.is_some());
}

#[tokio::test]
async fn test_non_owner_change_is_refused_until_ownership_is_transferred() {
    let anvil = Anvil::start(&[]);
    let url = &anvil.cast.url;
    let (owner, other) = accounts();
    let writer = RegistryWriter::deploy(url, owner.clone(), owner.address())
        .await
        .expect("deploys");
    let intruder = RegistryWriter::connect(url, writer.address(), other.clone())
        .await
        .expect("connects");
    let a = spec(9000);
    match intruder.add_member(&a).await {
        Err(ContractError::Refused(Refusal::NotOwner { caller })) => {
            assert_eq!(caller, other.address())
        }
        other => panic!("expected NotOwner, got {other:?}"),
    }
    assert!(matches!(
        intruder.transfer_ownership(other.address()).await,
        Err(ContractError::Refused(Refusal::NotOwner { .. }))
    ));
    assert_eq!(
        read_members(&on_demand(url, writer.address()))
            .await
            .expect("reads"),
        vec![],
        "nothing changed"
    );

    writer
        .transfer_ownership(other.address())
        .await
        .expect("the owner hands over");
    assert_eq!(intruder.owner().await.expect("owner"), other.address());
    assert_eq!(intruder.add_member(&a).await.expect("new owner adds"), 0);
    assert!(matches!(
        writer.remove_member(0).await,
        Err(ContractError::Refused(Refusal::NotOwner { .. }))
    ));
}

#[tokio::test]
async fn test_duplicate_node_key_and_malformed_members_are_refused() {
    let anvil = Anvil::start(&[]);
    let url = &anvil.cast.url;
    let (owner, _) = accounts();
    let writer = RegistryWriter::deploy(url, owner.clone(), owner.address())
        .await
        .expect("deploys");
    let (a, b) = (spec(9000), spec(9001));
    writer.add_member(&a).await.expect("adds a");
    writer.add_member(&b).await.expect("adds b");

    let same_key = MemberSpec {
        node_key: a.node_key,
        ..spec(9002)
    };
    assert_eq!(
        writer
            .add_member(&same_key)
            .await
            .expect_err("duplicate")
            .to_string(),
        ContractError::Refused(Refusal::DuplicateNodeKey {
            node_key: a.node_key
        })
        .to_string()
    );
    assert!(matches!(
        writer.update_member(1, &same_key).await,
        Err(ContractError::Refused(Refusal::DuplicateNodeKey { node_key })) if node_key == a.node_key
    ));
    let short_bls = MemberSpec {
        bls_key: Bytes::from(vec![1; 47]),
        ..spec(9003)
    };
    assert!(matches!(
        writer.add_member(&short_bls).await,
        Err(ContractError::Refused(Refusal::InvalidBlsKey {
            length: 47
        }))
    ));
    let zero_key = MemberSpec {
        node_key: B256::ZERO,
        ..spec(9004)
    };
    assert!(matches!(
        writer.add_member(&zero_key).await,
        Err(ContractError::Refused(Refusal::ZeroNodeKey))
    ));
    assert!(matches!(
        writer.remove_member(7).await,
        Err(ContractError::Refused(Refusal::UnknownMember { id: 7 }))
    ));

    // Refused changes cost no nonce: the next valid one still goes through.
    writer.remove_member(0).await.expect("removes a");
    assert_eq!(
        read_members(&on_demand(url, writer.address()))
            .await
            .expect("reads"),
        vec![member(1, &b)]
    );
}

#[tokio::test]
async fn test_an_address_without_the_contract_is_refused() {
    let anvil = Anvil::start(&[]);
    let nowhere = Address::repeat_byte(0x42);
    assert!(matches!(
        ContractRegistry::connect(on_demand(&anvil.cast.url, nowhere)).await,
        Err(ContractError::NoContract(address)) if address == nowhere
    ));
}
