//! Rootless containers (issue 10, item 5): an unprivileged user runs the lifecycle (create,
//! start, state, exec, ps, kill, delete, run) with a user namespace whose root is that user,
//! its other ranges from /etc/subuid mapped with newuidmap/newgidmap, and its state under
//! `$XDG_RUNTIME_DIR/stockade`; without a user namespace the error says root or one is
//! needed; runc's `--rootless` values are honoured or refused, never ignored. The user is a
//! system user made for the test (`useradd -r`, with subordinate ranges) and removed after.
//! Group `rootless`.

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!("rootless", rootless_flag_values_are_honoured_or_refused),
        test!(
            "rootless",
            an_unprivileged_create_without_a_user_namespace_says_what_is_needed
        ),
        test!("rootless", an_unprivileged_user_runs_the_lifecycle_rootless),
        test!("rootless", an_unprivileged_user_runs_an_image_rootless),
    ]
}

fn rootless_flag_values_are_honoured_or_refused(ctx: &Ctx) -> TestResult {
    let id = ctx.id("rootless");
    // The suite runs as root: stockade is then not rootless.
    for (flag, says) in [
        ("--rootless=true", "as root"),
        ("--rootless", "as root"),
        ("--rootless=maybe", "expected true, false or auto"),
    ] {
        let out = ctx.sk(&["state", &id]).global(flag).run()?;
        out.expect_failure(flag)?;
        out.expect_stderr_contains(says)?;
    }
    for flag in ["--rootless=false", "--rootless=auto"] {
        let out = ctx.sk(&["state", &id]).global(flag).run()?;
        out.expect_stderr_contains("does not exist")?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn linux_only(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "rootless containers: Linux only".into(),
    ))
}
#[cfg(not(target_os = "linux"))]
use linux_only as an_unprivileged_create_without_a_user_namespace_says_what_is_needed;
#[cfg(not(target_os = "linux"))]
use linux_only as an_unprivileged_user_runs_the_lifecycle_rootless;
#[cfg(not(target_os = "linux"))]
use linux_only as an_unprivileged_user_runs_an_image_rootless;

/// A system user made for one test, with subordinate ids, removed when dropped.
#[cfg(target_os = "linux")]
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    /// The first of its 65536 subordinate uids and gids.
    sub: u32,
}

#[cfg(target_os = "linux")]
const SUB_SIZE: u32 = 65536;

/// Runs `program` through the suite's reaper (std's own wait would race it), its output
/// captured in files (a container's init keeps the create's stdio open).
#[cfg(target_os = "linux")]
fn capture(
    ctx: &Ctx,
    program: &str,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> Result<(bool, String, String), String> {
    let n = ctx.transcript().len();
    let (out_path, err_path) = (
        ctx.path(&format!("cap{n}.out")),
        ctx.path(&format!("cap{n}.err")),
    );
    let file =
        |p: &std::path::Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let running = crate::procs::spawn(crate::procs::Spec {
        program: program.into(),
        args: args.clone(),
        env,
        cwd: Some(ctx.dir.clone()),
        stdin: crate::procs::Io::Null,
        stdout: crate::procs::Io::Fd(file(&out_path)?.into()),
        stderr: crate::procs::Io::Fd(file(&err_path)?.into()),
        extra_fds: Vec::new(),
    })?;
    let exit = running.wait(std::time::Duration::from_secs(120))?;
    let (out, err) = (
        crate::ctx::read_text(&out_path),
        crate::ctx::read_text(&err_path),
    );
    ctx.note(format!(
        "$ {program} {} -> {exit}; stdout {out:?}; stderr {err:?}",
        args.join(" ")
    ));
    Ok((exit.success(), out, err))
}

#[cfg(target_os = "linux")]
fn tool(ctx: &Ctx, program: &str, args: &[&str]) -> Result<String, String> {
    let (ok, out, err) = capture(
        ctx,
        program,
        args.iter().map(|a| a.to_string()).collect(),
        Vec::new(),
    )?;
    if !ok {
        return Err(format!("{program} {}: {}", args.join(" "), err.trim()));
    }
    Ok(out)
}

#[cfg(target_os = "linux")]
impl TestUser {
    fn make(ctx: &Ctx) -> Result<TestUser, crate::harness::Fail> {
        if std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
            .is_ok_and(|v| v.trim() == "0")
        {
            return Err(crate::harness::Fail::Skip(
                "kernel.unprivileged_userns_clone is 0: this kernel forbids unprivileged user namespaces".into(),
            ));
        }
        let name = format!("stkrl{}", std::process::id() % 100000);
        tool(
            ctx,
            "useradd",
            &["-r", "-M", "-s", "/usr/sbin/nologin", &name],
        )
        .map_err(crate::harness::Fail::Skip)?;
        let id = |flag: &str| -> Result<u32, String> {
            tool(ctx, "id", &[flag, &name])?
                .trim()
                .parse()
                .map_err(|e| format!("id {flag} {name}: {e}"))
        };
        // Subordinate ranges far from any the host hands out (those start at 100000).
        let sub = 1_500_000 + (std::process::id() % 1000) * SUB_SIZE;
        // Made now, so that a failure below still removes the user.
        let mut user = TestUser {
            name: name.clone(),
            uid: 0,
            gid: 0,
            sub,
        };
        user.uid = id("-u")?;
        user.gid = id("-g")?;
        for file in ["/etc/subuid", "/etc/subgid"] {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(file)
                .map_err(|e| format!("{file}: {e}"))?;
            writeln!(f, "{}:{}:{SUB_SIZE}", user.name, user.sub)
                .map_err(|e| format!("{file}: {e}"))?;
        }
        Ok(user)
    }
}

#[cfg(target_os = "linux")]
impl Drop for TestUser {
    fn drop(&mut self) {
        let prefix = format!("{}:", self.name);
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = std::fs::read_to_string(file) {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(file, kept);
            }
        }
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .output();
    }
}

