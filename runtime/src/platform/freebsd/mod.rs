//! The FreeBSD backend: the executor ([`executor`]) carries out the steps of
//! `platform::freebsd_plan` through the kernel seam ([`kernel::Kernel`]). On FreeBSD the
//! seam is the real kernel (`host`, calling `sys`, the backend's only `unsafe`); on every
//! host it can be the model ([`model::ModelKernel`]), which enforces the FreeBSD source's
//! rules, so the executor is run and fault-tested everywhere. docs/freebsd-backend.md
//! describes the whole sequence.

pub mod executor;
pub mod kernel;
pub mod model;
pub mod racct;

#[cfg(target_os = "freebsd")]
pub mod beneath;
#[cfg(target_os = "freebsd")]
mod host;
#[cfg(test)]
mod pod_tests;
#[cfg(target_os = "freebsd")]
pub mod procs;
#[cfg(target_os = "freebsd")]
pub mod pty;
#[cfg(target_os = "freebsd")]
mod sys;
#[cfg(test)]
mod tests;

#[cfg(target_os = "freebsd")]
pub use host::{rlimit_name, set_rlimit, usage, FreeBsd};

/// The host-specific part of `stockade features` on FreeBSD: nothing to add. Everything
/// the jail backend supports is in the `freebsd` object, which does not depend on the
/// host and is listed by every build (`crate::features`).
#[cfg(target_os = "freebsd")]
pub fn host_features(_doc: &mut serde_json::Value) {}
