//! `cobuild devnet --nodes N`: this process is the hub (the embedded chain, the relay that
//! takes the N members' bids, the proposer and the eth RPC), and each member node runs as its
//! own `cobuild node` process.
//!
//! ```text
//!  hub (this process)                              node-<i> (child process, own data dir)
//!  ──────────────────                              ─────────────────────────────────────
//!  layout::prepare: keys, registry.toml, ports
//!  Devnet::start_hub(members' BLS keys)
//!  Supervisor::spawn(cobuild node ...) ──────────▶ MemberNode: replica follows the hub RPC,
//!  wait for each node's RPC port                    builds per payload_attributes event,
//!  endpoints.json, banner                           bids to the hub relay
//!  Devnet::run (proposer) until Ctrl-C/SIGTERM,
//!    after Supervisor::stop: SIGTERM, then SIGKILL
//! ```
//! A node that dies is logged, not restarted: `endpoints.json` records each node's full
//! command line, so it can be restarted by hand and catches up from the hub.

mod contract;
pub(crate) mod endpoints;
mod layout;
mod ports;
mod supervise;

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use alloy_primitives::Address;
use cobuild_node::{Devnet, member::extra_data};
use cobuild_relay::{
    BlsPublicKey,
    events::{EVENTS_PATH, PAYLOAD_ATTRIBUTES_TOPIC},
};
use eyre::WrapErr;

use self::{
    endpoints::{Endpoints, Hub, Node, dial},
    layout::{NodePlan, Ports},
    ports::{PortBook, check_distinct},
    supervise::Supervisor,
};
use crate::{args::OrderflowArgs, devnet::DevnetArgs, logging::LogArgs, node::NodeArgs};

