//! Integration tests of the workload generator and the benchmark run: determinism, the mix,
//! simulation outcomes, real conflicts on the pool, an end-to-end run against anvil whose blocks
//! re-import, signed-bundle intake, and replication among members on loopback.

use std::{collections::HashSet, time::Duration};

use alloy_sol_types::SolCall;
use cobuild_bench::{
    AnvilConfig, BenchConfig, IntakeConfig, OrderKind, ReplicationConfig, Workload, WorkloadConfig,
    bench::{
        Algo, BidLatencyConfig, Machine, Report, bid_latency, build_block, intake,
        prepare_round_seal, seal_block, sim_orders,
    },
    replication, run_pool,
};
use cobuild_builder::conflict_groups;
use cobuild_contracts::IPool;
use cobuild_sim::{Order, SimRejected, SimRound, SimulatedOrder, Simulator, simulate_order};
use revm::database::CacheDB;

fn workload(orders: usize, seed: u64) -> Workload {
    Workload::generate(WorkloadConfig::new(orders, seed)).expect("workload generates")
}

fn simulate(w: &Workload) -> SimRound {
    let ctx = w.context().expect("context");
    sim_orders(w, &ctx, &mut Simulator::new(0).expect("simulator")).expect("simulates")
}

#[test]
fn test_same_seed_same_transactions_other_seed_others() {
    let a = workload(120, 7);
    let b = workload(120, 7);
    let c = workload(120, 8);
    assert_eq!(
        a.canonical, b.canonical,
        "same seed, same signed transactions"
    );
    assert_eq!(a.order_kinds(), b.order_kinds());
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(
        a.chain.head().hash(),
        b.chain.head().hash(),
        "same setup blocks"
    );
    assert_ne!(a.fingerprint(), c.fingerprint());
    let a_hashes: HashSet<_> = a.order_kinds().iter().map(|(id, _)| *id).collect();
    assert!(
        c.order_kinds().iter().all(|(id, _)| !a_hashes.contains(id)),
        "another seed shares no order"
    );
}

#[test]
fn test_mix_has_every_kind_many_senders_and_several_nonces() {
    let w = workload(200, 1);
    assert_eq!(w.orders(), 200);
    for kind in OrderKind::ALL {
        let listed = w.order_kinds().iter().filter(|(_, k)| *k == kind).count();
        assert!(listed > 0, "no {kind}");
        assert_eq!(listed, w.mix.count(kind), "{kind}");
    }
    assert_eq!(w.bundles.len(), w.mix.bundles());
    assert_eq!(w.txs.len() + w.bundles.len(), 200);
    let senders: HashSet<_> = w.txs.iter().map(|t| t.sender()).collect();
    assert!(senders.len() >= 30, "many senders: {}", senders.len());
    assert!(
        senders.len() * 2 < w.txs.len(),
        "several nonces per sender on average"
    );
    let coinbase = w.context().expect("context").attrs.fee_recipient;
    for bundle in &w.bundles {
        let txs = &bundle.bundle.txs;
        assert_eq!(txs.len(), 2, "swap, then the bid");
        let bid = &txs[1];
        assert_eq!(
            alloy_consensus::Transaction::to(bid.inner()),
            Some(coinbase),
            "the bid pays the coinbase"
        );
        let may_revert = w.kind(&bundle.id) == Some(OrderKind::ArbitrageMayRevert);
        assert_eq!(!bundle.bundle.reverting.is_empty(), may_revert);
    }
    let raw: usize = w.txs.len() + w.bundles.iter().map(|b| b.bundle.txs.len()).sum::<usize>();
    assert_eq!(
        w.canonical.len(),
        raw,
        "bundles flattened into the canonical list"
    );
}

#[test]
fn test_a_round_seals_a_copy_and_its_block_goes_on_growing() {
    let w = workload(200, 3);
    let ctx = w.context().expect("context");
    let round = simulate(&w);
    let built = build_block(&ctx, &round.orders, Algo::Greedy).expect("builds");
    let (sealed, growing) =
        seal_block(prepare_round_seal(&ctx, &built).expect("replays")).expect("seals");
    assert_eq!(sealed.block.hash, built.block.block.hash);
    // The round's block is handed back whole, so the benchmark times the copy, not its drop,
    // and the block could take more transactions and seal to the same block again.
    let growing = growing.expect("a round seals a copy of its growing block");
    assert_eq!(
        growing.transactions().len(),
        built.block.block.block.body.transactions.len()
    );
    assert_eq!(
        growing.finish().expect("seals").block.hash,
        built.block.block.hash
    );
}

