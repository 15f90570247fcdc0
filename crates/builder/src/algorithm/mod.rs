//! The building algorithms. Each fills its own block through the assembler, so they can run in
//! parallel and the best bid wins.

mod conflict;
mod greedy;

pub use conflict::{ConflictSearch, conflict_groups};
pub use greedy::{Greedy, GreedyBlock, GreedyByProfit, Priority};