/// How long the hub waits for a new node's RPC server before it prints the banner anyway.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the hub and `count` member nodes until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: DevnetArgs, count: u32) -> eyre::Result<()> {
    let data_dir = std::path::absolute(&args.data_dir)
        .wrap_err_with(|| format!("resolving {}", args.data_dir.display()))?;
    let previous = Endpoints::read(&data_dir);
    let host = dial(SocketAddr::new(args.orderflow.http_addr, 0)).ip();
    let ports = Ports {
        host,
        hub_rpc: args.orderflow.http_port,
    };
    // The nodes' ports stay bound by this process until the nodes start, so the hub's own
    // servers, bound before that, cannot be given one of them.
    let mut book = PortBook::new([args.orderflow.http_port, args.relay_port]);
    let (registry, plans) = layout::prepare(&data_dir, count, ports, previous.as_ref(), &mut book)?;
    let builders = plans
        .iter()
        .map(|p| BlsPublicKey::try_from(p.public.bls_key.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| eyre::eyre!("a BLS key in {} is not 48 bytes", registry.display()))?;
    let mut config = args.config()?;
    config.data_dir = data_dir.clone();
    let devnet = Devnet::start_hub(config, builders)
        .await
        .wrap_err_with(|| format!("starting the devnet hub in {}", data_dir.display()))?;
    let hub_ports = [
        ("the hub's RPC", devnet.rpc_addr.port()),
        ("the relay", devnet.relay_addr.port()),
    ];
    let node_ports = plans.iter().flat_map(|p| {
        [
            (format!("node {}'s RPC", p.id), p.rpc_port),
            (format!("node {}'s P2P", p.id), p.p2p_port),
            (format!("node {}'s admin API", p.id), p.admin_port),
        ]
    });
    let node_ports: Vec<(String, u16)> = node_ports.collect();
    check_distinct(
        hub_ports
            .into_iter()
            .chain(node_ports.iter().map(|(what, port)| (what.as_str(), *port))),
    )?;
    let hub = Hub {
        rpc: format!("http://{}", dial(devnet.rpc_addr)),
        relay: format!("http://{}", dial(devnet.relay_addr)),
        events: format!(
            "http://{}{EVENTS_PATH}?topics={PAYLOAD_ATTRIBUTES_TOPIC}",
            dial(devnet.relay_addr)
        ),
        pid: std::process::id(),
        data_dir: data_dir.clone(),
    };

    let program = std::env::current_exe().wrap_err("finding the cobuild binary")?;
    let mut supervisor = Supervisor::new();
    // The banner is rendered now (the devnet moves into its run below) with a slot for the
    // node lines, which exist only once the nodes run.
    let template = crate::devnet::banner(&devnet, &args, &[NODES_SLOT.to_owned()]);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The hub produces blocks while the nodes are set up: deploying the registry needs them.
    let run = devnet.run(async move {
        let _ = stop_rx.await;
    });
    tokio::pin!(run);
    let setup = async {
        let contract = contract::ensure(&hub.rpc, &data_dir, &plans, host).await?;
        book.release();
        let mut nodes = Vec::new();
        for plan in &plans {
            let node_args = node_args(&args, plan, contract, &hub);
            let argv = node_args.to_argv();
            // Spawned here, on the thread that runs this future: see `Supervisor::spawn`.
            let pid = supervisor.spawn(plan.id, &program, &argv, &plan.out())?;
            nodes.push(node_endpoints(plan, &program, &argv, pid, host)?);
        }
        // A devnet short of a node is not the devnet asked for: it stops, and says why.
        wait_for_nodes(
            &supervisor,
            host,
            &plans,
            Instant::now() + NODE_READY_TIMEOUT,
        )
        .await?;
        let endpoints = Endpoints {
            hub: hub.clone(),
            registry: registry.clone(),
            registry_contract: Some(contract),
            nodes,
        };
        let file = endpoints.write(&data_dir)?;
        let mut extra = vec![
            format!("  endpoints  {}", file.display()),
            format!(
                "  registry   contract {contract} (owner: dev account {}), members also in {}",
                contract::OWNER_ACCOUNT,
                registry.display()
            ),
        ];
        for node in &endpoints.nodes {
            extra.push(format!(
                "  node {:<5} rpc {}  p2p {}  admin {}  coinbase {}  log {}",
                node.id,
                node.rpc,
                node.p2p,
                node.admin,
                node.coinbase,
                node.log.display()
            ));
        }
        let mut lines = extra.join("\n");
        lines.push('\n');
        crate::devnet::print_banner(&template.replace(&format!("{NODES_SLOT}\n"), &lines));
        Ok::<_, eyre::Report>(())
    };
    let set_up = tokio::select! {
        result = &mut run => return result.wrap_err("devnet stopped while starting its nodes"),
        done = setup => done,
    };
    if let Err(error) = set_up {
        supervisor.stop().await;
        let _ = stop_tx.send(());
        if let Err(stopped) = run.await {
            tracing::warn!(error = %stopped, "cli.devnet.stop_failed");
        }
        return Err(error);
    }
    tokio::select! {
        result = &mut run => return result.wrap_err("devnet stopped with an error"),
        () = crate::shutdown_signal() => {}
    }
    // The nodes stop first, while the hub still serves them, so they never see it vanish.
    supervisor.stop().await;
    let _ = stop_tx.send(());
    run.await.wrap_err("devnet stopped with an error")
}

/// Where the node lines go in the banner.
const NODES_SLOT: &str = "\u{0}nodes";

/// The command line of node `plan`: the hub's orderflow and bidding settings on the node's
/// own port.
fn node_args(args: &DevnetArgs, plan: &NodePlan, contract: Address, hub: &Hub) -> NodeArgs {
    NodeArgs {
        data_dir: plan.dir.clone(),
        key_file: Some(plan.key_file.clone()),
        // The nodes follow the registry contract on the hub's chain.
        registry: None,
        registry_contract: Some(contract),
        registry_rpc: Some(hub.rpc.clone()),
        member_id: Some(plan.id),
        hub_rpc: Some(hub.rpc.clone()),
        relay_url: Some(hub.relay.clone()),
        el_rpc: None,
        beacons: Vec::new(),
        relays: Vec::new(),
        genesis_fork_version: None,
        p2p_port: Some(plan.p2p_port),
        // Its token is in the node's data dir.
        admin_port: plan.admin_port,
        // Slots are announced as they open; polling is only the fallback.
        poll_ms: 1000,
        recovery_timeout_secs: 10,
        // A node's replica is its own; the hub's flag is for the hub's chain.
        accept_chain_rollback: false,
        log_retention_slots: args.log_retention_slots,
        refund_batch_slots: args.refund_batch_slots,
        // Every devnet node starts with the devnet, so the registry's members found the ledger.
        ledger_founders: None,
        orderflow: OrderflowArgs {
            http_port: plan.rpc_port,
            ..args.orderflow.clone()
        },
        bid: args.bid.clone(),
        // The node writes and rotates its own log; what it prints outside it (a panic, an
        // error before the log opens) goes to `node.out`.
        log: LogArgs {
            log_file: Some(plan.log()),
            ..args.log.clone()
        },
    }
}

