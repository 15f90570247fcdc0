//! Orders: bundles as senders submit them, decoded and checked once at the edge.
//!
//! A [`Bundle`] is only built from an `eth_sendBundle` request that passed every structural
//! rule, so later stages (pool, simulation, building) never re-check signatures or shapes.

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_eips::Decodable2718;
use alloy_primitives::{Address, B256, Bytes};
use alloy_rpc_types_mev::EthSendBundle;

/// Most transactions one bundle may hold.
pub const MAX_BUNDLE_TXS: usize = 100;

/// Why an order was refused at the edge. Every variant is the sender's fault (invalid params).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// A bundle with no transactions and no replacement uuid to cancel.
    #[error("bundle has no transactions")]
    Empty,
    /// More transactions than a bundle may hold.
    #[error("bundle has {got} transactions, at most {max} are allowed")]
    TooManyTransactions {
        /// Transactions in the bundle.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A transaction does not decode.
    #[error("transaction {index}: {reason}")]
    BadTransaction {
        /// Position in the bundle.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A rule names a transaction hash that is not in the bundle.
    #[error("{field} names {hash}, which is not in the bundle")]
    UnknownHash {
        /// The field (`revertingTxHashes`, `droppingTxHashes`, `refundTxHashes`).
        field: &'static str,
        /// The hash.
        hash: B256,
    },
    /// `refundPercent` outside 1..=99.
    #[error("refundPercent must be between 1 and 99, got {0}")]
    RefundPercent(u8),
    /// More than one refund transaction hash.
    #[error("refundTxHashes may name at most one transaction")]
    RefundTxHashes,
    /// `replacementNonce` without a `replacementUuid`.
    #[error("replacementNonce requires replacementUuid")]
    NonceWithoutUuid,
    /// A field has the wrong shape.
    #[error("{field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `minTimestamp` after `maxTimestamp`.
    #[error("minTimestamp {min} is after maxTimestamp {max}")]
    TimestampRange {
        /// minTimestamp.
        min: u64,
        /// maxTimestamp.
        max: u64,
    },
    /// A `{hash}` body names a transaction this node does not hold (or may not share).
    #[error("unknown transaction {0}: a {{hash}} body must name a pending transaction")]
    UnknownTransaction(B256),
    /// A privacy hint MEV-Share does not know.
    #[error(
        "unknown privacy hint {0}: expected one of calldata, contract_address, logs, function_selector, hash, special_logs, default_logs, tx_hash"
    )]
    UnknownHint(String),
    /// A bundle nested inside a nested bundle.
    #[error("bundles may be nested one level deep only")]
    NestedTooDeep,
    /// An inclusion range that is empty or too long.
    #[error("inclusion range {block}..={max_block} is invalid: {reason}")]
    InclusionRange {
        /// First block.
        block: u64,
        /// Last block.
        max_block: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Replacement key of a bundle: a later bundle (or cancel) with the same uuid from the same sender
/// wins; a higher `nonce`, when given, orders replacements that arrive out of order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Replacement {
    /// The sender-chosen uuid.
    pub uuid: String,
    /// Optional ordering among replacements.
    pub nonce: Option<u64>,
}

/// The in-block refund a bundle asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    /// Share of the bundle's value to refund, 1..=99.
    pub percent: u8,
    /// Who receives it (default: the signer of the first transaction).
    pub recipient: Option<Address>,
    /// The transaction whose value is refunded (default: the last one).
    pub tx_hash: Option<B256>,
    /// `delayedRefund: true`: the refund is paid from the ledger after the slot, not in the
    /// block.
    pub delayed: bool,
}

/// A checked bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `keccak256` of the concatenated transaction hashes (Flashbots' `bundleHash`).
    pub hash: B256,
    /// The transactions, decoded, with their signers.
    pub txs: Vec<Recovered<TxEnvelope>>,
    /// The block the bundle targets (the first one, when it has a range).
    pub block_number: u64,
    /// The last block the bundle may land in (`mev_sendBundle`'s `inclusion.maxBlock`); `None`
    /// means only `block_number`.
    pub max_block: Option<u64>,
    /// Earliest block timestamp, if any.
    pub min_timestamp: Option<u64>,
    /// Latest block timestamp, if any.
    pub max_timestamp: Option<u64>,
    /// Transactions that may revert without voiding the bundle.
    pub reverting: Vec<B256>,
    /// Transactions that may be left out.
    pub dropping: Vec<B256>,
    /// Replacement key, if any.
    pub replacement: Option<Replacement>,
    /// Refund request, if any.
    pub refund: Option<Refund>,
}

