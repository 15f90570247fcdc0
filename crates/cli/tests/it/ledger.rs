//! The slot ledger with real processes: `cobuild devnet --nodes 4` records every slot; with one
//! node killed (kill -9) records go on; with a second killed they stop while blocks are still
//! built and bid; once both are back every node catches up, serves the same records, and
//! `cobuild ledger verify` accepts each node's ledger against the registry and the chain.

use std::time::Duration;

use serde_json::json;

use super::{
    TxSpec, cobuild_ok,
    nodes::{
        Killed, Member, REGISTRY_OWNER_KEY, SENDERS, eventually, eventually_showing, four_members,
        landed, remove_from_registry_contract,
    },
};

/// The slot of the node's last final record.
fn final_slot(member: &Member<'_>) -> Option<u64> {
    let record = member.rpc("cobuild_getSlotRecord", json!([null]))?;
    u64::from_str_radix(record["slot"].as_str()?.trim_start_matches("0x"), 16).ok()
}

/// Waits until every one of `nodes` holds final records up to `slot`; their last final slots.
fn records_reach(nodes: &[Member<'_>], slot: u64, what: &str, within: Duration) -> Vec<u64> {
    eventually_showing(what, within, || {
        let slots: Vec<Option<u64>> = nodes.iter().map(final_slot).collect();
        match slots.iter().copied().collect::<Option<Vec<u64>>>() {
            Some(all) if all.iter().all(|&last| last >= slot) => Ok(all),
            _ => Err(format!("final slots {slots:?}, want {slot} at each")),
        }
    })
}

/// The digests of the node's records `from..=to`.
fn digests(member: &Member<'_>, from: u64, to: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = from;
    while next <= to {
        let last = to.min(next + 63);
        let page = member
            .rpc(
                "cobuild_getSlotRecords",
                json!([format!("{next:#x}"), format!("{last:#x}")]),
            )
            .expect("records");
        out.extend(
            page.as_array()
                .expect("a list")
                .iter()
                .map(|r| r["digest"].as_str().expect("digest").to_owned()),
        );
        next = last + 1;
    }
    out
}

/// `cobuild ledger verify` of records 1..=`to` at the node against `registry`, which passes.
fn verify(node: &Member<'_>, registry: &[&str], to: u64) -> String {
    let to_text = to.to_string();
    let mut args = vec!["ledger", "verify", "--rpc", node.field("rpc")];
    args.extend_from_slice(registry);
    args.extend(["--from", "1", "--to", &to_text]);
    let verified = cobuild_ok(&args);
    assert!(
        verified.contains(&format!("records 1..={to} verify")),
        "{verified}"
    );
    verified
}

#[test]
fn test_the_ledger_records_every_slot_pauses_without_a_quorum_and_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Orders leave the live log two slots after a record covers them.
    let (hub, endpoints) = four_members(dir.path(), &["--log-retention-slots", "2"]);
    let nodes: Vec<Member<'_>> = (0..4).map(|i| Member(&endpoints["nodes"][i])).collect();
    let data_dir = dir.path().to_str().expect("utf-8 path");

    // Every node records slots.
    let first = records_reach(&nodes, 3, "records at every node", Duration::from_secs(90));
    assert!(first.iter().all(|&s| s >= 3));

    // One node down (kill -9): three of four are a quorum, records go on.
    nodes[3].kill();
    let at_kill = final_slot(&nodes[0]).expect("node 0 answers");
    eventually("records without node 3", Duration::from_secs(60), || {
        final_slot(&nodes[0]).filter(|&s| s >= at_kill + 5)
    });

    // Two down: no quorum. Records stop while blocks are still built and bid.
    nodes[2].kill();
    let paused_head = hub.head();
    eventually("the chain to move on", Duration::from_secs(30), || {
        (hub.head() > paused_head + 5).then_some(())
    });
    // An order sent to node 0 now lands in a block a surviving member built and bid.
    let raw = hub.signed_tx(
        SENDERS[0],
        TxSpec {
            value: "1",
            ..TxSpec::default()
        },
    );
    let hash = nodes[0]
        .cast()
        .run(&["publish", "--async", &raw])
        .expect("node 0 takes the order");
    let block = landed(&hub, hash.trim());
    let miner = block["miner"].as_str().expect("miner").to_lowercase();
    let alive: Vec<String> = nodes[..2]
        .iter()
        .map(|n| n.field("coinbase").to_lowercase())
        .collect();
    assert!(
        alive.contains(&miner),
        "a surviving member built it: {miner}"
    );
    let head_while_paused = hub.head();
    let stalled = final_slot(&nodes[0]).expect("node 0 answers");
    assert!(
        stalled <= paused_head + 2,
        "records went on to slot {stalled} with two of four members down (head {paused_head} \
         at the kill, {head_while_paused} now)"
    );
    let status = cobuild_ok(&["status", "--data-dir", data_dir]);
    assert!(
        status.contains("ledger: last final record slot"),
        "status shows the ledger:\n{status}"
    );

    // Both back: the ledger catches up at every node.
    let _restarted = [nodes[3].restart(), nodes[2].restart()];
    let target = hub.head();
    records_reach(
        &nodes,
        target,
        "every node to catch up",
        Duration::from_secs(120),
    );
    let reference = digests(&nodes[0], 1, target);
    assert_eq!(
        reference.len() as u64,
        target,
        "node 0 records every slot 1..={target}"
    );
    for node in &nodes[1..] {
        assert_eq!(
            digests(node, 1, target),
            reference,
            "every node serves the same records"
        );
    }

    // Anyone can check each node's ledger against the registry's keys and the chain.
    let registry = endpoints["registry"].as_str().expect("registry path");
    for node in &nodes {
        verify(node, &["--registry", registry], target);
    }
    let shown = cobuild_ok(&["ledger", "show", "--data-dir", data_dir, "--slot", "2"]);
    assert!(shown.starts_with("slot 2 (record 0x"), "{shown}");
    assert!(shown.contains("cuts signed by members"), "{shown}");

    // The order sent while records were paused is in the archive of a node that did not take
    // it, under the record that covered it, exactly as sent ...
    let (slot, origin, seq) = (1..=target)
        .find_map(|slot| {
            let orders = nodes[1].admin("cobuild_slotOrders", json!([slot]))?;
            orders["orders"].as_array()?.iter().find_map(|o| {
                (o["payload"].as_str()?.eq_ignore_ascii_case(raw.trim())).then(|| {
                    (
                        slot,
                        o["origin"].as_u64().expect("origin"),
                        o["seq"].as_u64().expect("seq"),
                    )
                })
            })
        })
        .expect("a record covers the order sent while paused");
    // ... and, two slots after that record, it has left every node's live log for the archive.
    eventually(
        "the order to be archived everywhere",
        Duration::from_secs(60),
        || {
            nodes
                .iter()
                .all(|node| {
                    node.admin("cobuild_status", json!([]))
                        .and_then(|status| {
                            status["origins"].as_array()?.iter().find_map(|o| {
                                (o["origin"].as_u64()? == origin).then(|| o["archived"].as_u64())?
                            })
                        })
                        .is_some_and(|archived| archived >= seq)
                })
                .then_some(())
        },
    );
    // Archived, it is still served under its record, by every node.
    for node in &nodes {
        let orders = node
            .admin("cobuild_slotOrders", json!([slot]))
            .expect("slot orders");
        assert!(
            orders["orders"]
                .as_array()
                .expect("orders")
                .iter()
                .any(|o| {
                    o["seq"].as_u64() == Some(seq)
                        && o["origin"].as_u64() == Some(origin)
                        && o["payload"]
                            .as_str()
                            .is_some_and(|p| p.eq_ignore_ascii_case(raw.trim()))
                }),
            "slot {slot}'s orders hold ({origin}, {seq}): {orders}"
        );
    }
    let status = cobuild_ok(&["status", "--data-dir", data_dir]);
    assert!(
        status.contains("archived"),
        "status shows the archive:\n{status}"
    );
}

