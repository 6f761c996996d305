//! A hostile container against `delete` (issue 11): mount points that create made are
//! renamed and replaced by symlinks to host paths, by a host-side bind mount, or reached
//! through a parent replaced by a symlink; `delete --force` must leave every host path as
//! it was and say what it left. And hostile values in config.json: hook timeouts that are
//! not positive, 10 MB strings, NUL and right-to-left-override characters.
//!
//! The replacing is done from the host on the container's root filesystem while the
//! container exists: a process inside with the same rights makes the same changes to the
//! same directory (its own mounts die with its mount namespace, so what delete sees on the
//! host is exactly this).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "hostile",
            directory_mount_points_replaced_by_symlinks_to_host_dirs_are_left
        ),
        test!(
            "hostile",
            file_mount_points_replaced_by_symlinks_to_host_files_are_left
        ),
        test!(
            "hostile",
            a_parent_replaced_by_a_symlink_is_not_followed_by_delete
        ),
        test!(
            "hostile",
            a_mount_point_covered_by_a_bind_mount_is_left_mounted_and_full
        ),
        test!("hostile", untouched_mount_points_are_removed_by_delete),
        test!(
            "hostile",
            hook_timeouts_that_are_not_positive_are_refused_with_their_path
        ),
        test!(
            "hostile",
            ten_megabyte_values_give_errors_under_one_kilobyte
        ),
        test!("hostile", nul_and_bidi_characters_in_errors_are_escaped),
    ]
}

fn io<'a>(what: &str, p: &'a Path) -> impl FnOnce(std::io::Error) -> Fail + 'a {
    let what = what.to_string();
    move |e| Fail::Fail(format!("{what} {}: {e}", p.display()))
}

/// A host directory holding a file that must survive, and an empty one.
struct HostPaths {
    full_dir: PathBuf,
    empty_dir: PathBuf,
    full_file: PathBuf,
    empty_file: PathBuf,
}

fn host_paths(ctx: &Ctx) -> Result<HostPaths, Fail> {
    let base = ctx.path("host");
    let h = HostPaths {
        full_dir: base.join("full"),
        empty_dir: base.join("empty"),
        full_file: base.join("precious.txt"),
        empty_file: base.join("empty.txt"),
    };
    std::fs::create_dir_all(&h.full_dir).map_err(io("mkdir", &h.full_dir))?;
    std::fs::create_dir_all(&h.empty_dir).map_err(io("mkdir", &h.empty_dir))?;
    std::fs::write(h.full_dir.join("keep"), b"keep").map_err(io("write", &h.full_dir))?;
    std::fs::write(&h.full_file, b"precious").map_err(io("write", &h.full_file))?;
    std::fs::write(&h.empty_file, b"").map_err(io("write", &h.empty_file))?;
    Ok(h)
}

fn intact(h: &HostPaths) -> Result<(), Fail> {
    ensure!(
        std::fs::read(h.full_dir.join("keep")).ok().as_deref() == Some(&b"keep"[..]),
        "the host directory {} lost its file",
        h.full_dir.display()
    );
    ensure!(
        h.empty_dir.is_dir(),
        "the empty host directory {} was removed",
        h.empty_dir.display()
    );
    ensure!(
        std::fs::read(&h.full_file).ok().as_deref() == Some(&b"precious"[..]),
        "the host file {} was removed or changed",
        h.full_file.display()
    );
    ensure!(
        h.empty_file.is_file(),
        "the empty host file {} was removed",
        h.empty_file.display()
    );
    Ok(())
}

/// Renames `at` away and puts a symlink to `to` in its place.
fn plant(at: &Path, to: &Path) -> Result<(), Fail> {
    let old = at.with_extension("moved-away");
    std::fs::rename(at, &old).map_err(io("renaming", at))?;
    symlink(to, at).map_err(io("symlinking", at))?;
    Ok(())
}

/// A created container (sleeping) with `b`'s mounts; returns its id.
fn created(ctx: &Ctx, b: &Bundle) -> Result<String, Fail> {
    let id = ctx.id("hostile");
    ctx.create_ok(&id, b)?;
    Ok(id)
}

fn delete_force(ctx: &Ctx, id: &str) -> Result<String, Fail> {
    let out = ctx.sk(&["delete", "--force", id]).run()?.expect_ok()?;
    ensure!(
        !ctx.root.join(id).exists(),
        "state of {id} left after delete --force"
    );
    Ok(out.stderr)
}

