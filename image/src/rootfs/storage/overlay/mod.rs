//! The `overlay` driver (Linux): each layer unpacked once into a directory of its own, a
//! container's root filesystem an overlay mount of its image's layers with an upper
//! directory of its own. A second root filesystem of an image costs four `mkdir`s and a
//! mount, whatever the image's size, and its removal costs what the container wrote.
//!
//! ```text
//! <root>/overlay/layers/<chainID hex>/          a chain's top layer, whiteouts as overlayfs reads them
//! <root>/overlay/layers/.tmp-<hex>-<pid>/       an unpack in progress (locked by its writer)
//! <root>/overlay/chains/<chainID hex>           the chainIDs of an image's layers, lowest first (JSON)
//! <root>/overlay/containers/<id>/lower          the layers (chainIDs) the container's mount uses
//! <root>/overlay/containers/<id>/{upper,work}   its own changes, and overlayfs's scratch
//! <root>/overlay/containers/<id>/merged         the mount: the container's root filesystem
//! ```
//!
//! Layers are keyed by chainID, as containerd keys its snapshots: a layer's directory is
//! its own entries only (whiteouts kept, not carried out), except that a hard link to a
//! file of a lower layer needs that file copied up into it (`links`), which makes the
//! directory depend on the layers below. Images share the layers of a common base. How
//! whiteouts are kept, and why a layer cannot forge them, is in
//! [`crate::rootfs::unpack::Whiteouts`].

mod links;
mod mount;
mod sys;
#[cfg(test)]
mod tests;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::oci::digest::Digest;
use crate::oci::layout;
use crate::rootfs::remove::remove_tree;
use crate::rootfs::unpack::{
    budget_for, unpack_with_budget, Budget, LayerSource, UnpackLimits, UnpackOptions, Whiteouts,
};
use stockade_fault as fault;

use super::stale::old;
use super::tmpdir::{remove_if_abandoned, remove_renamed, TmpTree};
use super::{chain_ids, check_id, LayerHook, Prepared, StorageDriver, StorageError};

mod probe;
pub use probe::supported;

/// Overlay storage under `<storage root>/overlay`.
#[derive(Debug, Clone)]
pub struct OverlayDriver {
    root: PathBuf,
    options: UnpackOptions,
}

const LAYERS: &str = "layers";
const CHAINS: &str = "chains";
const CONTAINERS: &str = "containers";
/// The lower directory of an image without layers (overlayfs needs one).
const EMPTY: &str = "empty";
const LOWER_FILE: &str = "lower";

fn json_err(op: &'static str, path: &Path) -> impl FnOnce(String) -> StorageError {
    let path = path.to_path_buf();
    move |e| StorageError::Io {
        op,
        path,
        source: std::io::Error::other(e),
    }
}

fn read_ids(path: &Path) -> Result<Vec<Digest>, StorageError> {
    let bytes = fs::read(path).map_err(StorageError::io("reading", path))?;
    let raw: Vec<String> =
        serde_json::from_slice(&bytes).map_err(|e| json_err("parsing", path)(e.to_string()))?;
    raw.iter()
        .map(|s| s.parse::<Digest>())
        .collect::<Result<_, _>>()
        .map_err(|e| json_err("parsing", path)(e.to_string()))
}

fn write_ids(path: &Path, ids: &[Digest]) -> Result<(), StorageError> {
    let raw: Vec<String> = ids.iter().map(|d| d.to_string()).collect();
    layout::write_json(path, &raw).map_err(|e| json_err("writing", path)(e.to_string()))
}

