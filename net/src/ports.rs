//! `-p/--publish [IP:]HOST:CONTAINER[/tcp|udp]`, parsed once into the CNI portmap
//! plugin's `portMappings` entries.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use stockade_quote::quote;

/// The transport of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// One published port, in the shape portmap's `runtimeConfig.portMappings` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// The host address to listen on; empty means every address (portmap's convention).
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// Why a `--publish` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("--publish {value}: {why} (expected [IP:]HOST:CONTAINER[/tcp|udp])", value = quote(value))]
pub struct BadPublish {
    pub value: String,
    pub why: &'static str,
}

impl FromStr for PortMapping {
    type Err = BadPublish;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bad = |why| BadPublish {
            value: value.to_string(),
            why,
        };
        let (ports, protocol) = match value.rsplit_once('/') {
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (value, Protocol::Tcp),
        };
        // The container port is after the last colon; an IPv6 host address is bracketed.
        let (front, container) = ports
            .rsplit_once(':')
            .ok_or_else(|| bad("no container port"))?;
        let (ip, host) = match front.rsplit_once(':') {
            Some((ip, host)) => (Some(ip), host),
            None => (None, front),
        };
        let port = |s: &str| match s.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad("a port is a number from 1 to 65535")),
            Ok(p) => Ok(p),
        };
        let host_ip = match ip {
            None | Some("") => String::new(),
            Some(ip) => {
                let bare = ip.trim_start_matches('[').trim_end_matches(']');
                bare.parse::<IpAddr>()
                    .map_err(|_| bad("the host address is not an IP address"))?
                    .to_string()
            }
        };
        Ok(PortMapping {
            host_port: port(host)?,
            container_port: port(container)?,
            protocol,
            host_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p: PortMapping = "127.0.0.1:8081:8080".parse().unwrap();
        assert_eq!(
            p,
            PortMapping {
                host_port: 8081,
                container_port: 8080,
                protocol: Protocol::Tcp,
                host_ip: "127.0.0.1".into()
            }
        );
        let p: PortMapping = "53:5353/udp".parse().unwrap();
        assert_eq!((p.host_port, p.container_port), (53, 5353));
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(p.host_ip, "");
        let p: PortMapping = "[::1]:80:80".parse().unwrap();
        assert_eq!(p.host_ip, "::1");
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"hostPort":80,"containerPort":80,"protocol":"tcp","hostIP":"::1"})
        );
    }

    #[test]
    fn publish_refusals() {
        for bad in [
            "8080",
            "0:80",
            "80:70000",
            "x:80:80",
            "80:80/sctp",
            "a:b",
            "",
        ] {
            assert!(bad.parse::<PortMapping>().is_err(), "{bad}");
        }
    }
}
