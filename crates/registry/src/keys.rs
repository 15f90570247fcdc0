//! A member's own identity: the secret keys a node runs with, and the public parts the registry
//! lists for it.
//!
//! Three keys, three jobs:
//! - the **node key** (ed25519, commonware's type, so the transport takes it as is)
//!   authenticates the member's P2P links and signs the envelopes it originates;
//! - the **builder key** (BLS12-381) signs its bids to relays;
//! - the **coinbase key** (secp256k1) is the account its blocks pay to and pay refunds and the
//!   proposer from.
//!
//! They live together in one TOML key file, created with mode 0600 and never widened; a key
//! file that group or others can read is refused, as ssh refuses such keys, because whoever
//! reads it can act as the member. Secrets never appear in `Debug` output or in error messages
//! (a malformed key file is reported by field and line, never by value).
//!
//! ```text
//!   cobuild keys new ──▶ NodeKeys::generate ──▶ node.key (0600) ──▶ NodeKeys::read ──▶ node
//!                                                  │
//!                                   NodeKeys::public ──▶ registry add (Member)
//! ```

use std::{
    fmt,
    io::{self, ErrorKind},
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, B256, Bytes, hex};
use alloy_signer_local::PrivateKeySigner;
use cobuild_primitives::BuilderKey;
use commonware_codec::{DecodeFixed, EncodeFixed};
use commonware_cryptography::{Signer, ed25519};

use crate::{
    Member, MemberId,
    atomic::{self, Clobber},
};

/// Permission bits of a key file (unix): owner read and write only.
pub const KEY_FILE_MODE: u32 = 0o600;

/// A key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The operating system's randomness source failed.
    #[error("no randomness from the operating system: {0}")]
    Randomness(getrandom::Error),
    /// Reading or writing the file failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The file exists and replacing it was not asked for.
    #[error("key file {} already exists (refusing to overwrite keys)", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// Group or others may access the file, so the secrets may have leaked.
    #[error(
        "key file {} is accessible by group or others (mode {mode:04o}); run chmod 600 on it",
        path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a key file; the message names fields and lines, never values.
    #[error("key file {}: {reason}", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The secret keys of one member node. `Debug` shows only the public parts.
#[derive(Clone)]
pub struct NodeKeys {
    node: ed25519::PrivateKey,
    builder: BuilderKey,
    coinbase: PrivateKeySigner,
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public = self.public();
        f.debug_struct("NodeKeys")
            .field("node_key", &public.node_key)
            .field("bls_key", &public.bls_key)
            .field("coinbase", &public.coinbase)
            .finish_non_exhaustive()
    }
}

/// The public parts of a member's keys: what the registry lists and peers check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys {
    /// The ed25519 node public key.
    pub node_key: B256,
    /// The compressed BLS builder public key (48 bytes).
    pub bls_key: Bytes,
    /// The coinbase account's address.
    pub coinbase: Address,
}

impl PublicKeys {
    /// The registry entry of a member with these keys.
    pub fn member(&self, id: MemberId, address: String, attestation: Option<B256>) -> Member {
        Member {
            id,
            address,
            node_key: self.node_key,
            bls_key: self.bls_key.clone(),
            attestation,
        }
    }
}

impl NodeKeys {
    /// Fresh keys from the operating system's randomness.
    pub fn generate() -> Result<Self, KeyFileError> {
        let node = ed25519::PrivateKey::decode_fixed(random_bytes()?)
            .expect("every 32-byte string is an ed25519 secret seed");
        // EIP-2333 key generation turns 32 random bytes into a uniform BLS scalar.
        let builder = BuilderKey::from_seed(&random_bytes()?);
        // A random 32-byte string is a valid secp256k1 scalar except with probability ~2^-128.
        let coinbase = loop {
            if let Ok(signer) = PrivateKeySigner::from_bytes(&B256::from(random_bytes()?)) {
                break signer;
            }
        };
        Ok(Self {
            node,
            builder,
            coinbase,
        })
    }

    /// Keys from their parts (tests and devnets derive them from seeds).
    pub const fn from_parts(
        node: ed25519::PrivateKey,
        builder: BuilderKey,
        coinbase: PrivateKeySigner,
    ) -> Self {
        Self {
            node,
            builder,
            coinbase,
        }
    }

    /// The ed25519 node key: the transport's identity and the envelope signer.
    pub const fn node(&self) -> &ed25519::PrivateKey {
        &self.node
    }

