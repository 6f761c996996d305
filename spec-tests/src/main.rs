//! stockade-spec-tests: the black-box conformance suite. It drives the built `stockade`
//! binary the way containerd and conmon do, as root, on busybox root filesystems built on the
//! spot, and prints TAP closing with a plain `N passed, N failed[, N skipped]` line.
//!
//! ```text
//! stockade-spec-tests [--stockade PATH] [--group G[,G…]] [--filter SUBSTR] [--list]
//!                     [--busybox PATH] [--schema-dir DIR]
//! ```
//! Groups: lifecycle, errors, state, process, mounts, cli, parallel, limits, derived (issue 3
//! and 13; alias `core`)
//! and hooks, terminal, exec, ps, features (issue 4; alias `extras`), confine, devices,
//! namespaces, cgroups, userns, conform, nsjoin and rootless (issue 10; alias `confinement`),
//! crash, hostile and images (issue 11; alias `safety`), deploy (issue 15), and freebsd (the FreeBSD profile, alias
//! `freebsd-profile`: jail checks run only on FreeBSD, skipped elsewhere), and packaging
//! and config (issue 16: man pages and completions; the config file). Default: all.

#[macro_use]
mod fail;
mod bundle;
mod ctx;
mod env;
#[macro_use]
mod harness;
mod host;
mod procs;
mod rootfs;
mod schema;
mod stockade;

mod cgroup_fields;
mod cli;
mod closed_output;
mod confine;
mod confine_cgroups;
mod confine_ns;
mod conform;
mod crash;
mod deploy;
mod deploy_cli;
mod deploy_tty;
mod derived;
mod docs;
mod errors;
mod exec;
mod freebsd;
mod hooks;
mod hostile;
mod images;
mod lifecycle;
mod limits;
mod mounts;
mod namespaces_join;
mod output;
mod overlay;
mod parallel;
mod pidfd;
mod process;
mod provision;
mod ps_features;
mod rootless;
mod settings;
mod state;
mod targets;
mod terminal;
mod userns;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use env::Env;
use harness::Test;

/// Every group, under the aliases that select it with its siblings (the issue it came from).
const GROUP_SETS: &[(&[&str], &[&str])] = &[
    (
        &["core", "issue3"],
        &[
            "lifecycle",
            "errors",
            "state",
            "process",
            "mounts",
            "cli",
            "parallel",
            "limits",
            "targets",
            "derived",
        ],
    ),
    (
        &["extras", "issue4"],
        &["hooks", "terminal", "exec", "ps", "features"],
    ),
    // Issue 10: capabilities, seccomp, LSM labels (confine); device rules, sysctl,
    // namespaces, cgroup fields (confine_ns).
    (
        &["confinement", "issue10"],
        &[
            "confine",
            "devices",
            "namespaces",
            "cgroups",
            "userns",
            "conform",
            "nsjoin",
            "rootless",
        ],
    ),
    (&["safety", "issue11"], &["crash", "hostile", "images"]),
    // Issue 15: deploying a service from an image.
    (&["issue15"], &["deploy"]),
    // Issue 17: copy-on-write root filesystems.
    (&["performance", "issue17"], &["overlay"]),
    // The FreeBSD profile: bundles from `stockade spec` and checks that make sense in a jail.
    (&["freebsd-profile", "issue12"], &["freebsd"]),
    // Issue 16: what packaging installs besides the binary (man pages, completions), and
    // the config file.
    (&["issue16"], &["packaging", "config", "output"]),
];

fn all_tests() -> Vec<Test> {
    let mut v = Vec::new();
    v.extend(lifecycle::tests());
    v.extend(pidfd::tests());
    v.extend(errors::tests());
    v.extend(state::tests());
    v.extend(process::tests());
    v.extend(mounts::tests());
    v.extend(cli::tests());
    v.extend(closed_output::tests());
    v.extend(parallel::tests());
    v.extend(limits::tests());
    v.extend(targets::tests());
    v.extend(derived::tests());
    v.extend(hooks::tests());
    v.extend(terminal::tests());
    v.extend(exec::tests());
    v.extend(ps_features::tests());
    v.extend(freebsd::tests());
    v.extend(hostile::tests());
    v.extend(crash::tests());
    v.extend(images::tests());
    v.extend(provision::tests());
    v.extend(deploy::tests());
    v.extend(deploy_cli::tests());
    v.extend(deploy_tty::tests());
    v.extend(overlay::tests());
    v.extend(confine_ns::tests());
    v.extend(confine_cgroups::tests());
    v.extend(userns::tests());
    v.extend(namespaces_join::tests());
    v.extend(rootless::tests());
    v.extend(cgroup_fields::tests());
    v.extend(confine::tests());
    v.extend(conform::tests());
    v.extend(docs::tests());
    v.extend(settings::tests());
    v.extend(output::tests());
    v
}

struct Options {
    stockade: Option<PathBuf>,
    busybox: Option<PathBuf>,
    schema_dir: Option<PathBuf>,
    groups: Vec<String>,
    filters: Vec<String>,
    list: bool,
}

