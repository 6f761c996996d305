//! Network configuration lists (CNI "conflist" JSON), one file per network in
//! `<storage root>/networks/NAME.conflist`, and the default network `stockade`, made on
//! first use: bridge `stockade0`, host-local addresses from 10.89.0.0/24, portmap for
//! published ports, and the firewall plugin isolating each bridge from the others.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use stockade_quote::quote;

use crate::lock::NetworksLock;
use crate::{io, NetError};

/// Where networks live below the storage root.
pub const NETWORKS_DIR: &str = "networks";
/// The network `run --image` joins by default.
pub const DEFAULT_NETWORK: &str = "stockade";
/// The default network's bridge.
pub const DEFAULT_BRIDGE: &str = "stockade0";
/// The default network's addresses.
pub const DEFAULT_SUBNET: Subnet = Subnet {
    addr: Ipv4Addr::new(10, 89, 0, 0),
    prefix: 24,
};
/// The CNI version stockade speaks (Debian 12's plugins, 1.1, speak it).
pub const CNI_VERSION: &str = "1.0.0";
/// Where CNI plugins are installed: Debian's package, the upstream tarball's default,
/// Fedora's, and FreeBSD's port.
pub const PLUGIN_DIRS: [&str; 4] = [
    "/usr/lib/cni",
    "/opt/cni/bin",
    "/usr/libexec/cni",
    "/usr/local/libexec/cni",
];

/// An IPv4 subnet `A.B.C.D/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The first host address, the bridge's (gateway).
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |why: &'static str| NetError::BadSubnet {
            value: s.to_string(),
            why,
        };
        let (a, p) = s.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("bad prefix length"))?;
        // A bridge, a gateway and at least one container: /30 at the smallest.
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be from 8 to 30"));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(net)
    }
}

/// A network: its name and its configuration list.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    /// The conflist, as stored and as handed to the plugins.
    pub list: Value,
}

