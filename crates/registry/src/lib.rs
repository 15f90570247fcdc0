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
//!
//! A member's own secret keys ([`NodeKeys`]: ed25519 node key, BLS builder key, coinbase key)
//! live in a 0600 key file; their public parts are what the registry lists for it.
//!
//! # Example
//! ```
//! use cobuild_registry::{FileRegistry, NodeKeys, Registry};
//!
//! let dir = tempfile::tempdir()?;
//! let keys = NodeKeys::generate()?;
//! keys.write(&dir.path().join("node.key"))?;
//! let registry = FileRegistry::open_or_create(dir.path().join("members.toml"))?;
//! registry.add(keys.public().member(0, "127.0.0.1:7000".into(), None))?;
//! assert_eq!(registry.members()?[0].node_key, keys.public().node_key);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
pub mod contract;
mod file;
mod keys;
mod member;
mod validate;

pub use file::FileRegistry;
pub use keys::{KEY_FILE_MODE, KeyFileError, NodeKeys, PublicKeys};
pub use member::{Member, MemberId};
pub use validate::{BLS_KEY_LEN, validate_member, validate_members};

/// A member list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The source could not be read (file, RPC endpoint).
    #[error("registry source: {0}")]
    Source(String),
    /// The source holds something that is not a valid member list.
    #[error("invalid registry: {0}")]
    Invalid(String),
    /// No member has this id (removing or updating one).
    #[error("no member with id {0}")]
    UnknownMember(MemberId),
}

/// A source of the current member list.
///
/// `members` answers the list as the source has it now: implementations re-read their source
/// (or a cache they keep fresh), so callers poll it to follow changes.
pub trait Registry: Send + Sync + std::fmt::Debug {
    /// The current members, sorted by id, ids unique.
    fn members(&self) -> Result<Vec<Member>, RegistryError>;
}
