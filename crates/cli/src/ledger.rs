//! `cobuild ledger`: read the slot ledger from any member's RPC, and check it as an outsider
//! would: every certificate against the registry's keys, the hash chain, every cut's signature
//! and the agreed cut, and each record's block against the chain.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use alloy_primitives::{B256, U64};
use cobuild_consensus::{
    Entry, Epoch, Membership, SlotRecord, check_structure, genesis_digest, to_b256,
};
use cobuild_registry::{FileRegistry, Registry as _};
use cobuild_rpc::{LedgerEntry, MAX_RECORDS_PER_CALL};
use eyre::{WrapErr, bail, eyre};
use serde_json::{Value, json};

use crate::cluster::endpoints::{ENDPOINTS_FILE, Endpoints};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LedgerCommand {
    /// Print one final record of the slot ledger (the last one without --slot).
    Show(ShowArgs),
    /// Check final records: certificates against the registry's keys, the hash chain, the
    /// cuts and agreed cut, and each record's block against the chain.
    Verify(VerifyArgs),
    /// Print the ledger's founding members as JSON, for `cobuild node --ledger-founders` on a
    /// member that joins after the ledger's first membership change. Check them against a
    /// second member's answer, and `ledger verify` the new node's ledger once it runs.
    Founders(Target),
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Target {
    /// A member node's JSON-RPC URL (default: the first node of the devnet in --data-dir).
    #[arg(long)]
    rpc: Option<String>,
    /// The devnet's data directory, whose endpoints.json lists the nodes and the registry.
    #[arg(long, default_value = "data/devnet", env = "COBUILD_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// The slot (default: the last final record).
    #[arg(long)]
    slot: Option<u64>,
    /// Print the record as JSON, as the RPC serves it.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    /// First slot to check.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Last slot to check (default: the last final record).
    #[arg(long)]
    to: Option<u64>,
    /// The registry file listing the members' keys (default: the registry the devnet's nodes
    /// follow: its contract, or its file).
    #[arg(long, conflicts_with = "registry_contract")]
    registry: Option<PathBuf>,
    /// A registry contract listing the members' keys, read through `--registry-rpc-url`.
    #[arg(long, value_name = "ADDRESS", requires = "registry_rpc_url")]
    registry_contract: Option<alloy_primitives::Address>,
    /// The EL JSON-RPC endpoint that has the registry contract.
    #[arg(long, value_name = "URL", requires = "registry_contract")]
    registry_rpc_url: Option<String>,
}

/// The members the registry lists now: the trust anchor of `ledger verify`.
fn registry_members(
    runtime: &tokio::runtime::Runtime,
    args: &VerifyArgs,
) -> eyre::Result<Vec<cobuild_registry::Member>> {
    let contract = |url: &str, address| {
        let config = cobuild_registry::contract::ContractConfig::new(url.to_owned(), address);
        runtime
            .block_on(cobuild_registry::contract::read_members(&config))
            .wrap_err_with(|| format!("reading the registry contract {address} at {url}"))
    };
    let file = |path: &std::path::Path| {
        FileRegistry::open(path)
            .wrap_err_with(|| format!("opening {}", path.display()))?
            .members()
            .wrap_err("reading the registry")
    };
    match (
        &args.registry,
        &args.registry_contract,
        &args.registry_rpc_url,
    ) {
        (Some(path), _, _) => file(path),
        (None, Some(address), Some(url)) => contract(url, *address),
        _ => {
            let devnet = endpoints(&args.target.data_dir)?;
            match devnet.registry_contract {
                Some(address) => contract(&devnet.hub.rpc, address),
                None => file(&devnet.registry),
            }
        }
    }
}

pub(crate) fn ledger(command: LedgerCommand) -> eyre::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        LedgerCommand::Show(args) => show(&runtime, &args),
        LedgerCommand::Verify(args) => verify(&runtime, &args),
        LedgerCommand::Founders(target) => {
            let founders = founders(&runtime, &rpc_url(&target)?)?;
            Ok(format!("{}\n", serde_json::to_string_pretty(&founders)?))
        }
    }
}

/// The founders a member serves.
fn founders(runtime: &tokio::runtime::Runtime, url: &str) -> eyre::Result<Membership> {
    let founders: Option<Membership> =
        serde_json::from_value(call(runtime, url, "cobuild_getLedgerFounders", json!([]))?)
            .wrap_err("unexpected founders shape")?;
    let founders = founders.ok_or_else(|| eyre!("{url} has not started its ledger"))?;
    founders
        .keys()
        .map_err(|e| eyre!("the founders {url} serves are not usable: {e}"))?;
    Ok(founders)
}

