//! Mounts as seen from inside (/proc/mounts), a read-only root, destinations resolved inside
//! the root, and nothing left mounted on the host after delete.

use serde_json::json;

use crate::ctx::{read_text, Ctx};
use crate::harness::{Fail, Test, TestResult};
use crate::host;

pub fn tests() -> Vec<Test> {
    vec![
        test!("mounts", default_proc_devpts_and_sysfs_mounts_are_visible),
        test!("mounts", tmpfs_mount_is_mounted_with_its_options),
        test!(
            "mounts",
            missing_mount_point_is_created_and_removed_on_delete
        ),
        test!(
            "mounts",
            bind_mount_of_host_directory_is_readable_and_writable
        ),
        test!("mounts", readonly_bind_mount_rejects_writes),
        test!("mounts", bind_mount_of_a_single_file),
        test!("mounts", readonly_root_rejects_writes),
        test!(
            "mounts",
            mount_destination_symlink_is_resolved_inside_the_root
        ),
        test!("mounts", mount_destination_dotdot_is_clamped_at_the_root),
        test!("mounts", masked_paths_hide_their_contents),
        test!("mounts", readonly_paths_reject_writes),
        test!("mounts", linux_devices_are_created),
        test!("mounts", delete_leaves_no_mount_and_no_process_behind),
    ]
}

/// One line of /proc/mounts: (source, mount point, type, options).
struct MountLine {
    target: String,
    fstype: String,
    options: Vec<String>,
}

fn parse_mounts(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| MountLine {
                target: f[1].replace("\\040", " "),
                fstype: f[2].to_string(),
                options: f[3].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

fn find_mount<'a>(mounts: &'a [MountLine], target: &str) -> Option<&'a MountLine> {
    // The last mount on a path is the one visible.
    mounts.iter().rev().find(|m| m.target == target)
}

fn default_proc_devpts_and_sysfs_mounts_are_visible(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["cat", "/proc/mounts"])?;
    let (text, _) = ctx.run_to_stop("defmounts", &b)?;
    let mounts = parse_mounts(&text);
    for (target, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let m = find_mount(&mounts, target)
            .ok_or_else(|| format!("{target} is not mounted inside: {text:?}"))?;
        ensure_eq!(m.fstype.as_str(), fstype, "type of {target}");
    }
    let sys = find_mount(&mounts, "/sys").ok_or("no /sys")?;
    ensure!(
        sys.options.iter().any(|o| o == "ro"),
        "/sys is not read-only: {:?}",
        sys.options
    );
    Ok(())
}

fn tmpfs_mount_is_mounted_with_its_options(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "cat /proc/mounts; touch /scratch/file && echo write-ok",
    ])?;
    b.add_mount(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1m", "mode=700"]
    }));
    let (text, _) = ctx.run_to_stop("tmpfs", &b)?;
    let mounts = parse_mounts(&text);
    let m = find_mount(&mounts, "/scratch").ok_or("/scratch is not mounted inside")?;
    ensure_eq!(m.fstype.as_str(), "tmpfs", "type of /scratch");
    for opt in ["nosuid", "nodev", "size=1024k", "mode=700"] {
        ensure!(
            m.options.iter().any(|o| o == opt),
            "/scratch lacks option {opt}: {:?}",
            m.options
        );
    }
    ensure!(text.contains("write-ok"), "cannot write to the tmpfs");
    ensure!(
        !b.rootfs.join("scratch/file").exists(),
        "the file written to the tmpfs landed in the root filesystem"
    );
    Ok(())
}

