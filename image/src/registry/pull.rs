//! `pull`: resolve a reference to one platform's manifest, download its blobs in parallel
//! into the store, then name it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::client::{Client, ClientOptions};
use super::RegistryError;
use crate::oci::manifest::{self, ConfigSummary, Descriptor, Parsed};
use crate::oci::media;
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::oci::select;
use crate::registry::progress::Progress;
use crate::store::Store;

/// What `pull` needs besides the reference.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub client: ClientOptions,
    /// The platform to select from an index.
    pub platform: Platform,
    /// Whether the platform was asked for (`--platform`) rather than defaulted: an explicit
    /// platform must also match a single-platform image's config.
    pub platform_explicit: bool,
    /// Blobs downloaded at once (at least 1).
    pub jobs: usize,
    /// Draw progress bars (only happens when stderr is a terminal).
    pub progress: bool,
    /// Mirrors of the registry, tried in order before it (see [`super::mirrors`]).
    pub mirrors: Vec<Mirror>,
}

/// One mirror to try: the reference as the mirror names it, and how to connect to it (its
/// own credentials: the registry's are never sent to a mirror).
#[derive(Debug, Clone)]
pub struct Mirror {
    pub reference: Reference,
    pub client: ClientOptions,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The name the image got in the store.
    pub name: String,
    /// The stored manifest's descriptor.
    pub descriptor: Descriptor,
    /// Blobs downloaded, and their total size.
    pub fetched: usize,
    pub fetched_bytes: u64,
    /// Blobs that were already in the store.
    pub reused: usize,
    /// Set when the image is single-platform and not for the platform that was defaulted.
    pub platform_mismatch: Option<Platform>,
}

/// Pulls `reference` into `store` and names it with the reference's canonical form. Each
/// mirror is tried first, in order; a mirror's failure is logged and the next one tried,
/// and the registry itself is the last resort (its error is the one returned).
pub fn pull(
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
) -> Result<PullReport, RegistryError> {
    let name = reference.to_string();
    for mirror in &opts.mirrors {
        let client = Client::new(&mirror.reference, mirror.client.clone());
        match pull_from(store, &client, &mirror.reference, &name, opts) {
            Ok(report) => {
                tracing::debug!("pulled {name} from mirror {}", mirror.reference.registry());
                return Ok(report);
            }
            Err(e) => tracing::warn!(
                "mirror {} failed for {name}, trying the next source: {e}",
                mirror.reference.registry()
            ),
        }
    }
    let client = Client::new(reference, opts.client.clone());
    pull_from(store, &client, reference, &name, opts)
}

