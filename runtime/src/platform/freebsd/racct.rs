//! A jail's resource usage as `rctl_get_racct(2)` reports it, typed. The kernel writes
//! `resource=amount` pairs separated by commas (kern_rctl.c `rctl_racct_to_sbuf`; amounts
//! of resources kept in millions, `pcpu` and `wallclock`, are divided back), one pair for
//! each of sys/sys/racct.h's resources. Pure, so it is tested on every host; the shim maps
//! it into the metrics containerd expects (docs/freebsd-backend.md, "Task metrics").

use nix::errno::Errno;
use stockade_quote::quote;

use super::kernel::Kernel;
use crate::platform::freebsd_plan::{rctl, FreeBsdMade};
use crate::platform::PlatformError;

/// The most text accepted from the kernel: the syscall's output buffer is 4 KiB and the
/// full list of 25 resources with 20-digit amounts is under 1 KiB.
pub const MAX_TEXT: usize = 16 * 1024;
/// The most pairs accepted (sys/sys/racct.h has 25 resources).
pub const MAX_PAIRS: usize = 64;
/// The longest resource name accepted (the longest today is `pseudoterminals`, 15).
pub const MAX_KEY: usize = 32;

/// Why an `rctl_get_racct` answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RacctError {
    #[error("rctl_get_racct returned {len} bytes; at most {MAX_TEXT} are read")]
    TooLong { len: usize },
    #[error("rctl_get_racct returned more than {MAX_PAIRS} resource=amount pairs")]
    TooManyPairs,
    #[error("rctl_get_racct returned {}: not a resource=amount pair", quote(.pair))]
    NotAPair { pair: String },
    #[error("rctl_get_racct returned resource name {}: not a lowercase word of at most {MAX_KEY} bytes", quote(.key))]
    BadKey { key: String },
    #[error("rctl_get_racct returned {} for {}: not an unsigned decimal amount", quote(.value), quote(.key))]
    BadAmount { key: String, value: String },
    #[error("rctl_get_racct returned resource {} twice", quote(.key))]
    Duplicate { key: String },
}

/// `resource=amount,…` (NUL- or newline-terminated) as pairs, strictly: anything but
/// lowercase names and unsigned decimal amounts is an error, never skipped, since a
/// misread figure is worse than none.
pub fn parse_racct(text: &str) -> Result<Vec<(String, u64)>, RacctError> {
    if text.len() > MAX_TEXT {
        return Err(RacctError::TooLong { len: text.len() });
    }
    let mut out: Vec<(String, u64)> = Vec::new();
    for pair in text
        .trim_end_matches(['\0', '\n'])
        .split(',')
        .filter(|p| !p.is_empty())
    {
        if out.len() == MAX_PAIRS {
            return Err(RacctError::TooManyPairs);
        }
        let (key, value) = pair.split_once('=').ok_or_else(|| RacctError::NotAPair {
            pair: pair.to_string(),
        })?;
        if key.is_empty()
            || key.len() > MAX_KEY
            || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err(RacctError::BadKey {
                key: key.to_string(),
            });
        }
        // u64's parser takes a leading '+'; the kernel never writes one.
        let amount = value
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| RacctError::BadAmount {
                key: key.to_string(),
                value: value.to_string(),
            })?;
        if out.iter().any(|(k, _)| k == key) {
            return Err(RacctError::Duplicate {
                key: key.to_string(),
            });
        }
        out.push((key.to_string(), amount));
    }
    Ok(out)
}

/// One jail's usage, per rctl(8)'s RESOURCES: sizes in bytes, times in seconds, `pcpu`
/// in percent of one CPU, the four I/O figures per second (rates, not totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RacctUsage {
    pub cputime: u64,
    pub datasize: u64,
    pub stacksize: u64,
    pub coredumpsize: u64,
    pub memoryuse: u64,
    pub memorylocked: u64,
    pub maxproc: u64,
    pub openfiles: u64,
    pub vmemoryuse: u64,
    pub pseudoterminals: u64,
    pub swapuse: u64,
    pub nthr: u64,
    pub msgqqueued: u64,
    pub msgqsize: u64,
    pub nmsgq: u64,
    pub nsem: u64,
    pub nsemop: u64,
    pub nshm: u64,
    pub shmsize: u64,
    pub wallclock: u64,
    pub pcpu: u64,
    pub readbps: u64,
    pub writebps: u64,
    pub readiops: u64,
    pub writeiops: u64,
}

