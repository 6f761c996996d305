//! What `create` would do, as a value: the jail, the mounts and the process. `stockade
//! explain` prints it; nothing here touches the system.

use serde_json::{json, Value};

use crate::config::ContainerConfig;
use crate::id::ContainerId;
use crate::jail::{to_jail_conf, JailError, JailSpec, ParamValue};

/// The plan for one container.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub id: ContainerId,
    pub jail: JailSpec,
    pub config: ContainerConfig,
    /// The FreeBSD backend's create steps (nmount, devfs rules, jail_set, ifconfig), or why
    /// they cannot be planned yet (for example, no root filesystem at root.path).
    pub freebsd_steps: Result<Vec<String>, String>,
}

/// Plans container `id` from `cfg`.
pub fn explain(cfg: &ContainerConfig, id: &ContainerId) -> Result<Explanation, JailError> {
    Ok(Explanation {
        id: id.clone(),
        jail: JailSpec::from_config(cfg, id)?,
        config: cfg.clone(),
        freebsd_steps: freebsd_steps(cfg, id),
    })
}

/// The FreeBSD create plan, with mount destinations resolved in the root as create would
/// and the first devfs ruleset create would try (the real one is the first free one).
fn freebsd_steps(cfg: &ContainerConfig, id: &ContainerId) -> Result<Vec<String>, String> {
    use crate::platform::freebsd_plan::{
        create_plan, dev_base_ruleset, devfs_ruleset_candidates, flatten_default_ruleset,
        HostInputs,
    };
    // Planned for FreeBSD whatever the host: the same steps create would take there.
    let plan = crate::platform::ContainerPlan::new(
        cfg,
        id,
        crate::platform::PlanOptions::default(),
        crate::target::Target::FreeBsd,
    )
    .map_err(|e| e.to_string())?;
    let mount_targets = plan
        .mounts
        .iter()
        .map(|m| crate::mounts::resolve_in_root(&plan.jail.path, &m.destination))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let host = HostInputs {
        mount_targets,
        devfs_ruleset: devfs_ruleset_candidates(plan.jail.name.as_str()).next(),
        // The base ruleset as a freshly booted FreeBSD 14 has it; create reads the host's.
        devfs_base_rules: if crate::platform::freebsd_plan::devices(&plan).is_empty() {
            Vec::new()
        } else {
            flatten_default_ruleset(dev_base_ruleset(&plan)).map_err(|e| e.to_string())?
        },
    };
    let created = create_plan(&plan, &host).map_err(|e| e.to_string())?;
    let mut lines: Vec<String> = created.steps.iter().map(|s| s.to_string()).collect();
    lines.extend(created.warnings.iter().map(|w| format!("(warning) {w}")));
    Ok(lines)
}

fn mount_lines(cfg: &ContainerConfig) -> Vec<String> {
    cfg.spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| {
            let opts = m
                .options()
                .as_ref()
                .map(|o| o.join(","))
                .unwrap_or_default();
            format!(
                "{} {} on {}{}",
                m.typ().as_deref().unwrap_or("(none)"),
                m.source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_else(|| "(none)".into()),
                m.destination().display(),
                if opts.is_empty() {
                    String::new()
                } else {
                    format!(" ({opts})")
                }
            )
        })
        .collect()
}

fn process_lines(cfg: &ContainerConfig) -> Vec<String> {
    let Some(p) = cfg.spec.process() else {
        return vec!["(none: create needs process)".into()];
    };
    let mut out = vec![
        format!("args: {:?}", p.args().clone().unwrap_or_default()),
        format!("cwd: {}", p.cwd().display()),
        format!(
            "user: uid={} gid={} additionalGids={:?}{}",
            p.user().uid(),
            p.user().gid(),
            p.user().additional_gids().clone().unwrap_or_default(),
            p.user()
                .umask()
                .map(|u| format!(" umask={u:04o}"))
                .unwrap_or_default()
        ),
        format!("terminal: {}", p.terminal().unwrap_or(false)),
    ];
    for e in p.env().iter().flatten() {
        out.push(format!("env: {e}"));
    }
    for r in &cfg.rlimits {
        out.push(format!(
            "rlimit: {} soft={} hard={}",
            r.name, r.soft, r.hard
        ));
    }
    out
}

/// The plan as jail.conf, with mounts and process as comments.
pub fn render_jail_conf(e: &Explanation) -> String {
    let mut out = format!(
        "# stockade explain: container {:?}, bundle {}\n# jail_set(JAIL_CREATE) parameters:\n",
        e.id.as_str(),
        e.config.bundle.display()
    );
    out.push_str(&to_jail_conf(&e.jail));
    out.push_str("# mounts, in order (unmounted in reverse order on delete):\n");
    for l in mount_lines(&e.config) {
        out.push_str(&format!("#   {l}\n"));
    }
    for d in &e.config.devices {
        out.push_str(&format!(
            "#   devfs rule: unhide /dev/{}{}\n",
            d.path,
            d.mode.map(|m| format!(" mode {m:o}")).unwrap_or_default()
        ));
    }
    match &e.freebsd_steps {
        Ok(steps) => {
            out.push_str("# FreeBSD create steps, in order:\n");
            for s in steps {
                out.push_str(&format!("#   {s}\n"));
            }
        }
        Err(why) => out.push_str(&format!("# FreeBSD create steps: not planned: {why}\n")),
    }
    out.push_str("# process:\n");
    for l in process_lines(&e.config) {
        out.push_str(&format!("#   {l}\n"));
    }
    out
}

