//! The FreeBSD system calls stockade makes, and the only `unsafe` of the FreeBSD backend.
//! Each function takes and returns plain Rust values; the iovec and sysctl buffers live
//! and die inside it.

use std::ffi::{CStr, CString};
use std::mem::size_of;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{c_char, c_int, c_uint, iovec, kinfo_proc, size_t};
use nix::errno::Errno;

use super::kernel::{JailInfo, KernelError as Failure};
use crate::platform::freebsd_plan::ERRMSG_LEN;

/// `JAIL_DYING` (sys/sys/jail.h): jail_get finds dying jails too.
const JAIL_DYING: c_int = 0x08;

/// A failed call with only an errno.
fn failure(errno: Errno) -> Failure {
    Failure::errno(errno)
}

/// An iovec pair: the name (NUL-terminated) and the value buffer, `None` for (NULL, 0).
/// Value buffers are written by `jail_get`, which also rewrites their lengths.
pub type Pair = (Vec<u8>, Option<Vec<u8>>);

type IovCall = unsafe extern "C" fn(*mut iovec, c_uint, c_int) -> c_int;

/// Calls `jail_set`, `jail_get` or `nmount` with `pairs` and an `errmsg` buffer appended;
/// returns the call's result and leaves each value buffer cut to the length the kernel
/// reported.
fn iov_call(call: IovCall, pairs: &mut [Pair], flags: c_int) -> Result<c_int, Failure> {
    let mut errmsg_name = b"errmsg\0".to_vec();
    let mut errmsg = vec![0u8; ERRMSG_LEN];
    let mut iov: Vec<iovec> = Vec::with_capacity(pairs.len() * 2 + 2);
    let entry = |buf: &mut Vec<u8>| iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    for (name, value) in pairs.iter_mut() {
        iov.push(entry(name));
        iov.push(match value {
            Some(v) => entry(v),
            None => iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
        });
    }
    iov.push(entry(&mut errmsg_name));
    iov.push(entry(&mut errmsg));
    let niov = c_uint::try_from(iov.len()).map_err(|_| failure(Errno::E2BIG))?;
    // SAFETY: every iov_base is NULL with length 0 or points into a Vec owned by this frame
    // (`pairs`, `errmsg_name`, `errmsg`) with iov_len its exact length; none of them is
    // touched, moved or dropped until the call returns, and the kernel writes at most
    // iov_len bytes into each buffer.
    let r = unsafe { call(iov.as_mut_ptr(), niov, flags) };
    if r < 0 {
        let errno = Errno::last();
        let errmsg = CStr::from_bytes_until_nul(&errmsg)
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(Failure::with_msg(errno, errmsg));
    }
    for (i, (_, value)) in pairs.iter_mut().enumerate() {
        if let Some(v) = value {
            v.truncate(iov[2 * i + 1].iov_len);
        }
    }
    Ok(r)
}

/// `jail_set(2)`; returns the jid.
pub fn jail_set(pairs: &mut [Pair], flags: c_int) -> Result<i32, Failure> {
    iov_call(libc::jail_set, pairs, flags)
}

/// `jail_get(2)` of `key` (a `(name, value)` pair such as `("jid", 4 bytes)` or
/// `("name", "a.b\0")`) reading the int parameters `names`; returns their values in order.
fn jail_get_ints(key: Pair, names: &[&str]) -> Result<Vec<i32>, Failure> {
    let mut pairs = vec![key];
    for n in names {
        let name = CString::new(*n).map_err(|_| failure(Errno::EINVAL))?;
        pairs.push((name.into_bytes_with_nul(), Some(vec![0u8; 4])));
    }
    iov_call(libc::jail_get, &mut pairs, 0)?;
    pairs[1..]
        .iter()
        .map(|(_, v)| {
            let b = v.as_deref().unwrap_or_default();
            <[u8; 4]>::try_from(b)
                .map(i32::from_ne_bytes)
                .map_err(|_| failure(Errno::EINVAL))
        })
        .collect()
}

/// `(children.max, children.cur)` of the jail called `name`.
pub fn children(name: &str) -> Result<(i32, i32), Failure> {
    let name = CString::new(name).map_err(|_| failure(Errno::EINVAL))?;
    let v = jail_get_ints(
        (b"name\0".to_vec(), Some(name.into_bytes_with_nul())),
        &["children.max", "children.cur"],
    )?;
    Ok((v[0], v[1]))
}

