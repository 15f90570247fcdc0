//! The last committed head, recorded in a small file beside the store after every commit.
//!
//! redb recovers from a torn or corrupted write by going back to its last good commit, and a
//! store file can be lost or replaced by hand; either way the chain would quietly restart from
//! an older head. The mark is written after the store's commit is durable, so it is never ahead
//! of an intact store: a store whose head is behind the mark, or holds another block at the
//! mark's height, was rolled back.

use std::path::{Path, PathBuf};

use alloy_primitives::B256;

/// A committed head as the mark records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Mark {
    /// Its number.
    pub(crate) number: u64,
    /// Its hash.
    pub(crate) hash: B256,
}

/// The mark file of one store.
#[derive(Debug, Clone)]
pub(crate) struct HeadMark {
    path: PathBuf,
}

impl HeadMark {
    /// The mark of the store at `store` (`chain.redb` → `chain.redb.head`).
    pub(crate) fn beside(store: &Path) -> Self {
        let mut path = store.as_os_str().to_owned();
        path.push(".head");
        Self { path: path.into() }
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded head; `Ok(None)` when there is no mark yet, an error text when the file
    /// cannot be read or parsed.
    pub(crate) fn read(&self) -> Result<Option<Mark>, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
        }
    }

    /// Records `mark`, replacing the old one in one rename (a crash leaves one or the other).
    pub(crate) fn write(&self, mark: Mark) -> std::io::Result<()> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let json = serde_json::to_vec(&mark).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_mark_reads_back_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mark = HeadMark::beside(&dir.path().join("chain.redb"));
        assert_eq!(mark.path(), dir.path().join("chain.redb.head"));
        assert_eq!(mark.read(), Ok(None));
        let head = Mark {
            number: 7,
            hash: B256::repeat_byte(7),
        };
        mark.write(head).expect("write");
        assert_eq!(mark.read(), Ok(Some(head)));
        std::fs::write(mark.path(), b"{").expect("write");
        assert!(mark.read().is_err());
    }
}
