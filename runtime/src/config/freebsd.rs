//! The runtime-spec 1.3.0 `freebsd` section: `devices` and `jail`. `oci-spec` has no types
//! for it (and drops it), so it is read here from the raw JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use super::addresses::{parse_ip4_list, parse_ip6_list};
use super::json;
use super::ConfigError;

/// A jail sharing mode (`jailsys` in the kernel): `disable`, `new` or `inherit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SharingMode {
    Disable,
    New,
    Inherit,
}

impl SharingMode {
    /// The spelling used in config.json, jail.conf and annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            SharingMode::Disable => "disable",
            SharingMode::New => "new",
            SharingMode::Inherit => "inherit",
        }
    }

    /// The kernel's `jailsys` value (JAIL_SYS_DISABLE 0, JAIL_SYS_NEW 1, JAIL_SYS_INHERIT 2).
    pub fn jailsys(self) -> i32 {
        match self {
            SharingMode::Disable => 0,
            SharingMode::New => 1,
            SharingMode::Inherit => 2,
        }
    }

    /// Parses a mode; `allow_disable` is false for `host` and `vnet`, which the kernel
    /// rejects with `disable`.
    pub(crate) fn parse(path: &str, value: &str, allow_disable: bool) -> Result<Self, ConfigError> {
        match value {
            "new" => Ok(SharingMode::New),
            "inherit" => Ok(SharingMode::Inherit),
            "disable" if allow_disable => Ok(SharingMode::Disable),
            _ => Err(ConfigError::invalid(
                path,
                value,
                if allow_disable {
                    "\"disable\", \"new\" or \"inherit\""
                } else {
                    "\"new\" or \"inherit\""
                },
            )),
        }
    }
}

impl std::fmt::Display for SharingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configured value together with the JSON path it came from, so that a conflict found
/// after merging the section, the annotations and `linux.namespaces` still names its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub from: String,
}

impl<T> Setting<T> {
    pub(crate) fn new(value: T, from: impl Into<String>) -> Self {
        Setting {
            value,
            from: from.into(),
        }
    }
}

/// File systems a jail may be allowed to mount itself (`allow.mount.<fs>`): those the
/// kernel marks VFCF_JAIL.
pub const JAIL_MOUNTABLE_FS: &[&str] = &[
    "devfs",
    "fdescfs",
    "fusefs",
    "lindebugfs",
    "linprocfs",
    "linsysfs",
    "nullfs",
    "p9fs",
    "procfs",
    "tmpfs",
    "zfs",
];

/// Every `allow.<name>` boolean the kernel has (besides `allow.mount.<fs>`), as accepted in
/// `org.freebsd.jail.allow.<name>` annotations. `sysvipc` is left out on purpose: the
/// explicit `sysvmsg`/`sysvsem`/`sysvshm` modes replace it.
pub const ALLOW_FLAGS: &[&str] = &[
    "adjtime",
    "chflags",
    "extattr",
    "mlock",
    "mount",
    "nfsd",
    "quotas",
    "raw_sockets",
    "read_msgbuf",
    "reserved_ports",
    "routing",
    "set_hostname",
    "setaudit",
    "settime",
    "socket_af",
    "suser",
    "unprivileged_parent_tampering",
    "unprivileged_proc_debug",
    "vmm",
    "vmm_ppt",
];

/// The `allow` settings: plain flags by kernel name (without `allow.`), plus the file
/// systems for `allow.mount.<fs>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowSettings {
    pub flags: BTreeMap<String, Setting<bool>>,
    pub mount_fs: BTreeMap<String, Setting<bool>>,
}

/// The jail settings of one source (the section, the annotations or `linux.namespaces`);
/// `None` means "this source says nothing". After merging, the same type holds the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JailSettings {
    pub parent: Option<Setting<String>>,
    pub host: Option<Setting<SharingMode>>,
    pub ip4: Option<Setting<SharingMode>>,
    pub ip4_addr: Option<Setting<Vec<Ipv4Addr>>>,
    pub ip6: Option<Setting<SharingMode>>,
    pub ip6_addr: Option<Setting<Vec<Ipv6Addr>>>,
    pub vnet: Option<Setting<SharingMode>>,
    pub interface: Option<Setting<String>>,
    pub vnet_interfaces: Option<Setting<Vec<String>>>,
    pub sysvmsg: Option<Setting<SharingMode>>,
    pub sysvsem: Option<Setting<SharingMode>>,
    pub sysvshm: Option<Setting<SharingMode>>,
    pub enforce_statfs: Option<Setting<u8>>,
    pub allow: AllowSettings,
}

