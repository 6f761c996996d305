//! What stockade says about rootless use, which it does not have yet: runc's global
//! `--rootless=true` is refused rather than ignored, a bad value is refused, and an
//! unprivileged user who creates a container is told root is needed (not a bare EPERM from
//! clone). Group `rootless`.

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!("rootless", rootless_true_is_refused_and_a_bad_value_too),
        test!("rootless", an_unprivileged_create_says_root_is_needed),
    ]
}

fn rootless_true_is_refused_and_a_bad_value_too(ctx: &Ctx) -> TestResult {
    let id = ctx.id("rootless");
    for (flag, says) in [
        ("--rootless=true", "no rootless mode"),
        ("--rootless", "no rootless mode"),
        ("--rootless=maybe", "expected true, false or auto"),
    ] {
        let out = ctx.sk(&["state", &id]).global(flag).run()?;
        out.expect_failure(flag)?;
        out.expect_stderr_contains(says)?;
    }
    // false and auto (as root: not rootless) are what runc takes too.
    for flag in ["--rootless=false", "--rootless=auto"] {
        let out = ctx.sk(&["state", &id]).global(flag).run()?;
        out.expect_stderr_contains("does not exist")?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn an_unprivileged_create_says_root_is_needed(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "the Linux backend's check: not this platform".into(),
    ))
}

#[cfg(target_os = "linux")]
fn an_unprivileged_create_says_root_is_needed(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let b = ctx.bundle(&["true"])?;
    b.save()?;
    // nobody must reach the bundle and own a state root of its own.
    let root = ctx.path("nobody-root");
    std::fs::create_dir_all(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
    std::os::unix::fs::chown(&root, Some(65534), Some(65534))
        .map_err(|e| format!("chown {}: {e}", root.display()))?;
    for d in [&ctx.dir, &b.dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", d.display()))?;
    }
    let err_file = ctx.path("nobody.err");
    let err = std::fs::File::create(&err_file).map_err(|e| e.to_string())?;
    let run = crate::procs::spawn(crate::procs::Spec {
        program: "setpriv".into(),
        args: [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &ctx.env.stockade.to_string_lossy(),
            "--root",
            &root.to_string_lossy(),
            "create",
            "--bundle",
            &b.dir.to_string_lossy(),
            &ctx.id("nobody"),
        ]
        .map(String::from)
        .to_vec(),
        env: Vec::new(),
        cwd: None,
        stdin: crate::procs::Io::Null,
        stdout: crate::procs::Io::Null,
        stderr: crate::procs::Io::Fd(err.into()),
        extra_fds: Vec::new(),
    })
    .map_err(|e| crate::harness::Fail::Skip(format!("setpriv (util-linux) is needed: {e}")))?;
    let exit = run.wait(std::time::Duration::from_secs(60))?;
    let text = crate::ctx::read_text(&err_file);
    ensure!(!exit.success(), "create as nobody succeeded: {text:?}");
    ensure!(
        text.contains("root is needed") && !text.contains("Operation not permitted"),
        "create as nobody: {text:?}"
    );
    Ok(())
}
