//! The default registry source: a TOML file listing the members, which nodes follow while
//! running and `cobuild registry add/remove/list` edits.
//!
//! The file is the whole truth for its node: no chain, no RPC, so a devnet or a small network
//! of operators who trust each other to keep it in sync needs nothing else. Layout and
//! parsing are in `format`, reading, following and atomic rewriting in `registry`.

mod format;
mod registry;

pub use registry::FileRegistry;
