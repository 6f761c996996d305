//! The OCI lifecycle as callers drive it: create, start, state, kill, delete, run, and the
//! container's standard streams.

use std::time::Duration;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::host;
use crate::procs::{self, Exit, Io};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "lifecycle",
            create_leaves_container_created_without_running_the_process
        ),
        test!("lifecycle", status_goes_created_running_stopped),
        test!("lifecycle", process_exit_makes_status_stopped),
        test!(
            "lifecycle",
            container_stdout_and_stderr_are_the_streams_create_was_given
        ),
        test!(
            "lifecycle",
            stdin_and_stdout_pipes_pass_through_create_and_start
        ),
        test!(
            "lifecycle",
            run_pipes_stdin_to_the_process_and_its_stdout_back
        ),
        test!("lifecycle", run_exits_with_the_process_exit_code),
        test!(
            "lifecycle",
            run_exits_with_128_plus_signal_when_the_process_is_killed
        ),
        test!(
            "lifecycle",
            run_in_the_foreground_forwards_signals_to_the_container
        ),
        test!("lifecycle", run_detach_returns_with_the_container_running),
        test!(
            "lifecycle",
            pid_file_holds_state_pid_without_trailing_newline
        ),
        test!(
            "lifecycle",
            run_detach_pid_file_holds_state_pid_without_trailing_newline
        ),
        test!("lifecycle", kill_of_created_container_signals_its_init),
        test!(
            "lifecycle",
            kill_accepts_signal_number_name_and_sig_name_and_defaults_to_term
        ),
        test!("lifecycle", kill_all_signals_every_process_in_the_container),
        test!("lifecycle", delete_of_stopped_container_removes_its_state),
        test!(
            "lifecycle",
            delete_of_created_container_kills_init_and_deletes
        ),
        test!(
            "lifecycle",
            delete_of_running_container_without_force_fails_with_no_effect
        ),
        test!(
            "lifecycle",
            delete_force_of_running_container_kills_and_deletes
        ),
        test!("lifecycle", config_json_edit_after_create_has_no_effect),
    ]
}

fn create_leaves_container_created_without_running_the_process(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["echo", "the-process-ran"])?;
    let id = ctx.id("created");
    let out = ctx.create_ok(&id, &b)?;
    ensure_eq!(ctx.status(&id)?, "created", "status after create");
    let pid = ctx.pid(&id)?;
    ensure!(
        host::proc_id(pid).is_some_and(host::alive),
        "state.pid {pid} is not a live process after create"
    );
    ensure!(
        !out.stdout_now().contains("the-process-ran"),
        "the process ran before start: create's stdout holds {:?}",
        out.stdout_now()
    );
    Ok(())
}

fn status_goes_created_running_stopped(ctx: &Ctx) -> TestResult {
    // The process runs until the host creates rootfs/tmp/go, so `running` is observable.
    let b = ctx.bundle(&[
        "sh",
        "-c",
        "echo waiting; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo done",
    ])?;
    let id = ctx.id("trans");
    let out = ctx.create_ok(&id, &b)?;
    ensure_eq!(ctx.status(&id)?, "created", "status after create");
    ctx.start_ok(&id)?;
    ensure_eq!(ctx.status(&id)?, "running", "status after start");
    ctx.wait_until("the process to print `waiting`", || {
        out.stdout_now().contains("waiting")
    })?;
    ensure_eq!(ctx.status(&id)?, "running", "status while the process runs");
    std::fs::write(b.rootfs.join("tmp/go"), "").map_err(|e| e.to_string())?;
    ctx.wait_status(&id, "stopped")?;
    ensure!(
        out.stdout_now().contains("done"),
        "the process did not finish normally; stdout {:?}",
        out.stdout_now()
    );
    Ok(())
}

fn process_exit_makes_status_stopped(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("exit");
    ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    // Stays stopped: a later state must not report anything else.
    ensure_eq!(ctx.status(&id)?, "stopped", "status on a second look");
    Ok(())
}

