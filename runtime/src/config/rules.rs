//! Cross-field rules: what the kernel (or jail(8)) would refuse, refused up front with the
//! paths of both settings involved. See reference/freebsd/jail-notes.md.

use super::freebsd::{JailSettings, Setting, SharingMode};
use super::ConfigError;

/// Longest full jail name, hostname and domain name the kernel takes (MAXHOSTNAMELEN - 1).
pub const MAX_NAME_BYTES: usize = 255;
/// IFNAMSIZ - 1.
const MAX_IFNAME_BYTES: usize = 15;

fn is(mode: &Option<Setting<SharingMode>>, want: SharingMode) -> bool {
    mode.as_ref().is_some_and(|m| m.value == want)
}

fn has_addresses<T>(a: &Option<Setting<Vec<T>>>) -> bool {
    a.as_ref().is_some_and(|a| !a.value.is_empty())
}

/// Checks the merged jail settings together with `hostname`/`domainname`.
pub fn check(
    s: &JailSettings,
    hostname: Option<&str>,
    domainname: Option<&str>,
) -> Result<(), ConfigError> {
    for (path, value) in [("hostname", hostname), ("domainname", domainname)] {
        if let Some(v) = value {
            if v.len() > MAX_NAME_BYTES || v.contains('\0') {
                return Err(ConfigError::invalid(
                    path,
                    v,
                    "at most 255 bytes without NUL characters",
                ));
            }
            if let Some(host) = s.host.as_ref().filter(|h| h.value == SharingMode::Inherit) {
                return Err(ConfigError::conflict(
                    path,
                    &host.from,
                    "a jail that inherits the host's hostname (host=inherit) cannot set its own; use host \"new\" (on Linux configs: add a uts namespace)",
                ));
            }
        }
    }

    if let Some(parent) = &s.parent {
        let p = &parent.value;
        let bad = p.is_empty()
            || p.len() >= MAX_NAME_BYTES
            || p.contains('\0')
            || p.split('.').any(str::is_empty);
        if bad {
            return Err(ConfigError::invalid(
                &parent.from,
                p,
                "the name of an existing jail (non-empty dot-separated components, under 255 bytes)",
            ));
        }
    }

    if is(&s.vnet, SharingMode::New) {
        let vnet = &s.vnet.as_ref().map(|v| v.from.clone()).unwrap_or_default();
        const NO_IP: &str =
            "vnet jails cannot have IP address restrictions (they have their own network stack)";
        for (addr_from, has) in [
            (
                s.ip4_addr.as_ref().map(|a| &a.from),
                has_addresses(&s.ip4_addr),
            ),
            (
                s.ip6_addr.as_ref().map(|a| &a.from),
                has_addresses(&s.ip6_addr),
            ),
        ] {
            if let (Some(from), true) = (addr_from, has) {
                return Err(ConfigError::conflict(from, vnet, NO_IP));
            }
        }
        for mode in [&s.ip4, &s.ip6].into_iter().flatten() {
            if mode.value != SharingMode::Inherit {
                return Err(ConfigError::conflict(
                    &mode.from,
                    vnet,
                    format!("{NO_IP}; leave ip4/ip6 unset or \"inherit\""),
                ));
            }
        }
        if let Some(iface) = &s.interface {
            return Err(ConfigError::conflict(
                &iface.from,
                vnet,
                "interface adds the jail's addresses to a host interface, which a vnet jail does not use; move interfaces in with vnetInterfaces",
            ));
        }
    } else if let Some(ifs) = s.vnet_interfaces.as_ref().filter(|v| !v.value.is_empty()) {
        return Err(ConfigError::conflict(
            &ifs.from,
            "freebsd.jail.vnet",
            "interfaces can only be moved into a jail with its own network stack; set vnet to \"new\"",
        ));
    }

    let addr_from = |a: Option<&String>, has: bool| if has { a.cloned() } else { None };
    for (mode, addrs_from, name) in [
        (
            &s.ip4,
            addr_from(
                s.ip4_addr.as_ref().map(|a| &a.from),
                has_addresses(&s.ip4_addr),
            ),
            "ip4",
        ),
        (
            &s.ip6,
            addr_from(
                s.ip6_addr.as_ref().map(|a| &a.from),
                has_addresses(&s.ip6_addr),
            ),
            "ip6",
        ),
    ] {
        if let (Some(mode), Some(from)) = (mode, addrs_from) {
            if mode.value != SharingMode::New {
                return Err(ConfigError::conflict(
                    from,
                    &mode.from,
                    format!(
                        "addresses restrict the jail to them, which needs {name} \"new\", not {:?}",
                        mode.value.as_str()
                    ),
                ));
            }
        }
    }

    if let Some(iface) = &s.interface {
        check_ifname(&iface.value, &iface.from)?;
        if !has_addresses(&s.ip4_addr) && !has_addresses(&s.ip6_addr) {
            return Err(ConfigError::conflict(
                &iface.from,
                "freebsd.jail.ip4Addr/ip6Addr",
                "interface names where the jail's addresses are added, but no addresses are configured",
            ));
        }
    }
    if let Some(ifs) = &s.vnet_interfaces {
        for (i, name) in ifs.value.iter().enumerate() {
            check_ifname(name, &format!("{}[{i}]", ifs.from))?;
        }
    }

    let mount = s.allow.flags.get("mount");
    if let Some(fs) = s.allow.mount_fs.values().find(|f| f.value) {
        if let Some(m) = mount.filter(|m| !m.value) {
            return Err(ConfigError::conflict(
                &fs.from,
                &m.from,
                "allow.mount.<fs> has no effect while allow.mount is off",
            ));
        }
    }
    let mount_on = mount.is_some_and(|m| m.value) || s.allow.mount_fs.values().any(|f| f.value);
    if let Some(es) = s.enforce_statfs.as_ref().filter(|e| e.value == 2) {
        if mount_on {
            let from = mount
                .map(|m| m.from.clone())
                .unwrap_or_else(|| "freebsd.jail.allow.mount".into());
            return Err(ConfigError::conflict(
                from,
                &es.from,
                "a jail may only mount with enforce_statfs below 2; set enforceStatfs to 0 or 1",
            ));
        }
    }
    if let Some(nfsd) = s.allow.flags.get("nfsd").filter(|f| f.value) {
        if !is(&s.vnet, SharingMode::New) {
            return Err(ConfigError::conflict(
                &nfsd.from,
                "freebsd.jail.vnet",
                "allow.nfsd needs a vnet jail (vnet \"new\")",
            ));
        }
        if let Some(es) = s.enforce_statfs.as_ref().filter(|e| e.value == 0) {
            return Err(ConfigError::conflict(
                &nfsd.from,
                &es.from,
                "allow.nfsd needs enforce_statfs 1 or 2",
            ));
        }
    }
    Ok(())
}

fn check_ifname(name: &str, path: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            path,
            name,
            "a network interface name of 1 to 15 letters, digits, '_', '-' or '.', such as \"em0\"",
        ))
    }
}