/// `jail_get` of `key` reading `jid`, `dying` and, unless the key is the name itself (an
/// option may appear only once), `name`; `None` for ENOENT.
fn jail_info(key: Pair, flags: c_int) -> Result<Option<JailInfo>, Failure> {
    let known_name = (key.0 == b"name\0")
        .then(|| {
            key.1
                .as_deref()
                .and_then(|v| CStr::from_bytes_until_nul(v).ok())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .flatten();
    let mut pairs = vec![
        key,
        (b"jid\0".to_vec(), Some(vec![0u8; 4])),
        (b"dying\0".to_vec(), Some(vec![0u8; 4])),
    ];
    if known_name.is_none() {
        // MAXHOSTNAMELEN: the longest full name plus its NUL.
        pairs.push((b"name\0".to_vec(), Some(vec![0u8; 256])));
    }
    match iov_call(libc::jail_get, &mut pairs, flags) {
        Ok(_) => {}
        Err(f) if f.code() == Some(Errno::ENOENT) => return Ok(None),
        Err(f) => return Err(f),
    }
    let int = |v: &Option<Vec<u8>>| {
        <[u8; 4]>::try_from(v.as_deref().unwrap_or_default())
            .map(i32::from_ne_bytes)
            .map_err(|_| failure(Errno::EINVAL))
    };
    let name = match known_name {
        Some(n) => n,
        None => CStr::from_bytes_until_nul(pairs[3].1.as_deref().unwrap_or_default())
            .map(|n| n.to_string_lossy().into_owned())
            .map_err(|_| failure(Errno::EINVAL))?,
    };
    Ok(Some(JailInfo {
        jid: int(&pairs[1].1)?,
        name,
        dying: int(&pairs[2].1)? != 0,
    }))
}

/// Jail `jid` (`dying`: found even while dying), `None` when there is none.
pub fn jail_by_jid(jid: i32, dying: bool) -> Result<Option<JailInfo>, Failure> {
    let flags = if dying { JAIL_DYING } else { 0 };
    jail_info((b"jid\0".to_vec(), Some(jid.to_ne_bytes().to_vec())), flags)
}

/// The live jail called `name`, `None` when there is none.
pub fn jail_by_name(name: &str) -> Result<Option<JailInfo>, Failure> {
    let name = CString::new(name).map_err(|_| failure(Errno::EINVAL))?;
    jail_info((b"name\0".to_vec(), Some(name.into_bytes_with_nul())), 0)
}

/// How many dying jails are below the jail called `parent`: every jail is walked with
/// `lastjid` and `JAIL_DYING` (jail_get returns the next jid after `lastjid`).
pub fn dying_children(parent: &str) -> Result<u32, Failure> {
    let prefix = format!("{parent}.");
    let mut last = 0i32;
    let mut count = 0;
    while let Some(j) = jail_info(
        (b"lastjid\0".to_vec(), Some(last.to_ne_bytes().to_vec())),
        JAIL_DYING,
    )? {
        if j.dying && j.name.starts_with(&prefix) {
            count += 1;
        }
        last = j.jid;
    }
    Ok(count)
}

/// `nmount(2)`.
pub fn nmount(pairs: &mut [Pair], flags: c_int) -> Result<(), Failure> {
    iov_call(libc::nmount, pairs, flags).map(drop)
}

/// The rctl(2) calls, which libc does not declare: sys/rctl.h's prototypes (libc.so.7).
mod ffi {
    use libc::{c_char, c_int, size_t};

    extern "C" {
        pub fn rctl_add_rule(
            inbufp: *const c_char,
            inbuflen: size_t,
            outbufp: *mut c_char,
            outbuflen: size_t,
        ) -> c_int;
        pub fn rctl_get_racct(
            inbufp: *const c_char,
            inbuflen: size_t,
            outbufp: *mut c_char,
            outbuflen: size_t,
        ) -> c_int;
        pub fn rctl_remove_rule(
            inbufp: *const c_char,
            inbuflen: size_t,
            outbufp: *mut c_char,
            outbuflen: size_t,
        ) -> c_int;
    }
}

type RctlCall = unsafe extern "C" fn(*const c_char, size_t, *mut c_char, size_t) -> c_int;

/// Calls an rctl(2) call that takes a rule or filter and writes nothing back: the
/// NUL-terminated text, its length with the NUL, and no output buffer (NULL, 0).
fn rctl_call(call: RctlCall, rule: &str) -> Result<(), Errno> {
    let rule = CString::new(rule).map_err(|_| Errno::EINVAL)?;
    let inbuf = rule.as_bytes_with_nul();
    // SAFETY: `inbuf` is a NUL-terminated buffer of exactly `inbuf.len()` bytes that lives
    // until the call returns and that the kernel only reads; the output buffer is NULL with
    // length 0, which these calls accept (they write no output).
    let r = unsafe { call(inbuf.as_ptr().cast(), inbuf.len(), std::ptr::null_mut(), 0) };
    Errno::result(r).map(drop)
}

/// `rctl_add_rule(2)` of `rule` (`subject:id:resource:action=amount`).
pub fn rctl_add_rule(rule: &str) -> Result<(), Errno> {
    rctl_call(ffi::rctl_add_rule, rule)
}

/// `rctl_remove_rule(2)`: removes every rule matching `filter`; ESRCH when none does.
pub fn rctl_remove_rule(filter: &str) -> Result<(), Errno> {
    rctl_call(ffi::rctl_remove_rule, filter)
}

/// `rctl_get_racct(2)` of `filter` (`jail:NAME`): the usage as `resource=amount,…`.
pub fn rctl_get_racct(filter: &str) -> Result<String, Errno> {
    let filter = CString::new(filter).map_err(|_| Errno::EINVAL)?;
    let inbuf = filter.as_bytes_with_nul();
    let mut out = vec![0u8; 4096];
    // SAFETY: `inbuf` is NUL-terminated and lives until the call returns; `out` is a
    // buffer of exactly `out.len()` bytes that the kernel writes at most that much into.
    let r = unsafe {
        ffi::rctl_get_racct(
            inbuf.as_ptr().cast(),
            inbuf.len(),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    Errno::result(r)?;
    Ok(CStr::from_bytes_until_nul(&out)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default())
}

/// `unmount(2)`.
pub fn unmount(path: &Path, flags: c_int) -> Result<(), Failure> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| failure(Errno::EINVAL))?;
    // SAFETY: `p` is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::unmount(p.as_ptr(), flags) };
    Errno::result(r).map(drop).map_err(failure)
}

/// `statfs(2)` of `path`: its file system's `f_fsid`.
pub fn fsid(path: &Path) -> Result<[i32; 2], Failure> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| failure(Errno::EINVAL))?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `p` is NUL-terminated and outlives the call; `st` has room for one struct
    // statfs, which the kernel fills completely on success.
    let r = unsafe { libc::statfs(p.as_ptr(), st.as_mut_ptr()) };
    Errno::result(r).map_err(failure)?;
    // SAFETY: statfs succeeded, so the kernel initialised the whole struct; libc's fsid_t
    // (private field) is sys/mount.h's `struct fsid { int32_t val[2]; }`, #[repr(C)], so
    // it has exactly the layout of [i32; 2].
    let val = unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.assume_init().f_fsid) };
    Ok(val)
}

