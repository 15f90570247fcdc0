//! BLS keys and the builder-spec signatures: a builder signs the SSZ signing root of its
//! `BidTrace` under the builder domain, and a proposer signs its registration the same way.
//!
//! The containers are hashed with `tree_hash` and signed with `blst` (min-pk: 48-byte public
//! keys, 96-byte signatures, the proof-of-possession cipher suite), as the consensus specs do.

use alloy_primitives::{Address, B256, FixedBytes};
use alloy_rpc_types_beacon::{
    BlsPublicKey, BlsSignature,
    relay::{BidTrace, ValidatorRegistrationMessage},
};
use blst::{
    BLST_ERROR,
    min_pk::{PublicKey, Signature},
};
use cobuild_primitives::{BLS_DST, BuilderKey};
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

/// The domain type of builder-API messages (bids and validator registrations).
pub const DOMAIN_APPLICATION_BUILDER: [u8; 4] = [0x00, 0x00, 0x00, 0x01];

/// The genesis fork version of the devnet (the one kurtosis devnets use), so devnet
/// signatures never verify on mainnet (`0x00000000`).
pub const DEVNET_GENESIS_FORK_VERSION: [u8; 4] = [0x10, 0x00, 0x00, 0x38];

/// A signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not a valid compressed G1 point of the subgroup.
    #[error("invalid BLS public key: {0:?}")]
    PublicKey(BLST_ERROR),
    /// The signature is not a valid compressed G2 point.
    #[error("malformed BLS signature: {0:?}")]
    Encoding(BLST_ERROR),
    /// The signature is well formed but not over this message with this key and domain.
    #[error("BLS signature does not verify: {0:?}")]
    Invalid(BLST_ERROR),
}

/// `ForkData` of the consensus specs.
#[derive(TreeHash)]
struct ForkData {
    current_version: FixedBytes<4>,
    genesis_validators_root: B256,
}

/// `SigningData` of the consensus specs.
#[derive(TreeHash)]
struct SigningData {
    object_root: B256,
    domain: B256,
}

/// `ValidatorRegistrationV1` of the builder specs (alloy's message type has no SSZ derive).
#[derive(TreeHash)]
struct RegistrationSsz {
    fee_recipient: Address,
    gas_limit: u64,
    timestamp: u64,
    pubkey: BlsPublicKey,
}

/// `compute_domain` of the consensus specs: the domain type followed by the first 28 bytes of
/// the fork data root.
pub fn compute_domain(
    domain_type: [u8; 4],
    fork_version: [u8; 4],
    genesis_validators_root: B256,
) -> B256 {
    let fork_data_root = ForkData {
        current_version: fork_version.into(),
        genesis_validators_root,
    }
    .tree_hash_root();
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(&domain_type);
    domain[4..].copy_from_slice(&fork_data_root[..28]);
    domain.into()
}

/// The builder domain of a chain: `DOMAIN_APPLICATION_BUILDER`, the genesis fork version and a
/// zero genesis validators root (builder messages are valid across forks).
pub fn builder_domain(genesis_fork_version: [u8; 4]) -> B256 {
    compute_domain(DOMAIN_APPLICATION_BUILDER, genesis_fork_version, B256::ZERO)
}

fn signing_root(object_root: B256, domain: B256) -> B256 {
    SigningData {
        object_root,
        domain,
    }
    .tree_hash_root()
}

/// The message a builder signs: the signing root of the bid trace's `hash_tree_root`.
pub fn bid_signing_root(bid: &BidTrace, domain: B256) -> B256 {
    signing_root(bid.tree_hash_root(), domain)
}

/// Signs `bid` with `key` under `domain`. The signature verifies only if `bid.builder_pubkey`
/// is `key`'s public key.
pub fn sign_bid(key: &BuilderKey, bid: &BidTrace, domain: B256) -> BlsSignature {
    key.sign_root(bid_signing_root(bid, domain))
}

/// Checks that `signature` is `bid.builder_pubkey`'s signature of `bid` under `domain`.
pub fn verify_bid(
    bid: &BidTrace,
    signature: &BlsSignature,
    domain: B256,
) -> Result<(), SignatureError> {
    verify_root(
        &bid.builder_pubkey,
        signature,
        bid_signing_root(bid, domain),
    )
}

