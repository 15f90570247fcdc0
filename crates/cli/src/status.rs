//! `cobuild status`: what each node reports over its admin API — members and links,
//! per-origin replication lag, pool sizes and the last bids.
//!
//! With `--node URL` it asks one node (token from `--token-file`); without, it reads the
//! devnet's `endpoints.json` and asks every node listed there.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use cobuild_rpc::NodeStatus;
use eyre::{WrapErr, eyre};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StatusArgs {
    /// Admin API URL of one node (`http://127.0.0.1:PORT`).
    #[arg(long, requires = "token_file")]
    node: Option<String>,
    /// The node's admin token file (`<node data dir>/admin.token`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The devnet's data directory, whose endpoints.json lists the nodes.
    #[arg(long, default_value = "data/devnet", env = "COBUILD_DATA_DIR")]
    data_dir: PathBuf,
}

/// A node to ask.
struct Target {
    label: String,
    admin: String,
    token_file: PathBuf,
}

pub(crate) fn status(args: &StatusArgs) -> eyre::Result<String> {
    let targets = match (&args.node, &args.token_file) {
        (Some(node), Some(token_file)) => vec![Target {
            label: node.clone(),
            admin: node.clone(),
            token_file: token_file.clone(),
        }],
        _ => devnet_targets(&args.data_dir)?,
    };
    // One runtime for every node asked, not one per request.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = String::new();
    for target in targets {
        match query(&runtime, &target) {
            Ok(status) => render(&mut out, &target.label, &status),
            Err(e) => {
                let _ = writeln!(out, "{}: unreachable ({e:#})\n", target.label);
            }
        }
    }
    Ok(out)
}

fn devnet_targets(data_dir: &std::path::Path) -> eyre::Result<Vec<Target>> {
    let path = data_dir.join("endpoints.json");
    let text = std::fs::read_to_string(&path).wrap_err_with(|| {
        format!(
            "reading {} (is `cobuild devnet --nodes N` running? or pass --node and --token-file)",
            path.display()
        )
    })?;
    let endpoints: serde_json::Value =
        serde_json::from_str(&text).wrap_err_with(|| format!("parsing {}", path.display()))?;
    let nodes = endpoints
        .get("nodes")
        .and_then(|n| n.as_array())
        .ok_or_else(|| eyre!("{} lists no nodes", path.display()))?;
    nodes
        .iter()
        .map(|node| {
            let field = |name: &str| {
                node.get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| eyre!("a node in {} has no {name}", path.display()))
            };
            let id = node.get("id").and_then(|v| v.as_u64()).unwrap_or_default();
            Ok(Target {
                label: format!("node {id} ({})", field("rpc")?),
                admin: field("admin")?,
                token_file: PathBuf::from(field("data_dir")?).join("admin.token"),
            })
        })
        .collect()
}

fn query(runtime: &tokio::runtime::Runtime, target: &Target) -> eyre::Result<NodeStatus> {
    let token = std::fs::read_to_string(&target.token_file)
        .wrap_err_with(|| format!("reading {}", target.token_file.display()))?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"cobuild_status","params":[]}"#;
    let response = post(runtime, &target.admin, token.trim(), body)?;
    let value: serde_json::Value = serde_json::from_str(&response).wrap_err("not JSON")?;
    if let Some(error) = value.get("error") {
        return Err(eyre!("{error}"));
    }
    serde_json::from_value(value.get("result").cloned().unwrap_or_default())
        .wrap_err("unexpected status shape")
}

/// One JSON-RPC POST with the bearer token, waited for on `runtime`.
fn post(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    token: &str,
    body: &str,
) -> eyre::Result<String> {
    runtime.block_on(async {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send(),
        )
        .await
        .map_err(|_| eyre!("timed out"))??;
        let code = response.status();
        let text = response.text().await?;
        if !code.is_success() {
            return Err(eyre!("HTTP {code}: {text}"));
        }
        Ok(text)
    })
}

fn render(out: &mut String, label: &str, status: &NodeStatus) {
    let member = status
        .member
        .map_or_else(|| "?".to_owned(), |m| m.to_string());
    let _ = writeln!(
        out,
        "{label}: member {member}, head #{}, pool {} txs + {} bundles",
        status.head, status.pool_txs, status.pool_bundles
    );
    if let Some(ledger) = &status.ledger {
        let last = ledger
            .final_slot
            .map_or_else(|| "none yet".to_owned(), |slot| format!("slot {slot}"));
        let members: Vec<String> = ledger
            .epoch_members
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(
            out,
            "  ledger: last final record {last}, {} blocks behind the head; epoch {} (members {})",
            ledger.lag,
            ledger.epoch,
            members.join(", ")
        );
    }
    let r = &status.refusals;
    let _ = writeln!(
        out,
        "  refused envelopes: {} bad signatures, {} equivocations, {} unknown origins, {} \
         malformed, {} throttled (origin) + {} (peer)",
        r.bad_signatures,
        r.equivocations,
        r.unknown_origins,
        r.malformed,
        r.throttled_origins,
        r.throttled_peers
    );
    let _ = writeln!(
        out,
        "  replicated orders: {} refused by a rule, {} failed, {} of unknown kinds",
        r.orders_refused, r.orders_failed, r.unknown_kinds
    );
    let _ = writeln!(out, "  members:");
    for m in &status.members {
        let link = if m.me {
            "this node".to_owned()
        } else {
            m.last_heard_ms_ago.map_or_else(
                || "no contact".to_owned(),
                |ms| format!("heard {ms} ms ago"),
            )
        };
        let _ = writeln!(out, "    {:>3}  {:<22} {link}", m.id, m.address);
    }
    let _ = writeln!(
        out,
        "  replication (orders held / known, missing, archived):"
    );
    for o in &status.origins {
        let _ = writeln!(
            out,
            "    origin {:>3}  {:>8} / {:<8} missing {}  archived {}",
            o.origin, o.contiguous, o.known_high, o.missing, o.archived
        );
    }
    let _ = writeln!(out, "  last bids:");
    if status.bids.is_empty() {
        let _ = writeln!(out, "    none yet");
    }
    for b in &status.bids {
        let _ = writeln!(
            out,
            "    slot {:>6}  {}  {} wei  {} orders",
            b.slot, b.block_hash, b.value, b.orders
        );
    }
    out.push('\n');
}
