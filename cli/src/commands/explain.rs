//! `stockade explain`: what `create` would do, without touching the system.

use anyhow::Context;

use crate::args::lifecycle::{ExplainArgs, ExplainFormat};
use stockade_runtime::config::ContainerConfig;
use stockade_runtime::explain::{explain, render_jail_conf};
use stockade_runtime::id::ContainerId;

pub fn run(args: &ExplainArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&args.id)?;
    let cfg = ContainerConfig::load(&args.bundle)?;
    let plan = explain(&cfg, &id).context("planning the container")?;
    match args.format {
        ExplainFormat::JailConf => print!("{}", render_jail_conf(&plan)),
        ExplainFormat::Json => println!("{}", serde_json::to_string_pretty(&plan.to_json())?),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stockade_image::bundle::{run, MountRequest, MountSource, RunOverrides};

    use super::*;

    /// Golden check of the FreeBSD translation of `run --image` flags: a read-only volume
    /// becomes a read-only nullfs mount, a tmpfs a tmpfs, the hostname host.hostname.
    #[test]
    fn run_flags_become_nullfs_tmpfs_and_jail_parameters_on_freebsd() {
        let t = tempfile::tempdir().unwrap();
        let (rootfs, data) = (t.path().join("rootfs"), t.path().join("data"));
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        // The plan is made only for a process it finds in the root filesystem.
        std::fs::write(rootfs.join("bin/sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            rootfs.join("bin/sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let mut spec = stockade_runtime::config::default_freebsd_config();
        spec["root"] = json!({"path": rootfs, "readonly": false});
        let o = RunOverrides {
            hostname: Some("web".into()),
            read_only: true,
            mounts: vec![
                MountRequest {
                    source: MountSource::Host(data.clone()),
                    destination: "/data".into(),
                    readonly: true,
                    options: vec![],
                },
                MountRequest {
                    source: MountSource::Tmpfs,
                    destination: "/scratch".into(),
                    readonly: false,
                    options: vec!["size=1m".into()],
                },
            ],
            ..RunOverrides::default()
        };
        run::apply(&mut spec, &o).unwrap();
        let cfg = ContainerConfig::from_value(spec, t.path()).unwrap();
        let plan = explain(&cfg, &ContainerId::parse("web").unwrap()).unwrap();
        let conf = render_jail_conf(&plan);
        let line = |needle: &str| {
            conf.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{conf}"))
                .to_string()
        };
        let data_line = line(&format!("from={} ", data.display()));
        assert!(
            data_line.contains("fstype=nullfs") && data_line.contains(" ro "),
            "{data_line}"
        );
        assert!(line("fstype=tmpfs fspath").contains("/scratch"), "{conf}");
        assert!(line("host.hostname").contains("web"), "{conf}");
    }
}
