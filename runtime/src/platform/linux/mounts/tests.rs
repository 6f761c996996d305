use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn copy_tree_copies_files_dirs_links_and_modes() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir(from.path().join("d")).unwrap();
    std::fs::write(from.path().join("d/f"), "x").unwrap();
    std::fs::set_permissions(
        from.path().join("d/f"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("d/f", from.path().join("l")).unwrap();
    std::fs::set_permissions(from.path(), std::fs::Permissions::from_mode(0o710)).unwrap();

    copy_tree(from.path(), to.path(), false).unwrap();
    assert_eq!(std::fs::read_to_string(to.path().join("d/f")).unwrap(), "x");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&to.path().join("d/f")), 0o640);
    assert_eq!(
        std::fs::read_link(to.path().join("l")).unwrap(),
        Path::new("d/f")
    );
    assert_eq!(mode(to.path()), 0o710);

    let fresh = tempfile::tempdir().unwrap();
    std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    copy_tree(from.path(), fresh.path(), true).unwrap();
    assert_eq!(mode(fresh.path()), 0o1777);
}