fn directory_mount_points_replaced_by_symlinks_to_host_dirs_are_left(ctx: &Ctx) -> TestResult {
    let h = host_paths(ctx)?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.add_mount(json!({"destination": "/hostile/full", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({"destination": "/hostile/empty", "type": "tmpfs", "source": "tmpfs"}));
    let id = created(ctx, &b)?;
    plant(&b.rootfs.join("hostile/full"), &h.full_dir)?;
    plant(&b.rootfs.join("hostile/empty"), &h.empty_dir)?;
    let log = delete_force(ctx, &id)?;
    intact(&h)?;
    ensure!(
        log.contains("hostile/full") && log.contains("no longer"),
        "delete did not say what it left: {log:?}"
    );
    Ok(())
}

fn file_mount_points_replaced_by_symlinks_to_host_files_are_left(ctx: &Ctx) -> TestResult {
    let h = host_paths(ctx)?;
    let src = ctx.path("bind-source");
    std::fs::write(&src, b"source").map_err(io("write", &src))?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    for dest in ["/etc/hostile-full", "/etc/hostile-empty"] {
        b.add_mount(json!({"destination": dest, "type": "bind",
            "source": src.to_string_lossy(), "options": ["bind", "ro"]}));
    }
    let id = created(ctx, &b)?;
    plant(&b.rootfs.join("etc/hostile-full"), &h.full_file)?;
    plant(&b.rootfs.join("etc/hostile-empty"), &h.empty_file)?;
    let log = delete_force(ctx, &id)?;
    intact(&h)?;
    ensure!(
        std::fs::read(&src).ok().as_deref() == Some(&b"source"[..]),
        "the bind source was changed"
    );
    ensure!(
        log.contains("hostile-full"),
        "delete did not say what it left: {log:?}"
    );
    Ok(())
}

fn a_parent_replaced_by_a_symlink_is_not_followed_by_delete(ctx: &Ctx) -> TestResult {
    let h = host_paths(ctx)?;
    // The host directory mirrors what create made below the parent: an empty p/q.
    let mirror = h.empty_dir.join("p/q");
    std::fs::create_dir_all(&mirror).map_err(io("mkdir", &mirror))?;
    // And a file mount point below a parent that becomes a link to a host directory
    // holding a non-empty file of the same name.
    let host_file = h.full_dir.join("f");
    std::fs::write(&host_file, b"precious").map_err(io("write", &host_file))?;
    let src = ctx.path("bind-source");
    std::fs::write(&src, b"source").map_err(io("write", &src))?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.add_mount(json!({"destination": "/hostile/p/q", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({"destination": "/hostile2/f", "type": "bind",
        "source": src.to_string_lossy(), "options": ["bind"]}));
    let id = created(ctx, &b)?;
    plant(&b.rootfs.join("hostile"), &h.empty_dir)?;
    plant(&b.rootfs.join("hostile2"), &h.full_dir)?;
    let log = delete_force(ctx, &id)?;
    ensure!(
        std::fs::read(&host_file).ok().as_deref() == Some(&b"precious"[..]),
        "delete followed a planted parent link and unlinked the host file {}",
        host_file.display()
    );
    ensure!(
        mirror.is_dir(),
        "delete followed a planted parent link and removed {}",
        mirror.display()
    );
    ensure!(
        h.empty_dir.join("p").is_dir(),
        "delete removed the host's {}/p",
        h.empty_dir.display()
    );
    ensure!(
        log.contains("replaced"),
        "delete did not say what it left: {log:?}"
    );
    Ok(())
}

#[cfg(target_os = "linux")]
fn a_mount_point_covered_by_a_bind_mount_is_left_mounted_and_full(ctx: &Ctx) -> TestResult {
    let h = host_paths(ctx)?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.add_mount(json!({"destination": "/hostile/m", "type": "tmpfs", "source": "tmpfs"}));
    let id = created(ctx, &b)?;
    let target = b.rootfs.join("hostile/m");
    bind_mount(&h.full_dir, &target)?;
    let log = delete_force(ctx, &id);
    let still = crate::host::mounts_under(&target).unwrap_or_default();
    unmount(&target);
    let log = log?;
    intact(&h)?;
    ensure!(
        !still.is_empty(),
        "delete unmounted a mount it did not make"
    );
    ensure!(
        log.contains("hostile/m"),
        "delete did not say what it left: {log:?}"
    );
    Ok(())
}

/// mount(2) with MS_BIND, as a process with the right would (not mount(8): the harness
/// reaps every child itself).
#[cfg(target_os = "linux")]
fn bind_mount(source: &Path, target: &Path) -> Result<(), Fail> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| Fail::Fail(e.to_string()))
    };
    let (src, dst) = (c(source)?, c(target)?);
    // SAFETY: both pointers are to NUL-terminated strings that outlive the call; the other
    // arguments are null or plain flags.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(Fail::Skip(format!(
            "bind mount onto {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn unmount(target: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(dst) = std::ffi::CString::new(target.as_os_str().as_bytes()) {
        // SAFETY: a NUL-terminated path that outlives the call.
        unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    }
}

#[cfg(not(target_os = "linux"))]
fn a_mount_point_covered_by_a_bind_mount_is_left_mounted_and_full(_ctx: &Ctx) -> TestResult {
    Err(Fail::Skip("Linux only (mount --bind)".into()))
}

