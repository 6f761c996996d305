//! Attaching a container to a network and detaching it, crash-safe.
//!
//! Before anything of a container's network exists, a record
//! `<storage root>/networks/attachments/<id>.json` is written atomically with everything
//! the teardown needs: the namespace path and a copy of the network's list (so that a
//! network changed or removed meanwhile is still torn down as it was set up). Then the
//! namespace is made, the loopback and the network's plugins run ADD, and the record gets
//! the result. [`detach`] runs DEL (idempotent in CNI), unmounts and removes the namespace
//! and removes the record last, so from whatever instant a crash hit, running it again
//! finishes the job.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Map, Value};

use crate::cni::{self, Attachment, Verb};
use crate::config::{self, Network, Networks};
use crate::lock::NetworksLock;
use crate::namespaces::{self, Namespaces};
use crate::ports::PortMapping;
pub(crate) use crate::record::{
    attached_to, read_record, record_path, records_dir, write_record, Record,
};
pub use crate::record::{users, ATTACHMENTS_DIR};
use crate::{io, NetError};

/// The container's interface on a CNI network.
pub const IFNAME: &str = "eth0";

/// `--network`: the host's network, a namespace with loopback only, or a named network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    Host,
    None,
    Named(String),
}

impl FromStr for NetworkMode {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s {
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            name => config::check_name(name).map(|()| NetworkMode::Named(name.to_string())),
        }
    }
}

/// A container's network, made by [`attach`].
#[derive(Debug, Clone)]
pub struct Attached {
    pub netns: PathBuf,
    pub network: Option<String>,
    /// The container's IPv4 addresses on the network.
    pub addresses: Vec<String>,
    /// The containers attached to the network before it: (address, id).
    pub peers: Vec<(String, String)>,
}

/// The addresses of the containers on network `name` but `except`, for `/etc/hosts`.
fn peers(storage_root: &Path, name: &str, except: &str) -> Result<Vec<(String, String)>, NetError> {
    let mut out = Vec::new();
    for r in attached_to(storage_root, name)? {
        if r.id == except {
            continue;
        }
        for a in r
            .result
            .as_ref()
            .map(cni::result_addresses)
            .unwrap_or_default()
        {
            // Written into another container's file: only what parses as an address.
            if a.parse::<std::net::IpAddr>().is_ok() {
                out.push((a, r.id.clone()));
            }
        }
    }
    Ok(out)
}

/// The loopback plugin's list: `lo` up in every namespace stockade makes.
fn loopback() -> Network {
    Network {
        name: "stockade-lo".into(),
        list: json!({"cniVersion": config::CNI_VERSION, "name": "stockade-lo",
                     "plugins": [{"type": "loopback"}]}),
    }
}

/// Gives container `id` a network namespace of its own and attaches it to `mode`'s
/// network with `ports` published. `Host` makes nothing (None is returned). The running
/// system's namespaces ([`namespaces::host`]).
pub fn attach(
    storage_root: &Path,
    id: &str,
    mode: &NetworkMode,
    ports: &[PortMapping],
) -> Result<Option<Attached>, NetError> {
    attach_with(namespaces::host(), storage_root, id, mode, ports)
}

/// [`attach`] with the namespaces of backend `ns`.
pub fn attach_with(
    ns: &dyn Namespaces,
    storage_root: &Path,
    id: &str,
    mode: &NetworkMode,
    ports: &[PortMapping],
) -> Result<Option<Attached>, NetError> {
    let nets = Networks::new(storage_root);
    let named = match mode {
        NetworkMode::Host if ports.is_empty() => return Ok(None),
        NetworkMode::Host | NetworkMode::None if !ports.is_empty() => {
            return Err(NetError::PortsWithoutNetwork)
        }
        NetworkMode::Host | NetworkMode::None => None,
        // The default network is made here when missing (under the lock, taken inside).
        NetworkMode::Named(name) => Some(nets.get(name)?.name),
    };
    ns.check()?;
    let dirs = config::plugin_dirs();
    let mut runtime_config = Map::new();
    if !ports.is_empty() {
        runtime_config.insert(
            "portMappings".into(),
            serde_json::to_value(ports).unwrap_or_default(),
        );
    }
    let path = record_path(storage_root, id);
    if fs::symlink_metadata(&path).is_ok() {
        return Err(NetError::Attached {
            id: id.to_string(),
            path,
        });
    }
    let dir = records_dir(storage_root);
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let key = root_key(storage_root).map_err(io("resolving", storage_root))?;
    // The list is read and the record written under the networks lock: `network rm`
    // checks for records under it, so it cannot remove the network in between.
    let lock = NetworksLock::exclusive(nets.dir())?;
    let network = named.map(|n| nets.get_existing(&n)).transpose()?;
    let mut record = Record {
        id: id.to_string(),
        netns: ns.path(&key, id),
        network: network.as_ref().map(|n| n.name.clone()),
        list: network.as_ref().map(|n| n.list.clone()),
        runtime_config,
        result: None,
        hosts: None,
        names: Vec::new(),
    };
    write_record(storage_root, &record)?;
    drop(lock);
    stockade_fault::point("net:recorded");
    ns.create(&record.netns)?;
    stockade_fault::point("net:netns-made");
    let netns = record.netns.to_string_lossy().into_owned();
    let at = |ifname| Attachment {
        container_id: id,
        netns: &netns,
        ifname,
        runtime_config: &record.runtime_config,
    };
    cni::run_list(&loopback(), Verb::Add, &at("lo"), &dirs, None)?;
    let mut addresses = Vec::new();
    if let Some(net) = &network {
        // Each plugin's result is recorded as it comes: the firewall plugin's DEL finds
        // the addresses to unblock only in its prevResult.
        let mut saved = record.clone();
        let result = cni::run_list_saving(net, Verb::Add, &at(IFNAME), &dirs, None, &mut |r| {
            saved.result = Some(r.clone());
            write_record(storage_root, &saved)?;
            stockade_fault::point("net:result-saved");
            Ok(())
        })?;
        stockade_fault::point("net:added");
        if let Some(r) = &result {
            addresses = cni::result_addresses(r);
        }
        record.result = result;
    }
    let peers = match &record.network {
        Some(name) => peers(storage_root, name, id)?,
        None => Vec::new(),
    };
    Ok(Some(Attached {
        netns: record.netns.clone(),
        network: record.network.clone(),
        addresses,
        peers,
    }))
}

