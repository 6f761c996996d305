//! The processes this shim owns: each container's init and its exec'd processes, with how
//! they ended. Exits are recorded by the reaper (`record_exit`); one that arrives before
//! its process is registered (an exec that ends at once) waits in `unclaimed`.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use crate::exit::Exit;

/// What containerd may later ask about one process.
pub struct Proc {
    pub pid: i32,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub started: bool,
    exit_tx: watch::Sender<Option<Exit>>,
    /// Ends stdin (CloseIO).
    pub close_stdin: Option<oneshot::Sender<()>>,
    /// The pty master, for ResizePty.
    pub master: Option<Arc<OwnedFd>>,
}

impl Proc {
    pub fn new(pid: i32, stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Proc {
        Proc {
            pid,
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            terminal,
            started: false,
            exit_tx: watch::channel(None).0,
            close_stdin: None,
            master: None,
        }
    }

    pub fn exit(&self) -> Option<Exit> {
        *self.exit_tx.borrow()
    }

    pub fn watch_exit(&self) -> watch::Receiver<Option<Exit>> {
        self.exit_tx.subscribe()
    }

    fn set_exit(&self, e: Exit) {
        self.exit_tx.send_replace(Some(e));
    }
}

/// An exec'd process: its spec until Start runs it (pid 0 until then; containerd waits on
/// it before starting it).
pub struct Exec {
    pub proc_: Proc,
    pub spec: Option<Box<stockade_runtime::config::ParsedProcess>>,
}

pub struct Task {
    pub bundle: PathBuf,
    pub init: Proc,
    pub execs: HashMap<String, Exec>,
    pub rootfs_mounted: bool,
    /// The OOM watcher (Linux, a container with a memory cgroup), ended on delete.
    pub oom_watch: Option<tokio::task::AbortHandle>,
}

/// Which process an exit belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub container: String,
    /// Empty for the init.
    pub exec: String,
}

#[derive(Default)]
pub struct Table {
    pub tasks: HashMap<String, Task>,
    unclaimed: HashMap<i32, Exit>,
}

/// Orphans the shim reaps as subreaper are not its processes; a bounded number of their
/// exits is kept in case one is a process registered a moment later.
const UNCLAIMED_MAX: usize = 256;

impl Table {
    /// Records an exit; returns whose it was (None: not a registered process).
    pub fn record_exit(&mut self, e: Exit) -> Option<Owner> {
        for (cid, t) in &self.tasks {
            if t.init.pid == e.pid && t.init.exit().is_none() {
                t.init.set_exit(e);
                return Some(Owner {
                    container: cid.clone(),
                    exec: String::new(),
                });
            }
            for (eid, x) in &t.execs {
                let p = &x.proc_;
                if p.started && p.pid == e.pid && p.exit().is_none() {
                    p.set_exit(e);
                    return Some(Owner {
                        container: cid.clone(),
                        exec: eid.clone(),
                    });
                }
            }
        }
        if self.unclaimed.len() >= UNCLAIMED_MAX {
            self.unclaimed.clear();
        }
        self.unclaimed.insert(e.pid, e);
        None
    }

    /// For an exec whose pid was just set: if its exit was reaped first, it is applied now
    /// and returned.
    pub fn claim_exec(&mut self, id: &str, exec: &str) -> Option<Exit> {
        let p = &self.tasks.get(id)?.execs.get(exec)?.proc_;
        let e = self.unclaimed.remove(&p.pid)?;
        p.set_exit(e);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(pid: i32) -> Task {
        Task {
            bundle: "/b".into(),
            init: Proc::new(pid, "", "", "", false),
            execs: HashMap::new(),
            rootfs_mounted: false,
            oom_watch: None,
        }
    }

    #[test]
    fn exits_find_their_process() {
        let mut t = Table::default();
        let mut c = task(10);
        c.init.started = true;
        let mut p = Proc::new(11, "", "", "", false);
        p.started = true;
        c.execs.insert(
            "e1".into(),
            Exec {
                proc_: p,
                spec: None,
            },
        );
        t.tasks.insert("c".into(), c);
        let w = t.tasks["c"].init.watch_exit();
        let o = t
            .record_exit(Exit {
                pid: 10,
                status: 3,
                at: (1, 0),
            })
            .unwrap();
        assert_eq!(
            o,
            Owner {
                container: "c".into(),
                exec: String::new()
            }
        );
        assert_eq!(w.borrow().unwrap().status, 3);
        let o = t
            .record_exit(Exit {
                pid: 11,
                status: 0,
                at: (1, 0),
            })
            .unwrap();
        assert_eq!(o.exec, "e1");
        // A second exit for a pid already ended (pid reuse by an orphan) is not the init's.
        assert!(t
            .record_exit(Exit {
                pid: 10,
                status: 9,
                at: (2, 0)
            })
            .is_none());
        assert_eq!(t.tasks["c"].init.exit().unwrap().status, 3);
    }

    #[test]
    fn early_exit_is_claimed() {
        let mut t = Table::default();
        let mut c = task(10);
        c.execs.insert(
            "e".into(),
            Exec {
                proc_: Proc::new(0, "", "", "", false),
                spec: None,
            },
        );
        t.tasks.insert("c".into(), c);
        // The exec exits before its pid is recorded.
        assert!(t
            .record_exit(Exit {
                pid: 42,
                status: 1,
                at: (1, 0)
            })
            .is_none());
        assert!(t.claim_exec("c", "e").is_none(), "pid 0 matches nothing");
        let x = t.tasks.get_mut("c").unwrap().execs.get_mut("e").unwrap();
        x.proc_.pid = 42;
        x.proc_.started = true;
        assert_eq!(t.claim_exec("c", "e").unwrap().status, 1);
        assert_eq!(t.tasks["c"].execs["e"].proc_.exit().unwrap().status, 1);
        assert!(t.claim_exec("c", "e").is_none(), "claimed once");
    }
}
