//! Whether overlay root filesystems work on a storage root: probed once (a real mount with
//! a whiteout and an opaque directory on the storage file system), the answer kept in
//! `<storage root>/overlay-probe.json` with the kernel release it holds for.

use std::fs::{self, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::mount;

const CACHE: &str = "overlay-probe.json";
const SCRATCH: &str = ".overlay-probe";

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    kernel: String,
    /// `None` when overlay works, else why not.
    unsupported: Option<String>,
}

fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `Ok(())` when overlay root filesystems work under `storage_root` (created when
/// missing), else why not. Probed on the first call for this kernel, then read back.
pub fn supported(storage_root: &Path) -> Result<(), String> {
    let cache = storage_root.join(CACHE);
    let k = kernel();
    let cached = |path: &Path| -> Option<Result<(), String>> {
        let a: Answer = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        (a.kernel == k).then(|| a.unsupported.map_or(Ok(()), Err))
    };
    if let Some(r) = cached(&cache) {
        return r;
    }
    fs::create_dir_all(storage_root)
        .map_err(|e| format!("creating {}: {e}", storage_root.display()))?;
    // One prober at a time; the scratch directory a killed prober left (possibly with its
    // mount) is cleared by the next one, under this lock.
    let lock_path = storage_root.join(format!("{SCRATCH}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    let _lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
    if let Some(r) = cached(&cache) {
        return r;
    }
    let r = mount::probe(&storage_root.join(SCRATCH));
    let answer = Answer {
        kernel: k,
        unsupported: r.clone().err(),
    };
    // Not cached when it cannot be written: the next call probes again.
    let _ = crate::oci::layout::write_json(&cache, &answer);
    r
}
