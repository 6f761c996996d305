//! Applying image layers to a directory.
//!
//! A layer is a tar (plain, gzip or zstd) whose entries are written below the target and
//! whose whiteouts (`.wh.NAME`, `.wh..wh..opq`) remove what lower layers wrote. Safety
//! comes from never resolving a path through the filesystem namespace: every directory is
//! reached from the target's descriptor one component at a time without following
//! symlinks (`fsops::Tree`), so no entry, whatever earlier entries or layers planted, can
//! touch anything outside the target. Absolute names and `..` are refused outright.
//!
//! Speed comes from doing less: a chain of layers is pre-scanned (decompressed once, in
//! parallel, its diffID checked before anything is written) so that no file an upper layer
//! removes or replaces is ever written; file contents go from the decompressed buffer
//! straight to `write(2)`; owners, modes and times are set only when creation did not
//! already give them; directory metadata is applied once, at the end.

mod apply;
mod compression;
mod error;
mod fflags;
mod fsops;
mod limits;
mod meta;
mod overlay;
mod parallel;
mod path;
mod pool;
mod scan;
mod sparse;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
mod tests_fflags;
#[cfg(test)]
mod tests_parallel;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

pub use compression::Compression;
pub use error::UnpackError;
pub use fflags::{parse as parse_file_flags, DeviceNodes, FileFlags, FlagsPolicy, UnknownFlag};
pub use limits::{BadSize, SizeLimit, UnpackLimits, AUTO_FLOOR, AUTO_RATIO};
pub use overlay::{Whiteouts, OPAQUE_XATTR};

use crate::oci::digest::{Digest, Hasher};
use crate::oci::magic::read_up_to;
use apply::LayerRun;
use compression::Prefetch;
use fflags::PendingFlags;
use fsops::Tree;
pub(crate) use limits::Budget;
use limits::Counted;
use meta::{DirMetas, Settings};
use scan::{check_diff_id, open_blob, scan, Scanned, Shadow};

/// One layer to apply: its blob on disk and what the image says about it.
#[derive(Debug, Clone)]
pub struct LayerSource {
    /// The blob's digest (the manifest's layer descriptor).
    pub digest: Digest,
    /// The descriptor's media type, which chooses the decompressor.
    pub media_type: String,
    /// Where the blob is.
    pub path: PathBuf,
    /// The image config's diffID for this layer: sha256 of the uncompressed tar.
    pub diff_id: Digest,
}

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Set recorded owners. Default: when running as root (others may not chown).
    pub same_owner: bool,
    /// How many bytes of decompressed layers a chain may keep in memory between the
    /// pre-scan and the write, instead of decompressing them again.
    pub memory_limit: usize,
    /// Bounds on what the image may make us write.
    pub limits: UnpackLimits,
    /// What to do with file flags. Default: this host's ([`FlagsPolicy::for_os`]).
    pub flags: FlagsPolicy,
    /// What to do with device nodes. Default: this host's ([`DeviceNodes::for_os`]).
    pub device_nodes: DeviceNodes,
    /// Carry whiteouts out (default), or keep them as overlayfs reads them.
    pub whiteouts: Whiteouts,
    /// Told of each layer once it is applied (a progress display); default none.
    pub on_layer: Option<LayerHook>,
    /// Threads that create a layer's regular files besides the one reading the tar
    /// (`pool`); 0 or 1 creates them all on the reading thread. Default: the CPUs, at most
    /// 4, or `STOCKADE_UNPACK_THREADS`.
    pub threads: usize,
}

/// What [`LayerHook`] calls: the layer's digest and its compressed size in bytes.
pub type LayerCallback = dyn Fn(&Digest, u64) + Send + Sync;

/// A callback told of each applied layer.
#[derive(Clone)]
pub struct LayerHook(pub Arc<LayerCallback>);

impl std::fmt::Debug for LayerHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerHook")
    }
}

/// The default of [`UnpackOptions::threads`].
fn default_threads() -> usize {
    if let Some(n) = std::env::var("STOCKADE_UNPACK_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return n.min(64);
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            same_owner: nix::unistd::geteuid().is_root(),
            memory_limit: 1 << 30,
            limits: UnpackLimits::default(),
            flags: FlagsPolicy::for_os(std::env::consts::OS),
            device_nodes: DeviceNodes::for_os(std::env::consts::OS),
            whiteouts: Whiteouts::Apply,
            on_layer: None,
            threads: default_threads(),
        }
    }
}

