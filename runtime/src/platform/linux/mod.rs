//! The Linux backend: the same `JailSpec` applied with namespaces (always mount and PID;
//! UTS, network and IPC as the jail model says), `pivot_root` into the root, processes
//! found through `/proc`. Used for development, CI and Linux users.

pub mod beneath;
mod caps;
mod cgroup_sys;
mod cgroups;
mod confine;
mod devfilter;
mod devices;
mod features;
mod join;
mod join_user;
mod lsm;
mod mountinfo;
mod mounts;
mod namespaces;
mod ns_sys;
mod pids;
mod procfs;
pub mod procs;
mod propagation;
pub mod pty;
mod rlimit;
mod rootless;
mod seccomp;
mod seccomp_cache;
mod sys;
mod sysctl;
mod userns;

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::unistd::{chdir, pivot_root, sethostname};

use super::linux_plan::LinuxMade;
use super::{ContainerPlan, InitEntry, InitHandoff, Platform, PlatformError, SeccompListener};
use super::{Journal, Resources};
use crate::jail::Host;
use crate::process::{Confinement, ProcessSpec};
use confine::{confinement_check, load_seccomp};
pub use features::host_features;
pub(crate) use rlimit::{rlimit_name, set_rlimit};

/// The Linux backend.
pub struct Linux;

fn call(what: impl Into<String>, e: nix::errno::Errno) -> PlatformError {
    PlatformError::call(what, e)
}

/// The configuration's `linux` object, from the plan's Linux part (`check` refuses a plan
/// made for another kernel).
fn linux_config(plan: &ContainerPlan) -> Option<&oci_spec::runtime::Linux> {
    plan.linux().and_then(|p| p.config.as_deref())
}

/// `linux.rootfsPropagation`.
fn root_propagation(plan: &ContainerPlan) -> Option<&str> {
    linux_config(plan).and_then(|l| l.rootfs_propagation().as_deref())
}

/// What the parent decides for the init before clone.
#[derive(Debug, Clone, Default)]
pub struct InitContext {
    /// A new user namespace: become its root (setresuid/setresgid 0) before anything.
    become_root: bool,
    /// A cgroup namespace made only now that the init is in its cgroups (see spawn_init).
    unshare_cgroupns: bool,
    /// What a mount of type `cgroup`/`cgroup2` shows (decided only when there is one).
    cgroup_view: Option<cgroups::CgroupView>,
}

impl Platform for Linux {
    const TARGET: crate::target::Target = crate::target::Target::Linux;
    type Made = LinuxMade;
    type InitContext = InitContext;

    fn check(plan: &ContainerPlan) -> Result<(), PlatformError> {
        if plan.linux().is_none() {
            return Err(PlatformError::Unsupported {
                what: format!("a plan made for {}", plan.backend.target()),
                os: "Linux",
                hint: "plan the container for Linux (ContainerPlan::new with Target::Linux)".into(),
            });
        }
        namespaces::refuse_unapplied(plan)?;
        let ns = namespaces::plan(plan)?;
        // Without root (rootless), namespaces need a user namespace of the caller's, and
        // there are no cgroups; without one clone would fail with a bare EPERM.
        let rootless = rootless::active();
        if rootless {
            rootless::check(plan, &ns)?;
        }
        ns.check_joins()?;
        sysctl::plan(
            linux_config(plan).and_then(|l| l.sysctl().as_ref()),
            ns.own(),
        )?;
        propagation::parse(root_propagation(plan))?;
        mounts::check(&plan.mounts)?;
        if !rootless {
            cgroups::check(plan)?;
        }
        confinement_check(plan)?;
        // What the plan found Linux does not apply, named once per create.
        let linux_warnings = plan.linux().map(|p| &p.warnings[..]).unwrap_or_default();
        for w in plan.warnings.iter().chain(linux_warnings) {
            tracing::warn!("{w}");
        }
        Ok(())
    }

