//! The smaller gaps of issue 15: `ps ID -- ARGS`, aligned `list` columns, images named by
//! the short id `image ls` prints or a name without registry and tag, `--platform` against
//! a stored image, and `run --image -d` printing the generated name.

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};
use crate::images::store_with_image;

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "deploy",
            ps_runs_ps_with_its_arguments_on_the_containers_pids
        ),
        test!("deploy", list_columns_line_up_whatever_the_id_length),
        test!("deploy", images_are_found_by_short_id_and_short_name),
    ]
}

fn ps_runs_ps_with_its_arguments_on_the_containers_pids(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "300"])?;
    let id = ctx.id("ps");
    ctx.create_start(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let out = ctx
        .sk(&["ps", &id, "--", "-o", "pid,args"])
        .run()?
        .expect_ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(
        lines
            .first()
            .is_some_and(|h| h.contains("PID") && h.contains("COMMAND")),
        "no ps header: {lines:?}"
    );
    ensure!(
        lines.len() == 2
            && lines[1].trim_start().starts_with(&pid.to_string())
            && lines[1].contains("sleep 300"),
        "ps printed other than the container's one process: {lines:?}"
    );
    // runc's default arguments and the JSON form still work.
    let out = ctx.sk(&["ps", &id]).run()?.expect_ok()?;
    ensure!(out.stdout.lines().count() == 2, "ps ID: {:?}", out.stdout);
    let out = ctx
        .sk(&["ps", "--format", "json", &id])
        .run()?
        .expect_ok()?;
    ensure!(
        out.stdout.trim() == format!("[{pid}]"),
        "ps --format json: {:?}",
        out.stdout
    );
    ctx.sk(&["ps", "--format", "json", &id, "-ef"])
        .run()?
        .expect_failure("ps --format json with ps arguments")?;
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    Ok(())
}

fn list_columns_line_up_whatever_the_id_length(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "300"])?;
    let short = ctx.id("l");
    let long = ctx.id("a-much-longer-container-name-than-the-old-24-columns");
    for id in [&short, &long] {
        ctx.create_ok(id, &b)?;
    }
    let out = ctx.sk(&["list"]).run()?.expect_ok()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() == 3, "list: {lines:?}");
    // Every column starts at the same offset on every line.
    let starts = |l: &str| -> Vec<usize> {
        let mut v = vec![0];
        let b = l.as_bytes();
        for i in 1..b.len() {
            if b[i] != b' ' && b[i - 1] == b' ' && i >= 3 && &b[i - 3..i] == b"   " {
                v.push(i);
            }
        }
        v
    };
    let header = starts(lines[0]);
    ensure!(
        header.len() == 6,
        "header columns {header:?} in {:?}",
        lines[0]
    );
    for l in &lines[1..] {
        let s = starts(l);
        ensure!(
            s.len() >= 5 && s[..5] == header[..5],
            "columns of {l:?} start at {s:?}, the header's at {header:?}"
        );
    }
    for id in [&short, &long] {
        ctx.sk(&["delete", "--force", id]).run()?.expect_ok()?;
    }
    Ok(())
}

fn images_are_found_by_short_id_and_short_name(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/short:1", "marker")?;
    let store_s = store.display().to_string();
    let ls = ctx
        .sk(&["image", "--image-root", &store_s, "ls"])
        .run()?
        .expect_ok()?;
    let short_id = ls
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or_else(|| format!("image ls printed no digest column: {:?}", ls.stdout))?
        .to_string();
    for query in [short_id.as_str(), "short", "spec/short:1"] {
        let out = ctx
            .sk(&["image", "--image-root", &store_s, "inspect", query])
            .run()?
            .expect_ok()?;
        ensure!(
            out.stdout.contains("\"localhost/spec/short:1\""),
            "inspect {query}: {:?}",
            out.stdout
        );
    }
    // Run by short name, detached without --name: the generated name is printed.
    let storage = ctx.path("storage").display().to_string();
    let out = ctx
        .sk(&[
            "run",
            "--image",
            "short",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage,
            "-d",
            "--",
            "sleep",
            "300",
        ])
        .run()?
        .expect_ok()?;
    let name = out.stdout.trim().to_string();
    ensure!(!name.is_empty(), "run --image -d printed no name");
    ctx.track(&name);
    ensure!(ctx.status(&name)? == "running", "{name} is not running");
    ctx.sk(&["delete", "--force", "--storage-root", &storage, &name])
        .run()?
        .expect_ok()?;
    // --platform for another os than the stored image's is refused, not ignored.
    let other = if cfg!(target_os = "linux") {
        "freebsd/amd64"
    } else {
        "linux/amd64"
    };
    let out = ctx
        .sk(&[
            "run",
            "--image",
            "short",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage,
            "--platform",
            other,
            "--rm",
            "--",
            "true",
        ])
        .run()?;
    out.expect_failure("run --image --platform of another os")?;
    out.expect_stderr_contains("in the store is for")?;
    Ok(())
}
