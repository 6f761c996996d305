//! Where a service's files are under the storage root: its bundle, and in it the service
//! directory the monitor keeps. A module of its own so that the service commands
//! (`monitor`, `stop`, `rm`, `inspect`, `start`) share it without importing each other.

use std::path::{Path, PathBuf};

use stockade_image::provision::BUNDLES_DIR;
use stockade_monitor::record::ServiceDir;

/// The bundle directory of container `id`.
pub fn bundle_dir(storage_root: &Path, id: &str) -> PathBuf {
    storage_root.join(BUNDLES_DIR).join(id)
}

/// The service directory of container `id` under `storage_root`.
pub fn service_dir(storage_root: &Path, id: &str) -> ServiceDir {
    ServiceDir::in_bundle(&bundle_dir(storage_root, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_directory_is_in_the_bundle() {
        let d = service_dir(Path::new("/st"), "web");
        assert_eq!(d.path(), Path::new("/st/bundles/web/service"));
    }
}
