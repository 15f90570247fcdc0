//! Exhaustive model check (stateright) of the cut rule, run on the code itself
//! (`cobuild_consensus::agreed_cut`): four members, one Byzantine (f = 1), two origins. Honest
//! members come to hold envelopes over time and sign cuts of what they hold, in any order; the
//! Byzantine member signs any cut at all, overstating as it likes; a record may take any quorum
//! of the signed cuts, in every combination.
//!
//! Property: every agreed cut covers only envelopes that some honest member holds. A rule that
//! tolerates no fault (f = 0, the highest prefix) must be refuted by the checker.

use cobuild_consensus::{Cut, MemberId, Prefix, agreed_cut, quorum};
use stateright::{Checker, Model, Property};

const N: usize = 4;
const ORIGINS: usize = 2;
/// The Byzantine member.
const LIAR: usize = N - 1;
/// Envelopes an origin numbers.
const ENVELOPES: u8 = 1;
/// Most a Byzantine cut claims.
const CLAIM: u8 = ENVELOPES + 1;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct State {
    /// Per honest member, per origin: the contiguous prefix it holds.
    holds: [[u8; ORIGINS]; N],
    /// Per member: its latest signed cut.
    cuts: [Option<[u8; ORIGINS]>; N],
    /// The last record's agreed cut, per origin.
    record: Option<[u8; ORIGINS]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    /// An honest member receives the next envelope of an origin.
    Receive { member: usize, origin: usize },
    /// An honest member signs a cut of what it holds now.
    Sign(usize),
    /// The Byzantine member signs any cut.
    Lie([u8; ORIGINS]),
    /// A record takes the signed cuts of these members (a bit set).
    Record(u8),
}

struct CutRule {
    /// The f the rule is applied with.
    f: usize,
}

fn cut(member: usize, prefixes: [u8; ORIGINS]) -> Cut {
    Cut::new(
        member as MemberId,
        1,
        prefixes.iter().enumerate().map(|(origin, &seq)| Prefix {
            origin: origin as MemberId,
            seq: u64::from(seq),
        }),
    )
}

impl Model for CutRule {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            holds: [[0; ORIGINS]; N],
            cuts: [None; N],
            record: None,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for member in (0..N).filter(|&m| m != LIAR) {
            for origin in 0..ORIGINS {
                if state.holds[member][origin] < ENVELOPES {
                    actions.push(Action::Receive { member, origin });
                }
            }
            if state.cuts[member] != Some(state.holds[member]) {
                actions.push(Action::Sign(member));
            }
        }
        if state.cuts[LIAR].is_none() {
            for a in 0..=CLAIM {
                for b in 0..=CLAIM {
                    actions.push(Action::Lie([a, b]));
                }
            }
        }
        for set in 0..(1u8 << N) {
            let members = (0..N).filter(|m| set & (1 << m) != 0);
            if set.count_ones() as usize >= quorum(N)
                && members.clone().all(|m| state.cuts[m].is_some())
            {
                actions.push(Action::Record(set));
            }
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        let mut next = state.clone();
        match action {
            Action::Receive { member, origin } => next.holds[member][origin] += 1,
            Action::Sign(member) => next.cuts[member] = Some(state.holds[member]),
            Action::Lie(claim) => next.cuts[LIAR] = Some(claim),
            Action::Record(set) => {
                let cuts: Vec<Cut> = (0..N)
                    .filter(|m| set & (1 << m) != 0)
                    .filter_map(|m| state.cuts[m].map(|c| cut(m, c)))
                    .collect();
                let refs: Vec<&Cut> = cuts.iter().collect();
                let mut agreed = [0u8; ORIGINS];
                for prefix in agreed_cut(&refs, self.f) {
                    agreed[prefix.origin as usize] = prefix.seq as u8;
                }
                next.record = Some(agreed);
            }
        }
        (next != *state).then_some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "the agreed cut covers only envelopes an honest member holds",
                |_, state: &State| {
                    state.record.is_none_or(|agreed| {
                        (0..ORIGINS).all(|origin| {
                            let honest_max = (0..N)
                                .filter(|&m| m != LIAR)
                                .map(|m| state.holds[m][origin])
                                .max()
                                .unwrap_or(0);
                            agreed[origin] <= honest_max
                        })
                    })
                },
            ),
            // Not vacuous: records are made while the liar's cut overstates.
            Property::sometimes("a record includes an overstated cut", |_, state: &State| {
                state.record.is_some()
                    && state.cuts[LIAR].is_some_and(|claim| {
                        (0..ORIGINS).any(|o| {
                            claim[o] > (0..LIAR).map(|m| state.holds[m][o]).max().unwrap_or(0)
                        })
                    })
            }),
        ]
    }
}

#[test]
fn test_the_agreed_cut_never_covers_what_no_honest_member_holds() {
    let checker = CutRule { f: 1 }.checker().spawn_bfs().join();
    checker.assert_properties();
    assert!(
        checker.unique_state_count() > 10_000,
        "explored {} states",
        checker.unique_state_count()
    );
}

#[test]
fn test_taking_the_highest_prefix_is_refuted() {
    let checker = CutRule { f: 0 }.checker().spawn_bfs().join();
    assert!(
        checker
            .discovery("the agreed cut covers only envelopes an honest member holds")
            .is_some(),
        "with f = 0 the liar's cut alone sets the agreed cut"
    );
}
