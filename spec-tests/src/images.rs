//! Containers from images (issue 11): `delete` removes all of a `run --image` container,
//! `--rm` with `-d` is refused rather than ignored, and the prune of one image store keeps
//! the layer chains of another store that shares the storage root; on Linux, a container
//! from an image is confined as Podman confines it (issue 10).

use std::fs;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::rootfs;

pub fn tests() -> Vec<Test> {
    vec![
        test!("images", run_image_rm_with_detach_is_removed_by_its_monitor),
        test!("images", delete_removes_all_of_a_run_image_container),
        test!("images", prune_of_one_store_keeps_the_chains_of_another),
        test!(
            "images",
            run_image_on_linux_gets_podmans_capabilities_and_a_read_only_proc_sys
        ),
    ]
}

/// An image store at a fresh path holding `name`: the busybox root filesystem plus a
/// file `marker` (so that two such images have different layers).
pub(crate) fn store_with_image(ctx: &Ctx, name: &str, marker: &str) -> Result<PathBuf, Fail> {
    ctx.require_containers()?;
    let rootfs = ctx.path("image-rootfs");
    rootfs::build(&rootfs, &ctx.env.busybox, &ctx.env.applets).map_err(Fail::Fail)?;
    fs::write(rootfs.join(marker), marker).map_err(|e| format!("writing the marker: {e}"))?;
    // In process: the harness reaps children on a thread of its own, so a `tar` child's
    // status could be taken from under std::process.
    let tar = ctx.path("rootfs.tar");
    let file = fs::File::create(&tar).map_err(|e| format!("creating {}: {e}", tar.display()))?;
    let mut b = tar::Builder::new(file);
    b.follow_symlinks(false);
    b.append_dir_all(".", &rootfs)
        .and_then(|()| b.finish())
        .map_err(|e| format!("writing {}: {e}", tar.display()))?;
    let store = ctx.path("images");
    let store_s = store.display().to_string();
    let tar_s = tar.display().to_string();
    ctx.sk(&[
        "image",
        "--image-root",
        &store_s,
        "import",
        "--format",
        "rootfs",
        "--os",
        std::env::consts::OS,
        "--tag",
        name,
        &tar_s,
    ])
    .run()?
    .expect_ok()?;
    Ok(store)
}

/// A directory of a storage root: container root filesystems are under `overlay/` when
/// the default driver is overlay (Linux, where the kernel supports it), else at the top.
fn part_dir(storage: &Path, part: &str) -> PathBuf {
    let overlay = storage.join("overlay");
    if part == "containers" && overlay.is_dir() {
        overlay.join(part)
    } else {
        storage.join(part)
    }
}

/// The root filesystem `id` of a storage root, whichever of dir and overlay made it.
pub(crate) fn rootfs_dir(storage: &Path, id: &str) -> PathBuf {
    let overlay = storage.join("overlay/containers").join(id);
    if overlay.is_dir() {
        overlay.join("merged")
    } else {
        storage.join("containers").join(id)
    }
}

