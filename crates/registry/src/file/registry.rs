//! [`FileRegistry`]: the member list kept in a TOML file, followed while the node runs.
//!
//! `members()` is polled by the node; a `stat` per call tells whether the file changed (its
//! modification time, length or inode), and only then is it read and parsed again. An edit
//! that does not parse or validate is logged once and ignored: the node keeps the last good
//! list rather than dropping every peer because of a typo. `add`, `remove` and `update`
//! re-read the file, change it and replace it atomically, so readers see the old list or the
//! new one, never half of it.
//!
//! Writers in one process are serialized; two processes editing the same file at once can lose
//! one of the edits (the last rename wins), so keep to one writer at a time.

use std::{
    fs::{self, File, Metadata},
    io,
    path::{Path, PathBuf},
    time::SystemTime,
};

use parking_lot::Mutex;

use super::format;
use crate::{
    Member, MemberId, Registry, RegistryError,
    atomic::{self, Clobber},
    validate_member,
};

/// Permission bits of a registry file this crate creates (unix): public data, owner writes.
const NEW_FILE_MODE: u32 = 0o644;

/// A member list kept in a TOML file (see the crate docs for the layout).
#[derive(Debug)]
pub struct FileRegistry {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The last good list and the file version it came from.
    members: Vec<Member>,
    stamp: Stamp,
    /// The version of the file that was refused, and why (logged once per version).
    rejected: Option<(Stamp, String)>,
    /// Why the file could not even be looked at (logged once until it can again).
    unreadable: Option<String>,
}

/// What tells one version of the file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(metadata: &Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        }
    }
}

impl FileRegistry {
    /// The members a registry file's `text` lists, checked as [`FileRegistry::open`] checks
    /// them (sorted by id).
    pub fn parse(text: &str) -> Result<Vec<Member>, RegistryError> {
        format::parse(text)
    }

    /// Opens an existing registry file; fails if it is missing, unreadable or invalid.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let path = path.into();
        let (members, stamp) = load(&path)?;
        Ok(Self {
            path,
            state: Mutex::new(State {
                members,
                stamp,
                rejected: None,
                unreadable: None,
            }),
        })
    }

    /// Opens the registry file, first creating it with no members if it does not exist.
    pub fn open_or_create(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let path = path.into();
        let empty = format::render(&[]);
        match atomic::write(&path, empty.as_bytes(), NEW_FILE_MODE, Clobber::Refuse) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(source_error(&path, &e)),
        }
        Self::open(path)
    }

    /// The file this registry reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file's current content is not what `members` serves (an edit that does not
    /// parse or validate, or a file that cannot be read), if it is not.
    pub fn stale_reason(&self) -> Option<String> {
        self.refresh();
        let state = self.state.lock();
        state
            .unreadable
            .clone()
            .or_else(|| state.rejected.as_ref().map(|(_, why)| why.clone()))
    }

    /// Adds `member`; fails if its id, node key or BLS key is already registered.
    pub fn add(&self, member: Member) -> Result<(), RegistryError> {
        validate_member(&member)?;
        self.modify(|members| {
            if let Some(other) = members.iter().find(|m| m.id == member.id) {
                return Err(RegistryError::Invalid(format!(
                    "member id {} is already taken (address {})",
                    other.id, other.address
                )));
            }
            if let Some(other) = members.iter().find(|m| m.node_key == member.node_key) {
                return Err(RegistryError::Invalid(format!(
                    "node_key {} is already registered as member {}",
                    member.node_key, other.id
                )));
            }
            if let Some(other) = members.iter().find(|m| m.bls_key == member.bls_key) {
                return Err(RegistryError::Invalid(format!(
                    "bls_key {} is already registered as member {}",
                    member.bls_key, other.id
                )));
            }
            members.push(member);
            Ok(())
        })
    }

    /// Removes the member with `id`, returning it.
    pub fn remove(&self, id: MemberId) -> Result<Member, RegistryError> {
        let mut removed = None;
        self.modify(|members| {
            let at = members
                .iter()
                .position(|m| m.id == id)
                .ok_or(RegistryError::UnknownMember(id))?;
            removed = Some(members.remove(at));
            Ok(())
        })?;
        Ok(removed.expect("modify succeeded, so the closure removed the member"))
    }

    /// Replaces the member with `member.id` (new address, keys or attestation).
    pub fn update(&self, member: Member) -> Result<(), RegistryError> {
        validate_member(&member)?;
        self.modify(|members| {
            let slot = members
                .iter_mut()
                .find(|m| m.id == member.id)
                .ok_or(RegistryError::UnknownMember(member.id))?;
            *slot = member;
            Ok(())
        })
    }

    /// Re-reads the file (refusing to build on an invalid one), applies `change`, validates the
    /// result and replaces the file atomically.
    fn modify(
        &self,
        change: impl FnOnce(&mut Vec<Member>) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut state = self.state.lock();
        let (mut members, _) = load(&self.path)?;
        change(&mut members)?;
        let text = format::render(&members);
        // What we write must read back: the same checks as every reader.
        let members = format::parse(&text)?;
        let mode = mode_of(&self.path).unwrap_or(NEW_FILE_MODE);
        atomic::write(&self.path, text.as_bytes(), mode, Clobber::Replace)
            .map_err(|e| source_error(&self.path, &e))?;
        let stamp = fs::metadata(&self.path)
            .map(|m| Stamp::of(&m))
            .map_err(|e| source_error(&self.path, &e))?;
        *state = State {
            members,
            stamp,
            rejected: None,
            unreadable: None,
        };
        Ok(())
    }

    /// Reloads the list if the file changed; keeps the last good one on a bad edit.
    fn refresh(&self) {
        let mut state = self.state.lock();
        let stamp = match fs::metadata(&self.path) {
            Ok(metadata) => Stamp::of(&metadata),
            Err(e) => {
                let why = source_error(&self.path, &e).to_string();
                if state.unreadable.as_ref() != Some(&why) {
                    tracing::warn!(error = %why, members = state.members.len(),
                        "registry.file.unreadable_keeping_last_good");
                    state.unreadable = Some(why);
                }
                return;
            }
        };
        state.unreadable = None;
        if stamp == state.stamp || state.rejected.as_ref().is_some_and(|(s, _)| *s == stamp) {
            return;
        }
        match load(&self.path) {
            Ok((members, stamp)) => {
                tracing::info!(
                    path = %self.path.display(),
                    before = state.members.len(),
                    after = members.len(),
                    "registry.file.reloaded"
                );
                state.members = members;
                state.stamp = stamp;
                state.rejected = None;
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(
                    path = %self.path.display(),
                    error = %why,
                    members = state.members.len(),
                    "registry.file.bad_edit_keeping_last_good"
                );
                state.rejected = Some((stamp, why));
            }
        }
    }
}

