//! The application simplex drives: it proposes slot records, checks the ones others propose
//! against this member's chain and cuts, and keeps the final ones.

mod actor;
mod ingress;

pub(crate) use actor::{Actor, DEFAULT_VERIFY_TIMEOUT};
pub use ingress::Mailbox;

use std::collections::BTreeMap;

use alloy_primitives::B256;
use commonware_cryptography::ed25519;

use crate::{MemberId, Prefix, SlotFacts};

/// What this member sees of the world: its chain and its envelope log. Reads are quick local
/// lookups (the actor calls them on every tick).
pub trait Local: Clone + Send + Sync + 'static {
    /// The number of the highest block this member's chain holds.
    fn head(&self) -> u64;

    /// The facts of block `slot` on this member's chain, if it holds it. The winner is the
    /// member the block claims; the ledger counts it only if it is a member of the epoch.
    fn facts(&self, slot: u64) -> Option<SlotFacts>;

    /// Per origin, the contiguous prefix of envelopes this member holds now.
    fn prefixes(&self) -> Vec<Prefix>;

    /// The members (with their node keys) the registry lists now, as this member last read
    /// it. A member whose view differs from the current epoch's proposes the change; one that
    /// reads no registry (`None`) proposes none and votes for none.
    fn members(&self) -> Option<BTreeMap<MemberId, ed25519::PublicKey>> {
        None
    }

    /// The digest of slot `slot`'s refunds as this member computes them from its final
    /// records: `Some(None)` when nothing is owed for the slot (no member won it), `None`
    /// while it cannot tell yet (the records or orders it needs are not here). One that
    /// computes no refunds says nothing is owed.
    fn refunds(&self, slot: u64) -> Option<Option<B256>> {
        let _ = slot;
        Some(None)
    }
}