impl RacctUsage {
    /// The usage from the kernel's pairs, and the names of the pairs it does not know
    /// (a newer kernel's resources): those are ignored, not errors, so a kernel upgrade
    /// never breaks metrics; the caller logs them once.
    pub fn from_pairs(pairs: &[(String, u64)]) -> (RacctUsage, Vec<String>) {
        let mut u = RacctUsage::default();
        let mut unknown = Vec::new();
        for (key, amount) in pairs {
            let slot = match key.as_str() {
                "cputime" => &mut u.cputime,
                "datasize" => &mut u.datasize,
                "stacksize" => &mut u.stacksize,
                "coredumpsize" => &mut u.coredumpsize,
                "memoryuse" => &mut u.memoryuse,
                "memorylocked" => &mut u.memorylocked,
                "maxproc" => &mut u.maxproc,
                "openfiles" => &mut u.openfiles,
                "vmemoryuse" => &mut u.vmemoryuse,
                "pseudoterminals" => &mut u.pseudoterminals,
                "swapuse" => &mut u.swapuse,
                "nthr" => &mut u.nthr,
                "msgqqueued" => &mut u.msgqqueued,
                "msgqsize" => &mut u.msgqsize,
                "nmsgq" => &mut u.nmsgq,
                "nsem" => &mut u.nsem,
                "nsemop" => &mut u.nsemop,
                "nshm" => &mut u.nshm,
                "shmsize" => &mut u.shmsize,
                "wallclock" => &mut u.wallclock,
                "pcpu" => &mut u.pcpu,
                "readbps" => &mut u.readbps,
                "writebps" => &mut u.writebps,
                "readiops" => &mut u.readiops,
                "writeiops" => &mut u.writeiops,
                _ => {
                    unknown.push(key.clone());
                    continue;
                }
            };
            *slot = *amount;
        }
        (u, unknown)
    }
}

/// A container's usage with the limits its rctl rules set (`None`: not limited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailUsage {
    pub usage: RacctUsage,
    /// `memoryuse:deny`, bytes.
    pub memory_limit: Option<u64>,
    /// `swapuse:deny`, bytes (memory plus swap, see `freebsd_plan::rctl`).
    pub swap_limit: Option<u64>,
    /// `maxproc:deny`.
    pub maxproc_limit: Option<u64>,
    /// `pcpu:deny`, percent of one CPU.
    pub pcpu_limit: Option<u64>,
    /// Resource names the kernel reported that this build does not know.
    pub unknown: Vec<String>,
}

