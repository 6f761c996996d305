//! Linux confinement beyond capabilities and seccomp: device rules (a node the rules deny
//! does not open, whether the image shipped it or the container made it), read-only
//! `/proc/sys`, `linux.sysctl`, `process.oomScoreAdj`, `linux.rootfsPropagation`, and which
//! namespaces are the container's own. Groups `devices` and `namespaces` (the cgroup
//! settings are in `confine_cgroups`).

#[cfg(target_os = "linux")]
use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!("devices", device_nodes_the_rules_deny_do_not_open),
        test!("devices", exec_processes_are_under_the_same_device_rules),
        test!(
            "devices",
            proc_sys_is_read_only_under_the_default_readonly_paths
        ),
        test!("namespaces", sysctls_are_set_in_the_container_only),
        test!("namespaces", a_sysctl_of_a_host_namespace_fails_create),
        test!("namespaces", oom_score_adj_is_set_for_init_and_exec),
        test!("namespaces", root_propagation_is_as_configured),
        test!(
            "namespaces",
            unlisted_namespaces_are_the_hosts_and_listed_ones_new
        ),
        test!("namespaces", linux_fields_not_applied_fail_create_by_name),
        test!("namespaces", io_priority_is_set_and_scheduler_is_refused),
    ]
}

#[cfg(not(target_os = "linux"))]
fn linux_only(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "Linux confinement: not this platform".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
use linux_only as device_nodes_the_rules_deny_do_not_open;
#[cfg(not(target_os = "linux"))]
use linux_only as exec_processes_are_under_the_same_device_rules;
#[cfg(not(target_os = "linux"))]
use linux_only as proc_sys_is_read_only_under_the_default_readonly_paths;
#[cfg(not(target_os = "linux"))]
use linux_only as sysctls_are_set_in_the_container_only;
#[cfg(not(target_os = "linux"))]
use linux_only as a_sysctl_of_a_host_namespace_fails_create;
#[cfg(not(target_os = "linux"))]
use linux_only as oom_score_adj_is_set_for_init_and_exec;
#[cfg(not(target_os = "linux"))]
use linux_only as root_propagation_is_as_configured;
#[cfg(not(target_os = "linux"))]
use linux_only as unlisted_namespaces_are_the_hosts_and_listed_ones_new;
#[cfg(not(target_os = "linux"))]
use linux_only as linux_fields_not_applied_fail_create_by_name;
#[cfg(not(target_os = "linux"))]
use linux_only as io_priority_is_set_and_scheduler_is_refused;

/// Capabilities that let the container try what the device rules must stop (mknod, raw
/// opens): the rules, not a missing capability, must be what refuses.
#[cfg(target_os = "linux")]
fn with_mknod_caps(b: &mut crate::bundle::Bundle) {
    let caps = json!([
        "CAP_MKNOD",
        "CAP_DAC_OVERRIDE",
        "CAP_SYS_ADMIN",
        "CAP_CHOWN",
        // Reading /dev/kmsg with dmesg_restrict on.
        "CAP_SYSLOG"
    ]);
    b.process()["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
}

/// A real block device of this host: the first disk in /proc/partitions.
#[cfg(target_os = "linux")]
pub(crate) fn host_block_device() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/partitions").ok()?;
    text.lines().skip(2).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        Some((f.first()?.parse().ok()?, f.get(1)?.parse().ok()?))
    })
}

/// Makes a device node in the root filesystem from the host, as an image layer would.
#[cfg(target_os = "linux")]
fn mknod_in(
    rootfs: &std::path::Path,
    name: &str,
    block: bool,
    major: u32,
    minor: u32,
) -> TestResult {
    use std::os::unix::ffi::OsStrExt;
    let path = rootfs.join(name);
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let kind = if block { libc::S_IFBLK } else { libc::S_IFCHR };
    // SAFETY: the path is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    if r != 0 {
        return Err(format!(
            "mknod {} in the rootfs: {}",
            path.display(),
            std::io::Error::last_os_error()
        )
        .into());
    }
    Ok(())
}

