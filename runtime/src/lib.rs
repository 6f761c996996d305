//! stockade's runtime library: an OCI bundle's configuration, its translation into a
//! FreeBSD jail, and the container lifecycle on FreeBSD jails or Linux namespaces.

pub mod config;
pub mod explain;
pub mod id;
pub mod jail;
