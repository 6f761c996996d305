//! What `/proc/self/mountinfo` says: the cgroup mounts, and every mount point.

use std::path::PathBuf;

/// The cgroup mounts of this process's mount namespace: v1 mounts by controller, and the
/// v2 mount, from `/proc/self/mountinfo`.
pub fn hierarchies(mountinfo: &str) -> (Vec<(String, PathBuf)>, Option<PathBuf>) {
    let mut v1 = Vec::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut l = left.split(' ');
        let Some(mount) = l.nth(4) else { continue };
        let mount = PathBuf::from(unescape(mount));
        let mut r = right.split(' ');
        match (r.next(), r.nth(1)) {
            (Some("cgroup"), Some(opts)) => {
                for o in opts.split(',') {
                    v1.push((o.to_string(), mount.clone()));
                }
            }
            (Some("cgroup2"), _) => v2 = v2.or(Some(mount)),
            _ => {}
        }
    }
    (v1, v2)
}

/// Every mount point, in the order mounted.
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A hybrid host's cgroup mounts, for tests.
#[cfg(test)]
pub const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,name=x
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_listed_unescaped() {
        let m = mount_points(HYBRID);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0], PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(m[5], PathBuf::from("/sys/fs/cgroup/my dir"));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("end\\04"), "end\\04");
    }
}
