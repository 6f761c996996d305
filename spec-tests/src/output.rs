//! Issue 16, one output convention: every error line on stderr starts `stockade: error:`
//! (usage errors too, and with `--log` or `--log-format json`); the listings' `--format
//! json` parses and `-q` prints ids; `--debug` logs create's steps to stderr or the
//! `--log` file, and nothing without it; `spec --bundle DIR` makes DIR.

use std::os::fd::OwnedFd;
use std::path::Path;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::host::read_text;
use crate::images::store_with_image;
use crate::procs::{self, Io};

pub fn tests() -> Vec<Test> {
    vec![
        test!("output", every_error_line_starts_with_the_prefix),
        test!("output", listings_print_json_that_parses_and_ids_with_q),
        test!("output", image_listings_print_json_and_ids),
        test!("output", debug_logs_the_create_steps_only_when_asked),
        test!("output", debug_goes_to_the_log_file_when_one_is_given),
        test!(
            "output",
            debug_logs_each_unpacked_layer_and_bars_only_a_terminal
        ),
        test!("output", spec_makes_the_bundle_directory_but_not_its_parent),
        test!("output", config_network_is_the_run_image_default),
    ]
}

/// Each line of `stderr` that says `error` is a `stockade: error:` line, and there is one.
fn check_error_lines(what: &str, stderr: &str) -> TestResult {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error:"))
        .collect();
    ensure!(
        !lines.is_empty(),
        "{what}: no error line on stderr: {stderr:?}"
    );
    for l in lines {
        ensure!(
            l.starts_with("stockade: error: ") || l.starts_with("{\"level\":\"error\""),
            "{what}: error line without the prefix: {l:?} (stderr {stderr:?})"
        );
    }
    ensure!(
        stderr.lines().any(|l| l.starts_with("stockade: error: ")),
        "{what}: no `stockade: error:` line: {stderr:?}"
    );
    Ok(())
}

fn every_error_line_starts_with_the_prefix(ctx: &Ctx) -> TestResult {
    let missing = ctx.id("nope");
    let images = ctx.path("images").display().to_string();
    let nets = ctx.path("storage").display().to_string();
    let no_parent = ctx.path("no/such/bundle").display().to_string();
    let log = ctx.path("log.json");
    let log_s = log.display().to_string();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        // clap's usage errors.
        (vec![], vec!["no-such-command"]),
        (vec![], vec!["list", "--format", "xml"]),
        (vec![], vec!["start"]),
        (vec![], vec!["kill", "--bogus", &missing]),
        // The commands' own errors.
        (vec![], vec!["state", &missing]),
        (vec![], vec!["start", &missing]),
        (vec![], vec!["kill", &missing, "KILL"]),
        (vec![], vec!["delete", &missing]),
        (vec![], vec!["create", "--bundle", &no_parent, &missing]),
        (vec![], vec!["spec", "--bundle", &no_parent]),
        (
            vec![],
            vec!["image", "--image-root", &images, "inspect", "nope:1"],
        ),
        (
            vec![],
            vec!["image", "--image-root", &images, "rm", "nope:1"],
        ),
        (
            vec![],
            vec!["network", "--storage-root", &nets, "rm", "nope"],
        ),
        (vec![], vec!["kill", &missing, "NOSIG"]),
        // With the log elsewhere or in JSON, stderr still has the line.
        (vec!["--log-format", "json"], vec!["state", &missing]),
        (
            vec!["--log", &log_s, "--log-format", "json"],
            vec!["start", &missing],
        ),
    ];
    for (global, args) in &cases {
        let mut inv = ctx.sk(args);
        for g in global {
            inv = inv.global(g);
        }
        let out = inv.run()?;
        ensure!(!out.ok(), "{} succeeded", out.cmdline);
        check_error_lines(&out.cmdline, &out.stderr)?;
    }
    // runc's callers read the log file: the JSON error line is there.
    let text = read_text(&log);
    let last: Value = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("--log file holds no JSON line: {text:?}"))?;
    ensure_eq!(
        last["level"].as_str(),
        Some("error"),
        "log level in {text:?}"
    );
    ensure!(
        last["msg"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "log message: {text:?}"
    );
    Ok(())
}

