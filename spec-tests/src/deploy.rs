//! Deploying from an image (issue 15): `run --image`'s Podman flags reach the container.
//! Each test runs the busybox image of [`store_with_image`] with `--rm` and checks what the
//! process saw.

use std::fs;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};
use crate::images::store_with_image;
use crate::stockade::Output;

pub fn tests() -> Vec<Test> {
    vec![
        test!("deploy", env_and_env_file_reach_the_process_in_order),
        test!("deploy", volumes_bind_host_paths_read_only_or_writable),
        test!("deploy", a_named_volume_is_made_once_and_reused),
        test!("deploy", workdir_user_by_name_and_the_default_hostname),
        test!("deploy", entrypoint_replaces_the_images_and_drops_its_cmd),
        test!("deploy", read_only_root_with_a_tmpfs_mount),
        test!("deploy", bad_flags_are_refused_before_anything_is_made),
        test!("deploy", stop_signal_and_timeout_are_recorded_for_stop),
    ]
}

/// `run --image IMG --rm --name ID FLAGS… -- sh -c SCRIPT` on a fresh store; its output.
fn run_sh(ctx: &Ctx, name: &str, flags: &[&str], script: &str) -> Result<Output, String> {
    let store =
        store_with_image(ctx, "localhost/spec/deploy:1", "marker").map_err(|e| format!("{e:?}"))?;
    let storage = ctx.path("storage");
    run_in(
        ctx,
        &store,
        &storage,
        &ctx.id(name),
        flags,
        &["sh", "-c", script],
    )
}

fn run_in(
    ctx: &Ctx,
    store: &std::path::Path,
    storage: &std::path::Path,
    id: &str,
    flags: &[&str],
    command: &[&str],
) -> Result<Output, String> {
    ctx.track(id);
    let (store_s, storage_s) = (store.display().to_string(), storage.display().to_string());
    let mut args = vec![
        "run",
        "--image",
        "localhost/spec/deploy:1",
        "--image-root",
        &store_s,
        "--storage-root",
        &storage_s,
        "--rm",
        "--name",
        id,
    ];
    args.extend(flags);
    args.push("--");
    args.extend(command);
    ctx.sk(&args).run()
}

fn env_and_env_file_reach_the_process_in_order(ctx: &Ctx) -> TestResult {
    let file = ctx.path("env.list");
    fs::write(&file, "# a comment\nFROM_FILE=file\nBOTH=file\n\nPASSED\n")
        .map_err(|e| e.to_string())?;
    let file_s = file.display().to_string();
    let flags = [
        "--env-file",
        &file_s,
        "-e",
        "BOTH=flag",
        "-e",
        "A=1=2",
        "-e",
        "PASSED",
    ];
    let script = "echo \"[$FROM_FILE][$BOTH][$A][${PASSED-unset}]\"";
    let out = run_sh_env(ctx, "env", &flags, script, ("PASSED", "from-host"))?;
    ensure!(
        out.stdout.contains("[file][flag][1=2][from-host]"),
        "the process saw {:?}",
        out.stdout
    );
    Ok(())
}

/// As [`run_sh`], with one variable set in stockade's own environment.
fn run_sh_env(
    ctx: &Ctx,
    name: &str,
    flags: &[&str],
    script: &str,
    (k, v): (&str, &str),
) -> Result<Output, String> {
    let store =
        store_with_image(ctx, "localhost/spec/deploy:1", "marker").map_err(|e| format!("{e:?}"))?;
    let storage = ctx.path("storage");
    let id = ctx.id(name);
    ctx.track(&id);
    let (store_s, storage_s) = (store.display().to_string(), storage.display().to_string());
    let mut args = vec![
        "run",
        "--image",
        "localhost/spec/deploy:1",
        "--image-root",
        &store_s,
        "--storage-root",
        &storage_s,
        "--rm",
        "--name",
        &id,
    ];
    args.extend(flags);
    args.extend(["--", "sh", "-c", script]);
    ctx.sk(&args).env(k, v).run()?.expect_ok()
}

fn volumes_bind_host_paths_read_only_or_writable(ctx: &Ctx) -> TestResult {
    let (ro, rw) = (ctx.path("ro"), ctx.path("rw"));
    for d in [&ro, &rw] {
        fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    fs::write(ro.join("in"), "from-host\n").map_err(|e| e.to_string())?;
    let v1 = format!("{}:/ro:ro", ro.display());
    let v2 = format!("{}:/rw", rw.display());
    let script = "cat /ro/in; touch /ro/no 2>/dev/null && echo RO-WRITABLE; echo out > /rw/out";
    let out = run_sh(ctx, "vol", &["-v", &v1, "--volume", &v2], script)?.expect_ok()?;
    ensure!(out.stdout.contains("from-host"), "stdout {:?}", out.stdout);
    ensure!(
        !out.stdout.contains("RO-WRITABLE"),
        "a :ro volume was writable"
    );
    ensure!(
        !ro.join("no").exists(),
        "the write reached the read-only source"
    );
    let got = fs::read_to_string(rw.join("out")).unwrap_or_default();
    ensure!(got == "out\n", "the rw volume holds {got:?}");
    Ok(())
}

fn a_named_volume_is_made_once_and_reused(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/deploy:1", "marker")?;
    let storage = ctx.path("storage");
    let w = ["-v", "cache:/cache"];
    run_in(
        ctx,
        &store,
        &storage,
        "nv1",
        &w,
        &["sh", "-c", "echo kept > /cache/f"],
    )?
    .expect_ok()?;
    let dir = storage.join("volumes/cache");
    ensure!(dir.join("f").is_file(), "no {}", dir.join("f").display());
    let out = run_in(
        ctx,
        &store,
        &storage,
        &ctx.id("nv2"),
        &w,
        &["cat", "/cache/f"],
    )?
    .expect_ok()?;
    ensure!(
        out.stdout.trim() == "kept",
        "the second run read {:?}",
        out.stdout
    );
    Ok(())
}

fn workdir_user_by_name_and_the_default_hostname(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/deploy:1", "marker")?;
    let id = ctx.id("who");
    let out = run_in(
        ctx,
        &store,
        &ctx.path("storage"),
        &id,
        &["-w", "/etc", "-u", "user:extra2"],
        &["sh", "-c", "pwd; id -u; id -g; hostname"],
    )?
    .expect_ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines.len() == 4
            && lines[0] == "/etc"
            && lines[1] == crate::rootfs::USER_UID.to_string()
            && lines[2] == "1002",
        "pwd, uid, gid: {lines:?}"
    );
    ensure!(
        lines[3] == id,
        "hostname {:?}, not the name {id:?}",
        lines[3]
    );
    let out = run_sh(ctx, "named", &["--hostname", "web.example"], "hostname")?.expect_ok()?;
    ensure!(
        out.stdout.trim() == "web.example",
        "hostname {:?}",
        out.stdout
    );
    Ok(())
}

