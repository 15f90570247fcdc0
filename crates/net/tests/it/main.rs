//! The envelope log: own numbering that survives a reopen, received envelopes deduplicated,
//! equivocation caught, per-origin gaps found for anti-entropy, and settled envelopes moved to
//! the archive while staying served.

use alloy_primitives::Bytes;
use cobuild_net::{Archived, Envelope, EnvelopeBody, Held, Insert, Log};
use cobuild_primitives::{AcceptedOrder, OrderKind};
use commonware_cryptography::{Signer, ed25519};

fn raw(n: u8) -> Bytes {
    Bytes::from(vec![0x02, n])
}

fn order(kind: OrderKind, payload: Bytes, auth: &'static [u8], call: u32) -> AcceptedOrder {
    AcceptedOrder {
        kind,
        payload,
        auth: Bytes::from_static(auth),
        call,
    }
}

fn received(key: &ed25519::PrivateKey, origin: u32, seq: u64) -> Envelope {
    Envelope::sign(
        EnvelopeBody {
            origin,
            seq,
            received_at_ms: 1_000 + seq,
            kind: OrderKind::RawTransaction as u8,
            payload: raw(seq as u8),
            auth: Bytes::new(),
            call: 0,
        },
        key,
    )
}

#[test]
fn test_own_numbering_is_durable_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.redb");
    let key = ed25519::PrivateKey::from_seed(7);
    let first = {
        let log = Log::open(&path, 0, key.clone()).expect("opens");
        let first = log
            .append_own(order(OrderKind::RawTransaction, raw(1), b"", 0), 10)
            .expect("append");
        let second = log
            .append_own(order(OrderKind::SendBundle, raw(2), b"h", 3), 11)
            .expect("append");
        assert_eq!((first.body.seq, second.body.seq), (1, 2));
        assert_eq!(second.body.call, 3, "the call's place in its batch is kept");
        second.verify(&key.public_key()).expect("signed by us");
        first
        // Dropped without any shutdown step, as a killed process would leave it.
    };
    let log = Log::open(&path, 0, key.clone()).expect("reopens");
    assert_eq!(log.contiguous(0).expect("prefix"), 2);
    assert_eq!(log.get(0, 1).expect("read"), Some(first));
    let third = log
        .append_own(order(OrderKind::RawTransaction, raw(3), b"", 0), 12)
        .expect("append");
    assert_eq!(third.body.seq, 3, "numbering continues, never reuses a seq");
    // A group commit numbers its orders in order after the last one, all durable together.
    let batch = log
        .append_own_batch(vec![
            (order(OrderKind::RawTransaction, raw(4), b"", 0), 13),
            (order(OrderKind::CancelBundle, raw(5), b"h", 1), 14),
        ])
        .expect("batch");
    assert_eq!(
        batch.iter().map(|e| e.body.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    drop(log);
    let log = Log::open(&path, 0, key.clone()).expect("reopens");
    assert_eq!(log.contiguous(0).expect("prefix"), 5);
    assert_eq!(log.get(0, 5).expect("read").as_ref(), batch.last());
    let summary = log.summary().expect("summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].high.as_ref().map(|h| h.head.seq), Some(5));
}

#[test]
fn test_received_envelopes_dedup_and_equivocation_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(
        &dir.path().join("log.redb"),
        0,
        ed25519::PrivateKey::from_seed(1),
    )
    .expect("opens");
    let peer = ed25519::PrivateKey::from_seed(2);
    let one = received(&peer, 5, 1);
    assert_eq!(
        log.insert(&one).expect("insert"),
        Insert::New { contiguous: 1 }
    );
    assert_eq!(log.insert(&one).expect("insert"), Insert::Duplicate);
    // The same place, another order: the origin signed two envelopes for seq 1.
    let mut other = one.body.clone();
    other.payload = raw(99);
    let twin = Envelope::sign(other, &peer);
    assert_eq!(
        log.insert(&twin).expect("insert"),
        Insert::Equivocation {
            existing: Box::new(one.clone())
        }
    );
    assert_eq!(
        log.get(5, 1).expect("read"),
        Some(one),
        "the first one stays"
    );
}

#[test]
fn test_gaps_are_found_and_filled_in_any_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(
        &dir.path().join("log.redb"),
        0,
        ed25519::PrivateKey::from_seed(1),
    )
    .expect("opens");
    let peer = ed25519::PrivateKey::from_seed(2);
    for seq in [1, 2, 5, 7] {
        log.insert(&received(&peer, 3, seq)).expect("insert");
    }
    assert_eq!(log.contiguous(3).expect("prefix"), 2);
    assert_eq!(log.missing(3, 8, 10).expect("missing"), vec![3, 4, 6, 8]);
    assert_eq!(
        log.missing(3, 8, 2).expect("missing"),
        vec![3, 4],
        "bounded"
    );
    assert_eq!(
        log.missing(4, 3, 10).expect("missing"),
        vec![1, 2, 3],
        "unknown origin"
    );
    assert_eq!(
        log.insert(&received(&peer, 3, 4)).expect("insert"),
        Insert::New { contiguous: 2 }
    );
    assert_eq!(
        log.insert(&received(&peer, 3, 3)).expect("insert"),
        Insert::New { contiguous: 5 },
        "filling 3 joins 4 and 5 to the prefix"
    );
    let served: Vec<u64> = log
        .range(3, 2, 3)
        .expect("range")
        .iter()
        .map(|e| e.body.seq)
        .collect();
    assert_eq!(served, vec![2, 3, 4]);
}

