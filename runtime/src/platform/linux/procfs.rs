//! Processes, as `/proc` shows them.

/// The start time (clock ticks since boot, field 22 of /proc/PID/stat) of a live process;
/// `None` for a missing pid or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = *fields.first()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn pid_namespace(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Every live process in the PID namespace of `init` (the container's init), `init` first.
pub fn pids_in_namespace_of(init: i32) -> Vec<i32> {
    let Some(ns) = pid_namespace(init) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| pid_namespace(*pid).as_ref() == Some(&ns) && start_time(*pid).is_some())
        .collect();
    pids.sort_unstable_by_key(|p| (*p != init, *p));
    pids
}

/// Writes `process.oomScoreAdj` for the calling process, before it gives up root (a value
/// below the current one needs CAP_SYS_RESOURCE).
pub fn set_oom_score_adj(value: i32) -> Result<(), super::PlatformError> {
    if !(-1000..=1000).contains(&value) {
        return Err(super::PlatformError::Failed {
            call: format!("process.oomScoreAdj {value}"),
            detail: "expected a value from -1000 to 1000".into(),
        });
    }
    std::fs::write("/proc/self/oom_score_adj", value.to_string()).map_err(|e| {
        super::PlatformError::Failed {
            call: format!("writing process.oomScoreAdj {value} to /proc/self/oom_score_adj"),
            detail: format!("{e} (the container needs /proc mounted)"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_with_a_start_time() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert!(pids_in_namespace_of(me).contains(&me));
        assert_eq!(start_time(i32::MAX), None);
    }
}
