//! A model FreeBSD kernel, compiled on every host: the executor runs against it in tests
//! (and on Linux) exactly as it runs against the real kernel on FreeBSD. Each rule it
//! enforces cites the FreeBSD 14 source it comes from; a rule the model does not know is a
//! call it refuses, never one it silently accepts. Faults can be injected: call N fails
//! without effect ([`ModelKernel::fail_call`]), or takes effect and then "kills" the caller
//! ([`ModelKernel::abort_after_call`]), as a SIGKILL between a call and its record would.

mod cred;
pub mod devfs;
mod jails;
mod mounts;
mod rctl;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use nix::errno::Errno;

pub use cred::Cred;
pub use devfs::{default_rulesets, DevfsRule, DEFAULT_DEVICES};
pub use jails::{strtoul_parses_fully, Jail};
pub use mounts::Mount;

use super::kernel::{Forked, JailInfo, Kernel, KernelError, ProcInfo};
use crate::jail::JailParam;

/// One process of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub jid: i32,
    pub zombie: bool,
    pub start: u64,
}

/// The model kernel's whole state.
#[derive(Debug, Clone)]
pub struct ModelKernel {
    pub jails: BTreeMap<i32, Jail>,
    next_jid: i32,
    /// prison0's `children.max` (JAIL_MAX, sys/sys/jail.h).
    pub prison0_children_max: i32,
    pub mounts: Vec<Mount>,
    next_fsid: u32,
    /// devfs rulesets by number (sys/fs/devfs/devfs_rule.c keeps them in the kernel).
    pub rulesets: BTreeMap<u16, Vec<DevfsRule>>,
    /// `vfs.devfs.rule_depth` (devfs_devs.c, default 1).
    pub rule_depth: u32,
    /// `kern.racct.enable`: off, every rctl call is ENOSYS (kern_rctl.c).
    pub racct: bool,
    pub rctl_rules: Vec<String>,
    /// Host interfaces: name -> (aliases, jid it is in, 0 for the host).
    pub interfaces: BTreeMap<String, (Vec<String>, i32)>,
    pub procs: BTreeMap<i32, Proc>,
    next_pid: i32,
    /// The process making the calls (fork's parent, jail_attach's subject).
    pub current: i32,
    /// Removed jails stay dying (as with sockets in TIME_WAIT) until [`Self::release_dying`].
    pub linger_on_remove: bool,
    calls: usize,
    /// The caller was "killed" by an abort: every later call fails.
    dead: bool,
    fail_at: Option<usize>,
    abort_at: Option<usize>,
    /// Every call made, by name, in order.
    pub log: Vec<String>,
}

impl Default for ModelKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelKernel {
    /// A freshly booted host: the rulesets of /etc/defaults/devfs.rules loaded, racct on,
    /// interfaces `em0` and `epair0b`..`epair3b`, and the caller as pid 100 on the host.
    pub fn new() -> Self {
        let mut procs = BTreeMap::new();
        procs.insert(
            100,
            Proc {
                jid: 0,
                zombie: false,
                start: 1,
            },
        );
        let mut interfaces = BTreeMap::new();
        for name in ["em0", "epair0b", "epair1b", "epair2b", "epair3b"] {
            interfaces.insert(name.to_string(), (Vec::new(), 0));
        }
        ModelKernel {
            jails: BTreeMap::new(),
            next_jid: 1,
            prison0_children_max: 999_999,
            mounts: Vec::new(),
            next_fsid: 1,
            rulesets: default_rulesets(),
            rule_depth: 1,
            racct: true,
            rctl_rules: Vec::new(),
            interfaces,
            procs,
            next_pid: 1000,
            current: 100,
            linger_on_remove: false,
            calls: 0,
            dead: false,
            fail_at: None,
            abort_at: None,
            log: Vec::new(),
        }
    }

    /// Call number `n` (from 0, counting every call) fails with EIO and changes nothing.
    pub fn fail_call(&mut self, n: usize) {
        self.calls = 0;
        self.fail_at = Some(n);
        self.abort_at = None;
    }

    /// Call number `n` takes effect, then the caller dies before it sees the result.
    pub fn abort_after_call(&mut self, n: usize) {
        self.calls = 0;
        self.abort_at = Some(n);
        self.fail_at = None;
    }

