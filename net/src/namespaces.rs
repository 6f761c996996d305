//! The seam between attaching (records, CNI, hosts files) and the kernel's network
//! namespaces. Each backend is a value of [`Namespaces`]: Linux binds namespaces on files
//! ([`crate::netns`]); FreeBSD's vnet jails are planned ([`crate::freebsd`]) but not
//! executed, so its backend refuses before anything exists. The backend of the running
//! system is chosen once, in [`host`]; everything else asks the value, not the build's
//! `cfg`, so the refusal path is tested on every host.

use std::path::{Path, PathBuf};

use crate::NetError;

/// A kernel's network namespaces, as [`crate::attach`] uses them.
pub trait Namespaces: Sync {
    /// Refuses, before anything is made, when container networks are not executed here.
    fn check(&self) -> Result<(), NetError>;
    /// The namespace file of container `id` of the storage root keyed `root_key`.
    fn path(&self, root_key: &str, id: &str) -> PathBuf;
    /// Whether a namespace is bound on `path`.
    fn is_bound(&self, path: &Path) -> bool;
    /// Makes a namespace bound on the new file `path`.
    fn create(&self, path: &Path) -> Result<(), NetError>;
    /// Unbinds and removes `path`; one already gone is fine.
    fn remove(&self, path: &Path) -> Result<(), NetError>;
}

/// Linux: namespaces bound on files under [`crate::netns::NETNS_DIR`].
#[cfg(target_os = "linux")]
pub struct LinuxNetns;

#[cfg(target_os = "linux")]
impl Namespaces for LinuxNetns {
    fn check(&self) -> Result<(), NetError> {
        Ok(())
    }
    fn path(&self, root_key: &str, id: &str) -> PathBuf {
        crate::netns::netns_path(root_key, id)
    }
    fn is_bound(&self, path: &Path) -> bool {
        crate::netns::is_bound(path)
    }
    fn create(&self, path: &Path) -> Result<(), NetError> {
        crate::netns::create(path)
    }
    fn remove(&self, path: &Path) -> Result<(), NetError> {
        crate::netns::remove(path)
    }
}

/// A system whose container networks are planned but not executed (FreeBSD's vnet
/// jails): [`Namespaces::check`] refuses, so nothing is made; a record written elsewhere
/// names no namespace of this host, so its teardown has none to remove.
pub struct NotExecuted;

impl Namespaces for NotExecuted {
    fn check(&self) -> Result<(), NetError> {
        Err(NetError::NotExecutedHere)
    }
    fn path(&self, _root_key: &str, id: &str) -> PathBuf {
        PathBuf::from(id)
    }
    fn is_bound(&self, _: &Path) -> bool {
        false
    }
    fn create(&self, _: &Path) -> Result<(), NetError> {
        Err(NetError::NotExecutedHere)
    }
    fn remove(&self, _: &Path) -> Result<(), NetError> {
        Ok(())
    }
}

/// The backend of the system this binary runs on (the one place the build target decides).
pub fn host() -> &'static dyn Namespaces {
    #[cfg(target_os = "linux")]
    {
        &LinuxNetns
    }
    #[cfg(not(target_os = "linux"))]
    {
        &NotExecuted
    }
}