/// The hostile-image case (a node of the host's disk and of /dev/kmsg shipped in the root
/// filesystem) and a node the container makes: none opens under the usual rules (deny all,
/// as containerd and Podman send), while /dev/null and /dev/zero do. The same container
/// with an allow-all rule opens them: the rules are what refuses.
#[cfg(target_os = "linux")]
fn device_nodes_the_rules_deny_do_not_open(ctx: &Ctx) -> TestResult {
    let (major, minor) = host_block_device().ok_or("this host lists no block device")?;
    let script = "mknod /made-kmsg c 1 11 && echo made; \
        for f in /img-kmsg /img-disk /made-kmsg /dev/null /dev/zero; do \
          if head -c 1 $f >/dev/null 2>/tmp/err; then echo \"$f open\"; \
          else echo \"$f $(cat /tmp/err)\"; fi; done";
    let run = |name: &str, devices: serde_json::Value| -> Result<String, crate::harness::Fail> {
        let mut b = ctx.bundle(&["sh", "-c", script])?;
        mknod_in(&b.rootfs, "img-kmsg", false, 1, 11)?;
        mknod_in(&b.rootfs, "img-disk", true, major, minor)?;
        std::fs::create_dir_all(b.rootfs.join("tmp")).map_err(|e| e.to_string())?;
        with_mknod_caps(&mut b);
        b.config["linux"]["resources"] = json!({ "devices": devices });
        b.save()?;
        Ok(ctx.run_to_stop(name, &b)?.0)
    };
    let denied = run("devdeny", json!([{ "allow": false, "access": "rwm" }]))?;
    ensure!(
        denied.contains("made"),
        "mknod itself is allowed, as with runc: {denied:?}"
    );
    for f in ["/img-kmsg", "/img-disk", "/made-kmsg"] {
        ensure!(
            denied.contains(&format!("{f} "))
                && denied
                    .lines()
                    .any(|l| l.starts_with(&format!("{f} ")) && l.contains("not permitted")),
            "{f} must fail with EPERM under deny-all: {denied:?}"
        );
    }
    for f in ["/dev/null", "/dev/zero"] {
        ensure!(
            denied.contains(&format!("{f} open")),
            "{f} is in the default allow list: {denied:?}"
        );
    }
    let allowed = run("devallow", json!([{ "allow": true, "access": "rwm" }]))?;
    ensure!(
        allowed.contains("/img-kmsg open") && allowed.contains("/made-kmsg open"),
        "with an allow-all rule the same nodes open: {allowed:?}"
    );
    Ok(())
}

/// With runc's default readonlyPaths, a write to /proc/sys/kernel fails: the host's
/// core_pattern stays the host's. The value written is the one already there, so the
/// host is unchanged even if the test fails.
#[cfg(target_os = "linux")]
fn proc_sys_is_read_only_under_the_default_readonly_paths(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "v=$(cat /proc/sys/kernel/core_pattern); \
         if echo \"$v\" > /proc/sys/kernel/core_pattern; then echo written; else echo refused; fi",
    ])?;
    with_mknod_caps(&mut b);
    b.config["linux"]["readonlyPaths"] = json!([
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger"
    ]);
    b.save()?;
    let out = ctx.run_to_stop("procsys", &b)?.0;
    ensure_eq!(
        out.trim(),
        "refused",
        "write to /proc/sys/kernel/core_pattern"
    );
    Ok(())
}

#[cfg(target_os = "linux")]
fn sysctls_are_set_in_the_container_only(ctx: &Ctx) -> TestResult {
    let host_shmmni =
        std::fs::read_to_string("/proc/sys/kernel/shmmni").map_err(|e| e.to_string())?;
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward /proc/sys/fs/mqueue/msg_max",
    ])?;
    b.config["linux"]["sysctl"] = json!({
        "kernel.shmmni": "1234",
        "net.ipv4.ip_forward": "1",
        "fs/mqueue/msg_max": "17"
    });
    b.save()?;
    let out = ctx.run_to_stop("sysctl", &b)?.0;
    ensure_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["1234", "1", "17"],
        "the sysctls read back inside"
    );
    let after = std::fs::read_to_string("/proc/sys/kernel/shmmni").map_err(|e| e.to_string())?;
    ensure_eq!(after, host_shmmni, "the host's kernel.shmmni");
    Ok(())
}

