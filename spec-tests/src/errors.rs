//! The errors callers rely on, their texts, and that a refused operation has no effect.

use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};
use crate::host;

pub fn tests() -> Vec<Test> {
    vec![
        test!("errors", create_with_empty_id_fails_and_leaves_nothing),
        test!("errors", create_with_invalid_id_fails_and_leaves_nothing),
        test!(
            "errors",
            create_accepts_a_255_byte_id_of_every_allowed_character
        ),
        test!(
            "errors",
            create_with_duplicate_id_fails_and_leaves_the_first_intact
        ),
        test!("errors", start_twice_fails_and_the_process_runs_once),
        test!("errors", start_of_stopped_container_fails_with_no_effect),
        test!("errors", kill_of_stopped_container_fails_with_no_effect),
        test!("errors", kill_with_unknown_signal_fails_with_no_effect),
        test!("errors", start_of_unknown_id_says_does_not_exist),
        test!("errors", state_of_unknown_id_says_does_not_exist),
        test!("errors", kill_of_unknown_id_says_does_not_exist),
        test!("errors", delete_of_unknown_id_says_does_not_exist),
        test!("errors", delete_force_of_unknown_id_exits_zero),
        test!(
            "errors",
            missing_entrypoint_fails_create_with_the_path_in_the_message
        ),
        test!(
            "errors",
            non_executable_entrypoint_fails_create_with_the_path_in_the_message
        ),
        test!(
            "errors",
            entrypoint_not_in_container_path_fails_create_naming_it
        ),
        test!("errors", oci_version_that_is_not_1x_fails_create),
        test!("errors", unknown_properties_and_annotations_are_accepted),
        test!("errors", unknown_rlimit_fails_create_naming_it),
    ]
}

/// The create must fail, leave nothing under --root, and mount nothing on the host.
fn expect_create_refused(ctx: &Ctx, id: &str, b: &crate::bundle::Bundle, why: &str) -> TestResult {
    let out = ctx.create(id, b)?;
    out.expect_failure(why)?;
    ctx.ensure_root_empty(why)?;
    let mounts = host::mounts_under(&b.dir).unwrap_or_default();
    ensure!(mounts.is_empty(), "{why}: left mounts {mounts:?}");
    Ok(())
}

fn create_with_empty_id_fails_and_leaves_nothing(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    expect_create_refused(ctx, "", &b, "create with an empty id")
}

fn create_with_invalid_id_fails_and_leaves_nothing(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let too_long = "a".repeat(256);
    let invalid = [
        ".",
        "..",
        "a/b",
        "../escape",
        "with space",
        "tab\there",
        "new\nline",
        "semi;colon",
        "star*",
        "dollar$",
        "colon:x",
        "ünïcode",
        too_long.as_str(),
    ];
    let mut accepted = Vec::new();
    for id in invalid {
        let out = ctx.create(id, &b)?;
        if out.ok() {
            accepted.push(id.to_string());
            let _ = ctx.sk(&["delete", "--force", id]).run();
        }
    }
    ensure!(
        accepted.is_empty(),
        "create accepted invalid ids {accepted:?}"
    );
    ctx.ensure_root_empty("after refused creates")?;
    ensure!(
        !ctx.dir.join("escape").exists(),
        "an id with `..` made something outside --root"
    );
    Ok(())
}

fn create_accepts_a_255_byte_id_of_every_allowed_character(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let mut id = format!("AZaz09_.+-{}-", std::process::id());
    while id.len() < 255 {
        id.push('x');
    }
    ctx.create_ok(&id, &b)?;
    let st = ctx.state(&id)?;
    ensure_eq!(st["id"].as_str(), Some(id.as_str()), "state.id");
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    Ok(())
}

fn create_with_duplicate_id_fails_and_leaves_the_first_intact(ctx: &Ctx) -> TestResult {
    let first = ctx.bundle(&["sleep", "1000"])?;
    let second = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("dup");
    ctx.create_ok(&id, &first)?;
    let before = ctx.state(&id)?;
    ctx.create(&id, &second)?
        .expect_failure("create with an id already in use")?;
    let after = ctx.state(&id)?;
    ensure_eq!(
        after["status"],
        before["status"],
        "status of the first container"
    );
    ensure_eq!(after["pid"], before["pid"], "pid of the first container");
    ensure_eq!(
        after["bundle"],
        before["bundle"],
        "bundle of the first container"
    );
    let pid = ctx.pid(&id)?;
    ensure!(
        host::proc_id(pid).is_some_and(host::alive),
        "the first container's init died"
    );
    Ok(())
}

fn start_twice_fails_and_the_process_runs_once(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sh", "-c", "echo ran-once; sleep 1000"])?;
    let id = ctx.id("twice");
    let out = ctx.create_start(&id, &b)?;
    ctx.sk(&["start", &id])
        .run()?
        .expect_failure("second start")?;
    ensure_eq!(ctx.status(&id)?, "running", "status after the second start");
    ctx.wait_until("the process output", || {
        out.stdout_now().contains("ran-once")
    })?;
    ensure_eq!(
        out.stdout_now().matches("ran-once").count(),
        1,
        "times the process ran"
    );
    Ok(())
}