    /// The BLS builder key that signs bids.
    pub const fn builder(&self) -> &BuilderKey {
        &self.builder
    }

    /// The coinbase account's key.
    pub const fn coinbase(&self) -> &PrivateKeySigner {
        &self.coinbase
    }

    /// The public parts, as the registry lists them.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            node_key: B256::from_slice(self.node.public_key().as_ref()),
            bls_key: Bytes::copy_from_slice(self.builder.public_key().as_slice()),
            coinbase: self.coinbase.address(),
        }
    }

    /// Writes a new key file with mode 0600; fails with [`KeyFileError::Exists`] if `path`
    /// exists. The file appears complete or not at all.
    pub fn write(&self, path: &Path) -> Result<(), KeyFileError> {
        self.write_with(path, Clobber::Refuse)
    }

    /// Writes the key file with mode 0600, replacing any file at `path` (its keys are lost).
    pub fn replace(&self, path: &Path) -> Result<(), KeyFileError> {
        self.write_with(path, Clobber::Replace)
    }

    fn write_with(&self, path: &Path, clobber: Clobber) -> Result<(), KeyFileError> {
        atomic::write(path, self.render().as_bytes(), KEY_FILE_MODE, clobber).map_err(|source| {
            if source.kind() == ErrorKind::AlreadyExists && clobber == Clobber::Refuse {
                KeyFileError::Exists {
                    path: path.to_owned(),
                }
            } else {
                KeyFileError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })
    }

    fn render(&self) -> String {
        let public = self.public();
        let node = self.node.encode_fixed::<32>();
        format!(
            "# cobuild node keys. SECRET: whoever reads this file can act as this member.\n\
             # node key (ed25519)   {}\n\
             # bls key              {}\n\
             # coinbase             {}\n\
             node_key = \"{}\"\n\
             builder_key = \"{}\"\n\
             coinbase_key = \"{}\"\n",
            public.node_key,
            public.bls_key,
            public.coinbase,
            hex::encode_prefixed(node),
            hex::encode_prefixed(self.builder.to_bytes()),
            hex::encode_prefixed(self.coinbase.to_bytes()),
        )
    }

    /// Reads a key file; on unix refuses one that group or others may access.
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let io_err = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The open file's own mode: no window between the check and the read.
            let mode = file.metadata().map_err(io_err)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let text = io::read_to_string(file).map_err(io_err)?;
        Self::parse(&text).map_err(|reason| KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses a key file's text; errors name fields and lines, never values.
    fn parse(text: &str) -> Result<Self, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| match e.span() {
            Some(span) => format!("not valid TOML (line {})", line_of(text, span.start)),
            None => "not valid TOML".to_owned(),
        })?;
        if let Some(unknown) = table
            .keys()
            .find(|k| !["node_key", "builder_key", "coinbase_key"].contains(&k.as_str()))
        {
            return Err(format!("unknown field `{unknown}`"));
        }
        let field = |name: &str| -> Result<[u8; 32], String> {
            let value = table
                .get(name)
                .ok_or_else(|| format!("missing field `{name}`"))?
                .as_str()
                .ok_or_else(|| format!("`{name}` must be a hex string"))?;
            let bytes = hex::decode(value).map_err(|_| format!("`{name}` is not valid hex"))?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| format!("`{name}` must be 32 bytes, got {}", bytes.len()))
        };
        let node = ed25519::PrivateKey::decode_fixed(field("node_key")?)
            .map_err(|_| "`node_key` is not an ed25519 secret key".to_owned())?;
        let builder = BuilderKey::from_bytes(&field("builder_key")?)
            .map_err(|_| "`builder_key` is not a BLS secret key (zero or above the group order)")?;
        let coinbase = PrivateKeySigner::from_bytes(&B256::from(field("coinbase_key")?))
            .map_err(|_| "`coinbase_key` is not a secp256k1 secret key".to_owned())?;
        Ok(Self {
            node,
            builder,
            coinbase,
        })
    }
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn random_bytes() -> Result<[u8; 32], KeyFileError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(KeyFileError::Randomness)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::Verifier;

    use super::*;

    fn secrets(keys: &NodeKeys) -> [String; 3] {
        [
            hex::encode(keys.node.encode_fixed::<32>()),
            hex::encode(keys.builder.to_bytes()),
            hex::encode(keys.coinbase.to_bytes()),
        ]
    }

    #[test]
    fn test_keys_roundtrip_through_the_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        let keys = NodeKeys::generate().expect("keys");
        keys.write(&path).expect("write");
        let back = NodeKeys::read(&path).expect("read");
        assert_eq!(back.public(), keys.public());
        assert_eq!(secrets(&back), secrets(&keys));
        // The node key read back signs what the public key verifies.
        let signature = back.node().sign(b"cobuild", b"hello");
        assert!(
            keys.node()
                .public_key()
                .verify(b"cobuild", b"hello", &signature)
        );
    }

    #[test]
    fn test_generated_keys_differ() {
        let a = NodeKeys::generate().expect("keys").public();
        let b = NodeKeys::generate().expect("keys").public();
        assert_ne!(a.node_key, b.node_key);
        assert_ne!(a.bls_key, b.bls_key);
        assert_ne!(a.coinbase, b.coinbase);
    }

    #[test]
    fn test_debug_shows_public_parts_and_hides_secrets() {
        let keys = NodeKeys::generate().expect("keys");
        let shown = format!("{keys:?} {keys:#?}").to_lowercase();
        for secret in secrets(&keys) {
            assert!(!shown.contains(&secret), "secret in {shown}");
        }
        let public = keys.public();
        assert!(shown.contains(&hex::encode(public.node_key)), "{shown}");
        assert!(shown.contains(&hex::encode(&public.bls_key)), "{shown}");
        assert!(
            shown.contains(&hex::encode(public.coinbase)),
            "{shown} lacks the coinbase"
        );
    }

    #[test]
    fn test_write_refuses_an_existing_file_unless_replacing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        let first = NodeKeys::generate().expect("keys");
        first.write(&path).expect("write");
        let second = NodeKeys::generate().expect("keys");
        let err = second.write(&path).expect_err("exists");
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            NodeKeys::read(&path).expect("read").public(),
            first.public()
        );
        second.replace(&path).expect("replace");
        assert_eq!(
            NodeKeys::read(&path).expect("read").public(),
            second.public()
        );
    }

    #[cfg(unix)]
    #[test]
    fn test_key_file_is_0600_and_a_0644_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        let keys = NodeKeys::generate().expect("keys");
        keys.write(&path).expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Replacing a widened file does not keep the wide mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = NodeKeys::read(&path).expect_err("world-readable");
        assert!(
            matches!(err, KeyFileError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(
            NodeKeys::read(&path),
            Err(KeyFileError::Permissions { mode: 0o640, .. })
        ));
        keys.replace(&path).expect("replace");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        NodeKeys::read(&path).expect("0600 again");
    }

    #[test]
    fn test_malformed_key_files_are_named_without_their_values() {
        let keys = NodeKeys::generate().expect("keys");
        let good = keys.render();
        let [node, builder, _] = secrets(&keys);
        let cases = [
            (
                good.replace(&node, &node[..62]),
                "`node_key` must be 32 bytes, got 31",
            ),
            (
                good.replace(&builder, &"zz".repeat(32)),
                "`builder_key` is not valid hex",
            ),
            (
                good.replace(&builder, &"ff".repeat(32)),
                "`builder_key` is not a BLS secret key",
            ),
            (
                good.lines()
                    .filter(|l| !l.starts_with("coinbase_key"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                "missing field `coinbase_key`",
            ),
            (format!("{good}extra = 1\n"), "unknown field `extra`"),
            (
                good.replace(&format!("\"0x{node}\""), &format!("0x{node}")),
                "line 5",
            ),
        ];
        for (text, expected) in cases {
            let err = NodeKeys::parse(&text).expect_err(expected);
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
            for secret in secrets(&keys) {
                assert!(!err.contains(&secret[..16]), "{err:?} shows a secret");
            }
        }
    }

    #[test]
    fn test_public_parts_make_a_member() {
        let keys = NodeKeys::generate().expect("keys");
        let public = keys.public();
        assert_eq!(public.bls_key.len(), 48);
        let member = public.member(7, "127.0.0.1:9000".into(), None);
        assert_eq!(member.node_key, public.node_key);
        assert_eq!(member.bls_key, public.bls_key);
        assert_eq!(member.id, 7);
    }

    #[test]
    fn test_node_public_key_decodes_to_commonwares_type() {
        // The transport takes the key as is: its public key is the registry's node key.
        let keys = NodeKeys::generate().expect("keys");
        let decoded = ed25519::PublicKey::decode_fixed(keys.public().node_key.0).expect("point");
        assert_eq!(keys.node().public_key(), decoded);
    }
}
