use super::*;
use crate::mounts::create_mount_point;
use std::os::unix::fs::symlink;

/// A root inside a temp dir, and a "host" directory beside it that must never be touched.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    let host = dir.path().join("host");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(host.join("emptydir")).unwrap();
    std::fs::create_dir_all(host.join("full")).unwrap();
    std::fs::write(host.join("full/keep"), b"precious").unwrap();
    std::fs::write(host.join("file"), b"precious").unwrap();
    std::fs::write(host.join("emptyfile"), b"").unwrap();
    Fixture {
        _dir: dir,
        root,
        host,
    }
}

fn remove(f: &Fixture, made: &[Created]) -> Vec<Warning> {
    remove_created_under(&f.root, made)
}

#[test]
fn what_create_made_is_removed_when_untouched() {
    let f = fixture();
    let mut made = create_mount_point(&f.root, &f.root.join("a/b"), false).unwrap();
    made.extend(create_mount_point(&f.root, &f.root.join("etc/hosts"), true).unwrap());
    symlink("/proc/self/fd", f.root.join("a/fd")).unwrap();
    made.push(Created::observe(&f.root.join("a/fd")).unwrap());
    assert_eq!(made.len(), 4);
    assert!(made.iter().all(|m| m.identity.is_some()));
    assert_eq!(remove(&f, &made), vec![]);
    assert!(!f.root.join("a").exists() && !f.root.join("etc/hosts").exists());
    assert!(f.root.join("etc").is_dir());
    // A second delete finds nothing and says nothing.
    assert_eq!(remove(&f, &made), vec![]);
}

#[test]
fn a_mount_point_replaced_by_a_symlink_to_the_host_is_left() {
    let f = fixture();
    let dir = create_mount_point(&f.root, &f.root.join("mnt"), false).unwrap();
    let file = create_mount_point(&f.root, &f.root.join("etc/m"), true).unwrap();
    let empty = create_mount_point(&f.root, &f.root.join("e"), false).unwrap();
    let efile = create_mount_point(&f.root, &f.root.join("ef"), true).unwrap();
    // What a process inside does: rename the mount point away, plant a link to the host.
    std::fs::rename(f.root.join("mnt"), f.root.join("mnt.old")).unwrap();
    symlink(f.host.join("full"), f.root.join("mnt")).unwrap();
    std::fs::rename(f.root.join("etc/m"), f.root.join("etc/m.old")).unwrap();
    symlink(f.host.join("file"), f.root.join("etc/m")).unwrap();
    std::fs::remove_dir(f.root.join("e")).unwrap();
    symlink(f.host.join("emptydir"), f.root.join("e")).unwrap();
    std::fs::remove_file(f.root.join("ef")).unwrap();
    symlink(f.host.join("emptyfile"), f.root.join("ef")).unwrap();
    let all: Vec<Created> = [dir, file, empty, efile].concat();
    let w = remove(&f, &all);
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(w.iter().all(|w| w.reason.contains("no longer")), "{w:?}");
    assert_eq!(
        std::fs::read(f.host.join("full/keep")).unwrap(),
        b"precious"
    );
    assert_eq!(std::fs::read(f.host.join("file")).unwrap(), b"precious");
    assert!(f.host.join("emptydir").is_dir() && f.host.join("emptyfile").is_file());
    // The planted links are the container's; they stay too.
    assert!(f.root.join("mnt").is_symlink());
}

#[test]
fn a_parent_replaced_by_a_symlink_is_not_followed() {
    let f = fixture();
    let made = create_mount_point(&f.root, &f.root.join("p/q"), false).unwrap();
    std::fs::create_dir(f.host.join("full/q")).unwrap();
    std::fs::rename(f.root.join("p"), f.root.join("p.old")).unwrap();
    symlink(f.host.join("full"), f.root.join("p")).unwrap();
    let w = remove(&f, &made);
    assert!(
        f.host.join("full/q").is_dir(),
        "followed a planted parent link"
    );
    assert!(
        w.iter()
            .any(|w| w.reason.contains("parent directory was replaced")),
        "{w:?}"
    );
}

