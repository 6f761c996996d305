//! Keeping the `/etc/hosts` of the containers on one network current: when a container
//! joins ([`join`]) or leaves (`detach`), the hosts file of every container of the storage
//! root attached to that network is rendered again from the attachment records — its own
//! names on its addresses, then every other container's id on its address.
//!
//! The file is bind-mounted read-only over the container's `/etc/hosts`. A bind mount of a
//! file holds the inode, so a rename over the bundle's file would go unseen: the file is
//! rewritten in place (written, then cut to length) under the networks lock, which
//! serializes every writer. A reader in the container may see a half-written file for the
//! instant of the write, as with any in-place update of `/etc/hosts`.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::cni::result_addresses;
use crate::lock::NetworksLock;
use crate::record::{attached_to, read_record, write_record, Record};
use crate::{config::NETWORKS_DIR, io, NetError};

/// The hosts file's name in a bundle.
pub const HOSTS_FILE: &str = "hosts";

/// The bound on a hosts file read back (a network of many containers still fits).
const MAX_HOSTS: u64 = 4 << 20;

/// Records that container `id`'s hosts file is `bundle/hosts` listing `names` for it, and
/// renders the files of every container on its network (its own included) again.
pub fn join(storage_root: &Path, id: &str, bundle: &Path, names: &[&str]) -> Result<(), NetError> {
    let dir = storage_root.join(NETWORKS_DIR);
    let lock = NetworksLock::exclusive(&dir)?;
    let Some(mut record) = read_record(storage_root, id)? else {
        return Ok(());
    };
    record.hosts = Some(bundle.join(HOSTS_FILE));
    record.names = names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| n.to_string())
        .collect();
    write_record(storage_root, &record)?;
    match &record.network {
        Some(name) => refresh_locked(storage_root, name, &lock),
        // --network none: only its own names.
        None => rewrite(&record, &render(&record, &[])),
    }
}

/// Renders the hosts files of the containers on network `name` again.
pub fn refresh(storage_root: &Path, name: &str) -> Result<(), NetError> {
    let lock = NetworksLock::exclusive(&storage_root.join(NETWORKS_DIR))?;
    refresh_locked(storage_root, name, &lock)
}

fn refresh_locked(storage_root: &Path, name: &str, _held: &NetworksLock) -> Result<(), NetError> {
    let records = attached_to(storage_root, name)?;
    for r in &records {
        if let Err(e) = rewrite(r, &render(r, &records)) {
            // One container's file (say, a bundle half removed) must not stop the others'
            // or the teardown that asked.
            tracing::warn!("updating /etc/hosts of container {}: {e}", r.id);
        }
    }
    Ok(())
}

/// The hosts file of `r` among `all` (which may include `r`).
fn render(r: &Record, all: &[Record]) -> String {
    let own = r.result.as_ref().map(result_addresses).unwrap_or_default();
    let mut peers = Vec::new();
    for p in all.iter().filter(|p| p.id != r.id) {
        for a in p.result.as_ref().map(result_addresses).unwrap_or_default() {
            // Written into another container's file: only what parses as an address.
            if a.parse::<std::net::IpAddr>().is_ok() {
                peers.push((a, p.id.clone()));
            }
        }
    }
    let names: Vec<&str> = r.names.iter().map(String::as_str).collect();
    crate::etc::hosts(&own, &names, &peers)
}

/// Rewrites `r`'s hosts file in place when its text differs; no file recorded, or none
/// there any more, is nothing to do.
fn rewrite(r: &Record, text: &str) -> Result<(), NetError> {
    let Some(path) = &r.hosts else {
        return Ok(());
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("opening", path)(e)),
    };
    // Only a regular file of ours (the record names the bundle's own file).
    if !file.metadata().map_err(io("reading", path))?.is_file() {
        return Ok(());
    }
    let mut old = Vec::new();
    (&mut file)
        .take(MAX_HOSTS)
        .read_to_end(&mut old)
        .map_err(io("reading", path))?;
    if old == text.as_bytes() {
        return Ok(());
    }
    file.seek(SeekFrom::Start(0)).map_err(io("writing", path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.set_len(text.len() as u64))
        .map_err(io("writing", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};
    use std::fs;

    fn record(root: &Path, id: &str, addr: &str, net: &str) {
        write_record(
            root,
            &Record {
                id: id.into(),
                netns: "/x".into(),
                network: Some(net.into()),
                list: None,
                runtime_config: Map::new(),
                result: Some(json!({"ips": [{"address": format!("{addr}/24")}]})),
                hosts: None,
                names: Vec::new(),
            },
        )
        .unwrap();
    }

    /// Fails without the refresh: the first container's file never learns of the second.
    #[test]
    fn a_container_joining_or_leaving_updates_the_others_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("networks/attachments")).unwrap();
        let (b1, b2) = (root.join("b1"), root.join("b2"));
        for b in [&b1, &b2] {
            fs::create_dir(b).unwrap();
            fs::write(b.join(HOSTS_FILE), "old\n").unwrap();
        }
        record(root, "one", "10.89.0.2", "n");
        join(root, "one", &b1, &["one", "web"]).unwrap();
        let first = fs::read_to_string(b1.join(HOSTS_FILE)).unwrap();
        assert!(first.ends_with("10.89.0.2\tone web\n"), "{first}");
        use std::os::unix::fs::MetadataExt;
        let inode = fs::metadata(b1.join(HOSTS_FILE)).unwrap().ino();

        record(root, "two", "10.89.0.3", "n");
        record(root, "other", "10.89.9.9", "elsewhere");
        join(root, "two", &b2, &["two"]).unwrap();
        let first = fs::read_to_string(b1.join(HOSTS_FILE)).unwrap();
        assert!(first.contains("10.89.0.3\ttwo\n"), "{first}");
        assert!(!first.contains("other"), "{first}");
        let second = fs::read_to_string(b2.join(HOSTS_FILE)).unwrap();
        assert!(
            second.contains("10.89.0.3\ttwo\n10.89.0.2\tone\n"),
            "{second}"
        );
        // In place: the bind mount of the file keeps seeing it.
        assert_eq!(fs::metadata(b1.join(HOSTS_FILE)).unwrap().ino(), inode);

        // "two" leaves (its record goes, as detach removes it): "one" forgets it.
        fs::remove_file(root.join("networks/attachments/two.json")).unwrap();
        refresh(root, "n").unwrap();
        let first = fs::read_to_string(b1.join(HOSTS_FILE)).unwrap();
        assert!(!first.contains("two"), "{first}");
        assert!(first.ends_with("10.89.0.2\tone web\n"), "{first}");
    }

    #[test]
    fn a_symlinked_or_missing_hosts_file_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("networks/attachments")).unwrap();
        let b = root.join("b");
        fs::create_dir(&b).unwrap();
        let target = root.join("target");
        fs::write(&target, "keep\n").unwrap();
        std::os::unix::fs::symlink(&target, b.join(HOSTS_FILE)).unwrap();
        record(root, "one", "10.89.0.2", "n");
        // Warned of, not followed.
        join(root, "one", &b, &["one"]).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
        fs::remove_file(b.join(HOSTS_FILE)).unwrap();
        join(root, "one", &b, &["one"]).unwrap();
        assert!(!b.join(HOSTS_FILE).exists());
    }
}