const USAGE: &str = "usage: stockade-spec-tests [--stockade PATH] [--group G[,G...]] \
[--filter SUBSTR]... [--list] [--busybox PATH] [--schema-dir DIR]
  --stockade PATH   binary under test (default $STOCKADE, else target/debug/stockade in the workspace)
  --group G         run only these groups: lifecycle errors state process mounts cli parallel
                    limits targets derived (alias core) hooks terminal exec ps features (alias extras)
                    confine devices namespaces cgroups userns conform nsjoin rootless
                    (alias confinement) crash hostile images
                    (alias safety) deploy (alias issue15) overlay (alias performance) freebsd (alias
                    freebsd-profile: the FreeBSD profile) packaging config output (alias issue16:
                    man pages, completions, config file, output conventions);
                    default all
  --filter SUBSTR   run only tests whose name contains SUBSTR (repeatable: any matches)
  --list            print the selected tests and exit
  --busybox PATH    static busybox for the root filesystems (default $BUSYBOX, else /bin/busybox)
  --schema-dir DIR  runtime-spec schemas (default reference/runtime-spec-v1.3.0/schema)";

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        stockade: None,
        busybox: None,
        schema_dir: None,
        groups: Vec::new(),
        filters: Vec::new(),
        list: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--stockade" => o.stockade = Some(PathBuf::from(value("--stockade")?)),
            "--busybox" => o.busybox = Some(PathBuf::from(value("--busybox")?)),
            "--schema-dir" => o.schema_dir = Some(PathBuf::from(value("--schema-dir")?)),
            "--group" => {
                for g in value("--group")?.split(',').filter(|g| !g.is_empty()) {
                    match g {
                        g if GROUP_SETS.iter().any(|(aliases, _)| aliases.contains(&g)) => {
                            for (aliases, groups) in GROUP_SETS {
                                if aliases.contains(&g) {
                                    o.groups.extend(groups.iter().map(|s| s.to_string()))
                                }
                            }
                        }
                        g if GROUP_SETS.iter().any(|(_, groups)| groups.contains(&g)) => {
                            o.groups.push(g.to_string())
                        }
                        g => return Err(format!("unknown group {g:?}\n{USAGE}")),
                    }
                }
            }
            "--filter" => o.filters.push(value("--filter")?),
            "--list" => o.list = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `busybox --list`, run before the reaper starts (std's own wait is still allowed then).
fn applets(busybox: &Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("running {} --list: {e}", busybox.display()))?;
    if !out.status.success() {
        return Err(format!("{} --list failed", busybox.display()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// `stockade-spec-tests --hook-dump DIR [ARGS…]`: the suite's own hook program. It records
/// exactly what the runtime gave it (argv, environment, stdin) in DIR/argv, DIR/environ and
/// DIR/stdin (NUL-separated lists), with nothing in between that could add variables.
fn hook_dump(argv: &[std::ffi::OsString]) -> ExitCode {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let Some(dir) = argv.get(2).map(PathBuf::from) else {
        return ExitCode::from(2);
    };
    let join = |items: Vec<Vec<u8>>| {
        let mut out = Vec::new();
        for i in items {
            out.extend_from_slice(&i);
            out.push(0);
        }
        out
    };
    let args = join(argv.iter().map(|a| a.as_bytes().to_vec()).collect());
    let env = join(
        std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                kv
            })
            .collect(),
    );
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let ok = std::fs::write(dir.join("argv"), args).is_ok()
        && std::fs::write(dir.join("environ"), env).is_ok()
        && std::fs::write(dir.join("stdin"), stdin).is_ok();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "--hook-dump") {
        return hook_dump(&raw);
    }
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let stockade = opts
        .stockade
        .or_else(|| std::env::var_os("STOCKADE").map(PathBuf::from))
        .unwrap_or_else(|| workspace_root().join("target/debug/stockade"));
    let stockade = std::fs::canonicalize(&stockade).unwrap_or(stockade);
    let busybox = opts
        .busybox
        .or_else(|| std::env::var_os("BUSYBOX").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
    let schema_dir = opts
        .schema_dir
        .unwrap_or_else(|| workspace_root().join("reference/runtime-spec-v1.3.0/schema"));

    let tests = all_tests();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|t| opts.groups.is_empty() || opts.groups.iter().any(|g| g == t.group))
        .filter(|t| {
            opts.filters.is_empty() || opts.filters.iter().any(|f| t.name.contains(f.as_str()))
        })
        .collect();
    if opts.list {
        for t in &selected {
            println!("{} :: {}", t.group, t.name);
        }
        return ExitCode::SUCCESS;
    }

    // The binary must exist before anything is spawned: a failed exec inside std's spawn
    // would otherwise race with our reaper.
    if !stockade.is_file() {
        eprintln!(
            "stockade binary not found at {} (build it, or pass --stockade PATH / $STOCKADE)",
            stockade.display()
        );
        return ExitCode::from(2);
    }

    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cannot_run = None;
    let applets = match applets(&busybox) {
        Ok(a) => a,
        Err(e) => {
            cannot_run = Some(format!(
                "no usable busybox ({e}); install busybox-static or pass --busybox"
            ));
            Vec::new()
        }
    };
    if !is_root {
        cannot_run = Some("containers need root: run the suite as root".to_string());
    }
    let env = Env {
        stockade,
        busybox,
        applets,
        schema_dir,
        cannot_run,
    };

    println!("# stockade: {}", env.stockade.display());
    procs::start_reaper();
    let totals = harness::run(&env, &selected);
    let mut summary = format!("{} passed, {} failed", totals.passed, totals.failed);
    if totals.skipped > 0 {
        summary.push_str(&format!(", {} skipped", totals.skipped));
    }
    println!("{summary}");
    if totals.failed > 0 || selected.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
