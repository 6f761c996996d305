//! Mounts: the `mounts` of config.json parsed into [`MountSpec`]s, and the safe resolution of
//! each destination inside the root. Each backend turns the specs into its own calls
//! (FreeBSD `nmount(2)` option lists, Linux `mount(2)` arguments).

mod created;
mod resolve;

use std::path::{Path, PathBuf};

pub use created::{Created, CreatedKind, Identity};
pub use resolve::{
    create_mount_point, create_mount_point_reporting, resolve_in_root, MAX_SYMLINKS,
};

use crate::config::ContainerConfig;
use stockade_quote::{quote, quote_os};

/// Why a mount cannot be planned or made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mounts[{index}].{field}: {} is not valid here; expected {expected}", quote(.value))]
    Invalid {
        index: usize,
        field: &'static str,
        value: String,
        expected: String,
    },
    #[error("mounts[{index}]: source {} of a bind mount: {error}", quote_os(.source_path))]
    Source {
        index: usize,
        source_path: PathBuf,
        error: std::io::Error,
    },
    #[error("resolving {} inside {}: too many symbolic links (more than {MAX_SYMLINKS}; a loop?)", quote_os(.path), quote_os(.root))]
    SymlinkLoop { path: PathBuf, root: PathBuf },
    #[error("{} is not inside the container root {}", quote_os(.path), quote_os(.root))]
    Escapes { path: PathBuf, root: PathBuf },
    #[error("{op} {}: {source}", quote_os(.path))]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A file system type stockade knows how to mount, on one platform or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsType {
    /// A bind mount (nullfs on FreeBSD) of a host path; `recursive` for `rbind`.
    Bind {
        source: PathBuf,
        recursive: bool,
        file: bool,
    },
    /// Any other file system, by its type name (`devfs`, `tmpfs`, `proc`, …).
    Named(String),
}

/// Generic flags, as mount(8) spells them.
pub const FLAG_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "noexec",
    "exec",
    "nodev",
    "dev",
    "noatime",
    "atime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "nodiratime",
    "diratime",
    "sync",
    "async",
    "dirsync",
    "nosymfollow",
    "symfollow",
    "mand",
    "nomand",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
];

/// Propagation options (Linux only; ignored with a warning on FreeBSD).
pub const PROPAGATION_OPTIONS: &[&str] = &[
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// One entry of `mounts`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Position in `mounts`, for messages.
    pub index: usize,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    pub fs: FsType,
    /// `source` for non-bind file systems (`tmpfs`, `devfs`, …), informational.
    pub source: Option<String>,
    /// Generic flags from [`FLAG_OPTIONS`], in order.
    pub flags: Vec<String>,
    /// Propagation options from [`PROPAGATION_OPTIONS`].
    pub propagation: Vec<String>,
    /// File-system specific options (`size=64m`, `ruleset=4`, `newinstance`), in order.
    pub data: Vec<String>,
}

impl MountSpec {
    /// Whether the mount is read-only (the last of `ro`/`rw` wins).
    pub fn readonly(&self) -> bool {
        self.flags
            .iter()
            .rev()
            .find(|f| *f == "ro" || *f == "rw")
            .is_some_and(|f| f == "ro")
    }

    /// The file system type name, `bind` for bind mounts.
    pub fn type_name(&self) -> &str {
        match &self.fs {
            FsType::Bind { .. } => "bind",
            FsType::Named(n) => n,
        }
    }
}

/// Parses every mount of `cfg`. Bind sources are resolved against the bundle and must
/// exist (whether they are files decides the kind of mount point).
pub fn parse_mounts(cfg: &ContainerConfig) -> Result<Vec<MountSpec>, MountError> {
    cfg.spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, m)| {
            parse_one(
                index,
                m.destination(),
                m.typ().as_deref(),
                m.source().as_deref(),
                m.options().as_deref().unwrap_or(&[]),
                &cfg.bundle,
            )
        })
        .collect()
}