#[cfg(target_os = "linux")]
fn a_sysctl_of_a_host_namespace_fails_create(ctx: &Ctx) -> TestResult {
    for (key, drop, want) in [
        ("net.ipv4.ip_forward", "network", "network namespace"),
        ("kernel.msgmax", "ipc", "ipc namespace"),
        ("kernel.core_pattern", "", "not a namespaced"),
    ] {
        let mut b = ctx.bundle(&["true"])?;
        b.config["linux"]["sysctl"] = json!({ key: "1" });
        if let Some(ns) = b.config["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != drop);
        }
        b.save()?;
        let id = ctx.id("sysctlhost");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with sysctl {key}"))?;
        ensure!(
            out.stderr.contains("linux.sysctl")
                && out.stderr.contains(key)
                && out.stderr.contains(want),
            "the error names the sysctl and why: {:?}",
            out.stderr
        );
        ctx.ensure_root_empty("after a refused sysctl")?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn oom_score_adj_is_set_for_init_and_exec(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "cat /proc/self/oom_score_adj; sleep 1000"])?;
    b.process()["oomScoreAdj"] = json!(123);
    b.save()?;
    let id = ctx.id("oom");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_until("the init printed its oom_score_adj", || {
        !out.stdout_now().trim().is_empty()
    })?;
    ensure_eq!(out.stdout_now().trim(), "123", "the init's oom_score_adj");
    let process = json!({
        "terminal": false, "user": { "uid": 0, "gid": 0 },
        "args": ["cat", "/proc/self/oom_score_adj"], "cwd": "/", "oomScoreAdj": 321
    });
    let file = ctx.path("process.json");
    std::fs::write(&file, process.to_string()).map_err(|e| e.to_string())?;
    let exec = ctx
        .sk(&["exec", "--process", &file.to_string_lossy(), &id])
        .run()?;
    ensure_eq!(
        exec.stdout.trim(),
        "321",
        "the exec'd process's oom_score_adj"
    );
    Ok(())
}

/// The optional fields of the mountinfo line of `/`, as printed inside.
#[cfg(target_os = "linux")]
fn root_tags(mountinfo: &str) -> Option<Vec<String>> {
    mountinfo.lines().find_map(|l| {
        let (left, _) = l.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        (f.get(4) == Some(&"/")).then(|| {
            f[6..]
                .iter()
                .map(|t| t.split(':').next().unwrap_or("").to_string())
                .collect()
        })
    })
}

/// Whether the host mount holding `path` is shared (has peers the container could follow).
#[cfg(target_os = "linux")]
fn host_mount_is_shared(path: &std::path::Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, _) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let mp = std::path::Path::new(f.get(4)?);
            path.starts_with(mp).then(|| {
                (
                    mp.components().count(),
                    f[6..].iter().any(|t| t.starts_with("shared:")),
                )
            })
        })
        .max_by_key(|(depth, _)| *depth)
        .is_some_and(|(_, shared)| shared)
}

