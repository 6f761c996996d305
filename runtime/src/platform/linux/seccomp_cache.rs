//! Compiled seccomp filters cached by profile digest, so that `create` pays libseccomp's
//! compile (tens of milliseconds for a containerd-sized profile) once per profile, not per
//! container.
//!
//! The cache is `/var/cache/stockade/seccomp/`, the runtime's own directory (never under a
//! `--root`, whose every entry is a container id), of mode 0700 and owned by the runtime's
//! user, reached from `/var/cache` without following links; anything else there (wrong owner
//! or mode, a link, a parent others can write) disables the cache. A
//! file is `<key>.bpf` where the key is the sha256 of the canonical profile, the machine,
//! the kernel and libseccomp's version. Its content is a magic, the key again, the
//! instruction count, the program and a sha256 over all of that; a file that does not
//! verify in every part is ignored and replaced, so a corrupt or foreign file can never
//! weaken the filter, only cost a compile. Files appear atomically (written unnamed with
//! O_TMPFILE and linked in when complete): a crash leaves no partial file.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};

use super::seccomp;
use crate::config::SeccompProfile;
use crate::platform::PlatformError;
use crate::process::{CompiledFilter, Confinement};

/// Where the cache lives: `CACHE_DIR/OWN_DIR/DIR`.
const CACHE_DIR: &str = "/var/cache";
const OWN_DIR: &str = "stockade";
const DIR: &str = "seccomp";
const MAGIC: &[u8; 8] = b"STKBPF01";
/// The kernel's limit on one classic-BPF program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
const INSN: usize = 8;
/// The largest valid file: magic, key, count, program, checksum.
const MAX_FILE: usize = 8 + 32 + 4 + MAX_INSNS * INSN + 32;

/// The seccomp(2) flags for `p` (those libseccomp would pass for its attributes).
fn flags(p: &SeccompProfile) -> libc::c_ulong {
    let mut f = 0;
    for name in &p.flags {
        f |= match name.as_str() {
            "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            _ => 0,
        };
    }
    f
}

/// Whether `p` can be loaded from a plain program: a notify profile needs the listener
/// descriptor libseccomp asks the kernel for, and WAIT_KILLABLE_RECV goes with it.
fn cacheable(p: &SeccompProfile) -> bool {
    !p.notifies()
        && !p
            .flags
            .iter()
            .any(|f| f == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
}

/// The cache key of `p` on this machine.
pub fn key(p: &SeccompProfile) -> [u8; 32] {
    let uts = nix::sys::utsname::uname().ok();
    let field =
        |f: Option<&std::ffi::OsStr>| f.map(|s| s.as_encoded_bytes().to_vec()).unwrap_or_default();
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"stockade seccomp cache v1\0");
    h.update(serde_json::to_vec(p).unwrap_or_default());
    h.update(b"\0");
    h.update(field(uts.as_ref().map(|u| u.machine())));
    h.update(b"\0");
    h.update(field(uts.as_ref().map(|u| u.release())));
    h.update(b"\0");
    h.update(field(uts.as_ref().map(|u| u.version())));
    h.update(b"\0");
    h.update(v.as_bytes());
    h.update(b"\0");
    h.update(libseccomp::get_api().to_le_bytes());
    h.finalize().into()
}

/// The file content for `program` under `key`.
fn encode(key: &[u8; 32], program: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 32 + 4 + program.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&((program.len() / INSN) as u32).to_le_bytes());
    out.extend_from_slice(program);
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// The program in `file` if every part of it verifies against `key`.
fn decode(key: &[u8; 32], file: &[u8]) -> Option<Vec<u8>> {
    if file.len() < 8 + 32 + 4 + INSN + 32 || file.len() > MAX_FILE {
        return None;
    }
    let (body, sum) = file.split_at(file.len() - 32);
    if Sha256::digest(body).as_slice() != sum || &body[..8] != MAGIC || &body[8..40] != key {
        return None;
    }
    let count = u32::from_le_bytes(body[40..44].try_into().ok()?) as usize;
    let program = &body[44..];
    ((1..=MAX_INSNS).contains(&count) && program.len() == count * INSN).then(|| program.to_vec())
}

/// Compiles `p` with libseccomp and exports the program.
fn compile(p: &SeccompProfile) -> Result<Vec<u8>, PlatformError> {
    let ctx = seccomp::compile(p)?;
    let failed = |what: &str, e: String| PlatformError::Failed {
        call: format!("seccomp: {what}"),
        detail: e,
    };
    let memfd =
        nix::sys::memfd::memfd_create(c"stockade-bpf", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| failed("memfd_create for the compiled filter", e.to_string()))?;
    ctx.export_bpf(&memfd)
        .map_err(|e| failed("exporting the compiled filter", e.to_string()))?;
    let mut f = std::fs::File::from(memfd);
    f.rewind()
        .map_err(|e| failed("reading the compiled filter", e.to_string()))?;
    let mut program = Vec::new();
    f.take(MAX_FILE as u64)
        .read_to_end(&mut program)
        .map_err(|e| failed("reading the compiled filter", e.to_string()))?;
    if program.is_empty() || program.len() % INSN != 0 || program.len() / INSN > MAX_INSNS {
        return Err(failed(
            "the compiled filter",
            format!(
                "{} bytes is not a program of at most {MAX_INSNS} instructions",
                program.len()
            ),
        ));
    }
    Ok(program)
}

