//! The slot ledger beside replication: the members of the replication benchmark also run the
//! ledger (as member nodes do), over a chain the benchmark extends one block per slot. Measured:
//! from a block's arrival to its record being final at every member, and the CPU a record costs
//! the whole cluster, beside the CPU one replicated order costs it in the same run.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256};
use cobuild_consensus::{BlockRef, Local, MemberId, Prefix, SlotFacts, Winner};
use cobuild_net::{Log, StartExtension};
use commonware_cryptography::ed25519;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::super::measure::Latency;

/// The chain the benchmark extends: block s is slot s.
#[derive(Debug, Default)]
pub(crate) struct BenchChain {
    blocks: Mutex<Vec<SlotFacts>>,
}

impl BenchChain {
    /// Adds the next block; returns its slot.
    fn extend(&self) -> u64 {
        let mut blocks = self.blocks.lock();
        let slot = blocks.len() as u64 + 1;
        blocks.push(SlotFacts {
            block: BlockRef {
                number: slot,
                hash: B256::from(U256::from(slot)),
                parent: B256::from(U256::from(slot - 1)),
            },
            winner: Winner(Some((slot % 4) as MemberId)),
            payment: U256::from(slot),
            value: U256::from(2 * slot),
        });
        slot
    }
}

/// One member's view: the shared chain and its own log.
#[derive(Debug, Clone)]
struct View {
    chain: Arc<BenchChain>,
    log: Arc<Log>,
}

impl Local for View {
    fn head(&self) -> u64 {
        self.chain.blocks.lock().len() as u64
    }

    fn facts(&self, slot: u64) -> Option<SlotFacts> {
        let index = usize::try_from(slot.checked_sub(1)?).ok()?;
        self.chain.blocks.lock().get(index).copied()
    }

    fn prefixes(&self) -> Vec<Prefix> {
        cobuild_node::ledger::log_prefixes(&self.log)
    }
}

/// The extension that starts member `me`'s ledger; its final slot comes back on `final_slot`.
pub(crate) fn extension(
    chain: Arc<BenchChain>,
    log: Arc<Log>,
    me: MemberId,
    key: ed25519::PrivateKey,
    members: std::collections::BTreeMap<MemberId, ed25519::PublicKey>,
    final_slot: std::sync::mpsc::SyncSender<watch::Receiver<u64>>,
) -> Result<StartExtension, cobuild_consensus::StoreError> {
    let store = Arc::new(cobuild_consensus::Store::in_memory()?);
    let config = cobuild_consensus::Config::new(me, key, members, B256::ZERO);
    Ok(cobuild_node::ledger::start_extension(
        config,
        View { chain, log },
        store,
        move |running| {
            let _ = final_slot.send(running.final_slot.clone());
        },
    ))
}

/// What the ledger cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerFigure {
    /// Slots recorded.
    pub records: usize,
    /// Slots that were not final at every member within the wait.
    pub missed: usize,
    /// Time between blocks.
    #[serde(rename = "slot_ms", serialize_with = "crate::bench::report::ms")]
    pub slot: Duration,
    /// Block arrival to its record final at the last member.
    pub latency: Latency,
    /// CPU (user + system, whole process) per record, over the idle rate measured just before.
    #[serde(
        rename = "cpu_per_record_ms",
        serialize_with = "crate::bench::report::ms"
    )]
    pub cpu_per_record: Duration,
    /// CPU per order of the fixed-rate replication phase, over the same idle rate.
    #[serde(
        rename = "cpu_per_order_ms",
        serialize_with = "crate::bench::report::ms"
    )]
    pub cpu_per_order: Duration,
}

impl LedgerFigure {
    /// A record's CPU in replicated orders' CPU.
    pub fn orders_per_record(&self) -> Option<f64> {
        (!self.cpu_per_order.is_zero())
            .then(|| self.cpu_per_record.as_secs_f64() / self.cpu_per_order.as_secs_f64())
    }
}

/// CPU time of this process so far (user + system).
pub(crate) fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage = unsafe { std::mem::zeroed::<libc::rusage>() };
    // SAFETY: a valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The process's CPU rate while idle, over `window`.
pub(crate) async fn idle_rate(window: Duration) -> f64 {
    let (cpu, start) = (cpu_time(), Instant::now());
    tokio::time::sleep(window).await;
    (cpu_time() - cpu).as_secs_f64() / start.elapsed().as_secs_f64()
}

/// Extends `chain` by `slots` blocks, one every `slot`, and waits after each until its record is
/// final at every member (up to `wait`).
pub(crate) async fn run(
    chain: &BenchChain,
    finals: &mut [watch::Receiver<u64>],
    slots: usize,
    slot: Duration,
    wait: Duration,
    idle: f64,
    cpu_per_order: Duration,
) -> LedgerFigure {
    let (cpu, begun) = (cpu_time(), Instant::now());
    let mut samples = Vec::with_capacity(slots);
    let mut missed = 0;
    for _ in 0..slots {
        let due = tokio::time::Instant::now() + slot;
        let number = chain.extend();
        let arrived = Instant::now();
        let deadline = tokio::time::Instant::now() + wait;
        let mut all = true;
        for final_slot in finals.iter_mut() {
            let reached = tokio::time::timeout_at(deadline, final_slot.wait_for(|s| *s >= number));
            all &= matches!(reached.await, Ok(Ok(_)));
        }
        if all {
            samples.push(arrived.elapsed());
        } else {
            missed += 1;
        }
        tokio::time::sleep_until(due).await;
    }
    let busy = (cpu_time() - cpu).as_secs_f64() - idle * begun.elapsed().as_secs_f64();
    LedgerFigure {
        records: samples.len(),
        missed,
        slot,
        latency: Latency::from_samples(samples),
        cpu_per_record: Duration::from_secs_f64(busy.max(0.0) / slots.max(1) as f64),
        cpu_per_order,
    }
}
