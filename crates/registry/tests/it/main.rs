//! Integration: key files and the file registry through the public API only, as the CLI and a
//! running node use them.

mod contract;

use std::{path::Path, sync::Arc, time::Duration};

use cobuild_registry::{FileRegistry, KeyFileError, Member, NodeKeys, Registry, RegistryError};

fn new_member(dir: &Path, name: &str, id: u32) -> (NodeKeys, Member) {
    let path = dir.join(name);
    NodeKeys::generate()
        .expect("keys")
        .write(&path)
        .expect("write");
    let keys = NodeKeys::read(&path).expect("read back");
    let member = keys
        .public()
        .member(id, format!("127.0.0.1:{}", 7000 + id), None);
    (keys, member)
}

/// What a running node would see: the registry behind the trait, polled.
fn poll(registry: &dyn Registry) -> Vec<u32> {
    registry
        .members()
        .expect("members")
        .iter()
        .map(|m| m.id)
        .collect()
}

#[test]
fn test_a_running_node_follows_members_added_and_removed_by_another_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("members.toml");
    let writer = FileRegistry::open_or_create(&file).expect("create");
    let node: Arc<dyn Registry> = Arc::new(FileRegistry::open(&file).expect("open"));
    assert!(poll(node.as_ref()).is_empty());

    let (_, a) = new_member(dir.path(), "a.key", 0);
    let (_, b) = new_member(dir.path(), "b.key", 1);
    writer.add(a.clone()).expect("add a");
    writer.add(b.clone()).expect("add b");
    assert_eq!(node.members().expect("members"), vec![a.clone(), b]);

    // Rewrites go through rename, so every poll sees a whole file.
    writer.remove(1).expect("remove b");
    assert_eq!(node.members().expect("members"), vec![a]);
}

#[test]
fn test_the_same_key_file_cannot_be_added_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = FileRegistry::open_or_create(dir.path().join("members.toml")).expect("create");
    let (keys, member) = new_member(dir.path(), "a.key", 0);
    registry.add(member).expect("first add");
    let again = keys.public().member(1, "127.0.0.1:7001".into(), None);
    let err = registry.add(again).expect_err("same keys");
    assert!(matches!(err, RegistryError::Invalid(_)), "{err}");
    assert!(
        err.to_string().contains("already registered as member 0"),
        "{err}"
    );
}

#[test]
fn test_hand_edits_are_followed_and_bad_ones_do_not_drop_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("members.toml");
    let registry = FileRegistry::open_or_create(&file).expect("create");
    let (_, a) = new_member(dir.path(), "a.key", 0);
    registry.add(a).expect("add");
    let good = std::fs::read_to_string(&file).expect("read");

    // An operator's typo: the node keeps its members.
    std::fs::write(&file, good.replace("node_key", "node_kye")).expect("edit");
    bump_mtime(&file);
    assert_eq!(poll(&registry), vec![0]);
    let why = registry.stale_reason().expect("stale");
    assert!(why.contains("unknown field `node_kye`"), "{why}");

    // The fix, with a second member appended by hand.
    let (_, b) = new_member(dir.path(), "b.key", 3);
    let appended = format!(
        "{good}\n[[members]]\nid = 3\naddress = \"{}\"\nnode_key = \"{}\"\nbls_key = \"{}\"\n",
        b.address, b.node_key, b.bls_key
    );
    std::fs::write(&file, appended).expect("edit");
    bump_mtime(&file);
    assert_eq!(poll(&registry), vec![0, 3]);
    assert_eq!(registry.stale_reason(), None);
}

#[cfg(unix)]
#[test]
fn test_key_files_are_private_and_shared_ones_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.key");
    NodeKeys::generate()
        .expect("keys")
        .write(&path)
        .expect("write");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = NodeKeys::read(&path).expect_err("shared");
    assert!(matches!(err, KeyFileError::Permissions { .. }), "{err}");
    let err = NodeKeys::generate()
        .expect("keys")
        .write(&path)
        .expect_err("exists");
    assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
}

/// Moves the file's mtime forward so the change shows on coarse-timestamp filesystems too.
fn bump_mtime(path: &Path) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
        .expect("mtime");
}
