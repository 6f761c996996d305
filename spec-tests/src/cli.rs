//! The command line itself: `--version`, JSON logs, runc's global flags, `list`, `spec`.

use serde_json::Value;

use crate::ctx::{read_text, Ctx};
use crate::harness::{Fail, Test, TestResult};
use crate::schema;

pub fn tests() -> Vec<Test> {
    vec![
        test!("cli", version_prints_name_commit_and_spec_lines),
        test!("cli", log_format_json_writes_level_msg_time_lines),
        test!("cli", runc_global_flags_are_accepted),
        test!("cli", list_json_reports_each_container_with_id_and_status),
        test!("cli", list_quiet_prints_only_the_ids),
        test!("cli", spec_writes_a_config_valid_against_the_config_schema),
        test!("cli", spec_refuses_to_overwrite_an_existing_config),
        test!(
            "cli",
            explain_prints_the_jail_parameters_of_each_freebsd_example
        ),
        test!(
            "cli",
            explain_rejects_the_bad_freebsd_example_naming_the_field
        ),
        test!("cli", run_refuses_registry_options_without_an_image),
    ]
}

/// `--creds`, `--platform`, `--authfile` and `--insecure` say how to pull an image; on a
/// plain bundle run they would be silently meaningless, so they are refused.
fn run_refuses_registry_options_without_an_image(ctx: &Ctx) -> TestResult {
    for flags in [
        &["--creds", "u:p"][..],
        &["--platform", "freebsd/amd64"][..],
        &["--insecure"][..],
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--bundle", "/nonexistent", "regopts"]);
        let out = ctx.sk(&args).run()?;
        out.expect_failure(&format!("run {}", flags.join(" ")))?;
        out.expect_stderr_contains("go with --image")?;
    }
    Ok(())
}

fn version_prints_name_commit_and_spec_lines(ctx: &Ctx) -> TestResult {
    let out = ctx.sk(&["--version"]).run()?.expect_ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() >= 3, "--version printed {:?}", out.stdout);
    let version = lines[0]
        .strip_prefix("stockade version ")
        .ok_or_else(|| format!("first line {:?} is not `stockade version X`", lines[0]))?;
    ensure!(
        !version.trim().is_empty() && !version.contains(' '),
        "version {version:?} is not one word"
    );
    ensure!(
        lines[1].starts_with("commit: "),
        "second line {:?} is not `commit: …`",
        lines[1]
    );
    ensure_eq!(lines[2], "spec: 1.3.0", "third line");
    Ok(())
}

fn log_format_json_writes_level_msg_time_lines(ctx: &Ctx) -> TestResult {
    let log = ctx.path("log.json");
    let log_arg = log.to_string_lossy().into_owned();
    let out = ctx
        .sk(&["state", "no-such-container"])
        .global("--log")
        .global(&log_arg)
        .global("--log-format")
        .global("json")
        .run()?;
    out.expect_failure("state of an unknown id")?;
    let text = read_text(&log);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(!lines.is_empty(), "the log file {} is empty", log.display());
    let mut last_error = None;
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("log line is not JSON ({e}): {line:?}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| format!("log line is not an object: {line:?}"))?;
        for key in ["level", "msg", "time"] {
            ensure!(
                obj.get(key).is_some_and(Value::is_string),
                "log line lacks a string {key:?}: {line:?}"
            );
        }
        let time = obj["time"].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(time)
            .map_err(|e| format!("time {time:?} is not RFC3339: {e}"))?;
        if obj["level"] == "error" {
            last_error = obj["msg"].as_str().map(str::to_string);
        }
    }
    let msg = last_error.ok_or_else(|| format!("no level=error line in the log: {lines:?}"))?;
    ensure!(
        msg.contains("does not exist"),
        "the last error line says {msg:?}"
    );
    Ok(())
}

fn runc_global_flags_are_accepted(ctx: &Ctx) -> TestResult {
    for flags in [
        &["--systemd-cgroup"][..],
        &["--rootless=false"],
        &["--debug"],
        &["--log-format", "text"],
    ] {
        let mut inv = ctx.sk(&["list"]);
        for f in flags {
            inv = inv.global(f);
        }
        let out = inv.run()?;
        ensure!(
            out.ok(),
            "global flags {flags:?} refused: {}",
            out.stderr.trim()
        );
    }
    Ok(())
}

fn list_json_reports_each_container_with_id_and_status(ctx: &Ctx) -> TestResult {
    let created = ctx.id("listc");
    let running = ctx.id("listr");
    ctx.create_ok(&created, &ctx.bundle(&["sleep", "1000"])?)?;
    ctx.create_start(&running, &ctx.bundle(&["sleep", "1000"])?)?;
    let out = ctx.sk(&["list", "--format", "json"]).run()?.expect_ok()?;
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("list --format json is not JSON ({e}): {:?}", out.stdout))?;
    let arr = v
        .as_array()
        .ok_or_else(|| format!("list --format json is not an array: {v}"))?;
    ensure_eq!(arr.len(), 2, "number of containers listed");
    for (id, status) in [(&created, "created"), (&running, "running")] {
        let entry = arr
            .iter()
            .find(|e| e["id"].as_str() == Some(id.as_str()))
            .ok_or_else(|| format!("{id} missing from {v}"))?;
        ensure_eq!(
            entry["status"].as_str(),
            Some(status),
            "status of {id} in list"
        );
    }
    Ok(())
}

