//! A closed standard output (`stockade list | head -0`): the command ends quietly with
//! 141 (what a shell reports for SIGPIPE), without a panic or an error line, both where it
//! prints with `println!` (`features`, `state`), where a library `expect`s its write (`completion`) and where it writes with `writeln!`
//! (`list`). No container is needed.

use std::os::fd::OwnedFd;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::procs::{Exit, Io};

pub fn tests() -> Vec<Test> {
    vec![
        test!("cli", a_closed_stdout_ends_println_commands_quietly),
        test!("cli", a_closed_stdout_ends_writeln_commands_quietly),
        test!("cli", an_open_stdout_still_gets_the_output),
    ]
}

/// The write end of a pipe whose read end is already closed: every write to it fails with
/// EPIPE, from the first byte on, whatever the timing.
fn closed_pipe() -> Result<Io, Fail> {
    let (reader, writer) =
        std::io::pipe().map_err(|e| Fail::Fail(format!("making a pipe: {e}")))?;
    drop(reader);
    Ok(Io::Fd(OwnedFd::from(writer)))
}

fn expect_quiet_141(ctx: &Ctx, args: &[&str]) -> TestResult {
    let out = ctx.sk(args).stdout(closed_pipe()?).run()?;
    if out.exit != Exit::Code(141) || !out.stderr.trim().is_empty() {
        return Err(Fail::Fail(format!(
            "`{}` into a closed pipe: {} (want exit 141), stderr {:?}",
            out.cmdline,
            out.exit,
            out.stderr.trim()
        )));
    }
    Ok(())
}

fn a_closed_stdout_ends_println_commands_quietly(ctx: &Ctx) -> TestResult {
    expect_quiet_141(ctx, &["features"])?;
    // clap_complete's generator `expect`s its write.
    expect_quiet_141(ctx, &["completion", "bash"])
}

fn a_closed_stdout_ends_writeln_commands_quietly(ctx: &Ctx) -> TestResult {
    expect_quiet_141(ctx, &["list"])?;
    expect_quiet_141(ctx, &["list", "--format", "json"])
}

/// The check that makes the two above mean something: the same commands print normally.
fn an_open_stdout_still_gets_the_output(ctx: &Ctx) -> TestResult {
    let out = ctx.sk(&["features"]).run()?.expect_ok()?;
    if !out.stdout.contains("ociVersionMin") {
        return Err(Fail::Fail(format!("features printed {:?}", out.stdout)));
    }
    let out = ctx.sk(&["list"]).run()?.expect_ok()?;
    if !out.stdout.starts_with("ID") {
        return Err(Fail::Fail(format!("list printed {:?}", out.stdout)));
    }
    Ok(())
}
