//! The pod and container configurations the checks send, as a kubelet would.

use std::path::Path;

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, LinuxContainerConfig, LinuxContainerResources,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata,
};

pub const POD_NAME: &str = "critest";
pub const POD_HOSTNAME: &str = "critest-pod";

/// A pod whose containers share its network, IPC and UTS namespaces (each has its own PID
/// namespace, the kubelet's default), with its logs under `log_dir`.
pub fn pod(log_dir: &Path, uid: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: POD_NAME.into(),
            uid: uid.into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: POD_HOSTNAME.into(),
        log_directory: log_dir.to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container running `cmd` from `image`, its log at `<pod log dir>/<name>.log`, with CPU
/// shares and a memory limit (0: none), so that it has cgroups of its own for stats and OOM.
pub fn container(name: &str, image: &str, cmd: &[&str], memory: i64) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: memory,
                // What a kubelet always sends (from the CPU request); it gives the container
                // its CPU cgroups, which ContainerStats reads.
                cpu_shares: 512,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether a log file is in the CRI format and holds `line` on `stream`: each line is
/// `<RFC 3339 time> <stdout|stderr> <F|P> <text>`.
pub fn log_has(log: &str, stream: &str, line: &str) -> Result<bool, String> {
    let mut found = false;
    for l in log.lines() {
        let mut parts = l.splitn(4, ' ');
        let (ts, s, tag, text) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let ts_ok = ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T');
        if !ts_ok || !matches!(s, "stdout" | "stderr") || !matches!(tag, "F" | "P") {
            return Err(format!("not a CRI log line: {l:?}"));
        }
        found |= s == stream && tag == "F" && text == line;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines() {
        let log =
            "2026-11-30T10:00:00.123456789Z stdout F hello\n2026-11-30T10:00:00.2Z stderr F oops\n";
        assert_eq!(log_has(log, "stdout", "hello"), Ok(true));
        assert_eq!(log_has(log, "stderr", "oops"), Ok(true));
        assert_eq!(log_has(log, "stdout", "oops"), Ok(false));
        assert!(log_has("hello\n", "stdout", "hello").is_err());
        assert!(log_has("2026-11-30T10:00:00Z stdin F x\n", "stdout", "x").is_err());
    }

    #[test]
    fn container_has_its_log_and_limit() {
        let c = container("web", "img", &["sh"], 1 << 20);
        assert_eq!(c.log_path, "web.log");
        assert_eq!(
            c.linux.unwrap().resources.unwrap().memory_limit_in_bytes,
            1 << 20
        );
    }
}