    /// No more injected faults.
    pub fn clear_faults(&mut self) {
        self.dead = false;
        self.fail_at = None;
        self.abort_at = None;
    }

    /// Calls made since the last fault was set.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// The last reference to every dying jail goes (prison_deref in kern_jail.c).
    pub fn release_dying(&mut self) {
        let dying: Vec<i32> = self
            .jails
            .iter()
            .filter(|(_, j)| j.dying)
            .map(|(jid, _)| *jid)
            .collect();
        for jid in dying {
            self.jails.remove(&jid);
        }
    }

    /// The jail whose network stack jail `jid` uses (0: the host's); see
    /// [`jails::network_stack`].
    pub fn network_stack(&self, jid: i32) -> i32 {
        jails::network_stack(self, jid)
    }

    /// Adds a jail of the host's own (not the executor's), e.g. a parent for nested
    /// containers; [`Self::is_clean`] leaves it out.
    pub fn add_host_jail(&mut self, name: &str, children_max: i32) -> i32 {
        jails::add_host_jail(self, name, children_max)
    }

    /// Sends SIGKILL to `pid`: it becomes a zombie until its parent reaps it.
    pub fn kill(&mut self, pid: i32) -> Result<(), KernelError> {
        let p = self
            .procs
            .get_mut(&pid)
            .filter(|p| !p.zombie)
            .ok_or_else(|| KernelError::errno(Errno::ESRCH))?;
        p.zombie = true;
        Ok(())
    }

    /// Reaps every zombie (the parents' waitpid).
    pub fn reap(&mut self) {
        self.procs.retain(|_, p| !p.zombie);
    }

    /// Whether nothing a container made is left: no jail (live or dying), no mount, no
    /// devfs ruleset beyond the defaults, no rctl rule, no alias, every interface home.
    pub fn is_clean(&self) -> Result<(), String> {
        if let Some(j) = self.jails.values().find(|j| !j.preexisting) {
            return Err(format!("jail {:?} (jid {}) is left", j.name, j.jid));
        }
        if let Some(m) = self.mounts.first() {
            return Err(format!(
                "{} mount on {} is left",
                m.fstype,
                m.path.display()
            ));
        }
        let defaults = default_rulesets();
        if let Some(n) = self.rulesets.keys().find(|n| !defaults.contains_key(n)) {
            return Err(format!("devfs ruleset {n} is left"));
        }
        if let Some(r) = self.rctl_rules.first() {
            return Err(format!("rctl rule {r:?} is left"));
        }
        for (name, (aliases, jid)) in &self.interfaces {
            if !aliases.is_empty() {
                return Err(format!("{name} keeps aliases {aliases:?}"));
            }
            if *jid != 0 {
                return Err(format!("{name} is still in jail {jid}"));
            }
        }
        Ok(())
    }

    /// Counts a call; fails it when a fault is set for it.
    fn enter(&mut self, what: &str) -> Result<(), KernelError> {
        self.log.push(what.to_string());
        let n = self.calls;
        self.calls += 1;
        if self.dead {
            return Err(KernelError::with_msg(Errno::EINTR, "the caller was killed"));
        }
        if self.fail_at == Some(n) {
            return Err(KernelError::with_msg(Errno::EIO, "injected failure"));
        }
        Ok(())
    }

    /// After a call took effect: the caller dies when an abort is set for it.
    fn leave<T>(&mut self, result: Result<T, KernelError>) -> Result<T, KernelError> {
        if self.abort_at == Some(self.calls - 1) {
            self.dead = true;
            self.abort_at = None;
            return Err(KernelError::with_msg(
                Errno::EINTR,
                "the caller was killed after the call",
            ));
        }
        result
    }

    /// The device nodes visible in the devfs mounted on `path`, by its ruleset.
    pub fn visible_devices(&self, path: &Path) -> Option<Vec<String>> {
        let m = self
            .mounts
            .iter()
            .rev()
            .find(|m| m.fstype == "devfs" && m.path == path)?;
        Some(devfs::visible(
            &self.rulesets,
            m.ruleset.unwrap_or(0),
            self.rule_depth,
        ))
    }

    fn proc_jid(&self, pid: i32) -> i32 {
        self.procs.get(&pid).map_or(0, |p| p.jid)
    }
}

