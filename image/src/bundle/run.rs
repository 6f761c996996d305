//! What `run --image` changes of an image's config (Podman's `run` flags, typed): the
//! entrypoint, environment, working directory, user, hostname, a read-only root, the stop
//! signal and timeout, and the mounts (bind mounts of host paths and volumes, tmpfs).
//!
//! Named and anonymous volumes are directories under the storage root which
//! `provision` resolves to host paths before [`apply`] runs; here every mount is a bind of
//! an existing host path or a tmpfs.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::BundleError;

/// The annotation that carries the stop timeout in seconds (`--stop-timeout`).
pub const STOP_TIMEOUT_ANNOTATION: &str = "org.freebsd.stockade.stopTimeout";
/// The annotation that lists the image's ExposedPorts (`80/tcp,53/udp`), for a later
/// network layer to publish; nothing is published from it.
pub const EXPOSED_PORTS_ANNOTATION: &str = "org.freebsd.stockade.exposedPorts";

/// Where a mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host path (absolute); it must exist.
    Host(PathBuf),
    /// A named volume, `<storage>/volumes/NAME`, made on first use by `provision`.
    Volume(String),
    /// A tmpfs.
    Tmpfs,
}

/// One `-v`/`--mount` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    /// What is mounted.
    pub source: MountSource,
    /// Where in the container (absolute, no `..`).
    pub destination: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// Extra mount options (tmpfs: `size=…`, `mode=…`).
    pub options: Vec<String>,
}

/// Why a destination is refused.
pub fn check_destination(dest: &str) -> Result<(), String> {
    let p = Path::new(dest);
    if !p.is_absolute() {
        return Err("must be an absolute path".into());
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("must not contain `..`".into());
    }
    if p.components().all(|c| matches!(c, Component::RootDir)) {
        return Err("cannot be the root directory".into());
    }
    if dest.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(())
}

/// Why a volume name is refused (Podman's rule: `[A-Za-z0-9][A-Za-z0-9_.-]*`), bounded.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(
            "a volume name is 1 to 128 of A-Z a-z 0-9 _ . - and starts with a letter or digit"
                .into(),
        );
    }
    Ok(())
}

/// A hostname made from a container name: itself when it is a valid hostname, else with
/// the other characters replaced by `-`, at most 63 characters (Linux's limit is 64).
pub fn hostname_for(name: &str) -> String {
    let mut h: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    h = h.trim_matches(|c| c == '-' || c == '.').to_string();
    if h.is_empty() {
        "stockade".into()
    } else {
        h
    }
}

/// Why a `--hostname` is refused.
pub fn check_hostname(h: &str) -> Result<(), String> {
    let ok = !h.is_empty()
        && h.len() <= 63
        && h.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(
            "a hostname is at most 63 characters of labels of A-Z a-z 0-9 - separated by dots"
                .into(),
        )
    }
}

/// The `run --image` flags, applied over the image's config.
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    /// Replaces the image's Entrypoint; the image's Cmd is then dropped, as Podman does
    /// (`Some(vec![])`: no entrypoint at all).
    pub entrypoint: Option<Vec<String>>,
    /// `NAME=value` pairs laid over the image's Env, in order (a later name wins).
    pub env: Vec<String>,
    /// Replaces WorkingDir (absolute).
    pub workdir: Option<String>,
    /// Replaces User (`name`, `uid`, `name:group`, `uid:gid`).
    pub user: Option<String>,
    /// The container's hostname.
    pub hostname: Option<String>,
    /// Mount the root file system read-only.
    pub read_only: bool,
    /// Replaces the image's StopSignal (a signal name).
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits after the stop signal before it kills.
    pub stop_timeout: Option<u32>,
    /// Bind mounts and tmpfs, in order.
    pub mounts: Vec<MountRequest>,
    /// Give the process a terminal (`-t`).
    pub terminal: bool,
}

impl RunOverrides {
    /// The image's env with these `NAME=value` pairs laid over it.
    pub fn merge_env(&self, mut env: Vec<String>) -> Vec<String> {
        for kv in &self.env {
            let name = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(name));
            env.push(kv.clone());
        }
        env
    }

    /// Whether some mount covers `dest` exactly.
    pub fn mounts_at(&self, dest: &str) -> bool {
        let norm = |s: &str| s.trim_end_matches('/').to_string();
        self.mounts
            .iter()
            .any(|m| norm(&m.destination) == norm(dest))
    }
}

/// The runtime-spec mount for `m`; a named volume must have been resolved to its path.
fn spec_mount(m: &MountRequest) -> Result<Value, BundleError> {
    let mut options: Vec<String> = Vec::new();
    let v = match &m.source {
        MountSource::Host(path) => {
            // Podman binds recursively on Linux; FreeBSD's nullfs cannot, and would warn.
            options.push(
                if cfg!(target_os = "freebsd") {
                    "bind"
                } else {
                    "rbind"
                }
                .into(),
            );
            json!({"destination": m.destination, "type": "bind", "source": path})
        }
        MountSource::Tmpfs => {
            options.extend(["nosuid".into(), "nodev".into()]);
            json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs"})
        }
        MountSource::Volume(name) => {
            return Err(BundleError::Mount {
                destination: m.destination.clone(),
                reason: format!("volume {name} was not resolved to a directory"),
            })
        }
    };
    options.extend(m.options.iter().cloned());
    options.push(if m.readonly { "ro" } else { "rw" }.into());
    let mut v = v;
    v["options"] = json!(options);
    Ok(v)
}