impl JailSettings {
    /// Fills every field this source leaves unset from `lower`; `self` wins where both say
    /// something. Allow flags merge per flag.
    pub fn or(mut self, lower: JailSettings) -> JailSettings {
        self.parent = self.parent.or(lower.parent);
        self.host = self.host.or(lower.host);
        self.ip4 = self.ip4.or(lower.ip4);
        self.ip4_addr = self.ip4_addr.or(lower.ip4_addr);
        self.ip6 = self.ip6.or(lower.ip6);
        self.ip6_addr = self.ip6_addr.or(lower.ip6_addr);
        self.vnet = self.vnet.or(lower.vnet);
        self.interface = self.interface.or(lower.interface);
        self.vnet_interfaces = self.vnet_interfaces.or(lower.vnet_interfaces);
        self.sysvmsg = self.sysvmsg.or(lower.sysvmsg);
        self.sysvsem = self.sysvsem.or(lower.sysvsem);
        self.sysvshm = self.sysvshm.or(lower.sysvshm);
        self.enforce_statfs = self.enforce_statfs.or(lower.enforce_statfs);
        for (k, v) in lower.allow.flags {
            self.allow.flags.entry(k).or_insert(v);
        }
        for (k, v) in lower.allow.mount_fs {
            self.allow.mount_fs.entry(k).or_insert(v);
        }
        self
    }
}

/// A `freebsd.devices` entry: a devfs path (relative to the container's `/dev`) to unhide,
/// with an optional mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Path below `/dev`, without a leading `/dev/`, e.g. `pf` or `bpf*`.
    pub path: String,
    /// Permission bits, 0..=0o777.
    pub mode: Option<u32>,
}

/// The parsed `freebsd` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreebsdSection {
    pub devices: Vec<DeviceRule>,
    pub jail: JailSettings,
}

