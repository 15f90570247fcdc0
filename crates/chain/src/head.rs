//! The head a node validates orders against and builds on, whoever keeps it: the node's own
//! chain store ([`Chain`]) or an execution client it follows (`cobuild-el`'s `ElChain`).

use std::sync::Arc;

use alloy_consensus::{Header, Sealed};
use cobuild_primitives::ChainSpec;

use crate::{Chain, ChainError, StateSnapshot};

/// The chain's rules, its head and the state after it.
///
/// The pools check orders against [`head_state`](Self::head_state), the RPC simulates against
/// it and the builder takes the rules from [`spec`](Self::spec): none of them needs the blocks
/// behind the head, so an execution client's head serves them as well as the store's.
pub trait HeadSource: Send + Sync + std::fmt::Debug + 'static {
    /// The rules the chain runs under.
    fn spec(&self) -> &Arc<ChainSpec>;

    /// The current head header.
    fn head(&self) -> Arc<Sealed<Header>>;

    /// The head header and its post-state, consistent with each other.
    fn head_state(&self) -> Result<(Arc<Sealed<Header>>, StateSnapshot), ChainError>;
}

impl HeadSource for Chain {
    fn spec(&self) -> &Arc<ChainSpec> {
        Chain::spec(self)
    }

    fn head(&self) -> Arc<Sealed<Header>> {
        Chain::head(self)
    }

    fn head_state(&self) -> Result<(Arc<Sealed<Header>>, StateSnapshot), ChainError> {
        Chain::head_state(self)
    }
}
