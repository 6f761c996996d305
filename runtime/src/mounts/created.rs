//! What create made on the root filesystem (mount points, default device nodes and links),
//! recorded with the identity it had when it was made, so that delete removes exactly that
//! object and nothing a container may have put in its place.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The kind of object create made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatedKind {
    /// A directory (removed only while empty).
    Dir,
    /// An empty regular file, the mount point of a file bind mount (removed only while it
    /// is still empty).
    File,
    /// A character device node (a default device).
    Device,
    /// A symbolic link (`/dev/fd`, `/dev/stdin`…); removing it never touches its target.
    Symlink,
}

/// The identity of an object at the moment it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub kind: CreatedKind,
    pub dev: u64,
    pub ino: u64,
    /// The device number of a device node (0 otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One object create made: its host path (under the container's root) and its identity.
/// State written before identities were recorded holds bare paths; those are read as
/// records without identity, which delete treats with the least trust (an empty directory
/// may go, nothing else does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredCreated")]
pub struct Created {
    pub path: PathBuf,
    #[serde(flatten)]
    pub identity: Option<Identity>,
    /// Recorded just before it was made (no identity yet): create died between making
    /// and recording it, before any container process ran. Delete removes it if it is
    /// an empty directory or file, a device node or a symlink, never following it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub intended: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The two forms `mountPoints` entries have had in `state.json`.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredCreated {
    Record {
        path: PathBuf,
        #[serde(flatten)]
        identity: Option<Identity>,
        #[serde(default)]
        intended: bool,
    },
    Legacy(PathBuf),
}

impl From<StoredCreated> for Created {
    fn from(s: StoredCreated) -> Created {
        match s {
            StoredCreated::Record {
                path,
                identity,
                intended,
            } => Created {
                path,
                identity,
                intended,
            },
            StoredCreated::Legacy(path) => Created {
                path,
                identity: None,
                intended: false,
            },
        }
    }
}

impl From<PathBuf> for Created {
    /// A record without identity (as old state files held).
    fn from(path: PathBuf) -> Created {
        Created {
            path,
            identity: None,
            intended: false,
        }
    }
}

impl From<&str> for Created {
    fn from(path: &str) -> Created {
        Created::from(PathBuf::from(path))
    }
}

impl Created {
    /// A record of `path` about to be made.
    pub fn intent(path: &Path) -> Created {
        Created {
            path: path.to_path_buf(),
            identity: None,
            intended: true,
        }
    }

    /// Records `path` as it is now (just made, before any container process exists),
    /// without following a symlink in its last component.
    pub fn observe(path: &Path) -> std::io::Result<Created> {
        let m = std::fs::symlink_metadata(path)?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            CreatedKind::Dir
        } else if ft.is_symlink() {
            CreatedKind::Symlink
        } else if ft.is_char_device() || ft.is_block_device() {
            CreatedKind::Device
        } else if ft.is_file() {
            CreatedKind::File
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "neither a directory, a regular file, a device nor a symlink",
            ));
        };
        Ok(Created {
            path: path.to_path_buf(),
            intended: false,
            identity: Some(Identity {
                kind,
                dev: m.dev(),
                ino: m.ino(),
                rdev: if kind == CreatedKind::Device {
                    m.rdev()
                } else {
                    0
                },
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_bare_paths_and_new_records_both_read() {
        let v: Vec<Created> = serde_json::from_str(
            r#"["/r/dev", {"path": "/r/mnt", "kind": "dir", "dev": 5, "ino": 9}]"#,
        )
        .unwrap();
        assert_eq!(v[0], Created::from("/r/dev"));
        assert_eq!(
            v[1].identity,
            Some(Identity {
                kind: CreatedKind::Dir,
                dev: 5,
                ino: 9,
                rdev: 0
            })
        );
        let back: Vec<Created> = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn observe_records_kind_and_inode() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("l")).unwrap();
        let f = Created::observe(&d.path().join("f")).unwrap();
        let l = Created::observe(&d.path().join("l")).unwrap();
        let dir = Created::observe(d.path()).unwrap();
        assert_eq!(f.identity.unwrap().kind, CreatedKind::File);
        assert_eq!(l.identity.unwrap().kind, CreatedKind::Symlink);
        assert_eq!(dir.identity.unwrap().kind, CreatedKind::Dir);
        assert_ne!(f.identity.unwrap().ino, l.identity.unwrap().ino);
    }
}