fn missing_mount_point_is_created_and_removed_on_delete(ctx: &Ctx) -> TestResult {
    let dir = host_dir(ctx)?;
    let file = ctx.path("hostfile");
    std::fs::write(&file, "x").map_err(|e| e.to_string())?;
    let mut b = ctx.bundle(&["cat", "/proc/mounts"])?;
    b.add_mount(json!({
        "destination": "/made/by/runtime", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    b.add_mount(json!({
        "destination": "/made/bind/dir", "type": "bind", "source": dir.to_string_lossy(), "options": ["rbind"]
    }));
    b.add_mount(json!({
        "destination": "/made/bind/file", "type": "bind", "source": file.to_string_lossy(), "options": ["bind"]
    }));
    let (text, id) = ctx.run_to_stop("mkpoint", &b)?;
    let mounts = parse_mounts(&text);
    for target in ["/made/by/runtime", "/made/bind/dir", "/made/bind/file"] {
        ensure!(
            find_mount(&mounts, target).is_some(),
            "{target} is not mounted inside: {text:?}"
        );
    }
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    ensure!(
        !b.rootfs.join("made").exists(),
        "the mount points create made are still in the root filesystem after delete"
    );
    ensure!(
        dir.join("in.txt").exists() && file.exists(),
        "delete removed a bind mount's source"
    );
    Ok(())
}

/// A host directory with one file in it, outside the bundle.
fn host_dir(ctx: &Ctx) -> Result<std::path::PathBuf, Fail> {
    let dir = ctx.path("hostdir");
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    std::fs::write(dir.join("in.txt"), "from-the-host\n").map_err(|e| e.to_string())?;
    Ok(dir)
}

fn bind_mount_of_host_directory_is_readable_and_writable(ctx: &Ctx) -> TestResult {
    let dir = host_dir(ctx)?;
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "cat /hostdir/in.txt; echo from-the-container > /hostdir/out.txt",
    ])?;
    b.add_mount(json!({
        "destination": "/hostdir", "type": "bind", "source": dir.to_string_lossy(),
        "options": ["rbind", "rw"]
    }));
    let (text, _) = ctx.run_to_stop("bind", &b)?;
    ensure!(
        text.contains("from-the-host"),
        "the container cannot read the bind mount: {text:?}"
    );
    ensure_eq!(
        read_text(&dir.join("out.txt")).trim(),
        "from-the-container",
        "what the host sees written through the bind mount"
    );
    Ok(())
}

fn readonly_bind_mount_rejects_writes(ctx: &Ctx) -> TestResult {
    let dir = host_dir(ctx)?;
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "cat /ro/in.txt; if touch /ro/new 2>&1; then echo WRITABLE; else echo REFUSED; fi; cat /proc/mounts",
    ])?;
    b.add_mount(json!({
        "destination": "/ro", "type": "bind", "source": dir.to_string_lossy(),
        "options": ["bind", "ro"]
    }));
    let (text, _) = ctx.run_to_stop("robind", &b)?;
    ensure!(
        text.contains("from-the-host"),
        "cannot read the read-only bind mount: {text:?}"
    );
    ensure!(
        text.contains("REFUSED") && !text.contains("WRITABLE"),
        "a write succeeded: {text:?}"
    );
    ensure!(
        !dir.join("new").exists(),
        "the write reached the host directory"
    );
    let mounts = parse_mounts(&text);
    let m = find_mount(&mounts, "/ro").ok_or("/ro is not mounted")?;
    ensure!(
        m.options.iter().any(|o| o == "ro"),
        "/ro is not mounted ro: {:?}",
        m.options
    );
    Ok(())
}

fn bind_mount_of_a_single_file(ctx: &Ctx) -> TestResult {
    let file = ctx.path("hostfile");
    std::fs::write(&file, "single-file-content\n").map_err(|e| e.to_string())?;
    let mut b = ctx.bundle(&["cat", "/etc/bound-file"])?;
    b.add_mount(json!({
        "destination": "/etc/bound-file", "type": "bind", "source": file.to_string_lossy(),
        "options": ["bind", "ro"]
    }));
    let (text, _) = ctx.run_to_stop("filebind", &b)?;
    ensure_eq!(text.trim(), "single-file-content", "the bound file inside");
    Ok(())
}