impl Bundle {
    /// The last block the bundle may land in.
    pub fn last_block(&self) -> u64 {
        self.max_block.unwrap_or(self.block_number)
    }

    /// Whether a block `number` is in the bundle's inclusion range (`block_number` 0: any block).
    pub fn targets(&self, number: u64) -> bool {
        self.block_number == 0 || (self.block_number..=self.last_block()).contains(&number)
    }

    /// What makes two sends of a bundle the same order: the sender, the transactions and every
    /// rule that says where and how they may land (target block and range, timestamps, revert
    /// and drop lists, refund, replacement key). The Flashbots `bundleHash` covers only the
    /// transactions, so the same transactions sent for the next few blocks share it; this
    /// identity tells them apart, while sending the very same bundle twice stays idempotent.
    pub fn identity(&self, sender: Address) -> B256 {
        // Fixed-width fields and length-prefixed lists: no two bundles encode alike.
        let mut out = Vec::with_capacity(160 + 32 * (self.reverting.len() + self.dropping.len()));
        let opt = |out: &mut Vec<u8>, value: Option<u64>| match value {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_be_bytes());
            }
            None => out.push(0),
        };
        let list = |out: &mut Vec<u8>, hashes: &[B256]| {
            out.extend_from_slice(&(hashes.len() as u64).to_be_bytes());
            hashes
                .iter()
                .for_each(|h| out.extend_from_slice(h.as_slice()));
        };
        out.extend_from_slice(sender.as_slice());
        out.extend_from_slice(self.hash.as_slice());
        out.extend_from_slice(&self.block_number.to_be_bytes());
        opt(&mut out, self.max_block);
        opt(&mut out, self.min_timestamp);
        opt(&mut out, self.max_timestamp);
        list(&mut out, &self.reverting);
        list(&mut out, &self.dropping);
        match &self.refund {
            Some(refund) => {
                out.push(1);
                out.push(refund.percent);
                match refund.recipient {
                    Some(recipient) => {
                        out.push(1);
                        out.extend_from_slice(recipient.as_slice());
                    }
                    None => out.push(0),
                }
                list(&mut out, refund.tx_hash.as_slice());
                out.push(u8::from(refund.delayed));
            }
            None => out.push(0),
        }
        match &self.replacement {
            Some(replacement) => {
                out.push(1);
                out.extend_from_slice(&(replacement.uuid.len() as u64).to_be_bytes());
                out.extend_from_slice(replacement.uuid.as_bytes());
                opt(&mut out, replacement.nonce);
            }
            None => out.push(0),
        }
        alloy_primitives::keccak256(out)
    }
}

/// What an `eth_sendBundle` call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived request value; callers move the bundle out by value"
)]
pub enum BundleRequest {
    /// Add (or replace) a bundle.
    Send(Bundle),
    /// Cancel the bundle with this replacement uuid (`txs: []` with a uuid).
    Cancel(Replacement),
}

