//! Mounting and unmounting a container's overlay, and the probe that tells whether the
//! kernel can put one on the storage file system.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MntFlags;
use nix::sys::stat::Mode;

use super::sys;

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Gives the directory `dir` to the overlay context as option `key`: by descriptor where
/// the kernel takes one (6.13), else by path (`lowerdir+` needs 6.8).
fn set_dir(fs: &OwnedFd, key: &str, dir: &Path) -> io::Result<()> {
    let fd = open_dir(dir)?;
    match sys::set_fd(fs.as_fd(), key, fd.as_fd()) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let s = dir
                .to_str()
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            sys::set_string(fs.as_fd(), key, s)
        }
        r => r,
    }
}

/// Mounts an overlay on `target`: `lowers` topmost first, then `upper` and `work`.
pub(super) fn mount(lowers: &[&Path], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    let fs = sys::fsopen("overlay")?;
    // Shown as the mount's source in /proc/mounts, so the mount says whose it is.
    sys::set_string(fs.as_fd(), "source", "stockade")?;
    for l in lowers {
        set_dir(&fs, "lowerdir+", l)?;
    }
    set_dir(&fs, "upperdir", upper)?;
    set_dir(&fs, "workdir", work)?;
    sys::create(fs.as_fd())?;
    let mnt = sys::fsmount(fs.as_fd())?;
    let t = open_dir(target)?;
    sys::move_mount(mnt.as_fd(), t.as_fd())
}

/// Whether something is mounted on `dir` (its device differs from its parent's).
pub(super) fn is_mounted(dir: &Path, parent: &Path) -> io::Result<bool> {
    let d = fs::symlink_metadata(dir)?;
    let p = fs::symlink_metadata(parent)?;
    Ok(d.dev() != p.dev())
}

/// Detaches the mount on `dir` (lazily: a container's own mount namespace may still hold
/// it); nothing mounted is not an error.
pub(super) fn unmount(dir: &Path, parent: &Path) -> io::Result<()> {
    // Stacked mounts (a repeated mount after a crash) go one by one.
    for _ in 0..16 {
        match is_mounted(dir, parent) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        nix::mount::umount2(dir, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)?;
    }
    Err(io::Error::other("still mounted after 16 unmounts"))
}

/// Tries an overlay with a whiteout and an opaque directory in `scratch` (created, then
/// removed): `Ok(())` when the kernel and the file system take all of it, else why not.
pub(super) fn probe(scratch: &Path) -> Result<(), String> {
    clear(scratch);
    let r = try_probe(scratch);
    clear(scratch);
    r
}

/// Unmounts and removes a probe's scratch directory.
fn clear(scratch: &Path) {
    let _ = unmount(&scratch.join("merged"), scratch);
    let _ = crate::rootfs::remove::remove_tree(scratch);
}

fn try_probe(scratch: &Path) -> Result<(), String> {
    use xattr::FileExt;
    let step = |what: &'static str| move |e: io::Error| format!("{what}: {e}");
    // l0 is the lower layer, l1 one above it that whites out l0's `gone` and makes `d`
    // opaque (hiding l0's `d/kept`).
    for d in ["l0", "l0/d", "l1", "l1/d", "upper", "work", "merged"] {
        fs::create_dir_all(scratch.join(d)).map_err(step("creating the probe directory"))?;
    }
    for f in ["l0/gone", "l0/d/kept"] {
        fs::write(scratch.join(f), b"").map_err(step("writing a probe file"))?;
    }
    let l1 = open_dir(&scratch.join("l1")).map_err(step("opening"))?;
    nix::sys::stat::mknodat(
        l1.as_fd(),
        "gone",
        nix::sys::stat::SFlag::S_IFCHR,
        Mode::empty(),
        0,
    )
    .map_err(|e| format!("making a whiteout node: {e}"))?;
    fs::File::from(open_dir(&scratch.join("l1/d")).map_err(step("opening"))?)
        .set_xattr(crate::rootfs::unpack::OPAQUE_XATTR, b"y")
        .map_err(step("setting trusted.overlay.opaque"))?;
    mount(
        &[&scratch.join("l1"), &scratch.join("l0")],
        &scratch.join("upper"),
        &scratch.join("work"),
        &scratch.join("merged"),
    )
    .map_err(step("mounting an overlay"))?;
    let m = scratch.join("merged");
    if fs::symlink_metadata(m.join("gone")).is_ok() {
        return Err("the overlay shows a whiteout as a file".into());
    }
    if fs::symlink_metadata(m.join("d/kept")).is_ok() {
        return Err("the overlay ignores opaque directories".into());
    }
    Ok(())
}