fn parse_json(what: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what}: not JSON ({e}): {text:?}"))
}

fn listings_print_json_that_parses_and_ids_with_q(ctx: &Ctx) -> TestResult {
    let id = ctx.id("outj");
    ctx.create_start(&id, &ctx.bundle(&["sleep", "300"])?)?;
    let pid = ctx.pid(&id)?;

    let out = ctx.sk(&["list", "--format", "json"]).run()?.expect_ok()?;
    let v = parse_json("list --format json", &out.stdout)?;
    let entry = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"].as_str() == Some(id.as_str())))
        .ok_or_else(|| format!("{id} missing from list --format json: {v}"))?;
    for key in [
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "created",
        "owner",
    ] {
        ensure!(
            !entry[key].is_null(),
            "list --format json: no {key} in {entry}"
        );
    }

    let out = ctx
        .sk(&["ps", "--format", "json", &id])
        .run()?
        .expect_ok()?;
    let v = parse_json("ps --format json", &out.stdout)?;
    ensure!(
        v.as_array()
            .is_some_and(|a| a.iter().any(|p| p.as_i64() == Some(i64::from(pid)))),
        "ps --format json lacks the init pid {pid}: {v}"
    );
    let out = ctx.sk(&["ps", "-q", &id]).run()?.expect_ok()?;
    ensure!(
        out.stdout.lines().any(|l| l == pid.to_string()),
        "ps -q lacks the init pid {pid}: {:?}",
        out.stdout
    );
    ensure!(
        out.stdout.lines().all(|l| l.parse::<i32>().is_ok()),
        "ps -q prints more than pids: {:?}",
        out.stdout
    );

    let nets = ctx.path("storage").display().to_string();
    let out = ctx
        .sk(&["network", "--storage-root", &nets, "ls", "--format", "json"])
        .run()?
        .expect_ok()?;
    let v = parse_json("network ls --format json", &out.stdout)?;
    ensure!(v.as_array().is_some(), "network ls --format json: {v}");
    Ok(())
}

fn image_listings_print_json_and_ids(ctx: &Ctx) -> TestResult {
    let name = "localhost/spec/out:1";
    let store = store_with_image(ctx, name, "marker")?;
    let store_s = store.display().to_string();
    let image = |args: &[&str]| {
        let mut v = vec!["image", "--image-root", &store_s];
        v.extend_from_slice(args);
        ctx.sk(&v).run()
    };
    let out = image(&["ls", "--format", "json"])?.expect_ok()?;
    let v = parse_json("image ls --format json", &out.stdout)?;
    let entry = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"].as_str() == Some(name)))
        .ok_or_else(|| format!("{name} missing from image ls --format json: {v}"))?;
    let digest = entry["digest"].as_str().unwrap_or_default().to_string();
    ensure!(digest.starts_with("sha256:"), "image ls digest: {entry}");
    ensure!(
        entry["size"].as_u64().is_some_and(|s| s > 0),
        "size: {entry}"
    );
    ensure!(entry["mediaType"].is_string(), "mediaType: {entry}");

    let out = image(&["ls", "-q"])?.expect_ok()?;
    ensure_eq!(out.stdout.trim(), name, "image ls -q");

    let out = image(&["inspect", "--format", "json", name])?.expect_ok()?;
    let v = parse_json("image inspect", &out.stdout)?;
    ensure_eq!(
        v["digest"].as_str(),
        Some(digest.as_str()),
        "inspect digest"
    );
    ensure!(v["manifest"].is_object(), "inspect manifest: {v}");
    let out = image(&["inspect", "-q", name])?.expect_ok()?;
    ensure_eq!(out.stdout.trim(), digest, "image inspect -q");
    // No table for inspect: refused, not ignored.
    let out = image(&["inspect", "--format", "table", name])?;
    ensure!(!out.ok(), "image inspect --format table succeeded");
    Ok(())
}

