//! Replication over real sockets: members on loopback connected by commonware's authenticated,
//! encrypted `lookup` network, each with its own durable log.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use alloy_primitives::Bytes;
use cobuild_net::{Envelope, Log, MemberId, NetMember, Replication, TransportConfig};
use cobuild_primitives::AcceptedOrder;
use commonware_cryptography::{Signer as _, ed25519};
use tokio::sync::mpsc;

fn key(id: MemberId) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(u64::from(id) + 7)
}

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], cobuild_test_utils::free_port()))
}

struct Node {
    log: Arc<Log>,
    replication: Replication,
    delivered: mpsc::Receiver<Envelope>,
}

fn start(id: MemberId, members: &[NetMember], dir: &std::path::Path) -> Node {
    let log =
        Arc::new(Log::open(&dir.join(format!("log-{id}.redb")), id, key(id)).expect("log opens"));
    let (tx, delivered) = mpsc::channel(1024);
    let replication = Replication::start(
        TransportConfig {
            me: id,
            key: key(id),
            listen: members[id as usize].addr,
            members: members.to_vec(),
            status_interval: Duration::from_millis(50),
            recovery_timeout: Duration::from_secs(10),
            storage: None,
        },
        log.clone(),
        tx,
        None,
    )
    .expect("transport starts");
    Node {
        log,
        replication,
        delivered,
    }
}

async fn accept(node: &Node, payload: &'static [u8]) -> Envelope {
    let envelope = node
        .log
        .append_own(
            AcceptedOrder::raw_transaction(Bytes::from_static(payload)),
            1,
        )
        .expect("durable append");
    node.replication.mailbox.broadcast(envelope.clone()).await;
    envelope
}

async fn next(node: &mut Node) -> Envelope {
    tokio::time::timeout(Duration::from_secs(20), node.delivered.recv())
        .await
        .expect("an envelope arrives in time")
        .expect("engine running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_members_replicate_and_a_late_member_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let members: Vec<NetMember> = (0..3)
        .map(|id| NetMember {
            id,
            key: key(id).public_key(),
            addr: free_addr(),
        })
        .collect();
    let mut a = start(0, &members, dir.path());
    let mut b = start(1, &members, dir.path());

    // Pushed at once to the member that is up.
    let first = accept(&a, b"order one").await;
    assert_eq!(next(&mut b).await, first);
    let second = accept(&b, b"order two").await;
    assert_eq!(next(&mut a).await, second);

    // A member that was down when they were sent pulls them (anti-entropy) when it comes up.
    let mut c = start(2, &members, dir.path());
    let mut got = vec![next(&mut c).await, next(&mut c).await];
    got.sort_by_key(|e| e.body.origin);
    assert_eq!(got, vec![first, second]);
    assert_eq!(c.log.contiguous(0).expect("read"), 1);
    assert_eq!(c.log.contiguous(1).expect("read"), 1);

    // A removed member is refused: its envelopes are no longer taken in.
    let without_c: Vec<NetMember> = members[..2].to_vec();
    a.replication.set_members(without_c.clone()).await;
    b.replication.set_members(without_c).await;
    // In force once the call returns, so nothing c sends from here on can be taken.
    assert_eq!(a.replication.mailbox.members(), vec![0, 1]);
    assert_eq!(b.replication.mailbox.members(), vec![0, 1]);
    let from_c = accept(&c, b"order from a removed member").await;
    let after = accept(&a, b"order three").await;
    assert_eq!(next(&mut b).await, after, "b takes a's order, not c's");
    assert!(
        b.log.get(2, from_c.body.seq).expect("read").is_none(),
        "the removed member's envelope was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_member_added_while_running_is_connected_and_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all: Vec<NetMember> = (0..3)
        .map(|id| NetMember {
            id,
            key: key(id).public_key(),
            addr: free_addr(),
        })
        .collect();
    let first_two = all[..2].to_vec();
    let mut a = start(0, &first_two, dir.path());
    let mut b = start(1, &first_two, dir.path());
    let before = accept(&a, b"before the new member").await;
    assert_eq!(next(&mut b).await, before);

    // The registry gains member 2: the running members take it in, no restart.
    a.replication.set_members(all.clone()).await;
    b.replication.set_members(all.clone()).await;
    assert_eq!(b.replication.mailbox.members(), vec![0, 1, 2]);
    let mut c = start(2, &all, dir.path());
    assert_eq!(next(&mut c).await, before, "history reaches the new member");
    let from_c = accept(&c, b"from the new member").await;
    assert_eq!(
        next(&mut a).await,
        from_c,
        "the new member's orders are taken"
    );
    assert_eq!(next(&mut b).await, from_c);
}
