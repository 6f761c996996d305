//! Container networks for stockade, through CNI — the plugin standard Podman and
//! containerd use, available on Linux (Debian's `containernetworking-plugins`) and
//! FreeBSD (the `net/containernetworking-plugins` port).
//!
//! - [`config`]: network lists under `<storage root>/networks/`, the default network.
//! - [`cni`]: the plugin runner (ADD/DEL/CHECK, `prevResult` chaining, bounded results).
//! - [`attach`]: a container's namespace and attachment, crash-safe, and its teardown.
//! - [`ports`]: `--publish` values.
//! - [`remove`]: `network rm`, with the bridge and the address directory.
//! - [`lock`]: the lock of a storage root's networks.
//! - [`hosts`]: the `/etc/hosts` of a network's containers, kept current.
//! - [`etc`]: the container's `/etc/hosts` and `/etc/resolv.conf`.
//! - [`namespaces`]: the seam to the kernel's network namespaces, one value per backend.
//! - [`netns`] (Linux): network namespaces bound on files under `/run/stockade/netns`.
//! - [`freebsd`]: the vnet-jail plan, as data (not executed yet).
//!
//! This crate does not depend on the runtime: it edits the config as JSON.

pub mod attach;
pub mod cni;
pub mod config;
pub mod etc;
mod files;
mod firewall;
pub mod freebsd;
pub mod hosts;
pub mod lock;
pub mod namespaces;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod ports;
mod record;
pub mod remove;

use std::path::{Path, PathBuf};

use stockade_quote::{quote, quote_os};

pub use attach::{attach, detach, Attached, NetworkMode};
pub use config::{Network, Networks, Subnet, DEFAULT_NETWORK};
pub use ports::PortMapping;
pub use remove::{remove_network, Removed};

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network name {}: letters, digits, '_', '.', '-', starting with a letter or digit, at most 64", quote(name))]
    BadName { name: String },
    #[error("network name {name} is reserved (--network {name} means no CNI network)")]
    Reserved { name: String },
    #[error("no network {}; make it with `stockade network create`", quote(name))]
    NoNetwork { name: String },
    #[error("network {} already exists", quote(name))]
    NetworkExists { name: String },
    #[error("network {} is in use by {}; remove those containers first", quote(name), ids.join(", "))]
    InUse { name: String, ids: Vec<String> },
    #[error("--subnet {}: {why}", quote(value))]
    BadSubnet { value: String, why: &'static str },
    #[error("subnet {subnet} overlaps network subnet {by}")]
    SubnetTaken { subnet: String, by: String },
    #[error("no free subnet left in 10.89.0.0/16; pass --subnet")]
    NoFreeSubnet,
    #[error("{}: {why}", path.display())]
    BadConflist { path: PathBuf, why: String },
    #[error(
        "network {network}: plugin type {} is not a plugin name",
        quote(plugin)
    )]
    BadPlugin { network: String, plugin: String },
    #[error(
        "CNI plugin {} not found in {dirs} (install containernetworking-plugins)",
        quote(plugin)
    )]
    NoPlugin { plugin: String, dirs: String },
    #[error("network {network}: CNI plugin {plugin} {verb} failed: {msg}")]
    Plugin {
        network: String,
        plugin: String,
        verb: String,
        msg: String,
    },
    #[error("running {}", quote_os(path))]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("network namespace {}", path.display())]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id} already has a network attachment ({}); remove it with `stockade delete --force {id}`", path.display())]
    Attached { id: String, path: PathBuf },
    #[error("attachment record {}: {why}", path.display())]
    BadRecord { path: PathBuf, why: String },
    #[error("deleting bridge {bridge}: {msg}")]
    Bridge { bridge: String, msg: String },
    #[error("deleting the firewall rule of bridge {bridge} ({rule}): {msg}")]
    Firewall {
        bridge: String,
        rule: String,
        msg: String,
    },
    #[error("--publish needs a network: not with --network host or none")]
    PortsWithoutNetwork,
    #[error("container networks are planned but not executed on this system yet (see docs/deploy.md); use --network host")]
    NotExecutedHere,
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A mapper from an I/O error on `path` to [`NetError::Io`].
pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.to_path_buf();
    move |source| NetError::Io { op, path, source }
}
