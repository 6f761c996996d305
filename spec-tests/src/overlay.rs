//! The overlay storage driver (issue 17): on a Linux host whose kernel mounts overlays on
//! the storage root, `run --image` uses it by default, a second container of the same
//! image makes no copy of it (no new layer, an empty upper directory, its own directory the
//! only new one), and `delete` unmounts and removes the container's directory alone.

use std::fs;
use std::path::Path;

use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::images::{entries, store_with_image};

pub fn tests() -> Vec<Test> {
    vec![test!(
        "overlay",
        run_image_uses_overlay_and_a_second_container_copies_nothing
    )]
}

/// Every inode under `dir` (not following symlinks, not crossing into mounts).
fn inodes(dir: &Path, dev: u64, out: &mut u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(md) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        *out += 1;
        if md.is_dir() && md.dev() == dev {
            inodes(&e.path(), dev, out);
        }
    }
}

fn count(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::symlink_metadata(dir).map(|m| m.dev()).unwrap_or(0);
    let mut n = 0;
    inodes(dir, dev, &mut n);
    n
}

/// The file system type mounted at `path`, from /proc/self/mountinfo.
fn fstype_at(path: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.display().to_string();
    info.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4) == Some(&want.as_str())).then(|| f.get(sep + 1).map(|s| s.to_string()))?
    })
}

fn run_image_uses_overlay_and_a_second_container_copies_nothing(ctx: &Ctx) -> TestResult {
    if !cfg!(target_os = "linux") {
        return Err(Fail::Skip("overlay is Linux-only".into()));
    }
    let store = store_with_image(ctx, "localhost/spec/ovl:1", "ovl")?;
    let store_s = store.display().to_string();
    let storage = ctx.path("storage");
    let storage_s = storage.display().to_string();
    let run = |id: &str| {
        ctx.track(id);
        ctx.sk(&[
            "run",
            "--image",
            "localhost/spec/ovl:1",
            "--image-root",
            &store_s,
            "--storage-root",
            &storage_s,
            // The host's network: a network of its own mounts /etc/hosts and resolv.conf,
            // whose mount points are written into the upper directory of an image without them.
            "--network",
            "host",
            "-d",
            "--name",
            id,
            "--",
            "sleep",
            "30",
        ])
        .run()
    };
    let first = ctx.id("ovl");
    run(&first)?.expect_ok()?;
    // The default choice probes the kernel once and records the answer; only a recorded
    // "unsupported" excuses a host from the rest.
    let probe = fs::read_to_string(storage.join("overlay-probe.json"))
        .map_err(|e| format!("run --image recorded no overlay probe: {e}"))?;
    if !probe.contains("\"unsupported\":null") {
        return Err(Fail::Skip(format!(
            "the kernel does not mount overlays on {storage_s}: {probe}"
        )));
    }
    let containers = storage.join("overlay/containers");
    let merged = containers.join(&first).join("merged");
    ensure!(
        fstype_at(&merged).as_deref() == Some("overlay"),
        "{} is not an overlay mount: {:?}",
        merged.display(),
        fstype_at(&merged)
    );
    let layers = storage.join("overlay/layers");
    let layer_names = entries(&layers);
    let layer_inodes = count(&layers);
    let before = count(&storage) - count(&containers);
    let second = ctx.id("ovl");
    run(&second)?.expect_ok()?;
    ensure!(
        entries(&layers) == layer_names && count(&layers) == layer_inodes,
        "the second container unpacked layers: {:?} -> {:?}",
        layer_names,
        entries(&layers)
    );
    let upper = containers.join(&second).join("upper");
    ensure!(
        entries(&upper).is_empty(),
        "the second container's upper directory holds {:?}",
        entries(&upper)
    );
    let mut both = entries(&containers);
    both.sort();
    let mut want = vec![first.clone(), second.clone()];
    want.sort();
    ensure!(both == want, "containers are {both:?}, want {want:?}");
    // Outside the containers' directories only a bundle and a record were added, and the
    // bundle's service directory of `-d` (itself, config, state, lock, log, pid file).
    let after = count(&storage) - count(&containers);
    ensure!(
        after <= before + 4 + 6,
        "the second container added {} inodes outside its own directory",
        after - before
    );
    for id in [&first, &second] {
        ctx.sk(&["delete", "--force", "--storage-root", &storage_s, id])
            .run()?
            .expect_ok()?;
    }
    ensure!(
        entries(&containers).is_empty(),
        "delete left {:?}",
        entries(&containers)
    );
    ensure!(
        fstype_at(&merged).is_none(),
        "delete left the overlay mounted on {}",
        merged.display()
    );
    ensure!(
        entries(&layers) == layer_names,
        "delete removed layers (prune's job): {:?}",
        entries(&layers)
    );
    Ok(())
}