/// Lays `o` over `spec`, whose process the image config has already filled in.
pub fn apply(spec: &mut Value, o: &RunOverrides) -> Result<(), BundleError> {
    if let Some(env) = spec["process"]["env"].as_array() {
        let env: Vec<String> = env
            .iter()
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect();
        spec["process"]["env"] = json!(o.merge_env(env));
    }
    if let Some(h) = &o.hostname {
        spec["hostname"] = json!(h);
    }
    if o.read_only {
        spec["root"]["readonly"] = json!(true);
    }
    if o.terminal {
        spec["process"]["terminal"] = json!(true);
    }
    if !spec["mounts"].is_array() {
        spec["mounts"] = json!([]);
    }
    let mut added = Vec::new();
    for m in &o.mounts {
        check_destination(&m.destination).map_err(|reason| BundleError::Mount {
            destination: m.destination.clone(),
            reason,
        })?;
        added.push(spec_mount(m)?);
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        // A mount of the caller's replaces the default one at the same place (Podman lets
        // `--mount type=tmpfs,destination=/dev/shm` replace its own).
        mounts.retain(|x| !added.iter().any(|a| a["destination"] == x["destination"]));
        mounts.extend(added);
    }
    let mut notes = serde_json::Map::new();
    if let Some(s) = &o.stop_signal {
        notes.insert(super::STOP_SIGNAL_ANNOTATION.into(), json!(s));
    }
    if let Some(t) = o.stop_timeout {
        notes.insert(STOP_TIMEOUT_ANNOTATION.into(), json!(t.to_string()));
    }
    match spec.get_mut("annotations").and_then(Value::as_object_mut) {
        Some(a) => a.extend(notes),
        None => spec["annotations"] = Value::Object(notes),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_absolute_without_dotdot_and_not_the_root() {
        assert!(check_destination("/data").is_ok());
        assert!(check_destination("/a/./b").is_ok());
        assert!(check_destination("data").is_err());
        assert!(check_destination("/a/../etc").is_err());
        assert!(check_destination("/").is_err());
        assert!(check_destination("//").is_err());
    }

    #[test]
    fn volume_names_and_hostnames_are_checked() {
        assert!(check_volume_name("db-data_1.x").is_ok());
        for bad in ["", ".x", "a/b", "..", "a b", &"x".repeat(129)] {
            assert!(check_volume_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(hostname_for("web_1"), "web-1");
        assert_eq!(hostname_for("stockade-abc"), "stockade-abc");
        assert_eq!(hostname_for(&"a".repeat(80)).len(), 63);
        assert_eq!(hostname_for("__"), "stockade");
        assert!(check_hostname("web.example").is_ok());
        assert!(check_hostname("-web").is_err());
        assert!(check_hostname("a..b").is_err());
        assert!(check_hostname("a_b").is_err());
    }

    #[test]
    fn overrides_land_in_the_spec() {
        let mut spec = json!({
            "process": {"env": ["PATH=/bin", "A=image"]},
            "root": {"path": "/r", "readonly": false},
            "hostname": "stockade",
            "mounts": [{"destination": "/tmp", "type": "tmpfs"}],
            "annotations": {"x": "y"}
        });
        let o = RunOverrides {
            env: vec!["A=flag".into(), "B=2".into()],
            hostname: Some("web".into()),
            read_only: true,
            stop_signal: Some("SIGQUIT".into()),
            stop_timeout: Some(30),
            terminal: true,
            mounts: vec![
                MountRequest {
                    source: MountSource::Host("/srv/data".into()),
                    destination: "/data".into(),
                    readonly: true,
                    options: vec![],
                },
                MountRequest {
                    source: MountSource::Tmpfs,
                    destination: "/tmp".into(),
                    readonly: false,
                    options: vec!["size=1m".into()],
                },
            ],
            ..RunOverrides::default()
        };
        apply(&mut spec, &o).unwrap();
        assert_eq!(
            spec["process"]["env"],
            json!(["PATH=/bin", "A=flag", "B=2"])
        );
        assert_eq!(spec["hostname"], "web");
        assert_eq!(spec["root"]["readonly"], true);
        assert_eq!(spec["process"]["terminal"], true);
        assert_eq!(spec["annotations"]["x"], "y");
        assert_eq!(spec["annotations"][STOP_TIMEOUT_ANNOTATION], "30");
        assert_eq!(
            spec["annotations"][super::super::STOP_SIGNAL_ANNOTATION],
            "SIGQUIT"
        );
        let m = spec["mounts"].as_array().unwrap();
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            m[0],
            json!({"destination": "/data", "type": "bind", "source": "/srv/data",
                "options": [if cfg!(target_os = "freebsd") { "bind" } else { "rbind" }, "ro"]})
        );
        assert_eq!(m[1]["options"], json!(["nosuid", "nodev", "size=1m", "rw"]));
    }

    #[test]
    fn an_unresolved_volume_or_a_bad_destination_is_an_error() {
        let mut spec = json!({"process": {}});
        let mut o = RunOverrides {
            mounts: vec![MountRequest {
                source: MountSource::Volume("v".into()),
                destination: "/v".into(),
                readonly: false,
                options: vec![],
            }],
            ..RunOverrides::default()
        };
        assert!(matches!(
            apply(&mut spec, &o),
            Err(BundleError::Mount { .. })
        ));
        o.mounts[0].source = MountSource::Tmpfs;
        o.mounts[0].destination = "/v/../../etc".into();
        assert!(apply(&mut spec, &o).is_err());
    }
}
