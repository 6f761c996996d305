//! IP address lists for `ip4.addr`/`ip6.addr`, checked the way the kernel checks them.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::ConfigError;

/// The kernel's default `security.jail.jail_max_af_ips`.
pub const MAX_ADDRESSES: usize = 255;

/// Parses IPv4 addresses: each a dotted quad, neither 0.0.0.0 nor 255.255.255.255 (the
/// kernel rejects both), no duplicates, at most 255.
pub fn parse_ip4_list(items: &[String], path: &str) -> Result<Vec<Ipv4Addr>, ConfigError> {
    parse_list(
        items,
        path,
        |s| {
            s.parse::<Ipv4Addr>()
                .ok()
                .filter(|a| !a.is_unspecified() && !a.is_broadcast())
        },
        "an IPv4 address such as \"192.0.2.10\" (not 0.0.0.0 or 255.255.255.255)",
    )
}

/// Parses IPv6 addresses: each in standard notation, not `::`, no duplicates, at most 255.
pub fn parse_ip6_list(items: &[String], path: &str) -> Result<Vec<Ipv6Addr>, ConfigError> {
    parse_list(
        items,
        path,
        |s| s.parse::<Ipv6Addr>().ok().filter(|a| !a.is_unspecified()),
        "an IPv6 address such as \"2001:db8::10\" (not ::)",
    )
}

fn parse_list<A: Copy + Eq + std::hash::Hash>(
    items: &[String],
    path: &str,
    parse: impl Fn(&str) -> Option<A>,
    expected: &str,
) -> Result<Vec<A>, ConfigError> {
    if items.len() > MAX_ADDRESSES {
        return Err(ConfigError::InvalidValue {
            path: path.to_string(),
            value: format!("{} addresses", items.len()),
            expected: format!("at most {MAX_ADDRESSES} addresses (security.jail.jail_max_af_ips)"),
        });
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let addr =
            parse(raw.trim()).ok_or_else(|| ConfigError::invalid(&item_path, raw, expected))?;
        if !seen.insert(addr) {
            return Err(ConfigError::invalid(
                item_path,
                raw,
                "each address listed once (the kernel rejects duplicates)",
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_addresses_in_order_with_first_as_primary() {
        let a = parse_ip4_list(&strings(&["10.0.0.2", "10.0.0.1"]), "p").unwrap();
        assert_eq!(
            a,
            vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)]
        );
        let b = parse_ip6_list(&strings(&["2001:db8::1"]), "p").unwrap();
        assert_eq!(b, vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()]);
    }

    #[test]
    fn rejects_malformed_unspecified_broadcast_and_duplicates() {
        for bad in [
            vec!["10.0.0"],
            vec!["10.0.0.1/24"],
            vec!["0.0.0.0"],
            vec!["255.255.255.255"],
            vec!["10.0.0.1", "10.0.0.1"],
            vec!["2001:db8::1"],
        ] {
            let err = parse_ip4_list(&strings(&bad), "freebsd.jail.ip4Addr").unwrap_err();
            assert!(
                err.to_string().starts_with("freebsd.jail.ip4Addr["),
                "{err}"
            );
        }
        for bad in [
            vec!["::"],
            vec!["fe80::1%em0"],
            vec!["10.0.0.1"],
            vec!["::1", "::1"],
        ] {
            assert!(parse_ip6_list(&strings(&bad), "p").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_more_than_255_addresses() {
        let many: Vec<String> = (0..256)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1))
            .collect();
        let err = parse_ip4_list(&many, "freebsd.jail.ip4Addr")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("256 addresses") && err.contains("at most 255"),
            "{err}"
        );
        assert!(parse_ip4_list(&many[..255], "p").is_ok());
    }
}
