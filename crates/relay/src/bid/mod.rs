//! Bids: the builder's BLS key and the builder-spec signature over a [`BidTrace`](crate::BidTrace)
//! ([`sign_bid`], [`verify_bid`]), and the conversion between an executed block and the relay's
//! Fulu submission ([`build_submission`], [`submission_block`]). Both the client side and the
//! devnet relay use these, so a bid is built and judged by one definition.

mod signing;
mod submission;

pub use cobuild_primitives::{BLS_DST, BuilderKey, KeyError};
pub use signing::{
    DEVNET_GENESIS_FORK_VERSION, DOMAIN_APPLICATION_BUILDER, SignatureError, bid_signing_root,
    builder_domain, compute_domain, sign_bid, sign_registration, verify_bid, verify_registration,
};
pub use submission::{
    BidParams, BuildError, PayloadError, PaymentError, build_submission, proposer_payment,
    submission_block,
};
