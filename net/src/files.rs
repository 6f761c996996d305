//! Atomic file writes: a temporary sibling renamed over the target, so that a crash
//! leaves the old content or the new, never a mix.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically (temporary `.NAME.PID.tmp`, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporaries [`write_atomic`] left for `path` when its writer was killed
/// (`.NAME.PID.tmp` whose PID is no live process); a live writer's is kept.
pub(crate) fn remove_stale_temps(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(());
    };
    let prefix = format!(".{name}.");
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for ent in entries {
        let file = ent?.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = pid <= 0
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
        if gone {
            match fs::remove_file(dir.join(&file)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails with the temporaries of killed writers left: `delete` left `.ID.json.PID.tmp`.
    #[test]
    fn a_killed_writers_temporary_goes_and_a_live_ones_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.json");
        // A pid no process has (above the kernel's pid_max of 2^22).
        let dead = tmp.path().join(".c.json.99999999.tmp");
        let live = tmp
            .path()
            .join(format!(".c.json.{}.tmp", std::process::id()));
        let other = tmp.path().join(".cc.json.99999999.tmp");
        for p in [&dead, &live, &other] {
            fs::write(p, b"{}").unwrap();
        }
        remove_stale_temps(&path).unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        write_atomic(&path, b"x").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }
}
