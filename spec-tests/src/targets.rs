//! Planning for a target: `explain` plans the FreeBSD steps with FreeBSD's tables on any
//! host, while `create` plans for the kernel it runs on.

use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![test!(
        "targets",
        a_freebsd_only_rlimit_is_planned_for_freebsd_and_judged_by_the_host_at_create
    )]
}

/// RLIMIT_SWAP exists on FreeBSD only: the FreeBSD plan takes it whatever the host, and a
/// Linux create names it as a limit Linux lacks (a FreeBSD create applies it).
fn a_freebsd_only_rlimit_is_planned_for_freebsd_and_judged_by_the_host_at_create(
    ctx: &Ctx,
) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    b.process()["rlimits"] = json!([{ "type": "RLIMIT_SWAP", "soft": 1048576, "hard": 1048576 }]);
    // The Linux pseudo file systems of the default bundle are not FreeBSD mounts.
    b.config["mounts"] = json!([]);
    b.save()?;
    let id = ctx.id("target");
    let out = ctx
        .sk(&["explain", "--bundle", &b.dir.to_string_lossy(), &id])
        .run()?
        .expect_ok()?;
    ensure!(
        out.stdout.contains("# FreeBSD create steps, in order:")
            && out.stdout.contains("jail_set("),
        "explain did not plan the FreeBSD steps: {:?}",
        out.stdout
    );
    if std::env::consts::OS == "linux" {
        let out = ctx.create(&id, &b)?;
        out.expect_failure("create on Linux with a FreeBSD-only rlimit")?;
        out.expect_stderr_contains("RLIMIT_SWAP is not a resource limit on Linux")?;
        ctx.ensure_root_empty("after the refused create")?;
    } else {
        ctx.create_ok(&id, &b)?;
    }
    Ok(())
}