/// Reads `freebsd` from the document root; absent or null means an empty section.
pub fn parse_section(root: &Map<String, Value>) -> Result<FreebsdSection, ConfigError> {
    let Some(section) = json::object(root, "freebsd", "freebsd")? else {
        return Ok(FreebsdSection::default());
    };
    let devices = json::objects(section, "devices", "freebsd.devices")?
        .into_iter()
        .enumerate()
        .map(|(i, d)| parse_device(d, &format!("freebsd.devices[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let jail = match json::object(section, "jail", "freebsd.jail")? {
        Some(j) => parse_jail(j)?,
        None => JailSettings::default(),
    };
    Ok(FreebsdSection { devices, jail })
}

fn parse_device(d: &Map<String, Value>, path: &str) -> Result<DeviceRule, ConfigError> {
    let p = format!("{path}.path");
    let raw = json::string(d, "path", &p)?.ok_or_else(|| ConfigError::Missing {
        path: p.clone(),
        expected: "a device path below /dev, such as \"pf\" or \"/dev/bpf*\"".into(),
    })?;
    let rel = raw.strip_prefix("/dev/").unwrap_or(raw);
    let bad = rel.is_empty()
        || rel.starts_with('/')
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(ConfigError::invalid(
            p,
            raw,
            "a device path below /dev without empty, \".\" or \"..\" components, such as \"pf\" or \"/dev/bpf*\"",
        ));
    }
    let mode = json::uint(
        d,
        "mode",
        &format!("{path}.mode"),
        0o777,
        "a file mode from 0 to 511 (decimal)",
    )?
    .map(|m| m as u32);
    Ok(DeviceRule {
        path: rel.to_string(),
        mode,
    })
}

fn mode(
    j: &Map<String, Value>,
    key: &str,
    allow_disable: bool,
) -> Result<Option<Setting<SharingMode>>, ConfigError> {
    let path = format!("freebsd.jail.{key}");
    json::string(j, key, &path)?
        .map(|s| SharingMode::parse(&path, s, allow_disable).map(|m| Setting::new(m, path.clone())))
        .transpose()
}

fn parse_jail(j: &Map<String, Value>) -> Result<JailSettings, ConfigError> {
    let mut s = JailSettings {
        parent: json::string(j, "parent", "freebsd.jail.parent")?
            .map(|p| Setting::new(p.to_string(), "freebsd.jail.parent")),
        host: mode(j, "host", false)?,
        ip4: mode(j, "ip4", true)?,
        ip6: mode(j, "ip6", true)?,
        vnet: mode(j, "vnet", false)?,
        sysvmsg: mode(j, "sysvmsg", true)?,
        sysvsem: mode(j, "sysvsem", true)?,
        sysvshm: mode(j, "sysvshm", true)?,
        interface: json::string(j, "interface", "freebsd.jail.interface")?
            .map(|i| Setting::new(i.to_string(), "freebsd.jail.interface")),
        vnet_interfaces: json::strings(j, "vnetInterfaces", "freebsd.jail.vnetInterfaces")?
            .map(|v| Setting::new(v, "freebsd.jail.vnetInterfaces")),
        enforce_statfs: json::uint(
            j,
            "enforceStatfs",
            "freebsd.jail.enforceStatfs",
            2,
            "0, 1 or 2",
        )?
        .map(|v| Setting::new(v as u8, "freebsd.jail.enforceStatfs")),
        ..JailSettings::default()
    };
    if let Some(list) = json::strings(j, "ip4Addr", "freebsd.jail.ip4Addr")? {
        let addrs = parse_ip4_list(&list, "freebsd.jail.ip4Addr")?;
        s.ip4_addr = Some(Setting::new(addrs, "freebsd.jail.ip4Addr"));
    }
    if let Some(list) = json::strings(j, "ip6Addr", "freebsd.jail.ip6Addr")? {
        let addrs = parse_ip6_list(&list, "freebsd.jail.ip6Addr")?;
        s.ip6_addr = Some(Setting::new(addrs, "freebsd.jail.ip6Addr"));
    }
    if let Some(allow) = json::object(j, "allow", "freebsd.jail.allow")? {
        s.allow = parse_allow(allow)?;
    }
    Ok(s)
}

/// The spec's camelCase allow names and the kernel's names for them.
const SECTION_ALLOW: &[(&str, &str)] = &[
    ("setHostname", "set_hostname"),
    ("rawSockets", "raw_sockets"),
    ("chflags", "chflags"),
    ("quotas", "quotas"),
    ("socketAf", "socket_af"),
    ("mlock", "mlock"),
    ("reservedPorts", "reserved_ports"),
    ("suser", "suser"),
];

fn parse_allow(a: &Map<String, Value>) -> Result<AllowSettings, ConfigError> {
    let mut out = AllowSettings::default();
    for (spec_name, kernel_name) in SECTION_ALLOW {
        let path = format!("freebsd.jail.allow.{spec_name}");
        if let Some(b) = json::boolean(a, spec_name, &path)? {
            out.flags
                .insert((*kernel_name).to_string(), Setting::new(b, path));
        }
    }
    if let Some(list) = json::strings(a, "mount", "freebsd.jail.allow.mount")? {
        let mut seen = BTreeSet::new();
        for (i, fs) in list.iter().enumerate() {
            let path = format!("freebsd.jail.allow.mount[{i}]");
            if !JAIL_MOUNTABLE_FS.contains(&fs.as_str()) {
                return Err(ConfigError::invalid(
                    path,
                    fs,
                    format!(
                        "a file system jails may mount: {}",
                        JAIL_MOUNTABLE_FS.join(", ")
                    ),
                ));
            }
            if !seen.insert(fs.clone()) {
                return Err(ConfigError::invalid(
                    path,
                    fs,
                    "each file system listed once",
                ));
            }
            out.mount_fs.insert(fs.clone(), Setting::new(true, path));
        }
        // An explicit (even empty) list decides allow.mount itself.
        out.flags.insert(
            "mount".into(),
            Setting::new(!list.is_empty(), "freebsd.jail.allow.mount"),
        );
    }
    Ok(out)
}
