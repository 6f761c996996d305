//! `ps` and `features` (issue 4).

use serde_json::Value;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::host;
use crate::schema;

pub fn tests() -> Vec<Test> {
    vec![
        test!("ps", ps_json_lists_the_host_pids_of_every_container_process),
        test!("ps", ps_table_mentions_the_init_pid),
        test!("ps", ps_of_unknown_id_says_does_not_exist),
        test!("features", features_is_valid_against_the_features_schema),
        test!(
            "features",
            features_lists_all_six_hooks_and_a_freebsd_object
        ),
    ]
}

fn ps_json_lists_the_host_pids_of_every_container_process(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sh", "-c", "sleep 1000 & sleep 1000 & echo up; wait"])?;
    let id = ctx.id("ps");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_until("the container to start its children", || {
        out.stdout_now().contains("up")
    })?;
    let init = ctx.pid(&id)?;
    let ps = ctx
        .sk(&["ps", "--format", "json", &id])
        .run()?
        .expect_ok()?;
    let v: Value = serde_json::from_str(&ps.stdout)
        .map_err(|e| format!("ps --format json is not JSON ({e}): {:?}", ps.stdout))?;
    let arr = v.as_array().ok_or_else(|| format!("not an array: {v}"))?;
    let mut pids = Vec::new();
    for p in arr {
        let pid = p
            .as_i64()
            .ok_or_else(|| format!("not an integer pid: {p}"))?;
        pids.push(pid as i32);
    }
    pids.sort_unstable();
    ensure!(
        pids.contains(&init),
        "ps lacks the init pid {init}: {pids:?}"
    );
    ensure_eq!(
        pids.len(),
        3,
        "number of processes (sh and two sleeps) in {pids:?}"
    );
    #[cfg(target_os = "linux")]
    {
        let ns = host::pid_namespace(init).ok_or("cannot read the init's pid namespace")?;
        ensure_eq!(
            pids,
            host::pids_in_namespace(&ns),
            "ps against the processes of the pid namespace"
        );
    }
    for pid in &pids {
        ensure!(
            host::proc_id(*pid).is_some_and(host::alive),
            "pid {pid} from ps is not alive"
        );
    }
    Ok(())
}

fn ps_table_mentions_the_init_pid(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("pstable");
    ctx.create_start(&id, &b)?;
    let init = ctx.pid(&id)?.to_string();
    let out = ctx.sk(&["ps", &id]).run()?.expect_ok()?;
    ensure!(
        out.stdout.split_whitespace().any(|w| w == init),
        "ps table does not mention the init pid {init}: {:?}",
        out.stdout
    );
    Ok(())
}

fn ps_of_unknown_id_says_does_not_exist(ctx: &Ctx) -> TestResult {
    let out = ctx
        .sk(&["ps", "--format", "json", "no-such-container"])
        .run()?;
    out.expect_failure("ps of an unknown id")?;
    out.expect_stderr_contains("does not exist")?;
    Ok(())
}

fn features(ctx: &Ctx) -> Result<Value, Fail> {
    let out = ctx.sk(&["features"]).run()?.expect_ok()?;
    serde_json::from_str(&out.stdout)
        .map_err(|e| Fail::Fail(format!("features is not JSON ({e}): {:?}", out.stdout)))
}

fn features_is_valid_against_the_features_schema(ctx: &Ctx) -> TestResult {
    let v = features(ctx)?;
    schema::validate(&ctx.env.schema_dir, "features-schema.json", &v).map_err(Fail::Fail)?;
    ensure_eq!(v["ociVersionMax"].as_str(), Some("1.3.0"), "ociVersionMax");
    let min = v["ociVersionMin"].as_str().unwrap_or_default();
    ensure!(min.starts_with("1."), "ociVersionMin {min:?} is not 1.x");
    Ok(())
}

fn features_lists_all_six_hooks_and_a_freebsd_object(ctx: &Ctx) -> TestResult {
    let v = features(ctx)?;
    let hooks: Vec<&str> = v["hooks"]
        .as_array()
        .ok_or_else(|| format!("no hooks array: {v}"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        ensure!(hooks.contains(&h), "features.hooks lacks {h}: {hooks:?}");
    }
    ensure!(v["mountOptions"].is_array(), "no mountOptions array: {v}");
    ensure!(v["freebsd"].is_object(), "no freebsd object: {v}");
    Ok(())
}
