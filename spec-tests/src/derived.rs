//! What create derives for later commands (`derived.json`) and the create handshake's typed
//! failure: exec and poststop follow the configuration as it was at create, a damaged
//! record is refused clearly without keeping the container from being deleted, and an
//! init that fails reaches create's error with its step and errno.

use serde_json::json;

use crate::ctx::{read_text, Ctx};
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "derived",
            exec_and_poststop_follow_the_configuration_as_created
        ),
        test!(
            "derived",
            a_corrupt_derived_record_fails_exec_and_delete_still_removes_the_container
        ),
        test!(
            "derived",
            an_init_failure_reaches_create_with_its_step_and_errno
        ),
        test!(
            "derived",
            an_exec_failure_comes_back_with_its_step_and_errno
        ),
    ]
}

fn exec_and_poststop_follow_the_configuration_as_created(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.add_env("DERIVED=created");
    let marker = ctx.path("poststop-ran");
    b.config["hooks"] = json!({
        "poststop": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo ran > {}", marker.display())]
        }]
    });
    let id = ctx.id("derived");
    ctx.create_start(&id, &b)?;
    // The bundle changes under the running container: neither exec nor delete may see it.
    b.process()["env"] = json!([crate::bundle::DEFAULT_PATH, "DERIVED=edited"]);
    b.config["hooks"] = json!({});
    b.save()?;
    let out = ctx
        .sk(&["exec", &id, "sh", "-c", "echo \"derived=$DERIVED\""])
        .run()?
        .expect_ok()?;
    ensure!(
        out.stdout.contains("derived=created"),
        "exec did not start from the process as created: {:?}",
        out.stdout
    );
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    ensure_eq!(
        read_text(&marker).trim(),
        "ran",
        "the poststop hook as created ran on delete"
    );
    ctx.ensure_root_empty("after delete")?;
    Ok(())
}

fn a_corrupt_derived_record_fails_exec_and_delete_still_removes_the_container(
    ctx: &Ctx,
) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("corrupt");
    ctx.create_start(&id, &b)?;
    let record = ctx.root.join(&id).join("derived.json");
    ensure!(record.is_file(), "create wrote no {}", record.display());
    std::fs::write(&record, b"{\"version\": 1, \"process\": 7}").map_err(|e| e.to_string())?;
    let out = ctx.sk(&["exec", &id, "true"]).run()?;
    out.expect_failure("exec with a corrupt derived.json")?;
    out.expect_stderr_contains("derived.json: corrupt state")?;
    std::fs::write(&record, b"{\"version\": 99}").map_err(|e| e.to_string())?;
    let out = ctx.sk(&["exec", &id, "true"]).run()?;
    out.expect_failure("exec with a derived.json of another version")?;
    out.expect_stderr_contains("format version 99")?;
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    ctx.ensure_root_empty("after delete --force")?;
    Ok(())
}

fn an_init_failure_reaches_create_with_its_step_and_errno(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    // An option tmpfs refuses: mount(2) in the init fails with EINVAL.
    b.add_mount(json!({
        "destination": "/mnt",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=not-a-size"]
    }));
    let id = ctx.id("initfail");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with a mount of an unknown file system type")?;
    out.expect_stderr_contains("the init process failed setting up the container")?;
    out.expect_stderr_contains("Invalid argument")?;
    ctx.ensure_root_empty("after the failed create")?;
    Ok(())
}

fn an_exec_failure_comes_back_with_its_step_and_errno(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("execfail");
    ctx.create_start(&id, &b)?;
    let out = ctx
        .sk(&["exec", "--cwd", "/no/such/dir", &id, "true"])
        .run()?;
    out.expect_failure("exec with a missing working directory")?;
    out.expect_stderr_contains("the exec'd process failed executing the process")?;
    out.expect_stderr_contains("process.cwd /no/such/dir: ENOENT")?;
    // The container is untouched by its failed exec.
    ensure_eq!(ctx.status(&id)?, "running", "status after the failed exec");
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    Ok(())
}
