//! `push`: an image of the store into a registry repository — its blobs (in parallel,
//! mounted from the source repository when it is on the same registry), then the manifests
//! an index points to by digest, then the top manifest or index by the destination's tag.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::client::{Client, ClientOptions};
use super::progress::Progress;
use super::upload::{Sent, DEFAULT_CHUNK_SIZE};
use super::RegistryError;
use crate::oci::manifest::{Descriptor, Parsed};
use crate::oci::reference::Reference;
use crate::store::Store;

/// What `push` needs besides the image and the destination.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub client: ClientOptions,
    /// Blobs uploaded at once (at least 1).
    pub jobs: usize,
    /// Draw progress bars (only happens when stderr is a terminal).
    pub progress: bool,
    /// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
    pub chunk_size: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            client: ClientOptions::default(),
            jobs: 3,
            progress: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// Where the image went (the destination reference, canonical).
    pub destination: String,
    /// The pushed manifest's (or index's) descriptor; its digest is the same as in the store.
    pub descriptor: Descriptor,
    /// Blobs uploaded, and their total size.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Blobs the registry linked from the source repository.
    pub mounted: usize,
    /// Blobs the repository had already.
    pub existed: usize,
}

/// Pushes the stored image `source` (a name or digest the store resolves) to `dest`.
/// Manifests go up exactly as stored, so the registry's digest is the store's.
pub fn push(
    store: &Store,
    source: &str,
    dest: &Reference,
    opts: &PushOptions,
) -> Result<PushReport, RegistryError> {
    // Shared: keeps prune from removing blobs while they are read.
    let _reader = store.writer_lock()?;
    let image = store.resolve(source)?;
    let top = image.descriptor.clone();
    if let Some(pinned) = dest.digest().filter(|d| **d != top.digest) {
        return Err(RegistryError::PinnedDigest {
            source_name: image.name.clone(),
            destination: dest.to_string(),
            pinned: pinned.clone(),
            actual: top.digest.clone(),
        });
    }

    // The manifests to put (children of an index first, each by digest) and their blobs.
    let (top_bytes, parsed) = store.read_manifest(&top)?;
    let mut children: Vec<(Descriptor, Vec<u8>)> = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add_blobs = |m: &crate::oci::manifest::Manifest, blobs: &mut Vec<Descriptor>| {
        for d in std::iter::once(&m.config).chain(&m.layers) {
            if seen.insert(d.digest.clone()) {
                blobs.push(d.clone());
            }
        }
    };
    match &parsed {
        Parsed::Image(m) => add_blobs(m, &mut blobs),
        Parsed::Index(index) => {
            for entry in &index.manifests {
                let (bytes, child) = store.read_manifest(entry)?;
                let Parsed::Image(m) = child else {
                    return Err(RegistryError::NestedIndex {
                        reference: format!("{} ({})", image.name, entry.digest),
                    });
                };
                add_blobs(&m, &mut blobs);
                children.push((entry.clone(), bytes));
            }
        }
    }

    // Mount only from another repository of the same registry: elsewhere the registry
    // would have to fetch it, which the distribution API does not offer.
    let mount_from = image
        .name
        .parse::<Reference>()
        .ok()
        .filter(|r| r.registry() == dest.registry() && r.repository() != dest.repository())
        .map(|r| r.repository().to_string());
    let client = Client::for_push(dest, opts.client.clone(), mount_from.clone());

    blobs.sort_by_key(|d| std::cmp::Reverse(d.size));
    let sent = upload_all(store, &client, &blobs, mount_from.as_deref(), opts)?;
    stockade_fault::point("push:blobs-sent");

    for (entry, bytes) in &children {
        client.put_manifest(
            &entry.digest.to_string(),
            bytes,
            &entry.media_type,
            &entry.digest,
        )?;
    }
    client.put_manifest(
        &dest.manifest_ref(),
        &top_bytes,
        &top.media_type,
        &top.digest,
    )?;

    let count = |kind: Sent| sent.iter().filter(|(_, s)| *s == kind).count();
    let mut descriptor = Descriptor::new(&top.media_type, top.digest.clone(), top.size);
    descriptor.platform = top.platform.clone();
    Ok(PushReport {
        destination: dest.to_string(),
        descriptor,
        uploaded: count(Sent::Uploaded),
        uploaded_bytes: sent
            .iter()
            .filter(|(_, s)| *s == Sent::Uploaded)
            .map(|(d, _)| d.size)
            .sum(),
        mounted: count(Sent::Mounted),
        existed: count(Sent::Existed),
    })
}

/// How many times a blob upload is attempted before the push gives up.
pub const PUSH_ATTEMPTS: u32 = 3;

/// Whether trying the upload again (with a new session) may help: the connection failed,
/// or the registry was overloaded or broke.
fn transient(e: &RegistryError) -> bool {
    match e {
        RegistryError::Http { .. } => true,
        RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// One blob, started over in a new upload session after a transient failure, up to
/// [`PUSH_ATTEMPTS`] times. A blob the store cannot vouch for is never retried.
fn put_with_retries(
    client: &Client,
    store: &Store,
    desc: &Descriptor,
    mount_from: Option<&str>,
    opts: &PushOptions,
    progress: &dyn Fn(u64),
) -> Result<Sent, RegistryError> {
    let mut attempt = 1;
    loop {
        match client.put_blob(store, desc, mount_from, opts.chunk_size, progress) {
            Err(e) if transient(&e) && attempt < PUSH_ATTEMPTS => {
                progress(0);
                std::thread::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Puts `blobs` with up to `opts.jobs` threads; the first failure stops the others from
/// starting new blobs and is the error returned.
fn upload_all(
    store: &Store,
    client: &Client,
    blobs: &[Descriptor],
    mount_from: Option<&str>,
    opts: &PushOptions,
) -> Result<Vec<(Descriptor, Sent)>, RegistryError> {
    let progress = Progress::new(opts.progress);
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let results: Mutex<Vec<(Descriptor, Sent)>> = Mutex::new(Vec::new());
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
                match put_with_retries(client, store, desc, mount_from, opts, &|n| bar.set(n)) {
                    Ok(kind) => {
                        bar.finish(match kind {
                            Sent::Existed => "exists",
                            Sent::Mounted => "mounted",
                            Sent::Uploaded => "pushed",
                        });
                        if let Ok(mut r) = results.lock() {
                            r.push((desc.clone(), kind));
                        }
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
    let errs = errors
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(e) = errs.into_iter().next() {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner()))
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