fn parse_one(
    index: usize,
    destination: &Path,
    typ: Option<&str>,
    source: Option<&Path>,
    options: &[String],
    bundle: &Path,
) -> Result<MountSpec, MountError> {
    if !destination.is_absolute() {
        return Err(MountError::Invalid {
            index,
            field: "destination",
            value: destination.display().to_string(),
            expected: "an absolute path inside the container".into(),
        });
    }
    let mut flags = Vec::new();
    let mut propagation = Vec::new();
    let mut data = Vec::new();
    let mut bind = None;
    for o in options {
        match o.as_str() {
            "bind" => bind = Some(bind.unwrap_or(false)),
            "rbind" => bind = Some(true),
            f if FLAG_OPTIONS.contains(&f) => flags.push(f.to_string()),
            p if PROPAGATION_OPTIONS.contains(&p) => propagation.push(p.to_string()),
            "" => {
                return Err(MountError::Invalid {
                    index,
                    field: "options",
                    value: String::new(),
                    expected: "non-empty option strings".into(),
                })
            }
            other => data.push(other.to_string()),
        }
    }
    let typ = typ.filter(|t| !t.is_empty() && *t != "none");
    let fs = match (typ, bind) {
        (Some("bind" | "nullfs"), b) | (None, b @ Some(_)) => {
            Some(bind_of(index, source, b.unwrap_or(false), bundle)?)
        }
        (Some("rbind"), _) => Some(bind_of(index, source, true, bundle)?),
        (Some(_), Some(r)) => Some(bind_of(index, source, r, bundle)?),
        (Some(t), None) => Some(FsType::Named(t.to_string())),
        (None, None) => None,
    };
    let Some(fs) = fs else {
        return Err(MountError::Invalid {
            index,
            field: "type",
            value: String::new(),
            expected: "a file system type, or the \"bind\"/\"rbind\" option".into(),
        });
    };
    let source = match fs {
        FsType::Bind { .. } => None,
        FsType::Named(_) => source.map(|s| s.display().to_string()),
    };
    Ok(MountSpec {
        index,
        destination: destination.to_path_buf(),
        fs,
        source,
        flags,
        propagation,
        data,
    })
}

fn bind_of(
    index: usize,
    source: Option<&Path>,
    recursive: bool,
    bundle: &Path,
) -> Result<FsType, MountError> {
    let Some(source) = source.filter(|s| !s.as_os_str().is_empty()) else {
        return Err(MountError::Invalid {
            index,
            field: "source",
            value: String::new(),
            expected: "the host path to bind (absolute, or relative to the bundle)".into(),
        });
    };
    let source = bundle.join(source);
    let meta = std::fs::metadata(&source).map_err(|error| MountError::Source {
        index,
        source_path: source.clone(),
        error,
    })?;
    Ok(FsType::Bind {
        source,
        recursive,
        file: !meta.is_dir(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        typ: Option<&str>,
        source: Option<&str>,
        opts: &[&str],
    ) -> Result<MountSpec, MountError> {
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse_one(
            0,
            Path::new("/mnt"),
            typ,
            source.map(Path::new),
            &opts,
            Path::new("/"),
        )
    }

    #[test]
    fn bind_is_recognised_by_type_or_option() {
        for (typ, opts) in [
            (Some("bind"), vec![]),
            (None, vec!["bind"]),
            (Some("none"), vec!["rbind"]),
            (Some("nullfs"), vec![]),
        ] {
            let m = parse(typ, Some("/tmp"), &opts).unwrap();
            assert!(
                matches!(m.fs, FsType::Bind { file: false, .. }),
                "{typ:?} {opts:?}"
            );
        }
        let m = parse(None, Some("/etc/hostname"), &["rbind", "ro"]).unwrap();
        assert_eq!(
            m.fs,
            FsType::Bind {
                source: "/etc/hostname".into(),
                recursive: true,
                file: true
            }
        );
        assert!(m.readonly());
    }

    #[test]
    fn options_are_split_into_flags_propagation_and_data() {
        let m = parse(
            Some("tmpfs"),
            Some("tmpfs"),
            &["nosuid", "size=64m", "rprivate", "mode=1777", "ro", "rw"],
        )
        .unwrap();
        assert_eq!(m.flags, ["nosuid", "ro", "rw"]);
        assert_eq!(m.propagation, ["rprivate"]);
        assert_eq!(m.data, ["size=64m", "mode=1777"]);
        assert!(!m.readonly());
    }

    #[test]
    fn bad_mounts_name_the_entry_and_what_is_accepted() {
        let err = parse_one(
            3,
            Path::new("rel"),
            Some("tmpfs"),
            None,
            &[],
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("mounts[3].destination: \"rel\""), "{err}");
        let long = format!("\u{202e}rel{}", "x".repeat(1 << 20));
        let err = parse_one(0, Path::new(&long), None, None, &[], Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.len() < 400 && !err.contains('\u{202e}'),
            "{}",
            err.len()
        );
        let err = parse(None, None, &[]).unwrap_err().to_string();
        assert!(
            err.contains("mounts[0].type") && err.contains("bind"),
            "{err}"
        );
        let err = parse(Some("bind"), Some("/nonexistent/x"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/x") && err.contains("No such file"),
            "{err}"
        );
        let err = parse(Some("bind"), None, &[]).unwrap_err().to_string();
        assert!(err.contains("mounts[0].source"), "{err}");
    }
}