pub(crate) fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn run_image_rm_with_detach_is_removed_by_its_monitor(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/img:1", "a")?;
    let storage = ctx.path("storage");
    let id = ctx.id("rmd");
    ctx.track(&id);
    let out = ctx
        .sk(&[
            "run",
            "--image",
            "localhost/spec/img:1",
            "--image-root",
            &store.display().to_string(),
            "--storage-root",
            &storage.display().to_string(),
            "--rm",
            "-d",
            "--name",
            &id,
            "--",
            "true",
        ])
        .run()?
        .expect_ok()?;
    ensure!(
        out.stdout.trim() == id,
        "-d printed {:?}, not the name",
        out.stdout
    );
    // The monitor removes everything once the container exited: waited for as a
    // condition (bounded), not timed.
    let gone = || {
        entries(&storage.join("bundles")).is_empty()
            && entries(&part_dir(&storage, "containers")).is_empty()
            && entries(&storage.join("provisions")).is_empty()
            && !ctx.root_entries().contains(&id)
    };
    for _ in 0..200 {
        if gone() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(Fail::Fail(format!(
        "the monitor of a --rm -d container left: bundles {:?}, root filesystems {:?}, records {:?}, state {:?}",
        entries(&storage.join("bundles")),
        entries(&part_dir(&storage, "containers")),
        entries(&storage.join("provisions")),
        ctx.root_entries()
    )))
}

fn delete_removes_all_of_a_run_image_container(ctx: &Ctx) -> TestResult {
    let store = store_with_image(ctx, "localhost/spec/img:1", "a")?;
    let store_s = store.display().to_string();
    let storage = ctx.path("storage");
    let storage_s = storage.display().to_string();
    let id = ctx.id("runimg");
    ctx.track(&id);
    let run = |ctx: &Ctx| {
        ctx.sk(&[
            "run",
            "--image",
            "localhost/spec/img:1",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage_s,
            "-d",
            "--name",
            &id,
            "--",
            "sleep",
            "30",
        ])
        .run()
    };
    run(ctx)?.expect_ok()?;
    for part in ["bundles", "containers"] {
        ensure!(
            part_dir(&storage, part).join(&id).exists(),
            "run --image -d made no {part}/{id}"
        );
    }
    ensure!(
        ctx.status(&id)? == "running",
        "the container is not running"
    );
    // A second run under the same name is refused while the first exists.
    run(ctx)?.expect_failure("run --image with a name in use")?;
    ctx.sk(&["delete", "--force", "--storage-root", &storage_s, &id])
        .run()?
        .expect_ok()?;
    for part in ["bundles", "containers", "provisions"] {
        ensure!(
            entries(&part_dir(&storage, part)).is_empty(),
            "delete --force left {part}: {:?}",
            entries(&part_dir(&storage, part))
        );
    }
    ensure!(
        !ctx.root_entries().contains(&id),
        "delete --force left container state"
    );
    // The name is free again.
    run(ctx)?.expect_ok()?;
    ctx.sk(&["delete", "--force", "--storage-root", &storage_s, &id])
        .run()?
        .expect_ok()?;
    ensure!(
        entries(&storage.join("bundles")).is_empty(),
        "the second delete left a bundle"
    );
    Ok(())
}

fn prune_of_one_store_keeps_the_chains_of_another(ctx: &Ctx) -> TestResult {
    let a = store_with_image(ctx, "localhost/spec/a:1", "only-in-a")?;
    let b = store_with_image(ctx, "localhost/spec/b:1", "only-in-b")?;
    let storage = ctx.path("storage");
    let storage_s = storage.display().to_string();
    let chain = |store: &Path, image: &str| -> Result<String, Fail> {
        let out = ctx
            .sk(&[
                "bundle",
                "--image-root",
                &store.display().to_string(),
                "--storage-root",
                &storage_s,
                "--storage-driver",
                "dir",
                "prepare",
                "--image",
                image,
            ])
            .run()?
            .expect_ok()?;
        Ok(out.stdout.trim().trim_start_matches("sha256:").to_string())
    };
    let ca = chain(&a, "localhost/spec/a:1")?;
    let cb = chain(&b, "localhost/spec/b:1")?;
    ensure!(ca != cb, "the two images share their chain");
    for (store, cmd) in [(&a, "bundle"), (&b, "image")] {
        let store_s = store.display().to_string();
        let out = if cmd == "bundle" {
            ctx.sk(&[
                "bundle",
                "--image-root",
                &store_s,
                "--storage-root",
                &storage_s,
                "--storage-driver",
                "dir",
                "prune",
            ])
        } else {
            ctx.sk(&[
                "image",
                "--image-root",
                &store_s,
                "prune",
                "--storage-root",
                &storage_s,
                "--storage-driver",
                "dir",
            ])
        };
        out.run()?.expect_ok()?;
        let chains = entries(&storage.join("chains"));
        ensure!(
            chains.contains(&ca) && chains.contains(&cb),
            "{cmd} prune of {store_s} removed a chain the other store needs: {chains:?}"
        );
    }
    // Without b's image, a's prune takes b's chain and keeps its own.
    ctx.sk(&[
        "image",
        "--image-root",
        &b.display().to_string(),
        "rm",
        "localhost/spec/b:1",
    ])
    .run()?
    .expect_ok()?;
    ctx.sk(&[
        "bundle",
        "--image-root",
        &a.display().to_string(),
        "--storage-root",
        &storage_s,
        "--storage-driver",
        "dir",
        "prune",
    ])
    .run()?
    .expect_ok()?;
    let chains = entries(&storage.join("chains"));
    ensure!(
        chains == vec![ca.clone()],
        "after b's image went, the chains are {chains:?}, want only {ca}"
    );
    Ok(())
}

/// CapEff of Podman's default capability set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
/// SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, SETFCAP).
const PODMAN_DEFAULT_CAPEFF: &str = "00000000800405fb";

fn run_image_on_linux_gets_podmans_capabilities_and_a_read_only_proc_sys(ctx: &Ctx) -> TestResult {
    if std::env::consts::OS != "linux" {
        return Err(Fail::Skip(
            "the image defaults are the Linux backend's; FreeBSD has no capabilities".into(),
        ));
    }
    let store = store_with_image(ctx, "localhost/spec/img:1", "a")?;
    let storage = ctx.path("storage");
    let id = ctx.id("confined");
    ctx.track(&id);
    // Opening for append writes nothing: it only asks whether the file is writable.
    let script = "grep -E '^Cap(Eff|Bnd)' /proc/self/status; \
        if ( : >> /proc/sys/kernel/core_pattern ) 2>/dev/null; then echo sys-writable; \
        else echo sys-read-only; fi; chown 1:1 /tmp && echo chown-ok";
    let out = ctx
        .sk(&[
            "run",
            "--image",
            "localhost/spec/img:1",
            "--image-root",
            &store.display().to_string(),
            "--storage-root",
            &storage.display().to_string(),
            "--rm",
            "--name",
            &id,
            "--",
            "sh",
            "-c",
            script,
        ])
        .run()?
        .expect_ok()?;
    for want in [
        format!("CapEff:\t{PODMAN_DEFAULT_CAPEFF}"),
        format!("CapBnd:\t{PODMAN_DEFAULT_CAPEFF}"),
        "sys-read-only".to_string(),
        "chown-ok".to_string(),
    ] {
        ensure!(
            out.stdout.lines().any(|l| l == want),
            "expected a line {want:?} from the container; it printed:\n{}",
            out.stdout
        );
    }
    Ok(())
}
