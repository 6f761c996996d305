//! The `/etc/hosts` and `/etc/resolv.conf` a networked container gets: written into its
//! bundle and bind-mounted read-only over the image's, so the image cannot redirect them.

/// `/etc/hosts`: localhost, the container's own names on its address, and the containers
/// attached to its network before it (`peers`: address, id).
pub fn hosts(addresses: &[String], names: &[&str], peers: &[(String, String)]) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let mut uniq: Vec<&str> = Vec::new();
    // A hostname comes from the config: only a plain name goes into the file, so that no
    // value can add lines of its own.
    let plain = |n: &str| {
        n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    for n in names {
        if !n.is_empty() && plain(n) && !uniq.contains(n) {
            uniq.push(n);
        }
    }
    if !uniq.is_empty() {
        for a in addresses {
            out.push_str(&format!("{a}\t{}\n", uniq.join(" ")));
        }
    }
    for (a, id) in peers {
        out.push_str(&format!("{a}\t{id}\n"));
    }
    out
}

/// Whether a `nameserver` value is a loopback address (unreachable from a network
/// namespace of its own: systemd-resolved's 127.0.0.53, a local dnsmasq).
fn loopback(ns: &str) -> bool {
    ns.parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback())
}

/// The host's resolv.conf for a container with its own network: every line but the
/// loopback name servers. Returns None when no name server is left, so that the caller
/// can try the next source (systemd-resolved's upstream list).
pub fn resolv_conf(host: &str) -> Option<String> {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            match words.next() {
                Some(ns) if !loopback(ns) => servers += 1,
                _ => continue,
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    (servers > 0).then_some(out)
}

/// The resolv.conf of the host's sources, first with a reachable name server; empty
/// when there is none (the container then resolves nothing, which `/etc/hosts` covers
/// for its own name).
pub fn host_resolv_conf() -> String {
    ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|t| resolv_conf(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_the_names_once_per_address() {
        let h = hosts(
            &["10.89.0.2".into()],
            &["web", "web", "", "x\n1.2.3.4 evil"],
            &[],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.89.0.2\tweb\n"), "{h}");
        assert!(!hosts(&[], &["web"], &[]).contains("web"));
        let h = hosts(
            &["10.89.0.3".into()],
            &["cli"],
            &[("10.89.0.2".into(), "web".into())],
        );
        assert!(h.ends_with("10.89.0.3\tcli\n10.89.0.2\tweb\n"), "{h}");
    }

    #[test]
    fn loopback_name_servers_are_dropped() {
        let r =
            resolv_conf("# x\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch lan\n").unwrap();
        assert_eq!(r, "# x\nnameserver 192.0.2.1\nsearch lan\n");
        assert!(resolv_conf("nameserver 127.0.0.53\nnameserver ::1\n").is_none());
    }
}
