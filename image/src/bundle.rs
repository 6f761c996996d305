//! From a stored image to a runtime bundle: the image config (Entrypoint, Cmd, Env,
//! WorkingDir, User, Volumes, StopSignal) laid over a base `config.json`.
//!
//! The base comes from the caller (the CLI passes the runtime's FreeBSD defaults), because
//! this crate does not depend on the runtime; everything here is plain JSON editing plus
//! reading `/etc/passwd` and `/etc/group` of the image, without following its symlinks.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::oci::digest::Digest;
use crate::oci::manifest::{Manifest, Parsed};
use crate::oci::platform::Platform;
use crate::oci::select;
use crate::rootfs::unpack::LayerSource;
use crate::store::{Store, StoreError};

pub mod linux_abi;
pub mod run;

pub use run::{MountRequest, MountSource, RunOverrides};

/// Why a bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The image config is not valid JSON of the expected shape.
    #[error("image config {digest}: {source}")]
    Config {
        digest: Digest,
        source: serde_json::Error,
    },
    /// An index without an entry for the platform.
    #[error("image {image}: no manifest for platform {want}; the index offers: {offered}")]
    Platform {
        image: String,
        want: String,
        offered: String,
    },
    /// Layers and diffIDs differ in number.
    #[error("image {image}: {layers} layers but {diff_ids} diffIDs in the config")]
    LayerCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    /// Nothing to run.
    #[error("image {image} has no Entrypoint or Cmd; give a command")]
    NoCommand { image: String },
    /// `User` names someone the image's own files do not know.
    #[error(
        "user {}: {reason} in the image's /etc/passwd and /etc/group",
        stockade_quote::quote(user)
    )]
    User { user: String, reason: String },
    /// A Linux image on a FreeBSD kernel without the Linux ABI or its file systems.
    #[error(
        "image {image} is a Linux image; this kernel lacks {}: load {} with `kldload {}` (add them to kld_list in /etc/rc.conf to keep them across boots)",
        missing.join(", "),
        if missing.len() == 1 { "it" } else { "them" },
        missing.join(" ")
    )]
    LinuxAbi { image: String, missing: Vec<String> },
    /// Asking the kernel what it has loaded failed.
    #[error("running {command} to check the Linux ABI: {source}")]
    KernelProbe {
        command: String,
        source: std::io::Error,
    },
    /// A `-v`/`--mount` the container cannot have.
    #[error("mount at {}: {reason}", stockade_quote::quote(destination))]
    Mount { destination: String, reason: String },
    /// Writing the bundle failed.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The runtime part of an image config (`config` in the OCI image config).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

/// An OCI image config, the parts a bundle needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub os: String,
    /// OCI naming (`amd64`, `386`, `arm64`): chooses the Linux ABI on FreeBSD.
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub config: Option<ExecConfig>,
    #[serde(default)]
    rootfs: RootFs,
}

/// A stored image resolved to one manifest, its config and its layer blobs.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The store name.
    pub name: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ImageConfig,
    /// The layers with their blobs and diffIDs, lowest first.
    pub layers: Vec<LayerSource>,
}

/// Finds `query` in the store, choosing the manifest for `platform` from an index.
pub fn resolve(
    store: &Store,
    query: &str,
    platform: &Platform,
) -> Result<ResolvedImage, BundleError> {
    let image = store.resolve(query)?;
    let (_, mut parsed) = store.read_manifest(&image.descriptor)?;
    let manifest = loop {
        match parsed {
            Parsed::Image(m) => break *m,
            Parsed::Index(ix) => {
                let d = select::entry_for(&ix.manifests, platform).map_err(|offered| {
                    BundleError::Platform {
                        image: image.name.clone(),
                        want: platform.to_string(),
                        offered: offered.join(", "),
                    }
                })?;
                parsed = store.read_manifest(d)?.1;
            }
        }
    };
    let bytes = store.read_small_blob(&manifest.config.digest)?;
    let config: ImageConfig =
        serde_json::from_slice(&bytes).map_err(|source| BundleError::Config {
            digest: manifest.config.digest.clone(),
            source,
        })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(BundleError::LayerCount {
            image: image.name,
            layers: manifest.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    let layers = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(d, diff)| LayerSource {
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            path: store.layout().blob_path(&d.digest),
            diff_id: diff.clone(),
        })
        .collect();
    Ok(ResolvedImage {
        name: image.name,
        manifest,
        config,
        layers,
    })
}

/// How to make a bundle's `config.json`.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// Replaces the image's Cmd (the Entrypoint stays), as `run IMAGE CMD…` does.
    pub command: Option<Vec<String>>,
    /// The host's defaults, applied last to the finished config, when it knows the image's
    /// user (on Linux: the capabilities and masked paths an image gets, which depend on
    /// whether the process is root).
    pub host_defaults: Option<fn(&mut Value)>,
    /// The `run --image` flags laid over the image's config.
    pub run: RunOverrides,
}

