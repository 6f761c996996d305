//! The `zfs` driver: a dataset per chainID, a snapshot per layer, a clone per container.
//!
//! ```text
//! <dataset>/layers/<chainID hex>          layer N applied on a clone of chain N-1's snapshot
//! <dataset>/layers/<chainID hex>@stockade  the finished chain, the origin of what builds on it
//! <dataset>/containers/<id>                a container's root filesystem: a clone
//! ```
//!
//! A container's root filesystem costs one `zfs clone` whatever the image's size; images
//! that share lower layers share their datasets. Everything goes through the `zfs`
//! command, so the driver is the list of commands it runs (unit-tested with a fake).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;

use crate::oci::digest::Digest;
use crate::rootfs::unpack::{
    budget_for, unpack_with_budget, LayerSource, UnpackLimits, UnpackOptions,
};

use super::{chain_ids, check_id, LayerHook, Prepared, StorageDriver, StorageError};

/// The name of the snapshot that marks a finished chain.
pub const SNAPSHOT: &str = "stockade";

/// Runs `zfs` with arguments and returns its stdout.
pub trait ZfsRunner {
    /// Runs `zfs args…`; a non-zero exit is an error carrying stderr.
    fn run(&self, args: &[&str]) -> Result<String, StorageError>;
}

/// The real `zfs` command (found on `PATH`, or `$STOCKADE_ZFS`).
#[derive(Debug, Clone, Default)]
pub struct SystemZfs;