#[test]
fn test_a_message_is_classified_and_stored_in_one_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(
        &dir.path().join("log.redb"),
        0,
        ed25519::PrivateKey::from_seed(1),
    )
    .expect("opens");
    let key = ed25519::PrivateKey::from_seed(2);
    let (one, two) = (received(&key, 5, 1), received(&key, 5, 2));
    let mut other_two = two.clone();
    other_two.body.payload = raw(99);
    let stored = log
        .insert_batch(&[one.clone(), two.clone(), two.clone()])
        .expect("stores");
    assert_eq!(
        stored,
        vec![
            Insert::New { contiguous: 1 },
            Insert::New { contiguous: 2 },
            Insert::Duplicate
        ]
    );
    let held = log
        .held(&[one, other_two, received(&key, 5, 3)])
        .expect("reads");
    assert_eq!(held, vec![Held::Same, Held::Other, Held::Absent]);
}

fn seqs(envelopes: &[Envelope]) -> Vec<u64> {
    envelopes.iter().map(|e| e.body.seq).collect()
}

/// Every envelope `log` would refill the pools with after a restart, as (origin, seq).
fn refill(log: &Log) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    log.for_each_contiguous(|e: Envelope| {
        out.push((e.body.origin, e.body.seq));
        Ok::<_, cobuild_net::LogError>(())
    })
    .expect("reads");
    out
}

/// Every stored envelope, as (origin, seq), sorted.
fn stored(log: &Log) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    log.for_each(|e: Envelope| {
        out.push((e.body.origin, e.body.seq));
        Ok::<_, cobuild_net::LogError>(())
    })
    .expect("reads");
    out.sort_unstable();
    out
}

/// Calls [`Log::archive`] in steps of `step` until done; how many moved.
fn archive_all(log: &Log, floors: &[(u32, u64)], step: usize) -> usize {
    let mut moved = 0;
    loop {
        let Archived { moved: now, done } = log.archive(floors, step).expect("archives");
        moved += now;
        if done {
            return moved;
        }
        assert!(now > 0, "a step that is not done moves something");
    }
}

#[test]
fn test_settled_envelopes_move_to_the_archive_and_stay_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("orders.redb");
    let me = ed25519::PrivateKey::from_seed(1);
    let peer = ed25519::PrivateKey::from_seed(2);
    let log = Log::open(&path, 0, me.clone()).expect("opens");
    for n in 1..=8u8 {
        log.append_own(order(OrderKind::RawTransaction, raw(n), b"", 0), 10)
            .expect("append");
    }
    // Origin 1: 1..=10 and 12, with 11 missing.
    for seq in (1..=10).chain([12]) {
        log.insert(&received(&peer, 1, seq)).expect("insert");
    }

    // Own envelopes up to 5; origin 1's up to 20 asked, but only its prefix (10) can move.
    assert_eq!(archive_all(&log, &[(0, 5), (1, 20)], 3), 15);
    assert_eq!(
        log.archive(&[(0, 5), (1, 20)], 3).expect("archives"),
        Archived {
            moved: 0,
            done: true
        },
        "archiving again moves nothing"
    );
    let summary = log.summary().expect("summary");
    let theirs = summary.iter().find(|s| s.origin == 1).expect("origin 1");
    assert_eq!((theirs.contiguous, theirs.archived), (10, 10));
    assert_eq!(theirs.high.as_ref().map(|h| h.head.seq), Some(12));

    // The archive is still the log: lookups, ranges for members that are behind, dedup and
    // equivocation checks all see it.
    assert_eq!(log.get(1, 3).expect("read"), Some(received(&peer, 1, 3)));
    assert_eq!(
        seqs(&log.range(1, 1, 100).expect("range")),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    );
    assert_eq!(seqs(&log.range(1, 9, 3).expect("range")), vec![9, 10, 12]);
    assert_eq!(seqs(&log.range(0, 4, 3).expect("range")), vec![4, 5, 6]);
    let mut twin = received(&peer, 1, 3).body;
    twin.payload = raw(99);
    let twin = Envelope::sign(twin, &peer);
    assert_eq!(
        log.held(&[received(&peer, 1, 3), twin.clone()])
            .expect("reads"),
        vec![Held::Same, Held::Other]
    );
    assert_eq!(
        log.insert(&received(&peer, 1, 3)).expect("insert"),
        Insert::Duplicate
    );
    assert!(matches!(
        log.insert(&twin).expect("insert"),
        Insert::Equivocation { .. }
    ));
    assert_eq!(log.missing(1, 12, 10).expect("missing"), vec![11]);

    // A restart refills only what lies above the archive.
    assert_eq!(refill(&log), vec![(0, 6), (0, 7), (0, 8)]);
    assert_eq!(
        log.insert(&received(&peer, 1, 11)).expect("insert"),
        Insert::New { contiguous: 12 }
    );
    drop(log);
    let log = Log::open(&path, 0, me.clone()).expect("reopens");
    assert_eq!(refill(&log), vec![(0, 6), (0, 7), (0, 8), (1, 11), (1, 12)]);
    assert_eq!(stored(&log).len(), 20, "nothing lost, nothing twice");
    let next = log
        .append_own(order(OrderKind::RawTransaction, raw(9), b"", 0), 11)
        .expect("append");
    assert_eq!(next.body.seq, 9, "own numbering goes on past the archive");
    assert_eq!(log.get(0, 2).expect("read").map(|e| e.body.seq), Some(2));
}