impl Kernel for ModelKernel {
    fn jail_set(&mut self, params: &[JailParam], flags: i32) -> Result<i32, KernelError> {
        self.enter("jail_set")?;
        let r = jails::set(self, params, flags);
        self.leave(r)
    }

    fn jail_by_jid(&mut self, jid: i32, dying: bool) -> Result<Option<JailInfo>, KernelError> {
        self.enter("jail_get")?;
        let r = Ok(self
            .jails
            .get(&jid)
            .filter(|j| dying || !j.dying)
            .map(Jail::info));
        self.leave(r)
    }

    fn jail_by_name(&mut self, name: &str) -> Result<Option<JailInfo>, KernelError> {
        self.enter("jail_get")?;
        let r = Ok(jails::live_by_name(self, name).map(|jid| self.jails[&jid].info()));
        self.leave(r)
    }

    fn children(&mut self, name: &str) -> Result<(i32, i32), KernelError> {
        self.enter("jail_get")?;
        let r = jails::live_by_name(self, name)
            .map(|jid| (self.jails[&jid].children_max, jails::child_count(self, jid)))
            .ok_or_else(|| {
                KernelError::with_msg(Errno::ENOENT, format!("jail \"{name}\" not found"))
            });
        self.leave(r)
    }

    fn dying_children(&mut self, name: &str) -> Result<u32, KernelError> {
        self.enter("jail_get")?;
        let r = jails::live_by_name(self, name)
            .map(|jid| jails::dying_descendants(self, jid))
            .ok_or_else(|| {
                KernelError::with_msg(Errno::ENOENT, format!("jail \"{name}\" not found"))
            });
        self.leave(r)
    }

    fn jail_attach(&mut self, jid: i32) -> Result<(), KernelError> {
        self.enter("jail_attach")?;
        // kern_jail.c sys_jail_attach/do_jail_attach: a jail that is not alive is EINVAL.
        let r = match self.jails.get(&jid) {
            Some(j) if !j.dying => {
                let cur = self.current;
                if let Some(p) = self.procs.get_mut(&cur) {
                    p.jid = jid;
                }
                Ok(())
            }
            _ => Err(KernelError::errno(Errno::EINVAL)),
        };
        self.leave(r)
    }

    fn jail_remove(&mut self, jid: i32) -> Result<(), KernelError> {
        self.enter("jail_remove")?;
        let r = jails::remove(self, jid);
        self.leave(r)
    }

    fn nmount(&mut self, iov: &[(String, Option<Vec<u8>>)], flags: i32) -> Result<(), KernelError> {
        self.enter("nmount")?;
        let r = mounts::nmount(self, iov, flags);
        self.leave(r)
    }

    fn unmount(&mut self, path: &Path, flags: i32) -> Result<(), KernelError> {
        self.enter("unmount")?;
        let r = mounts::unmount(self, path, flags);
        self.leave(r)
    }

    fn fsid(&mut self, path: &Path) -> Result<String, KernelError> {
        self.enter("statfs")?;
        let r = Ok(mounts::fsid(self, path));
        self.leave(r)
    }

    fn devfs_showsets(&mut self) -> Result<Vec<u16>, KernelError> {
        self.enter("devfs rule showsets")?;
        let r = Ok(self.rulesets.keys().copied().collect());
        self.leave(r)
    }

    fn devfs_show(&mut self, ruleset: u16) -> Result<Vec<String>, KernelError> {
        self.enter("devfs rule show")?;
        let r = Ok(self
            .rulesets
            .get(&ruleset)
            .map(|rules| rules.iter().map(DevfsRule::show).collect())
            .unwrap_or_default());
        self.leave(r)
    }

    fn devfs_add(&mut self, ruleset: u16, rule: &[String]) -> Result<(), KernelError> {
        self.enter("devfs rule add")?;
        let r = devfs::add(self, ruleset, rule);
        self.leave(r)
    }

    fn devfs_delset(&mut self, ruleset: u16) -> Result<(), KernelError> {
        self.enter("devfs rule delset")?;
        // devfs_rule.c devfs_rules_delset: deleting a set that does not exist is not an
        // error for devfs(8) (it deletes every rule, of which there are none).
        self.rulesets.remove(&ruleset);
        self.leave(Ok(()))
    }

