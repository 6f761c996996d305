//! Names provisioning invents: the storage name of a bundle's root filesystem and the id
//! of an unnamed `run --image` container.

use std::path::Path;

use super::{io, ProvisionError};
use crate::oci::digest::Digest;

/// A storage name for the root filesystem of bundle directory `dir`: its last component
/// made name-safe, plus a hash of its absolute path so that two `bundle` directories of
/// the same name do not share one.
pub fn bundle_name(dir: &Path) -> Result<String, ProvisionError> {
    let abs = std::path::absolute(dir).map_err(io("bundle directory", dir))?;
    let base: String = abs
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let hash = Digest::sha256_of(abs.as_os_str().as_encoded_bytes());
    Ok(format!("bundle-{base}-{}", &hash.hex()[..12]))
}

/// A container id for an unnamed run: unique per process and moment.
pub fn generated_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{now}-{}", std::process::id());
    let d = Digest::sha256_of(seed.as_bytes());
    format!("stockade-{}", &d.hex()[..12])
}