fn node_endpoints(
    plan: &NodePlan,
    program: &Path,
    argv: &[OsString],
    pid: u32,
    host: std::net::IpAddr,
) -> eyre::Result<Node> {
    let utf8 = |arg: &std::ffi::OsStr| {
        arg.to_str().map(str::to_owned).ok_or_else(|| {
            eyre::eyre!("{arg:?} is not UTF-8: endpoints.json cannot record the node's command")
        })
    };
    let argv = std::iter::once(program.as_os_str())
        .chain(argv.iter().map(OsString::as_os_str))
        .map(utf8)
        .collect::<eyre::Result<Vec<_>>>()?;
    Ok(Node {
        id: plan.id,
        rpc: format!("http://{}", SocketAddr::new(host, plan.rpc_port)),
        p2p: SocketAddr::new(host, plan.p2p_port).to_string(),
        admin: format!("http://127.0.0.1:{}", plan.admin_port),
        data_dir: plan.dir.clone(),
        key_file: plan.key_file.clone(),
        log: plan.log(),
        pid: Some(pid),
        coinbase: plan.public.coinbase,
        bls_key: plan.public.bls_key.clone(),
        extra_data: String::from_utf8_lossy(&extra_data(plan.id)).into_owned(),
        argv,
    })
}

/// How long a node's RPC may take to answer the readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether `addr` answers an HTTP request, whatever the answer. A connection alone says
/// nothing: a node holds its ports with listening sockets from its first moment, long before it
/// serves, and the kernel accepts connections to them that nothing will answer.
async fn answers_http(client: &reqwest::Client, addr: SocketAddr) -> bool {
    const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"net_version","params":[]}"#;
    client
        .post(format!("http://{addr}"))
        .header("content-type", "application/json")
        .body(BODY)
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .is_ok()
}

/// Waits until every node serves its RPC (polled: a child's readiness has no event the hub
/// could wait for); an error naming the first node that exited (the others may have stopped
/// because of it: a member without a quorum does not start), or the first not serving at the
/// deadline, with its files.
async fn wait_for_nodes(
    supervisor: &Supervisor,
    host: std::net::IpAddr,
    plans: &[NodePlan],
    deadline: Instant,
) -> eyre::Result<()> {
    let mut waiting: Vec<&NodePlan> = plans.iter().collect();
    let client = reqwest::Client::new();
    loop {
        // All at once: a probe of a node still holding its port waits out its whole timeout.
        let mut probes = tokio::task::JoinSet::new();
        for (i, plan) in waiting.iter().enumerate() {
            let addr = SocketAddr::new(host, plan.rpc_port);
            let client = client.clone();
            probes.spawn(async move { (i, answers_http(&client, addr).await) });
        }
        let mut answered = vec![false; waiting.len()];
        while let Some(probe) = probes.join_next().await {
            if let Ok((i, yes)) = probe {
                answered[i] = yes;
            }
        }
        waiting = waiting
            .into_iter()
            .zip(answered)
            .filter_map(|(plan, yes)| (!yes).then_some(plan))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if let Some((id, how)) = supervisor.first_exit() {
            let files = plans
                .iter()
                .find(|p| p.id == id)
                .map(NodePlan::files)
                .unwrap_or_default();
            eyre::bail!("node {id} did not start: it exited ({how}); {files}");
        }
        if Instant::now() >= deadline {
            let plan = waiting[0];
            eyre::bail!(
                "node {} did not start: no RPC on port {} within {NODE_READY_TIMEOUT:?}; {}",
                plan.id,
                plan.rpc_port,
                plan.files()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