#[test]
fn test_pool_simulates_with_the_expected_share_of_valid_orders() {
    let w = workload(200, 3);
    let round = simulate(&w);
    assert_eq!(round.orders.len(), w.mix.valid_on_head());
    assert_eq!(round.rejected, w.mix.count(OrderKind::ArbitrageVoid));
    for order in &round.orders {
        let kind = w.kind(&order.order.id()).expect("a generated order");
        assert_ne!(kind, OrderKind::ArbitrageVoid, "void bundles are rejected");
        assert!(order.outcome.gas_used > 0);
        if kind.is_bundle() {
            assert!(
                !order.outcome.coinbase_profit.is_zero(),
                "a bundle pays its bid"
            );
        }
    }
}

#[test]
fn test_arbitrage_bundles_share_a_conflict_group_with_swaps_and_exclude_each_other() {
    let w = workload(200, 4);
    let round = simulate(&w);
    let groups = conflict_groups(&round.orders);
    let group_of = |i: usize| {
        groups
            .iter()
            .position(|g| g.contains(&i))
            .expect("every order is in a group")
    };
    let bundles: Vec<usize> = (0..round.orders.len())
        .filter(|&i| matches!(round.orders[i].order, Order::Bundle(_)))
        .collect();
    assert!(bundles.len() >= 2);
    let group = group_of(bundles[0]);
    for &i in &bundles {
        assert_eq!(group_of(i), group, "arbitrage bundles conflict on the pool");
    }
    let swap = (0..round.orders.len())
        .find(|&i| w.kind(&round.orders[i].order.id()) == Some(OrderKind::Swap))
        .expect("a swap");
    assert_eq!(group_of(swap), group, "swaps conflict with the arbitrage");
    assert!(
        groups.len() > 1,
        "plain transfers of other senders stay apart"
    );

    // And they really exclude each other: after one arbitrage, another in the same direction
    // reverts and its bundle is void.
    let ctx = w.context().expect("context");
    let env = ctx.evm_env();
    let token_in = |order: &SimulatedOrder| {
        let swap = &order.order.txs()[0];
        IPool::swapCall::abi_decode(alloy_consensus::Transaction::input(swap.inner()))
            .expect("a swap")
            .tokenIn
    };
    let arbs: Vec<&SimulatedOrder> = round
        .orders
        .iter()
        .filter(|o| w.kind(&o.order.id()) == Some(OrderKind::Arbitrage))
        .map(|o| o.as_ref())
        .collect();
    let (first, second) = arbs
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            arbs[i + 1..]
                .iter()
                .find(|b| token_in(b) == token_in(a))
                .map(|b| (*a, *b))
        })
        .expect("two arbitrages in the same direction");
    let mut db = CacheDB::new(&ctx.state);
    let landed = simulate_order(&mut db, &env, &first.order).expect("state reads");
    assert!(landed.is_ok(), "the first arbitrage lands: {landed:?}");
    assert!(matches!(
        simulate_order(&mut db, &env, &second.order).expect("state reads"),
        Err(SimRejected::Reverted { .. })
    ));
}

