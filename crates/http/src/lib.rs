//! Serving HTTP/1 for the node's public servers (the JSON-RPC server and the devnet relay) with
//! the bounds a server facing unknown clients needs, so a slow or greedy client costs a bounded
//! share of the node:
//!
//! - at most so many connections in all and per client IP; one over either is closed at once;
//! - a request's header must arrive within a deadline (hyper's header read timeout), and its
//!   body, read by [`read_body`], within another and under a size limit.
//!
//! Files: `config.rs` (the bounds), `limit.rs` (connection counting), `serve.rs` (the accept
//! loop), `body.rs` (reading a body under its bounds).

mod body;
mod config;
mod limit;
mod serve;

pub use body::{BodyError, read_body};
pub use config::ServeConfig;
pub use limit::{ConnectionLimit, ConnectionPermit, Refused};
pub use serve::serve;