#[test]
fn test_a_registry_change_takes_effect_at_a_record_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, endpoints) = four_members(dir.path(), &[]);
    let nodes: Vec<Member<'_>> = (0..4).map(|i| Member(&endpoints["nodes"][i])).collect();
    let contract = endpoints["registry_contract"]
        .as_str()
        .expect("registry contract");
    records_reach(&nodes, 3, "records at every node", Duration::from_secs(90));

    // The registry the nodes follow drops member 3; the ledger's members follow at the next
    // record.
    remove_from_registry_contract(&hub.url, contract, 3);
    let epoch_of = |record: &serde_json::Value| record["record"]["epoch"].as_u64();
    let (closing, first_new) = eventually(
        "a record agreed by the new members",
        Duration::from_secs(90),
        || {
            let last = nodes[0].rpc("cobuild_getSlotRecord", json!([null]))?;
            if epoch_of(&last)? < 1 {
                return None;
            }
            let tip = final_slot(&nodes[0])?;
            let records = nodes[0].rpc(
                "cobuild_getSlotRecords",
                json!([
                    format!("{:#x}", tip.saturating_sub(63).max(1)),
                    format!("{tip:#x}")
                ]),
            )?;
            let records = records.as_array()?.clone();
            let at = records.iter().position(|r| {
                r["record"]["next"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty())
            })?;
            Some((records[at].clone(), records.get(at + 1)?.clone()))
        },
    );
    let named: Vec<u64> = closing["record"]["next"]
        .as_array()
        .expect("next")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        named,
        vec![0, 1, 2],
        "the closing record names the registry's members"
    );
    assert_eq!(epoch_of(&closing), Some(0));
    assert_eq!(epoch_of(&first_new), Some(1));
    // The first record of the new epoch links to the closing one and has no cut of member 3.
    assert_eq!(first_new["record"]["prev"], closing["digest"]);
    assert!(
        first_new["record"]["cuts"]
            .as_array()
            .expect("cuts")
            .iter()
            .all(|c| c["cut"]["member"].as_u64() != Some(3))
    );

    // Records go on with three members, and every remaining node's ledger verifies across the
    // boundary against the registry as it is now.
    let boundary = u64::from_str_radix(
        closing["slot"]
            .as_str()
            .expect("slot")
            .trim_start_matches("0x"),
        16,
    )
    .expect("hex slot");
    let target = boundary + 3;
    records_reach(
        &nodes[..3],
        target,
        "records after the change",
        Duration::from_secs(60),
    );
    for node in &nodes[..3] {
        let registry = [
            "--registry-contract",
            contract,
            "--registry-rpc-url",
            &hub.url,
        ];
        let verified = verify(node, &registry, target);
        assert!(verified.contains("through 1 epoch change"), "{verified}");
    }
    let status = cobuild_ok(&["status", "--data-dir", dir.path().to_str().expect("utf-8")]);
    assert!(
        status.contains("; epoch 1 (members 0, 1, 2)"),
        "status shows the epoch:\n{status}"
    );
    let shown = cobuild_ok(&[
        "ledger",
        "show",
        "--rpc",
        nodes[0].field("rpc"),
        "--slot",
        &boundary.to_string(),
    ]);
    assert!(
        shown.contains("closes its epoch: members 0, 1, 2 agree on the records after it"),
        "{shown}"
    );
}