impl BundleRequest {
    /// Checks an `eth_sendBundle` request and decodes its transactions.
    ///
    /// Accepts the variants real clients send: quantities as numbers or hex, `minTimestamp: 0`
    /// and `replacementUuid: null` meaning unset, and `uuid` as an alias of `replacementUuid`.
    pub fn from_rpc(request: EthSendBundle) -> Result<Self, OrderError> {
        let uuid = match (request.replacement_uuid, request.extra_fields.get("uuid")) {
            (Some(uuid), _) => Some(uuid),
            (None, Some(serde_json::Value::String(uuid))) => Some(uuid.clone()),
            (None, Some(serde_json::Value::Null) | None) => None,
            (None, Some(other)) => {
                return Err(OrderError::Field {
                    field: "uuid",
                    reason: format!("expected a string, got {other}"),
                });
            }
        };
        let nonce = match request.extra_fields.get("replacementNonce") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(quantity(value).ok_or_else(|| OrderError::Field {
                field: "replacementNonce",
                reason: format!("expected a quantity, got {value}"),
            })?),
        };
        let replacement = match (uuid, nonce) {
            (Some(uuid), nonce) => Some(Replacement { uuid, nonce }),
            (None, Some(_)) => return Err(OrderError::NonceWithoutUuid),
            (None, None) => None,
        };
        if request.txs.is_empty() {
            return replacement.map(Self::Cancel).ok_or(OrderError::Empty);
        }
        if request.txs.len() > MAX_BUNDLE_TXS {
            return Err(OrderError::TooManyTransactions {
                got: request.txs.len(),
                max: MAX_BUNDLE_TXS,
            });
        }
        let txs = decode_transactions(&request.txs)?;
        let hashes: Vec<B256> = txs.iter().map(|tx| *tx.tx_hash()).collect();
        let known = |field: &'static str, list: &[B256]| {
            list.iter()
                .find(|h| !hashes.contains(h))
                .map_or(Ok(()), |hash| {
                    Err(OrderError::UnknownHash { field, hash: *hash })
                })
        };
        known("revertingTxHashes", &request.reverting_tx_hashes)?;
        known("droppingTxHashes", &request.dropping_tx_hashes)?;
        known("refundTxHashes", &request.refund_tx_hashes)?;
        if request.refund_tx_hashes.len() > 1 {
            return Err(OrderError::RefundTxHashes);
        }
        let refund = match request.refund_percent {
            None | Some(0)
                if request.refund_recipient.is_none() && request.refund_tx_hashes.is_empty() =>
            {
                None
            }
            Some(percent @ 1..=99) => Some(Refund {
                percent,
                recipient: request.refund_recipient,
                tx_hash: request.refund_tx_hashes.first().copied(),
                delayed: request
                    .extra_fields
                    .get("delayedRefund")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            }),
            Some(other) => return Err(OrderError::RefundPercent(other)),
            None => return Err(OrderError::RefundPercent(0)),
        };
        // web3-flashbots sends 0 for "no bound".
        let min_timestamp = request.min_timestamp.filter(|t| *t != 0);
        let max_timestamp = request.max_timestamp.filter(|t| *t != 0);
        if let (Some(min), Some(max)) = (min_timestamp, max_timestamp)
            && min > max
        {
            return Err(OrderError::TimestampRange { min, max });
        }
        Ok(Self::Send(Bundle {
            hash: bundle_hash(&txs),
            txs,
            block_number: request.block_number,
            max_block: None,
            min_timestamp,
            max_timestamp,
            reverting: request.reverting_tx_hashes,
            dropping: request.dropping_tx_hashes,
            replacement,
            refund,
        }))
    }
}

/// Decodes EIP-2718 transactions and recovers their signers (through the process's
/// [`SenderCache`](crate::SenderCache)), refusing trailing bytes.
pub fn decode_transactions(raw: &[Bytes]) -> Result<Vec<Recovered<TxEnvelope>>, OrderError> {
    raw.iter()
        .enumerate()
        .map(|(index, raw)| {
            let mut slice = raw.as_ref();
            let tx =
                TxEnvelope::decode_2718(&mut slice).map_err(|e| OrderError::BadTransaction {
                    index,
                    reason: format!("rlp: {e}"),
                })?;
            if !slice.is_empty() {
                return Err(OrderError::BadTransaction {
                    index,
                    reason: "trailing bytes".into(),
                });
            }
            // No sidecar path yet (the pool refuses them too); a blob transaction here could
            // only fail in the block.
            if tx.is_eip4844() {
                return Err(OrderError::BadTransaction {
                    index,
                    reason: "blob transactions are not supported by this node".into(),
                });
            }
            crate::SenderCache::global()
                .recover(tx)
                .map_err(|_| OrderError::BadTransaction {
                    index,
                    reason: "invalid signature".into(),
                })
        })
        .collect()
}

/// `keccak256` of the concatenated transaction hashes: Flashbots' `bundleHash`.
pub fn bundle_hash(txs: &[Recovered<TxEnvelope>]) -> B256 {
    alloy_primitives::keccak256(
        txs.iter()
            .flat_map(|tx| tx.tx_hash().0)
            .collect::<Vec<u8>>(),
    )
}

