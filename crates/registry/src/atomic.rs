//! Whole-file replacement that never leaves a half-written file behind.
//!
//! Key files and the registry file are read by running nodes at any moment, and a crash in the
//! middle of a write must not cost a member its keys or the network its member list. So a file
//! is written to a temporary file in the same directory (same filesystem), synced, and renamed
//! over the target; the directory is synced after, so the rename itself survives a crash.
//! The temporary file is created with its final permissions, so a secret is never readable by
//! others, not even for a moment.

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
};

/// Whether an existing file at the target may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clobber {
    /// Fail with `AlreadyExists` if the target exists (checked atomically by the rename).
    Refuse,
    /// Replace the target.
    Replace,
}

/// Writes `contents` to `path` atomically, creating it with permission bits `mode` (unix).
pub(crate) fn write(path: &Path, contents: &[u8], mode: u32, clobber: Clobber) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".cobuild-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    match clobber {
        Clobber::Refuse => temp.persist_noclobber(path).map_err(|e| e.error)?,
        Clobber::Replace => temp.persist(path).map_err(|e| e.error)?,
    };
    sync_dir(dir)
}

/// Makes a rename in `dir` durable (a no-op where directories cannot be opened).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, File::open);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_refuse_keeps_the_existing_file_and_replace_swaps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.toml");
        write(&path, b"one", 0o600, Clobber::Refuse).expect("first write");
        let err = write(&path, b"two", 0o600, Clobber::Refuse).expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        write(&path, b"three", 0o600, Clobber::Replace).expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"three");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.toml")]);
    }

    #[cfg(unix)]
    #[test]
    fn test_files_are_created_with_the_requested_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        write(&path, b"s", 0o600, Clobber::Refuse).expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