/// Runs stockade as `user` (setpriv) with `XDG_RUNTIME_DIR=xdg` and no `--root`, in the
/// bundle directory.
#[cfg(target_os = "linux")]
fn as_user(
    ctx: &Ctx,
    user: &TestUser,
    xdg: &std::path::Path,
    bundle: &std::path::Path,
    args: &[&str],
) -> Result<(bool, String, String), String> {
    let mut argv = vec![
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
        "--clear-groups".into(),
        ctx.env.stockade.to_string_lossy().into_owned(),
    ];
    let bundle_arg = bundle.to_string_lossy().into_owned();
    let image = args.contains(&"--image");
    for a in args {
        argv.push(a.to_string());
        if (*a == "create" || *a == "run") && !image {
            argv.extend(["--bundle".to_string(), bundle_arg.clone()]);
        }
    }
    capture(
        ctx,
        "setpriv",
        argv,
        vec![("XDG_RUNTIME_DIR".into(), xdg.to_string_lossy().into_owned())],
    )
}

/// A bundle the user can read, and a private runtime directory it owns.
#[cfg(target_os = "linux")]
fn user_bundle(
    ctx: &Ctx,
    user: &TestUser,
    args: &[&str],
    maps: Option<serde_json::Value>,
) -> Result<(crate::bundle::Bundle, std::path::PathBuf), crate::harness::Fail> {
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;
    let mut b = ctx.bundle(args)?;
    for d in [&ctx.dir, &b.dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", d.display()))?;
    }
    let xdg = ctx.path("xdg");
    std::fs::create_dir_all(&xdg).map_err(|e| format!("mkdir {}: {e}", xdg.display()))?;
    std::os::unix::fs::chown(&xdg, Some(user.uid), Some(user.gid))
        .map_err(|e| format!("chown {}: {e}", xdg.display()))?;
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", xdg.display()))?;
    if let Some(maps) = maps {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .ok_or("namespaces is a list")?
            .push(json!({"type": "user"}));
        b.config["linux"]["uidMappings"] = maps["uid"].clone();
        b.config["linux"]["gidMappings"] = maps["gid"].clone();
        // As `runc spec --rootless` has it: gid 5 is not mapped, and devpts refuses it.
        for m in b.config["mounts"]
            .as_array_mut()
            .ok_or("mounts is a list")?
        {
            if m["type"] == "devpts" {
                if let Some(o) = m["options"].as_array_mut() {
                    o.retain(|o| o != "gid=5");
                }
            }
        }
    }
    b.save()?;
    Ok((b, xdg))
}

#[cfg(target_os = "linux")]
fn an_unprivileged_create_without_a_user_namespace_says_what_is_needed(ctx: &Ctx) -> TestResult {
    ctx.require_containers()?;
    let user = TestUser::make(ctx)?;
    let (b, xdg) = user_bundle(ctx, &user, &["true"], None)?;
    let (ok, _, err) = as_user(ctx, &user, &xdg, &b.dir, &["create", "nouserns"])?;
    ensure!(
        !ok,
        "create without a user namespace succeeded as {}",
        user.name
    );
    ensure!(
        err.contains("root is needed, or (rootless) a user namespace")
            && !err.contains("Operation not permitted"),
        "{err:?}"
    );
    let (ok, _, err) = as_user(ctx, &user, &xdg, &b.dir, &["--rootless=false", "list"])?;
    ensure!(
        !ok && err.contains("root is needed"),
        "--rootless=false unprivileged: {err:?}"
    );
    Ok(())
}