fn container_stdout_and_stderr_are_the_streams_create_was_given(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sh", "-c", "echo to-stdout; echo to-stderr >&2"])?;
    let id = ctx.id("stdio");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    let (so, se) = (out.stdout_now(), out.stderr_now());
    ensure!(
        so.contains("to-stdout"),
        "create's stdout lacks the process's stdout: {so:?}"
    );
    ensure!(
        se.contains("to-stderr"),
        "create's stderr lacks the process's stderr: {se:?}"
    );
    ensure!(
        !so.contains("to-stderr"),
        "the process's stderr went to stdout: {so:?}"
    );
    Ok(())
}

fn stdin_and_stdout_pipes_pass_through_create_and_start(ctx: &Ctx) -> TestResult {
    // containerd hands the runtime pipes; the process must read and write them directly.
    let b = ctx.bundle(&["sh", "-c", "read line; echo \"got:$line\""])?;
    let id = ctx.id("pipes");
    let (in_r, in_w) = procs::pipe()?;
    let (out_r, out_w) = procs::pipe()?;
    b.save()?;
    ctx.track(&id);
    ctx.sk(&["create", "--bundle", &b.dir.to_string_lossy(), &id])
        .stdin(Io::Fd(in_r))
        .stdout(Io::Fd(out_w))
        .run()?
        .expect_ok()?;
    ctx.start_ok(&id)?;
    {
        use std::io::Write;
        let mut w = std::fs::File::from(in_w);
        w.write_all(b"hello-through-a-pipe\n")
            .map_err(|e| format!("writing the stdin pipe: {e}"))?;
    }
    let bytes = procs::read_to_end_timeout(out_r, Duration::from_secs(20))?;
    let text = String::from_utf8_lossy(&bytes);
    ensure!(
        text.contains("got:hello-through-a-pipe"),
        "stdout pipe carried {text:?}, expected got:hello-through-a-pipe"
    );
    ctx.wait_status(&id, "stopped")?;
    Ok(())
}

fn run_pipes_stdin_to_the_process_and_its_stdout_back(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["cat"])?;
    b.save()?;
    let id = ctx.id("runcat");
    ctx.track(&id);
    let input = "line one\nline two\n";
    let out = ctx
        .sk(&["run", "--bundle", &b.dir.to_string_lossy(), &id])
        .stdin_bytes(input.as_bytes())
        .run()?;
    ensure_eq!(out.exit, Exit::Code(0), "run of `cat`");
    ensure!(
        out.stdout.contains(input),
        "stdout of run is {:?}, expected it to contain {input:?}",
        out.stdout
    );
    Ok(())
}

fn run_exits_with_the_process_exit_code(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sh", "-c", "exit 3"])?;
    b.save()?;
    let id = ctx.id("exit3");
    ctx.track(&id);
    let out = ctx
        .sk(&["run", "--bundle", &b.dir.to_string_lossy(), &id])
        .run()?;
    ensure_eq!(out.exit, Exit::Code(3), "exit status of run");
    Ok(())
}

fn run_exits_with_128_plus_signal_when_the_process_is_killed(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    b.save()?;
    let id = ctx.id("sig");
    ctx.track(&id);
    let run = ctx
        .sk(&["run", "--bundle", &b.dir.to_string_lossy(), &id])
        .spawn()?;
    ctx.wait_until("run to make the container running", || {
        run.exited()
            || ctx
                .sk(&["state", &id])
                .quiet()
                .run()
                .is_ok_and(|o| o.ok() && o.stdout.contains("\"running\""))
    })?;
    ensure!(!run.exited(), "run exited before the container was killed");
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    let out = run.wait()?;
    ensure_eq!(
        out.exit,
        Exit::Code(128 + 9),
        "exit status of run after SIGKILL"
    );
    Ok(())
}