/// The usage of the container's jail (`rctl_get_racct` of `jail:NAME`) with the limits its
/// recorded rctl rules set. racct off (ENOSYS) is an error naming the loader tunable; a
/// jail that is gone (ESRCH) or was never made is an error too, never zeros.
pub fn usage<K: Kernel>(k: &mut K, made: &FreeBsdMade) -> Result<JailUsage, PlatformError> {
    let name = made
        .jail_name
        .as_deref()
        .ok_or_else(|| PlatformError::Failed {
            call: "rctl_get_racct".into(),
            detail: "create recorded no jail".into(),
        })?;
    let filter = format!("jail:{name}");
    let pairs = k.rctl_usage(&filter).map_err(|e| match e.code() {
        Some(Errno::ENOSYS) => PlatformError::Unsupported {
            what: "task metrics (rctl_get_racct)".into(),
            os: "FreeBSD with racct off",
            hint: "resource accounting is disabled: set the loader tunable \
                   kern.racct.enable=1 in /boot/loader.conf and reboot"
                .into(),
        },
        Some(Errno::ESRCH) => PlatformError::Failed {
            call: format!("rctl_get_racct({})", quote(&filter)),
            detail: "the jail no longer exists".into(),
        },
        _ => PlatformError::Failed {
            call: format!("rctl_get_racct({})", quote(&filter)),
            detail: e.to_string(),
        },
    })?;
    let (usage, unknown) = RacctUsage::from_pairs(&pairs);
    let limit = |resource: &str| rctl::deny_amount(&made.rctl_rules, resource);
    Ok(JailUsage {
        usage,
        memory_limit: limit("memoryuse"),
        swap_limit: limit("swapuse"),
        maxproc_limit: limit("maxproc"),
        pcpu_limit: limit("pcpu"),
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "cputime=3,datasize=2252800,stacksize=0,coredumpsize=0,\
memoryuse=710934528,memorylocked=0,maxproc=2,openfiles=256,vmemoryuse=2222981120,\
pseudoterminals=0,swapuse=0,nthr=22,msgqqueued=0,msgqsize=0,nmsgq=0,nsem=0,nsemop=0,\
nshm=0,shmsize=0,wallclock=242688,pcpu=7,readbps=0,writebps=4096,readiops=0,writeiops=1\0";

    #[test]
    fn a_full_answer_parses_into_every_field() {
        let pairs = parse_racct(REAL).unwrap();
        assert_eq!(pairs.len(), 25);
        let (u, unknown) = RacctUsage::from_pairs(&pairs);
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(u.cputime, 3);
        assert_eq!(u.memoryuse, 710_934_528);
        assert_eq!(u.vmemoryuse, 2_222_981_120);
        assert_eq!(u.maxproc, 2);
        assert_eq!(u.openfiles, 256);
        assert_eq!(u.nthr, 22);
        assert_eq!(u.wallclock, 242_688);
        assert_eq!(u.pcpu, 7);
        assert_eq!(u.writebps, 4096);
        assert_eq!(u.writeiops, 1);
    }

    #[test]
    fn unknown_resources_are_ignored_and_named() {
        let pairs = parse_racct("maxproc=4,futureres=9,openfiles=12").unwrap();
        let (u, unknown) = RacctUsage::from_pairs(&pairs);
        assert_eq!(unknown, ["futureres"]);
        assert_eq!((u.maxproc, u.openfiles), (4, 12));
    }

    #[test]
    fn bad_amounts_are_refused() {
        for bad in [
            "maxproc=-1",
            "maxproc=+1",
            "maxproc=1.5",
            "maxproc=",
            "maxproc=12K",
            "maxproc=99999999999999999999999",
        ] {
            assert!(
                matches!(parse_racct(bad), Err(RacctError::BadAmount { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_pairs_and_names_are_refused() {
        assert!(matches!(
            parse_racct("maxproc"),
            Err(RacctError::NotAPair { .. })
        ));
        assert!(matches!(parse_racct("=1"), Err(RacctError::BadKey { .. })));
        assert!(matches!(
            parse_racct("Max Proc=1"),
            Err(RacctError::BadKey { .. })
        ));
        assert!(matches!(
            parse_racct(&format!("{}=1", "a".repeat(MAX_KEY + 1))),
            Err(RacctError::BadKey { .. })
        ));
        assert!(matches!(
            parse_racct("maxproc=1,maxproc=2"),
            Err(RacctError::Duplicate { .. })
        ));
    }

    #[test]
    fn input_is_bounded() {
        let distinct: Vec<String> = (0..=MAX_PAIRS)
            .map(|i| {
                let name: String = format!("{i:03}")
                    .bytes()
                    .map(|b| char::from(b'a' + (b - b'0')))
                    .collect();
                format!("{name}=1")
            })
            .collect();
        assert!(matches!(
            parse_racct(&distinct.join(",")),
            Err(RacctError::TooManyPairs)
        ));
        let long = "a".repeat(MAX_TEXT + 1);
        assert!(matches!(
            parse_racct(&long),
            Err(RacctError::TooLong { .. })
        ));
        assert_eq!(parse_racct("").unwrap(), Vec::new());
        assert_eq!(parse_racct("\0").unwrap(), Vec::new());
    }

    #[test]
    fn errors_quote_what_the_kernel_sent() {
        let e = parse_racct("maxproc=1\"x").unwrap_err().to_string();
        assert!(e.contains("\"1\\\"x\""), "{e}");
    }
}