fn untouched_mount_points_are_removed_by_delete(ctx: &Ctx) -> TestResult {
    let src = ctx.path("bind-source");
    std::fs::write(&src, b"source").map_err(io("write", &src))?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.add_mount(json!({"destination": "/made/a/b", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({"destination": "/etc/made-file", "type": "bind",
        "source": src.to_string_lossy(), "options": ["bind"]}));
    let id = created(ctx, &b)?;
    ensure!(
        b.rootfs.join("made/a/b").is_dir(),
        "create made no /made/a/b on the root filesystem"
    );
    let log = delete_force(ctx, &id)?;
    ensure!(
        !b.rootfs.join("made").exists(),
        "delete left /made: {log:?}"
    );
    ensure!(
        !b.rootfs.join("etc/made-file").exists(),
        "delete left /etc/made-file: {log:?}"
    );
    Ok(())
}

fn hook_timeouts_that_are_not_positive_are_refused_with_their_path(ctx: &Ctx) -> TestResult {
    for t in [-1, 0] {
        let mut b = ctx.bundle(&["true"])?;
        b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/true"},
            {"path": "/bin/sleep", "args": ["sleep", "1000"], "timeout": t}]});
        let id = ctx.id("timeout");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with a hook timeout of {t}"))?;
        out.expect_stderr_contains("hooks.createRuntime[1].timeout")?;
        ensure!(
            !ctx.root.join(&id).exists(),
            "a refused create left its state"
        );
    }
    Ok(())
}

/// Puts a hostile value into a bundle's config.
type SetField<'a> = Box<dyn Fn(&mut Bundle) + 'a>;

/// A 10 MB value in each of several fields: each error is under 1 KiB and names the field.
fn ten_megabyte_values_give_errors_under_one_kilobyte(ctx: &Ctx) -> TestResult {
    let big = "x".repeat(10 << 20);
    let cases: Vec<(&str, SetField)> = vec![
        (
            "process.cwd",
            Box::new(|b: &mut Bundle| b.config["process"]["cwd"] = json!(big.clone())),
        ),
        (
            "mounts[",
            Box::new(|b: &mut Bundle| {
                b.add_mount(json!({"destination": big.clone(), "type": "tmpfs", "source": "tmpfs"}))
            }),
        ),
        (
            "process.args[1]",
            Box::new(|b: &mut Bundle| {
                b.config["process"]["args"] = json!(["true", format!("{big}\u{0}")])
            }),
        ),
        (
            "hooks.prestart[0].path",
            Box::new(|b: &mut Bundle| {
                b.config["hooks"] = json!({"prestart": [{"path": big.clone()}]})
            }),
        ),
    ];
    let mut sizes = Vec::new();
    for (field, set) in cases {
        let mut b = ctx.bundle(&["true"])?;
        set(&mut b);
        let id = ctx.id("big");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with a 10 MB {field}"))?;
        ensure!(
            out.stderr.len() < 1024,
            "{field}: a 10 MB value gave a {}-byte error: {:?}",
            out.stderr.len(),
            out.stderr.chars().take(300).collect::<String>()
        );
        ensure!(
            out.stderr.contains(field),
            "{field}: the error does not name it: {:?}",
            out.stderr
        );
        sizes.push(format!("{field} {} bytes", out.stderr.len()));
    }
    println!(
        "# hostile: error sizes for 10 MB values: {}",
        sizes.join(", ")
    );
    Ok(())
}

fn nul_and_bidi_characters_in_errors_are_escaped(ctx: &Ctx) -> TestResult {
    let cases = [
        (
            "process.args[1]",
            json!({"args": ["true", "a\u{0}\u{202e}b"]}),
        ),
        ("process.cwd", json!({"cwd": "\u{202e}relative\u{1b}[31m"})),
    ];
    for (field, process) in cases {
        let mut b = ctx.bundle(&["true"])?;
        for (k, v) in process.as_object().into_iter().flatten() {
            b.config["process"][k] = v.clone();
        }
        let id = ctx.id("esc");
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with a hostile {field}"))?;
        out.expect_stderr_contains(field)?;
        for bad in ['\u{0}', '\u{202e}', '\u{1b}'] {
            ensure!(
                !out.stderr.contains(bad),
                "{field}: the error prints {bad:?} raw: {:?}",
                out.stderr
            );
        }
        ensure!(
            out.stderr.contains("202e"),
            "{field}: the error does not show the escaped character: {:?}",
            out.stderr
        );
    }
    let mut b = ctx.bundle(&["true"])?;
    b.add_mount(json!({"destination": "\u{202e}rel", "type": "tmpfs", "source": "tmpfs"}));
    let out = ctx.create(&ctx.id("esc"), &b)?;
    out.expect_failure("create with a hostile mount destination")?;
    ensure!(
        !out.stderr.contains('\u{202e}') && out.stderr.contains("mounts[6].destination"),
        "mount destination not escaped or not named: {:?}",
        out.stderr
    );
    Ok(())
}