/// What an unpack did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files written.
    pub files: usize,
    /// Directory entries applied.
    pub dirs: usize,
    /// Symlinks made.
    pub symlinks: usize,
    /// Hard links made.
    pub hardlinks: usize,
    /// Device nodes and fifos made.
    pub devices: usize,
    /// Device nodes left out: for lack of privilege, or on FreeBSD, where only devfs
    /// reaches devices ([`DeviceNodes`]).
    pub devices_skipped: usize,
    /// Entries whose file flags (`SCHILY.fflags`) were set.
    pub flags_set: usize,
    /// Entries whose file flags were left out: the host has none (Linux), or the file
    /// system or the securelevel refused them.
    pub flags_skipped: usize,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: usize,
    /// Entries not written because an upper layer removes or replaces them.
    pub skipped: usize,
    /// Extended attributes the filesystem refused.
    pub xattrs_skipped: usize,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Hard links (link, target) whose target is not in the layer, left for the caller
    /// to make from the lower layers: only with [`Whiteouts::Overlay`], where a layer is
    /// unpacked into a directory of its own.
    pub lower_links: Vec<(PathBuf, PathBuf)>,
    /// Directories made only as the parents of entries, which the layer does not list
    /// (shallowest first): with [`Whiteouts::Overlay`] the caller gives them the metadata
    /// of the same directory in the lower layers, which the merged view would otherwise
    /// lose. Empty otherwise.
    pub implicit_dirs: Vec<PathBuf>,
}

/// The process umask, read once. Reading it means setting it, so this happens before any
/// thread of ours creates files, and is restored at once.
fn process_umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        use nix::sys::stat::{umask, Mode};
        let old = umask(Mode::from_bits_truncate(0o022));
        umask(old);
        // mode_t is u16 on FreeBSD and u32 on Linux.
        #[allow(clippy::useless_conversion)]
        u32::from(old.bits())
    })
}

/// Opens a layer blob with its decoder, after checking that its first bytes match the
/// media type. With a budget, the uncompressed bytes count against it (once per image:
/// a second decompression of a layer already counted passes none).
pub(crate) fn open_layer(
    layer: &LayerSource,
    budget: Option<&Arc<Budget>>,
) -> Result<Box<dyn Read + Send>, UnpackError> {
    let comp =
        Compression::from_media_type(&layer.media_type).ok_or_else(|| UnpackError::MediaType {
            layer: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        })?;
    let mut f = open_blob(layer)?;
    let mut head = [0u8; 6];
    let n = read_up_to(&mut f, &mut head).map_err(|source| UnpackError::Read {
        layer: layer.digest.clone(),
        source,
    })?;
    if n > 0 && !comp.matches(&head[..n]) {
        return Err(UnpackError::Magic {
            layer: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            found: Compression::sniff(&head[..n]),
        });
    }
    let raw = io::Cursor::new(head[..n].to_vec()).chain(f);
    let decoder = comp.decoder(raw).map_err(|source| UnpackError::Read {
        layer: layer.digest.clone(),
        source,
    })?;
    Ok(match budget {
        Some(b) => Box::new(Counted {
            inner: decoder,
            budget: Arc::clone(b),
            layer: layer.digest.clone(),
        }),
        None => decoder,
    })
}

/// A reader that hashes what passes through.
struct Hashing<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies `layers` (lowest first) to the directory `target`, which must exist. It may
/// already hold a tree (a parent layer's), which the layers are applied on top of.
///
/// On error the target is left partly written; callers unpack into a fresh directory
/// and discard it on failure. The bounds of `opts.limits` hold for these layers together.
pub fn unpack_layers(
    target: &Path,
    layers: &[LayerSource],
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let budget = budget_for(layers, &opts.limits)?;
    unpack_with_budget(target, layers, opts, &budget)
}

/// The shared bounds for an image's `layers` (the compressed size decides `auto`).
pub(crate) fn budget_for(
    layers: &[LayerSource],
    limits: &UnpackLimits,
) -> Result<Arc<Budget>, UnpackError> {
    let mut compressed = 0u64;
    for l in layers {
        let md = std::fs::metadata(&l.path).map_err(|source| UnpackError::Open {
            path: l.path.clone(),
            source,
        })?;
        compressed = compressed.saturating_add(md.len());
    }
    Ok(Budget::new(*limits, compressed))
}

/// [`unpack_layers`] against a budget shared with other calls: the zfs driver applies an
/// image one layer per call, and the bounds are per image.
pub(crate) fn unpack_with_budget(
    target: &Path,
    layers: &[LayerSource],
    opts: &UnpackOptions,
    budget: &Arc<Budget>,
) -> Result<UnpackStats, UnpackError> {
    unpack_inner(target, layers, opts, budget).map_err(|e| budget.explain(e))
}