/// Lines of create's steps that `--debug` must log.
const STEPS: &[&str] = &[
    "prepare_host",
    "spawn_init",
    "handshake: received",
    "created",
];

fn debug_logs_the_create_steps_only_when_asked(ctx: &Ctx) -> TestResult {
    let quiet = ctx.id("nodebug");
    let out = ctx
        .sk(&[
            "create",
            "--bundle",
            &ctx.bundle(&["true"])?.dir.display().to_string(),
            &quiet,
        ])
        .run()?;
    ctx.track(&quiet);
    ensure!(out.ok(), "create: {}", out.stderr);
    ensure_eq!(out.stderr.as_str(), "", "stderr of create without --debug");

    let id = ctx.id("debug");
    let b = ctx.bundle(&["true"])?;
    let out = ctx
        .sk(&["create", "--bundle", &b.dir.display().to_string(), &id])
        .global("--debug")
        .run()?;
    ctx.track(&id);
    ensure!(out.ok(), "create --debug: {}", out.stderr);
    for step in STEPS {
        ensure!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("stockade: debug: ") && l.contains(step)),
            "create --debug logged no {step:?} step: {:?}",
            out.stderr
        );
    }
    let out = ctx.sk(&["delete", &id]).global("--debug").run()?;
    ensure!(out.ok(), "delete --debug: {}", out.stderr);
    ensure!(
        out.stderr.contains("stockade: debug: delete") && out.stderr.contains("state removed"),
        "delete --debug logged no steps: {:?}",
        out.stderr
    );
    Ok(())
}

fn debug_goes_to_the_log_file_when_one_is_given(ctx: &Ctx) -> TestResult {
    let id = ctx.id("debuglog");
    let log = ctx.path("debug.log");
    let b = ctx.bundle(&["true"])?;
    let out = ctx
        .sk(&["create", "--bundle", &b.dir.display().to_string(), &id])
        .global("--debug")
        .global("--log")
        .global(&log.display().to_string())
        .run()?;
    ctx.track(&id);
    ensure!(out.ok(), "create --debug --log: {}", out.stderr);
    ensure_eq!(out.stderr.as_str(), "", "stderr with --log");
    let text = read_text(&log);
    for step in STEPS {
        ensure!(
            text.contains(step),
            "the --log file has no {step:?} step: {text:?}"
        );
    }
    Ok(())
}

