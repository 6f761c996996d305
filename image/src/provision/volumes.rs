//! The volumes of a `run --image` container: named volumes are directories
//! `<storage>/volumes/NAME`, made on first use and kept until removed by hand; the image's
//! own `Volumes` become anonymous volumes, as Podman makes them, which here are directories
//! in the container's bundle (`<storage>/bundles/<id>/volumes/N`) and so go with it.
//! Anonymous volumes start empty: unlike Podman, the image's content at that path is not
//! copied into them.

use std::fs;
use std::path::{Path, PathBuf};

use super::{io, ProvisionError};
use crate::bundle::run::{check_destination, check_volume_name};
use crate::bundle::{BundleError, MountRequest, MountSource, ResolvedImage, RunOverrides};

/// Where named volumes are, under the storage root.
pub const VOLUMES_DIR: &str = "volumes";

/// The directory of named volume `name` under `storage_root`.
pub fn volume_path(storage_root: &Path, name: &str) -> Result<PathBuf, ProvisionError> {
    check_volume_name(name).map_err(|reason| {
        ProvisionError::Bundle(BundleError::Mount {
            destination: name.to_string(),
            reason,
        })
    })?;
    Ok(storage_root.join(VOLUMES_DIR).join(name))
}

fn mount_error(m: &MountRequest, reason: String) -> ProvisionError {
    ProvisionError::Bundle(BundleError::Mount {
        destination: m.destination.clone(),
        reason,
    })
}

/// Makes named volume `name` when it is missing; refuses what is there but not a directory
/// of ours (a symlink, a file).
fn ensure_volume(storage_root: &Path, name: &str) -> Result<PathBuf, ProvisionError> {
    let path = volume_path(storage_root, name)?;
    let parent = storage_root.join(VOLUMES_DIR);
    fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
    match fs::create_dir(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("creating volume", &path)(e)),
    }
    let meta = fs::symlink_metadata(&path).map_err(io("inspecting volume", &path))?;
    if !meta.is_dir() {
        return Err(ProvisionError::Io {
            op: "volume is not a directory:",
            path,
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    }
    Ok(path)
}

/// Turns every named volume of `run` into its directory (made on first use), checks that
/// host paths exist, and adds an anonymous volume under `anon_dir` for each of the image's
/// Volumes that no mount of the caller covers.
pub(super) fn resolve(
    storage_root: &Path,
    image: &ResolvedImage,
    run: &mut RunOverrides,
    anon_dir: &Path,
) -> Result<(), ProvisionError> {
    for m in &mut run.mounts {
        check_destination(&m.destination).map_err(|r| mount_error(m, r))?;
        match &m.source {
            MountSource::Volume(name) => {
                m.source = MountSource::Host(ensure_volume(storage_root, name)?);
            }
            MountSource::Host(p) => {
                if let Err(e) = fs::metadata(p) {
                    return Err(mount_error(
                        m,
                        format!("source {}: {e}", stockade_quote::quote_os(p.as_os_str())),
                    ));
                }
            }
            MountSource::Tmpfs => {}
        }
    }
    let declared: Vec<String> = image
        .config
        .config
        .as_ref()
        .and_then(|c| c.volumes.as_ref())
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    for (i, dest) in declared.iter().enumerate() {
        if run.mounts_at(dest) {
            continue;
        }
        // The image is not trusted: a Volumes entry like "/../etc" is refused.
        check_destination(dest).map_err(|reason| {
            ProvisionError::Bundle(BundleError::Mount {
                destination: dest.clone(),
                reason: format!("the image's Volumes entry {reason}"),
            })
        })?;
        let dir = anon_dir.join(i.to_string());
        fs::create_dir_all(&dir).map_err(io("creating anonymous volume", &dir))?;
        run.mounts.push(MountRequest {
            source: MountSource::Host(dir),
            destination: dest.clone(),
            readonly: false,
            options: Vec::new(),
        });
    }
    Ok(())
}
