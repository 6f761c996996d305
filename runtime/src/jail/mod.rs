//! The jail model: [`JailSpec`], the one description of a container's jail that both
//! platform backends apply, the translation from a [`ContainerConfig`], and the encoding into
//! the kernel's parameter list.

mod conf;
mod name;
mod params;
mod translate;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

pub use conf::to_jail_conf;
pub use name::{JailName, JailNameError};
pub use params::{JailParam, ParamValue};
pub use translate::JailError;

use crate::config::SharingMode;

/// The host identity of the jail (`host` and `host.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `host=inherit`: the parent's hostname and domain name.
    Inherit,
    /// `host=new`, with the hostname and domain name to set (empty when `None`).
    New {
        hostname: Option<String>,
        domainname: Option<String>,
    },
}

/// What one address family may use in a jail without its own network stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpAccess<A> {
    /// `ipN=disable`: the family is unavailable.
    Disable,
    /// `ipN=inherit`: every address of the parent.
    Inherit,
    /// `ipN=new` with `ipN.addr`: only these addresses, the first being the primary.
    Restricted(Vec<A>),
}

/// The jail's networking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// `vnet=new`: its own network stack, with these host interfaces moved into it.
    Vnet { interfaces: Vec<String> },
    /// The host's stack, restricted per family; `interface` is where restricted addresses
    /// are added as aliases on create (and removed on delete).
    Shared {
        ip4: IpAccess<Ipv4Addr>,
        ip6: IpAccess<Ipv6Addr>,
        interface: Option<String>,
    },
}

/// A FreeBSD jail, fully decided: every field has its final value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailSpec {
    /// Full (dotted, when nested) jail name.
    pub name: JailName,
    /// The parent jail's name, when the container is nested.
    pub parent: Option<String>,
    /// Absolute root directory.
    pub path: PathBuf,
    pub host: Host,
    pub network: Network,
    pub sysvmsg: SharingMode,
    pub sysvsem: SharingMode,
    pub sysvshm: SharingMode,
    /// 0, 1 or 2.
    pub enforce_statfs: u8,
    /// `allow.<key>` flags by kernel name without the `allow.` prefix (`raw_sockets`,
    /// `mount`, `mount.tmpfs`); only those configured, the rest keep the kernel's defaults.
    pub allow: BTreeMap<String, bool>,
    /// `children.max`, when the jail may itself create jails.
    pub children_max: Option<u32>,
    /// Always true: the jail exists between create and start with no process in it.
    pub persist: bool,
}

#[cfg(test)]
pub(crate) mod kernel_table;
#[cfg(test)]
mod tests;