fn registration_root(message: &ValidatorRegistrationMessage, domain: B256) -> B256 {
    let ssz = RegistrationSsz {
        fee_recipient: message.fee_recipient,
        gas_limit: message.gas_limit,
        timestamp: message.timestamp,
        pubkey: message.pubkey,
    };
    signing_root(ssz.tree_hash_root(), domain)
}

/// Signs a validator registration (the proposer's side of `/relay/v1/builder/validators`).
pub fn sign_registration(
    key: &BuilderKey,
    message: &ValidatorRegistrationMessage,
    domain: B256,
) -> BlsSignature {
    key.sign_root(registration_root(message, domain))
}

/// Checks that `signature` is `message.pubkey`'s signature of the registration under `domain`.
pub fn verify_registration(
    message: &ValidatorRegistrationMessage,
    signature: &BlsSignature,
    domain: B256,
) -> Result<(), SignatureError> {
    verify_root(
        &message.pubkey,
        signature,
        registration_root(message, domain),
    )
}

fn verify_root(
    public: &BlsPublicKey,
    signature: &BlsSignature,
    root: B256,
) -> Result<(), SignatureError> {
    let public = PublicKey::key_validate(public.as_slice()).map_err(SignatureError::PublicKey)?;
    let signature =
        Signature::from_bytes(signature.as_slice()).map_err(SignatureError::Encoding)?;
    match signature.verify(true, root.as_slice(), BLS_DST, &[], &public, false) {
        BLST_ERROR::BLST_SUCCESS => Ok(()),
        err => Err(SignatureError::Invalid(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{U256, address, b256, fixed_bytes};

    fn bid(key: &BuilderKey) -> BidTrace {
        BidTrace {
            slot: 7,
            parent_hash: B256::repeat_byte(1),
            block_hash: B256::repeat_byte(2),
            builder_pubkey: key.public_key(),
            proposer_pubkey: BuilderKey::from_seed(b"proposer").public_key(),
            proposer_fee_recipient: Address::repeat_byte(3),
            gas_limit: 30_000_000,
            gas_used: 21_000,
            value: U256::from(1_000_000_000u64),
        }
    }

    #[test]
    fn test_sign_verify_roundtrip() {
        let key = BuilderKey::from_seed(b"builder");
        let domain = builder_domain(DEVNET_GENESIS_FORK_VERSION);
        let bid = bid(&key);
        let signature = sign_bid(&key, &bid, domain);
        assert_eq!(verify_bid(&bid, &signature, domain), Ok(()));
    }

    #[test]
    fn test_changed_value_or_block_hash_fails() {
        let key = BuilderKey::from_seed(b"builder");
        let domain = builder_domain(DEVNET_GENESIS_FORK_VERSION);
        let original = bid(&key);
        let signature = sign_bid(&key, &original, domain);

        let mut more = original.clone();
        more.value += U256::from(1);
        assert!(matches!(
            verify_bid(&more, &signature, domain),
            Err(SignatureError::Invalid(_))
        ));

        let mut other_block = original;
        other_block.block_hash = B256::repeat_byte(9);
        assert!(matches!(
            verify_bid(&other_block, &signature, domain),
            Err(SignatureError::Invalid(_))
        ));
    }

    #[test]
    fn test_wrong_domain_fails() {
        let key = BuilderKey::from_seed(b"builder");
        let bid = bid(&key);
        let signature = sign_bid(&key, &bid, builder_domain(DEVNET_GENESIS_FORK_VERSION));
        // Mainnet's builder domain, and the devnet fork under another domain type.
        assert!(verify_bid(&bid, &signature, builder_domain([0; 4])).is_err());
        let beacon_proposer = compute_domain([0; 4], DEVNET_GENESIS_FORK_VERSION, B256::ZERO);
        assert!(verify_bid(&bid, &signature, beacon_proposer).is_err());
    }

    #[test]
    fn test_other_key_or_garbage_signature_fails() {
        let key = BuilderKey::from_seed(b"builder");
        let domain = builder_domain(DEVNET_GENESIS_FORK_VERSION);
        let bid = bid(&key);
        let stranger = BuilderKey::from_seed(b"stranger");
        assert!(matches!(
            verify_bid(&bid, &sign_bid(&stranger, &bid, domain), domain),
            Err(SignatureError::Invalid(_))
        ));
        assert!(matches!(
            verify_bid(&bid, &BlsSignature::repeat_byte(0x11), domain),
            Err(SignatureError::Encoding(_))
        ));
        let mut no_key = bid.clone();
        no_key.builder_pubkey = BlsPublicKey::ZERO;
        let signature = sign_bid(&key, &no_key, domain);
        assert!(matches!(
            verify_bid(&no_key, &signature, domain),
            Err(SignatureError::PublicKey(_))
        ));
    }

    #[test]
    fn test_keys_are_deterministic_and_checked() {
        let a = BuilderKey::from_seed(b"seed");
        assert_eq!(a.public_key(), BuilderKey::from_seed(b"seed").public_key());
        assert_ne!(a.public_key(), BuilderKey::from_seed(b"seed2").public_key());
        let again = BuilderKey::from_bytes(&a.to_bytes()).expect("a key's own bytes read back");
        assert_eq!(again.public_key(), a.public_key());
        assert!(BuilderKey::from_bytes(&[0; 32]).is_err());
        assert!(BuilderKey::from_bytes(&[0xff; 32]).is_err());
        assert!(!format!("{a:?}").contains(&format!("{:x?}", a.to_bytes())));
    }

    #[test]
    fn test_mainnet_builder_domain_matches_published_value() {
        // The builder domain every mainnet relay and mev-boost use.
        assert_eq!(
            builder_domain([0; 4]),
            b256!("0x00000001f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9")
        );
    }

    /// A real Goerli (genesis fork version `0x00001020`) Capella block submission, as shipped
    /// in alloy-rpc-types-beacon's `src/examples/relay_signed_bid_submission_capella.ssz`: our
    /// domain, signing root and verification accept the signature a production builder made.
    #[test]
    fn test_published_goerli_submission_verifies() {
        let bid = BidTrace {
            slot: 5_552_306,
            parent_hash: b256!(
                "0xbd3291854dc822b7ec585925cda0e18f06af28fa2886e15f52d52dd4b6f94ed6"
            ),
            block_hash: b256!("0x1bafdc454116b605005364976b134d761dd736cb4788d25c835783b46daeb121"),
            builder_pubkey: fixed_bytes!(
                "0xb67a5148a03229926e34b190af81a82a81c4df66831c98c03a139778418dd09a3b542ced0022620d19f35781ece6dc36"
            ),
            proposer_pubkey: fixed_bytes!(
                "0x8559727ee65c295279332198029c939557f4d2aba0751fc55f71d0733b8aa17cd0301232a7f21a895f81eacf55c97ec4"
            ),
            proposer_fee_recipient: address!("0x5cc0dde14e7256340cc820415a6022a7d1c93a35"),
            gas_limit: 30_000_000,
            gas_used: 25_875_661,
            value: U256::from(71_177_763_439_091_815u64),
        };
        let signature: BlsSignature = fixed_bytes!(
            "0xa2def54237bfeb1d9269365e853b5469f68b7f4ad51ca7877e406ca94bc8a94bba54c14024b2f9ed37d8690bb9fac52600b7ff52b96b843cd8529e9ecc2497a0ecd5db8372e2049156e0fa9334d5c1b0ef642f192675b586ecbe6fc381178f88"
        );
        let goerli = builder_domain([0x00, 0x00, 0x10, 0x20]);
        assert_eq!(
            goerli,
            b256!("0x00000001e4be9393b074ca1f3e4aabd585ca4bea101170ccfaf71b89ce5c5c38")
        );
        assert_eq!(
            bid_signing_root(&bid, goerli),
            b256!("0x959ebd77edbc98737de953f19f9ae3643cb3832191c90b9254498d1b5a9565b8")
        );
        assert_eq!(verify_bid(&bid, &signature, goerli), Ok(()));
        assert!(verify_bid(&bid, &signature, builder_domain([0; 4])).is_err());
    }

    #[test]
    fn test_registration_roundtrip() {
        let key = BuilderKey::from_seed(b"proposer");
        let domain = builder_domain(DEVNET_GENESIS_FORK_VERSION);
        let message = ValidatorRegistrationMessage {
            fee_recipient: Address::repeat_byte(4),
            gas_limit: 36_000_000,
            timestamp: 1,
            pubkey: key.public_key(),
        };
        let signature = sign_registration(&key, &message, domain);
        assert_eq!(verify_registration(&message, &signature, domain), Ok(()));
        let mut moved = message;
        moved.fee_recipient = Address::repeat_byte(5);
        assert!(verify_registration(&moved, &signature, domain).is_err());
    }
}