#[test]
fn changed_contents_and_other_inodes_are_left() {
    let f = fixture();
    let file = create_mount_point(&f.root, &f.root.join("etc/resolv.conf"), true).unwrap();
    let dir = create_mount_point(&f.root, &f.root.join("d"), false).unwrap();
    let swapped = create_mount_point(&f.root, &f.root.join("s"), false).unwrap();
    std::fs::write(f.root.join("etc/resolv.conf"), b"nameserver 1.1.1.1\n").unwrap();
    std::fs::write(f.root.join("d/data"), b"x").unwrap();
    // The replacement is made while the original exists, so it cannot reuse its inode.
    std::fs::create_dir(f.root.join("s.tmp")).unwrap();
    std::fs::remove_dir(f.root.join("s")).unwrap();
    std::fs::rename(f.root.join("s.tmp"), f.root.join("s")).unwrap();
    let w = remove(&f, &[file, dir, swapped].concat());
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w.iter().any(|w| w.reason.contains("holds 19 bytes")),
        "{w:?}"
    );
    assert!(w.iter().any(|w| w.reason.contains("not empty")), "{w:?}");
    assert!(
        w.iter().any(|w| w.reason.contains("another inode")),
        "{w:?}"
    );
    assert!(f.root.join("etc/resolv.conf").is_file() && f.root.join("d/data").is_file());
}

#[test]
fn records_without_identity_only_remove_empty_directories() {
    let f = fixture();
    std::fs::create_dir(f.root.join("olddir")).unwrap();
    std::fs::write(f.root.join("oldfile"), b"").unwrap();
    let made = vec![
        Created::from(f.root.join("olddir")),
        Created::from(f.root.join("oldfile")),
        Created::from(f.host.join("emptydir")),
    ];
    let w = remove(&f, &made);
    assert!(!f.root.join("olddir").exists());
    assert!(f.root.join("oldfile").exists());
    assert!(
        f.host.join("emptydir").is_dir(),
        "removed a path outside the root"
    );
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().any(|w| w.reason.contains("not under")), "{w:?}");
}

#[test]
fn warnings_quote_hostile_names() {
    let w = warn(Path::new("/r/\u{202e}evil\nname"), "x").to_string();
    assert!(!w.contains('\u{202e}') && !w.contains('\n'), "{w}");
}

/// Records without identity (an intent, an old state file) are only as safe as the walk:
/// a parent replaced by a link to the host must stop it.
#[test]
fn records_without_identity_are_not_reached_through_planted_links() {
    let f = fixture();
    std::fs::create_dir_all(f.host.join("emptydir/x")).unwrap();
    std::fs::write(f.host.join("emptyfile2"), b"").unwrap();
    symlink(f.host.join("emptydir"), f.root.join("p")).unwrap();
    symlink(&f.host, f.root.join("h")).unwrap();
    let made = vec![
        Created::intent(&f.root.join("p/x")),
        Created::from(f.root.join("p/x")),
        Created::intent(&f.root.join("h/emptyfile2")),
    ];
    let w = remove(&f, &made);
    assert!(
        f.host.join("emptydir/x").is_dir(),
        "followed a planted link"
    );
    assert!(
        f.host.join("emptyfile2").is_file(),
        "followed a planted link"
    );
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().all(|w| w.reason.contains("replaced")), "{w:?}");
}

#[test]
fn an_intent_removes_what_create_was_about_to_make() {
    let f = fixture();
    std::fs::create_dir_all(f.root.join("i/d")).unwrap();
    std::fs::write(f.root.join("i/file"), b"").unwrap();
    symlink("/proc/self/fd", f.root.join("i/fd")).unwrap();
    std::fs::write(f.root.join("i/full"), b"data").unwrap();
    let made: Vec<Created> = ["i", "i/d", "i/file", "i/fd", "i/full"]
        .iter()
        .map(|p| Created::intent(&f.root.join(p)))
        .collect();
    let w = remove(&f, &made);
    assert!(!f.root.join("i/d").exists() && !f.root.join("i/file").exists());
    assert!(!f.root.join("i/fd").is_symlink());
    assert!(f.root.join("i/full").is_file(), "unlinked a file with data");
    assert_eq!(w.len(), 2, "{w:?}"); // i/full holds data, so i is not empty
}