    fn rctl_add_rule(&mut self, rule: &str) -> Result<(), KernelError> {
        self.enter("rctl_add_rule")?;
        let r = rctl::add(self, rule);
        self.leave(r)
    }

    fn rctl_remove_rule(&mut self, filter: &str) -> Result<(), KernelError> {
        self.enter("rctl_remove_rule")?;
        let r = rctl::remove(self, filter);
        self.leave(r)
    }

    fn rctl_usage(&mut self, filter: &str) -> Result<Vec<(String, u64)>, KernelError> {
        self.enter("rctl_get_racct")?;
        let r = rctl::usage(self, filter);
        self.leave(r)
    }

    fn ifconfig(&mut self, args: &[String]) -> Result<(), KernelError> {
        self.enter("ifconfig")?;
        let r = ifconfig(self, args);
        self.leave(r)
    }

    fn processes(&mut self) -> Result<Vec<ProcInfo>, KernelError> {
        self.enter("sysctl kern.proc.proc")?;
        let r = Ok(self
            .procs
            .iter()
            .map(|(pid, p)| ProcInfo {
                pid: *pid,
                jid: p.jid,
                zombie: p.zombie,
                start: p.start,
            })
            .collect());
        self.leave(r)
    }

    fn fork(&mut self) -> Result<Forked, KernelError> {
        self.enter("fork")?;
        let pid = self.next_pid;
        self.next_pid += 1;
        let jid = self.proc_jid(self.current);
        self.procs.insert(
            pid,
            Proc {
                jid,
                zombie: false,
                start: u64::try_from(pid).unwrap_or(0),
            },
        );
        // The model runs no child code: the caller is always the parent.
        self.leave(Ok(Forked::Parent(pid)))
    }
}

/// `ifconfig IF inet|inet6 ADDR/PREFIX alias|-alias` and `ifconfig IF vnet|-vnet JAIL`
/// (sbin/ifconfig; net/if.c if_vmove: the jail must have its own vnet).
fn ifconfig(k: &mut ModelKernel, args: &[String]) -> Result<(), KernelError> {
    let fail = |stderr: String| KernelError::Command {
        status: "exit status: 1".into(),
        stderr,
    };
    let [interface, verb, rest @ ..] = args else {
        return Err(fail("usage".into()));
    };
    if !k.interfaces.contains_key(interface) {
        return Err(fail(format!(
            "ifconfig: interface {interface} does not exist"
        )));
    }
    match (verb.as_str(), rest) {
        ("inet" | "inet6", [addr, op]) if op == "alias" || op == "-alias" => {
            let (aliases, _) = k.interfaces.get_mut(interface).expect("checked");
            if op == "alias" {
                if !aliases.contains(addr) {
                    aliases.push(addr.clone());
                }
            } else if let Some(i) = aliases.iter().position(|a| a == addr) {
                aliases.remove(i);
            } else {
                return Err(fail(
                    "ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address".into(),
                ));
            }
            Ok(())
        }
        ("vnet", [jail]) => {
            let jid = jail
                .parse::<i32>()
                .ok()
                .or_else(|| jails::live_by_name(k, jail))
                .ok_or_else(|| fail(format!("ifconfig: jail \"{jail}\" not found")))?;
            if !k.jails.get(&jid).is_some_and(|j| j.vnet && !j.dying) {
                return Err(fail("ifconfig: SIOCSIFVNET: Invalid argument".into()));
            }
            let entry = k.interfaces.get_mut(interface).expect("checked");
            if entry.1 != 0 {
                return Err(fail("ifconfig: SIOCSIFVNET: Device busy".into()));
            }
            entry.1 = jid;
            Ok(())
        }
        ("-vnet", [jail]) => {
            let jid = jail
                .parse::<i32>()
                .ok()
                .or_else(|| jails::live_by_name(k, jail))
                .ok_or_else(|| fail(format!("ifconfig: jail \"{jail}\" not found")))?;
            let entry = k.interfaces.get_mut(interface).expect("checked");
            if entry.1 != jid {
                return Err(fail(format!(
                    "ifconfig: SIOCSIFRVNET: interface {interface} is not in jail {jid}"
                )));
            }
            entry.1 = 0;
            Ok(())
        }
        _ => Err(fail(format!("ifconfig: unsupported arguments {args:?}"))),
    }
}