/// Reads a founders file written by `cobuild ledger founders`.
pub(crate) fn read_founders(path: &std::path::Path) -> eyre::Result<Membership> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the ledger founders {}", path.display()))?;
    let founders: Membership = serde_json::from_str(&text)
        .wrap_err_with(|| format!("parsing the ledger founders {}", path.display()))?;
    founders.keys().map_err(|e| {
        eyre!(
            "the ledger founders in {} are not usable: {e}",
            path.display()
        )
    })?;
    Ok(founders)
}

fn endpoints(data_dir: &std::path::Path) -> eyre::Result<Endpoints> {
    let path = data_dir.join(ENDPOINTS_FILE);
    let text = std::fs::read_to_string(&path).wrap_err_with(|| {
        format!(
            "reading {} (is `cobuild devnet --nodes N` running? or pass --rpc)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).wrap_err_with(|| format!("parsing {}", path.display()))
}

pub(crate) fn rpc_url(target: &Target) -> eyre::Result<String> {
    if let Some(rpc) = &target.rpc {
        return Ok(rpc.clone());
    }
    endpoints(&target.data_dir)?
        .nodes
        .first()
        .map(|node| node.rpc.clone())
        .ok_or_else(|| eyre!("the devnet lists no nodes"))
}

/// One JSON-RPC call; its result.
pub(crate) fn call(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    method: &str,
    params: Value,
) -> eyre::Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    runtime.block_on(async {
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            reqwest::Client::new().post(url).json(&body).send(),
        )
        .await
        .map_err(|_| eyre!("{method}: timed out"))?
        .wrap_err_with(|| format!("{method} at {url}"))?;
        let value: Value = response.json().await.wrap_err("not JSON")?;
        if let Some(error) = value.get("error") {
            bail!("{method}: {error}");
        }
        Ok(value.get("result").cloned().unwrap_or(Value::Null))
    })
}

fn show(runtime: &tokio::runtime::Runtime, args: &ShowArgs) -> eyre::Result<String> {
    let url = rpc_url(&args.target)?;
    let slot = args.slot.map(U64::from);
    let result = call(runtime, &url, "cobuild_getSlotRecord", json!([slot]))?;
    if result.is_null() {
        return Ok(match args.slot {
            Some(slot) => format!("no final record of slot {slot} at {url}\n"),
            None => format!("no final record yet at {url}\n"),
        });
    }
    if args.json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&result)?));
    }
    let entry: LedgerEntry = serde_json::from_value(result).wrap_err("unexpected record shape")?;
    Ok(render(&entry))
}

fn render(entry: &LedgerEntry) -> String {
    let record = &entry.record;
    let facts = &record.facts;
    let mut out = String::new();
    let _ = writeln!(out, "slot {} (record {})", record.slot, entry.digest);
    let _ = writeln!(
        out,
        "  block #{} {} (parent {})",
        facts.block.number, facts.block.hash, facts.block.parent
    );
    let winner = facts.winner.0.map_or_else(
        || "none of the members".to_owned(),
        |id| format!("member {id}"),
    );
    let _ = writeln!(out, "  won by {winner}");
    let _ = writeln!(
        out,
        "  proposer payment {} wei, block value to its builder {} wei",
        facts.payment, facts.value
    );
    let members: Vec<String> = record
        .cuts
        .iter()
        .map(|c| c.cut.member.to_string())
        .collect();
    let _ = writeln!(out, "  cuts signed by members {}", members.join(", "));
    let agreed: Vec<String> = record
        .agreed
        .iter()
        .map(|p| format!("{}:{}", p.origin, p.seq))
        .collect();
    let _ = writeln!(out, "  agreed cut (origin:orders) {}", agreed.join(" "));
    let _ = writeln!(out, "  previous record {}", record.prev);
    if let Some(earlier) = cobuild_consensus::refunds_slot(record.slot) {
        let _ = match record.refunds.0 {
            Some(digest) => writeln!(out, "  refunds of slot {earlier}: digest {digest}"),
            None => writeln!(out, "  refunds of slot {earlier}: none (no member won it)"),
        };
    }
    let _ = writeln!(out, "  epoch {}", record.epoch);
    if !record.next.is_empty() {
        let next: Vec<String> = record.next.0.iter().map(|m| m.id.to_string()).collect();
        let _ = writeln!(
            out,
            "  closes its epoch: members {} agree on the records after it",
            next.join(", ")
        );
    }
    let _ = writeln!(out, "  final by {}", entry.final_by);
    out
}

fn records(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    from: u64,
    to: u64,
) -> eyre::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut next = from;
    while next <= to {
        let last = to.min(next + MAX_RECORDS_PER_CALL - 1);
        let page: Vec<LedgerEntry> = serde_json::from_value(call(
            runtime,
            url,
            "cobuild_getSlotRecords",
            json!([U64::from(next), U64::from(last)]),
        )?)
        .wrap_err("unexpected records shape")?;
        let got = page.len();
        for entry in page {
            let mut bytes = entry.entry.as_ref();
            out.push(
                <Entry as alloy_rlp::Decodable>::decode(&mut bytes)
                    .map_err(|e| eyre!("slot {}: the entry does not decode: {e}", entry.slot))?,
            );
        }
        if (got as u64) < last - next + 1 {
            break;
        }
        next = last + 1;
    }
    Ok(out)
}

