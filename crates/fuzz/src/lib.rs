//! Fuzz targets: each decoder that reads bytes from outside the process, driven the way the node
//! drives it, so a panic anywhere on the path is a finding.
//!
//! Every target is a plain function of bytes. `cargo test -p cobuild-fuzz` replays the
//! checked-in corpus (`corpus/<target>/`) and then mutates it for a bounded time
//! ([`mutate`]); `cargo fuzz` (the `fuzz/` directory, nightly) runs the same functions under
//! libFuzzer for as long as one likes. A finding is fixed and its input added to the corpus, so
//! it is replayed on every test run from then on.

pub mod mutate;

use alloy_primitives::Bytes;
use alloy_rpc_types_beacon::relay::SignedBidSubmissionV5;
use alloy_rpc_types_mev::EthSendBundle;
use cobuild_primitives::{
    Bundle, BundleRequest, decode_transactions, parse_mev_bundle, parse_private_transaction,
};

/// A fuzz target: bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and `cargo fuzz` binary have.
pub const TARGETS: &[(&str, Target)] = &[
    ("send_bundle", send_bundle),
    ("mev_bundle", mev_bundle),
    ("private_transaction", private_transaction),
    ("raw_transaction", raw_transaction),
    ("envelope", envelope),
    ("wire_message", wire_message),
    ("relay_submission", relay_submission),
    ("registry_file", registry_file),
];

/// The parameter object of `eth_sendBundle`, as the RPC parses and checks it.
pub fn send_bundle(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<EthSendBundle>(data) {
        let _ = BundleRequest::from_rpc(request);
    }
}

/// The parameter object of `mev_sendBundle`, parsed and made a bundle (no `{hash}` resolves).
pub fn mev_bundle(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(request) = parse_mev_bundle(value)
    {
        let _ = Bundle::from_mev_share(&request, |_| None);
    }
}

/// The parameter object of `eth_sendPrivateTransaction`, with its transaction decoded.
pub fn private_transaction(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok((request, _hints)) = parse_private_transaction(value)
    {
        let _ = decode_transactions(&[request.tx]);
    }
}

/// An EIP-2718 transaction as `eth_sendRawTransaction` and bundles carry it.
pub fn raw_transaction(data: &[u8]) {
    let _ = decode_transactions(&[Bytes::copy_from_slice(data)]);
}

/// An envelope as a peer sends it: decoded, its shape checked, its kind read.
pub fn envelope(data: &[u8]) {
    if let Ok(envelope) = cobuild_net::Envelope::decode(data) {
        let _ = envelope.check();
        let _ = envelope.body.order_kind();
        let _ = envelope.signed_head();
    }
}

/// A replication message (status, pull, envelopes) as a peer sends it.
pub fn wire_message(data: &[u8]) {
    let _ = cobuild_net::wire::Message::decode(data);
}

/// A JSON block submission as the relay reads it, down to the block it carries.
pub fn relay_submission(data: &[u8]) {
    if let Ok(submission) = serde_json::from_slice::<SignedBidSubmissionV5>(data) {
        let _ = cobuild_relay::bid::submission_block(&submission, Default::default());
    }
}

/// A registry file's text.
pub fn registry_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cobuild_registry::FileRegistry::parse(text);
    }
}
