//! MEV-Share bundles (`mev_sendBundle`, `mev_simBundle`) checked into the same [`Bundle`] the
//! Flashbots `eth_sendBundle` produces, so the pool and the builder see one kind of bundle.
//!
//! A body item is a signed transaction (`{tx, canRevert}`), a transaction already pending in
//! this node (`{hash}`, resolved by the caller at submission), or a nested bundle (`{bundle}`),
//! which is flattened in place, one level deep; its inclusion range is intersected with the
//! outer one.

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, Bytes};
use alloy_rpc_types_mev::{BundleItem, EthSendPrivateTransaction, MevSendBundle};

use crate::{
    Bundle, Hints, MAX_BUNDLE_TXS, OrderError, Refund, bundle_hash, decode_transactions, take_hints,
};

/// Most blocks past `inclusion.block` a bundle's `inclusion.maxBlock` may name (MEV-Share's limit).
pub const MAX_INCLUSION_RANGE: u64 = 30;

/// Parses `mev_sendBundle`/`mev_simBundle` params into alloy's type, with `canRevert` optional
/// (absent means `false`, as the MEV-Share spec says) and every privacy hint MEV-Share accepts
/// (checked here, an unknown one named in the error; nested bundles' too).
pub fn parse_mev_bundle(mut value: serde_json::Value) -> Result<MevSendBundle, OrderError> {
    default_can_revert(&mut value, 0);
    take_all_hints(&mut value, 0)?;
    serde_json::from_value(value).map_err(|e| OrderError::Field {
        field: "bundle",
        reason: e.to_string(),
    })
}

/// Parses `eth_sendPrivateTransaction` params into alloy's type and the privacy hints they ask
/// for (every hint MEV-Share accepts; an unknown one is named in the error). `maxBlockNumber`
/// comes as a number or a hex string.
pub fn parse_private_transaction(
    mut value: serde_json::Value,
) -> Result<(EthSendPrivateTransaction, Hints), OrderError> {
    let hints = take_hints(&mut value, &["preferences", "privacy"])?;
    let request = serde_json::from_value(value).map_err(|e| OrderError::Field {
        field: "params",
        reason: e.to_string(),
    })?;
    Ok((request, hints))
}

