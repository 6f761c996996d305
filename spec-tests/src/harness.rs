//! A small TAP runner: one line per test (`ok N - name`, `not ok N - name`, `ok N - name # SKIP
//! reason`), diagnostics as `# ` lines, and a closing plain `N passed, N failed[, N skipped]`.

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

use crate::ctx::Ctx;
use crate::env::Env;
pub use crate::fail::{Fail, TestResult};

/// One test: the group it belongs to (selected with `--group`), its name (the behaviour it
/// checks, matched by `--filter`), and the function.
pub struct Test {
    pub group: &'static str,
    pub name: &'static str,
    pub func: fn(&Ctx) -> TestResult,
}

/// Builds a `Test` from a function, naming the test after the function.
#[macro_export]
macro_rules! test {
    ($group:expr, $func:ident) => {
        $crate::harness::Test {
            group: $group,
            name: stringify!($func),
            func: $func,
        }
    };
}

#[derive(Default, Debug)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Runs the tests in order, printing TAP to stdout. Each test gets a fresh `Ctx` (its own
/// `--root` and temporary directory), which force-deletes the test's containers when dropped.
pub fn run(env: &Env, tests: &[&Test]) -> Totals {
    let mut totals = Totals::default();
    let stdout = std::io::stdout();
    println!("TAP version 13");
    println!("1..{}", tests.len());
    let _ = stdout.lock().flush();

    // Keep panics quiet: their message is reported as the test's diagnostic instead.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));

    for (i, test) in tests.iter().enumerate() {
        let n = i + 1;
        let outcome = match Ctx::new(env, test.name) {
            Ok(ctx) => {
                let result = panic::catch_unwind(AssertUnwindSafe(|| (test.func)(&ctx)));
                let result = match result {
                    Ok(r) => r,
                    Err(payload) => Err(Fail::Fail(format!(
                        "panicked: {}",
                        panic_message(payload.as_ref())
                    ))),
                };
                let transcript = if matches!(result, Err(Fail::Fail(_))) {
                    ctx.transcript()
                } else {
                    Vec::new()
                };
                // Cleanup runs here (Drop), even when the test failed or panicked.
                let cleanup_notes = ctx.cleanup();
                (result, transcript, cleanup_notes)
            }
            Err(e) => (
                Err(Fail::Fail(format!("setting up: {e}"))),
                Vec::new(),
                Vec::new(),
            ),
        };
        let (result, transcript, cleanup_notes) = outcome;
        let name = format!("{} :: {}", test.group, test.name);
        match result {
            Ok(()) => {
                totals.passed += 1;
                println!("ok {n} - {name}");
            }
            Err(Fail::Skip(reason)) => {
                totals.skipped += 1;
                println!("ok {n} - {name} # SKIP {}", one_line(&reason));
            }
            Err(Fail::Fail(msg)) => {
                totals.failed += 1;
                println!("not ok {n} - {name}");
                for line in msg.lines() {
                    println!("#   {line}");
                }
                if !transcript.is_empty() {
                    println!("#   --- last commands ---");
                    for line in transcript {
                        println!("#   {line}");
                    }
                }
            }
        }
        for note in cleanup_notes {
            println!("# cleanup: {}", one_line(&note));
        }
        let _ = stdout.lock().flush();
    }

    panic::set_hook(default_hook);
    totals
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
