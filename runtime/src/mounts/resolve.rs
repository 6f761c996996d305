//! Resolving a mount destination inside the container's root as if the root were `/`:
//! symlinks are followed but re-rooted, `..` stops at the root, and loops are an error, so
//! no destination ever names a host path outside the root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::created::Created;
use super::MountError;

/// The most symlinks followed for one path (the kernel's MAXSYMLINKS is 32 on FreeBSD, 40
/// on Linux; the lower is used so both agree).
pub const MAX_SYMLINKS: usize = 32;

/// Resolves `path` (absolute inside the container) against `root`, following symlinks that
/// exist under the root. Components that do not exist yet are kept as they are.
/// Returns the host path, always `root` or below it.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf, MountError> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = components(path);
    let mut links = 0usize;
    let mut missing = false;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join(root, &resolved).join(&name);
        if missing {
            resolved.push(name);
            continue;
        }
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(MountError::SymlinkLoop {
                        path: path.to_path_buf(),
                        root: root.to_path_buf(),
                    });
                }
                let target = std::fs::read_link(&candidate).map_err(|source| MountError::Io {
                    op: "reading symlink",
                    path: candidate.clone(),
                    source,
                })?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in components(&target).into_iter().rev() {
                    pending.push_front(c);
                }
            }
            Ok(_) => resolved.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                resolved.push(name);
            }
            Err(source) => {
                return Err(MountError::Io {
                    op: "inspecting",
                    path: candidate,
                    source,
                })
            }
        }
    }
    Ok(join(root, &resolved))
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Normal components and `..`, without `/` and `.`.
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Creates what is missing of `target` (already resolved, under `root`): directories, and
/// for a file mount an empty file as the last component. Returns what was created with
/// its identity, outermost first, so that delete can remove exactly that in reverse.
pub fn create_mount_point(
    root: &Path,
    target: &Path,
    file: bool,
) -> Result<Vec<Created>, MountError> {
    create_reporting(root, target, file, None, &mut |_| {})
}

/// [`create_mount_point`] that calls `report` for each object it makes on the file system
/// whose device is `root_dev` (what outlives a mount namespace): once just before making
/// it, while the path does not exist yet (an intent, so that a crash between making and
/// recording still leaves a record), and once just after.
pub fn create_mount_point_reporting(
    root: &Path,
    target: &Path,
    file: bool,
    root_dev: u64,
    report: &mut dyn FnMut(&Path),
) -> Result<Vec<Created>, MountError> {
    create_reporting(root, target, file, Some(root_dev), report)
}

fn create_reporting(
    root: &Path,
    target: &Path,
    file: bool,
    root_dev: Option<u64>,
    report: &mut dyn FnMut(&Path),
) -> Result<Vec<Created>, MountError> {
    use std::os::unix::fs::MetadataExt;
    let rel = target.strip_prefix(root).map_err(|_| MountError::Escapes {
        path: target.to_path_buf(),
        root: root.to_path_buf(),
    })?;
    let mut created = Vec::new();
    let mut cur = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        cur.push(c);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                // resolve_in_root followed every link; one here appeared since.
                return Err(MountError::Escapes {
                    path: cur,
                    root: root.to_path_buf(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let reported = root_dev.is_some_and(|dev| {
                    cur.parent()
                        .and_then(|p| std::fs::metadata(p).ok())
                        .is_some_and(|m| m.dev() == dev)
                });
                if reported {
                    report(&cur);
                }
                let made = if last && file {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&cur)
                        .map(drop)
                } else {
                    std::fs::create_dir(&cur)
                };
                made.map_err(|source| MountError::Io {
                    op: "creating mount point",
                    path: cur.clone(),
                    source,
                })?;
                created.push(Created::observe(&cur).map_err(|source| MountError::Io {
                    op: "inspecting the mount point just created",
                    path: cur.clone(),
                    source,
                })?);
                if reported {
                    report(&cur);
                }
            }
            Err(source) => {
                return Err(MountError::Io {
                    op: "inspecting",
                    path: cur,
                    source,
                })
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_and_missing_paths_resolve_under_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/etc/x")).unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/a/b/c")).unwrap(),
            root.join("a/b/c")
        );
        assert_eq!(resolve_in_root(root, Path::new("/")).unwrap(), root);
    }

    #[test]
    fn dotdot_is_clamped_at_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        assert_eq!(
            resolve_in_root(root, Path::new("/../../etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/a/../../../b")).unwrap(),
            root.join("b")
        );
    }

    #[test]
    fn absolute_symlinks_are_re_rooted() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        symlink("/real", root.join("link")).unwrap();
        symlink("/etc", root.join("hostetc")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/link/x")).unwrap(),
            root.join("real/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/hostetc/passwd")).unwrap(),
            root.join("etc/passwd")
        );
    }

    #[test]
    fn relative_symlinks_with_dotdot_cannot_escape() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("../../../../../../tmp", root.join("a/b/up")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/a/b/up/x")).unwrap(),
            root.join("tmp/x")
        );
        symlink("../sib", root.join("a/b/rel")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/a/b/rel")).unwrap(),
            root.join("a/sib")
        );
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        symlink("/l2", root.join("l1")).unwrap();
        symlink("/l1", root.join("l2")).unwrap();
        let err = resolve_in_root(root, Path::new("/l1/x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("too many symbolic links"), "{err}");
    }

    #[test]
    fn mount_points_are_created_and_removed_exactly() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir(root.join("existing")).unwrap();
        let made = create_mount_point(root, &root.join("existing/a/b"), false).unwrap();
        let paths: Vec<_> = made.iter().map(|m| m.path.clone()).collect();
        assert_eq!(
            paths,
            vec![root.join("existing/a"), root.join("existing/a/b")]
        );
        let file = create_mount_point(root, &root.join("etc/hosts"), true).unwrap();
        assert!(root.join("etc/hosts").is_file());
        assert!(crate::container::remove_created_under(root, &made).is_empty());
        assert!(crate::container::remove_created_under(root, &file).is_empty());
        assert!(root.join("existing").is_dir());
        assert!(!root.join("existing/a").exists() && !root.join("etc").exists());
    }
}
