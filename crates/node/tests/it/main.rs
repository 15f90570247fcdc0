//! Integration tests of the node crate: nodes started in-process against real neighbours on
//! loopback (anvil as the execution client, a relay over HTTP).

mod el;