fn run_in_the_foreground_forwards_signals_to_the_container(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
    ])?;
    b.save()?;
    let id = ctx.id("fwd");
    ctx.track(&id);
    let run = ctx
        .sk(&["run", "--bundle", &b.dir.to_string_lossy(), &id])
        .spawn()?;
    ctx.wait_until("the container to install its trap", || {
        run.exited() || run.stdout_now().contains("ready")
    })?;
    ensure!(!run.exited(), "run exited early: {:?}", run.stderr_now());
    // SIGTERM to `stockade run`, not to the container: it must reach the container's process.
    nix_kill(run.pid(), libc::SIGTERM)?;
    let out = run.wait()?;
    ensure!(
        out.stdout.contains("got-term"),
        "the container did not see SIGTERM: {:?}",
        out.stdout
    );
    ensure_eq!(out.exit, Exit::Code(3), "exit status of run");
    ctx.ensure_root_empty("after run")?;
    Ok(())
}

fn nix_kill(pid: i32, sig: i32) -> Result<(), String> {
    // SAFETY: kill(2) with plain integers touches no memory.
    let r = unsafe { libc::kill(pid, sig) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn run_detach_returns_with_the_container_running(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    b.save()?;
    let id = ctx.id("detach");
    ctx.track(&id);
    ctx.sk(&["run", "--detach", "--bundle", &b.dir.to_string_lossy(), &id])
        .run()?
        .expect_ok()?;
    ensure_eq!(ctx.status(&id)?, "running", "status after run --detach");
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    Ok(())
}

fn check_pid_file(ctx: &Ctx, path: &std::path::Path, id: &str) -> TestResult {
    let bytes =
        std::fs::read(path).map_err(|e| format!("reading pid file {}: {e}", path.display()))?;
    ensure!(
        !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit),
        "pid file must be the decimal pid alone, no newline: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    let pid: i32 = String::from_utf8_lossy(&bytes)
        .parse()
        .map_err(|e| format!("pid file: {e}"))?;
    ensure_eq!(pid, ctx.pid(id)?, "pid file against state.pid");
    Ok(())
}

/// `COMMAND --bundle B --pid-file P ID` (create, or run --detach) with a sleeping init, then
/// the pid file's checks.
fn pid_file_of(ctx: &Ctx, name: &str, command: &[&str]) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    b.save()?;
    let id = ctx.id(name);
    ctx.track(&id);
    let pid_file = ctx.path("pid");
    let (bundle, pid_arg) = (b.dir.to_string_lossy(), pid_file.to_string_lossy());
    let mut args = command.to_vec();
    args.extend(["--bundle", &bundle, "--pid-file", &pid_arg, &id]);
    ctx.sk(&args).run()?.expect_ok()?;
    check_pid_file(ctx, &pid_file, &id)
}

fn pid_file_holds_state_pid_without_trailing_newline(ctx: &Ctx) -> TestResult {
    pid_file_of(ctx, "pidfile", &["create"])
}

fn run_detach_pid_file_holds_state_pid_without_trailing_newline(ctx: &Ctx) -> TestResult {
    pid_file_of(ctx, "runpid", &["run", "--detach"])
}

fn kill_of_created_container_signals_its_init(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("killcreated");
    ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let proc_id = host::proc_id(pid).ok_or("state.pid is not a live process")?;
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    ctx.wait_until("the init process to die", || !host::alive(proc_id))?;
    Ok(())
}

const TERM_TRAP: &str = "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 1; done";

fn kill_accepts_signal_number_name_and_sig_name_and_defaults_to_term(ctx: &Ctx) -> TestResult {
    let forms: [&[&str]; 4] = [&["15"], &["TERM"], &["SIGTERM"], &[]];
    let mut started = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        let b = ctx.bundle(&["sh", "-c", TERM_TRAP])?;
        let id = ctx.id(&format!("sig{i}"));
        let out = ctx.create_start(&id, &b)?;
        started.push((id, out, *form));
    }
    for (id, out, form) in &started {
        ctx.wait_until("the trap to be installed", || {
            out.stdout_now().contains("ready")
        })?;
        let mut args = vec!["kill", id.as_str()];
        args.extend_from_slice(form);
        ctx.sk(&args).run()?.expect_ok()?;
    }
    for (id, out, form) in &started {
        ctx.wait_status(id, "stopped")
            .map_err(|e| Fail::Fail(format!("kill with signal {form:?}: {e}")))?;
        ensure!(
            out.stdout_now().contains("got-term"),
            "kill {form:?} did not deliver SIGTERM; stdout {:?}",
            out.stdout_now()
        );
    }
    Ok(())
}

