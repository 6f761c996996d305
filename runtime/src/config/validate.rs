//! Values the kernel or the spec would refuse later, refused at create with their JSON
//! path: NUL bytes in anything that becomes a C string (arguments, environment, paths,
//! names), hook timeouts that are not positive, hook paths that are not absolute, numbers
//! that would be truncated on their way to the kernel.

use oci_spec::runtime::{Hook, Spec};

use super::ConfigError;

/// Checks `spec` as parsed; the first problem found is returned.
pub(crate) fn check(spec: &Spec) -> Result<(), ConfigError> {
    if let Some(root) = spec.root() {
        no_nul("root.path", root.path().as_os_str().as_encoded_bytes())?;
    }
    if let Some(h) = spec.hostname() {
        no_nul("hostname", h.as_bytes())?;
    }
    if let Some(d) = spec.domainname() {
        no_nul("domainname", d.as_bytes())?;
    }
    if let Some(p) = spec.process() {
        for (i, a) in p.args().iter().flatten().enumerate() {
            no_nul(&format!("process.args[{i}]"), a.as_bytes())?;
        }
        for (i, e) in p.env().iter().flatten().enumerate() {
            no_nul(&format!("process.env[{i}]"), e.as_bytes())?;
        }
        no_nul("process.cwd", p.cwd().as_os_str().as_encoded_bytes())?;
        if let Some(u) = p.user().umask() {
            if u > 0o7777 {
                return Err(ConfigError::invalid(
                    "process.user.umask",
                    u,
                    "a file mode mask of at most 0o7777 (4095)",
                ));
            }
        }
        if let Some(b) = p.console_size() {
            for (name, v) in [("height", b.height()), ("width", b.width())] {
                if v > u64::from(u16::MAX) {
                    return Err(ConfigError::invalid(
                        format!("process.consoleSize.{name}"),
                        v,
                        "at most 65535 (a terminal's size is 16 bits)",
                    ));
                }
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        no_nul(
            &format!("mounts[{i}].destination"),
            m.destination().as_os_str().as_encoded_bytes(),
        )?;
        if let Some(s) = m.source() {
            no_nul(
                &format!("mounts[{i}].source"),
                s.as_os_str().as_encoded_bytes(),
            )?;
        }
        if let Some(t) = m.typ() {
            no_nul(&format!("mounts[{i}].type"), t.as_bytes())?;
        }
        for (j, o) in m.options().iter().flatten().enumerate() {
            no_nul(&format!("mounts[{i}].options[{j}]"), o.as_bytes())?;
        }
    }
    if let Some(hooks) = spec.hooks() {
        #[allow(deprecated)]
        let phases = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (phase, list) in phases {
            for (i, h) in list.iter().flatten().enumerate() {
                check_hook(&format!("hooks.{phase}[{i}]"), h)?;
            }
        }
    }
    Ok(())
}

fn check_hook(at: &str, h: &Hook) -> Result<(), ConfigError> {
    let path = h.path().as_os_str().as_encoded_bytes();
    no_nul(&format!("{at}.path"), path)?;
    if !h.path().is_absolute() {
        return Err(ConfigError::invalid(
            format!("{at}.path"),
            h.path().display(),
            "an absolute path on the host (the spec requires it)",
        ));
    }
    for (i, a) in h.args().iter().flatten().enumerate() {
        no_nul(&format!("{at}.args[{i}]"), a.as_bytes())?;
    }
    for (i, e) in h.env().iter().flatten().enumerate() {
        no_nul(&format!("{at}.env[{i}]"), e.as_bytes())?;
    }
    if let Some(t) = h.timeout() {
        if t <= 0 {
            return Err(ConfigError::invalid(
                format!("{at}.timeout"),
                t,
                "a positive number of seconds (the spec requires timeout > 0; omit it for no limit)",
            ));
        }
    }
    Ok(())
}

fn no_nul(at: &str, bytes: &[u8]) -> Result<(), ConfigError> {
    if bytes.contains(&0) {
        return Err(ConfigError::InvalidValue {
            path: at.to_string(),
            value: stockade_quote::quote(bytes).to_string(),
            expected: "a string without NUL bytes (the kernel takes C strings)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}});
        merge(&mut base, v);
        serde_json::from_value(base).unwrap()
    }

    fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
        match (base, over) {
            (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
                for (k, v) in o {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, o) => *b = o,
        }
    }

    fn err(v: serde_json::Value) -> String {
        check(&spec(v)).unwrap_err().to_string()
    }

    #[test]
    fn hook_timeouts_must_be_positive() {
        for t in [-1, 0] {
            let e = err(json!({"hooks": {"prestart": [{"path": "/bin/true", "timeout": t}]}}));
            assert!(e.starts_with("hooks.prestart[0].timeout:"), "{e}");
            assert!(e.contains("positive"), "{e}");
        }
        assert!(check(&spec(
            json!({"hooks": {"poststop": [{"path": "/bin/true", "timeout": 1}]}})
        ))
        .is_ok());
        let e = err(json!({"hooks": {"poststop": [{"path": "true"}]}}));
        assert!(e.starts_with("hooks.poststop[0].path:"), "{e}");
    }

    #[test]
    fn nul_bytes_are_refused_with_their_path_and_escaped() {
        let e = err(json!({"process": {"args": ["sh", "a\u{0}b"]}}));
        assert!(e.starts_with("process.args[1]:"), "{e}");
        assert!(e.contains("\\u{0}") && !e.contains('\0'), "{e}");
        let e = err(json!({"process": {"env": ["A=\u{0}"]}}));
        assert!(e.starts_with("process.env[0]:"), "{e}");
        let e = err(
            json!({"mounts": [{"destination": "/x\u{0}", "type": "tmpfs", "source": "tmpfs"}]}),
        );
        assert!(e.starts_with("mounts[0].destination:"), "{e}");
        let e = err(json!({"hostname": "h\u{0}"}));
        assert!(e.starts_with("hostname:"), "{e}");
    }

    #[test]
    fn truncated_numbers_are_refused() {
        let e = err(json!({"process": {"consoleSize": {"height": 70000, "width": 80}}}));
        assert!(e.starts_with("process.consoleSize.height:"), "{e}");
        let e = err(json!({"process": {"user": {"uid": 0, "gid": 0, "umask": 99999}}}));
        assert!(e.starts_with("process.user.umask:"), "{e}");
    }
}
