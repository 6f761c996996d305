//! Issue 16: the config file. Its `root` is used when no flag or environment variable
//! names one; `STOCKADE_ROOT` and `--root` each win over it; a bad key is an error naming
//! the file, line and key; a missing `--config` file is an error.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::ctx::{read_text, Ctx};
use crate::harness::{Fail, Test, TestResult};
use crate::procs::{self, Io};
use crate::stockade::Session;

pub fn tests() -> Vec<Test> {
    vec![
        test!("config", config_root_is_used_below_env_and_flag),
        test!("config", config_bad_key_names_file_line_and_key),
        test!("config", config_missing_explicit_file_is_an_error),
    ]
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs stockade with exactly `args` (no `--root` added) and none of the host's
/// `STOCKADE_*` settings, plus `env`.
fn stockade(ctx: &Ctx, args: &[&str], env: &[(&str, &str)]) -> Result<Run, Fail> {
    let n = ctx.transcript().len();
    let capture = |name: String| -> Result<(Io, PathBuf), Fail> {
        let path = ctx.io_file(&name);
        let f = std::fs::File::create(&path)
            .map_err(|e| Fail::Fail(format!("creating {}: {e}", path.display())))?;
        Ok((Io::Fd(OwnedFd::from(f)), path))
    };
    let (stdout, out_path) = capture(format!("conf{n}.out"))?;
    let (stderr, err_path) = capture(format!("conf{n}.err"))?;
    let mut argv: Vec<String> = ["-u", "STOCKADE_ROOT", "-u", "STOCKADE_CONFIG"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.push(ctx.env.stockade.to_string_lossy().into_owned());
    argv.extend(args.iter().map(|a| a.to_string()));
    ctx.note(format!("env {}", argv.join(" ")));
    let running = procs::spawn(procs::Spec {
        program: PathBuf::from("env"),
        args: argv,
        env: Vec::new(),
        cwd: None,
        stdin: Io::Null,
        stdout,
        stderr,
        extra_fds: Vec::new(),
    })?;
    let exit = running.wait(crate::stockade::CMD_TIMEOUT)?;
    Ok(Run {
        ok: exit.success(),
        stdout: read_text(&out_path),
        stderr: read_text(&err_path),
    })
}

fn write(path: &Path, text: &str) -> Result<(), Fail> {
    std::fs::write(path, text).map_err(|e| Fail::Fail(format!("{}: {e}", path.display())))
}

fn lists(run: &Run, id: &str) -> bool {
    run.ok
        && run
            .stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(id))
}

fn config_root_is_used_below_env_and_flag(ctx: &Ctx) -> TestResult {
    let bundle = ctx.bundle(&["sleep", "30"])?;
    let id = ctx.id("conf");
    // The container lives under the test's own root (`ctx.sk` passes it), so cleanup finds it.
    ctx.create_ok(&id, &bundle)?;
    let conf = ctx.path("stockade.conf");
    let root = ctx.root().to_string_lossy().into_owned();
    write(&conf, &format!("root = {root:?}\n"))?;
    let conf = conf.to_string_lossy().into_owned();
    let elsewhere = ctx.path("other-root").to_string_lossy().into_owned();

    let by_file = stockade(ctx, &["--config", &conf, "list"], &[])?;
    ensure!(
        lists(&by_file, &id),
        "the file's root was not used: {} {}",
        by_file.stdout,
        by_file.stderr
    );
    let by_env_config = stockade(ctx, &["list"], &[("STOCKADE_CONFIG", &conf)])?;
    ensure!(
        lists(&by_env_config, &id),
        "STOCKADE_CONFIG was not read: {} {}",
        by_env_config.stdout,
        by_env_config.stderr
    );
    let env_wins = stockade(
        ctx,
        &["--config", &conf, "list"],
        &[("STOCKADE_ROOT", &elsewhere)],
    )?;
    ensure!(
        env_wins.ok && !lists(&env_wins, &id),
        "STOCKADE_ROOT did not win over the file: {}",
        env_wins.stdout
    );
    let flag_wins = stockade(
        ctx,
        &["--config", &conf, "--root", &elsewhere, "list"],
        &[("STOCKADE_ROOT", &root)],
    )?;
    ensure!(
        flag_wins.ok && !lists(&flag_wins, &id),
        "--root did not win over the environment and file: {}",
        flag_wins.stdout
    );
    Ok(())
}

fn config_bad_key_names_file_line_and_key(ctx: &Ctx) -> TestResult {
    let conf = ctx.path("bad.conf");
    write(&conf, "root = \"/tmp\"\n\n[limits]\nmax_entires = 5\n")?;
    let conf = conf.to_string_lossy().into_owned();
    let r = stockade(ctx, &["--config", &conf, "list"], &[])?;
    ensure!(!r.ok, "a config file with an unknown key was accepted");
    let want = format!("stockade: error: {conf}:4: key max_entires: unknown field");
    ensure!(
        r.stderr.contains(&want),
        "expected {want:?} in {:?}",
        r.stderr
    );
    Ok(())
}

fn config_missing_explicit_file_is_an_error(ctx: &Ctx) -> TestResult {
    let conf = ctx.path("absent.conf").to_string_lossy().into_owned();
    let r = stockade(ctx, &["list"], &[("STOCKADE_CONFIG", &conf)])?;
    ensure!(!r.ok, "a missing STOCKADE_CONFIG file was accepted");
    ensure!(
        r.stderr.contains(&conf),
        "the error does not name the file: {:?}",
        r.stderr
    );
    Ok(())
}