impl Network {
    /// The plugin configurations, in order.
    pub fn plugins(&self) -> &[Value] {
        self.list["plugins"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The subnets of the network's host-local ranges.
    pub fn subnets(&self) -> Vec<Subnet> {
        let mut out = Vec::new();
        for p in self.plugins() {
            for range in p["ipam"]["ranges"].as_array().into_iter().flatten() {
                for r in range.as_array().into_iter().flatten() {
                    if let Some(s) = r["subnet"].as_str().and_then(|s| s.parse().ok()) {
                        out.push(s);
                    }
                }
            }
            if let Some(s) = p["ipam"]["subnet"].as_str().and_then(|s| s.parse().ok()) {
                out.push(s);
            }
        }
        out
    }

    /// The bridge the network's bridge plugin makes, when it has one.
    pub fn bridge(&self) -> Option<&str> {
        self.plugins()
            .iter()
            .find(|p| p["type"] == "bridge")
            .and_then(|p| p["bridge"].as_str())
    }
}

/// Checks a network name: what `network create` accepts, and the reserved `none`/`host`.
pub fn check_name(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(NetError::BadName {
            name: name.to_string(),
        });
    }
    if matches!(name, "none" | "host") {
        return Err(NetError::Reserved {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The bridge of network `name`: `stockade0` for the default, else `stk-` and eight hex
/// digits of the name's hash (interface names have at most 15 bytes).
pub fn bridge_name(name: &str) -> String {
    if name == DEFAULT_NETWORK {
        return DEFAULT_BRIDGE.to_string();
    }
    let h = Sha256::digest(name.as_bytes());
    format!("stk-{}", &hex::encode(h)[..8])
}

/// The directories of [`PLUGIN_DIRS`] that exist here.
pub fn plugin_dirs() -> Vec<PathBuf> {
    PLUGIN_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .collect()
}

/// The configuration list of a new network: bridge + host-local, portmap, and the
/// firewall plugin (isolating the bridge from other bridges) when it is installed.
pub fn new_list(name: &str, subnet: Subnet, plugin_dirs: &[PathBuf]) -> Value {
    let mut plugins = vec![
        json!({
            "type": "bridge",
            "bridge": bridge_name(name),
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet.to_string(), "gateway": subnet.gateway().to_string()}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        }),
        json!({"type": "portmap", "capabilities": {"portMappings": true}}),
    ];
    if plugin_dirs.iter().any(|d| d.join("firewall").is_file()) {
        plugins.push(json!({"type": "firewall", "ingressPolicy": "same-bridge"}));
    }
    json!({"cniVersion": CNI_VERSION, "name": name, "plugins": plugins})
}

/// The networks of one storage root.
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    /// The networks kept under `storage_root`.
    pub fn new(storage_root: &Path) -> Networks {
        Networks {
            dir: storage_root.join(NETWORKS_DIR),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.conflist"))
    }

    /// The directory the conflists are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Network `name`; the default network is made when missing.
    pub fn get(&self, name: &str) -> Result<Network, NetError> {
        match self.get_existing(name) {
            Err(NetError::NoNetwork { .. }) if name == DEFAULT_NETWORK => {
                match self.create(name, Some(DEFAULT_SUBNET)) {
                    // Another run made it first: theirs is read like any other.
                    Err(NetError::NetworkExists { .. }) => self.get_existing(name),
                    made => made,
                }
            }
            got => got,
        }
    }

    /// Every network, sorted by name (the default one only once it was made).
    pub fn list(&self) -> Result<Vec<Network>, NetError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("reading", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for ent in entries {
            let ent = ent.map_err(io("reading", &self.dir))?;
            let file = ent.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".conflist") else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let path = ent.path();
            let bytes = fs::read(&path).map_err(io("reading", &path))?;
            out.push(parse(name, &path, &bytes)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Makes network `name` with `subnet`, or the first free 10.89.N.0/24 that no other
    /// network here and no host route uses.
    /// The subnet is picked and the list written under the networks lock, so two
    /// concurrent creates never pick the same subnet.
    pub fn create(&self, name: &str, subnet: Option<Subnet>) -> Result<Network, NetError> {
        check_name(name)?;
        let _lock = NetworksLock::exclusive(&self.dir)?;
        let path = self.path(name);
        if path.exists() {
            return Err(NetError::NetworkExists {
                name: name.to_string(),
            });
        }
        let taken: Vec<Subnet> = self.list()?.iter().flat_map(Network::subnets).collect();
        let subnet = match subnet {
            Some(s) => {
                if let Some(t) = taken.iter().find(|t| t.overlaps(s)) {
                    return Err(NetError::SubnetTaken {
                        subnet: s.to_string(),
                        by: t.to_string(),
                    });
                }
                s
            }
            None => free_subnet(&taken, &host_routes())?,
        };
        let list = new_list(name, subnet, &plugin_dirs());
        let bytes = serde_json::to_vec_pretty(&list).unwrap_or_default();
        crate::files::write_atomic(&path, &bytes).map_err(io("writing", &path))?;
        Ok(Network {
            name: name.to_string(),
            list,
        })
    }

    /// Network `name`, which must exist (the default one too: it is not made here).
    pub fn get_existing(&self, name: &str) -> Result<Network, NetError> {
        check_name(name)?;
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => parse(name, &path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NetError::NoNetwork {
                name: name.to_string(),
            }),
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    /// Removes network `name`'s configuration (the caller holds the lock and checked it is
    /// unused: [`crate::remove::remove_network`]).
    pub(crate) fn remove_list(&self, name: &str) -> Result<(), NetError> {
        check_name(name)?;
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NetError::NoNetwork {
                name: name.to_string(),
            }),
            Err(e) => Err(io("removing", &path)(e)),
        }
    }
}

fn parse(name: &str, path: &Path, bytes: &[u8]) -> Result<Network, NetError> {
    let list: Value = serde_json::from_slice(bytes).map_err(|e| NetError::BadConflist {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    if list["name"] != name || !list["plugins"].is_array() {
        return Err(NetError::BadConflist {
            path: path.to_path_buf(),
            why: format!("expected \"name\": {} and a \"plugins\" array", quote(name)),
        });
    }
    Ok(Network {
        name: name.to_string(),
        list,
    })
}

/// The first 10.89.N.0/24 (N from 1) that overlaps nothing in `taken` or `routes`.
fn free_subnet(taken: &[Subnet], routes: &[Subnet]) -> Result<Subnet, NetError> {
    (1..=255u8)
        .map(|n| Subnet {
            addr: Ipv4Addr::new(10, 89, n, 0),
            prefix: 24,
        })
        .find(|s| {
            !taken.iter().any(|t| t.overlaps(*s))
                && !routes.iter().any(|r| r.prefix > 0 && r.overlaps(*s))
        })
        .ok_or(NetError::NoFreeSubnet)
}

/// The host's IPv4 routes (Linux: /proc/net/route), so that a new network does not take
/// a subnet the host already reaches; elsewhere none are known.
fn host_routes() -> Vec<Subnet> {
    let Ok(text) = fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the network-order bytes as one native word.
            Some(Subnet {
                addr: Ipv4Addr::from(dst.to_ne_bytes()),
                prefix: mask.count_ones() as u8,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_overlap() {
        let a: Subnet = "10.89.0.0/24".parse().unwrap();
        let b: Subnet = "10.89.0.0/16".parse().unwrap();
        let c: Subnet = "10.89.1.0/24".parse().unwrap();
        assert!(a.overlaps(b) && b.overlaps(c) && !a.overlaps(c));
        assert_eq!(a.gateway().to_string(), "10.89.0.1");
        for bad in [
            "10.89.0.1/24",
            "10.89.0.0",
            "10.89.0.0/31",
            "fd00::/64",
            "x/24",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        for good in ["stockade", "a", "back-end_2.x"] {
            check_name(good).unwrap();
        }
        for bad in ["", "-a", "a/b", "none", "host", "../x", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(bridge_name("stockade"), "stockade0");
        let b = bridge_name("backend");
        assert!(b.starts_with("stk-") && b.len() <= 15);
        assert_ne!(b, bridge_name("backend2"));
    }

    #[test]
    fn default_network_is_made_on_first_use_and_others_get_free_subnets() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::new(tmp.path());
        assert!(nets.list().unwrap().is_empty());
        let d = nets.get(DEFAULT_NETWORK).unwrap();
        assert_eq!(d.bridge(), Some("stockade0"));
        assert_eq!(d.subnets(), vec![DEFAULT_SUBNET]);
        assert_eq!(d.plugins()[1]["type"], "portmap");
        assert!(matches!(nets.get("other"), Err(NetError::NoNetwork { .. })));
        let taken = nets
            .list()
            .unwrap()
            .iter()
            .flat_map(Network::subnets)
            .collect::<Vec<_>>();
        let routes = ["10.89.1.0/24".parse().unwrap()];
        assert_eq!(
            free_subnet(&taken, &routes).unwrap().to_string(),
            "10.89.2.0/24"
        );
        let s = "10.90.0.0/24".parse().unwrap();
        let o = nets.create("other", Some(s)).unwrap();
        assert_eq!(nets.get("other").unwrap().subnets(), vec![s]);
        assert_ne!(o.bridge(), d.bridge());
        assert!(matches!(
            nets.create("third", Some("10.90.0.0/16".parse().unwrap())),
            Err(NetError::SubnetTaken { .. })
        ));
        assert!(matches!(
            nets.create("other", None),
            Err(NetError::NetworkExists { .. })
        ));
        let names: Vec<_> = nets.list().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["other", "stockade"]);
        nets.remove_list("other").unwrap();
        assert!(matches!(
            nets.remove_list("other"),
            Err(NetError::NoNetwork { .. })
        ));
    }

    /// Fails without the lock: the creates read the same taken subnets and pick the same.
    #[test]
    fn concurrent_creates_pick_different_subnets() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let made: Vec<Subnet> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let root = root.clone();
                    s.spawn(move || {
                        let n = Networks::new(&root).create(&format!("n{i}"), None).unwrap();
                        n.subnets()[0]
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, a) in made.iter().enumerate() {
            for b in &made[i + 1..] {
                assert!(!a.overlaps(*b), "two networks got {a}: {made:?}");
            }
        }
        assert_eq!(Networks::new(&root).list().unwrap().len(), 8);
    }
}
