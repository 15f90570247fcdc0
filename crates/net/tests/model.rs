//! Exhaustive model check (stateright) of the replication protocol's design: pushes, periodic
//! statuses, pulls of missing ranges and their answers, among three members, with any message
//! lost, members crashing (their durable log kept) and restarting, in every order.
//!
//! Property: from every reachable state, once faults heal (every member up, links lossless,
//! statuses exchanged), every member holds every envelope an origin acknowledged. That is "no
//! acknowledged order is lost" for any pattern of loss and crashes within the bounds. A variant
//! without statuses (push only, fire-and-forget) must be refuted by the checker, which shows the
//! property can fail.
//!
//! The model is the protocol, not the engine's code: logs are per-origin sets of sequence
//! numbers, a status carries the highest number held per origin, a pull asks for the range
//! above the puller's contiguous prefix.

use std::collections::BTreeSet;

use stateright::{Checker, Model, Property};

/// Members (each also an origin).
const N: usize = 3;

/// A set of sequence numbers 1..=8 held for one origin (bit k: seq k + 1).
type Held = u8;

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
enum Msg {
    /// A new envelope, sent once to every other member.
    Push { to: usize, origin: usize, seq: u8 },
    /// What `from` holds: the highest seq per origin.
    Status {
        from: usize,
        to: usize,
        high: [u8; N],
    },
    /// `from` asks `to` for `origin`'s seqs `lo..=hi`.
    Pull {
        from: usize,
        to: usize,
        origin: usize,
        lo: u8,
        hi: u8,
    },
    /// The envelopes of a pull that `to` asked for.
    Answer {
        to: usize,
        origin: usize,
        held: Held,
    },
}

