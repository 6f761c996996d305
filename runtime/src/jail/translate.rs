//! [`ContainerConfig`] → [`JailSpec`]: stockade's defaults applied to the merged settings.

use std::os::unix::ffi::OsStrExt;

use super::{Host, IpAccess, JailName, JailNameError, JailSpec, Network};
use crate::config::{ContainerConfig, SharingMode};
use crate::id::ContainerId;

/// Longest jail path the kernel takes (MAXPATHLEN - 1).
pub const MAX_PATH_BYTES: usize = 1023;

/// Why a valid configuration still cannot become a jail.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error(transparent)]
    Name(#[from] JailNameError),
    #[error(
        "root.path: {} is {len} bytes long; the kernel takes jail paths of at most 1023 bytes", stockade_quote::quote_os(.path)
    )]
    PathTooLong {
        path: std::path::PathBuf,
        len: usize,
    },
}

impl JailSpec {
    /// Translates a container's configuration into its jail.
    ///
    /// Defaults (docs/jail-mapping.md): `host=new`; SysV IPC `new` (the spec's default,
    /// where the kernel's is `disable`); with neither vnet nor any ip4/ip6 setting, both
    /// families `inherit` (the host network, as Podman expects); when only one family is
    /// configured the other is `disable`, as with jail(8); `enforce_statfs` 2, or 1 when the
    /// jail may mount; `persist` always.
    pub fn from_config(cfg: &ContainerConfig, id: &ContainerId) -> Result<JailSpec, JailError> {
        let s = &cfg.jail;
        let name = JailName::for_container(id, s.parent.as_ref())?;
        let len = cfg.root.as_os_str().as_bytes().len();
        if len > MAX_PATH_BYTES {
            return Err(JailError::PathTooLong {
                path: cfg.root.clone(),
                len,
            });
        }

        let host = match s.host.as_ref().map(|h| h.value) {
            Some(SharingMode::Inherit) => Host::Inherit,
            _ => Host::New {
                hostname: cfg.spec.hostname().clone().filter(|h| !h.is_empty()),
                domainname: cfg.spec.domainname().clone().filter(|d| !d.is_empty()),
            },
        };

        let network = if s.vnet.as_ref().is_some_and(|v| v.value == SharingMode::New) {
            Network::Vnet {
                interfaces: s
                    .vnet_interfaces
                    .as_ref()
                    .map(|v| v.value.clone())
                    .unwrap_or_default(),
            }
        } else {
            let any_ip =
                s.ip4.is_some() || s.ip6.is_some() || s.ip4_addr.is_some() || s.ip6_addr.is_some();
            if any_ip {
                Network::Shared {
                    ip4: access(
                        s.ip4.as_ref().map(|m| m.value),
                        s.ip4_addr.as_ref().map(|a| a.value.clone()),
                    ),
                    ip6: access(
                        s.ip6.as_ref().map(|m| m.value),
                        s.ip6_addr.as_ref().map(|a| a.value.clone()),
                    ),
                    interface: s.interface.as_ref().map(|i| i.value.clone()),
                }
            } else {
                Network::Shared {
                    ip4: IpAccess::Inherit,
                    ip6: IpAccess::Inherit,
                    interface: None,
                }
            }
        };

        let sysv = |m: &Option<crate::config::Setting<SharingMode>>| {
            m.as_ref().map_or(SharingMode::New, |m| m.value)
        };

        let mut allow: std::collections::BTreeMap<String, bool> = s
            .allow
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), v.value))
            .collect();
        for (fs, on) in &s.allow.mount_fs {
            allow.insert(format!("mount.{fs}"), on.value);
        }
        let may_mount = s.allow.mount_fs.values().any(|f| f.value)
            || s.allow.flags.get("mount").is_some_and(|m| m.value);
        if may_mount {
            // allow.mount.<fs> works only together with allow.mount itself.
            allow.entry("mount".into()).or_insert(true);
        }
        let enforce_statfs = s
            .enforce_statfs
            .as_ref()
            .map_or(if may_mount { 1 } else { 2 }, |e| e.value);

        Ok(JailSpec {
            name,
            parent: s.parent.as_ref().map(|p| p.value.clone()),
            path: cfg.root.clone(),
            host,
            network,
            sysvmsg: sysv(&s.sysvmsg),
            sysvsem: sysv(&s.sysvsem),
            sysvshm: sysv(&s.sysvshm),
            enforce_statfs,
            allow,
            children_max: None,
            persist: true,
        })
    }
}

/// One family's access from its mode and addresses (already checked to agree): addresses
/// mean `new`; an unset mode without addresses, beside a configured other family, is
/// `disable`.
fn access<A>(mode: Option<SharingMode>, addrs: Option<Vec<A>>) -> IpAccess<A> {
    match (mode, addrs) {
        (Some(SharingMode::Inherit), _) => IpAccess::Inherit,
        (Some(SharingMode::Disable), _) => IpAccess::Disable,
        (Some(SharingMode::New), a) => IpAccess::Restricted(a.unwrap_or_default()),
        (None, Some(a)) if !a.is_empty() => IpAccess::Restricted(a),
        (None, _) => IpAccess::Disable,
    }
}
