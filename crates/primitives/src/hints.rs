//! MEV-Share privacy hints: what an order's sender lets the network share about it.
//!
//! The names are the ones the reference MEV-Share node (flashbots/mev-share-node) accepts, in
//! `mev_sendBundle`'s `privacy.hints` and `eth_sendPrivateTransaction`'s
//! `preferences.privacy.hints`; `default_logs` is its alias of `special_logs`. alloy's types know
//! only six of them, so hints are taken out of a request and checked here before the rest is
//! parsed. This node publishes no hint stream: a hint only matters for `hash`, which lets other
//! senders' bundles reference the transaction by hash.

use serde_json::Value;

use crate::OrderError;

/// Every hint name accepted, as MEV-Share spells them.
pub const PRIVACY_HINTS: [&str; 8] = [
    "calldata",
    "contract_address",
    "logs",
    "function_selector",
    "hash",
    "special_logs",
    "default_logs",
    "tx_hash",
];

/// The hints one order asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    bits: u8,
}

impl Hints {
    fn bit(name: &str) -> Option<u8> {
        // `default_logs` is the same hint as `special_logs`.
        let name = if name == "default_logs" {
            "special_logs"
        } else {
            name
        };
        PRIVACY_HINTS
            .iter()
            .position(|h| *h == name)
            .map(|i| 1 << i)
    }

    /// Reads a JSON array of hint names; an unknown name (or anything but strings) is refused
    /// with an error naming it.
    pub fn parse(value: &Value) -> Result<Self, OrderError> {
        let Value::Array(names) = value else {
            return Err(OrderError::Field {
                field: "privacy.hints",
                reason: format!("expected an array of hint names, got {value}"),
            });
        };
        let mut hints = Self::default();
        for name in names {
            let bit = name
                .as_str()
                .and_then(Self::bit)
                .ok_or_else(|| OrderError::UnknownHint(name.to_string()))?;
            hints.bits |= bit;
        }
        Ok(hints)
    }

    /// Whether `name` was asked for.
    pub fn has(&self, name: &str) -> bool {
        Self::bit(name).is_some_and(|bit| self.bits & bit != 0)
    }

    /// Whether the transaction's hash may be shared (other senders may then reference it).
    pub fn has_hash(&self) -> bool {
        self.has("hash")
    }
}

/// Takes the hints out of `request[path...]["hints"]` (a missing or null one is none) and checks
/// them, leaving the request for alloy's types to parse.
pub fn take_hints(request: &mut Value, path: &[&str]) -> Result<Hints, OrderError> {
    let mut at = Some(request);
    for key in path {
        at = at.and_then(|v| v.get_mut(*key));
    }
    let Some(Value::Object(privacy)) = at else {
        return Ok(Hints::default());
    };
    match privacy.remove("hints") {
        None | Some(Value::Null) => Ok(Hints::default()),
        Some(names) => Hints::parse(&names),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_every_mev_share_hint_is_accepted_and_unknown_ones_are_named() {
        let hints = Hints::parse(&json!(PRIVACY_HINTS)).expect("all accepted");
        assert!(PRIVACY_HINTS.iter().all(|h| hints.has(h)));
        let logs = Hints::parse(&json!(["default_logs"])).expect("alias");
        assert!(logs.has("special_logs") && !logs.has_hash());
        assert!(Hints::parse(&json!(["hash"])).expect("hash").has_hash());
        let err = Hints::parse(&json!(["calldata", "everything"])).expect_err("unknown");
        assert!(err.to_string().contains("\"everything\""), "{err}");
        assert!(Hints::parse(&json!("hash")).is_err(), "not an array");
        assert!(Hints::parse(&json!([7])).is_err(), "not a name");
    }

    #[test]
    fn test_hints_are_taken_out_of_the_request() {
        let mut request = json!({"tx": "0x00", "preferences": {"privacy": {"hints": ["special_logs"], "builders": []}}});
        let hints = take_hints(&mut request, &["preferences", "privacy"]).expect("taken");
        assert!(hints.has("default_logs"));
        assert_eq!(request["preferences"]["privacy"], json!({"builders": []}));
        let mut none = json!({"tx": "0x00"});
        assert_eq!(
            take_hints(&mut none, &["preferences", "privacy"]),
            Ok(Hints::default())
        );
    }
}
