//! Terminals without `--console-socket` (issue 15): `run --image -t` and `exec -t` from a
//! terminal, under util-linux `script -qec` (which gives stockade a pty of its own).

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::fail::Fail;
use crate::harness::{Test, TestResult};
use crate::host::read_text;
use crate::images::store_with_image;
use crate::procs::{self, Exit, Io};
use crate::stockade::Session;

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "deploy",
            run_image_t_gets_a_pty_of_the_callers_size_and_its_status
        ),
        test!("deploy", exec_t_gets_a_pty_without_a_console_socket),
    ]
}

/// Runs `sh -c SCRIPT` under `script -qec`, stdout into a file; its text.
fn under_script(ctx: &Ctx, script: &str) -> Result<String, Fail> {
    let prog = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| Fail::Skip("no script(1) (util-linux) on this machine".into()))?;
    let out = ctx.path("script.out");
    let file = File::create(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    ctx.note(format!("$ script -qec {script:?} /dev/null"));
    let running = procs::spawn(procs::Spec {
        program: prog.into(),
        args: vec!["-qec".into(), script.into(), "/dev/null".into()],
        env: Vec::new(),
        cwd: None,
        stdin: Io::Null,
        stdout: Io::Fd(file.into()),
        stderr: Io::Null,
        extra_fds: Vec::new(),
    })?;
    let exit = running.wait(Duration::from_secs(60))?;
    let text = read_text(&out);
    ctx.note(format!("  -> {exit:?}; output {text:?}"));
    if !matches!(exit, Exit::Code(0)) {
        return Err(Fail::Fail(format!("script exited {exit:?}: {text:?}")));
    }
    Ok(text)
}

/// `--image … --image-root … --storage-root STORAGE` for a fresh store.
fn image_flags(ctx: &Ctx, storage: &Path) -> Result<String, Fail> {
    let store = store_with_image(ctx, "localhost/spec/tty:1", "marker")?;
    Ok(format!(
        "--image localhost/spec/tty:1 --image-root {} --storage-root {}",
        store.display(),
        storage.display()
    ))
}

fn sk(ctx: &Ctx) -> String {
    format!(
        "{} --root {}",
        ctx.env.stockade.display(),
        ctx.root().display()
    )
}

fn run_image_t_gets_a_pty_of_the_callers_size_and_its_status(ctx: &Ctx) -> TestResult {
    let id = ctx.id("tty");
    ctx.track(&id);
    let script = format!(
        "stty rows 37 cols 91; {} run {} --rm --name {id} -it -- sh -c 'tty; stty size; exit 7'; \
         echo \"rc=$?\"; stty -a",
        sk(ctx),
        image_flags(ctx, &ctx.path("storage"))?
    );
    let text = under_script(ctx, &script)?;
    ensure!(
        text.contains("/dev/pts/"),
        "tty printed no /dev/pts path: {text:?}"
    );
    ensure!(
        text.contains("37 91"),
        "stty size did not follow the caller: {text:?}"
    );
    ensure!(
        text.contains("rc=7"),
        "the exit status was not returned: {text:?}"
    );
    // The caller's terminal is back in cooked mode.
    ensure!(
        text.contains(" icanon") && text.contains(" echo "),
        "the caller's terminal was left raw: {text:?}"
    );
    Ok(())
}

fn exec_t_gets_a_pty_without_a_console_socket(ctx: &Ctx) -> TestResult {
    let id = ctx.id("exectty");
    ctx.track(&id);
    let storage_dir = ctx.path("storage");
    let flags = image_flags(ctx, &storage_dir)?;
    let run: Vec<String> = format!("run {flags} --name {id} -d -- sleep 300")
        .split(' ')
        .map(str::to_owned)
        .collect();
    ctx.sk(&run).run()?.expect_ok()?;
    let script = format!(
        "stty rows 21 cols 55; {} exec -t {id} sh -c 'tty; stty size; exit 3'; echo \"rc=$?\"",
        sk(ctx)
    );
    let text = under_script(ctx, &script);
    let storage = storage_dir.display().to_string();
    ctx.sk(&["delete", "--force", "--storage-root", &storage, &id])
        .run()?
        .expect_ok()?;
    let text = text?;
    ensure!(
        text.contains("/dev/pts/"),
        "tty printed no /dev/pts path: {text:?}"
    );
    ensure!(
        text.contains("21 55"),
        "stty size did not follow the caller: {text:?}"
    );
    ensure!(
        text.contains("rc=3"),
        "the exit status was not returned: {text:?}"
    );
    Ok(())
}