fn readonly_root_rejects_writes(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "if touch /root-write 2>&1; then echo ROOT-WRITABLE; else echo ROOT-REFUSED; fi; \
         touch /tmp/ok && echo TMP-WRITABLE; cat /proc/mounts",
    ])?;
    b.config["root"]["readonly"] = json!(true);
    b.add_mount(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let (text, _) = ctx.run_to_stop("roroot", &b)?;
    ensure!(
        text.contains("ROOT-REFUSED") && !text.contains("ROOT-WRITABLE"),
        "writing to the read-only root succeeded: {text:?}"
    );
    ensure!(
        !b.rootfs.join("root-write").exists(),
        "the write reached the root filesystem"
    );
    ensure!(
        text.contains("TMP-WRITABLE"),
        "a tmpfs on a read-only root is not writable: {text:?}"
    );
    let mounts = parse_mounts(&text);
    let root = find_mount(&mounts, "/").ok_or("no / in /proc/mounts")?;
    ensure!(
        root.options.iter().any(|o| o == "ro"),
        "/ is not mounted ro: {:?}",
        root.options
    );
    Ok(())
}

fn mount_destination_symlink_is_resolved_inside_the_root(ctx: &Ctx) -> TestResult {
    // rootfs/escape -> <absolute host dir>: the mount must land on <rootfs>/<that path>,
    // never on the host directory itself.
    let outside = ctx.path("outside");
    std::fs::create_dir(&outside).map_err(|e| e.to_string())?;
    std::fs::write(outside.join("host-only"), "x").map_err(|e| e.to_string())?;
    let mut b = ctx.bundle(&["sh", "-c", "cat /proc/mounts; ls /escape/"])?;
    std::os::unix::fs::symlink(&outside, b.rootfs.join("escape")).map_err(|e| e.to_string())?;
    b.add_mount(json!({
        "destination": "/escape", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let id = ctx.id("symlink");
    let out = ctx.create_ok(&id, &b)?;
    let host_mounts = host::mounts_under(&outside).map_err(Fail::Skip)?;
    ensure!(
        host_mounts.is_empty(),
        "the mount escaped the root onto the host: {host_mounts:?}"
    );
    ctx.start_ok(&id)?;
    ctx.wait_status(&id, "stopped")?;
    let text = out.stdout_now();
    let mounts = parse_mounts(&text);
    let inside = outside.to_string_lossy().into_owned();
    ensure!(
        find_mount(&mounts, &inside).is_some_and(|m| m.fstype == "tmpfs"),
        "no tmpfs at the re-rooted destination {inside} inside: {text:?}"
    );
    ensure!(
        !text.contains("host-only"),
        "the container sees the host directory through the symlink"
    );
    ensure!(
        outside.join("host-only").exists()
            && std::fs::read_dir(&outside).map(|d| d.count()).unwrap_or(0) == 1,
        "the host directory behind the symlink was changed"
    );
    Ok(())
}

fn mount_destination_dotdot_is_clamped_at_the_root(ctx: &Ctx) -> TestResult {
    let name = format!("stockade-spec-clamped-{}", std::process::id());
    let dest = format!("/../../../../../{name}");
    let mut b = ctx.bundle(&["cat", "/proc/mounts"])?;
    b.add_mount(json!({
        "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let result = ctx.run_to_stop("dotdot", &b);
    let host_path = std::path::Path::new("/").join(&name);
    let escaped = host_path.exists();
    if escaped {
        let _ = std::fs::remove_dir(&host_path);
    }
    ensure!(
        !escaped,
        "`..` in a destination created {} on the host",
        host_path.display()
    );
    let (text, _) = result?;
    let mounts = parse_mounts(&text);
    ensure!(
        find_mount(&mounts, &format!("/{name}")).is_some_and(|m| m.fstype == "tmpfs"),
        "no tmpfs at /{name} inside: {text:?}"
    );
    Ok(())
}

fn masked_paths_hide_their_contents(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "echo \"file=[$(cat /etc/secret-file)]\"; echo \"dir=[$(ls /secret-dir)]\"",
    ])?;
    std::fs::write(b.rootfs.join("etc/secret-file"), "SECRET-FILE").map_err(|e| e.to_string())?;
    std::fs::create_dir(b.rootfs.join("secret-dir")).map_err(|e| e.to_string())?;
    std::fs::write(b.rootfs.join("secret-dir/inside"), "x").map_err(|e| e.to_string())?;
    b.config["linux"]["maskedPaths"] =
        json!(["/etc/secret-file", "/secret-dir", "/does/not/exist"]);
    let (text, _) = ctx.run_to_stop("masked", &b)?;
    ensure!(
        text.contains("file=[]"),
        "the masked file is readable: {text:?}"
    );
    ensure!(
        text.contains("dir=[]"),
        "the masked directory is listable: {text:?}"
    );
    Ok(())
}

fn readonly_paths_reject_writes(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "cat /ro-path/in; if touch /ro-path/new 2>&1; then echo WRITABLE; else echo REFUSED; fi; \
         touch /rw-path/new && echo RW-OK",
    ])?;
    std::fs::create_dir(b.rootfs.join("ro-path")).map_err(|e| e.to_string())?;
    std::fs::write(b.rootfs.join("ro-path/in"), "readable\n").map_err(|e| e.to_string())?;
    std::fs::create_dir(b.rootfs.join("rw-path")).map_err(|e| e.to_string())?;
    b.config["linux"]["readonlyPaths"] = json!(["/ro-path"]);
    let (text, _) = ctx.run_to_stop("ropaths", &b)?;
    ensure!(
        text.contains("readable"),
        "the read-only path is not readable: {text:?}"
    );
    ensure!(
        text.contains("REFUSED") && !text.contains("WRITABLE"),
        "wrote to a read-only path: {text:?}"
    );
    ensure!(
        !b.rootfs.join("ro-path/new").exists(),
        "the write reached the root filesystem"
    );
    ensure!(
        text.contains("RW-OK"),
        "a path not listed became read-only too: {text:?}"
    );
    Ok(())
}

fn linux_devices_are_created(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "ls -ln /dev/spec-null; echo data > /dev/spec-null && echo WRITE-OK; \
         echo \"read=[$(cat /dev/spec-null)]\"",
    ])?;
    b.config["linux"]["devices"] = json!([{
        "path": "/dev/spec-null", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o666, "uid": 0, "gid": 0
    }]);
    let (text, _) = ctx.run_to_stop("devices", &b)?;
    let ls = text.lines().next().unwrap_or_default();
    ensure!(
        ls.starts_with("crw-rw-rw-"),
        "/dev/spec-null is not a 0666 char device: {ls:?}"
    );
    ensure!(
        ls.contains("1,") && ls.contains(" 3 "),
        "/dev/spec-null is not 1:3: {ls:?}"
    );
    ensure!(
        text.contains("WRITE-OK") && text.contains("read=[]"),
        "the device does not act as null: {text:?}"
    );
    Ok(())
}

fn delete_leaves_no_mount_and_no_process_behind(ctx: &Ctx) -> TestResult {
    let dir = host_dir(ctx)?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.add_mount(json!({
        "destination": "/hostdir", "type": "bind", "source": dir.to_string_lossy(), "options": ["rbind"]
    }));
    b.add_mount(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let id = ctx.id("nomounts");
    ctx.create_start(&id, &b)?;
    let init = host::proc_id(ctx.pid(&id)?).ok_or("state.pid is not a live process")?;
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    ctx.ensure_root_empty("after delete")?;
    let mounts = host::mounts_under(&ctx.dir).map_err(Fail::Skip)?;
    ensure!(mounts.is_empty(), "mounts left on the host: {mounts:?}");
    ctx.wait_until("the init to be gone", || !host::alive(init))?;
    let procs = host::processes_using(&b.dir);
    ensure!(procs.is_empty(), "processes left in the bundle: {procs:?}");
    Ok(())
}
