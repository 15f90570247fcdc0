//! Who the members are: id, address, node and builder keys and attestation, from a TOML file
//! or a Solidity registry contract.
//!
//! # Design
//! ```text
//!   members.toml ──▶ FileRegistry ─┐
//!                                  ├─▶ Registry::members() ──▶ net (who may connect, whose
//!   Registry.sol on an EL ──▶ ContractRegistry ┘                 envelopes are accepted)
//! ```
//! Both sources answer the same question the same way; nodes re-read membership while running,
//! so an added member is connected and a removed one is refused without restarts.

mod member;

pub use member::{Member, MemberId};

/// A member list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The source could not be read (file, RPC endpoint).
    #[error("registry source: {0}")]
    Source(String),
    /// The source holds something that is not a valid member list.
    #[error("invalid registry: {0}")]
    Invalid(String),
}

/// A source of the current member list.
///
/// `members` answers the list as the source has it now: implementations re-read their source
/// (or a cache they keep fresh), so callers poll it to follow changes.
pub trait Registry: Send + Sync {
    /// The current members, sorted by id, ids unique.
    fn members(&self) -> Result<Vec<Member>, RegistryError>;
}
