//! The rules every member list obeys, whichever source it came from.
//!
//! A member list decides who may connect and whose envelopes count, so a list that cannot be
//! acted on safely is refused whole rather than partly used: two members with one id, node key
//! or BLS key would make origins ambiguous, and a key that is not a curve point could never
//! authenticate anyone. Messages name the member (by id) and the field.

use std::collections::HashMap;

use alloy_primitives::B256;
use commonware_codec::DecodeFixed;
use commonware_cryptography::ed25519;

use crate::{Member, RegistryError};

/// Length of a compressed BLS12-381 G1 public key.
pub const BLS_KEY_LEN: usize = 48;

/// Checks one member: address form, node key and BLS key.
pub fn validate_member(member: &Member) -> Result<(), RegistryError> {
    let invalid = |what: String| RegistryError::Invalid(format!("member {}: {what}", member.id));
    validate_address(&member.address).map_err(invalid)?;
    validate_node_key(member.node_key).map_err(invalid)?;
    validate_bls_key(&member.bls_key).map_err(invalid)?;
    Ok(())
}

/// Checks a whole list: every member, and no id, node key or BLS key used twice.
pub fn validate_members(members: &[Member]) -> Result<(), RegistryError> {
    let mut ids = HashMap::new();
    let mut node_keys = HashMap::new();
    let mut bls_keys = HashMap::new();
    for member in members {
        validate_member(member)?;
        if ids.insert(member.id, ()).is_some() {
            return Err(RegistryError::Invalid(format!(
                "duplicate member id {}",
                member.id
            )));
        }
        if let Some(other) = node_keys.insert(member.node_key, member.id) {
            return Err(RegistryError::Invalid(format!(
                "members {other} and {} have the same node_key {}",
                member.id, member.node_key
            )));
        }
        if let Some(other) = bls_keys.insert(member.bls_key.clone(), member.id) {
            return Err(RegistryError::Invalid(format!(
                "members {other} and {} have the same bls_key {}",
                member.id, member.bls_key
            )));
        }
    }
    Ok(())
}

/// `host:port`, with a non-empty host and a non-zero port.
fn validate_address(address: &str) -> Result<(), String> {
    let bad = || format!("address {address:?} is not host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(()),
        _ => Err(format!("address {address:?} has no valid port")),
    }
}

fn validate_node_key(key: B256) -> Result<(), String> {
    ed25519::PublicKey::decode_fixed(key.0)
        .map(drop)
        .map_err(|_| format!("node_key {key} is not a valid ed25519 public key"))
}

fn validate_bls_key(key: &[u8]) -> Result<(), String> {
    if key.len() != BLS_KEY_LEN {
        return Err(format!(
            "bls_key must be {BLS_KEY_LEN} bytes, got {}",
            key.len()
        ));
    }
    // On the curve, in the subgroup, not the point at infinity.
    blst::min_pk::PublicKey::key_validate(key)
        .map(drop)
        .map_err(|e| format!("bls_key is not a valid BLS12-381 public key ({e:?})"))
}

#[cfg(test)]
pub(crate) mod tests {
    use alloy_primitives::Bytes;
    use alloy_signer_local::PrivateKeySigner;
    use cobuild_primitives::BuilderKey;
    use commonware_cryptography::Signer as _;

    use super::*;
    use crate::NodeKeys;

    /// A valid member whose keys derive from `seed`, listening on port 9000 + id.
    pub(crate) fn member(id: u32, seed: u64) -> Member {
        let keys = NodeKeys::from_parts(
            ed25519::PrivateKey::from_seed(seed),
            BuilderKey::from_seed(&seed.to_be_bytes()),
            PrivateKeySigner::random(),
        );
        keys.public()
            .member(id, format!("127.0.0.1:{}", 9000 + id), None)
    }

    fn err(members: &[Member]) -> String {
        validate_members(members).expect_err("invalid").to_string()
    }

    #[test]
    fn test_a_valid_list_passes() {
        validate_members(&[member(0, 1), member(1, 2), member(5, 3)]).expect("valid");
        validate_members(&[]).expect("an empty list is valid");
    }

    #[test]
    fn test_duplicates_are_refused() {
        assert!(err(&[member(1, 1), member(1, 2)]).contains("duplicate member id 1"));
        let mut same_node = member(2, 2);
        same_node.node_key = member(0, 1).node_key;
        let e = err(&[member(0, 1), same_node]);
        assert!(e.contains("members 0 and 2 have the same node_key"), "{e}");
        let mut same_bls = member(3, 3);
        same_bls.bls_key = member(0, 1).bls_key;
        let e = err(&[member(0, 1), same_bls]);
        assert!(e.contains("members 0 and 3 have the same bls_key"), "{e}");
    }

    #[test]
    fn test_bad_keys_and_addresses_are_refused() {
        let mut short = member(4, 1);
        short.bls_key = Bytes::from(vec![0xaa; 47]);
        assert!(err(&[short]).contains("member 4: bls_key must be 48 bytes, got 47"));

        let mut off_curve = member(4, 1);
        let mut bytes = off_curve.bls_key.to_vec();
        bytes[47] ^= 1;
        bytes[20] ^= 0x55;
        off_curve.bls_key = bytes.into();
        let e = err(&[off_curve]);
        assert!(
            e.contains("bls_key is not a valid BLS12-381 public key"),
            "{e}"
        );

        // Not every 32-byte string decompresses to an ed25519 point.
        let mut bad_node = member(4, 1);
        bad_node.node_key = (0u8..32)
            .map(B256::repeat_byte)
            .find(|k| ed25519::PublicKey::decode_fixed(k.0).is_err())
            .expect("some byte pattern is off the curve");
        let e = err(&[bad_node]);
        assert!(e.contains("is not a valid ed25519 public key"), "{e}");

        for address in ["nohost", ":9000", "host:", "host:0", "host:99999", "a b:1"] {
            let mut bad = member(4, 1);
            bad.address = address.into();
            let e = err(&[bad]);
            assert!(e.contains("member 4: address"), "{address}: {e}");
        }
        for address in [
            "localhost:1",
            "10.0.0.1:30303",
            "[::1]:9000",
            "node-2.example:7",
        ] {
            let mut good = member(4, 1);
            good.address = address.into();
            validate_members(&[good]).expect(address);
        }
    }
}