/// The annotation that carries the image's StopSignal (the name containerd uses).
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";
/// The annotation that lists the image's Volumes (they are directories in the rootfs).
pub const VOLUMES_ANNOTATION: &str = "org.freebsd.stockade.volumes";

/// Lays the image config over `base` (a complete `config.json`); `rootfs` is the root
/// filesystem the bundle will point at.
pub fn make_config(
    base: Value,
    image: &ResolvedImage,
    rootfs: &Path,
    opts: &BundleOptions,
) -> Result<Value, BundleError> {
    let mut spec = base;
    let ec = image.config.config.clone().unwrap_or_default();
    let o = &opts.run;
    // A new entrypoint drops the image's Cmd, as Podman and Docker do.
    let (entrypoint, image_cmd) = match &o.entrypoint {
        Some(e) => (e.clone(), Vec::new()),
        None => (
            ec.entrypoint.clone().unwrap_or_default(),
            ec.cmd.clone().unwrap_or_default(),
        ),
    };
    let mut args = entrypoint;
    match &opts.command {
        Some(c) => args.extend(c.iter().cloned()),
        None => args.extend(image_cmd),
    }
    if args.is_empty() {
        return Err(BundleError::NoCommand {
            image: image.name.clone(),
        });
    }
    let mut env = ec.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin".into(),
        );
    }
    let cwd = o
        .workdir
        .clone()
        .or_else(|| ec.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let user_spec = o.user.as_deref().or(ec.user.as_deref()).unwrap_or("");
    let user = resolve_user(rootfs, user_spec)?;
    spec["root"] = json!({"path": rootfs, "readonly": false});
    spec["process"]["args"] = json!(args);
    spec["process"]["env"] = json!(env);
    spec["process"]["cwd"] = json!(cwd);
    spec["process"]["user"] = json!({"uid": user.0, "gid": user.1, "additionalGids": user.2});
    let mut notes = serde_json::Map::new();
    if let Some(sig) = ec.stop_signal.filter(|s| !s.is_empty()) {
        notes.insert(STOP_SIGNAL_ANNOTATION.into(), json!(sig));
    }
    if let Some(v) = ec.volumes.filter(|v| !v.is_empty()) {
        let list: Vec<&str> = v.keys().map(String::as_str).collect();
        notes.insert(VOLUMES_ANNOTATION.into(), json!(list.join(",")));
    }
    if let Some(p) = ec.exposed_ports.filter(|p| !p.is_empty()) {
        let list: Vec<&str> = p.keys().map(String::as_str).collect();
        notes.insert(run::EXPOSED_PORTS_ANNOTATION.into(), json!(list.join(",")));
    }
    notes.insert(
        "org.opencontainers.image.ref.name".into(),
        json!(image.name),
    );
    match spec.get_mut("annotations").and_then(Value::as_object_mut) {
        Some(a) => a.extend(notes),
        None => spec["annotations"] = Value::Object(notes),
    }
    if image.config.os == "linux" {
        #[cfg(target_os = "freebsd")]
        check_linux_abi(image)?;
        linux_abi_mounts(&mut spec);
    }
    run::apply(&mut spec, o)?;
    if let Some(defaults) = opts.host_defaults {
        defaults(&mut spec);
    }
    Ok(spec)
}

