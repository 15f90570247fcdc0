//! The slot announcement on the wire, and its conversions from and to block attributes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, Bytes};
use alloy_rpc_types_beacon::events::{PayloadAttributesData, PayloadAttributesEvent};
use alloy_rpc_types_engine::PayloadAttributes;
use cobuild_chain::{BlockAttributes, next_gas_limit};
use serde::{Deserialize, Serialize};

/// Path of the Beacon API event stream.
pub const EVENTS_PATH: &str = "/eth/v1/events";
/// The topic that carries payload attributes.
pub const PAYLOAD_ATTRIBUTES_TOPIC: &str = "payload_attributes";
/// The fork the devnet announces (its relay takes Fulu submissions).
pub const FORK_VERSION: &str = "fulu";

/// One `payload_attributes` message: the standard event plus the time left for bids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEvent {
    /// The Beacon API event.
    #[serde(flatten)]
    pub event: PayloadAttributesEvent,
    /// Milliseconds from this message until the relay stops taking bids for the slot (a
    /// cobuild field; real beacon nodes do not send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_window_ms: Option<u64>,
}

/// The announcement of `slot`, built on the block `parent_number`/`parent_hash`, whose block
/// will have `attrs` (the fee recipient being the proposer's) and move its gas limit toward
/// `target_gas_limit`.
pub fn payload_event(
    slot: u64,
    parent_number: u64,
    parent_hash: B256,
    attrs: &BlockAttributes,
    target_gas_limit: u64,
) -> PayloadAttributesEvent {
    PayloadAttributesEvent {
        version: FORK_VERSION.to_owned(),
        data: PayloadAttributesData {
            proposal_slot: slot,
            // The devnet has no beacon chain: the beacon root the block commits to stands in.
            parent_block_root: attrs.parent_beacon_block_root,
            parent_block_number: parent_number,
            parent_block_hash: parent_hash,
            proposer_index: 0,
            payload_attributes: PayloadAttributes {
                timestamp: attrs.timestamp,
                prev_randao: attrs.prev_randao,
                suggested_fee_recipient: attrs.fee_recipient,
                withdrawals: Some(attrs.withdrawals.clone()),
                parent_beacon_block_root: Some(attrs.parent_beacon_block_root),
                slot_number: None,
                target_gas_limit: Some(target_gas_limit),
            },
        },
    }
}

impl SlotEvent {
    /// The slot the block is for.
    pub const fn slot(&self) -> u64 {
        self.event.data.proposal_slot
    }

    /// The block the slot's block must build on.
    pub const fn parent_hash(&self) -> B256 {
        self.event.data.parent_block_hash
    }

    /// Its number.
    pub const fn parent_number(&self) -> u64 {
        self.event.data.parent_block_number
    }

    /// Where the proposer wants to be paid.
    pub const fn proposer_fee_recipient(&self) -> Address {
        self.event.data.payload_attributes.suggested_fee_recipient
    }

    /// The attributes of the block on a parent with gas limit `parent_gas_limit`, carrying the
    /// builder's `extra_data`. The fee recipient is the proposer's; a builder puts its own
    /// coinbase there and pays the proposer in the block.
    pub fn block_attributes(&self, parent_gas_limit: u64, extra_data: Bytes) -> BlockAttributes {
        let attrs = &self.event.data.payload_attributes;
        BlockAttributes {
            timestamp: attrs.timestamp,
            fee_recipient: attrs.suggested_fee_recipient,
            prev_randao: attrs.prev_randao,
            gas_limit: next_gas_limit(
                parent_gas_limit,
                attrs.target_gas_limit.unwrap_or(parent_gas_limit),
            ),
            withdrawals: attrs.withdrawals.clone().unwrap_or_default(),
            parent_beacon_block_root: attrs.parent_beacon_block_root.unwrap_or_default(),
            extra_data,
        }
    }

    /// When bids for the slot stop being taken, for a message received at `received`: after
    /// `bid_window_ms` when the sender said, else at the block's timestamp.
    pub fn deadline(&self, received: Instant) -> Instant {
        let left = match self.bid_window_ms {
            Some(ms) => Duration::from_millis(ms),
            None => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO);
                Duration::from_secs(self.event.data.payload_attributes.timestamp)
                    .saturating_sub(now)
            }
        };
        received + left
    }
}

#[cfg(test)]
mod tests {
    use alloy_eips::eip4895::Withdrawal;

    use super::*;

    fn attrs() -> BlockAttributes {
        BlockAttributes {
            timestamp: 1_700_000_000,
            fee_recipient: Address::repeat_byte(0xfe),
            prev_randao: B256::repeat_byte(1),
            gas_limit: next_gas_limit(30_000_000, 36_000_000),
            withdrawals: vec![Withdrawal {
                index: 7,
                validator_index: 3,
                address: Address::repeat_byte(9),
                amount: 32,
            }],
            parent_beacon_block_root: B256::repeat_byte(2),
            extra_data: Bytes::from_static(b"builder"),
        }
    }

    #[test]
    fn test_attributes_survive_the_wire_and_the_gas_limit_follows_the_target() {
        let attrs = attrs();
        let event = SlotEvent {
            event: payload_event(5, 4, B256::repeat_byte(4), &attrs, 36_000_000),
            bid_window_ms: Some(450),
        };
        let json = serde_json::to_string(&event).expect("encodes");
        // The standard fields are where Beacon API clients look for them.
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["version"], "fulu");
        assert_eq!(value["data"]["proposal_slot"], "5");
        assert_eq!(
            value["data"]["payload_attributes"]["timestamp"],
            "1700000000"
        );
        assert_eq!(value["bid_window_ms"], 450);
        let standard: PayloadAttributesEvent = serde_json::from_str(&json).expect("standard");
        assert_eq!(standard, event.event);

        let back: SlotEvent = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, event);
        assert_eq!((back.slot(), back.parent_number()), (5, 4));
        assert_eq!(back.proposer_fee_recipient(), attrs.fee_recipient);
        assert_eq!(
            back.block_attributes(30_000_000, attrs.extra_data.clone()),
            attrs
        );
    }

    #[test]
    fn test_deadline_uses_the_window_else_the_timestamp() {
        let now = Instant::now();
        let mut event = SlotEvent {
            event: payload_event(1, 0, B256::ZERO, &attrs(), 30_000_000),
            bid_window_ms: Some(300),
        };
        assert_eq!(event.deadline(now), now + Duration::from_millis(300));
        // Without the window, a timestamp in the past leaves no time at all.
        event.bid_window_ms = None;
        assert_eq!(event.deadline(now), now);
    }
}
