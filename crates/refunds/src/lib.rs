//! Refunds to orderflow senders: each refund identity's share of the value its orders added to
//! a block a member won, by BuilderNet's published flat-tax rule, in exact integer wei so every
//! member computes the same figures from the same record.
//!
//! ```text
//!  per identity i: b_i (what its orders paid the builder), v(T∖i) (the block without them)
//!  per interacting set I: v(T∖I)
//!        │
//!        ▼
//!  rule::refunds: μ_i = min(b_i, v(T) − v(T∖i))
//!                 φ_i = ⌊μ_i · min(v(T) − c, Σμ) / Σμ⌋
//!                 cap: Σ_{i∈I} r_i ≤ min(Σ_{i∈I} b_i, v(T) − v(T∖I)), least change first
//!        │
//!        ▼
//!  orders::split: an identity's refund over its orders, in proportion to what each paid
//! ```
//! What goes in (which orders count, how `v(T∖I)` is replayed) is the caller's; this crate is the
//! arithmetic, with the rounding remainder kept visible.

mod book;
mod orders;
mod payout;
pub mod replay;
mod rule;

pub use book::{Book, BookError, OrderRefund, Owed, SlotRefunds};
pub use orders::{Split, split};
pub use payout::{MAX_SLOTS_PER_PAYOUT, PAYOUT_MARKER, payout_input, payout_slots};
pub use replay::{Landed, Pass, ReplayError};
pub use rule::{Contribution, Joint, RefundError, Refunds, SlotFigures, refunds};

/// Who earns a refund: the `X-Flashbots-Signature` signer, or a bundle's `refundIdentity`.
pub type Identity = alloy_primitives::Address;