#[test]
fn test_end_to_end_run_with_anvil_baseline_and_blocks_that_reimport() {
    let w = workload(100, 5);
    let config = BenchConfig {
        pools: Vec::new(),
        reps: 1,
        warmup: 0,
        sim_threads: vec![1],
        anvil: Some(AnvilConfig {
            path: AnvilConfig::default_path(),
            reps: 1,
        }),
        intake: None,
        ..BenchConfig::default()
    };
    let report = run_pool(&w, &config).expect("bench runs");
    assert_eq!(report.orders, 100);
    assert_eq!(report.builds.len(), Algo::ALL.len());
    for build in &report.builds {
        assert!(
            !build.value.is_zero(),
            "{} block is worth something",
            build.algorithm
        );
        assert!(build.reexecutes, "{} block re-executes", build.algorithm);
        assert!(build.latency.p50 > Duration::ZERO);
    }
    let anvil = report.anvil.as_ref().expect("anvil baseline ran");
    assert!(
        anvil.txs > 0 && anvil.gas_used > 0,
        "anvil mined the pending txs"
    );
    assert!(anvil.version.contains("1.7.1"), "{}", anvil.version);
    // The same orders on anvil's state over JSON-RPC: the same ones valid, a block worth
    // something, sealed again from proofs to the same block (checked inside), with round trips
    // counted.
    let el = anvil.el.as_ref().expect("built on anvil's state");
    assert_eq!(
        el.valid, report.valid,
        "the same orders simulate on both states"
    );
    assert!(el.txs > 0 && !el.value.is_zero(), "{el:?}");
    assert!(
        el.list.round_trips >= 1 && el.fetch.round_trips >= 1 && el.seal.round_trips >= 1,
        "{el:?}"
    );
    assert!(report.ratio_vs_anvil("build_best").is_some());
    let table = report.to_string();
    assert!(table.contains("anvil evm_mine") && table.contains("conflict-search"));
    assert!(table.contains("on anvil's state over JSON-RPC"), "{table}");
    // The sealed block, signed and posted to a relay on loopback, in both encodings.
    assert!(
        report.submit.json.samples > 0 && report.submit.ssz_gzip.p50 > Duration::ZERO,
        "{:?}",
        report.submit
    );
    assert!(table.contains("submit the same block"), "{table}");

    // `--json` writes every figure, durations in milliseconds, beside the machine's load.
    let run = Report {
        seed: 5,
        gas_limit: config.gas_limit,
        reps: config.reps,
        warmup: config.warmup,
        budget: config.budget,
        pools: vec![report.clone()],
        intake: None,
        replication: None,
        bid_latency: None,
        machine: Machine::now(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.json");
    run.write_json(&path).expect("writes");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("reads")).expect("json");
    assert!(json["machine"]["cores"].as_u64() >= Some(1), "{json}");
    // This test is built with the same profile, into `<profile>/deps/`.
    let exe = std::env::current_exe().expect("test binary");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent()?.file_name()?.to_str())
        .expect("profile folder");
    assert_eq!(json["machine"]["profile"], profile, "{json}");
    assert!(
        run.to_string()
            .contains(&format!("built with the {profile} profile")),
        "{run}"
    );
    let pool = &json["pools"][0];
    assert_eq!(pool["orders"], 100);
    assert_eq!(
        pool["builds"].as_array().map(Vec::len),
        Some(Algo::ALL.len())
    );
    for build in pool["builds"].as_array().expect("builds") {
        let p50 = build["latency"]["p50_ms"].as_f64().expect("p50 in ms");
        assert!(p50 > 0.0, "{build}");
    }
    assert!(pool["anvil"]["latency"]["p50_ms"].as_f64() > Some(0.0));
    assert!(
        pool["anvil"]["el"]["seal"]["ms"].as_f64() > Some(0.0),
        "{pool}"
    );
    assert!(pool["seal"]["latency"]["p99_ms"].as_f64().is_some());

    // What the seal hashed is the best block's change to the state, and it is printed.
    let best = report.blocks.last().expect("build_best block");
    let changed = &best.block.diff;
    let size = &pool["seal"]["size"];
    assert_eq!(size["accounts"], changed.accounts.len(), "{size}");
    assert_eq!(size["storage_tries"], changed.storage.len(), "{size}");
    let slots: usize = changed.storage.values().map(|s| s.slots.len()).sum();
    assert!(
        slots > 0,
        "the workload's swaps and transfers write storage"
    );
    assert_eq!(size["slots"], slots, "{size}");
    assert!(size["branch_nodes"].as_u64() > Some(0), "{size}");
    assert!(
        run.to_string().contains(&format!(
            "the block changed {} accounts and {slots} slots in {} storage tries; the seal rebuilt {} branch nodes",
            changed.accounts.len(),
            changed.storage.len(),
            size["branch_nodes"]
        )),
        "{run}"
    );

    // Every block stands on its own on the chain: import the best one.
    w.chain
        .import(best.block.block.block.clone())
        .expect("the best block re-imports");
    assert_eq!(w.chain.head().hash(), best.block.block.hash);
}

#[test]
fn test_intake_accepts_every_signed_bundle() {
    let figure = intake(&IntakeConfig {
        requests: 300,
        connections: 4,
        signers: 8,
        timeout: Duration::from_secs(30),
        resend_blocks: 3,
    })
    .expect("intake runs");
    assert_eq!(figure.sent, 300);
    assert_eq!(figure.accepted, 300, "errors: {}", figure.errors);
    assert!(figure.requests_per_sec > 0.0 && figure.verify_per_sec > 0.0);
    let resent = figure.resent.expect("the re-sent run is made");
    assert_eq!(
        (resent.run.sent, resent.run.accepted),
        (300, 300),
        "errors: {}",
        resent.run.errors
    );
    // 100 transactions, each in bundles for blocks 1 to 3: the second and third bundle find
    // the signer in the sender cache (other tests of this process share it, and may add hits).
    assert!(
        resent.senders.hits >= 200,
        "signers from the sender cache: {:?}",
        resent.senders
    );
}

