//! Issue 16's generated documentation: `stockade completion SHELL` gives scripts each shell
//! accepts, and `stockade man DIR` writes `stockade.8` plus one page per command (the list
//! taken from `stockade --help` itself), each of which `man -l` renders without a warning.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::ctx::{read_text, Ctx};
use crate::harness::{Fail, Test, TestResult};
use crate::procs::{self, Io};

pub fn tests() -> Vec<Test> {
    vec![
        test!("packaging", completion_scripts_parse_in_their_shells),
        test!("packaging", man_writes_a_page_per_command_that_man_renders),
        test!("packaging", completion_refuses_an_unknown_shell),
    ]
}

/// What a host tool run by [`tool`] did.
struct ToolRun {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs a host program through the harness's reaper (which owns every child), with its
/// output captured in files of the test's directory.
fn tool(ctx: &Ctx, program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<ToolRun, Fail> {
    let capture = |name: &str| -> Result<(Io, PathBuf), Fail> {
        let path = ctx.io_file(name);
        let f = std::fs::File::create(&path)
            .map_err(|e| Fail::Fail(format!("creating {}: {e}", path.display())))?;
        Ok((Io::Fd(OwnedFd::from(f)), path))
    };
    let (stdout, out_path) = capture(&format!("{program}.out"))?;
    let (stderr, err_path) = capture(&format!("{program}.err"))?;
    let running = procs::spawn(procs::Spec {
        program: PathBuf::from(program),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cwd: None,
        stdin: Io::Null,
        stdout,
        stderr,
        extra_fds: Vec::new(),
    })?;
    let exit = running.wait(crate::stockade::CMD_TIMEOUT)?;
    Ok(ToolRun {
        ok: exit.success(),
        stdout: read_text(&out_path),
        stderr: read_text(&err_path),
    })
}

/// Whether `program` is on PATH.
fn have(ctx: &Ctx, program: &str) -> Result<bool, Fail> {
    let script = format!("command -v {program} >/dev/null");
    Ok(tool(ctx, "sh", &["-c", &script], &[])?.ok)
}

/// Runs `shell -n FILE` (a syntax check that executes nothing).
fn syntax_check(ctx: &Ctx, shell: &str, file: &Path) -> Result<(), Fail> {
    let r = tool(ctx, shell, &["-n", &file.to_string_lossy()], &[])?;
    ensure!(
        r.ok,
        "{shell} -n rejects the completion script: {}",
        r.stderr
    );
    Ok(())
}

fn completion_scripts_parse_in_their_shells(ctx: &Ctx) -> TestResult {
    let mut checked = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = ctx.sk(&["completion", shell]).run()?.expect_ok()?;
        ensure!(
            out.stdout.contains("stockade") && out.stdout.contains("image"),
            "the {shell} script names neither the program nor its commands:\n{}",
            out.stdout
        );
        if !have(ctx, shell)? {
            continue;
        }
        let file = ctx.path(&format!("completion.{shell}"));
        std::fs::write(&file, &out.stdout)
            .map_err(|e| format!("writing {}: {e}", file.display()))?;
        syntax_check(ctx, shell, &file)?;
        checked.push(shell);
    }
    ensure!(
        checked.contains(&"bash"),
        "bash is needed to check the bash completion script"
    );
    ctx.note(format!("syntax checked in: {}", checked.join(" ")));
    Ok(())
}

/// The command names `stockade --help` lists under "Commands:".
fn commands_in_help(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

fn man_writes_a_page_per_command_that_man_renders(ctx: &Ctx) -> TestResult {
    if !have(ctx, "man")? {
        return Err(Fail::Skip("man (man-db) is not installed".into()));
    }
    let dir = ctx.path("man");
    let dir_arg = dir.to_string_lossy().into_owned();
    let out = ctx.sk(&["man", dir_arg.as_str()]).run()?.expect_ok()?;
    let help = ctx.sk(&["--help"]).run()?.expect_ok()?.stdout;
    let commands = commands_in_help(&help);
    ensure!(
        commands.len() >= 10,
        "too few commands in --help: {commands:?}"
    );
    let mut wanted = vec!["stockade.8".to_string()];
    wanted.extend(commands.iter().map(|c| format!("stockade-{c}.8")));
    wanted.push("stockade-image-push.8".into());
    wanted.push("stockade-image-login.8".into());
    for page in &wanted {
        let path = dir.join(page);
        ensure!(
            path.is_file(),
            "no {page}; `stockade man` printed:\n{}",
            out.stdout
        );
    }
    let pages: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    ensure!(
        out.stdout.lines().count() == pages.len(),
        "`stockade man` printed {} paths for {} files",
        out.stdout.lines().count(),
        pages.len()
    );
    for page in &pages {
        let page_arg = page.to_string_lossy();
        let env = [
            ("MANWIDTH", "80"),
            ("MANROFFOPT", "-ww"),
            ("MANPAGER", "cat"),
            ("LC_ALL", "C.UTF-8"),
        ];
        let r = tool(ctx, "man", &["-l", &page_arg], &env)?;
        let rendered = &r.stdout;
        let name = page.file_stem().unwrap_or_default().to_string_lossy();
        ensure!(
            r.ok && r.stderr.is_empty(),
            "man -l {} failed or warned: {}",
            page.display(),
            r.stderr
        );
        ensure!(
            rendered
                .lines()
                .skip_while(|l| l.trim() != "NAME")
                .nth(1)
                .is_some_and(|l| l.split_whitespace().take(2).eq([&*name, "-"])),
            "man -l {} did not render a NAME section naming {name}:\n{rendered}",
            page.display()
        );
    }
    ctx.note(format!("{} pages rendered", pages.len()));
    Ok(())
}

fn completion_refuses_an_unknown_shell(ctx: &Ctx) -> TestResult {
    let out = ctx.sk(&["completion", "tcsh"]).run()?;
    out.expect_failure("completion for a shell clap_complete does not know")?;
    out.expect_stderr_contains("bash")
}
