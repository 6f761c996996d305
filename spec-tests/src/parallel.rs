//! Many containers at once: commands on different ids must not interfere, and nothing may be
//! left behind (state directory, mount, process).

use std::sync::Mutex;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::host::{self, ProcId};

const COUNT: usize = 20;

pub fn tests() -> Vec<Test> {
    vec![test!(
        "parallel",
        twenty_containers_in_parallel_leave_no_state_mount_or_process_behind
    )]
}

fn one_container(ctx: &Ctx, i: usize, inits: &Mutex<Vec<ProcId>>) -> Result<(), Fail> {
    let b = ctx.bundle(&["sh", "-c", "echo up; sleep 1000"])?;
    let id = ctx.id(&format!("par{i}"));
    let out = ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let init = host::proc_id(pid).ok_or_else(|| format!("{id}: state.pid {pid} is not alive"))?;
    inits.lock().unwrap_or_else(|e| e.into_inner()).push(init);
    ctx.start_ok(&id)?;
    let status = ctx.status(&id)?;
    ensure!(status == "running", "{id}: status {status:?} after start");
    ctx.wait_until(&format!("{id} to print `up`"), || {
        out.stdout_now().contains("up")
    })?;
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    let st = ctx.sk(&["state", &id]).run()?;
    ensure!(!st.ok(), "{id}: state still succeeds after delete");
    Ok(())
}

fn twenty_containers_in_parallel_leave_no_state_mount_or_process_behind(ctx: &Ctx) -> TestResult {
    ctx.require_containers()?;
    let inits = Mutex::new(Vec::new());
    let results: Vec<Result<(), Fail>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..COUNT)
            .map(|i| {
                let inits = &inits;
                s.spawn(move || one_container(ctx, i, inits))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Fail::Fail("thread panicked".into())))
            })
            .collect()
    });
    let failures: Vec<String> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| format!("container {i}: {e}")))
        .collect();
    ensure!(
        failures.is_empty(),
        "{} of {COUNT} lifecycles failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    ctx.ensure_root_empty("after 20 parallel lifecycles")?;
    let mounts = host::mounts_under(&ctx.dir).map_err(Fail::Skip)?;
    ensure!(mounts.is_empty(), "mounts left behind: {mounts:?}");
    let inits = inits.into_inner().unwrap_or_else(|e| e.into_inner());
    ensure_eq!(inits.len(), COUNT, "init processes seen");
    ctx.wait_until("every init process to be gone", || {
        inits.iter().all(|p| !host::alive(*p))
    })?;
    let procs = host::processes_using(&ctx.dir);
    ensure!(procs.is_empty(), "processes left behind: {procs:?}");
    Ok(())
}