fn block_hashes(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    number: u64,
) -> eyre::Result<Option<(B256, B256)>> {
    let block = call(
        runtime,
        url,
        "eth_getBlockByNumber",
        json!([U64::from(number), false]),
    )?;
    if block.is_null() {
        return Ok(None);
    }
    let field = |name: &str| -> eyre::Result<B256> {
        serde_json::from_value(block.get(name).cloned().unwrap_or_default())
            .wrap_err_with(|| format!("block {number} has no {name}"))
    };
    Ok(Some((field("hash")?, field("parentHash")?)))
}

fn verify(runtime: &tokio::runtime::Runtime, args: &VerifyArgs) -> eyre::Result<String> {
    let url = rpc_url(&args.target)?;
    let listed = registry_members(runtime, args)?;
    let registry_members =
        cobuild_consensus::member_keys(listed.iter().map(|m| (m.id, m.node_key)))
            .map_err(|id| eyre!("member {id}'s node key in the registry is not an ed25519 key"))?;

    let last: Option<LedgerEntry> =
        serde_json::from_value(call(runtime, &url, "cobuild_getSlotRecord", json!([null]))?)?;
    let Some(last) = last else {
        bail!("{url} holds no final record yet");
    };
    let tip: u64 = last.slot.to();
    let to = args.to.unwrap_or(tip);
    if args.from == 0 || args.from > to || to > tip {
        bail!(
            "nothing to check: --from {} --to {to} (last final slot {tip})",
            args.from
        );
    }
    // The trust anchor is the registry's current membership: it must have certified the last
    // record, and every record before it is bound to that one by the hash chain, the founders
    // included (the genesis digest commits to them). So the whole chain is walked, from the
    // founders through every epoch change, to the last record.
    let founders = founders(runtime, &url)?;
    let founding = Epoch::new(
        0,
        founders
            .keys()
            .map_err(|e| eyre!("the ledger's founders are not usable: {e}"))?,
    );
    let (chain_genesis, _) =
        block_hashes(runtime, &url, 0)?.ok_or_else(|| eyre!("{url} has no genesis block"))?;
    let genesis = (0, to_b256(&genesis_digest(chain_genesis, &founders)));
    let entries = records(runtime, &url, 1, tip)?;
    if entries.len() as u64 != tip {
        bail!(
            "{url} holds {} of the {tip} records 1..={tip}",
            entries.len()
        );
    }
    let (certified, _) = cobuild_consensus::verify_run(&entries, genesis, &founding)
        .wrap_err("the ledger does not verify")?;
    let mut prev = genesis;
    let mut epoch = founding;
    let mut tip_epoch = epoch.clone();
    for entry in &entries {
        let record: &SlotRecord = &entry.record;
        if (args.from..=to).contains(&record.slot) {
            check_structure(record, &epoch, prev)
                .map_err(|e| eyre!("record {}: {e}", record.slot))?;
            check_block(runtime, &url, record)?;
        }
        prev = (record.slot, to_b256(&record.digest()));
        tip_epoch = epoch.clone();
        epoch = epoch.after(record);
    }
    if tip_epoch.members != registry_members {
        let ids = |epoch: &Epoch| epoch.members.keys().copied().collect::<Vec<_>>();
        bail!(
            "the last record was certified by epoch {}'s members {:?}, the registry lists {:?}{}",
            tip_epoch.number,
            ids(&tip_epoch),
            registry_members.keys().collect::<Vec<_>>(),
            if epoch.members == registry_members {
                " (the last record hands over to them: check again after the next record)"
            } else {
                " (a registry change takes effect at the next record: check again then)"
            }
        );
    }
    Ok(format!(
        "ledger at {url}: records {}..={to} verify, every cut signed by its member, every block \
         on the chain; the chain links from the genesis of founders {:?} through {} epoch \
         change(s) to record {tip}, {certified} records with their own certificate (the rest \
         final by a later one), the last certified by the registry's members\n",
        args.from,
        founders.0.iter().map(|m| m.id).collect::<Vec<_>>(),
        tip_epoch.number,
    ))
}

/// Checks that the record's block is the chain's block at its number.
fn check_block(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    record: &SlotRecord,
) -> eyre::Result<()> {
    let block = record.facts.block;
    match block_hashes(runtime, url, block.number)? {
        Some((hash, parent)) if hash == block.hash && parent == block.parent => Ok(()),
        Some((hash, _)) => bail!(
            "record {}: block #{} is {} on the chain, the record says {}",
            record.slot,
            block.number,
            hash,
            block.hash
        ),
        None => bail!(
            "record {}: the chain has no block #{}",
            record.slot,
            block.number
        ),
    }
}