#[test]
fn test_a_member_added_to_a_running_network_joins_the_ledger_at_a_record_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub, endpoints) = four_members(dir.path(), &[]);
    let nodes: Vec<Member<'_>> = (0..4).map(|i| Member(&endpoints["nodes"][i])).collect();
    let contract = endpoints["registry_contract"]
        .as_str()
        .expect("registry contract");
    records_reach(&nodes, 3, "records at every node", Duration::from_secs(90));

    // A new operator: keys, the ledger's founders from a member, a place in the registry.
    let home = dir.path().join("node-new");
    std::fs::create_dir_all(&home).expect("node dir");
    let key_file = home.join("node.key");
    let key_path = key_file.to_str().expect("utf-8 path");
    cobuild_ok(&["keys", "new", "--out", key_path]);
    let founders_file = home.join("founders.json");
    let founders = cobuild_ok(&["ledger", "founders", "--rpc", nodes[0].field("rpc")]);
    std::fs::write(&founders_file, &founders).expect("founders file");
    let free_port = cobuild_test_utils::free_port;
    let (p2p, http, admin) = (free_port(), free_port(), free_port());
    let address = format!("127.0.0.1:{p2p}");
    cobuild_ok(&[
        "registry",
        "add",
        "--rpc-url",
        &hub.url,
        "--contract",
        contract,
        "--owner-key",
        REGISTRY_OWNER_KEY,
        "--key-file",
        key_path,
        "--address",
        &address,
    ]);
    let log = std::fs::File::create(home.join("node.log")).expect("node log");
    let _newcomer = Killed::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_cobuild"))
            .args(["node", "--data-dir"])
            .arg(&home)
            .args(["--key-file", key_path, "--hub-rpc", &hub.url])
            .args([
                "--relay-url",
                endpoints["hub"]["relay"].as_str().expect("relay"),
            ])
            .args(["--registry-contract", contract, "--registry-rpc", &hub.url])
            .args([
                "--p2p-port",
                &p2p.to_string(),
                "--http-port",
                &http.to_string(),
            ])
            .args(["--admin-port", &admin.to_string(), "--ledger-founders"])
            .arg(&founders_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(log)),
    );
    let rpc = format!("http://127.0.0.1:{http}");
    let newcomer_json = json!({ "rpc": rpc });
    let newcomer = Member(&newcomer_json);
    eventually("the newcomer's RPC", Duration::from_secs(60), || {
        newcomer.cast().run(&["block-number"]).ok()
    });

    // The ledger moves to the five members at a record boundary, and the newcomer, which
    // followed every record before, takes part from there.
    let boundary = eventually(
        "a record naming five members",
        Duration::from_secs(120),
        || {
            let tip = final_slot(&nodes[0])?;
            let from = tip.saturating_sub(63).max(1);
            let page = nodes[0].rpc(
                "cobuild_getSlotRecords",
                json!([format!("{from:#x}"), format!("{tip:#x}")]),
            )?;
            page.as_array()?.iter().find_map(|r| {
                (r["record"]["next"].as_array()?.len() == 5).then(|| {
                    u64::from_str_radix(r["slot"].as_str()?.trim_start_matches("0x"), 16).ok()
                })?
            })
        },
    );
    eventually(
        "the newcomer in the new epoch",
        Duration::from_secs(120),
        || final_slot(&newcomer).filter(|&slot| slot > boundary),
    );
    // Four of five make a quorum, so without one of the old members every record after needs
    // the newcomer's cut and vote (with all five up, its cut may simply come fifth).
    nodes[3].kill();
    let target = final_slot(&nodes[0]).expect("node 0 answers") + 3;
    eventually(
        "the newcomer to hold every record",
        Duration::from_secs(120),
        || final_slot(&newcomer).filter(|&slot| slot >= target),
    );
    assert_eq!(digests(&newcomer, 1, target), digests(&nodes[0], 1, target));
    let after = nodes[0]
        .rpc(
            "cobuild_getSlotRecords",
            json!([format!("{:#x}", boundary + 1), format!("{target:#x}")]),
        )
        .expect("records");
    let by_newcomer = after.as_array().expect("records").iter().any(|r| {
        r["record"]["epoch"].as_u64() == Some(1)
            && r["record"]["cuts"]
                .as_array()
                .is_some_and(|cuts| cuts.iter().any(|c| c["cut"]["member"].as_u64() == Some(4)))
    });
    assert!(by_newcomer, "the newcomer's cuts count in epoch 1: {after}");
    let registry = [
        "--registry-contract",
        contract,
        "--registry-rpc-url",
        &hub.url,
    ];
    verify(&newcomer, &registry, target);
}