fn list_quiet_prints_only_the_ids(ctx: &Ctx) -> TestResult {
    let a = ctx.id("qa");
    let b = ctx.id("qb");
    ctx.create_ok(&a, &ctx.bundle(&["true"])?)?;
    ctx.create_ok(&b, &ctx.bundle(&["true"])?)?;
    let out = ctx.sk(&["list", "-q"]).run()?.expect_ok()?;
    let mut got: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    got.sort_unstable();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort_unstable();
    ensure_eq!(got, want, "list -q");
    Ok(())
}

fn spec_writes_a_config_valid_against_the_config_schema(ctx: &Ctx) -> TestResult {
    let dir = ctx.path("specdir");
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    ctx.sk(&["spec", "--bundle", &dir.to_string_lossy()])
        .run()?
        .expect_ok()?;
    let text = read_text(&dir.join("config.json"));
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("config.json written by spec is not JSON ({e}): {text:?}"))?;
    schema::validate(&ctx.env.schema_dir, "config-schema.json", &v).map_err(Fail::Fail)?;
    Ok(())
}

fn spec_refuses_to_overwrite_an_existing_config(ctx: &Ctx) -> TestResult {
    let dir = ctx.path("specdir2");
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("config.json"), "mine").map_err(|e| e.to_string())?;
    let out = ctx
        .sk(&["spec", "--bundle", &dir.to_string_lossy()])
        .run()?;
    out.expect_failure("spec over an existing config.json")?;
    out.expect_stderr_contains("already exists")?;
    ensure_eq!(
        read_text(&dir.join("config.json")),
        "mine",
        "config.json after a refused spec"
    );
    Ok(())
}

/// The runtime-spec's FreeBSD examples, next to the schemas.
fn example(ctx: &Ctx, name: &str) -> Result<std::path::PathBuf, Fail> {
    let src = ctx.env.schema_dir.join("../examples").join(name);
    let dir = ctx.path(name.trim_end_matches(".json"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(&src, dir.join("config.json")).map_err(|e| format!("{}: {e}", src.display()))?;
    Ok(dir)
}

fn explain_prints_the_jail_parameters_of_each_freebsd_example(ctx: &Ctx) -> TestResult {
    let expect: &[(&str, &[&str])] = &[
        (
            "config-good-freebsd-example.json",
            &[
                "persist;",
                "host.hostname = \"slartibartfast\";",
                "vnet = new;",
                "enforce_statfs = 1;",
                "allow.mount.tmpfs;",
                "allow.raw_sockets;",
                "devfs rule: unhide /dev/pf mode 700",
            ],
        ),
        (
            "config-good-freebsd-minimal.json",
            &[
                "persist;",
                "ip4 = inherit;",
                "ip6 = inherit;",
                "sysvshm = new;",
            ],
        ),
    ];
    for (name, wanted) in expect {
        let dir = example(ctx, name)?;
        let out = ctx
            .sk(&["explain", "--bundle", &dir.to_string_lossy(), "web1"])
            .run()?
            .expect_ok()?;
        ensure!(
            out.stdout.contains("\"web1\" {"),
            "{name}: no jail block for web1 in {:?}",
            out.stdout
        );
        for w in *wanted {
            ensure!(
                out.stdout.contains(w),
                "{name}: explain lacks {w:?}: {:?}",
                out.stdout
            );
        }
        let json = ctx
            .sk(&[
                "explain",
                "--format",
                "json",
                "--bundle",
                &dir.to_string_lossy(),
                "web1",
            ])
            .run()?
            .expect_ok()?;
        let v: Value =
            serde_json::from_str(&json.stdout).map_err(|e| format!("{name}: explain json: {e}"))?;
        ensure_eq!(v["jail"]["name"].as_str(), Some("web1"), "jail name");
        ensure!(
            v["jail"]["params"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{name}: no params in {v}"
        );
    }
    Ok(())
}

fn explain_rejects_the_bad_freebsd_example_naming_the_field(ctx: &Ctx) -> TestResult {
    let dir = example(ctx, "config-bad-freebsd-vnet-disable.json")?;
    let out = ctx
        .sk(&["explain", "--bundle", &dir.to_string_lossy()])
        .run()?;
    out.expect_failure("explain of the bad example")?;
    out.expect_stderr_contains(
        "freebsd.jail.vnet: \"disable\" is not valid here; expected \"new\" or \"inherit\"",
    )?;
    Ok(())
}