    fn prepare_host(
        plan: &ContainerPlan,
        made: &mut Resources<LinuxMade>,
        journal: &mut Journal<'_, LinuxMade>,
    ) -> Result<(), PlatformError> {
        if rootless::active() {
            // No cgroups rootless (check said what that leaves unapplied).
            return Ok(());
        }
        // Everything else lives in the container's own namespaces and dies with them.
        // Each cgroup is journaled before it is made, so a SIGKILL between its mkdir and
        // create's next state write still leaves it named in the state.
        // Where update makes the cgroups of controllers limited later.
        made.backend.cgroups_path = cgroups::cgroups_path(plan).map(Path::to_path_buf);
        let journaled = std::cell::RefCell::new((made.clone(), journal));
        cgroups::create(plan, &mut made.backend.cgroups, &|dir| {
            let (record, journal) = &mut *journaled.borrow_mut();
            record.backend.cgroups.push(dir.to_path_buf());
            journal(record)
        })
    }

    fn spawn_init(
        plan: &ContainerPlan,
        made: &Resources<LinuxMade>,
        handoff: InitHandoff,
        init: InitEntry<Self>,
    ) -> Result<i32, PlatformError> {
        let ns = namespaces::plan(plan)?;
        // The seccomp filter is compiled here, before the clone, from the runtime's cache
        // when it can be: the init then only loads the program.
        let with_filter;
        let cache = seccomp_cache::runtime_dir();
        let plan = match seccomp_cache::prepare(
            &plan.process.confinement,
            cache.as_ref().map(|d| d.as_fd()),
        )? {
            Some(compiled) => {
                let mut p = plan.clone();
                p.process.confinement.compiled = Some(compiled);
                with_filter = p;
                &with_filter
            }
            None => plan,
        };
        // Decided here: the init, in a fresh cgroup namespace, can no longer see absolute
        // cgroup paths. It gets the view through the clone closure.
        let mut ctx = InitContext {
            become_root: false,
            unshare_cgroupns: false,
            cgroup_view: if plan
                .mounts
                .iter()
                .any(|m| matches!(m.type_name(), "cgroup" | "cgroup2"))
            {
                Some(cgroups::view_for_init(&made.backend.cgroups)?)
            } else {
                None
            },
        };
        let mut flags = ns.clone_flags;
        let place = cgroups::placement(&made.backend.cgroups)?;
        // A cgroup namespace is rooted at the cgroup its creator is in (also with
        // CLONE_INTO_CGROUP), so it is made only once the init is in the container's
        // cgroups: then the container sees its own cgroup (and limits) as its root, as runc
        // arranges.
        let late_cgroupns =
            !made.backend.cgroups.is_empty() && flags.contains(CloneFlags::CLONE_NEWCGROUP);
        if late_cgroupns {
            flags.remove(CloneFlags::CLONE_NEWCGROUP);
        }
        ctx.unshare_cgroupns = late_cgroupns;
        // The parent writes one byte once the init is in its cgroups; EOF means it never
        // will be (create is failing).
        let (joined_r, joined_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| call("pipe (cgroup hand-over)", e))?;
        let joined_w_raw = joined_w.as_raw_fd();
        let mut joined_r = Some(joined_r);
        let joined_user = ns.joined_user().map(join_user::host_root).transpose()?;
        if let Some((uid, gid)) = ns.user.as_ref().map(|m| m.host_root()).or(joined_user) {
            // The init opens the start fifo as the container's root, which is not the
            // host's root.
            nix::unistd::fchownat(
                handoff.state_dir.as_fd(),
                handoff.start_fifo,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| {
                call(
                    format!("chown of the start fifo to the container's root ({uid}:{gid})"),
                    e,
                )
            })?;
        }
        // The maps are written before the init goes on: it becomes the namespace's root as
        // the first step of `enter`.
        ctx.become_root = ns.user.is_some();
        // With a user namespace joined by path, a first stage joins the namespaces and
        // clones the init with the new ones (see join_user.rs); it reports on this pipe.
        let (first_flags, init_flags) = match joined_user {
            Some(_) => (CloneFlags::empty(), flags),
            None => (flags, CloneFlags::empty()),
        };
        let (report_r, mut report_w) = match joined_user {
            Some(_) => {
                let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                    .map_err(|e| call("pipe (the init's first stage)", e))?;
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let report_r_raw = report_r.as_ref().map(|r| r.as_raw_fd());
        let joins = ns.join.clone();
        // The rest of entering (`ctx.become_root`, `ctx.unshare_cgroupns`) is the first
        // thing `enter` does.
        let finish = move |h: InitHandoff| -> isize { init(plan, made, &ctx, h) };
        let mut handoff = Some(handoff);
        let child_main: Box<dyn FnMut() -> isize + '_> = Box::new(move || {
            // The closure runs once, in the child; the handoff is always there.
            let Some(mut h) = handoff.take() else {
                return 1;
            };
            h.close_inherited();
            let Some(r) = joined_r.take() else { return 1 };
            sys::close_fd(joined_w_raw);
            let mut byte = [0u8; 1];
            if !matches!(nix::unistd::read(&r, &mut byte), Ok(1)) {
                return 1;
            }
            drop(r);
            if let Some(report) = report_w.take() {
                if let Some(fd) = report_r_raw {
                    sys::close_fd(fd);
                }
                let report_raw = report.as_raw_fd();
                let mut h = Some(h);
                let finish = &finish;
                return join_user::first_stage(
                    &joins,
                    init_flags,
                    report,
                    Box::new(move || {
                        // The first stage's report pipe is not the init's to keep open.
                        sys::close_fd(report_raw);
                        h.take().map_or(1, finish)
                    }),
                );
            }
            finish(h)
        });
        // A joined PID namespace applies to the children of the process that joins it: the
        // init is cloned into it, and this process leaves it again right after.
        let in_pid_ns = ns
            .join_pid
            .as_ref()
            .map(join::PidForChildren::enter)
            .transpose()?;
        let cloned = cgroups::clone_placed(first_flags, place, child_main);
        drop(in_pid_ns);
        let (child, join) = cloned
            // The read end went with the closure, dropped here.
            .map_err(|e| call("clone (new namespaces for the init process)", e))?;
        // Limits hold, and the user namespace has its maps, before the init runs anything:
        // it waits for this byte.
        let prepared = match &ns.user {
            Some(maps) if rootless::active() => rootless::write_maps(maps, child.as_raw()),
            Some(maps) => maps.write(child.as_raw()),
            None => Ok(()),
        };
        if let Err(e) = prepared.and_then(|()| cgroups::join(&join, child.as_raw())) {
            // It exits on the pipe's end-of-file; reaped here since its pid is not returned.
            drop(joined_w);
            let _ = nix::sys::wait::waitpid(child, None);
            return Err(e);
        }
        nix::unistd::write(&joined_w, b"j").map_err(|e| call("write (cgroup hand-over)", e))?;
        drop(joined_w);
        match report_r {
            Some(report) => Ok(join_user::init_pid(child, report)?.as_raw()),
            None => Ok(child.as_raw()),
        }
    }