#[cfg(target_os = "linux")]
fn an_unprivileged_user_runs_the_lifecycle_rootless(ctx: &Ctx) -> TestResult {
    use serde_json::json;
    ctx.require_containers()?;
    let user = TestUser::make(ctx)?;
    // Podman's rootless mapping: the user is root inside, its subordinate ids the rest.
    let range = |own: u32| {
        json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": user.sub, "size": SUB_SIZE}
        ])
    };
    let maps = json!({"uid": range(user.uid), "gid": range(user.gid)});
    let (mut b, xdg) = user_bundle(ctx, &user, &["sleep", "1000"], Some(maps))?;
    let dir = b.dir.clone();
    let run = |args: &[&str]| as_user(ctx, &user, &xdg, &dir, args);
    let fail = |what: &str, err: &str| crate::harness::Fail::Fail(format!("{what}: {err}"));
    let (ok, _, err) = run(&["create", "rl1"])?;
    ensure!(ok, "rootless create: {err}");
    ensure!(
        xdg.join("stockade").join("rl1").is_dir(),
        "the state is not under $XDG_RUNTIME_DIR/stockade"
    );
    let result = (|| -> TestResult {
        let (ok, _, err) = run(&["start", "rl1"])?;
        ensure!(ok, "rootless start: {err}");
        let (ok, state, err) = run(&["state", "rl1"])?;
        ensure!(ok && state.contains("\"running\""), "state: {state} {err}");
        let (ok, out, err) = run(&["exec", "rl1", "sh", "-c", "cat /proc/self/uid_map; id -u"])?;
        ensure!(ok, "rootless exec: {err}");
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let (own, sub) = (user.uid.to_string(), user.sub.to_string());
        ensure!(
            lines.contains(&vec!["0", own.as_str(), "1"])
                && lines.contains(&vec!["1", sub.as_str(), "65536"])
                && lines.last() == Some(&vec!["0"]),
            "uid_map and id inside: {out:?}"
        );
        let (ok, ps, err) = run(&["ps", "--format", "json", "rl1"])?;
        ensure!(ok && ps.trim_start().starts_with('['), "ps: {ps} {err}");
        let (ok, _, err) = run(&["kill", "rl1", "KILL"])?;
        ensure!(ok, "rootless kill: {err}");
        ctx.wait_until("the rootless container to stop", || {
            run(&["state", "rl1"]).is_ok_and(|(_, s, _)| s.contains("\"stopped\""))
        })?;
        Ok(())
    })();
    let (ok, _, err) = run(&["delete", "--force", "rl1"])?;
    result?;
    ensure!(ok, "rootless delete: {err}");
    ensure!(
        !xdg.join("stockade").join("rl1").exists(),
        "delete left the state directory"
    );
    // run: the foreground form, its output and exit status the process's.
    b.config["process"]["args"] = json!(["sh", "-c", "echo rootless-run $(id -u)"]);
    b.save()?;
    let (ok, out, err) = run(&["run", "rl2"]).map_err(|e| fail("run", &e))?;
    ensure!(
        ok && out.contains("rootless-run 0"),
        "rootless run: {out:?} {err:?}"
    );
    Ok(())
}

/// Gives `dir` and everything under it (links not followed) to `uid`:`gid`.
#[cfg(target_os = "linux")]
fn give(dir: &std::path::Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
        .map_err(|e| format!("lchown {}: {e}", dir.display()))?;
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            give(&e.map_err(|e| e.to_string())?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn an_unprivileged_user_runs_an_image_rootless(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let store = crate::images::store_with_image(ctx, "localhost/spec/rootless:1", "r")?;
    let user = TestUser::make(ctx)?;
    std::fs::set_permissions(&ctx.dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", ctx.dir.display()))?;
    give(&store, user.uid, user.gid)?;
    let storage = ctx.path("storage");
    std::fs::create_dir_all(&storage).map_err(|e| format!("mkdir: {e}"))?;
    give(&storage, user.uid, user.gid)?;
    let xdg = ctx.path("xdg");
    std::fs::create_dir_all(&xdg).map_err(|e| format!("mkdir: {e}"))?;
    give(&xdg, user.uid, user.gid)?;
    let (store_s, storage_s) = (store.display().to_string(), storage.display().to_string());
    let (ok, out, err) = as_user(
        ctx,
        &user,
        &xdg,
        &ctx.dir,
        &[
            "run",
            "--image",
            "localhost/spec/rootless:1",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage_s,
            "--rm",
            "--name",
            "rlimg",
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map; id -u; ls /sys/kernel >/dev/null && echo sys-ok",
        ],
    )?;
    ensure!(ok, "rootless run --image: {err}");
    let own = user.uid.to_string();
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    ensure!(
        lines.contains(&vec!["0", own.as_str(), "1"])
            && lines.contains(&vec!["0"])
            && lines.contains(&vec!["sys-ok"]),
        "inside the image's container: {out:?}"
    );
    ensure!(
        err.contains("rootless: no cgroup is made"),
        "no warning says what rootless leaves unapplied: {err:?}"
    );
    Ok(())
}
