//! User namespaces with `linux.uidMappings`/`gidMappings` (rootful, as Podman's `--uidmap`
//! and `--userns=auto` send them): the maps the container reads, root inside being the
//! mapped ids outside, files made inside owned by the mapped ids on the host, exec joining
//! the namespace, and bad maps refused by field. Group `userns`.

#[cfg(target_os = "linux")]
use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "userns",
            maps_are_read_inside_and_files_made_are_the_mapped_ids
        ),
        test!(
            "userns",
            the_init_and_exec_are_root_inside_and_mapped_outside
        ),
        test!("userns", bad_mappings_fail_create_by_field),
    ]
}

#[cfg(not(target_os = "linux"))]
fn linux_only(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "user namespaces: not this platform".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
use linux_only as maps_are_read_inside_and_files_made_are_the_mapped_ids;
#[cfg(not(target_os = "linux"))]
use linux_only as the_init_and_exec_are_root_inside_and_mapped_outside;
#[cfg(not(target_os = "linux"))]
use linux_only as bad_mappings_fail_create_by_field;

/// Host ids of the container's 0: different for users and groups, so a swapped map shows.
#[cfg(target_os = "linux")]
const UID_BASE: u32 = 300000;
#[cfg(target_os = "linux")]
const GID_BASE: u32 = 400000;
#[cfg(target_os = "linux")]
const SIZE: u32 = 65536;

/// Shifts every owner in `dir` (not following links) into the mapped range, as a caller
/// such as Podman prepares the root of a user-namespaced container.
#[cfg(target_os = "linux")]
fn shift_owners(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::os::unix::fs::lchown(
        dir,
        Some(meta.uid() + UID_BASE),
        Some(meta.gid() + GID_BASE),
    )
    .map_err(|e| format!("lchown {}: {e}", dir.display()))?;
    // chown clears set-id bits; the modes of these files have none that matter here.
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            shift_owners(&entry.map_err(|e| e.to_string())?.path())?;
        }
    }
    Ok(())
}

/// A bundle with a new user namespace mapping 0..SIZE to the bases, its root shifted and
/// its directories searchable by the mapped root.
#[cfg(target_os = "linux")]
fn userns_bundle(ctx: &Ctx, args: &[&str]) -> Result<crate::bundle::Bundle, crate::harness::Fail> {
    use std::os::unix::fs::PermissionsExt;
    let mut b = ctx.bundle(args)?;
    for d in [&ctx.dir, &b.dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| format!("chmod {}: {e}", d.display()))?;
    }
    shift_owners(&b.rootfs)?;
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .ok_or("namespaces is a list")?
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": UID_BASE, "size": SIZE}]);
    b.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": GID_BASE, "size": SIZE}]);
    b.save()?;
    Ok(b)
}

/// The `Uid:`/`Gid:` line of `/proc/PID/status` read from the host: the four ids.
#[cfg(target_os = "linux")]
fn host_ids(pid: i32, key: &str) -> Result<Vec<u32>, String> {
    let text = crate::ctx::read_text(std::path::Path::new(&format!("/proc/{pid}/status")));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .ok_or(format!("no {key} line for pid {pid}"))?
        .split_whitespace()
        .map(|n| n.parse().map_err(|e| format!("{key} of {pid}: {e}")))
        .collect()
}

