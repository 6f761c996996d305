//! A [`JailSpec`] as the kernel's `jail_set(2)` parameter list, and the exact bytes of each
//! value (reference/freebsd/jail-notes.md, "iovec encoding").

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;

use super::{Host, IpAccess, JailSpec, Network};
use crate::config::SharingMode;

/// A parameter value, typed as the kernel types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A native-endian 4-byte int.
    Int(i32),
    /// A NUL-terminated string.
    Str(String),
    /// A boolean: sent as the bare name, or its `no` form for false, with no value.
    Bool(bool),
    /// A `jailsys` mode, sent as a 4-byte int 0/1/2.
    JailSys(SharingMode),
    /// Packed `struct in_addr`s, network byte order.
    Ip4(Vec<Ipv4Addr>),
    /// Packed `struct in6_addr`s.
    Ip6(Vec<Ipv6Addr>),
}

/// One (name, value) pair of a `jail_set(2)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailParam {
    /// The parameter's name as jail.conf spells it (`allow.raw_sockets`, even when false).
    pub name: String,
    pub value: ParamValue,
}

impl ParamValue {
    /// The addresses of an `ip4.addr`/`ip6.addr` value in their usual text form, primary
    /// first; `None` for every other kind of value.
    pub fn addresses(&self) -> Option<Vec<String>> {
        match self {
            ParamValue::Ip4(a) => Some(a.iter().map(|x| x.to_string()).collect()),
            ParamValue::Ip6(a) => Some(a.iter().map(|x| x.to_string()).collect()),
            _ => None,
        }
    }
}

impl JailParam {
    pub fn new(name: impl Into<String>, value: ParamValue) -> Self {
        JailParam {
            name: name.into(),
            value,
        }
    }

    /// The name sent to the kernel: for a false boolean, `no` inserted after the last dot
    /// (`allow.noraw_sockets`, `nopersist`).
    pub fn kernel_name(&self) -> String {
        match self.value {
            ParamValue::Bool(false) => match self.name.rfind('.') {
                Some(i) => format!("{}no{}", &self.name[..=i], &self.name[i + 1..]),
                None => format!("no{}", self.name),
            },
            _ => self.name.clone(),
        }
    }

    /// The name as the kernel reads it from the iovec: NUL-terminated.
    pub fn name_bytes(&self) -> Vec<u8> {
        let mut b = self.kernel_name().into_bytes();
        b.push(0);
        b
    }

    /// The value's bytes; `None` for booleans, which libjail sends as (NULL, 0).
    pub fn value_bytes(&self) -> Option<Vec<u8>> {
        match &self.value {
            ParamValue::Int(i) => Some(i.to_ne_bytes().to_vec()),
            ParamValue::JailSys(m) => Some(m.jailsys().to_ne_bytes().to_vec()),
            ParamValue::Str(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                Some(b)
            }
            ParamValue::Bool(_) => None,
            ParamValue::Ip4(a) => Some(a.iter().flat_map(|ip| ip.octets()).collect()),
            ParamValue::Ip6(a) => Some(a.iter().flat_map(|ip| ip.octets()).collect()),
        }
    }
}

impl JailSpec {
    /// The parameters for `jail_set(JAIL_CREATE)`, in a fixed order.
    pub fn params(&self) -> Vec<JailParam> {
        use ParamValue::*;
        let mut p = vec![
            JailParam::new("name", Str(self.name.as_str().to_string())),
            JailParam::new(
                "path",
                Str(String::from_utf8_lossy(self.path.as_os_str().as_bytes()).into_owned()),
            ),
            JailParam::new("persist", Bool(self.persist)),
        ];
        match &self.host {
            Host::Inherit => p.push(JailParam::new("host", JailSys(SharingMode::Inherit))),
            Host::New {
                hostname,
                domainname,
            } => {
                p.push(JailParam::new("host", JailSys(SharingMode::New)));
                if let Some(h) = hostname {
                    p.push(JailParam::new("host.hostname", Str(h.clone())));
                }
                if let Some(d) = domainname {
                    p.push(JailParam::new("host.domainname", Str(d.clone())));
                }
            }
        }
        match &self.network {
            Network::Vnet { .. } => p.push(JailParam::new("vnet", JailSys(SharingMode::New))),
            Network::Shared { ip4, ip6, .. } => {
                push_ip(&mut p, "ip4", ip4, |a| Ip4(a.to_vec()));
                push_ip(&mut p, "ip6", ip6, |a| Ip6(a.to_vec()));
            }
        }
        p.push(JailParam::new("sysvmsg", JailSys(self.sysvmsg)));
        p.push(JailParam::new("sysvsem", JailSys(self.sysvsem)));
        p.push(JailParam::new("sysvshm", JailSys(self.sysvshm)));
        p.push(JailParam::new(
            "enforce_statfs",
            Int(i32::from(self.enforce_statfs)),
        ));
        // allow.mount before allow.mount.<fs>: BTreeMap order gives exactly that.
        for (k, v) in &self.allow {
            p.push(JailParam::new(format!("allow.{k}"), Bool(*v)));
        }
        if let Some(max) = self.children_max {
            p.push(JailParam::new(
                "children.max",
                Int(i32::try_from(max).unwrap_or(i32::MAX)),
            ));
        }
        p
    }
}

fn push_ip<A>(
    p: &mut Vec<JailParam>,
    family: &str,
    access: &IpAccess<A>,
    addrs: impl Fn(&[A]) -> ParamValue,
) {
    match access {
        IpAccess::Disable => p.push(JailParam::new(
            family,
            ParamValue::JailSys(SharingMode::Disable),
        )),
        IpAccess::Inherit => p.push(JailParam::new(
            family,
            ParamValue::JailSys(SharingMode::Inherit),
        )),
        IpAccess::Restricted(list) => {
            p.push(JailParam::new(
                family,
                ParamValue::JailSys(SharingMode::New),
            ));
            if !list.is_empty() {
                p.push(JailParam::new(format!("{family}.addr"), addrs(list)));
            }
        }
    }
}
