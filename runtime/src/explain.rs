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
}

/// Plans container `id` from `cfg`.
pub fn explain(cfg: &ContainerConfig, id: &ContainerId) -> Result<Explanation, JailError> {
    Ok(Explanation {
        id: id.clone(),
        jail: JailSpec::from_config(cfg, id)?,
        config: cfg.clone(),
    })
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
                    ParamValue::Ip4(a) => {
                        json!(a.iter().map(|x| x.to_string()).collect::<Vec<_>>())
                    }
                    ParamValue::Ip6(a) => {
                        json!(a.iter().map(|x| x.to_string()).collect::<Vec<_>>())
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
        })
    }
}
