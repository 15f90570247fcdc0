//! The replication engine: runs over any pair of authenticated channels of the p2p engine
//! (commonware `authenticated::lookup` in a node, `simulated` in tests), on any commonware
//! runtime (tokio in a node, the deterministic one in simulations).

mod actor;
mod config;
mod ingress;

pub use actor::Engine;
pub use config::{Config, Peer};
pub use ingress::{Counters, Mailbox, OriginProgress, PeerProgress, Recovery};