impl Explanation {
    /// The plan as JSON: `jail.params` lists each parameter with the name the kernel gets.
    pub fn to_json(&self) -> Value {
        let params: Vec<Value> = self
            .jail
            .params()
            .iter()
            .map(|p| {
                let value = match &p.value {
                    ParamValue::Bool(b) => json!(b),
                    ParamValue::Int(i) => json!(i),
                    ParamValue::Str(s) => json!(s),
                    ParamValue::JailSys(m) => json!(m.as_str()),
                    v @ (ParamValue::Ip4(_) | ParamValue::Ip6(_)) => {
                        json!(v.addresses().unwrap_or_default())
                    }
                };
                json!({"name": p.name, "kernelName": p.kernel_name(), "value": value})
            })
            .collect();
        json!({
            "id": self.id.as_str(),
            "bundle": self.config.bundle,
            "jail": {"name": self.jail.name.as_str(), "params": params},
            "mounts": mount_lines(&self.config),
            "devices": self.config.devices.iter().map(|d| json!({"path": d.path, "mode": d.mode})).collect::<Vec<_>>(),
            "process": process_lines(&self.config),
            "freebsdSteps": match &self.freebsd_steps {
                Ok(steps) => json!(steps),
                Err(why) => json!({"notPlanned": why}),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn example_bundle(with_rootfs: bool) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../reference/runtime-spec-v1.3.0/examples/config-good-freebsd-example.json"
        );
        std::fs::copy(example, d.path().join("config.json")).unwrap();
        if with_rootfs {
            std::fs::create_dir_all(d.path().join("rootfs/bin")).unwrap();
            std::fs::write(d.path().join("rootfs/bin/sh"), b"#!").unwrap();
            std::fs::set_permissions(
                d.path().join("rootfs/bin/sh"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        d
    }

    #[test]
    fn explain_lists_the_freebsd_syscalls_create_would_make() {
        let d = example_bundle(true);
        let cfg = ContainerConfig::load(d.path()).unwrap();
        let e = explain(&cfg, &ContainerId::parse("web1").unwrap()).unwrap();
        let steps = e.freebsd_steps.clone().unwrap();
        let devfs = steps
            .iter()
            .position(|s| s.starts_with("nmount(fstype=devfs"))
            .unwrap();
        let jail = steps
            .iter()
            .position(|s| s.starts_with("jail_set(name=\"web1\""))
            .unwrap();
        assert!(devfs < jail, "mounts are made before the jail: {steps:?}");
        assert!(
            steps
                .iter()
                .any(|s| s.contains("add path pf unhide mode 0700")),
            "{steps:?}"
        );
        let text = render_jail_conf(&e);
        assert!(text.contains("# FreeBSD create steps, in order:"), "{text}");
    }

    #[test]
    fn explain_shows_flattened_devfs_rules_mount_flags_an_escaped_name_and_devfs_ruleset() {
        let d = example_bundle(true);
        let config = serde_json::json!({
            "ociVersion": "1.3.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [
                {"destination": "/dev", "type": "devfs", "source": "devfs"},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["noatime", "size=1m"]}
            ],
            "freebsd": {"devices": [{"path": "pf"}]}
        });
        std::fs::write(d.path().join("config.json"), config.to_string()).unwrap();
        let cfg = ContainerConfig::load(d.path()).unwrap();
        let e = explain(&cfg, &ContainerId::parse("-1").unwrap()).unwrap();
        let steps = e.freebsd_steps.clone().unwrap();
        let has = |needle: &str| steps.iter().any(|s| s.contains(needle));
        // Ruleset 4 flattened (its includes of 1, 2, 3 expanded), then the device.
        assert!(!has(" include "), "{steps:?}");
        assert!(
            has(" add hide") && has(" add path zero unhide"),
            "{steps:?}"
        );
        assert!(has(" add path pf unhide"), "{steps:?}");
        let tmpfs = steps.iter().find(|s| s.contains("fstype=tmpfs")).unwrap();
        assert!(tmpfs.ends_with(", MNT_NOATIME)"), "{tmpfs}");
        assert!(!tmpfs.contains(" noatime"), "{tmpfs}");
        let jail = steps.iter().find(|s| s.starts_with("jail_set(")).unwrap();
        assert!(jail.starts_with("jail_set(name=\"+n-1\""), "{jail}");
        assert!(jail.contains(" devfs_ruleset="), "{jail}");
        assert!(!jail.contains("devfs_ruleset=0 "), "{jail}");
    }

    #[test]
    fn explain_without_a_root_filesystem_says_why_the_steps_are_missing() {
        let d = example_bundle(false);
        let cfg = ContainerConfig::load(d.path()).unwrap();
        let e = explain(&cfg, &ContainerId::parse("web1").unwrap()).unwrap();
        let why = e.freebsd_steps.unwrap_err();
        assert!(
            why.contains("rootfs") && why.contains("not a directory"),
            "{why}"
        );
    }
}