impl Registry for FileRegistry {
    /// The file's members, re-read if it changed since the last call; after an edit that does
    /// not parse or validate, the last good list (see [`FileRegistry::stale_reason`]).
    fn members(&self) -> Result<Vec<Member>, RegistryError> {
        self.refresh();
        Ok(self.state.lock().members.clone())
    }
}

/// Reads and parses the file, with the stamp of the version read.
fn load(path: &Path) -> Result<(Vec<Member>, Stamp), RegistryError> {
    let file = File::open(path).map_err(|e| source_error(path, &e))?;
    // The open file's own metadata: the stamp matches the bytes read even if the file is
    // replaced meanwhile.
    let stamp = file
        .metadata()
        .map(|m| Stamp::of(&m))
        .map_err(|e| source_error(path, &e))?;
    let text = io::read_to_string(file).map_err(|e| source_error(path, &e))?;
    let members = format::parse(&text).map_err(|e| match e {
        RegistryError::Invalid(why) => RegistryError::Invalid(format!("{}: {why}", path.display())),
        other => other,
    })?;
    Ok((members, stamp))
}

fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn source_error(path: &Path, e: &io::Error) -> RegistryError {
    RegistryError::Source(format!("file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;

    use super::*;
    use crate::validate::tests::member;

    fn ids(registry: &FileRegistry) -> Vec<MemberId> {
        registry
            .members()
            .expect("members")
            .iter()
            .map(|m| m.id)
            .collect()
    }

    /// Replaces the file the way an editor might, making sure its stamp changes.
    fn edit(path: &Path, text: &str) {
        fs::write(path, text).expect("write");
        // Some filesystems keep coarse timestamps: move mtime explicitly.
        let file = File::options().write(true).open(path).expect("open");
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        file.set_modified(later).expect("set mtime");
    }

    fn fresh() -> (tempfile::TempDir, PathBuf, FileRegistry) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("members.toml");
        let registry = FileRegistry::open_or_create(&path).expect("create");
        (dir, path, registry)
    }

    #[test]
    fn test_open_fails_on_missing_or_invalid_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("members.toml");
        let err = FileRegistry::open(&path).expect_err("missing");
        assert!(matches!(err, RegistryError::Source(_)), "{err}");
        assert!(err.to_string().contains("members.toml"), "{err}");
        fs::write(&path, "[[members]]\nid = 1\n").expect("write");
        let err = FileRegistry::open(&path).expect_err("invalid");
        assert!(matches!(err, RegistryError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("missing field"), "{err}");
    }

    #[test]
    fn test_open_or_create_keeps_an_existing_file() {
        let (_dir, path, registry) = fresh();
        registry.add(member(4, 4)).expect("add");
        let again = FileRegistry::open_or_create(&path).expect("open");
        assert_eq!(ids(&again), vec![4]);
    }

    #[test]
    fn test_add_remove_update_rewrite_the_file() {
        let (dir, path, registry) = fresh();
        registry.add(member(2, 2)).expect("add 2");
        registry.add(member(0, 1)).expect("add 0");
        assert_eq!(ids(&registry), vec![0, 2]);
        // Another reader of the same file sees the same list.
        assert_eq!(ids(&FileRegistry::open(&path).expect("open")), vec![0, 2]);

        let mut moved = member(2, 2);
        moved.address = "10.1.2.3:7000".into();
        moved.attestation = Some(B256::repeat_byte(7));
        registry.update(moved.clone()).expect("update");
        let reread = FileRegistry::open(&path).expect("open");
        assert_eq!(reread.members().expect("members")[1], moved);

        let removed = registry.remove(0).expect("remove");
        assert_eq!(removed.id, 0);
        assert_eq!(ids(&registry), vec![2]);
        assert_eq!(ids(&FileRegistry::open(&path).expect("open")), vec![2]);

        assert!(matches!(
            registry.remove(0),
            Err(RegistryError::UnknownMember(0))
        ));
        assert!(matches!(
            registry.update(member(9, 9)),
            Err(RegistryError::UnknownMember(9))
        ));
        // Only the registry file is in the directory: no temporary files left.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("members.toml")]);
    }

    #[test]
    fn test_add_refuses_taken_ids_and_keys() {
        let (_dir, path, registry) = fresh();
        registry.add(member(0, 1)).expect("add");
        let err = registry.add(member(0, 2)).expect_err("same id").to_string();
        assert!(err.contains("member id 0 is already taken"), "{err}");
        let err = registry
            .add(member(1, 1))
            .expect_err("same keys")
            .to_string();
        assert!(err.contains("is already registered as member 0"), "{err}");
        let mut same_bls = member(1, 2);
        same_bls.bls_key = member(0, 1).bls_key;
        let err = registry.add(same_bls).expect_err("same bls").to_string();
        assert!(err.contains("bls_key"), "{err}");
        let mut bad = member(1, 2);
        bad.address = "nowhere".into();
        let err = registry.add(bad).expect_err("bad address").to_string();
        assert!(err.contains("member 1: address"), "{err}");
        assert_eq!(ids(&FileRegistry::open(&path).expect("open")), vec![0]);
    }

    #[test]
    fn test_update_refuses_a_key_another_member_has() {
        let (_dir, _path, registry) = fresh();
        registry.add(member(0, 1)).expect("add");
        registry.add(member(1, 2)).expect("add");
        let mut clash = member(1, 2);
        clash.node_key = member(0, 1).node_key;
        let err = registry.update(clash).expect_err("clash").to_string();
        assert!(err.contains("same node_key"), "{err}");
    }

    #[test]
    fn test_members_follow_edits_of_the_file() {
        let (_dir, path, registry) = fresh();
        assert_eq!(ids(&registry), Vec::<MemberId>::new());
        edit(&path, &format::render(&[member(0, 1), member(1, 2)]));
        assert_eq!(ids(&registry), vec![0, 1]);
        edit(&path, &format::render(&[member(1, 2)]));
        assert_eq!(ids(&registry), vec![1]);
        assert_eq!(registry.stale_reason(), None);
    }

    #[test]
    fn test_a_bad_edit_keeps_the_last_good_list() {
        let (_dir, path, registry) = fresh();
        edit(&path, &format::render(&[member(0, 1), member(1, 2)]));
        assert_eq!(ids(&registry), vec![0, 1]);

        let duplicate = format::render(&[member(0, 1), member(1, 2)]).replace("id = 1", "id = 0");
        edit(&path, &duplicate);
        assert_eq!(ids(&registry), vec![0, 1], "last good list served");
        assert_eq!(ids(&registry), vec![0, 1], "and again, without re-parsing");
        let why = registry.stale_reason().expect("stale");
        assert!(why.contains("duplicate member id 0"), "{why}");
        // Writers refuse to build on a broken file rather than silently dropping the edit.
        assert!(registry.add(member(5, 5)).is_err());

        edit(&path, "not toml at all [");
        assert_eq!(ids(&registry), vec![0, 1]);

        fs::remove_file(&path).expect("rm");
        assert_eq!(ids(&registry), vec![0, 1]);
        assert!(
            registry
                .stale_reason()
                .expect("stale")
                .contains("members.toml")
        );

        edit(&path, &format::render(&[member(2, 3)]));
        assert_eq!(ids(&registry), vec![2], "a good edit is picked up again");
        assert_eq!(registry.stale_reason(), None);
    }

    #[cfg(unix)]
    #[test]
    fn test_rewrites_keep_the_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path, registry) = fresh();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        registry.add(member(0, 1)).expect("add");
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
