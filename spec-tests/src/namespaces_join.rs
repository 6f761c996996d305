//! Namespaces not listed and namespaces joined by path (issue 10, item 5): a type missing
//! from `linux.namespaces` is the runtime's own (PID included, with `kill --all` then
//! reaching only the container's processes), a config without a mount namespace is
//! refused, the PID, mount, IPC, UTS and network namespaces of a holder process made with
//! `unshare` are joined by path, and a path of the wrong type fails create by entry.
//! Group `nsjoin`.

#[cfg(target_os = "linux")]
use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!("nsjoin", without_a_mount_namespace_create_is_refused),
        test!(
            "nsjoin",
            a_pid_namespace_not_listed_is_the_hosts_and_kill_all_stays_in_the_container
        ),
        test!("nsjoin", namespaces_of_a_holder_process_are_joined_by_path),
        test!("nsjoin", a_path_of_the_wrong_type_fails_create_by_entry),
        test!(
            "nsjoin",
            a_user_namespace_is_joined_by_path_with_new_ones_it_owns
        ),
    ]
}

#[cfg(not(target_os = "linux"))]
fn linux_only(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "Linux namespaces: not this platform".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
use linux_only as without_a_mount_namespace_create_is_refused;
#[cfg(not(target_os = "linux"))]
use linux_only as a_pid_namespace_not_listed_is_the_hosts_and_kill_all_stays_in_the_container;
#[cfg(not(target_os = "linux"))]
use linux_only as namespaces_of_a_holder_process_are_joined_by_path;
#[cfg(not(target_os = "linux"))]
use linux_only as a_path_of_the_wrong_type_fails_create_by_entry;
#[cfg(not(target_os = "linux"))]
use linux_only as a_user_namespace_is_joined_by_path_with_new_ones_it_owns;

/// The namespace link of `pid` (`self` for this process), e.g. `net:[4026531833]`.
#[cfg(target_os = "linux")]
fn ns_link(pid: &str, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
const KINDS: [&str; 5] = ["mnt", "pid", "ipc", "uts", "net"];

/// A script printing `KIND LINK` for each of [`KINDS`] as seen inside.
#[cfg(target_os = "linux")]
fn print_links() -> String {
    KINDS
        .iter()
        .map(|k| format!("echo {k} $(readlink /proc/self/ns/{k}); "))
        .collect()
}

#[cfg(target_os = "linux")]
fn inside(out: &str, kind: &str) -> Result<String, String> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{kind} ")))
        .map(str::to_string)
        .ok_or_else(|| format!("no {kind} line in {out:?}"))
}

#[cfg(target_os = "linux")]
fn without_a_mount_namespace_create_is_refused(ctx: &Ctx) -> TestResult {
    // A linux object without the key lists no namespace (runc reads it so), and a list
    // without "mount" has none: both are refused before anything is made.
    for list in [None, Some(json!([{"type": "pid"}, {"type": "uts"}]))] {
        let mut b = ctx.bundle(&["true"])?;
        match &list {
            Some(l) => b.config["linux"]["namespaces"] = l.clone(),
            None => {
                b.config["linux"]
                    .as_object_mut()
                    .map(|l| l.remove("namespaces"));
                b.config.as_object_mut().map(|c| c.remove("hostname"));
            }
        }
        let id = ctx.id("nomnt");
        let out = ctx.create(&id, &b)?;
        out.expect_failure("create without a mount namespace")?;
        out.expect_stderr_contains("mount namespace")?;
        ctx.ensure_root_empty("after the refused create")?;
    }
    // Without a linux object, or with a jail configuration's (a freebsd section), the jail
    // model decides: a mount and PID namespace of its own, uts and ipc as the jail says.
    for jail_config in [false, true] {
        let mut b = ctx.bundle(&["sh", "-c", &print_links()])?;
        match jail_config {
            false => {
                b.config.as_object_mut().map(|c| c.remove("linux"));
            }
            true => {
                b.config["linux"] = json!({"resources": {"pids": {"limit": 64}}});
                b.config["freebsd"] = json!({"jail": {"host": "new", "sysvshm": "new"}});
            }
        }
        let out = ctx.run_to_stop("nolist", &b)?.0;
        for k in ["mnt", "pid", "uts", "ipc"] {
            let seen = inside(&out, k)?;
            ensure!(
                seen != ns_link("self", k),
                "jail config {jail_config}: {k} is the host's ({seen})"
            );
        }
        ensure_eq!(
            inside(&out, "net")?,
            ns_link("self", "net"),
            "network namespace"
        );
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn a_pid_namespace_not_listed_is_the_hosts_and_kill_all_stays_in_the_container(
    ctx: &Ctx,
) -> TestResult {
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.config["linux"]["namespaces"] = json!([{"type": "mount"}]);
    b.config.as_object_mut().map(|c| c.remove("hostname"));
    let id = ctx.id("hostpid");
    ctx.create_start(&id, &b)?;
    let pid = ctx.pid(&id)?.to_string();
    for k in ["pid", "ipc", "uts", "net", "cgroup"] {
        ensure_eq!(
            ns_link(&pid, k),
            ns_link("self", k),
            "{k} namespace of the init"
        );
    }
    ensure!(
        ns_link(&pid, "mnt") != ns_link("self", "mnt"),
        "the mount namespace is listed but the init has the host's"
    );
    // A host process in the same (the host's) PID namespace must survive kill --all.
    let sentinel = crate::procs::spawn(crate::procs::Spec {
        program: "/bin/sleep".into(),
        args: vec!["1000".into()],
        env: Vec::new(),
        cwd: None,
        stdin: crate::procs::Io::Null,
        stdout: crate::procs::Io::Null,
        stderr: crate::procs::Io::Null,
        extra_fds: Vec::new(),
    })?;
    let watched = crate::host::proc_id(sentinel.pid).ok_or("the sentinel did not start")?;
    let listed = ctx
        .sk(&["ps", "--format", "json", &id])
        .run()?
        .expect_ok()?;
    let pids: Vec<i32> = serde_json::from_str(&listed.stdout)
        .map_err(|e| format!("ps --format json: {e}: {:?}", listed.stdout))?;
    let stop_sentinel = || {
        // SAFETY: kill(2) of the sentinel we spawned; the reaper collects it.
        unsafe { libc::kill(sentinel.pid, libc::SIGKILL) };
    };
    // Checked before any signal: were the host's processes listed, kill --all (and the
    // cleanup's delete --force) would signal them.
    if !(pids.contains(&ctx.pid(&id)?) && !pids.contains(&watched.pid) && pids.len() < 10) {
        stop_sentinel();
        return Err(crate::harness::Fail::Fail(format!(
            "ps lists {pids:?} (the init is {pid}, a host process {})",
            watched.pid
        )));
    }
    let killed = ctx.sk(&["kill", "--all", &id, "KILL"]).run()?;
    let survived = crate::host::alive(watched);
    stop_sentinel();
    let _ = sentinel.wait(std::time::Duration::from_secs(10));
    killed.expect_ok()?;
    ensure!(
        survived,
        "kill --all killed a host process of the same PID namespace"
    );
    ctx.wait_status(&id, "stopped")?;
    Ok(())
}

/// An `unshare --pid --mount --ipc --uts --net --fork --kill-child sleep` process, killed
/// (with its child) when dropped.
#[cfg(target_os = "linux")]
struct Holder {
    pid: i32,
    running: Option<crate::procs::Running>,
}

#[cfg(target_os = "linux")]
impl Holder {
    fn start(ctx: &Ctx) -> Result<Holder, crate::harness::Fail> {
        let flags = ["--pid", "--mount", "--ipc", "--uts", "--net"];
        let mut args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        args.extend(["--fork", "--kill-child", "sleep", "1000"].map(String::from));
        let running = crate::procs::spawn(crate::procs::Spec {
            program: "unshare".into(),
            args,
            env: Vec::new(),
            cwd: None,
            stdin: crate::procs::Io::Null,
            stdout: crate::procs::Io::Null,
            stderr: crate::procs::Io::Null,
            extra_fds: Vec::new(),
        })
        .map_err(|e| crate::harness::Fail::Skip(format!("unshare (util-linux) is needed: {e}")))?;
        let h = Holder {
            pid: running.pid,
            running: Some(running),
        };
        let pid = h.pid.to_string();
        // unshare has unshared once its own namespaces and its children's PID namespace differ.
        ctx.wait_until("unshare to make its namespaces", || {
            ns_link(&pid, "pid_for_children") != ns_link("self", "pid")
                && ns_link(&pid, "net") != ns_link("self", "net")
        })?;
        Ok(h)
    }

    /// The path of its namespace `kind` (the PID namespace of its children for "pid").
    fn path(&self, kind: &str) -> String {
        match kind {
            "pid" => format!("/proc/{}/ns/pid_for_children", self.pid),
            k => format!("/proc/{}/ns/{k}", self.pid),
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the unshare we spawned and have not reaped; --kill-child takes
        // its child with it.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        if let Some(r) = self.running.take() {
            let _ = r.wait(std::time::Duration::from_secs(10));
        }
    }
}

#[cfg(target_os = "linux")]
fn namespaces_of_a_holder_process_are_joined_by_path(ctx: &Ctx) -> TestResult {
    let holder = Holder::start(ctx)?;
    let types = [
        ("pid", "pid"),
        ("mount", "mnt"),
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("network", "net"),
    ];
    let mut b = ctx.bundle(&["sh", "-c", &format!("{} echo me $$", print_links())])?;
    b.config["linux"]["namespaces"] = json!(types
        .iter()
        .map(|(t, k)| json!({"type": t, "path": holder.path(k)}))
        .collect::<Vec<_>>());
    // The UTS namespace is the holder's: its hostname is not the container's to set.
    b.config.as_object_mut().map(|c| c.remove("hostname"));
    let out = ctx.run_to_stop("joined", &b)?.0;
    for (_, k) in types {
        let want = std::fs::read_link(holder.path(k))
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| format!("{}: {e}", holder.path(k)))?;
        ensure_eq!(inside(&out, k)?, want, "{k} namespace inside");
        ensure!(
            want != ns_link("self", k),
            "the holder's {k} namespace is the host's"
        );
    }
    // The holder's sleep is pid 1 there; the container's init is another process of it.
    let me = inside(&out, "me")?;
    ensure!(me != "1", "the init is pid 1 of a joined PID namespace");
    Ok(())
}

#[cfg(target_os = "linux")]
fn a_path_of_the_wrong_type_fails_create_by_entry(ctx: &Ctx) -> TestResult {
    let cases = [
        ("pid", "/proc/self/ns/net", "it is a net namespace"),
        ("mount", "/proc/self/status", "not a namespace file"),
        (
            "ipc",
            "/nonexistent/ns/ipc",
            "opening linux.namespaces[0].path",
        ),
    ];
    for (t, path, says) in cases {
        let mut b = ctx.bundle(&["true"])?;
        let list = b.config["linux"]["namespaces"]
            .as_array_mut()
            .ok_or("namespaces is a list")?;
        list.retain(|n| n["type"] != t);
        list.insert(0, json!({"type": t, "path": path}));
        if t == "mount" {
            // Another mount namespace entry would be listed twice.
            list.retain(|n| n["type"] != "mount" || n.get("path").is_some());
        }
        let id = ctx.id("wrongns");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("{t} namespace path {path}"))?;
        out.expect_stderr_contains("linux.namespaces[0].path")?;
        out.expect_stderr_contains(says)?;
        ctx.ensure_root_empty("after the refused create")?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn a_user_namespace_is_joined_by_path_with_new_ones_it_owns(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    // A holder in a user namespace of its own, its maps written from here (root may).
    let running = crate::procs::spawn(crate::procs::Spec {
        program: "unshare".into(),
        args: ["--user", "sleep", "1000"].map(String::from).to_vec(),
        env: Vec::new(),
        cwd: None,
        stdin: crate::procs::Io::Null,
        stdout: crate::procs::Io::Null,
        stderr: crate::procs::Io::Null,
        extra_fds: Vec::new(),
    })
    .map_err(|e| crate::harness::Fail::Skip(format!("unshare (util-linux) is needed: {e}")))?;
    let holder = running.pid;
    let stop = |running: crate::procs::Running| {
        // SAFETY: kill(2) of the holder we spawned and have not reaped.
        unsafe { libc::kill(holder, libc::SIGKILL) };
        let _ = running.wait(std::time::Duration::from_secs(10));
    };
    let result = (|| -> TestResult {
        let hp = holder.to_string();
        ctx.wait_until("unshare to make its user namespace", || {
            ns_link(&hp, "user") != ns_link("self", "user")
        })?;
        for (file, map) in [
            ("uid_map", "0 310000 65536\n"),
            ("gid_map", "0 410000 65536\n"),
        ] {
            std::fs::write(format!("/proc/{holder}/{file}"), map)
                .map_err(|e| format!("writing /proc/{holder}/{file}: {e}"))?;
        }
        let mut b = ctx.bundle(&[
            "sh",
            "-c",
            &format!(
                "{} echo user $(readlink /proc/self/ns/user); echo me $$; cat /proc/self/uid_map",
                print_links()
            ),
        ])?;
        // The joined namespace's root (host uid 310000) must reach the bundle.
        for d in [&ctx.dir, &b.dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711))
                .map_err(|e| format!("chmod {}: {e}", d.display()))?;
        }
        let list = b.config["linux"]["namespaces"]
            .as_array_mut()
            .ok_or("namespaces is a list")?;
        list.push(json!({"type": "user", "path": format!("/proc/{holder}/ns/user")}));
        let out = ctx.run_to_stop("joinuser", &b)?.0;
        ensure_eq!(
            inside(&out, "user")?,
            ns_link(&hp, "user"),
            "user namespace inside"
        );
        ensure!(
            out.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0", "310000", "65536"]),
            "the uid map inside is not the holder's: {out:?}"
        );
        // The new namespaces are made (and owned by the joined user namespace, or /proc and
        // /dev could not have been mounted): the init is pid 1 of a PID namespace of its own.
        ensure_eq!(inside(&out, "me")?, "1", "the init's pid inside");
        for k in ["mnt", "pid", "net"] {
            ensure!(
                inside(&out, k)? != ns_link("self", k),
                "{k}: the host's namespace inside"
            );
        }
        Ok(())
    })();
    stop(running);
    result
}