/// A JSON quantity: a number or a 0x-hex string.
pub fn quantity(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s
            .strip_prefix("0x")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .or_else(|| s.parse().ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    fn fixture_params(method: &str) -> Vec<serde_json::Value> {
        cobuild_test_utils::flashbots_fixture_params(method)
    }

    fn bundle(params: serde_json::Value) -> Result<BundleRequest, OrderError> {
        BundleRequest::from_rpc(serde_json::from_value(params).expect("EthSendBundle parses"))
    }

    #[test]
    fn test_blob_transactions_are_refused_in_bundles() {
        use alloy_consensus::{SignableTransaction, TxEip4844};
        use alloy_eips::Encodable2718;
        use alloy_signer::SignerSync;
        let signer =
            alloy_signer_local::PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).expect("key");
        let tx = TxEip4844 {
            chain_id: 31337,
            gas_limit: 21_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: Address::repeat_byte(1),
            blob_versioned_hashes: vec![B256::with_last_byte(1)],
            max_fee_per_blob_gas: 1_000_000_000,
            ..Default::default()
        };
        let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
        let envelope = TxEnvelope::from(tx.into_signed(signature));
        let raw = Bytes::from(envelope.encoded_2718());
        let err = decode_transactions(&[raw]).expect_err("refused");
        assert!(
            matches!(&err, OrderError::BadTransaction { index: 0, reason } if reason.contains("blob")),
            "{err}"
        );
    }

    #[test]
    fn test_real_client_bundles_decode() {
        let all = fixture_params("eth_sendBundle");
        assert!(all.len() >= 2, "fixtures from both clients");
        for params in all {
            let raw: EthSendBundle = serde_json::from_value(params.clone()).expect("parses");
            let BundleRequest::Send(b) = bundle(params).expect("valid") else {
                panic!("not a cancel")
            };
            assert_eq!(
                b.hash,
                raw.bundle_hash(),
                "bundleHash as Flashbots computes it"
            );
            assert!(b.txs.iter().all(|tx| tx.signer()
                == address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
                || tx.signer() == address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")));
            assert_eq!(b.min_timestamp, None, "minTimestamp 0 means unset");
        }
    }

    #[test]
    fn test_identity_tells_target_blocks_and_senders_apart() {
        let params = fixture_params("eth_sendBundle").remove(0);
        let BundleRequest::Send(first) = bundle(params).expect("valid") else {
            panic!("a send");
        };
        let alice = Address::repeat_byte(0xa1);
        let later = Bundle {
            block_number: first.block_number + 1,
            ..first.clone()
        };
        assert_eq!(first.hash, later.hash, "the same Flashbots bundleHash");
        assert_ne!(
            first.identity(alice),
            later.identity(alice),
            "another target"
        );
        assert_eq!(
            first.identity(alice),
            first.clone().identity(alice),
            "idempotent"
        );
        assert_ne!(
            first.identity(alice),
            first.identity(Address::repeat_byte(0xb0)),
            "another sender"
        );
        let reverting = Bundle {
            reverting: vec![*first.txs[0].tx_hash()],
            ..first.clone()
        };
        assert_ne!(
            first.identity(alice),
            reverting.identity(alice),
            "other rules"
        );
    }

    #[test]
    fn test_empty_txs_with_uuid_is_a_cancel() {
        let req = bundle(serde_json::json!({"txs": [], "blockNumber": "0x1", "uuid": "abc"}))
            .expect("cancel");
        assert_eq!(
            req,
            BundleRequest::Cancel(Replacement {
                uuid: "abc".into(),
                nonce: None
            })
        );
        assert_eq!(
            bundle(serde_json::json!({"txs": [], "blockNumber": 1})),
            Err(OrderError::Empty)
        );
    }

    #[test]
    fn test_rules_must_name_bundle_transactions() {
        let mut params = fixture_params("eth_sendBundle").remove(0);
        params["revertingTxHashes"] = serde_json::json!([B256::repeat_byte(1)]);
        assert!(matches!(
            bundle(params.clone()),
            Err(OrderError::UnknownHash {
                field: "revertingTxHashes",
                ..
            })
        ));
        params["revertingTxHashes"] = serde_json::json!([]);
        params["refundPercent"] = serde_json::json!(100);
        assert_eq!(bundle(params.clone()), Err(OrderError::RefundPercent(100)));
        params["refundPercent"] = serde_json::json!("0x32");
        let BundleRequest::Send(b) = bundle(params.clone()).expect("valid") else {
            panic!("send")
        };
        assert_eq!(b.refund.map(|r| r.percent), Some(50));
        params["txs"] = serde_json::json!(["0x02f8"]);
        assert!(matches!(
            bundle(params),
            Err(OrderError::BadTransaction { index: 0, .. })
        ));
    }
}