/// Checks and removes `privacy.hints` of a bundle and its nested bundles (alloy's type refuses
/// `special_logs` and `default_logs`; this node shares no hint, so they are not kept).
fn take_all_hints(bundle: &mut serde_json::Value, depth: usize) -> Result<(), OrderError> {
    if depth > 2 {
        return Ok(());
    }
    take_hints(bundle, &["privacy"])?;
    if let Some(body) = bundle.get_mut("body").and_then(|b| b.as_array_mut()) {
        for item in body {
            if let Some(nested) = item.get_mut("bundle") {
                take_all_hints(nested, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn default_can_revert(bundle: &mut serde_json::Value, depth: usize) {
    // Nesting beyond one level is refused later, with a clear error; stop walking there.
    if depth > 2 {
        return;
    }
    let Some(body) = bundle.get_mut("body").and_then(|b| b.as_array_mut()) else {
        return;
    };
    for item in body {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        if item.contains_key("tx") && !item.contains_key("canRevert") {
            item.insert("canRevert".into(), serde_json::Value::Bool(false));
        }
        if let Some(nested) = item.get_mut("bundle") {
            default_can_revert(nested, depth + 1);
        }
    }
}

/// The hashes a bundle's `{hash}` items name (the transactions it backruns), nested ones included.
pub fn referenced_transactions(request: &MevSendBundle) -> Vec<B256> {
    let mut out = Vec::new();
    for item in &request.bundle_body {
        match item {
            BundleItem::Hash { hash } => out.push(*hash),
            BundleItem::Bundle { bundle } => out.extend(referenced_transactions(bundle)),
            BundleItem::Tx { .. } => {}
        }
    }
    out
}

/// The flattened body: transactions in order, those allowed to revert, and where each outer
/// item starts.
#[derive(Default)]
struct Flat {
    txs: Vec<Recovered<TxEnvelope>>,
    reverting: Vec<B256>,
    starts: Vec<usize>,
}

impl Flat {
    fn push_items(
        &mut self,
        body: &[BundleItem],
        nested: bool,
        range: &mut (u64, u64),
        resolve: &mut impl FnMut(B256) -> Option<Recovered<TxEnvelope>>,
    ) -> Result<(), OrderError> {
        for item in body {
            if !nested {
                self.starts.push(self.txs.len());
            }
            match item {
                BundleItem::Hash { hash } => {
                    let tx = resolve(*hash).ok_or(OrderError::UnknownTransaction(*hash))?;
                    self.txs.push(tx);
                }
                BundleItem::Tx { tx, can_revert } => {
                    let index = self.txs.len();
                    let decoded = decode_one(index, tx)?;
                    if *can_revert {
                        self.reverting.push(*decoded.tx_hash());
                    }
                    self.txs.push(decoded);
                }
                BundleItem::Bundle { bundle } => {
                    if nested {
                        return Err(OrderError::NestedTooDeep);
                    }
                    let (block, max_block) = inclusion(bundle)?;
                    *range = (range.0.max(block), range.1.min(max_block));
                    if range.0 > range.1 {
                        return Err(OrderError::InclusionRange {
                            block: range.0,
                            max_block: range.1,
                            reason: "a nested bundle's inclusion range does not overlap the outer one",
                        });
                    }
                    self.push_items(&bundle.bundle_body, true, range, resolve)?;
                }
            }
            if self.txs.len() > MAX_BUNDLE_TXS {
                return Err(OrderError::TooManyTransactions {
                    got: self.txs.len(),
                    max: MAX_BUNDLE_TXS,
                });
            }
        }
        Ok(())
    }
}

fn decode_one(index: usize, raw: &Bytes) -> Result<Recovered<TxEnvelope>, OrderError> {
    let mut decoded = decode_transactions(std::slice::from_ref(raw)).map_err(|e| match e {
        OrderError::BadTransaction { reason, .. } => OrderError::BadTransaction { index, reason },
        other => other,
    })?;
    decoded.pop().ok_or(OrderError::Empty)
}

/// A bundle's inclusion range, checked.
fn inclusion(request: &MevSendBundle) -> Result<(u64, u64), OrderError> {
    let block = request.inclusion.block;
    let max_block = request.inclusion.max_block.unwrap_or(block);
    if max_block < block {
        return Err(OrderError::InclusionRange {
            block,
            max_block,
            reason: "maxBlock is before block",
        });
    }
    if max_block - block > MAX_INCLUSION_RANGE {
        return Err(OrderError::InclusionRange {
            block,
            max_block,
            reason: "maxBlock may be at most 30 blocks after block",
        });
    }
    Ok((block, max_block))
}

impl Bundle {
    /// Checks a MEV-Share bundle (`mev_sendBundle` v0.1 or beta-1) and flattens it.
    ///
    /// `resolve` looks up the transaction a `{hash}` item names (it must be pending in this node
    /// and visible to the sender); an unknown hash is [`OrderError::UnknownTransaction`]. `canRevert`
    /// becomes a reverting hash; a nested `{bundle}` is flattened in place (one level deep) and its
    /// inclusion range narrows the outer one. `validity.refund` (at most one entry) becomes a
    /// [`Refund`] to the signer of the item it names; `validity.refundConfig` is checked (percents
    /// at most 100 in total) but only matters once refunds are paid. `privacy` hints are accepted:
    /// this node publishes no hints at all.
    pub fn from_mev_share(
        request: &MevSendBundle,
        mut resolve: impl FnMut(B256) -> Option<Recovered<TxEnvelope>>,
    ) -> Result<Self, OrderError> {
        let (block, max_block) = inclusion(request)?;
        let mut range = (block, max_block);
        let mut flat = Flat::default();
        flat.push_items(&request.bundle_body, false, &mut range, &mut resolve)?;
        if flat.txs.is_empty() {
            return Err(OrderError::Empty);
        }
        let refund = match request.validity.as_ref() {
            Some(validity) => refund(validity, &flat)?,
            None => None,
        };
        let (block, max_block) = range;
        Ok(Self {
            hash: bundle_hash(&flat.txs),
            txs: flat.txs,
            block_number: block,
            max_block: (max_block > block).then_some(max_block),
            min_timestamp: None,
            max_timestamp: None,
            reverting: flat.reverting,
            dropping: Vec::new(),
            replacement: None,
            refund,
        })
    }
}

fn refund(
    validity: &alloy_rpc_types_mev::Validity,
    flat: &Flat,
) -> Result<Option<Refund>, OrderError> {
    let config = validity.refund_config.as_deref().unwrap_or_default();
    let total: u64 = config.iter().map(|c| c.percent).sum();
    if config.iter().any(|c| c.percent > 100) || total > 100 {
        return Err(OrderError::Field {
            field: "validity.refundConfig",
            reason: format!("percents must add up to at most 100, got {total}"),
        });
    }
    let refunds = validity.refund.as_deref().unwrap_or_default();
    let [entry] = refunds else {
        if refunds.is_empty() {
            return Ok(None);
        }
        return Err(OrderError::Field {
            field: "validity.refund",
            reason: format!("at most one entry is supported, got {}", refunds.len()),
        });
    };
    let percent = u8::try_from(entry.percent)
        .ok()
        .filter(|p| (1..=99).contains(p))
        .ok_or(OrderError::RefundPercent(entry.percent.min(255) as u8))?;
    let recipient: Address = usize::try_from(entry.body_idx)
        .ok()
        .and_then(|i| flat.starts.get(i))
        .and_then(|start| flat.txs.get(*start))
        .map(|tx| tx.signer())
        .ok_or_else(|| OrderError::Field {
            field: "validity.refund",
            reason: format!("bodyIdx {} is not in the body", entry.body_idx),
        })?;
    Ok(Some(Refund {
        percent,
        recipient: Some(recipient),
        tx_hash: None,
        delayed: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(method: &str) -> Vec<serde_json::Value> {
        cobuild_test_utils::flashbots_fixture_params(method)
    }

    /// The signed transaction inside the mev-share-client fixture.
    fn fixture_tx() -> Bytes {
        let params = fixture("mev_sendBundle").remove(0);
        let raw = params["body"][1]["tx"].as_str().expect("tx").to_string();
        raw.parse().expect("hex")
    }

    #[test]
    fn test_real_client_mev_bundle_resolves_hash_and_keeps_range() {
        let params = fixture("mev_sendBundle").remove(0);
        let request = parse_mev_bundle(params).expect("parses");
        let referenced = B256::repeat_byte(0xaa);
        assert_eq!(referenced_transactions(&request), vec![referenced]);
        // The referenced transaction is unknown: a clear error.
        assert_eq!(
            Bundle::from_mev_share(&request, |_| None),
            Err(OrderError::UnknownTransaction(referenced))
        );
        // Resolved (to the fixture's own transaction, for the test): a bundle for 0x10..=0x12.
        let pending = decode_one(0, &fixture_tx()).expect("decodes");
        let bundle =
            Bundle::from_mev_share(&request, |h| (h == referenced).then(|| pending.clone()))
                .expect("valid");
        assert_eq!((bundle.block_number, bundle.max_block), (16, Some(18)));
        assert_eq!(bundle.txs.len(), 2);
        assert!(bundle.reverting.is_empty(), "canRevert: false");
        assert!(bundle.targets(17) && !bundle.targets(19) && !bundle.targets(15));
        assert_eq!(bundle.last_block(), 18);
    }

    #[test]
    fn test_can_revert_is_optional_and_becomes_a_reverting_hash() {
        let tx = fixture_tx();
        let request = parse_mev_bundle(serde_json::json!({
            "version": "v0.1",
            "inclusion": {"block": 5},
            "body": [{"tx": tx}],
        }))
        .expect("canRevert may be left out");
        let bundle = Bundle::from_mev_share(&request, |_| None).expect("valid");
        assert!(bundle.reverting.is_empty());
        assert_eq!(bundle.max_block, None);
        let request = parse_mev_bundle(serde_json::json!({
            "version": "v0.1",
            "inclusion": {"block": "0x5"},
            "body": [{"tx": tx, "canRevert": true}],
        }))
        .expect("parses");
        let bundle = Bundle::from_mev_share(&request, |_| None).expect("valid");
        assert_eq!(bundle.reverting, vec![*bundle.txs[0].tx_hash()]);
    }

    #[test]
    fn test_nested_bundle_is_flattened_one_level_and_narrows_the_range() {
        let tx = fixture_tx();
        let nested = serde_json::json!({
            "version": "v0.1",
            "inclusion": {"block": 6, "maxBlock": 20},
            "body": [{"tx": tx, "canRevert": true}],
        });
        let request = parse_mev_bundle(serde_json::json!({
            "version": "v0.1",
            "inclusion": {"block": 5, "maxBlock": 8},
            "body": [{"bundle": nested.clone()}, {"hash": B256::repeat_byte(1)}],
        }))
        .expect("parses");
        let pending = decode_one(0, &tx).expect("decodes");
        let bundle =
            Bundle::from_mev_share(&request, |_| Some(pending.clone())).expect("flattened");
        assert_eq!(bundle.txs.len(), 2);
        assert_eq!((bundle.block_number, bundle.max_block), (6, Some(8)));
        assert_eq!(bundle.reverting.len(), 1, "the nested canRevert is kept");

        let too_deep = parse_mev_bundle(serde_json::json!({
            "version": "v0.1",
            "inclusion": {"block": 5},
            "body": [{"bundle": {
                "version": "v0.1",
                "inclusion": {"block": 5},
                "body": [{"bundle": nested}],
            }}],
        }))
        .expect("parses");
        assert_eq!(
            Bundle::from_mev_share(&too_deep, |_| None),
            Err(OrderError::NestedTooDeep)
        );
    }

    #[test]
    fn test_inclusion_range_and_refund_rules() {
        let tx = fixture_tx();
        let with = |inclusion: serde_json::Value, validity: serde_json::Value| {
            let request = parse_mev_bundle(serde_json::json!({
                "version": "v0.1",
                "inclusion": inclusion,
                "body": [{"tx": tx, "canRevert": false}],
                "validity": validity,
            }))
            .expect("parses");
            Bundle::from_mev_share(&request, |_| None)
        };
        let none = serde_json::json!({});
        assert!(matches!(
            with(serde_json::json!({"block": 9, "maxBlock": 8}), none.clone()),
            Err(OrderError::InclusionRange { .. })
        ));
        assert!(matches!(
            with(
                serde_json::json!({"block": 1, "maxBlock": 32}),
                none.clone()
            ),
            Err(OrderError::InclusionRange { .. })
        ));
        let ok = with(
            serde_json::json!({"block": 1}),
            serde_json::json!({"refund": [{"bodyIdx": 0, "percent": 40}]}),
        )
        .expect("valid refund");
        let refund = ok.refund.expect("refund");
        assert_eq!(refund.percent, 40);
        assert_eq!(refund.recipient, Some(ok.txs[0].signer()));
        assert!(matches!(
            with(
                serde_json::json!({"block": 1}),
                serde_json::json!({"refund": [{"bodyIdx": 3, "percent": 40}]})
            ),
            Err(OrderError::Field { .. })
        ));
        assert_eq!(
            with(
                serde_json::json!({"block": 1}),
                serde_json::json!({"refund": [{"bodyIdx": 0, "percent": 100}]})
            ),
            Err(OrderError::RefundPercent(100))
        );
        assert!(matches!(
            with(
                serde_json::json!({"block": 1}),
                serde_json::json!({"refundConfig": [
                    {"address": Address::ZERO, "percent": 60},
                    {"address": Address::ZERO, "percent": 60},
                ]})
            ),
            Err(OrderError::Field { .. })
        ));
        assert!(matches!(
            parse_mev_bundle(serde_json::json!({"inclusion": {"block": 1}, "body": []})),
            Err(OrderError::Field { .. })
        ));
    }
}