fn debug_logs_each_unpacked_layer_and_bars_only_a_terminal(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/unpack:1", "marker")?;
    let store_s = store.display().to_string();
    let storage = ctx.path("storage").display().to_string();
    let bundle = ctx.path("ubundle").display().to_string();
    let name = ctx.id("unpacked");
    let bundle_args = |cmd: &[&str]| {
        let mut v = vec![
            "bundle",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage,
            "--storage-driver",
            "dir",
        ];
        v.extend_from_slice(cmd);
        ctx.sk(&v)
    };
    let create = [
        "create",
        "--image",
        "localhost/spec/unpack:1",
        "--name",
        &name,
        &bundle,
    ];
    let out = bundle_args(&create).global("--debug").run()?.expect_ok()?;
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("stockade: debug: unpack: layer 1/1 sha256:"))
        .ok_or_else(|| format!("bundle create --debug logged no layer: {:?}", out.stderr))?;
    ensure!(
        line.contains("bytes compressed") && line.contains(" entries in "),
        "the layer line lacks its size, entries or time: {line:?}"
    );
    // stderr is a file here: no progress bar.
    ensure!(
        !out.stderr.contains("unpacking ["),
        "an unpack bar on a stderr that is not a terminal: {:?}",
        out.stderr
    );
    bundle_args(&["rm", &name]).run()?.expect_ok()?;

    // On a terminal (script(1) gives it one), the bar counts the layer (unpacked afresh in
    // another storage root: a stored layer is not unpacked again).
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        return Err(Fail::Skip(
            "no script(1) to give stockade a terminal".into(),
        ));
    }
    let tty_name = ctx.id("tty");
    let mut argv = vec![
        ctx.env.stockade.display().to_string(),
        "--root".to_string(),
        ctx.root.display().to_string(),
        "bundle".into(),
        "--image-root".into(),
        store_s.clone(),
        "--storage-root".into(),
        ctx.path("storage-tty").display().to_string(),
        "--storage-driver".into(),
        "dir".into(),
        "create".into(),
        "--image".into(),
        "localhost/spec/unpack:1".into(),
        "--name".into(),
        tty_name.clone(),
        ctx.path("tbundle").display().to_string(),
    ];
    argv = vec!["-qec".to_string(), argv.join(" "), "/dev/null".to_string()];
    let out_path = ctx.io_file("script.out");
    let out_file = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    ctx.note(format!("$ script {}", argv.join(" ")));
    let running = procs::spawn(procs::Spec {
        program: script.to_path_buf(),
        args: argv,
        // indicatif hides every bar when TERM is unset or "dumb" (CI runs with a bare
        // environment): the terminal script(1) gives is a capable one.
        env: vec![("TERM".to_string(), "xterm".to_string())],
        cwd: None,
        stdin: Io::Null,
        stdout: Io::Fd(OwnedFd::from(out_file)),
        stderr: Io::Null,
        extra_fds: Vec::new(),
    })?;
    let exit = running.wait(crate::stockade::CMD_TIMEOUT)?;
    let text = read_text(&out_path);
    ensure!(exit.success(), "bundle create on a terminal: {text:?}");
    ensure!(
        text.contains("unpacking [") && text.contains("1/1 layers"),
        "no unpack bar on a terminal: {text:?}"
    );
    Ok(())
}

fn spec_makes_the_bundle_directory_but_not_its_parent(ctx: &Ctx) -> TestResult {
    let dir = ctx.path("newbundle");
    ctx.sk(&["spec", "--bundle", &dir.display().to_string()])
        .run()?
        .expect_ok()?;
    ensure!(
        dir.join("config.json").is_file(),
        "spec --bundle did not make {}",
        dir.display()
    );
    let deep = ctx.path("missing/newbundle");
    let out = ctx
        .sk(&["spec", "--bundle", &deep.display().to_string()])
        .run()?;
    ensure!(!out.ok(), "spec --bundle with a missing parent succeeded");
    out.expect_stderr_contains("does not exist")?;
    ensure!(
        !ctx.path("missing").exists(),
        "spec made the missing parent directory"
    );
    Ok(())
}

/// The interfaces `/proc/net/dev` lists inside a `run --image` container.
fn interfaces(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect()
}

fn config_network_is_the_run_image_default(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/net:1", "marker")?;
    let store_s = store.display().to_string();
    let storage = ctx.path("storage").display().to_string();
    let conf = ctx.path("stockade.conf");
    std::fs::write(&conf, "network = \"none\"\n").map_err(|e| e.to_string())?;
    let conf_s = conf.display().to_string();
    let run = |extra: &[&str]| {
        let mut v = vec![
            "run",
            "--image",
            "localhost/spec/net:1",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage,
            "--storage-driver",
            "dir",
            "--rm",
        ];
        v.extend_from_slice(extra);
        v.extend(["--", "cat", "/proc/net/dev"]);
        ctx.sk(&v).global("--config").global(&conf_s).run()
    };
    let out = run(&[])?.expect_ok()?;
    ensure_eq!(
        interfaces(&out.stdout),
        vec!["lo".to_string()],
        "interfaces with network = \"none\" in the config file"
    );
    // The flag wins over the file.
    let out = run(&["--network", "host"])?.expect_ok()?;
    let host = interfaces(&out.stdout);
    ensure!(
        host.iter().any(|i| i != "lo"),
        "--network host over the file's none: only {host:?}"
    );
    Ok(())
}