#[test]
fn test_orders_under_load_reach_the_nodes_bids() {
    let figure = bid_latency(&BidLatencyConfig {
        rate: 100,
        duration: Duration::from_secs(2),
        slot: Duration::from_millis(500),
        connections: 2,
        probes: 3,
    })
    .expect("accepted -> bid bench runs");
    assert_eq!(figure.behind, 0, "100 orders/s never fill the connections");
    assert_eq!(figure.no_sender, 0, "a sender for every bundle of a slot");
    assert_eq!(figure.offered, 200);
    assert_eq!(
        figure.raw.acked, 100,
        "every raw transaction is acknowledged"
    );
    // A bundle sent as its block is committed is refused ("the head is already N"): a race
    // of the slot switch, rare at this rate.
    assert_eq!(figure.bundles.acked + figure.refused, 100);
    assert!(figure.bundles.acked >= 90, "{figure}");
    assert_eq!(figure.idle.acked, 3);
    assert!(
        figure.idle.in_bid >= 1,
        "an idle node bids a probe: {figure}"
    );
    // Raw transactions stay pooled until a block holds them, so every one reaches a bid; a
    // bundle misses when its slot ends before a bid holds it (often, in a debug build's slow
    // rounds), so only some must make it.
    assert_eq!(figure.raw.in_bid, figure.raw.acked, "{figure}");
    assert!(figure.bundles.in_bid > 0, "{figure}");
    assert_eq!(figure.bundles.latency.samples, figure.bundles.in_bid);
    assert_eq!(figure.raw.latency.samples, figure.raw.in_bid);
    assert!(figure.bids > 0 && figure.blocks >= 4, "{figure}");
    // The footprint: a sample at the load's start and one at its end, each with the process's
    // memory and the data folder's size (not monotonic: redb may trim its file on a commit).
    let samples = &figure.footprint.samples;
    assert!(samples.len() >= 2, "{samples:?}");
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    assert!(last.at >= Duration::from_secs(2) && first.at < Duration::from_secs(1));
    assert!(
        samples
            .iter()
            .all(|s| s.data_bytes > 0 && s.rss_bytes.is_some_and(|b| b > 0)),
        "{samples:?}"
    );
    let table = figure.to_string();
    assert!(
        table.contains("load: bundles") && table.contains("idle") && table.contains("footprint"),
        "{table}"
    );
}

#[test]
fn test_replication_reaches_every_member_with_and_without_load() {
    // Tracing to the test's output, to see where a slow run spends its time.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cobuild_bench=info")
        .try_init();
    let figure = replication(&ReplicationConfig {
        members: 4,
        rate: 200,
        duration: Duration::from_millis(500),
        flood_duration: Duration::from_millis(500),
        flood_in_flight: 2,
        payload_orders: 20,
        commit_reps: 20,
        intake: Some(IntakeConfig {
            requests: 100,
            connections: 4,
            signers: 8,
            timeout: Duration::from_millis(500),
            resend_blocks: 1,
        }),
        ledger_slots: 5,
        ledger_slot: Duration::from_millis(100),
        ..ReplicationConfig::default()
    })
    .expect("replication bench runs");
    let ledger = figure.ledger.as_ref().expect("the ledger ran");
    assert_eq!(
        (ledger.records, ledger.missed),
        (5, 0),
        "every slot final at every member"
    );
    assert_eq!(ledger.latency.samples, 5);
    assert_eq!(figure.at_rate.offered, 100, "25 per member");
    for (name, phase) in [("rate", &figure.at_rate), ("flood", &figure.flood)] {
        assert!(phase.offered > 0, "{name}: nothing offered");
        assert_eq!(phase.lost, 0, "{name}: lost orders");
        assert_eq!(phase.replicated, phase.offered, "{name}");
        assert_eq!(phase.duplicates, 0, "{name}: delivered twice");
        assert_eq!(phase.latency.samples, phase.replicated, "{name}");
        assert!(phase.latency.p50 >= phase.network.p50, "{name}");
        assert!(phase.replicated_per_sec > 0.0, "{name}");
    }
    let intake = figure.intake.as_ref().expect("intake ran");
    assert_eq!(intake.off.errors, 0);
    assert_eq!(intake.on.errors, 0);
    assert!(intake.off.accepted > 0 && intake.on.accepted > 0);
    assert_eq!(
        intake.replicated.offered, intake.on.accepted,
        "every accepted order went through the hook"
    );
    assert_eq!(intake.replicated.lost, 0, "accepted orders lost");
    assert!(intake.ratio() > 0.0);
    assert_eq!(figure.strays, 0);
    assert!(figure.baseline.commit.samples > 0);
    assert!(figure.baseline.receive_duplicate.samples > 0);
    assert!(figure.baseline.receive_ceiling(4).is_some());
    let table = figure.to_string();
    println!("{table}");
    assert!(table.contains("== replication: 4 members") && table.contains("ratio on / off"));
}
