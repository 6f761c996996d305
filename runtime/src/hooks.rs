//! The six OCI hook phases. Each hook runs with the container's state JSON on stdin,
//! `args[0]` as its argv[0], exactly its own `env`, and `timeout` in seconds, after which its
//! whole process group is killed. What a failure means is the caller's choice: [`run`]
//! stops at the first failure (prestart, createRuntime, createContainer, startContainer
//! abort their operation); [`run_warning`] warns and goes on (poststart, poststop).

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

/// A hook phase, named as in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    /// The phase's name in config.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    /// This phase's hooks in `spec`, in order.
    pub fn hooks(self, spec: &oci_spec::runtime::Spec) -> Vec<Hook> {
        let Some(h) = spec.hooks() else {
            return Vec::new();
        };
        #[allow(deprecated)]
        let list = match self {
            Phase::Prestart => h.prestart(),
            Phase::CreateRuntime => h.create_runtime(),
            Phase::CreateContainer => h.create_container(),
            Phase::StartContainer => h.start_container(),
            Phase::Poststart => h.poststart(),
            Phase::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// How a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {index} ({}): could not run it: {source}", stockade_quote::quote_os(.path))]
    Spawn {
        phase: &'static str,
        index: usize,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{phase} hook {index} ({}) {status}{stderr}", stockade_quote::quote_os(.path))]
    Failed {
        phase: &'static str,
        index: usize,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{phase} hook {index} ({}) timed out after {seconds}s and was killed with its process group{stderr}", stockade_quote::quote_os(.path))]
    Timeout {
        phase: &'static str,
        index: usize,
        path: PathBuf,
        seconds: i64,
        stderr: String,
    },
}

/// The last lines of a hook's stderr, for the error message.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(5);
    // Bounded and escaped: a hook may print anything, at any length.
    let text = lines[start..].join(" | ");
    format!(
        "; stderr: {}",
        stockade_quote::quote(&text).max_chars(4 * stockade_quote::MAX_CHARS)
    )
}

/// Runs `phase`'s hooks in order with `state` (the state JSON) on stdin; stops at the first
/// failure.
pub fn run(phase: Phase, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(phase, index, hook, state)?;
    }
    Ok(())
}

/// Runs `phase`'s hooks in order as the runtime spec asks of poststart and poststop: a
/// failing hook is logged as one warning (naming the phase, the hook and its exit status)
/// and the remaining hooks and the lifecycle continue. Returns the failures.
pub fn run_warning(phase: Phase, hooks: &[Hook], state: &[u8]) -> Vec<HookError> {
    let mut failed = Vec::new();
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(phase, index, hook, state) {
            tracing::warn!("{e}; continuing, as the runtime spec asks");
            failed.push(e);
        }
    }
    failed
}

fn run_one(phase: Phase, index: usize, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some(arg0) = args.first() {
        cmd.arg0(arg0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Its own process group, so a timeout kills everything it started.
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        phase: phase.as_str(),
        index,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let mut stderr_pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr_pipe.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let pgid = Pid::from_raw(child.id() as i32);
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        if let Some((seconds, at)) = deadline {
            if Instant::now() >= at {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                let stderr = reader.join().unwrap_or_default();
                return Err(HookError::Timeout {
                    phase: phase.as_str(),
                    index,
                    path,
                    seconds,
                    stderr: tail(&stderr),
                });
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // Whatever the hook left running in its group goes with it.
    let _ = killpg(pgid, Signal::SIGKILL);
    let stderr = reader.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(()),
        other => Err(HookError::Failed {
            phase: phase.as_str(),
            index,
            path,
            status: match other {
                Some(s) => match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exited with status {c}"),
                    (_, Some(sig)) => format!("was killed by signal {sig}"),
                    _ => "failed".into(),
                },
                None => "could not be waited for".into(),
            },
            stderr: tail(&stderr),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "hook-sh".to_string(),
                "-c".to_string(),
                script.to_string(),
            ])
            .env(vec!["ONLY=this".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin_argv0_and_only_its_env() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let script = format!(
            "cat > {0}.stdin; echo \"$0\" > {0}.argv0; env > {0}.env",
            out.display()
        );
        run(Phase::Prestart, &[sh(&script, None)], b"{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(format!("{}.stdin", out.display())).unwrap(),
            "{\"id\":\"x\"}"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{}.argv0", out.display()))
                .unwrap()
                .trim(),
            "hook-sh"
        );
        let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
        assert!(env.contains("ONLY=this"), "{env}");
        assert!(!env.contains("HOME="), "{env}");
    }

    #[test]
    fn failure_names_phase_hook_status_and_stderr() {
        let err = run(
            Phase::CreateRuntime,
            &[sh("echo boom >&2; exit 3", None)],
            b"{}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("createRuntime hook 0 (\"/bin/sh\") exited with status 3"),
            "{err}"
        );
        assert!(err.contains("boom"), "{err}");
        // A hook's stderr is bounded and escaped in the message.
        let err = run(
            Phase::CreateRuntime,
            &[sh(
                "printf '\\342\\200\\256' >&2; head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1",
                None,
            )],
            b"{}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.len() < 2000 && !err.contains('\u{202e}'),
            "{}",
            err.len()
        );
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("child-survived");
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let err = run(Phase::Prestart, &[sh(&script, Some(1))], b"{}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prestart hook 0") && err.contains("timed out after 1s"),
            "{err}"
        );
        std::thread::sleep(Duration::from_secs(3));
        assert!(!marker.exists(), "the hook's child outlived the timeout");
    }

    #[test]
    fn run_warning_runs_every_hook_and_returns_the_failures() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("second-ran");
        let hooks = [
            sh("exit 4", None),
            sh(&format!("touch {}", marker.display()), None),
        ];
        let failed = run_warning(Phase::Poststart, &hooks, b"{}");
        assert_eq!(failed.len(), 1);
        let msg = failed[0].to_string();
        assert!(
            msg.starts_with("poststart hook 0 (\"/bin/sh\") exited with status 4"),
            "{msg}"
        );
        assert!(
            marker.exists(),
            "the hook after the failing one did not run"
        );
        assert!(run_warning(Phase::Poststart, &hooks[1..], b"{}").is_empty());
    }

    #[test]
    fn missing_hook_binary_is_an_error_naming_it() {
        let h = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        let err = run(Phase::Poststop, &[h], b"{}").unwrap_err().to_string();
        assert!(
            err.contains("poststop hook 0 (\"/nonexistent/hook\"): could not run it"),
            "{err}"
        );
    }
}
