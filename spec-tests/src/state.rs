//! `state`: valid against state-schema.json in every status, with the fields callers read.

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::host;
use crate::schema;

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "state",
            state_is_valid_against_the_schema_when_created_running_and_stopped
        ),
        test!(
            "state",
            state_reports_id_and_absolute_bundle_for_a_relative_bundle_path
        ),
        test!("state", state_annotations_are_the_configured_strings),
        test!("state", state_reports_rootfs_created_rfc3339_and_owner),
        test!("state", state_pid_is_the_host_pid_of_the_container_init),
    ]
}

fn check_schema(ctx: &Ctx, st: &Value, when: &str) -> TestResult {
    schema::validate(&ctx.env.schema_dir, "state-schema.json", st)
        .map_err(|e| Fail::Fail(format!("state while {when}: {e}")))
}

fn state_is_valid_against_the_schema_when_created_running_and_stopped(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done"])?;
    let id = ctx.id("schema");
    ctx.create_ok(&id, &b)?;
    let st = ctx.state(&id)?;
    check_schema(ctx, &st, "created")?;
    ensure_eq!(st["status"].as_str(), Some("created"), "status");
    ensure!(
        st["pid"].as_i64().is_some_and(|p| p > 0),
        "no pid while created: {st}"
    );

    ctx.start_ok(&id)?;
    let st = ctx.state(&id)?;
    check_schema(ctx, &st, "running")?;
    ensure_eq!(st["status"].as_str(), Some("running"), "status");
    ensure!(
        st["pid"].as_i64().is_some_and(|p| p > 0),
        "no pid while running: {st}"
    );

    std::fs::write(b.rootfs.join("tmp/go"), "").map_err(|e| e.to_string())?;
    ctx.wait_status(&id, "stopped")?;
    let st = ctx.state(&id)?;
    check_schema(ctx, &st, "stopped")?;
    Ok(())
}

fn state_reports_id_and_absolute_bundle_for_a_relative_bundle_path(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    b.save()?;
    let id = ctx.id("relbundle");
    ctx.track(&id);
    let parent = b.dir.parent().ok_or("bundle has no parent")?;
    let rel = b
        .dir
        .file_name()
        .ok_or("bundle has no name")?
        .to_string_lossy()
        .into_owned();
    ctx.sk(&["create", "--bundle", &rel, &id])
        .cwd(parent)
        .run()?
        .expect_ok()?;
    let st = ctx.state(&id)?;
    ensure_eq!(st["id"].as_str(), Some(id.as_str()), "state.id");
    let bundle = st["bundle"]
        .as_str()
        .ok_or("state.bundle is not a string")?;
    ensure!(
        bundle.starts_with('/'),
        "state.bundle {bundle:?} is not absolute"
    );
    let want = std::fs::canonicalize(&b.dir).map_err(|e| e.to_string())?;
    let got = std::fs::canonicalize(bundle).map_err(|e| format!("state.bundle {bundle:?}: {e}"))?;
    ensure_eq!(got, want, "state.bundle resolves to");
    Ok(())
}

fn state_annotations_are_the_configured_strings(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    let annotations = json!({
        "org.example.text": "hello world",
        "org.example.number": "42",
        "org.example.bool": "true",
        "org.example.empty": ""
    });
    b.config["annotations"] = annotations.clone();
    let id = ctx.id("annot");
    ctx.create_ok(&id, &b)?;
    let st = ctx.state(&id)?;
    let got = st.get("annotations").ok_or("state has no annotations")?;
    if let Some(map) = got.as_object() {
        for (k, v) in map {
            ensure!(v.is_string(), "annotation {k} is not a string: {v}");
        }
    }
    ensure_eq!(got, &annotations, "state.annotations");
    Ok(())
}

fn state_reports_rootfs_created_rfc3339_and_owner(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("extra");
    ctx.create_ok(&id, &b)?;
    let st = ctx.state(&id)?;
    let rootfs = st["rootfs"]
        .as_str()
        .ok_or_else(|| format!("no string rootfs: {st}"))?;
    ensure!(rootfs.starts_with('/'), "rootfs {rootfs:?} is not absolute");
    let want = std::fs::canonicalize(&b.rootfs).map_err(|e| e.to_string())?;
    let got = std::fs::canonicalize(rootfs).map_err(|e| format!("state.rootfs {rootfs:?}: {e}"))?;
    ensure_eq!(got, want, "state.rootfs resolves to");
    let created = st["created"]
        .as_str()
        .ok_or_else(|| format!("no string created: {st}"))?;
    chrono::DateTime::parse_from_rfc3339(created)
        .map_err(|e| format!("created {created:?} is not RFC3339: {e}"))?;
    ensure!(st["owner"].is_string(), "owner is not a string: {st}");
    Ok(())
}

fn state_pid_is_the_host_pid_of_the_container_init(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("nspid");
    ctx.create_start(&id, &b)?;
    let pid = ctx.pid(&id)?;
    ensure!(
        host::proc_id(pid).is_some_and(host::alive),
        "state.pid {pid} is not a live host process"
    );
    if cfg!(target_os = "linux") {
        // In its own pid namespace the init is pid 1: the last NSpid value.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
        let nspid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .ok_or("no NSpid line")?;
        let ids: Vec<&str> = nspid.split_whitespace().collect();
        ensure!(
            ids.len() >= 2 && ids.last() == Some(&"1"),
            "state.pid {pid} is not pid 1 of a new pid namespace (NSpid: {nspid:?})"
        );
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        ensure!(
            String::from_utf8_lossy(&cmdline).starts_with("sleep\0"),
            "state.pid runs {:?}, not the container's process",
            String::from_utf8_lossy(&cmdline)
        );
    }
    Ok(())
}