impl Msg {
    fn to(&self) -> usize {
        match self {
            Self::Push { to, .. }
            | Self::Status { to, .. }
            | Self::Pull { to, .. }
            | Self::Answer { to, .. } => *to,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct State {
    /// Per member, per origin: the envelopes in its durable log.
    logs: [[Held; N]; N],
    /// Per origin: its envelopes 1..=acked were acknowledged to their senders.
    acked: [u8; N],
    up: [bool; N],
    crashes: u8,
    drops: u8,
    /// Messages in flight (a set: a duplicate changes nothing the receiver does).
    net: BTreeSet<Msg>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Accept(usize),
    Tick(usize),
    Deliver(Msg),
    Drop(Msg),
    Crash(usize),
    Restart(usize),
}

struct Replication {
    /// Most messages in flight in an explored state (bounds the state space: every subset of
    /// in-flight messages is a state).
    max_in_flight: usize,
    /// Orders each origin may accept.
    orders: [u8; N],
    max_drops: u8,
    max_crashes: u8,
    /// Statuses and pulls on (the real protocol); off: pushes only.
    statuses: bool,
}

fn bit(seq: u8) -> Held {
    1 << (seq - 1)
}

fn contiguous(held: Held) -> u8 {
    held.trailing_ones() as u8
}

fn highest(held: Held) -> u8 {
    (8 - held.leading_zeros()) as u8
}

fn range(lo: u8, hi: u8) -> Held {
    (lo..=hi).fold(0, |mask, seq| mask | bit(seq))
}

impl Replication {
    /// `to` takes in `msg` (it is up); new messages go to `net`.
    fn receive(&self, logs: &mut [[Held; N]; N], net: &mut BTreeSet<Msg>, msg: Msg) {
        match msg {
            Msg::Push { to, origin, seq } => logs[to][origin] |= bit(seq),
            Msg::Answer { to, origin, held } => logs[to][origin] |= held,
            Msg::Status { from, to, high } => {
                for (origin, &high) in high.iter().enumerate() {
                    let have = contiguous(logs[to][origin]);
                    if high > have {
                        net.insert(Msg::Pull {
                            from: to,
                            to: from,
                            origin,
                            lo: have + 1,
                            hi: high,
                        });
                    }
                }
            }
            Msg::Pull {
                from,
                to,
                origin,
                lo,
                hi,
            } => {
                let held = logs[to][origin] & range(lo, hi);
                if held != 0 {
                    net.insert(Msg::Answer {
                        to: from,
                        origin,
                        held,
                    });
                }
            }
        }
    }

    fn statuses_of(&self, logs: &[[Held; N]; N], member: usize, net: &mut BTreeSet<Msg>) {
        let high = std::array::from_fn(|origin| highest(logs[member][origin]));
        for to in (0..N).filter(|&to| to != member) {
            net.insert(Msg::Status {
                from: member,
                to,
                high,
            });
        }
    }

    /// The state after faults heal: everyone up, every message delivered, statuses exchanged
    /// until nothing changes.
    fn healed(&self, state: &State) -> [[Held; N]; N] {
        let mut logs = state.logs;
        let mut net = state.net.clone();
        loop {
            while let Some(msg) = net.pop_first() {
                self.receive(&mut logs, &mut net, msg);
            }
            if !self.statuses {
                return logs;
            }
            let before = logs;
            for member in 0..N {
                self.statuses_of(&logs, member, &mut net);
            }
            while let Some(msg) = net.pop_first() {
                self.receive(&mut logs, &mut net, msg);
            }
            if logs == before {
                return logs;
            }
        }
    }

    fn all_hold_acked(&self, logs: &[[Held; N]; N], acked: &[u8; N]) -> bool {
        (0..N).all(|member| {
            (0..N).all(|origin| {
                let want = if acked[origin] == 0 {
                    0
                } else {
                    range(1, acked[origin])
                };
                logs[member][origin] & want == want
            })
        })
    }
}

impl Model for Replication {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            logs: [[0; N]; N],
            acked: [0; N],
            up: [true; N],
            crashes: 0,
            drops: 0,
            net: BTreeSet::new(),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for member in 0..N {
            if state.up[member] {
                if state.acked[member] < self.orders[member] {
                    actions.push(Action::Accept(member));
                }
                // One status of a member in flight at a time bounds the state space; a later
                // tick re-sends it, so nothing is lost by waiting.
                let announcing = state
                    .net
                    .iter()
                    .any(|m| matches!(m, Msg::Status { from, .. } if *from == member));
                if self.statuses && !announcing {
                    actions.push(Action::Tick(member));
                }
                if state.crashes < self.max_crashes {
                    actions.push(Action::Crash(member));
                }
            } else {
                actions.push(Action::Restart(member));
            }
        }
        for msg in &state.net {
            actions.push(Action::Deliver(msg.clone()));
            if state.drops < self.max_drops {
                actions.push(Action::Drop(msg.clone()));
            }
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        let mut next = state.clone();
        match action {
            Action::Accept(origin) => {
                // Durable in the origin's log before the sender hears back, then pushed.
                let seq = next.acked[origin] + 1;
                next.logs[origin][origin] |= bit(seq);
                next.acked[origin] = seq;
                for to in (0..N).filter(|&to| to != origin) {
                    next.net.insert(Msg::Push { to, origin, seq });
                }
            }
            Action::Tick(member) => {
                let before = next.net.len();
                self.statuses_of(&state.logs, member, &mut next.net);
                if next.net.len() == before {
                    return None;
                }
            }
            Action::Deliver(msg) => {
                next.net.remove(&msg);
                if next.up[msg.to()] {
                    self.receive(&mut next.logs, &mut next.net, msg);
                }
            }
            Action::Drop(msg) => {
                next.net.remove(&msg);
                next.drops += 1;
            }
            Action::Crash(member) => {
                next.up[member] = false;
                next.crashes += 1;
            }
            Action::Restart(member) => next.up[member] = true,
        }
        Some(next)
    }

    fn within_boundary(&self, state: &State) -> bool {
        state.net.len() <= self.max_in_flight
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "every acknowledged order reaches every member once faults heal",
                |model: &Self, state: &State| {
                    model.all_hold_acked(&model.healed(state), &state.acked)
                },
            ),
            // Not vacuous: states where some member lacks an acknowledged order are explored.
            Property::sometimes(
                "a member misses an acknowledged order before healing",
                |model: &Self, state: &State| !model.all_hold_acked(&state.logs, &state.acked),
            ),
        ]
    }
}

#[test]
fn test_status_and_pull_heal_any_loss_and_crash_pattern() {
    let checker = Replication {
        max_in_flight: 4,
        orders: [2, 1, 0],
        max_drops: 2,
        max_crashes: 1,
        statuses: true,
    }
    .checker()
    .spawn_bfs()
    .join();
    checker.assert_properties();
    eprintln!("explored {} states", checker.unique_state_count());
    assert!(
        checker.unique_state_count() > 10_000,
        "explored {} states",
        checker.unique_state_count()
    );
}

#[test]
fn test_push_only_replication_loses_orders_and_the_checker_finds_it() {
    let checker = Replication {
        max_in_flight: 4,
        orders: [1, 0, 0],
        max_drops: 1,
        max_crashes: 0,
        statuses: false,
    }
    .checker()
    .spawn_bfs()
    .join();
    assert!(
        checker
            .discovery("every acknowledged order reaches every member once faults heal")
            .is_some(),
        "a lost push is never healed without statuses"
    );
}