impl ZfsRunner for SystemZfs {
    fn run(&self, args: &[&str]) -> Result<String, StorageError> {
        let bin = std::env::var_os("STOCKADE_ZFS").unwrap_or_else(|| "zfs".into());
        let out = Command::new(&bin)
            .args(args)
            .output()
            .map_err(|e| StorageError::Zfs {
                args: args.join(" "),
                message: format!("cannot run {}: {e}", PathBuf::from(&bin).display()),
            })?;
        if !out.status.success() {
            return Err(StorageError::Zfs {
                args: args.join(" "),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// ZFS storage under a parent dataset.
pub struct ZfsDriver<R: ZfsRunner = SystemZfs> {
    dataset: String,
    mount_root: Option<PathBuf>,
    zfs: R,
    options: UnpackOptions,
}

impl<R: ZfsRunner> ZfsDriver<R> {
    /// Storage under `dataset` (e.g. `pool/stockade`). Container root filesystems are
    /// mounted at `<mount_root>/<id>` when `mount_root` is given (so their path is known
    /// without asking `zfs`), else where the dataset inherits. Nothing is run here: the
    /// `layers` and `containers` children are created on first use (`-p`), so that making
    /// a container costs one `zfs clone` and nothing more.
    pub fn new(dataset: &str, mount_root: Option<PathBuf>, zfs: R) -> ZfsDriver<R> {
        ZfsDriver {
            dataset: dataset.trim_end_matches('/').to_string(),
            mount_root,
            zfs,
            options: UnpackOptions::default(),
        }
    }

    /// The same driver with other bounds on what an image may unpack to.
    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.options.limits = limits;
        self
    }

    /// The dataset of a chain.
    pub fn layer_dataset(&self, chain: &Digest) -> String {
        format!("{}/layers/{}", self.dataset, chain.hex())
    }

    fn container_dataset(&self, id: &str) -> String {
        format!("{}/containers/{id}", self.dataset)
    }

    /// `zfs destroy -r`, retried: right after a container exits or a layer is written,
    /// the kernel (or zfs-fuse) may still hold the mount for a moment ("dataset is busy";
    /// a container's mount namespace is torn down asynchronously). Unmount by force and
    /// try again for a short while.
    fn destroy(&self, ds: &str) -> Result<(), StorageError> {
        let mut last = None;
        for attempt in 0..10u32 {
            match self.zfs.run(&["destroy", "-r", ds]) {
                Ok(_) => return Ok(()),
                // Already gone: what was asked for holds.
                Err(StorageError::Zfs { message, .. }) if message.contains("does not exist") => {
                    return Ok(())
                }
                Err(e) => last = Some(e),
            }
            let _ = self.zfs.run(&["unmount", "-f", ds]);
            std::thread::sleep(std::time::Duration::from_millis(50 << attempt.min(4)));
        }
        Err(last.unwrap_or_else(|| StorageError::Zfs {
            args: format!("destroy -r {ds}"),
            message: "failed".into(),
        }))
    }

    fn mountpoint(&self, name: &str) -> Result<PathBuf, StorageError> {
        let out = self
            .zfs
            .run(&["get", "-H", "-o", "value", "mountpoint", name])?;
        Ok(PathBuf::from(out.trim()))
    }
}

fn exists<R: ZfsRunner>(zfs: &R, name: &str) -> bool {
    zfs.run(&["list", "-H", "-o", "name", name]).is_ok()
}

impl<R: ZfsRunner> StorageDriver for ZfsDriver<R> {
    fn set_layer_hook(&mut self, hook: LayerHook) {
        self.options.on_layer = Some(hook);
    }

    fn name(&self) -> &'static str {
        "zfs"
    }

    fn prepare(&self, layers: &[LayerSource]) -> Result<Prepared, StorageError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        // The highest chain already finished; everything below it is there too, since a
        // chain is only ever made by cloning its parent's snapshot.
        let done = (0..chains.len()).rev().find(|&i| {
            exists(
                &self.zfs,
                &format!("{}@{SNAPSHOT}", self.layer_dataset(&chains[i])),
            )
        });
        let start = done.map_or(0, |i| i + 1);
        // One budget for the layers unpacked now: the bounds hold per image.
        let budget = match budget_for(&layers[start..], &self.options.limits) {
            Ok(b) => b,
            Err(source) => {
                return Err(StorageError::Unpack {
                    chain: chains
                        .last()
                        .cloned()
                        .unwrap_or_else(|| Digest::sha256_of(b"")),
                    source: Box::new(source),
                })
            }
        };
        for i in start..chains.len() {
            let ds = self.layer_dataset(&chains[i]);
            // A dataset without its snapshot is an interrupted unpack: start it over.
            if exists(&self.zfs, &ds) {
                self.zfs.run(&["destroy", "-r", &ds])?;
            }
            if i == 0 {
                self.zfs.run(&["create", "-p", &ds])?;
            } else {
                let origin = format!("{}@{SNAPSHOT}", self.layer_dataset(&chains[i - 1]));
                self.zfs.run(&["clone", &origin, &ds])?;
            }
            let mp = self.mountpoint(&ds)?;
            if let Err(source) = unpack_with_budget(
                &mp,
                std::slice::from_ref(&layers[i]),
                &self.options,
                &budget,
            ) {
                let _ = self.zfs.run(&["destroy", "-r", &ds]);
                return Err(StorageError::Unpack {
                    chain: chains[i].clone(),
                    source: Box::new(source),
                });
            }
            self.zfs.run(&["snapshot", &format!("{ds}@{SNAPSHOT}")])?;
        }
        let chain = match chains.last() {
            Some(c) => c.clone(),
            None => {
                // No layers: an empty chain dataset.
                let c = Digest::sha256_of(b"");
                let ds = self.layer_dataset(&c);
                if !exists(&self.zfs, &format!("{ds}@{SNAPSHOT}")) {
                    if !exists(&self.zfs, &ds) {
                        self.zfs.run(&["create", "-p", &ds])?;
                    }
                    self.zfs.run(&["snapshot", &format!("{ds}@{SNAPSHOT}")])?;
                }
                c
            }
        };
        Ok(Prepared {
            chain,
            unpacked_layers: chains.len() - start,
        })
    }

    fn create_rootfs(&self, chain: &Digest, id: &str) -> Result<PathBuf, StorageError> {
        check_id(id)?;
        let origin = format!("{}@{SNAPSHOT}", self.layer_dataset(chain));
        let ds = self.container_dataset(id);
        // One command in the usual case: its errors say whether the chain or the container
        // was the problem. The clone inherits its mountpoint (<mount_root>/<id>) from the
        // `containers` dataset, which is made, with that mountpoint, on first use; setting
        // a mountpoint per clone would cost about 15% more than the clone itself.
        let clone = || self.zfs.run(&["clone", origin.as_str(), ds.as_str()]);
        let mut result = clone();
        if matches!(&result, Err(StorageError::Zfs { message, .. }) if message.contains("parent does not exist"))
        {
            let parent = format!("{}/containers", self.dataset);
            match &self.mount_root {
                Some(r) => {
                    let mp = format!("mountpoint={}", r.display());
                    self.zfs.run(&["create", "-p", "-o", &mp, &parent])?
                }
                None => self.zfs.run(&["create", "-p", &parent])?,
            };
            result = clone();
        }
        match result {
            Ok(_) => {}
            Err(StorageError::Zfs { message, .. }) if message.contains("already exists") => {
                return Err(StorageError::Exists {
                    id: id.to_string(),
                    path: PathBuf::from(ds),
                })
            }
            Err(StorageError::Zfs { message, .. })
                if message.contains("does not exist") || message.contains("could not find") =>
            {
                return Err(StorageError::NoChain {
                    chain: chain.clone(),
                })
            }
            Err(e) => return Err(e),
        }
        self.rootfs_path(id)
    }

    fn rootfs_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        check_id(id)?;
        match &self.mount_root {
            Some(r) => Ok(r.join(id)),
            None => self.mountpoint(&self.container_dataset(id)),
        }
    }

    fn remove_rootfs(&self, id: &str) -> Result<(), StorageError> {
        check_id(id)?;
        self.destroy(&self.container_dataset(id))
    }

    fn prune(&self, keep: &[Digest]) -> Result<Vec<Digest>, StorageError> {
        let layers = format!("{}/layers", self.dataset);
        let containers = format!("{}/containers", self.dataset);
        let mut origin_of: HashMap<String, String> = HashMap::new();
        for parent in [&layers, &containers] {
            let listed = self.zfs.run(&[
                "list",
                "-H",
                "-r",
                "-t",
                "filesystem",
                "-o",
                "name,origin",
                parent,
            ]);
            let out = match listed {
                Ok(out) => out,
                // Never used yet: nothing there to prune.
                Err(StorageError::Zfs { message, .. }) if message.contains("does not exist") => {
                    String::new()
                }
                Err(e) => return Err(e),
            };
            for line in out.lines() {
                let mut f = line.split('\t');
                let (Some(name), Some(origin)) = (f.next(), f.next()) else {
                    continue;
                };
                if name == parent.as_str() {
                    continue;
                }
                let origin = origin.split('@').next().unwrap_or("").to_string();
                origin_of.insert(name.to_string(), origin);
            }
        }
        // Needed: kept chains, container clones, and every origin of something needed.
        let mut needed: HashSet<String> = keep.iter().map(|c| self.layer_dataset(c)).collect();
        needed.extend(
            origin_of
                .keys()
                .filter(|n| n.starts_with(&format!("{containers}/")))
                .cloned(),
        );
        let mut stack: Vec<String> = needed.iter().cloned().collect();
        while let Some(n) = stack.pop() {
            if let Some(o) = origin_of.get(&n) {
                if o != "-" && needed.insert(o.clone()) {
                    stack.push(o.clone());
                }
            }
        }
        let mut doomed: Vec<String> = origin_of
            .keys()
            .filter(|n| n.starts_with(&format!("{layers}/")) && !needed.contains(*n))
            .cloned()
            .collect();
        let mut removed = Vec::new();
        // Clones first: a dataset whose snapshot is another's origin cannot go before it.
        while !doomed.is_empty() {
            let origins: HashSet<&String> =
                doomed.iter().filter_map(|n| origin_of.get(n)).collect();
            let (now, later): (Vec<String>, Vec<String>) =
                doomed.iter().cloned().partition(|n| !origins.contains(n));
            if now.is_empty() {
                break;
            }
            for ds in &now {
                self.destroy(ds)?;
                if let Some(hex) = ds.rsplit('/').next() {
                    if let Ok(d) = format!("sha256:{hex}").parse() {
                        removed.push(d);
                    }
                }
            }
            doomed = later;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A fake `zfs` that records commands and keeps the set of names, with mountpoints in
    /// a temporary directory so layers really get unpacked.
    struct Fake {
        names: RefCell<HashMap<String, String>>,
        log: RefCell<Vec<String>>,
        mnt: PathBuf,
    }

    impl ZfsRunner for Fake {
        fn run(&self, args: &[&str]) -> Result<String, StorageError> {
            self.log.borrow_mut().push(args.join(" "));
            let mut names = self.names.borrow_mut();
            let fail = || {
                Err(StorageError::Zfs {
                    args: args.join(" "),
                    message: "no".into(),
                })
            };
            match args {
                ["list", "-H", "-o", "name", n] => {
                    if names.contains_key(*n) {
                        Ok(format!("{n}\n"))
                    } else {
                        fail()
                    }
                }
                ["create", "-p", n] => {
                    std::fs::create_dir_all(self.mnt.join(n)).unwrap();
                    names.insert(n.to_string(), "-".into());
                    Ok(String::new())
                }
                ["create", "-p", "-o", _, n] => {
                    std::fs::create_dir_all(self.mnt.join(n)).unwrap();
                    names.insert(n.to_string(), "-".into());
                    Ok(String::new())
                }
                ["clone", _, n]
                    if n.contains("/containers/") && !names.contains_key("tank/st/containers") =>
                {
                    Err(StorageError::Zfs {
                        args: args.join(" "),
                        message: "parent does not exist".into(),
                    })
                }
                ["clone", o, n] => {
                    if names.contains_key(*n) {
                        return Err(StorageError::Zfs {
                            args: args.join(" "),
                            message: "dataset already exists".into(),
                        });
                    }
                    if !names.contains_key(*o) {
                        return Err(StorageError::Zfs {
                            args: args.join(" "),
                            message: "dataset does not exist".into(),
                        });
                    }
                    let src = self.mnt.join(o.split('@').next().unwrap());
                    let dst = self.mnt.join(n);
                    std::fs::create_dir_all(&dst).unwrap();
                    for e in std::fs::read_dir(src).unwrap() {
                        let e = e.unwrap();
                        if e.file_type().unwrap().is_file() {
                            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
                        }
                    }
                    names.insert(n.to_string(), o.to_string());
                    Ok(String::new())
                }
                ["snapshot", n] => {
                    names.insert(n.to_string(), "-".into());
                    Ok(String::new())
                }
                ["get", "-H", "-o", "value", "mountpoint", n] => {
                    Ok(format!("{}\n", self.mnt.join(n).display()))
                }
                ["destroy", "-r", n] if !names.contains_key(*n) => Err(StorageError::Zfs {
                    args: args.join(" "),
                    message: "dataset does not exist".into(),
                }),
                ["destroy", "-r", n] => {
                    names.retain(|k, _| {
                        !(k == n
                            || k.starts_with(&format!("{n}@"))
                            || k.starts_with(&format!("{n}/")))
                    });
                    Ok(String::new())
                }
                ["list", "-H", "-r", "-t", "filesystem", "-o", "name,origin", p] => Ok(names
                    .iter()
                    .filter(|(k, _)| {
                        !k.contains('@') && (k.as_str() == *p || k.starts_with(&format!("{p}/")))
                    })
                    .map(|(k, v)| format!("{k}\t{v}\n"))
                    .collect()),
                _ => fail(),
            }
        }
    }

    fn layer(dir: &std::path::Path, name: &str, file: &str) -> LayerSource {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, file, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &tar).unwrap();
        LayerSource {
            digest: Digest::sha256_of(&tar),
            media_type: crate::oci::media::OCI_LAYER_TAR.into(),
            path,
            diff_id: Digest::sha256_of(&tar),
        }
    }

    #[test]
    fn layers_are_clones_of_their_parent_snapshot_and_containers_clones_of_the_top() {
        let tmp = tempfile::tempdir().unwrap();
        let fake = Fake {
            names: Default::default(),
            log: Default::default(),
            mnt: tmp.path().join("mnt"),
        };
        let d = ZfsDriver::new("tank/st", None, fake);
        let l1 = layer(tmp.path(), "l1", "a");
        let l2 = layer(tmp.path(), "l2", "b");
        let p = d.prepare(&[l1.clone(), l2.clone()]).unwrap();
        assert_eq!(p.unpacked_layers, 2);
        let c = chain_ids(&[l1.diff_id.clone(), l2.diff_id.clone()]);
        let log = d.zfs.log.borrow().clone();
        assert!(log.contains(&format!("create -p tank/st/layers/{}", c[0].hex())));
        assert!(log.contains(&format!(
            "clone tank/st/layers/{}@stockade tank/st/layers/{}",
            c[0].hex(),
            c[1].hex()
        )));
        assert!(log.contains(&format!("snapshot tank/st/layers/{}@stockade", c[1].hex())));
        assert_eq!(d.prepare(&[l1.clone(), l2]).unwrap().unpacked_layers, 0);
        let before = d.zfs.log.borrow().len();
        d.create_rootfs(&p.chain, "web").unwrap();
        assert_eq!(
            d.zfs.log.borrow().len() - before,
            4,
            "clone, make the parent, clone, mountpoint"
        );
        d.remove_rootfs("web").unwrap();
        let before = d.zfs.log.borrow().len();
        let root = d.create_rootfs(&p.chain, "web").unwrap();
        assert_eq!(
            d.zfs.log.borrow().len() - before,
            2,
            "a clone and a mountpoint lookup"
        );
        assert!(matches!(
            d.create_rootfs(&p.chain, "web"),
            Err(StorageError::Exists { .. })
        ));
        let nochain = Digest::sha256_of(b"none");
        assert!(matches!(
            d.create_rootfs(&nochain, "x"),
            Err(StorageError::NoChain { .. })
        ));
        assert!(root.join("a").exists() && root.join("b").exists());
        // The container holds the chain: nothing may be pruned.
        assert!(d.prune(&[]).unwrap().is_empty());
        d.remove_rootfs("web").unwrap();
        // Keeping the one-layer image keeps its chain only.
        let p1 = d.prepare(&[l1]).unwrap();
        assert_eq!(
            d.prune(std::slice::from_ref(&p1.chain)).unwrap(),
            vec![c[1].clone()]
        );
        assert_eq!(d.prune(&[]).unwrap(), vec![c[0].clone()]);
    }
}
