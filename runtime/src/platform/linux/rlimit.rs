//! `process.rlimits` on Linux: setrlimit(2) by the resource number the plan chose.

use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};

/// Sets limit `resource` (a Linux RLIMIT_* number from the plan's table) of the calling
/// process; a number this kernel does not have is EINVAL, as the kernel would say.
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<(), Errno> {
    setrlimit(resource_of(resource).ok_or(Errno::EINVAL)?, soft, hard)
}

/// The spec name of limit `resource` (`RLIMIT_NOFILE`), for messages.
pub fn rlimit_name(resource: i32) -> String {
    match resource_of(resource) {
        Some(r) => format!("{r:?}"),
        None => format!("resource {resource}"),
    }
}

/// nix's name for the resource numbered `n`.
fn resource_of(n: i32) -> Option<Resource> {
    use nix::libc as l;
    let n = u32::try_from(n).ok()?;
    Some(match n {
        x if x == l::RLIMIT_AS => Resource::RLIMIT_AS,
        x if x == l::RLIMIT_CORE => Resource::RLIMIT_CORE,
        x if x == l::RLIMIT_CPU => Resource::RLIMIT_CPU,
        x if x == l::RLIMIT_DATA => Resource::RLIMIT_DATA,
        x if x == l::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        x if x == l::RLIMIT_LOCKS => Resource::RLIMIT_LOCKS,
        x if x == l::RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
        x if x == l::RLIMIT_MSGQUEUE => Resource::RLIMIT_MSGQUEUE,
        x if x == l::RLIMIT_NICE => Resource::RLIMIT_NICE,
        x if x == l::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        x if x == l::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        x if x == l::RLIMIT_RSS => Resource::RLIMIT_RSS,
        x if x == l::RLIMIT_RTPRIO => Resource::RLIMIT_RTPRIO,
        x if x == l::RLIMIT_RTTIME => Resource::RLIMIT_RTTIME,
        x if x == l::RLIMIT_SIGPENDING => Resource::RLIMIT_SIGPENDING,
        x if x == l::RLIMIT_STACK => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linux_limit_has_its_resource_and_others_are_einval() {
        assert_eq!(
            resource_of(nix::libc::RLIMIT_NOFILE as i32),
            Some(Resource::RLIMIT_NOFILE)
        );
        assert_eq!(resource_of(-1), None);
        assert_eq!(
            rlimit_name(nix::libc::RLIMIT_NOFILE as i32),
            "RLIMIT_NOFILE"
        );
        assert_eq!(rlimit_name(999), "resource 999");
        assert_eq!(set_rlimit(999, 1, 1), Err(Errno::EINVAL));
        // Lowering the soft limit to what it is is always allowed.
        let (soft, hard) = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(
            set_rlimit(nix::libc::RLIMIT_NOFILE as i32, soft, hard),
            Ok(())
        );
    }
}
