//! The node's JSON-RPC server: the eth API real wallets and libraries use.
//!
//! # Design
//! Handlers validate, then do chain reads and EVM work on tokio's blocking pool (never on the
//! async workers) and answer. Every failure is an [`RpcError`] mapped to a standard JSON-RPC
//! code in one `From`. The server bounds request bodies before buffering them.

mod admin;
mod auth;
mod bundle;
mod error;
mod eth;
mod intake;
mod ledger;
mod middleware;
mod refunds;
mod replicate;
mod server;

pub use admin::{
    AdminApiServer, AdminServer, AdminSource, ArchivedOrder, BidStatus, LedgerStatus,
    MAX_SLOT_ORDERS_PER_CALL, MemberStatus, NodeStatus, OriginStatus, Refusals, SlotOrders,
    start_admin,
};
pub use auth::{AuthError, FLASHBOTS_SIGNATURE_HEADER, verify_flashbots_signature};
pub use bundle::{
    BundleApiServer, Bundles, CallBundleResponse, CallBundleTxResult, DEFAULT_PRIVATE_TX_BLOCKS,
    FeeRefundRecipient, IpLimiter, MevApiServer, OrderflowLimits, RateLimiter,
    RefundRecipientApiServer, SenderLimiter, delegation,
};
pub use cobuild_primitives::AcceptedOrder;
pub use error::{
    EXECUTION_REVERTED, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, LIMIT_EXCEEDED, RpcError,
    SERVER_ERROR,
};
pub use eth::{
    DEFAULT_PROOF_WINDOW, DebugApiServer, Eth, EthApiServer, EthPubSubApiServer, FilterLimits,
    LogLimits, NetApiServer, WITHOUT_PARAMS, Web3ApiServer,
};
pub use intake::{Intake, IntakeError, signed_call};
pub use ledger::{Ledger, LedgerApiServer, LedgerEntry, MAX_RECORDS_PER_CALL};
pub use middleware::{
    BodyLimits, CallIndexLayer, CallIndexService, FlashbotsAuth, FlashbotsAuthLayer,
    MAX_ERROR_RESPONSE, PeerAddr, PeerAddrService, RequestCheck, RequestCheckLayer, Signed,
    SpecLayer, SpecService,
};
pub use refunds::{
    FeeRefund, FeeRefunds, MemberDebt, RefundDebtsApiServer, RefundTotals, Refunds,
    RefundsApiServer,
};
pub use replicate::{
    CallIndex, Durable, MAX_REPLICATED_BYTES_PER_REQUEST, Replicate, ReplicateError,
    ReplicateFuture, SignedBody,
};
pub use server::{RpcConfig, RpcServer, start, start_with};