fn kill_all_signals_every_process_in_the_container(ctx: &Ctx) -> TestResult {
    // The init survives USR1 (it has a handler); a second shell reports that it got it too.
    let script = "trap 'echo init-got-usr1' USR1; \
        sh -c \"trap 'echo child-got-usr1; exit 0' USR1; echo child-ready; while :; do sleep 1; done\" & \
        echo init-ready; while :; do sleep 1; done";
    let b = ctx.bundle(&["sh", "-c", script])?;
    let id = ctx.id("killall");
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_until("both shells to install their traps", || {
        let s = out.stdout_now();
        s.contains("init-ready") && s.contains("child-ready")
    })?;
    ctx.sk(&["kill", "--all", &id, "USR1"]).run()?.expect_ok()?;
    ctx.wait_until("both shells to report SIGUSR1", || {
        let s = out.stdout_now();
        s.contains("init-got-usr1") && s.contains("child-got-usr1")
    })
    .map_err(|e| Fail::Fail(format!("{e}; stdout {:?}", out.stdout_now())))?;
    Ok(())
}

fn delete_of_stopped_container_removes_its_state(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("del");
    ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    let st = ctx.sk(&["state", &id]).run()?;
    st.expect_failure("state after delete")?;
    st.expect_stderr_contains("does not exist")?;
    ctx.ensure_root_empty("after delete")?;
    Ok(())
}

fn delete_of_created_container_kills_init_and_deletes(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("delcreated");
    ctx.create_ok(&id, &b)?;
    let proc_id = host::proc_id(ctx.pid(&id)?).ok_or("state.pid is not a live process")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    ctx.wait_until("the init process to die", || !host::alive(proc_id))?;
    ctx.sk(&["state", &id])
        .run()?
        .expect_stderr_contains("does not exist")?;
    ctx.ensure_root_empty("after delete")?;
    Ok(())
}

fn delete_of_running_container_without_force_fails_with_no_effect(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("delrunning");
    ctx.create_start(&id, &b)?;
    let proc_id = host::proc_id(ctx.pid(&id)?).ok_or("state.pid is not a live process")?;
    ctx.sk(&["delete", &id])
        .run()?
        .expect_failure("delete of a running container")?;
    ensure_eq!(
        ctx.status(&id)?,
        "running",
        "status after the refused delete"
    );
    ensure!(
        host::alive(proc_id),
        "the refused delete killed the process"
    );
    Ok(())
}

fn delete_force_of_running_container_kills_and_deletes(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("delforce");
    ctx.create_start(&id, &b)?;
    let proc_id = host::proc_id(ctx.pid(&id)?).ok_or("state.pid is not a live process")?;
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    ctx.wait_until("the process to die", || !host::alive(proc_id))?;
    ctx.sk(&["state", &id])
        .run()?
        .expect_stderr_contains("does not exist")?;
    ctx.ensure_root_empty("after delete --force")?;
    Ok(())
}

fn config_json_edit_after_create_has_no_effect(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "echo \"args=original env=$EDITED\"; hostname"])?;
    b.add_env("EDITED=original");
    let id = ctx.id("edit");
    let out = ctx.create_ok(&id, &b)?;
    b.set_args(&["sh", "-c", "echo \"args=edited env=$EDITED\"; hostname"]);
    b.process()["env"] = serde_json::json!([crate::bundle::DEFAULT_PATH, "EDITED=edited"]);
    b.config["hostname"] = "edited-hostname".into();
    b.save()?;
    ctx.start_ok(&id)?;
    ctx.wait_status(&id, "stopped")?;
    let text = out.stdout_now();
    ensure!(
        text.contains("args=original env=original"),
        "the process did not run as created: {text:?}"
    );
    ensure!(
        !text.contains("edited"),
        "an edit of config.json after create took effect: {text:?}"
    );
    Ok(())
}
