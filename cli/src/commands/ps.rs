//! `ps ID [PS-ARGS…]`: as runc does, ps(1) with the arguments given (default `-ef` on
//! Linux, `-ax` on FreeBSD, where `-e` means environment), its lines restricted to the
//! container's processes by the PID column; `--format json` (runc's array) and `-q` print
//! the pids alone.

use std::process::Command;

use anyhow::Context;
use stockade_runtime::container;
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::listing::Listed;
use crate::args::lifecycle::PsArgs;
use crate::args::output::OutputFormat;
use crate::args::GlobalArgs;

/// A process of the container in `ps --format json` (runc's array of bare pids) and `-q`.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Pid(i32);

impl Listed for Pid {
    fn id(&self) -> String {
        self.0.to_string()
    }
    fn cells(&self) -> Vec<String> {
        vec![self.0.to_string()]
    }
}

/// ps(1)'s arguments when none are given.
const DEFAULT_ARGS: &[&str] = if cfg!(target_os = "freebsd") {
    &["-ax"]
} else {
    &["-ef"]
};

pub fn run(global: &GlobalArgs, a: &PsArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&a.id)?;
    let pids = container::pids(&StateStore::open(&global.root)?, &id)?;
    if a.output.format == OutputFormat::Json || a.output.quiet {
        anyhow::ensure!(
            a.ps_args.is_empty(),
            "ps --format json and ps -q print pids only; they take no ps arguments"
        );
        let pids: Vec<Pid> = pids.into_iter().map(Pid).collect();
        super::listing::print(&a.output, &["PID"], &pids)?;
        return Ok(0);
    }
    let args: Vec<&str> = if a.ps_args.is_empty() {
        DEFAULT_ARGS.to_vec()
    } else {
        a.ps_args.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .with_context(|| format!("running ps {}", args.join(" ")))?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!("{}", filter(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(0)
}

/// The header of ps output and the lines whose PID column is one of `pids`.
fn filter(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .with_context(|| format!("ps printed no PID column: {header:?}"))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_by_the_pid_column() {
        let text = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 42\nroot  420    1 x\n";
        assert_eq!(
            filter(text, &[42]).unwrap(),
            "UID   PID  PPID CMD\nroot   42     1 sleep 42\n"
        );
        assert!(filter("USER COMMAND\n", &[1]).is_err());
    }
}
