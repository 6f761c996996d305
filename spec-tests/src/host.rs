//! What the host sees: its mount table, and whether a process is still alive. Linux reads
//! /proc; on other systems these report that they cannot tell (the tests then skip).

use std::path::Path;

/// A process identified by pid and start time, so a reused pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

/// Mount points in the host's mount namespace at or under `dir`.
#[cfg(target_os = "linux")]
pub fn mounts_under(dir: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let prefix = dir.to_string_lossy().trim_end_matches('/').to_string();
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|mp| mp == &prefix || mp.starts_with(&format!("{prefix}/")))
        .collect())
}

#[cfg(not(target_os = "linux"))]
pub fn mounts_under(_dir: &Path) -> Result<Vec<String>, String> {
    Err("reading the host mount table is only implemented on Linux".into())
}

/// mountinfo escapes space, tab, newline and backslash as octal.
#[cfg(target_os = "linux")]
fn unescape_mount_path(s: &str) -> String {
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

/// Field 22 of /proc/PID/stat (start time) and field 3 (state).
#[cfg(target_os = "linux")]
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Identifies a live process (None if there is none with that pid).
#[cfg(target_os = "linux")]
pub fn proc_id(pid: i32) -> Option<ProcId> {
    stat(pid).map(|(_, start)| ProcId { pid, start })
}

#[cfg(not(target_os = "linux"))]
pub fn proc_id(pid: i32) -> Option<ProcId> {
    Some(ProcId { pid, start: 0 })
}

/// Whether the process still exists and is not a zombie.
#[cfg(target_os = "linux")]
pub fn alive(p: ProcId) -> bool {
    matches!(stat(p.pid), Some((state, start)) if start == p.start && state != 'Z' && state != 'X')
}

#[cfg(not(target_os = "linux"))]
pub fn alive(p: ProcId) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(p.pid, 0) == 0 }
}

/// Live processes whose root directory or working directory is at or under `dir`.
#[cfg(target_os = "linux")]
pub fn processes_using(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().trim_end_matches('/').to_string();
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in rd.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        if matches!(stat(pid), Some((s, _)) if s == 'Z' || s == 'X') {
            continue;
        }
        for link in ["root", "cwd"] {
            if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/{link}")) {
                let t = target.to_string_lossy();
                if t == prefix || t.starts_with(&format!("{prefix}/")) {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    found.push(format!("pid {pid} ({}) {link} {t}", comm.trim()));
                    break;
                }
            }
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
pub fn processes_using(_dir: &Path) -> Vec<String> {
    Vec::new()
}

/// The pid namespace of a process (`pid:[4026531836]`), Linux only.
#[cfg(target_os = "linux")]
pub fn pid_namespace(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Every live pid on the host whose pid namespace is `ns`.
#[cfg(target_os = "linux")]
pub fn pids_in_namespace(ns: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for entry in rd.filter_map(|e| e.ok()) {
            if let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() {
                if matches!(stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
                    && pid_namespace(pid).as_deref() == Some(ns)
                {
                    pids.push(pid);
                }
            }
        }
    }
    pids.sort_unstable();
    pids
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape_mount_path("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    #[test]
    fn this_process_is_alive_and_its_start_time_is_checked() {
        let me = proc_id(std::process::id() as i32).unwrap();
        assert!(alive(me));
        assert!(!alive(ProcId {
            pid: me.pid,
            start: me.start + 1
        }));
    }
}

/// Reads a file that a container or hook wrote, as text ("" if it does not exist).
pub fn read_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
