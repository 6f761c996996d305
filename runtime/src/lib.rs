//! stockade's runtime library: an OCI bundle's configuration, its translation into a
//! FreeBSD jail, and the container lifecycle on FreeBSD jails or Linux namespaces.

pub mod config;
pub mod container;
pub mod explain;
pub mod features;
pub mod hooks;
pub mod id;
pub mod init;
pub mod jail;
pub mod limits;
pub mod mounts;
pub mod platform;
pub mod process;
pub mod state;
pub mod target;
