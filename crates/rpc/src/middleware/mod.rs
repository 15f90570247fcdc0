//! The server's middleware, outermost first: the accept loop's peer address, the
//! `X-Flashbots-Signature` check on the raw body, the body limit and request-id check, then,
//! per call, each call's position in its batch and the JSON-RPC spec's rules jsonrpsee leaves
//! loose; a batch's calls run in [`batch`]'s order.

mod auth;
pub(crate) mod batch;
mod body;
mod call_index;
mod peer;
mod request;
mod spec;

pub use auth::{FlashbotsAuth, FlashbotsAuthLayer, Signed};
pub use body::BodyLimits;
pub use call_index::{CallIndexLayer, CallIndexService};
pub use peer::{PeerAddr, PeerAddrService};
pub use request::{RequestCheck, RequestCheckLayer};
pub use spec::{MAX_ERROR_RESPONSE, SpecLayer, SpecService};