impl OverlayDriver {
    /// Storage under `<storage_root>/overlay` (created when missing). Whether the kernel
    /// can mount it is [`supported`]'s question; this does not ask.
    pub fn new(storage_root: &Path) -> Result<OverlayDriver, StorageError> {
        let root = storage_root.join("overlay");
        for sub in [LAYERS, CHAINS, CONTAINERS, EMPTY] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(StorageError::io("creating", &p))?;
        }
        Ok(OverlayDriver {
            root,
            options: UnpackOptions {
                whiteouts: Whiteouts::Overlay,
                ..UnpackOptions::default()
            },
        })
    }

    /// The same driver with other bounds on what an image may unpack to.
    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.options.limits = limits;
        self
    }

    /// The directory of the top layer of `chain`.
    pub fn layer_path(&self, chain: &Digest) -> PathBuf {
        self.root.join(LAYERS).join(chain.hex())
    }

    fn chain_file(&self, chain: &Digest) -> PathBuf {
        self.root.join(CHAINS).join(chain.hex())
    }

    fn container_dir(&self, id: &str) -> Result<PathBuf, StorageError> {
        check_id(id)?;
        Ok(self.root.join(CONTAINERS).join(id))
    }

    /// Unpacks `layer` into a fresh, locked temporary directory next to its final place.
    fn unpack_tmp(
        &self,
        chain: &Digest,
        layer: &LayerSource,
        budget: &Arc<Budget>,
    ) -> Result<Unpacked, StorageError> {
        let tmp = TmpTree::create(&self.root.join(LAYERS), chain, "overlay:layer-tmp-created")?;
        let (tmp, stats) = tmp.unpack(chain, |t| {
            unpack_with_budget(t, std::slice::from_ref(layer), &self.options, budget)
        })?;
        Ok(Unpacked {
            tmp,
            lower_links: stats.lower_links,
            implicit_dirs: stats.implicit_dirs,
        })
    }

    /// Unpacks the layers `missing` (indexes into `layers`), as many at once as there are
    /// CPUs: each goes to a directory of its own, so nothing orders them.
    fn unpack_all(
        &self,
        chains: &[Digest],
        layers: &[LayerSource],
        missing: &[usize],
        budget: &Arc<Budget>,
    ) -> Result<Vec<Unpacked>, StorageError> {
        let width = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(1);
        let mut done = Vec::with_capacity(missing.len());
        let mut failed = None;
        for group in missing.chunks(width) {
            let results: Vec<Result<Unpacked, StorageError>> = std::thread::scope(|sc| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|&i| sc.spawn(move || self.unpack_tmp(&chains[i], &layers[i], budget)))
                    .collect();
                handles
                    .into_iter()
                    .zip(group)
                    .map(|(h, &i)| {
                        h.join().unwrap_or_else(|_| {
                            Err(StorageError::io("unpacking", self.layer_path(&chains[i]))(
                                std::io::Error::other("the unpack thread panicked"),
                            ))
                        })
                    })
                    .collect()
            });
            for r in results {
                match r {
                    Ok(u) => done.push(u),
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            if failed.is_some() {
                break;
            }
        }
        if let Some(e) = failed {
            for u in &done {
                u.tmp.discard();
            }
            return Err(e);
        }
        Ok(done)
    }

    /// The lower directories of a chain, topmost first, checked to exist.
    fn lowers(&self, chain: &Digest) -> Result<(Vec<Digest>, Vec<PathBuf>), StorageError> {
        let file = self.chain_file(chain);
        if !file.is_file() {
            return Err(StorageError::NoChain {
                chain: chain.clone(),
            });
        }
        let ids = read_ids(&file)?;
        let mut dirs: Vec<PathBuf> = ids.iter().rev().map(|c| self.layer_path(c)).collect();
        if dirs.iter().any(|d| !d.is_dir()) {
            return Err(StorageError::NoChain {
                chain: chain.clone(),
            });
        }
        if dirs.is_empty() {
            dirs.push(self.root.join(EMPTY));
        }
        Ok((ids, dirs))
    }
}

/// A layer unpacked into its temporary directory, still locked.
struct Unpacked {
    tmp: TmpTree,
    lower_links: Vec<(PathBuf, PathBuf)>,
    implicit_dirs: Vec<PathBuf>,
}

impl OverlayDriver {
    /// Makes the links of an unpacked layer to files of its lower layers (`below`, the
    /// chainIDs under it, lowest first), then renames it into place at `dest`.
    fn place(&self, u: &Unpacked, dest: &Path, below: &[Digest]) -> Result<(), StorageError> {
        let lowers: Vec<PathBuf> = below.iter().rev().map(|c| self.layer_path(c)).collect();
        if !u.lower_links.is_empty() {
            links::make_lower_links(&u.tmp.path, &lowers, &u.lower_links)?;
        }
        links::inherit_dir_meta(&u.tmp.path, &lowers, &u.implicit_dirs)?;
        u.tmp.place(dest)
    }
}

/// Gives the upper directory the owner and mode of the image's root directory: the
/// merged root shows the upper one's.
fn copy_root_meta(from: &Path, to: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    let md = fs::symlink_metadata(from).map_err(StorageError::io("reading", from))?;
    std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()))
        .map_err(StorageError::io("chown", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(md.mode() & 0o7777))
        .map_err(StorageError::io("chmod", to))
}

impl StorageDriver for OverlayDriver {
    fn set_layer_hook(&mut self, hook: LayerHook) {
        self.options.on_layer = Some(hook);
    }