fn unpack_inner(
    target: &Path,
    layers: &[LayerSource],
    opts: &UnpackOptions,
    budget: &Arc<Budget>,
) -> Result<UnpackStats, UnpackError> {
    let settings = Settings {
        same_owner: opts.same_owner,
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        umask: process_umask(),
    };
    let mut tree = Tree::open(target).map_err(|source| UnpackError::Open {
        path: target.to_path_buf(),
        source,
    })?;
    let mut stats = UnpackStats::default();
    let mut dirs = DirMetas::default();
    let mut flags = PendingFlags::default();
    let mut buf = vec![0u8; 1 << 18];

    // With one layer there is nothing to skip: stream it, decompressing ahead on a thread.
    let scanned: Vec<Scanned> = if layers.len() > 1 {
        scan_all(layers, opts.memory_limit, budget)?
    } else {
        Vec::new()
    };

    for (i, layer) in layers.iter().enumerate() {
        let shadow = if scanned.is_empty() {
            Shadow::none()
        } else {
            Shadow {
                uppers: scanned[i + 1..].iter().map(|s| &s.index).collect(),
                protected: scanned[i..].iter().map(|s| &s.index).collect(),
            }
        };
        let mut run = LayerRun {
            tree: &mut tree,
            settings: &settings,
            shadow: &shadow,
            dirs: &mut dirs,
            stats: &mut stats,
            layer: &layer.digest,
            budget,
            // A scanned chain was counted by the scan; a streamed layer is counted here.
            count_entries: scanned.is_empty(),
            written: Default::default(),
            buf: std::mem::take(&mut buf),
            flags: &mut flags,
            flag_policy: opts.flags,
            device_nodes: opts.device_nodes,
            whiteouts: opts.whiteouts,
        };
        let before = (run.stats.devices_skipped, run.stats.flags_skipped);
        let started = std::time::Instant::now();
        let entries_before = entry_count(run.stats);
        let read_err = |source| UnpackError::Read {
            layer: layer.digest.clone(),
            source,
        };
        match scanned.get(i).and_then(|s| s.data.as_deref()) {
            Some(data) => {
                // Already verified by the scan; the seekable reader skips unwritten
                // contents without copying them.
                let mut ar = tar::Archive::new(io::Cursor::new(data));
                let entries = ar.entries_with_seek().map_err(read_err)?;
                with_pool(opts.threads, &settings, |pool| {
                    run.run(entries, Some(data), pool)
                })?;
            }
            None => {
                let mut reader = Hashing {
                    // Counted only when not scanned: the scan counted the bytes already.
                    inner: Prefetch::spawn(open_layer(
                        layer,
                        scanned.is_empty().then_some(budget),
                    )?),
                    hasher: Hasher::new(layer.diff_id.algorithm()),
                };
                {
                    let mut ar = tar::Archive::new(&mut reader);
                    let entries = ar.entries().map_err(read_err)?;
                    with_pool(opts.threads, &settings, |pool| run.run(entries, None, pool))?;
                }
                io::copy(&mut reader, &mut io::sink()).map_err(read_err)?;
                check_diff_id(layer, reader.hasher.finish())?;
            }
        }
        buf = std::mem::take(&mut run.buf);
        let compressed = std::fs::metadata(&layer.path).map_or(0, |m| m.len());
        tracing::debug!(
            "unpack: layer {}/{} {} ({compressed} bytes compressed): {} entries in {:.3} s",
            i + 1,
            layers.len(),
            layer.digest,
            entry_count(&stats) - entries_before,
            started.elapsed().as_secs_f64()
        );
        if let Some(hook) = &opts.on_layer {
            (hook.0)(&layer.digest, compressed);
        }
        warn_per_layer(&layer.digest, before, &stats, opts);
    }
    if opts.whiteouts == Whiteouts::Overlay {
        let mut implicit: Vec<PathBuf> = std::mem::take(&mut tree.made)
            .into_iter()
            .filter(|p| !dirs.0.contains_key(p))
            .collect();
        implicit.sort_by_key(|p| p.components().count());
        stats.implicit_dirs = implicit;
    }
    let top = layers.last().map(|l| l.digest.clone());
    dirs.apply(&mut tree, &settings, &mut stats)
        .map_err(|(entry, e)| match &top {
            Some(d) => e.into_unpack(d, &entry),
            None => UnpackError::Open {
                path: target.join(entry),
                source: io::Error::other("directory metadata"),
            },
        })?;
    if let Some(top) = &top {
        let skipped = stats.flags_skipped;
        set_flags(&mut tree, &flags, &mut stats)
            .map_err(|(entry, e)| e.into_unpack(top, &entry))?;
        if stats.flags_skipped > skipped {
            tracing::warn!(
                "layer {top}: the file system refused the file flags of {} entries; they are left out",
                stats.flags_skipped - skipped
            );
        }
    }
    Ok(stats)
}

