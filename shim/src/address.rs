//! Where a shim listens: containerd 1.6 puts shim sockets in `/run/containerd/s/`, named
//! by the sha256 of `<containerd address>/<namespace>/<group id>`, so a restarted
//! containerd (or `start` for another container of the same pod) finds it again.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// containerd's directory for shim sockets (its runc v2 shim uses the same).
pub const SOCKET_DIR: &str = "/run/containerd/s";

/// The annotation CRI puts on every container of a pod, naming the sandbox: containers with
/// the same value share one shim.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The socket path for `group` in `namespace` of the containerd at `address`.
pub fn socket_path(dir: &Path, address: &str, namespace: &str, group: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{address}/{namespace}/{group}").as_bytes());
    dir.join(hex::encode(digest))
}

/// The `unix://` address containerd is given for `path`.
pub fn unix_address(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// The id a container's shim is grouped by: its pod's sandbox id when CRI set one, else its
/// own id.
pub fn group_id<'a>(
    id: &'a str,
    annotations: Option<&'a std::collections::HashMap<String, String>>,
) -> &'a str {
    annotations
        .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
}

/// A plain path for a containerd address (`unix:///x` or `/x`), for connecting.
pub fn strip_unix(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn socket_name_matches_containerd() {
        // printf '%s' /run/containerd/containerd.sock/default/hello | sha256sum
        let p = socket_path(
            Path::new(SOCKET_DIR),
            "/run/containerd/containerd.sock",
            "default",
            "hello",
        );
        let expected = hex::encode(Sha256::digest(
            b"/run/containerd/containerd.sock/default/hello",
        ));
        assert_eq!(p, Path::new(SOCKET_DIR).join(&expected));
        assert_eq!(expected.len(), 64);
        assert_ne!(
            p,
            socket_path(
                Path::new(SOCKET_DIR),
                "/run/containerd/containerd.sock",
                "other",
                "hello"
            )
        );
        assert_eq!(unix_address(Path::new("/a/b")), "unix:///a/b");
        assert_eq!(strip_unix("unix:///a/b"), "/a/b");
        assert_eq!(strip_unix("/a/b"), "/a/b");
    }

    #[test]
    fn pod_containers_share_the_sandbox_group() {
        let mut a = HashMap::new();
        assert_eq!(group_id("c1", Some(&a)), "c1");
        assert_eq!(group_id("c1", None), "c1");
        a.insert(SANDBOX_ID_ANNOTATION.to_string(), "pod".to_string());
        assert_eq!(group_id("c1", Some(&a)), "pod");
        a.insert(SANDBOX_ID_ANNOTATION.to_string(), String::new());
        assert_eq!(group_id("c1", Some(&a)), "c1");
    }
}
