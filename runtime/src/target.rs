//! The kernel a container is planned for, as a value. Planning code (the process's rlimits,
//! which `linux.resources` fields are enforced, what is warned about) takes a [`Target`]
//! instead of asking `cfg!` about the machine it was built on, so the FreeBSD plan is
//! computed, and golden-tested, with FreeBSD's tables on any host. The running backend
//! names its own target (`platform::Platform::TARGET`).

/// A kernel stockade can plan a container for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// FreeBSD jails.
    FreeBsd,
    /// Linux namespaces and cgroups.
    Linux,
}

/// (spec name, resource number) of Linux's resource limits (include/uapi/asm-generic/
/// resource.h; the numbers x86, arm and riscv share).
const LINUX_RLIMITS: &[(&str, i32)] = &[
    ("RLIMIT_AS", 9),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_CPU", 0),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_STACK", 3),
];

/// (spec name, resource number) of FreeBSD's resource limits (sys/sys/resource.h of
/// FreeBSD 14). RLIMIT_AS is FreeBSD's RLIMIT_VMEM.
const FREEBSD_RLIMITS: &[(&str, i32)] = &[
    ("RLIMIT_AS", 10),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_CPU", 0),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_KQUEUES", 13),
    ("RLIMIT_MEMLOCK", 6),
    ("RLIMIT_NOFILE", 8),
    ("RLIMIT_NPROC", 7),
    ("RLIMIT_NPTS", 11),
    ("RLIMIT_PIPEBUF", 15),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_SBSIZE", 9),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_SWAP", 12),
    ("RLIMIT_UMTXP", 14),
    ("RLIMIT_VMEM", 10),
];

impl Target {
    /// The kernel's name, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Target::FreeBsd => "FreeBSD",
            Target::Linux => "Linux",
        }
    }

    /// The resource limits `process.rlimits` may name on this kernel, with their numbers.
    pub const fn rlimits(self) -> &'static [(&'static str, i32)] {
        match self {
            Target::FreeBsd => FREEBSD_RLIMITS,
            Target::Linux => LINUX_RLIMITS,
        }
    }

    /// The resource number of the limit the spec calls `name`, if this kernel has it.
    pub fn rlimit(self, name: &str) -> Option<i32> {
        self.rlimits()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, number)| number)
    }

    /// Whether `linux.resources` is enforced as cgroups (everything stockade keeps) rather
    /// than as rctl(8) rules (memory, swap, processes, CPU bandwidth only).
    pub const fn has_cgroups(self) -> bool {
        matches!(self, Target::Linux)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    // The tables are data, so that either target is planned on any host; on the host they
    // describe they must agree with the C library's numbers.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_linux_table_matches_the_hosts_numbers() {
        let libc_numbers = [
            ("RLIMIT_AS", libc::RLIMIT_AS),
            ("RLIMIT_CORE", libc::RLIMIT_CORE),
            ("RLIMIT_CPU", libc::RLIMIT_CPU),
            ("RLIMIT_DATA", libc::RLIMIT_DATA),
            ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
            ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
            ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
            ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
            ("RLIMIT_NICE", libc::RLIMIT_NICE),
            ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
            ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
            ("RLIMIT_RSS", libc::RLIMIT_RSS),
            ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
            ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
            ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
            ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ];
        assert_eq!(Target::Linux.rlimits().len(), libc_numbers.len());
        for (name, number) in libc_numbers {
            assert_eq!(Target::Linux.rlimit(name), Some(number as i32), "{name}");
        }
    }

    #[cfg(target_os = "freebsd")]
    #[test]
    fn the_freebsd_table_matches_the_hosts_numbers() {
        for (name, number) in [
            ("RLIMIT_AS", libc::RLIMIT_AS),
            ("RLIMIT_CORE", libc::RLIMIT_CORE),
            ("RLIMIT_CPU", libc::RLIMIT_CPU),
            ("RLIMIT_DATA", libc::RLIMIT_DATA),
            ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
            ("RLIMIT_KQUEUES", libc::RLIMIT_KQUEUES),
            ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
            ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
            ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
            ("RLIMIT_NPTS", libc::RLIMIT_NPTS),
            ("RLIMIT_RSS", libc::RLIMIT_RSS),
            ("RLIMIT_SBSIZE", libc::RLIMIT_SBSIZE),
            ("RLIMIT_STACK", libc::RLIMIT_STACK),
            ("RLIMIT_SWAP", libc::RLIMIT_SWAP),
            ("RLIMIT_UMTXP", libc::RLIMIT_UMTXP),
            ("RLIMIT_VMEM", libc::RLIMIT_VMEM),
        ] {
            assert_eq!(Target::FreeBsd.rlimit(name), Some(number), "{name}");
        }
    }

    #[test]
    fn each_target_has_its_own_limits() {
        // FreeBSD's swap limit and Linux's real-time priority exist on one kernel only,
        // whatever machine plans them.
        assert_eq!(Target::FreeBsd.rlimit("RLIMIT_SWAP"), Some(12));
        assert_eq!(Target::Linux.rlimit("RLIMIT_SWAP"), None);
        assert_eq!(Target::Linux.rlimit("RLIMIT_RTPRIO"), Some(14));
        assert_eq!(Target::FreeBsd.rlimit("RLIMIT_RTPRIO"), None);
        // Same name, different number.
        assert_eq!(Target::Linux.rlimit("RLIMIT_NOFILE"), Some(7));
        assert_eq!(Target::FreeBsd.rlimit("RLIMIT_NOFILE"), Some(8));
    }
}