/// `jail_attach(2)`: the calling process enters jail `jid` (chroot to its root included).
pub fn jail_attach(jid: i32) -> Result<(), Errno> {
    // SAFETY: takes an integer; no memory is shared with the kernel.
    Errno::result(unsafe { libc::jail_attach(jid) }).map(drop)
}

/// `jail_remove(2)`.
pub fn jail_remove(jid: i32) -> Result<(), Errno> {
    // SAFETY: takes an integer; no memory is shared with the kernel.
    Errno::result(unsafe { libc::jail_remove(jid) }).map(drop)
}

/// `fork(2)`: `Ok(0)` in the child, the child's pid in the parent.
pub fn fork() -> Result<i32, Errno> {
    // SAFETY: stockade is single-threaded while it creates a container (no runtime, no
    // helper threads), so the child inherits a consistent heap and locks; the child only
    // runs the container's init, which execs or exits.
    Errno::result(unsafe { libc::fork() })
}

/// `close_range(first, ~0U, CLOSE_RANGE_CLOEXEC)` (FreeBSD 13.1 and later).
pub fn cloexec_from(first: i32) -> Result<(), Errno> {
    let first = c_uint::try_from(first).map_err(|_| Errno::EINVAL)?;
    // CLOSE_RANGE_CLOEXEC is (1<<2) in sys/unistd.h; libc carries it as a c_uint.
    let flags = libc::CLOSE_RANGE_CLOEXEC as c_int;
    // SAFETY: marks descriptors close-on-exec; no memory is shared with the kernel and no
    // descriptor is closed, so no Rust-owned descriptor is invalidated.
    Errno::result(unsafe { libc::close_range(first, c_uint::MAX, flags) }).map(drop)
}

