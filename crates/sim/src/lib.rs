//! Simulates orders with revm on the head state, in parallel, recording profit, gas and the
//! state each order touches.
//!
//! # Design
//! ```text
//!   TxPool ──txs──┐                      ┌─▶ SimulatedOrder { order, gas, coinbase profit,
//!                 ├─▶ Simulator::simulate│                   kept txs, reads/writes }
//!   BundlePool ───┘   (rayon pool, off   └─▶ builders (ordering, conflict groups)
//!                      the async runtime)
//! ```
//! Each sender's transactions run as one chain in nonce order; each bundle runs alone on the
//! head state with its revert/drop rules ([`simulate_order`]). Results are cached until the head
//! moves, so a round only simulates what arrived since the last one. The same
//! [`simulate_order`] lets builders evaluate whole sequences of orders on a scratch state.

mod access;
mod engine;
mod order;
mod simulate;

pub use access::{AccessSet, StateKey};
pub use engine::{SimRound, SimulatedOrder, Simulator};
pub use order::Order;
pub use simulate::{
    SimError, SimOutcome, SimRejected, simulate_order, simulate_order_without_access,
};
