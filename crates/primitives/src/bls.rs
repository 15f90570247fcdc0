//! A builder's BLS key: what the registry stores for a member and the relay client signs bids
//! with. Kept here, below both, so reading a key file needs no builder-API code.
//!
//! Keys are BLS12-381 min-pk (48-byte public keys, 96-byte signatures) with the proof-of-
//! possession cipher suite the consensus specs use.

use alloy_primitives::{B256, FixedBytes, keccak256};
use blst::{BLST_ERROR, min_pk::SecretKey};

/// A compressed BLS public key (the same type as `alloy_rpc_types_beacon::BlsPublicKey`).
pub type BlsPublicKey = FixedBytes<48>;

/// A compressed BLS signature (the same type as `alloy_rpc_types_beacon::BlsSignature`).
pub type BlsSignature = FixedBytes<96>;

/// The Ethereum BLS signature suite: BLS12-381 G2 signatures, SHA-256 hash-to-curve, proof of
/// possession.
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A secret key could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid BLS secret key: {0:?}")]
pub struct KeyError(pub BLST_ERROR);

/// A BLS secret key: a builder's, or the devnet proposer's. Its `Debug` shows only the public
/// key.
#[derive(Clone)]
pub struct BuilderKey {
    secret: SecretKey,
    public: BlsPublicKey,
}

impl std::fmt::Debug for BuilderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuilderKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl BuilderKey {
    /// Reads a big-endian secret scalar; fails if it is zero or not below the group order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SecretKey::from_bytes(bytes)
            .map(Self::from_secret)
            .map_err(KeyError)
    }

    /// Derives a key deterministically from `seed` with the EIP-2333 key generation (blst
    /// `key_gen`), using `keccak256(seed)` as input keying material so any seed length works.
    /// For devnets and tests: a guessable seed gives a guessable key.
    pub fn from_seed(seed: &[u8]) -> Self {
        let ikm = keccak256(seed);
        let secret = SecretKey::key_gen(ikm.as_slice(), &[])
            .expect("key_gen accepts any 32 bytes of input keying material");
        Self::from_secret(secret)
    }

    fn from_secret(secret: SecretKey) -> Self {
        let public = BlsPublicKey::from(secret.sk_to_pk().to_bytes());
        Self { secret, public }
    }

    /// The compressed public key.
    pub const fn public_key(&self) -> BlsPublicKey {
        self.public
    }

    /// The big-endian secret scalar, for storing the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// Signs a 32-byte signing root (the consensus specs' `compute_signing_root`) under
    /// [`BLS_DST`].
    pub fn sign_root(&self, root: B256) -> BlsSignature {
        BlsSignature::from(self.secret.sign(root.as_slice(), BLS_DST, &[]).to_bytes())
    }
}