/// The entries applied so far (for the per-layer debug line).
fn entry_count(s: &UnpackStats) -> usize {
    s.files + s.dirs + s.symlinks + s.hardlinks + s.devices + s.whiteouts + s.skipped
}

/// Runs `f` with a pool of `threads` file-creating workers (none for 0 or 1), which are
/// stopped and joined before this returns.
fn with_pool<'d, T>(
    threads: usize,
    settings: &Settings,
    f: impl FnOnce(Option<&mut pool::Pool<'d>>) -> T,
) -> T {
    if threads <= 1 {
        return f(None);
    }
    std::thread::scope(|sc| {
        let mut pool = pool::Pool::start(sc, threads, settings);
        // Dropping the pool afterwards closes its queue: the workers end, the scope joins.
        f(Some(&mut pool))
    })
}

/// One warning per layer for what it carried that this host leaves out.
fn warn_per_layer(
    layer: &Digest,
    before: (usize, usize),
    stats: &UnpackStats,
    opts: &UnpackOptions,
) {
    let devices = stats.devices_skipped - before.0;
    if devices > 0 {
        let why = match opts.device_nodes {
            DeviceNodes::Skip => "this host reaches devices only through devfs",
            DeviceNodes::Make => "making device nodes needs privileges this process lacks",
        };
        tracing::warn!("layer {layer}: {devices} device nodes left out: {why}");
    }
    let flags = stats.flags_skipped - before.1;
    if flags > 0 {
        tracing::warn!(
            "layer {layer}: file flags (SCHILY.fflags) of {flags} entries left out: this host has no BSD file flags"
        );
    }
}

/// Sets the recorded file flags, deepest paths first, after everything else is written.
#[cfg(target_os = "freebsd")]
fn set_flags(
    tree: &mut Tree,
    flags: &PendingFlags,
    stats: &mut UnpackStats,
) -> Result<(), (String, error::EntryError)> {
    use nix::errno::Errno;
    for (rel, f) in flags.in_order() {
        let shown = || rel.to_string_lossy().into_owned();
        let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else {
            continue;
        };
        let dir = tree.dir(parent, false).map_err(|e| (shown(), e))?;
        match crate::sys::chflagsat(dir, name, f.0) {
            Ok(()) => stats.flags_set += 1,
            // Not kept where the file system has no flags (EOPNOTSUPP) or the kernel
            // refuses system flags (EPERM: securelevel > 0, or a jail without privilege).
            Err(e)
                if [Errno::EOPNOTSUPP, Errno::EINVAL, Errno::EPERM]
                    .iter()
                    .any(|x| e.raw_os_error() == Some(*x as i32)) =>
            {
                stats.flags_skipped += 1
            }
            Err(e) => return Err((shown(), error::EntryError::Fs("setting file flags", e))),
        }
    }
    Ok(())
}

/// No host but FreeBSD has the flags; [`FlagsPolicy::Skip`] never records any.
#[cfg(not(target_os = "freebsd"))]
fn set_flags(
    _tree: &mut Tree,
    flags: &PendingFlags,
    stats: &mut UnpackStats,
) -> Result<(), (String, error::EntryError)> {
    // A caller that asked to apply flags here is told they were not.
    stats.flags_skipped += flags.0.len();
    Ok(())
}

/// Scans every layer, as many at once as there are CPUs.
fn scan_all(
    layers: &[LayerSource],
    memory_limit: usize,
    budget: &Arc<Budget>,
) -> Result<Vec<Scanned>, UnpackError> {
    let memory = AtomicUsize::new(memory_limit);
    let width = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(1);
    let mut out = Vec::with_capacity(layers.len());
    for group in layers.chunks(width) {
        let results: Vec<Result<Scanned, UnpackError>> = std::thread::scope(|sc| {
            let handles: Vec<_> = group
                .iter()
                .map(|l| sc.spawn(|| scan(l, &memory, budget)))
                .collect();
            handles
                .into_iter()
                .zip(group)
                .map(|(h, l)| {
                    h.join().unwrap_or_else(|_| {
                        Err(UnpackError::Read {
                            layer: l.digest.clone(),
                            source: io::Error::other("the scan thread panicked"),
                        })
                    })
                })
                .collect()
        });
        // The entry bound is charged in layer order, so the layer it names does not depend
        // on which scan finished first.
        for (r, l) in results.into_iter().zip(group) {
            let scanned = r?;
            budget.charge_entries(&l.digest, scanned.entries)?;
            out.push(scanned);
        }
    }
    Ok(out)
}