/// Opens (making it if needed) directory `name` in `parent`, only if it is a real directory
/// of this user that others cannot write to (`private`: no access for others at all).
fn open_owned(parent: BorrowedFd<'_>, name: &str, private: bool) -> Option<OwnedFd> {
    let _ = nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o700));
    let dir = openat(
        parent,
        name,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = nix::sys::stat::fstat(dir.as_fd()).ok()?;
    let others = if private { 0o077 } else { 0o022 };
    (st.st_uid == nix::unistd::geteuid().as_raw() && st.st_mode & others == 0).then_some(dir)
}

/// The runtime's own cache directory, `/var/cache/stockade`, in which the cache lives;
/// `None` (no cache) when it is not this user's or others can write to it.
pub fn runtime_dir() -> Option<OwnedFd> {
    let run = openat(
        nix::fcntl::AT_FDCWD,
        CACHE_DIR,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    open_owned(run.as_fd(), OWN_DIR, false)
}

/// The cached program under `name`, if the file is ours and verifies.
fn read(dir: BorrowedFd<'_>, name: &str, key: &[u8; 32]) -> Option<Vec<u8>> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let f = std::fs::File::from(fd);
    let m = f.metadata().ok()?;
    if !m.is_file() || m.uid() != nix::unistd::geteuid().as_raw() || m.len() > MAX_FILE as u64 {
        return None;
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.take(MAX_FILE as u64 + 1).read_to_end(&mut bytes).ok()?;
    decode(key, &bytes)
}

/// Writes the file atomically: an unnamed O_TMPFILE, filled, then linked under `name`
/// (replacing a file that did not verify).
fn write(dir: BorrowedFd<'_>, name: &str, content: &[u8]) -> std::io::Result<()> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(content)?;
    let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    let proc_path = format!("/proc/self/fd/{}", f.as_raw_fd());
    nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        proc_path.as_str(),
        dir,
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )?;
    Ok(())
}

/// The compiled filter for `c`, from the cache or compiled (and cached) now; `None` when
/// there is no profile or it must be compiled by the process itself (notify).
/// `parent` is where the cache directory lives ([`runtime_dir`]); `None` compiles uncached.
pub fn prepare(
    c: &Confinement,
    parent: Option<BorrowedFd<'_>>,
) -> Result<Option<CompiledFilter>, PlatformError> {
    let Some(p) = c.seccomp.as_ref().filter(|p| cacheable(p)) else {
        return Ok(None);
    };
    let key = key(p);
    let name: String = key
        .iter()
        .map(|b| format!("{b:02x}"))
        .chain([".bpf".to_string()])
        .collect();
    let dir = parent.and_then(|p| open_owned(p, DIR, true));
    if let Some(program) = dir.as_ref().and_then(|d| read(d.as_fd(), &name, &key)) {
        return Ok(Some(CompiledFilter {
            flags: flags(p),
            program,
        }));
    }
    let program = compile(p)?;
    if let Some(d) = &dir {
        if let Err(e) = write(d.as_fd(), &name, &encode(&key, &program)) {
            tracing::debug!("seccomp cache: writing {name}: {e}");
        }
    }
    Ok(Some(CompiledFilter {
        flags: flags(p),
        program,
    }))
}

/// The program as the kernel's `sock_filter` records.
pub fn instructions(program: &[u8]) -> Vec<libc::sock_filter> {
    program
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> SeccompProfile {
        let v = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]
        });
        let serde_json::Value::Object(m) = v else {
            unreachable!()
        };
        crate::config::seccomp::parse(&m).unwrap()
    }

    #[test]
    fn a_file_verifies_only_whole_and_under_its_own_key() {
        let p = profile();
        let key = key(&p);
        let program = compile(&p).unwrap();
        let file = encode(&key, &program);
        assert_eq!(decode(&key, &file).as_deref(), Some(program.as_slice()));
        // Any flipped byte, a cut, another key: rejected.
        for i in [0, 9, 41, 50, file.len() - 1] {
            let mut bad = file.clone();
            bad[i] ^= 1;
            assert_eq!(decode(&key, &bad), None, "byte {i} flipped");
        }
        assert_eq!(decode(&key, &file[..file.len() - 8]), None);
        let mut other = profile();
        other.syscalls[0].action = crate::config::seccomp::SeccompAction::Errno(1);
        assert_ne!(super::key(&other), key);
        assert_eq!(decode(&super::key(&other), &file), None);
        // A well-formed file of a program too long for the kernel: rejected.
        let huge = vec![0u8; (MAX_INSNS + 1) * INSN];
        assert_eq!(decode(&key, &encode(&key, &huge)), None);
    }

    #[test]
    fn the_cache_is_written_once_and_replaced_when_corrupt() {
        let root = tempfile::tempdir().unwrap();
        let parent = std::fs::File::open(root.path()).unwrap();
        let c = Confinement {
            seccomp: Some(profile()),
            ..Confinement::default()
        };
        let first = prepare(&c, Some(parent.as_fd())).unwrap().unwrap();
        let cache = root.path().join(DIR);
        let mode = std::fs::metadata(&cache).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        let files: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        // Corrupt it: the next create compiles again, gets the same program, rewrites it.
        let mut bytes = std::fs::read(&files[0]).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&files[0], &bytes).unwrap();
        let second = prepare(&c, Some(parent.as_fd())).unwrap().unwrap();
        assert_eq!(first, second);
        assert!(decode(&key(&profile()), &std::fs::read(&files[0]).unwrap()).is_some());
        // A cache directory others can write to is not used (nothing read, nothing written).
        std::fs::remove_file(&files[0]).unwrap();
        std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let third = prepare(&c, Some(parent.as_fd())).unwrap().unwrap();
        assert_eq!(third, first);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    }
}