/// Reads a `kern.proc.*` sysctl that returns `kinfo_proc` records.
fn kinfo_procs(mib: &[c_int]) -> Result<Vec<kinfo_proc>, Errno> {
    let record = size_of::<kinfo_proc>();
    let namelen = c_uint::try_from(mib.len()).map_err(|_| Errno::EINVAL)?;
    // The process table can grow between the size query and the read: retry on ENOMEM.
    for _ in 0..8 {
        let mut len: libc::size_t = 0;
        // SAFETY: a size query: oldp is NULL, so the kernel only writes `len`, a live local.
        let r = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                namelen,
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        Errno::result(r)?;
        let count = len / record + 4;
        let mut buf: Vec<kinfo_proc> = Vec::with_capacity(count);
        let mut len = count * record;
        // SAFETY: `buf` owns room for `count` properly aligned records, `len` bytes, and the
        // kernel writes at most `len` bytes, reporting how many it wrote.
        let r = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                namelen,
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        match Errno::result(r) {
            Ok(_) => {}
            Err(Errno::ENOMEM) => continue,
            Err(e) => return Err(e),
        }
        if !len.is_multiple_of(record) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: the kernel filled the first `len` bytes with `len / record` whole records
        // (len <= capacity); kinfo_proc is plain integers, arrays and raw pointers, for
        // which any bit pattern is a valid value.
        unsafe { buf.set_len(len / record) };
        // A kernel whose kinfo_proc differs from libc's would be misread; refuse it.
        if buf
            .first()
            .is_some_and(|k| usize::try_from(k.ki_structsize) != Ok(record))
        {
            return Err(Errno::EINVAL);
        }
        return Ok(buf);
    }
    Err(Errno::ENOMEM)
}

/// Every process (`kern.proc.proc`: one record per process, not per thread).
pub fn all_processes() -> Result<Vec<kinfo_proc>, Errno> {
    kinfo_procs(&[libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PROC])
}

/// Process `pid` (`kern.proc.pid.<pid>`), `None` when there is none.
pub fn process(pid: i32) -> Option<kinfo_proc> {
    kinfo_procs(&[libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid])
        .ok()?
        .into_iter()
        .next()
}

/// `setrlimit(2)` by the kernel's resource number, for every FreeBSD limit (nix 0.32 lacks
/// RLIMIT_UMTXP and RLIMIT_PIPEBUF, and its rlim_t is signed here). `u64::MAX` means
/// RLIM_INFINITY.
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = |v: u64| libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY);
    let rl = libc::rlimit {
        rlim_cur: lim(soft),
        rlim_max: lim(hard),
    };
    // SAFETY: `rl` is a live, initialised struct the kernel only reads.
    Errno::result(unsafe { libc::setrlimit(resource, &rl) }).map(drop)
}

/// The path of the pseudo-terminal slave of `master` (ptsname(3)).
pub fn ptsname(master: &nix::pty::PtyMaster) -> Result<String, Errno> {
    // SAFETY: ptsname is unsafe only because it returns a static buffer that another
    // thread could overwrite; stockade is single-threaded here and copies it at once.
    unsafe { nix::pty::ptsname(master) }
}

/// ioctl(TIOCSCTTY): makes `tty` the controlling terminal of this session.
pub fn set_controlling_tty(tty: std::os::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: TIOCSCTTY takes no argument; the descriptor is borrowed and open.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY) }).map(drop)
}

/// ioctl(TIOCSWINSZ).
pub fn set_winsize(tty: std::os::fd::BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the pointer is to a live winsize the kernel only reads.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}