fn start_of_stopped_container_fails_with_no_effect(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["echo", "ran"])?;
    let id = ctx.id("startstopped");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["start", &id])
        .run()?
        .expect_failure("start of a stopped container")?;
    ensure_eq!(
        ctx.status(&id)?,
        "stopped",
        "status after the refused start"
    );
    ensure_eq!(
        out.stdout_now().matches("ran").count(),
        1,
        "times the process ran"
    );
    Ok(())
}

fn kill_of_stopped_container_fails_with_no_effect(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("killstopped");
    ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    let before = ctx.state(&id)?;
    let out = ctx.sk(&["kill", &id, "KILL"]).run()?;
    out.expect_failure("kill of a stopped container")?;
    out.expect_stderr_contains("container not running")?;
    let after = ctx.state(&id)?;
    ensure_eq!(after, before, "state after the refused kill");
    Ok(())
}

fn kill_with_unknown_signal_fails_with_no_effect(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("badsig");
    ctx.create_start(&id, &b)?;
    for sig in ["NOTASIGNAL", "SIGBOGUS", "99999", "-1"] {
        ctx.sk(&["kill", &id, sig])
            .run()?
            .expect_failure(&format!("kill with signal {sig:?}"))?;
    }
    ensure_eq!(ctx.status(&id)?, "running", "status after refused kills");
    Ok(())
}

fn unknown_id_check(ctx: &Ctx, args: &[&str]) -> TestResult {
    let out = ctx.sk(args).run()?;
    out.expect_failure(&args.join(" "))?;
    out.expect_stderr_contains("does not exist")?;
    ctx.ensure_root_empty("after an operation on an unknown id")?;
    Ok(())
}

fn start_of_unknown_id_says_does_not_exist(ctx: &Ctx) -> TestResult {
    unknown_id_check(ctx, &["start", "no-such-container"])
}

fn state_of_unknown_id_says_does_not_exist(ctx: &Ctx) -> TestResult {
    unknown_id_check(ctx, &["state", "no-such-container"])
}

fn kill_of_unknown_id_says_does_not_exist(ctx: &Ctx) -> TestResult {
    unknown_id_check(ctx, &["kill", "no-such-container", "TERM"])
}

fn delete_of_unknown_id_says_does_not_exist(ctx: &Ctx) -> TestResult {
    unknown_id_check(ctx, &["delete", "no-such-container"])
}

fn delete_force_of_unknown_id_exits_zero(ctx: &Ctx) -> TestResult {
    let out = ctx.sk(&["delete", "--force", "no-such-container"]).run()?;
    ensure!(
        out.ok(),
        "delete --force of an unknown id: {} ({})",
        out.exit,
        out.stderr.trim()
    );
    ctx.ensure_root_empty("after delete --force of an unknown id")?;
    Ok(())
}

fn missing_entrypoint_fails_create_with_the_path_in_the_message(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["/no/such/entrypoint", "arg"])?;
    let id = ctx.id("noentry");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with a missing entrypoint")?;
    out.expect_stderr_contains("/no/such/entrypoint")?;
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}

fn non_executable_entrypoint_fails_create_with_the_path_in_the_message(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["/bin/not-executable"])?;
    std::fs::write(b.rootfs.join("bin/not-executable"), "#!/bin/sh\necho ran\n")
        .map_err(|e| e.to_string())?;
    let id = ctx.id("noexec");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with a non-executable entrypoint")?;
    out.expect_stderr_contains("/bin/not-executable")?;
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}

fn entrypoint_not_in_container_path_fails_create_naming_it(ctx: &Ctx) -> TestResult {
    // `ls` exists on the host but the name below exists nowhere.
    let b = ctx.bundle(&["no-such-command-anywhere"])?;
    let id = ctx.id("nopath");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with an entrypoint not found in PATH")?;
    out.expect_stderr_contains("no-such-command-anywhere")?;
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}

fn oci_version_that_is_not_1x_fails_create(ctx: &Ctx) -> TestResult {
    for version in ["2.0.0", "banana", "0.9.0"] {
        let mut b = ctx.bundle(&["true"])?;
        b.config["ociVersion"] = json!(version);
        let id = ctx.id("ociver");
        expect_create_refused(ctx, &id, &b, &format!("create with ociVersion {version:?}"))?;
    }
    Ok(())
}

fn unknown_properties_and_annotations_are_accepted(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["echo", "accepted"])?;
    b.config["org.example.unknownTopLevel"] = json!({"nested": [1, 2, 3]});
    b.process()["org.example.unknownProcessField"] = json!(true);
    b.config["annotations"] = json!({
        "org.example.unknown": "value",
        "com.example.other/annotation": "x"
    });
    b.config["ociVersion"] = json!("1.0.2");
    let id = ctx.id("unknown");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    ensure!(
        out.stdout_now().contains("accepted"),
        "the process did not run"
    );
    Ok(())
}

fn unknown_rlimit_fails_create_naming_it(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    b.process()["rlimits"] = json!([{ "type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1 }]);
    let id = ctx.id("rlimit");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with an unknown rlimit")?;
    out.expect_stderr_contains("RLIMIT_NOT_A_LIMIT")?;
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}