/// Pulls `reference` through `client` and names the image `name` in the store.
fn pull_from(
    store: &Store,
    client: &Client,
    reference: &Reference,
    name: &str,
    opts: &PullOptions,
) -> Result<PullReport, RegistryError> {
    let what = name.to_string();
    // Shared: prune waits for us, other pulls do not.
    let _writer = store.writer_lock()?;

    let top = client.manifest(&reference.manifest_ref(), &what)?;
    let (fetched_manifest, manifest, mut platform) =
        match manifest::parse(&top.bytes, top.content_type.as_deref(), &what)? {
            Parsed::Image(m) => (top, m, None),
            Parsed::Index(index) => {
                let entry =
                    select::entry_for(&index.manifests, &opts.platform).map_err(|offered| {
                        RegistryError::Platform {
                            reference: what.clone(),
                            wanted: opts.platform.to_string(),
                            offered,
                        }
                    })?;
                let child_what = format!("{what} ({})", entry.digest);
                let child = client.manifest(&entry.digest.to_string(), &child_what)?;
                if child.bytes.len() as u64 != entry.size {
                    return Err(RegistryError::ManifestSize {
                        reference: child_what,
                        expected: entry.size,
                        actual: child.bytes.len() as u64,
                    });
                }
                let parsed = manifest::parse(&child.bytes, Some(&entry.media_type), &child_what)?;
                let Parsed::Image(m) = parsed else {
                    return Err(RegistryError::NestedIndex {
                        reference: child_what,
                    });
                };
                let platform = entry.platform.clone();
                let child = super::client::FetchedManifest {
                    content_type: Some(entry.media_type.clone()),
                    ..child
                };
                (child, m, platform)
            }
        };

    // Config first in the list only for readability; the largest blobs start first so the
    // last one to finish is not a big one started late.
    let mut seen = BTreeSet::new();
    let mut wanted: Vec<Descriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .filter(|d| seen.insert(d.digest.clone()))
        .cloned()
        .collect();
    let before = wanted.len();
    wanted.retain(|d| store.blob_size(&d.digest) != Some(d.size));
    let reused = before - wanted.len();
    tracing::debug!(
        "pull {what}: manifest {}, {} blobs to fetch, {reused} already stored",
        fetched_manifest.digest,
        wanted.len()
    );
    wanted.sort_by_key(|d| std::cmp::Reverse(d.size));
    download_all(store, client, &wanted, opts)?;
    stockade_fault::point("pull:blobs-fetched");

    let mut platform_mismatch = None;
    if platform.is_none() {
        let config: ConfigSummary =
            serde_json::from_slice(&store.read_small_blob(&manifest.config.digest)?)
                .unwrap_or_default();
        if !config.os.is_empty() {
            let p = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
            if !opts.platform.matches(&p) {
                if opts.platform_explicit {
                    return Err(RegistryError::PlatformMismatch {
                        reference: what,
                        wanted: opts.platform.to_string(),
                        actual: p.to_string(),
                    });
                }
                platform_mismatch = Some(p.clone());
            }
            platform = Some(p);
        }
    }

    let media_type = manifest
        .media_type
        .clone()
        .or(fetched_manifest.content_type.clone())
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    let size = fetched_manifest.bytes.len() as u64;
    store.put_bytes(
        &fetched_manifest.bytes,
        Some((&fetched_manifest.digest, size)),
    )?;
    stockade_fault::point("pull:manifest-stored");
    let mut descriptor = Descriptor::new(&media_type, fetched_manifest.digest.clone(), size);
    descriptor.platform = platform;
    store.set_ref(&what, &descriptor)?;
    Ok(PullReport {
        name: what,
        descriptor,
        fetched: wanted.len(),
        fetched_bytes: wanted.iter().map(|d| d.size).sum(),
        reused,
        platform_mismatch,
    })
}

/// Downloads `blobs` with up to `opts.jobs` threads. The first failure stops the others
/// (between reads) and is the error returned.
fn download_all(
    store: &Store,
    client: &Client,
    blobs: &[Descriptor],
    opts: &PullOptions,
) -> Result<(), RegistryError> {
    let progress = Progress::new(opts.progress);
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let errors: Mutex<Vec<RegistryError>> = Mutex::new(Vec::new());
    let workers = opts.jobs.max(1).min(blobs.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= blobs.len() || abort.load(Ordering::Relaxed) {
                    break;
                }
                let desc = &blobs[i];
                let bar = progress.bar(desc.digest.short(), desc.size);
                let started = std::time::Instant::now();
                tracing::debug!("pull: blob {} ({} bytes)", desc.digest, desc.size);
                match client.fetch_blob(store, desc, &|n| bar.set(n), &abort) {
                    Ok(()) => {
                        tracing::debug!(
                            "pull: blob {} fetched and verified in {:.3} s",
                            desc.digest,
                            started.elapsed().as_secs_f64()
                        );
                        bar.finish("done")
                    }
                    Err(e) => {
                        bar.abandon();
                        abort.store(true, Ordering::Relaxed);
                        if let Ok(mut errs) = errors.lock() {
                            errs.push(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    let mut errs = errors
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Report the failure that caused the abort, not the downloads it cancelled.
    errs.sort_by_key(|e| matches!(e, RegistryError::Aborted));
    match errs.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