#[cfg(target_os = "linux")]
fn maps_are_read_inside_and_files_made_are_the_mapped_ids(ctx: &Ctx) -> TestResult {
    let mut b = userns_bundle(
        ctx,
        &[
            "sh",
            "-c",
            "echo uid $(cat /proc/self/uid_map); echo gid $(cat /proc/self/gid_map); \
             echo ids $(id -u) $(id -g); mkdir /tmp/made; touch /tmp/made/file; chown 1000:1001 /tmp/made/file",
        ],
    )?;
    // Capabilities are the namespace's: CAP_CHOWN acts on ids mapped into it.
    let chown = json!(["CAP_CHOWN"]);
    b.process()["capabilities"] =
        json!({"bounding": chown, "effective": chown, "permitted": chown});
    let out = ctx.run_to_stop("usermaps", &b)?.0;
    let line = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .map(str::to_string)
            .ok_or_else(|| format!("no {k} line in {out:?}"))
    };
    ensure!(
        line("uid")? == format!("0 {UID_BASE} {SIZE}"),
        "uid_map inside: {out:?}"
    );
    ensure!(
        line("gid")? == format!("0 {GID_BASE} {SIZE}"),
        "gid_map inside: {out:?}"
    );
    ensure!(line("ids")? == "0 0", "root inside: {out:?}");
    use std::os::unix::fs::MetadataExt;
    for (path, uid, gid) in [
        ("tmp/made", UID_BASE, GID_BASE),
        ("tmp/made/file", UID_BASE + 1000, GID_BASE + 1001),
    ] {
        let m = std::fs::metadata(b.rootfs.join(path)).map_err(|e| format!("{path}: {e}"))?;
        ensure!(
            (m.uid(), m.gid()) == (uid, gid),
            "{path} on the host is {}:{}, want {uid}:{gid}",
            m.uid(),
            m.gid()
        );
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn the_init_and_exec_are_root_inside_and_mapped_outside(ctx: &Ctx) -> TestResult {
    let b = userns_bundle(ctx, &["sleep", "1000"])?;
    let id = ctx.id("userexec");
    ctx.create_start(&id, &b)?;
    let init = ctx.pid(&id)?;
    ensure!(
        host_ids(init, "Uid")? == [UID_BASE; 4],
        "the init's Uid line from the host: {:?}",
        host_ids(init, "Uid")?
    );
    ensure!(
        host_ids(init, "Gid")? == [GID_BASE; 4],
        "the init's Gid line"
    );
    let host_user = std::fs::read_link("/proc/self/ns/user").map_err(|e| e.to_string())?;
    let init_user =
        std::fs::read_link(format!("/proc/{init}/ns/user")).map_err(|e| e.to_string())?;
    ensure!(
        host_user != init_user,
        "the init has its own user namespace"
    );

    let out = ctx
        .sk(&[
            "exec",
            &id,
            "sh",
            "-c",
            "echo $(id -u) $(id -g) $(readlink /proc/self/ns/user)",
        ])
        .run()?
        .expect_ok()?;
    let want = format!("0 0 {}", init_user.display());
    ensure!(
        out.stdout.trim() == want,
        "exec sees {:?}, want {want:?}",
        out.stdout
    );
    let pid = ctx.exec_detached(&id, &["sleep", "1000"])?;
    ensure!(
        host_ids(pid, "Uid")? == [UID_BASE; 4],
        "the exec process's Uid line from the host: {:?}",
        host_ids(pid, "Uid")?
    );
    let exec_user =
        std::fs::read_link(format!("/proc/{pid}/ns/user")).map_err(|e| e.to_string())?;
    ensure!(
        exec_user == init_user,
        "exec joined the container's user namespace"
    );
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn bad_mappings_fail_create_by_field(ctx: &Ctx) -> TestResult {
    let map = |c: u32, h: u32, s: u32| json!({"containerID": c, "hostID": h, "size": s});
    let cases = [
        (
            "overlapping ranges",
            json!([map(0, UID_BASE, 10), map(5, 900000, 10)]),
            None,
            "linux.uidMappings[1]",
        ),
        (
            "size 0",
            json!([map(0, UID_BASE, 0)]),
            None,
            "linux.uidMappings[0]",
        ),
        (
            "root unmapped",
            json!([map(1, UID_BASE, 10)]),
            None,
            "root (id 0)",
        ),
        (
            "no gid map",
            json!([map(0, UID_BASE, 10)]),
            Some(json!([])),
            "linux.gidMappings",
        ),
        (
            "341 ranges",
            json!((0..341u32).map(|i| map(i, 1000 + i, 1)).collect::<Vec<_>>()),
            None,
            "at most 340",
        ),
    ];
    for (what, uid, gid, name) in cases {
        let mut b = userns_bundle(ctx, &["true"])?;
        b.config["linux"]["uidMappings"] = uid;
        if let Some(gid) = gid {
            b.config["linux"]["gidMappings"] = gid;
        }
        let id = ctx.id("badmap");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with {what}"))?;
        ensure!(
            out.stderr.contains(name),
            "{what}: the error names {name}: {:?}",
            out.stderr
        );
        ctx.ensure_root_empty(what)?;
    }
    // Mappings with a user namespace joined by path are refused (its maps are its own),
    // not silently dropped.
    let mut b = userns_bundle(ctx, &["true"])?;
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
        {"type": "user", "path": "/proc/self/ns/user"}
    ]);
    let id = ctx.id("userpath");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create joining a user namespace by path with mappings")?;
    ensure!(
        out.stderr.contains("linux.uidMappings/gidMappings")
            && out.stderr.contains("joined by path"),
        "{:?}",
        out.stderr
    );
    Ok(())
}
