//! `network rm`: a network's list, and what its plugins left on the host once nothing
//! uses it — the bridge interface, the firewall plugin's isolation rules naming it
//! ([`crate::firewall`]) and host-local's allocation directory
//! (`/var/lib/cni/networks/NAME`, or the list's `ipam.dataDir`). Both are host-wide, so a
//! bridge that still has ports, or a directory still holding an address, is another
//! storage root's (or a container's that crashed) and stays.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Network, Networks};
use crate::lock::NetworksLock;
use crate::{attach, io, NetError};

/// host-local's default `dataDir`.
pub const IPAM_DIR: &str = "/var/lib/cni/networks";

/// What [`remove_network`] left on the host, and why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Host objects kept because something still uses them: (what, why).
    pub kept: Vec<(String, String)>,
}

/// Removes network `name` of `storage_root`: refused while a container of this root is
/// attached (naming it); then the bridge, the IPAM directory and the list.
pub fn remove_network(storage_root: &Path, name: &str) -> Result<Removed, NetError> {
    let nets = Networks::new(storage_root);
    let _lock = NetworksLock::exclusive(nets.dir())?;
    let net = nets.get_existing(name)?;
    let ids = attach::users(storage_root, name)?;
    if !ids.is_empty() {
        return Err(NetError::InUse {
            name: name.to_string(),
            ids,
        });
    }
    // The host objects first and the list last: a crash in between leaves the network
    // listed, and `network rm` again finishes (a bridge or directory already gone is fine).
    let mut removed = Removed::default();
    if let Some(bridge) = net.bridge() {
        if let Some(why) = remove_bridge(bridge)? {
            removed.kept.push((format!("bridge {bridge}"), why));
        }
    }
    let dir = ipam_dir(&net);
    if let Some(why) = remove_ipam_dir(&dir)? {
        removed.kept.push((dir.display().to_string(), why));
    }
    nets.remove_list(name)?;
    Ok(removed)
}

/// host-local's directory of the network: `<dataDir>/<name>`.
fn ipam_dir(net: &Network) -> PathBuf {
    let data = net
        .plugins()
        .iter()
        .find_map(|p| p["ipam"]["dataDir"].as_str())
        .unwrap_or(IPAM_DIR);
    Path::new(data).join(&net.name)
}

/// Removes host-local's directory when it holds no allocation: only its `lock` and
/// `last_reserved_ip.N` files are removed, one by one (never a recursive removal of a path
/// a list names); an address file means a container holds it. Returns why it was kept.
fn remove_ipam_dir(dir: &Path) -> Result<Option<String>, NetError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("reading", dir)(e)),
    };
    let mut bookkeeping = Vec::new();
    for ent in entries {
        let ent = ent.map_err(io("reading", dir))?;
        let file = ent.file_name().to_string_lossy().into_owned();
        if file == "lock" || file.starts_with("last_reserved_ip.") {
            bookkeeping.push(ent.path());
        } else {
            return Ok(Some(format!("it still holds the allocation {file}")));
        }
    }
    for p in bookkeeping {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &p)(e)),
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // An allocation made meanwhile by another root's container.
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) => {
            Ok(Some("an address was allocated meanwhile".into()))
        }
        Err(e) => Err(io("removing", dir)(e)),
    }
}

/// Deletes the bridge when it has no ports (Linux, `ip link delete`). Returns why it was
/// kept. On other systems no bridge was made (networks are not executed there).
#[cfg(target_os = "linux")]
fn remove_bridge(bridge: &str) -> Result<Option<String>, NetError> {
    let sys = Path::new("/sys/class/net").join(bridge);
    if !sys.exists() {
        // Gone already (a crash of an earlier `network rm`): its rules may not be.
        crate::firewall::remove_isolation_rules(bridge)?;
        return Ok(None);
    }
    if !sys.join("bridge").is_dir() {
        return Ok(Some("it is not a bridge".into()));
    }
    let ports = sys.join("brif");
    let used = fs::read_dir(&ports).map_err(io("reading", &ports))?.count();
    if used > 0 {
        return Ok(Some(format!("it still has {used} port(s)")));
    }
    let ip = crate::firewall::sbin("ip");
    let out = std::process::Command::new(&ip)
        .args(["link", "delete", "dev", bridge, "type", "bridge"])
        .output()
        .map_err(|source| NetError::Spawn {
            path: ip.clone(),
            source,
        })?;
    if out.status.success() || !sys.exists() {
        // The bridge's isolation rules last: a crash before leaves them for `rm` again.
        crate::firewall::remove_isolation_rules(bridge)?;
        return Ok(None);
    }
    Err(NetError::Bridge {
        bridge: bridge.to_string(),
        msg: stockade_quote::quote(String::from_utf8_lossy(&out.stderr).trim()).to_string(),
    })
}

#[cfg(not(target_os = "linux"))]
fn remove_bridge(_: &str) -> Result<Option<String>, NetError> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipam_dir_goes_only_without_allocations() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        assert_eq!(remove_ipam_dir(&dir).unwrap(), None);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("lock"), b"").unwrap();
        fs::write(dir.join("last_reserved_ip.0"), b"10.89.1.2").unwrap();
        fs::write(dir.join("10.89.1.2"), b"c1\neth0").unwrap();
        let kept = remove_ipam_dir(&dir).unwrap().unwrap();
        assert!(kept.contains("10.89.1.2"), "{kept}");
        assert!(dir.join("lock").exists());
        fs::remove_file(dir.join("10.89.1.2")).unwrap();
        assert_eq!(remove_ipam_dir(&dir).unwrap(), None);
        assert!(!dir.exists());
    }

    #[test]
    fn the_ipam_dir_follows_the_lists_data_dir() {
        let n = Network {
            name: "n".into(),
            list: serde_json::json!({"name": "n", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]}),
        };
        assert_eq!(ipam_dir(&n), Path::new("/var/lib/cni/networks/n"));
        let n = Network {
            name: "n".into(),
            list: serde_json::json!({"name": "n", "plugins": [{"type": "bridge", "ipam": {"dataDir": "/x"}}]}),
        };
        assert_eq!(ipam_dir(&n), Path::new("/x/n"));
    }

    #[test]
    fn rm_refuses_while_a_container_is_attached_and_removes_the_list() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::new(tmp.path());
        // No bridge or addresses of a unique name exist on the host: only the list goes.
        let name = format!("rmtest{}", std::process::id());
        nets.create(&name, Some("10.250.0.0/24".parse().unwrap()))
            .unwrap();
        let att = tmp.path().join("networks/attachments");
        fs::create_dir_all(&att).unwrap();
        fs::write(
            att.join("c1.json"),
            serde_json::to_vec(
                &serde_json::json!({"id": "c1", "netns": "/x", "network": name,
                "list": null, "runtime_config": {}, "result": null}),
            )
            .unwrap(),
        )
        .unwrap();
        let err = remove_network(tmp.path(), &name).unwrap_err().to_string();
        assert!(err.contains("in use by c1"), "{err}");
        fs::remove_file(att.join("c1.json")).unwrap();
        assert_eq!(
            remove_network(tmp.path(), &name).unwrap(),
            Removed::default()
        );
        assert!(matches!(
            remove_network(tmp.path(), &name),
            Err(NetError::NoNetwork { .. })
        ));
    }
}