/// The key of a storage root in host-wide names (the namespace files): 16 hex digits of
/// the SHA-256 of its canonical path, so that the same root reached by two spellings gets
/// one key and two roots get two.
pub fn root_key(storage_root: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let canonical = fs::canonicalize(storage_root)?;
    let h = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    Ok(hex::encode(h)[..16].to_string())
}

/// Tears down what [`attach`] made for container `id`: CNI DEL, the namespace, the
/// record. Returns whether there was a record. Safe to repeat after any crash.
pub fn detach(storage_root: &Path, id: &str) -> Result<bool, NetError> {
    detach_with(namespaces::host(), storage_root, id)
}

/// [`detach`] with the namespaces of backend `ns`.
pub fn detach_with(ns: &dyn Namespaces, storage_root: &Path, id: &str) -> Result<bool, NetError> {
    // A writer of the record killed mid-write left its temporary, the record or not.
    let path = record_path(storage_root, id);
    crate::files::remove_stale_temps(&path).map_err(io("cleaning", &path))?;
    let Some(record) = read_record(storage_root, id)? else {
        return Ok(false);
    };
    if let (Some(name), Some(list)) = (&record.network, &record.list) {
        let net = Network {
            name: name.clone(),
            list: list.clone(),
        };
        // A namespace that is gone (or never was bound) is given as empty, which CNI's DEL
        // takes as "release what is outside it" (addresses, port rules).
        let netns = if ns.is_bound(&record.netns) {
            record.netns.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let at = Attachment {
            container_id: id,
            netns: &netns,
            ifname: IFNAME,
            runtime_config: &record.runtime_config,
        };
        cni::run_list(
            &net,
            Verb::Del,
            &at,
            &config::plugin_dirs(),
            record.result.as_ref(),
        )?;
        stockade_fault::point("net:deleted");
    }
    ns.remove(&record.netns)?;
    stockade_fault::point("net:netns-removed");
    let path = record_path(storage_root, id);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing", &path)(e)),
    }
    // The others on the network no longer list it (a failure there is theirs, warned of).
    if let Some(name) = &record.network {
        crate::hosts::refresh(storage_root, name)?;
    }
    Ok(true)
}

/// Points the runtime config at the container's namespace and mounts the bundle's
/// `hosts` (its `names` on its addresses) and `resolv.conf` read-only over the image's.
pub fn apply_to_config(
    config: &mut Value,
    attached: &Attached,
    bundle: &Path,
    names: &[&str],
) -> Result<(), NetError> {
    let ns = &mut config["linux"]["namespaces"];
    if !ns.is_array() {
        *ns = json!([]);
    }
    if let Some(list) = ns.as_array_mut() {
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": attached.netns}));
    }
    let mut files = vec![(
        "/etc/hosts",
        "hosts",
        crate::etc::hosts(&attached.addresses, names, &attached.peers),
    )];
    if attached.network.is_some() {
        files.push((
            "/etc/resolv.conf",
            "resolv.conf",
            crate::etc::host_resolv_conf(),
        ));
    }
    for (dest, file, text) in files {
        let source = bundle.join(file);
        crate::files::write_atomic(&source, text.as_bytes()).map_err(io("writing", &source))?;
        let mounts = &mut config["mounts"];
        if !mounts.is_array() {
            *mounts = json!([]);
        }
        if let Some(m) = mounts.as_array_mut() {
            m.retain(|m| m["destination"] != dest);
            m.push(
                json!({"destination": dest, "type": "bind", "source": source,
                          "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