/// Refuses a Linux image when the kernel lacks what running it needs ([`linux_abi`]).
#[cfg(target_os = "freebsd")]
fn check_linux_abi(image: &ResolvedImage) -> Result<(), BundleError> {
    let state = linux_abi::probe()?;
    let missing = linux_abi::missing(&image.config.architecture, &state);
    if missing.is_empty() {
        return Ok(());
    }
    Err(BundleError::LinuxAbi {
        image: image.name.clone(),
        missing: missing.into_iter().map(str::to_owned).collect(),
    })
}

/// A Linux image on FreeBSD runs under the Linux ABI, which wants these file systems
/// (the Linux backend maps them to their Linux equivalents), and `/dev/fd` with
/// `linrdlnk`, so that readlink of `/dev/fd/N` names the file as Linux programs expect.
fn linux_abi_mounts(spec: &mut Value) {
    let extra = [
        json!({"destination": "/proc", "type": "linprocfs", "source": "linprocfs", "options": []}),
        json!({"destination": "/sys", "type": "linsysfs", "source": "linsysfs", "options": []}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}),
    ];
    if !spec["mounts"].is_array() {
        spec["mounts"] = json!([]);
    }
    if let Some(m) = spec["mounts"].as_array_mut() {
        for e in extra {
            if !m.iter().any(|x| x["destination"] == e["destination"]) {
                m.push(e);
            }
        }
        for x in m.iter_mut() {
            if x["destination"] != "/dev/fd" || x["type"] != "fdescfs" {
                continue;
            }
            if !x["options"].is_array() {
                x["options"] = json!([]);
            }
            if let Some(o) = x["options"].as_array_mut() {
                if !o.iter().any(|v| v == "linrdlnk") {
                    o.push(json!("linrdlnk"));
                }
            }
        }
    }
}

/// Reads a small file of the image, never following a symlink on the way (an image's
/// `/etc/passwd` could point anywhere on the host). Missing or unusual means `None`.
fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut cur: OwnedFd =
        nix::fcntl::open(root, flags | OFlag::O_DIRECTORY, Mode::empty()).ok()?;
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for (i, p) in parts.iter().enumerate() {
        let f = if i + 1 == parts.len() {
            flags
        } else {
            flags | OFlag::O_DIRECTORY
        };
        cur = openat(cur.as_fd(), *p, f, Mode::empty()).ok()?;
    }
    let mut s = String::new();
    fs::File::from(cur)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// `User` (`name`, `uid`, `name:group`, `uid:gid`, …) → uid, gid, supplementary gids,
/// looked up in the image's own `/etc/passwd` and `/etc/group`.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), BundleError> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let err = |reason: String| BundleError::User {
        user: user.to_string(),
        reason,
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "etc/group").unwrap_or_default();
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let entry = pw
        .iter()
        .find(|f| f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u));
    let uid: u32 = match (u.parse::<u32>(), entry) {
        (Ok(n), _) => n,
        (Err(_), Some(f)) => f[2]
            .parse()
            .map_err(|_| err(format!("{u} has uid {:?}", f[2])))?,
        (Err(_), None) => return Err(err(format!("no user {u}"))),
    };
    let gid: u32 = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| err(format!("no group {g}")))?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let name = entry.map(|f| f[0]).unwrap_or(u);
    let mut extra: Vec<u32> = if g.is_none() {
        gr.iter()
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|x| *x != gid)
            .collect()
    } else {
        Vec::new()
    };
    extra.sort_unstable();
    extra.dedup();
    Ok((uid, gid, extra))
}

/// Writes `config.json` into `dir` (created when missing).
pub fn write_bundle(dir: &Path, config: &Value) -> Result<PathBuf, BundleError> {
    let w = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(w(dir))?;
    let path = dir.join("config.json");
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| BundleError::Write {
        path: path.clone(),
        source: e.into(),
    })?;
    fs::write(&path, bytes).map_err(w(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests;
