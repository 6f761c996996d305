//! Linux images (`os: linux`) on FreeBSD run under the Linux ABI (the linuxulator): the
//! kernel needs the ABI module for the image's architecture and the file systems the
//! bundle mounts. What is missing is found before the container is made, and named in
//! one error with the `kldload` line that fixes it. The decision is pure (given what is
//! loaded, what is missing); only the probe of the running kernel is FreeBSD's.

use std::collections::BTreeSet;

/// The file systems a Linux image's bundle mounts: linprocfs on /proc, linsysfs on /sys,
/// fdescfs on /dev/fd, tmpfs on /dev/shm.
pub const LINUX_FILESYSTEMS: [&str; 4] = ["linprocfs", "linsysfs", "fdescfs", "tmpfs"];

/// What the running kernel has loaded, as far as a Linux image cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    /// Loaded kernel modules among the Linux ABIs (`linux`, `linux64`).
    pub modules: BTreeSet<String>,
    /// File systems the kernel knows (`lsvfs`).
    pub filesystems: BTreeSet<String>,
}

/// The Linux ABI module for an image architecture (OCI naming): 32-bit x86 runs under
/// `linux`, everything else FreeBSD supports (amd64, arm64) under `linux64`.
pub fn abi_module(architecture: &str) -> &'static str {
    match architecture {
        "386" | "i386" => "linux",
        _ => "linux64",
    }
}

/// The kernel modules to load for a Linux image of `architecture`, in `kldload` order;
/// empty when nothing is missing.
pub fn missing(architecture: &str, state: &KernelState) -> Vec<&'static str> {
    let abi = abi_module(architecture);
    let mut out = Vec::new();
    if !state.modules.contains(abi) {
        out.push(abi);
    }
    for fs in LINUX_FILESYSTEMS {
        if !state.filesystems.contains(fs) {
            out.push(fs);
        }
    }
    out
}

/// The file system names in `lsvfs` output: the first word of each line after the
/// dashed line under the header.
pub fn parse_lsvfs(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("----"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Asks the running kernel: `kldstat -q -m NAME` for each Linux ABI, `lsvfs` for the
/// file systems.
#[cfg(target_os = "freebsd")]
pub fn probe() -> Result<KernelState, super::BundleError> {
    use std::process::{Command, Stdio};
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|source| super::BundleError::KernelProbe {
                command: cmd.to_owned(),
                source,
            })
    };
    let mut state = KernelState::default();
    for m in ["linux", "linux64"] {
        if run("kldstat", &["-q", "-m", m])?.status.success() {
            state.modules.insert(m.to_owned());
        }
    }
    let out = run("lsvfs", &[])?;
    state.filesystems = parse_lsvfs(&String::from_utf8_lossy(&out.stdout));
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(modules: &[&str], fs: &[&str]) -> KernelState {
        KernelState {
            modules: modules.iter().map(|s| s.to_string()).collect(),
            filesystems: fs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn nothing_is_missing_when_all_is_loaded() {
        let s = state(
            &["linux64"],
            &["ufs", "linprocfs", "linsysfs", "fdescfs", "tmpfs"],
        );
        assert!(missing("amd64", &s).is_empty());
        assert!(missing("arm64", &s).is_empty());
    }

    #[test]
    fn each_missing_module_is_named_abi_first() {
        let s = state(&["linux"], &["ufs", "tmpfs", "linsysfs"]);
        assert_eq!(
            missing("amd64", &s),
            vec!["linux64", "linprocfs", "fdescfs"]
        );
        // A 32-bit image needs the 32-bit ABI, which is loaded here.
        assert_eq!(missing("386", &s), vec!["linprocfs", "fdescfs"]);
        assert_eq!(
            missing("amd64", &KernelState::default()),
            vec!["linux64", "linprocfs", "linsysfs", "fdescfs", "tmpfs"]
        );
    }

    #[test]
    fn lsvfs_output_is_read_by_its_first_column() {
        let text = "Filesystem                              Num  Refs  Flags\n\
            -------------------------------- ---------- -----  ---------------\n\
            ufs                              0x00000035     2  \n\
            devfs                            0x00000071     1  synthetic, jail\n\
            linprocfs                        0x000000b2     0  synthetic, jail\n\
            tmpfs                            0x00000087     0  jail\n";
        let fs = parse_lsvfs(text);
        assert_eq!(
            fs.into_iter().collect::<Vec<_>>(),
            vec!["devfs", "linprocfs", "tmpfs", "ufs"]
        );
        assert!(parse_lsvfs("Filesystem Num\n").is_empty());
    }
}