#[test]
fn test_a_crash_between_the_archive_and_the_log_leaves_no_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("orders.redb");
    let key = ed25519::PrivateKey::from_seed(1);
    let log = Log::open(&path, 0, key.clone()).expect("opens");
    for n in 1..=6u8 {
        log.append_own(order(OrderKind::RawTransaction, raw(n), b"", 0), 10)
            .expect("append");
    }
    drop(log);
    // The live log as it was before the move: what a crash after the archive's commit and
    // before the log's leaves behind.
    let before = dir.path().join("before.redb");
    std::fs::copy(&path, &before).expect("copy");
    let log = Log::open(&path, 0, key.clone()).expect("reopens");
    assert_eq!(archive_all(&log, &[(0, 4)], 100), 4);
    drop(log);
    std::fs::copy(&before, &path).expect("restore");

    let log = Log::open(&path, 0, key).expect("reopens");
    assert_eq!(refill(&log), vec![(0, 5), (0, 6)]);
    assert_eq!(
        stored(&log),
        (1..=6).map(|seq| (0, seq)).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&log.range(0, 1, 100).expect("range")),
        vec![1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn test_a_live_log_behind_the_archive_resumes_at_the_floor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("orders.redb");
    let key = ed25519::PrivateKey::from_seed(1);
    let peer = ed25519::PrivateKey::from_seed(2);
    drop(Log::open(&path, 0, key.clone()).expect("opens"));
    // The live log as it was before anything arrived: what a crash that lost the received
    // (not yet durable) envelopes, or a restored copy, leaves beside a durable archive.
    let copies = Log::copies_path(&path);
    let empty = dir.path().join("empty.redb");
    std::fs::copy(&copies, &empty).expect("copy");
    let log = Log::open(&path, 0, key.clone()).expect("reopens");
    for seq in 1..=8 {
        log.insert(&received(&peer, 1, seq)).expect("insert");
    }
    assert_eq!(archive_all(&log, &[(1, 5)], 100), 5);
    drop(log);
    std::fs::copy(&empty, &copies).expect("restore");

    let log = Log::open(&path, 0, key).expect("reopens");
    // Everything up to the floor is held (in the archive); what the live log lost is fetched
    // again, and fills the prefix as it comes.
    assert_eq!(log.contiguous(1).expect("prefix"), 5);
    assert_eq!(log.missing(1, 8, 10).expect("missing"), vec![6, 7, 8]);
    assert_eq!(
        log.insert(&received(&peer, 1, 6)).expect("insert"),
        Insert::New { contiguous: 6 }
    );
    assert_eq!(
        seqs(&log.range(1, 1, 100).expect("range")),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(refill(&log), vec![(1, 6)]);
}

#[test]
fn test_received_envelopes_reach_the_disk_when_the_copies_are_synced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("orders.redb");
    let key = ed25519::PrivateKey::from_seed(1);
    let peer = ed25519::PrivateKey::from_seed(2);
    // What a crash at this moment would leave: the log's files as they are on disk.
    let crash = |name: &str| {
        let at = dir.path().join(name);
        std::fs::create_dir(&at).expect("dir");
        let copy = at.join("orders.redb");
        std::fs::copy(&path, &copy).expect("copy");
        std::fs::copy(Log::copies_path(&path), Log::copies_path(&copy)).expect("copy");
        Log::open(&copy, 0, key.clone()).expect("the crashed log opens")
    };
    let log = Log::open(&path, 0, key.clone()).expect("opens");
    log.append_own(order(OrderKind::RawTransaction, raw(1), b"", 0), 10)
        .expect("append");
    for seq in 1..=3 {
        log.insert(&received(&peer, 1, seq)).expect("insert");
    }
    let before = crash("before");
    assert_eq!(
        before.contiguous(0).expect("prefix"),
        1,
        "own appends are durable"
    );
    assert_eq!(
        before.contiguous(1).expect("prefix"),
        0,
        "received envelopes are not durable before a sync"
    );
    log.sync_copies().expect("syncs");
    let after = crash("after");
    assert_eq!(after.contiguous(1).expect("prefix"), 3);
    assert_eq!(seqs(&after.range(1, 1, 10).expect("range")), vec![1, 2, 3]);
}
