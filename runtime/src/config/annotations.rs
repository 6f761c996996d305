//! The `org.freebsd.*` annotations that Podman and Buildah send to FreeBSD runtimes.
//! They are read into the same [`JailSettings`] as the `freebsd` section, which takes
//! precedence over them field by field (see docs/jail-mapping.md).

use std::collections::BTreeMap;

use super::addresses::{parse_ip4_list, parse_ip6_list};
use super::freebsd::{JailSettings, Setting, SharingMode, ALLOW_FLAGS, JAIL_MOUNTABLE_FS};
use super::ConfigError;

/// `org.freebsd.parentJail`: the parent jail's name.
pub const PARENT_JAIL: &str = "org.freebsd.parentJail";
const JAIL_PREFIX: &str = "org.freebsd.jail.";

fn path_of(key: &str) -> String {
    format!("annotations[{key:?}]")
}

/// Reads every `org.freebsd.*` annotation stockade understands. Other annotations are
/// accepted and ignored, as the runtime spec requires; unknown keys inside our own
/// `org.freebsd.jail.` namespace are logged, since they are most likely typos.
pub fn parse_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<JailSettings, ConfigError> {
    let mut s = JailSettings::default();
    for (key, value) in annotations {
        let path = path_of(key);
        if key == PARENT_JAIL {
            s.parent = Some(Setting::new(value.clone(), path));
            continue;
        }
        let Some(name) = key.strip_prefix(JAIL_PREFIX) else {
            continue;
        };
        match name {
            "vnet" => s.vnet = Some(Setting::new(SharingMode::parse(&path, value, false)?, path)),
            "sysvmsg" => {
                s.sysvmsg = Some(Setting::new(SharingMode::parse(&path, value, true)?, path))
            }
            "sysvsem" => {
                s.sysvsem = Some(Setting::new(SharingMode::parse(&path, value, true)?, path))
            }
            "sysvshm" => {
                s.sysvshm = Some(Setting::new(SharingMode::parse(&path, value, true)?, path))
            }
            "ip4.addr" => {
                let list = comma_list(value);
                let addrs = parse_ip4_list(&list, &path)?;
                s.ip4_addr = Some(Setting::new(addrs, path));
            }
            "ip6.addr" => {
                let list = comma_list(value);
                let addrs = parse_ip6_list(&list, &path)?;
                s.ip6_addr = Some(Setting::new(addrs, path));
            }
            _ => {
                if let Some(flag) = name.strip_prefix("allow.") {
                    parse_allow(&mut s, flag, value, &path)?;
                } else {
                    tracing::warn!(
                        annotation = %key,
                        "ignoring unknown annotation in the org.freebsd.jail. namespace; \
                         understood: vnet, sysvmsg, sysvsem, sysvshm, ip4.addr, ip6.addr, allow.<name>"
                    );
                }
            }
        }
    }
    Ok(s)
}

fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_allow(
    s: &mut JailSettings,
    flag: &str,
    value: &str,
    path: &str,
) -> Result<(), ConfigError> {
    let on = match value {
        "true" | "1" => true,
        "false" | "0" => false,
        _ => {
            return Err(ConfigError::invalid(
                path,
                value,
                "\"true\", \"1\", \"false\" or \"0\"",
            ))
        }
    };
    if let Some(fs) = flag.strip_prefix("mount.") {
        if !JAIL_MOUNTABLE_FS.contains(&fs) {
            return Err(ConfigError::invalid(
                path,
                flag,
                format!(
                    "allow.mount.<fs> with fs one of: {}",
                    JAIL_MOUNTABLE_FS.join(", ")
                ),
            ));
        }
        s.allow
            .mount_fs
            .insert(fs.to_string(), Setting::new(on, path));
        return Ok(());
    }
    if !ALLOW_FLAGS.contains(&flag) {
        return Err(ConfigError::InvalidValue {
            path: path.to_string(),
            value: format!("allow.{flag}"),
            expected: format!(
                "a jail allow flag: {}, or mount.<fs> (allow.sysvipc is replaced by the sysvmsg/sysvsem/sysvshm annotations)",
                ALLOW_FLAGS.join(", ")
            ),
        });
    }
    s.allow
        .flags
        .insert(flag.to_string(), Setting::new(on, path));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_podman_annotations() {
        let s = parse_annotations(&ann(&[
            ("org.freebsd.parentJail", "pod1"),
            ("org.freebsd.jail.vnet", "new"),
            ("org.freebsd.jail.sysvshm", "inherit"),
            ("org.freebsd.jail.ip4.addr", "10.0.0.5, 10.0.0.6"),
            ("org.freebsd.jail.allow.raw_sockets", "1"),
            ("org.freebsd.jail.allow.mount.tmpfs", "true"),
            ("org.freebsd.jail.allow.chflags", "0"),
            ("io.podman.annotations.autoremove", "TRUE"),
        ]))
        .unwrap();
        assert_eq!(s.parent.unwrap().value, "pod1");
        assert_eq!(s.vnet.unwrap().value, SharingMode::New);
        assert_eq!(s.sysvshm.unwrap().value, SharingMode::Inherit);
        assert_eq!(
            s.ip4_addr.unwrap().value,
            vec![Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)]
        );
        assert!(s.allow.flags["raw_sockets"].value);
        assert!(!s.allow.flags["chflags"].value);
        assert!(s.allow.mount_fs["tmpfs"].value);
    }

    #[test]
    fn rejects_bad_values_naming_the_annotation() {
        let cases = [
            ("org.freebsd.jail.vnet", "disable", "\"new\" or \"inherit\""),
            (
                "org.freebsd.jail.sysvmsg",
                "yes",
                "\"disable\", \"new\" or \"inherit\"",
            ),
            (
                "org.freebsd.jail.allow.raw_sockets",
                "yes",
                "\"true\", \"1\", \"false\" or \"0\"",
            ),
            (
                "org.freebsd.jail.allow.frobnicate",
                "true",
                "a jail allow flag",
            ),
            (
                "org.freebsd.jail.allow.mount.ext4",
                "true",
                "allow.mount.<fs>",
            ),
            (
                "org.freebsd.jail.ip4.addr",
                "10.0.0.1,bogus",
                "an IPv4 address",
            ),
        ];
        for (k, v, expected) in cases {
            let err = parse_annotations(&ann(&[(k, v)])).unwrap_err().to_string();
            assert!(err.starts_with(&format!("annotations[\"{k}\"]")), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }
}