    fn enter(
        plan: &ContainerPlan,
        _made: &Resources<LinuxMade>,
        ctx: &InitContext,
        report: &mut dyn FnMut(&Path),
    ) -> Result<(), PlatformError> {
        // The maps are written: become the namespace's root, so what the init makes
        // (mount points, /dev) is owned by the mapped root, not by the host's.
        if ctx.become_root {
            let zero = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
            nix::unistd::setresgid(zero.0, zero.0, zero.0)
                .and_then(|()| nix::unistd::setresuid(zero.1, zero.1, zero.1))
                .map_err(|e| call("becoming root in the container's user namespace", e))?;
        }
        if ctx.unshare_cgroupns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| {
                call(
                    "unshare(CLONE_NEWCGROUP) after joining the container's cgroups",
                    e,
                )
            })?;
        }
        let ns = namespaces::plan(plan)?;
        // Decided before joining: which namespaces are the runtime's own is judged from here.
        let params = sysctl::plan(
            linux_config(plan).and_then(|l| l.sysctl().as_ref()),
            ns.own(),
        )?;
        for j in &ns.join {
            j.enter()?;
        }
        // In the container's IPC, network and UTS namespaces now; /proc is still the host's
        // mount, and its sys/ files act on the namespaces of the process writing them.
        sysctl::apply(&params)?;
        let root = plan.jail.path.as_path();
        // Unless the config asks for another propagation, nothing mounted here may
        // propagate back to the host.
        propagation::prepare(root, propagation::parse(root_propagation(plan))?)?;
        mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            call(
                format!("bind mount of the root {} onto itself", root.display()),
                e,
            )
        })?;
        let root_dev = std::fs::metadata(root)
            .map_err(|e| PlatformError::io(format!("inspecting {}", root.display()), &e))?
            .dev();
        for m in &plan.mounts {
            mounts::mount_one(root, root_dev, m, ctx.cgroup_view.as_ref(), report)?;
        }
        let nodes = match ns.in_user_namespace() {
            true => mounts::DeviceNodes::BindFromHost,
            false => mounts::DeviceNodes::Make,
        };
        mounts::default_devices(root, root_dev, nodes, report)?;
        if let Some(devices) = linux_config(plan).and_then(|l| l.devices().as_ref()) {
            mounts::make_linux_devices(root, devices, nodes)?;
        }
        if let Some(l) = linux_config(plan) {
            mounts::mask_paths(root, l.masked_paths().as_deref().unwrap_or(&[]))?;
            mounts::readonly_paths(root, l.readonly_paths().as_deref().unwrap_or(&[]))?;
        }

        Ok(())
    }

    fn enter_root(plan: &ContainerPlan, _made: &Resources<LinuxMade>) -> Result<(), PlatformError> {
        let root = plan.jail.path.as_path();
        chdir(root).map_err(|e| call(format!("chdir {}", root.display()), e))?;
        pivot_root(".", ".").map_err(|e| call(format!("pivot_root into {}", root.display()), e))?;
        propagation::before_detaching_old_root()?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| call("detaching the old root", e))?;
        chdir("/").map_err(|e| call("chdir /", e))?;
        propagation::finish(propagation::parse(root_propagation(plan))?)?;
        if plan.root_readonly {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| call("remounting the root read-only", e))?;
        }
        if let Host::New {
            hostname,
            domainname,
        } = &plan.jail.host
        {
            if let Some(h) = hostname {
                sethostname(h).map_err(|e| call(format!("sethostname {h:?}"), e))?;
            }
            if let Some(d) = domainname {
                sys::set_domainname(d).map_err(|e| call(format!("setdomainname {d:?}"), e))?;
            }
        }
        sys::exit_on_termination_signals();
        Ok(())
    }

    fn spawn_joined(
        made: &Resources<LinuxMade>,
        init_pid: i32,
        mut child: Box<dyn FnMut() -> isize + '_>,
    ) -> Result<i32, PlatformError> {
        let open = |ns: &str| {
            let path = format!("/proc/{init_pid}/ns/{ns}");
            std::fs::File::open(&path).map_err(|e| PlatformError::io(format!("opening {path}"), &e))
        };
        if rootless::active() {
            rootless::join_user_for_exec(open("user")?)?;
        }
        // This process's later children are born in the container's PID namespace.
        let pid_ns = open("pid")?;
        setns(pid_ns.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| call("joining the container's PID namespace", e))?;
        // The user namespace first, when the container has its own: the others are owned
        // by it, and joining it gives the capabilities there that joining them needs. The
        // mount namespace last: joining it moves root and cwd to the container's root.
        let mut others = Vec::new();
        for (ns, flag) in [
            ("user", CloneFlags::CLONE_NEWUSER),
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            let f = open(ns)?;
            if !join::is_own_namespace(ns, &f) {
                others.push((ns, flag, f));
            }
        }
        cgroups::ensure_reachable(&made.backend.cgroups)?;
        let place = cgroups::placement(&made.backend.cgroups)?;
        // Born into the v2 cgroup (device rules) where the kernel can; the rest joined.
        let born = std::cell::Cell::new(place.v2.is_some());
        let v2_dir = place.v2.as_ref().map(|(_, d)| d.clone());
        let v1 = place.v1;
        let mut forked: Box<dyn FnMut() -> isize + '_> = Box::new(|| {
            // Into the container's cgroups while the host's /sys/fs/cgroup is still the
            // one mounted here.
            let v2 = v2_dir.iter().filter(|_| !born.get());
            let join: Vec<PathBuf> = v2.chain(&v1).cloned().collect();
            if let Err(e) = cgroups::join(&join, 0) {
                eprintln!("stockade: error: exec: {e}");
                return 1;
            }
            for (ns, flag, f) in &others {
                if let Err(e) = setns(f.as_fd(), *flag) {
                    eprintln!("stockade: error: exec: joining the container's {ns} namespace: {e}");
                    return 1;
                }
            }
            if let Err(e) = chdir("/") {
                eprintln!("stockade: error: exec: chdir / in the container: {e}");
                return 1;
            }
            child()
        });
        let pid = match &place.v2 {
            Some((cgroup, _)) => {
                match cgroup_sys::clone_into_cgroup(
                    CloneFlags::empty(),
                    cgroup.as_fd(),
                    &mut *forked,
                ) {
                    Ok(pid) => pid,
                    Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG) => {
                        born.set(false);
                        sys::fork_child(forked)
                            .map_err(|e| call("fork (exec into the container)", e))?
                    }
                    Err(e) => return Err(call("clone3 (exec into the container)", e)),
                }
            }
            None => {
                sys::fork_child(forked).map_err(|e| call("fork (exec into the container)", e))?
            }
        };
        Ok(pid.as_raw())
    }

    fn before_user(
        process: &ProcessSpec,
        listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError> {
        // What needs the runtime's privileges goes first, while the process has them all.
        if let Some((class, level)) = process.io_priority {
            sys::set_io_priority(class, level).map_err(|e| {
                call(
                    format!("ioprio_set (process.ioPriority class {class}, priority {level})"),
                    e,
                )
            })?;
        }
        if let Some(v) = process.oom_score_adj {
            procfs::set_oom_score_adj(v)?;
        }
        lsm::apply(&process.confinement)?;
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while the
        // process still has it, as runc does.
        if !process.no_new_privileges {
            load_seccomp(process, listener)?;
        }
        caps::before_user(&process.confinement.capabilities)
    }

    fn precompile_confinement(confinement: &mut Confinement) -> Result<(), PlatformError> {
        // What create warns about in confinement_check, said once for the exec'd process.
        let unraisable = caps::ambient_unraisable(&confinement.capabilities);
        if !unraisable.is_empty() {
            tracing::warn!(
                "process.capabilities.ambient: {} not in both the permitted and the inheritable set; the kernel cannot raise them, so they are skipped (as runc does)",
                unraisable.join(", ")
            );
        }
        let cache = seccomp_cache::runtime_dir();
        confinement.compiled =
            seccomp_cache::prepare(confinement, cache.as_ref().map(|d| d.as_fd()))?;
        Ok(())
    }

    fn before_exec(
        process: &ProcessSpec,
        listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError> {
        caps::after_user(&process.confinement.capabilities)?;
        if process.no_new_privileges {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|e| call("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
            load_seccomp(process, listener)?;
        }
        Ok(())
    }

    fn update_limits(
        made: &mut Resources<LinuxMade>,
        change: &super::LimitsChange<'_>,
        journal: &mut Journal<'_, LinuxMade>,
    ) -> Result<(), PlatformError> {
        rootless::refuse_update()?;
        cgroups::ensure_reachable(&made.backend.cgroups)?;
        let init = change.init_pid;
        let cgroups = made.backend.cgroups.clone();
        let pids = move || {
            let mut pids = pids::of_container(&cgroups, init);
            if !pids.contains(&init) {
                pids.push(init);
            }
            pids
        };
        // Each new cgroup is journaled, with what is recorded already, before it is made.
        let journaled = std::cell::RefCell::new((made.clone(), journal));
        cgroups::update(
            change.id.as_str(),
            made.backend.cgroups_path.clone().as_deref(),
            &change.before,
            &change.after,
            &mut made.backend.cgroups,
            &pids,
            &|dir| {
                let (record, journal) = &mut *journaled.borrow_mut();
                if !record.backend.cgroups.iter().any(|c| c == dir) {
                    record.backend.cgroups.push(dir.to_path_buf());
                }
                journal(record)
            },
        )
    }

    fn destroy(made: &Resources<LinuxMade>) -> Vec<PlatformError> {
        if let Err(e) = cgroups::ensure_reachable(&made.backend.cgroups) {
            return vec![e];
        }
        cgroups::remove(&made.backend.cgroups)
    }
}