    fn name(&self) -> &'static str {
        "overlay"
    }

    fn prepare(&self, layers: &[LayerSource]) -> Result<Prepared, StorageError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let top = chains
            .last()
            .cloned()
            .unwrap_or_else(|| Digest::sha256_of(b""));
        let missing: Vec<usize> = (0..chains.len())
            .filter(|&i| !self.layer_path(&chains[i]).is_dir())
            .collect();
        let file = self.chain_file(&top);
        if missing.is_empty() && file.is_file() {
            return Ok(Prepared {
                chain: top,
                unpacked_layers: 0,
            });
        }
        // One budget for the layers unpacked now: the bounds hold per image.
        let now: Vec<LayerSource> = missing.iter().map(|&i| layers[i].clone()).collect();
        let budget =
            budget_for(&now, &self.options.limits).map_err(|source| StorageError::Unpack {
                chain: top.clone(),
                source: Box::new(source),
            })?;
        let unpacked = self.unpack_all(&chains, layers, &missing, &budget)?;
        fault::point("overlay:layers-unpacked");
        // Lowest first: a layer's links to lower files need those layers in place.
        let mut rest = unpacked.into_iter().zip(&missing).peekable();
        while let Some((u, &i)) = rest.next() {
            let dest = self.layer_path(&chains[i]);
            let placed = self.place(&u, &dest, &chains[..i]);
            if let Err(e) = placed {
                u.tmp.discard();
                for (later, _) in rest {
                    later.tmp.discard();
                }
                return Err(e);
            }
        }
        // Written last: a chain file names only layers that are all there.
        write_ids(&file, &chains)?;
        Ok(Prepared {
            chain: top,
            unpacked_layers: missing.len(),
        })
    }

    fn create_rootfs(&self, chain: &Digest, id: &str) -> Result<PathBuf, StorageError> {
        let dir = self.container_dir(id)?;
        let (ids, lowers) = self.lowers(chain)?;
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StorageError::Exists {
                    id: id.to_string(),
                    path: dir,
                })
            }
            Err(e) => return Err(StorageError::io("creating", &dir)(e)),
        }
        // From here the directory itself is the record: remove_rootfs unmounts and
        // removes whatever a crash left in it, and prune keeps the layers `lower` names
        // (written before the mount that uses them).
        let made = (|| {
            write_ids(&dir.join(LOWER_FILE), &ids)?;
            for sub in ["upper", "work", "merged"] {
                let p = dir.join(sub);
                fs::create_dir(&p).map_err(StorageError::io("creating", &p))?;
            }
            copy_root_meta(&lowers[0], &dir.join("upper"))?;
            fault::point("overlay:before-mount");
            let lower_refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
            let merged = dir.join("merged");
            mount::mount(&lower_refs, &dir.join("upper"), &dir.join("work"), &merged)
                .map_err(StorageError::io("mounting an overlay on", &merged))?;
            fault::point("overlay:mounted");
            Ok(merged)
        })();
        if made.is_err() {
            let _ = self.remove_rootfs(id);
        }
        made
    }

    fn rootfs_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        Ok(self.container_dir(id)?.join("merged"))
    }

    fn remove_rootfs(&self, id: &str) -> Result<(), StorageError> {
        let dir = self.container_dir(id)?;
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        let merged = dir.join("merged");
        mount::unmount(&merged, &dir).map_err(StorageError::io("unmounting", &merged))?;
        fault::point("overlay:unmounted");
        // Only the container's own directory goes: its upper directory holds what it
        // wrote, the layers stay for prune.
        match remove_tree(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("removing", &dir)(e)),
        }
    }

    fn prune(&self, keep: &[Digest]) -> Result<Vec<Digest>, StorageError> {
        let mut needed: Vec<Digest> = Vec::new();
        let mut removed = Vec::new();
        let chains = self.root.join(CHAINS);
        for ent in fs::read_dir(&chains).map_err(StorageError::io("reading", &chains))? {
            let ent = ent.map_err(StorageError::io("reading", &chains))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Ok(d) = format!("sha256:{name}").parse::<Digest>() else {
                // Interrupted atomic writes of a chain file.
                if name.starts_with('.') && old(&ent.path()) {
                    fs::remove_file(ent.path())
                        .map_err(StorageError::io("removing", ent.path()))?;
                }
                continue;
            };
            if keep.contains(&d) {
                needed.extend(read_ids(&ent.path())?);
            } else {
                fs::remove_file(ent.path()).map_err(StorageError::io("removing", ent.path()))?;
                removed.push(d);
            }
        }
        // Containers need the layers their mount was made from, whatever became of the
        // image. One without a `lower` file crashed before its mount.
        let containers = self.root.join(CONTAINERS);
        for ent in fs::read_dir(&containers).map_err(StorageError::io("reading", &containers))? {
            let ent = ent.map_err(StorageError::io("reading", &containers))?;
            let lower = ent.path().join(LOWER_FILE);
            match read_ids(&lower) {
                Ok(ids) => needed.extend(ids),
                // Not made yet (a crash before the mount), or going: a `delete` runs
                // without the storage lock.
                Err(StorageError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let layers = self.root.join(LAYERS);
        for ent in fs::read_dir(&layers).map_err(StorageError::io("reading", &layers))? {
            let ent = ent.map_err(StorageError::io("reading", &layers))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            // An unpack a crash interrupted (a live one holds the lock), or a layer
            // whose removal was.
            if remove_if_abandoned(&ent.path(), &name)? {
                continue;
            }
            let Ok(d) = format!("sha256:{name}").parse::<Digest>() else {
                continue;
            };
            if needed.contains(&d) {
                continue;
            }
            remove_renamed(&ent.path(), &name, "overlay:layer-renamed")?;
        }
        Ok(removed)
    }
}
