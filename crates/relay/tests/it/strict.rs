//! The devnet relay in strict mode: each refusal mev-boost-relay makes before and after
//! simulation, in its order and with its message; bids it takes silently (200, dropped); and
//! an honest bid kept.

use alloy_consensus::{EMPTY_ROOT_HASH, proofs::calculate_withdrawals_root};
use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, B256, U256};
use cobuild_relay::{
    RejectReason, SignedBidSubmissionV5, SubmitBlockRequest,
    bid::{BuilderKey, builder_domain, sign_bid},
    client::{RelayError, SubmitOutcome},
};

use crate::{Devnet, GWEI, PREV_RANDAO, fulu};

/// Sends `submission` and returns the relay's message, which must be a refusal without a
/// reason (mev-boost-relay's `{code, message}`).
async fn refusal(devnet: &Devnet, submission: SignedBidSubmissionV5) -> String {
    let error = devnet
        .client()
        .submit(&SubmitBlockRequest::Fulu(submission))
        .await
        .expect_err("refused");
    match error {
        RelayError::Refused {
            reason: RejectReason::Other,
            message,
        } => message,
        other => panic!("not a bare refusal: {other}"),
    }
}

#[tokio::test]
async fn test_strict_mode_refuses_as_mev_boost_relay_does_in_its_order() {
    let devnet = Devnet::start_with(|c| c.strict = true).await;
    let executed = devnet.paying_block(GWEI);
    let honest = fulu(devnet.bid(&executed));
    let resigned = |mut s: SignedBidSubmissionV5| {
        s.signature = sign_bid(&devnet.builder, &s.message, devnet.relay.domain());
        s
    };
    let slot = devnet.ctx.slot;

    // Each case breaks one thing; the checks before it pass, the ones after it would fail
    // where noted, so the message also shows the order.
    let mut past = honest.clone();
    past.message.slot = slot - 1;
    // (Its timestamp is not that slot's either: the slot check comes first.)
    assert_eq!(
        refusal(&devnet, resigned(past)).await,
        "submission for past slot"
    );

    let mut late = honest.clone();
    late.execution_payload.payload_inner.payload_inner.timestamp += 1;
    // (Its block hash no longer matches its payload either.)
    assert_eq!(
        refusal(&devnet, late).await,
        format!(
            "incorrect timestamp. got {}, expected {}",
            devnet.ctx.timestamp + 1,
            devnet.ctx.timestamp
        )
    );

    let mut future = honest.clone();
    future.message.slot = slot + 1;
    assert_eq!(
        refusal(&devnet, resigned(future)).await,
        "could not find slot duty"
    );

    let mut elsewhere = honest.clone();
    elsewhere.message.proposer_fee_recipient = Address::repeat_byte(0x77);
    assert_eq!(
        refusal(&devnet, resigned(elsewhere)).await,
        "fee recipient does not match"
    );

    let mut other_block = honest.clone();
    other_block.message.block_hash = B256::repeat_byte(0x01);
    assert_eq!(
        refusal(&devnet, resigned(other_block)).await,
        "blockHash mismatch"
    );

    let mut other_parent = honest.clone();
    other_parent.message.parent_hash = B256::repeat_byte(0x02);
    assert_eq!(
        refusal(&devnet, resigned(other_parent)).await,
        "parentHash mismatch"
    );

    let mut unknown_parent = honest.clone();
    unknown_parent.message.parent_hash = B256::repeat_byte(0x03);
    unknown_parent
        .execution_payload
        .payload_inner
        .payload_inner
        .parent_hash = B256::repeat_byte(0x03);
    assert_eq!(
        refusal(&devnet, resigned(unknown_parent)).await,
        "payload attributes not (yet) known"
    );

    let mut randao = honest.clone();
    randao
        .execution_payload
        .payload_inner
        .payload_inner
        .prev_randao = B256::repeat_byte(0x04);
    assert_eq!(
        refusal(&devnet, randao).await,
        format!(
            "incorrect prev_randao - got: {}, expected: {PREV_RANDAO}",
            B256::repeat_byte(0x04)
        )
    );

    let mut withdrawing = honest.clone();
    let withdrawals = vec![Withdrawal {
        index: 1,
        validator_index: 2,
        address: Address::repeat_byte(0x05),
        amount: 3,
    }];
    let root = calculate_withdrawals_root(&withdrawals);
    withdrawing.execution_payload.payload_inner.withdrawals = withdrawals;
    assert_eq!(
        refusal(&devnet, withdrawing).await,
        format!("incorrect withdrawals root - got: {root}, expected: {EMPTY_ROOT_HASH}")
    );

    let mut forged = honest.clone();
    forged.signature = sign_bid(&devnet.builder, &forged.message, builder_domain([0; 4]));
    assert_eq!(refusal(&devnet, forged).await, "invalid signature");

    // Signed properly, but more than the block pays: only simulation tells.
    let inflated = devnet.raw_bid(&executed, U256::from(GWEI + 1), &devnet.builder);
    let message = refusal(&devnet, inflated).await;
    assert!(message.starts_with("simulation failed: "), "{message}");

    // Taken silently and dropped: a builder the relay does not deal with, and a bid of zero.
    let stranger = BuilderKey::from_seed(b"not an allowed builder");
    for ignored in [
        devnet.raw_bid(&executed, U256::from(GWEI), &stranger),
        devnet.raw_bid(&executed, U256::ZERO, &devnet.builder),
    ] {
        let outcome = devnet
            .client()
            .submit(&SubmitBlockRequest::Fulu(ignored))
            .await;
        assert_eq!(outcome.expect("answered 200"), SubmitOutcome::Sent);
    }
    assert!(devnet.relay.take_best(slot).is_none(), "nothing was kept");
    assert_eq!(devnet.relay.stats().accepted, 0);

    // The honest bid is kept.
    devnet.relay.open_slot(devnet.ctx);
    let outcome = devnet
        .client()
        .submit(&SubmitBlockRequest::Fulu(honest))
        .await;
    assert_eq!(outcome.expect("accepted"), SubmitOutcome::Sent);
    let winner = devnet.relay.take_best(slot).expect("kept");
    assert_eq!(winner.trace.block_hash, executed.block.hash);
}