#[cfg(target_os = "linux")]
fn root_propagation_is_as_configured(ctx: &Ctx) -> TestResult {
    let probe = ctx.bundle(&["true"])?;
    // A slave needs a shared master: on a host whose mount is private, rslave shows none.
    let slave: Vec<&str> = if host_mount_is_shared(&probe.rootfs) {
        vec!["master"]
    } else {
        vec![]
    };
    for (prop, want) in [
        (Some("rslave"), slave.clone()),
        (Some("rprivate"), vec![]),
        (Some("shared"), vec!["shared"]),
        (Some("rshared"), vec!["shared"]),
        (None, vec![]),
    ] {
        let mut b = ctx.bundle(&["cat", "/proc/self/mountinfo"])?;
        if let Some(p) = prop {
            b.config["linux"]["rootfsPropagation"] = json!(p);
        }
        b.save()?;
        let out = ctx.run_to_stop("prop", &b)?.0;
        let tags = root_tags(&out).ok_or_else(|| format!("no / in mountinfo: {out:?}"))?;
        ensure_eq!(
            tags,
            want,
            "propagation tags of / with rootfsPropagation {prop:?}"
        );
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn unlisted_namespaces_are_the_hosts_and_listed_ones_new(ctx: &Ctx) -> TestResult {
    let kinds = ["ipc", "uts", "net", "cgroup"];
    let script: String = kinds
        .iter()
        .map(|k| format!("echo {k} $(readlink /proc/self/ns/{k}); "))
        .collect();
    let host = |k: &str| {
        std::fs::read_link(format!("/proc/self/ns/{k}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for listed in [vec![], vec!["ipc", "uts", "network", "cgroup"]] {
        let mut b = ctx.bundle(&["sh", "-c", &script])?;
        let mut ns = vec![json!({"type": "pid"}), json!({"type": "mount"})];
        ns.extend(listed.iter().map(|t| json!({ "type": t })));
        b.config["linux"]["namespaces"] = json!(ns);
        if !listed.contains(&"uts") {
            b.config.as_object_mut().map(|c| c.remove("hostname"));
        }
        b.save()?;
        let out = ctx.run_to_stop("nsinode", &b)?.0;
        for k in kinds {
            let inside = out
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k} ")))
                .ok_or_else(|| format!("no {k} line: {out:?}"))?;
            let want_own = listed.contains(&if k == "net" { "network" } else { k });
            ensure!(
                (inside != host(k)) == want_own,
                "{k}: inside {inside}, host {}, listed {want_own}",
                host(k)
            );
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn linux_fields_not_applied_fail_create_by_name(ctx: &Ctx) -> TestResult {
    for (field, value, name) in [
        (
            "personality",
            json!({ "domain": "LINUX32" }),
            "linux.personality",
        ),
        (
            "uidMappings",
            json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]),
            "linux.uidMappings",
        ),
    ] {
        let mut b = ctx.bundle(&["true"])?;
        b.config["linux"][field] = value;
        b.save()?;
        let id = ctx.id("unapplied");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with linux.{field}"))?;
        ensure!(
            out.stderr.contains(name),
            "the error names {name}: {:?}",
            out.stderr
        );
        ctx.ensure_root_empty("after a refused field")?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn exec_processes_are_under_the_same_device_rules(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    mknod_in(&b.rootfs, "img-kmsg", false, 1, 11)?;
    with_mknod_caps(&mut b);
    b.config["linux"]["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    b.save()?;
    let id = ctx.id("devexec");
    ctx.create_start(&id, &b)?;
    let out = ctx
        .sk(&["exec", &id, "sh", "-c", "head -c 1 /img-kmsg >/dev/null && echo opened; head -c 1 /dev/zero >/dev/null && echo zero"])
        .run()?;
    ensure!(
        out.stderr.contains("not permitted") || out.stdout.contains("not permitted"),
        "an exec'd process cannot open /dev/kmsg's node: stdout {:?} stderr {:?}",
        out.stdout,
        out.stderr
    );
    ensure!(!out.stdout.contains("opened"), "opened: {:?}", out.stdout);
    ensure!(
        out.stdout.contains("zero"),
        "/dev/zero opens: {:?}",
        out.stdout
    );
    Ok(())
}

#[cfg(target_os = "linux")]
fn io_priority_is_set_and_scheduler_is_refused(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "ionice -p $$"])?;
    b.process()["ioPriority"] = json!({ "class": "IOPRIO_CLASS_IDLE", "priority": 0 });
    b.save()?;
    let out = ctx.run_to_stop("ioprio", &b)?.0;
    ensure!(out.contains("idle"), "ionice inside: {out:?}");
    let mut b = ctx.bundle(&["sh", "-c", "ionice -p $$"])?;
    b.process()["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 5 });
    b.save()?;
    let out = ctx.run_to_stop("ioprio", &b)?.0;
    ensure!(
        out.contains("best-effort") && out.contains("prio 5"),
        "ionice inside: {out:?}"
    );
    let mut b = ctx.bundle(&["true"])?;
    b.process()["scheduler"] = json!({ "policy": "SCHED_BATCH" });
    b.save()?;
    let id = ctx.id("sched");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with process.scheduler")?;
    ensure!(
        out.stderr.contains("process.scheduler"),
        "names the field: {:?}",
        out.stderr
    );
    ensure!(
        !ctx.root_entries().contains(&id),
        "nothing left of the refused container: {:?}",
        ctx.root_entries()
    );
    Ok(())
}