fn entrypoint_replaces_the_images_and_drops_its_cmd(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/deploy:1", "marker")?;
    let storage = ctx.path("storage");
    let out = run_in(
        ctx,
        &store,
        &storage,
        &ctx.id("ep"),
        &["--entrypoint", "/bin/echo"],
        &["from", "args"],
    )?
    .expect_ok()?;
    ensure!(out.stdout.trim() == "from args", "stdout {:?}", out.stdout);
    let out = run_in(
        ctx,
        &store,
        &storage,
        &ctx.id("ep2"),
        &["--entrypoint", r#"["/bin/sh","-c","echo json-$0"]"#],
        &["x"],
    )?
    .expect_ok()?;
    ensure!(out.stdout.trim() == "json-x", "stdout {:?}", out.stdout);
    Ok(())
}

fn read_only_root_with_a_tmpfs_mount(ctx: &Ctx) -> TestResult {
    let script = "touch /etc/w 2>/dev/null && echo ROOT-WRITABLE; touch /tmp/t && echo tmp-ok";
    let out = run_sh(
        ctx,
        "ro",
        &[
            "--read-only",
            "--mount",
            "type=tmpfs,destination=/tmp,tmpfs-size=1m",
        ],
        script,
    )?
    .expect_ok()?;
    ensure!(
        !out.stdout.contains("ROOT-WRITABLE"),
        "the root was writable"
    );
    ensure!(out.stdout.contains("tmp-ok"), "stdout {:?}", out.stdout);
    // Without --read-only the same root is writable: the check above can fail.
    let out = run_sh(ctx, "rw", &[], script)?.expect_ok()?;
    ensure!(
        out.stdout.contains("ROOT-WRITABLE"),
        "stdout {:?}",
        out.stdout
    );
    Ok(())
}

fn bad_flags_are_refused_before_anything_is_made(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/deploy:1", "marker")?;
    let storage = ctx.path("storage");
    let missing = format!("{}:/m", ctx.path("missing").display());
    for (flags, says) in [
        (vec!["-v", &missing], "missing"),
        (vec!["-v", "/tmp:/a/../../etc"], ".."),
        (
            vec![
                "--mount",
                "type=bind,source=/tmp,destination=/x,bind-propagation=shared",
            ],
            "not supported",
        ),
        (vec!["-u", "nosuchuser"], "nosuchuser"),
        (vec!["--hostname", "bad_name"], "hostname"),
        (vec!["--stop-signal", "SIGNOPE"], "SIGNOPE"),
    ] {
        let out = run_in(ctx, &store, &storage, &ctx.id("bad"), &flags, &["true"])?;
        out.expect_failure(&format!("run --image {flags:?}"))?;
        out.expect_stderr_contains(says)?;
    }
    // The one storage root all the refused runs used holds nothing of them.
    for sub in ["bundles", "provisions"] {
        let left: Vec<_> = fs::read_dir(storage.join(sub))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        ensure!(left.is_empty(), "a refused run left {sub}: {left:?}");
    }
    Ok(())
}

fn stop_signal_and_timeout_are_recorded_for_stop(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/deploy:1", "marker")?;
    let storage = ctx.path("storage");
    let id = ctx.id("stopsig");
    ctx.track(&id);
    let (store_s, storage_s) = (store.display().to_string(), storage.display().to_string());
    let out = ctx
        .sk(&[
            "run",
            "--image",
            "localhost/spec/deploy:1",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage_s,
            "--name",
            &id,
            "-d",
            "--stop-signal",
            "quit",
            "--stop-timeout",
            "25",
            "--",
            "sleep",
            "300",
        ])
        .run()?
        .expect_ok()?;
    ensure!(
        out.stdout.trim() == id,
        "-d printed {:?}, not the name",
        out.stdout
    );
    let state = ctx.state(&id)?;
    let notes = &state["annotations"];
    let result = (|| {
        ensure!(
            notes["org.opencontainers.image.stopSignal"] == "SIGQUIT",
            "stop signal annotation: {notes}"
        );
        ensure!(
            notes["org.freebsd.stockade.stopTimeout"] == "25",
            "stop timeout annotation: {notes}"
        );
        Ok(())
    })();
    ctx.sk(&["delete", "--force", "--storage-root", &storage_s, &id])
        .run()?
        .expect_ok()?;
    result
}
