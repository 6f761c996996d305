//! `linux.seccomp` compiled with libseccomp and loaded into the calling process, with runc's
//! choices: syscall names this architecture does not know are skipped, a rule whose action is
//! the default is skipped, rules whose conditions name one argument twice are split into one
//! rule per condition (libseccomp ANDs conditions on distinct arguments only), and
//! libseccomp never sets no_new_privs itself (the config's `noNewPrivileges` decides).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use crate::config::seccomp::{SeccompAction, SeccompArg, SeccompOp, SeccompProfile};
use crate::platform::PlatformError;

fn failed(what: impl Into<String>, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Failed {
        call: what.into(),
        detail: e.to_string(),
    }
}

fn action(a: SeccompAction) -> ScmpAction {
    match a {
        SeccompAction::KillThread => ScmpAction::KillThread,
        SeccompAction::KillProcess => ScmpAction::KillProcess,
        SeccompAction::Trap => ScmpAction::Trap,
        SeccompAction::Errno(n) => ScmpAction::Errno(i32::from(n)),
        SeccompAction::Trace(n) => ScmpAction::Trace(n),
        SeccompAction::Allow => ScmpAction::Allow,
        SeccompAction::Log => ScmpAction::Log,
        SeccompAction::Notify => ScmpAction::Notify,
    }
}

fn condition(a: &SeccompArg) -> ScmpArgCompare {
    let (op, datum) = match a.op {
        SeccompOp::NotEqual => (ScmpCompareOp::NotEqual, a.value),
        SeccompOp::LessThan => (ScmpCompareOp::Less, a.value),
        SeccompOp::LessOrEqual => (ScmpCompareOp::LessOrEqual, a.value),
        SeccompOp::Equal => (ScmpCompareOp::Equal, a.value),
        SeccompOp::GreaterOrEqual => (ScmpCompareOp::GreaterEqual, a.value),
        SeccompOp::GreaterThan => (ScmpCompareOp::Greater, a.value),
        // The spec's value is the mask, valueTwo the datum: (arg & value) == valueTwo.
        SeccompOp::MaskedEqual => (ScmpCompareOp::MaskedEqual(a.value), a.value_two),
    };
    ScmpArgCompare::new(u32::from(a.index), op, datum)
}

/// Compiles `p` for this machine.
pub fn compile(p: &SeccompProfile) -> Result<ScmpFilterContext, PlatformError> {
    const P: &str = "linux.seccomp";
    let mut ctx = ScmpFilterContext::new(action(p.default_action))
        .map_err(|e| failed(format!("{P}.defaultAction: creating the filter"), e))?;
    ctx.set_ctl_nnp(false)
        .map_err(|e| failed("seccomp: leaving no_new_privs to the config", e))?;
    for (i, name) in p.architectures.iter().enumerate() {
        let arch: ScmpArch = name
            .parse()
            .map_err(|e| failed(format!("{P}.architectures[{i}] {name}"), e))?;
        if !ctx.is_arch_present(arch).unwrap_or(false) {
            ctx.add_arch(arch)
                .map_err(|e| failed(format!("{P}.architectures[{i}] {name}"), e))?;
        }
    }
    for (i, flag) in p.flags.iter().enumerate() {
        let path = format!("{P}.flags[{i}] {flag}");
        match flag.as_str() {
            "SECCOMP_FILTER_FLAG_LOG" => ctx.set_ctl_log(true).map(drop),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => ctx.set_ctl_ssb(true).map(drop),
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => ctx.set_ctl_waitkill(true).map(drop),
            // The loading process has one thread: there is nothing to synchronise.
            _ => Ok(()),
        }
        .map_err(|e| {
            failed(
                format!("{path} (not supported by this host's libseccomp or kernel)"),
                e,
            )
        })?;
    }
    for (i, rule) in p.syscalls.iter().enumerate() {
        if rule.action == p.default_action {
            continue;
        }
        let act = action(rule.action);
        let repeated = rule
            .args
            .iter()
            .enumerate()
            .any(|(j, a)| rule.args[..j].iter().any(|b| b.index == a.index));
        let groups: Vec<Vec<ScmpArgCompare>> = if repeated {
            rule.args.iter().map(|a| vec![condition(a)]).collect()
        } else {
            vec![rule.args.iter().map(condition).collect()]
        };
        for name in &rule.names {
            // Unknown on this architecture (or to this libseccomp): skipped, as runc does.
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                continue;
            };
            for conds in &groups {
                ctx.add_rule_conditional(act, sys, conds).map_err(|e| {
                    failed(format!("{P}.syscalls[{i}] adding the rule for {name:?}"), e)
                })?;
            }
        }
    }
    Ok(ctx)
}

/// Loads the compiled filter into the calling process; with a notify rule, returns the
/// listener descriptor the kernel made.
pub fn load(ctx: &ScmpFilterContext, p: &SeccompProfile) -> Result<Option<i32>, PlatformError> {
    ctx.load()
        .map_err(|e| failed("loading the seccomp filter (linux.seccomp)", e))?;
    if !p.notifies() {
        return Ok(None);
    }
    ctx.get_notify_fd()
        .map(Some)
        .map_err(|e| failed("seccomp: getting the notify descriptor", e))
}

/// Sends the notify descriptor to the agent at `listenerPath` as runc does: one message with
/// the descriptor as SCM_RIGHTS and the `ContainerProcessState` JSON as the payload. `fd`
/// is the number libseccomp's context holds (it stays open in this process until exec).
pub fn send_to_listener(
    socket: &UnixStream,
    fd: i32,
    state: &[u8],
    p: &SeccompProfile,
) -> Result<(), PlatformError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let state: serde_json::Value = serde_json::from_slice(state).unwrap_or_default();
    let doc = serde_json::json!({
        "ociVersion": crate::config::SPEC_VERSION,
        "fds": ["seccompFd"],
        "pid": std::process::id(),
        "metadata": p.listener_metadata,
        "state": state,
    });
    let payload = serde_json::to_vec(&doc).unwrap_or_default();
    let iov = [std::io::IoSlice::new(&payload)];
    let fds = [fd];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        // A listener that went away is an error to report, not a SIGPIPE that kills the
        // process without a word.
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| {
        failed(
            "sending the seccomp notify descriptor to linux.seccomp.listenerPath",
            e,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::seccomp::parse;

    fn profile(v: serde_json::Value) -> SeccompProfile {
        let serde_json::Value::Object(m) = v else {
            unreachable!()
        };
        parse(&m).unwrap()
    }

    #[test]
    fn unknown_syscalls_are_skipped_and_the_rest_compiles() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "no_such_syscall_at_all", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
            ]
        }));
        let ctx = compile(&p).unwrap();
        assert!(!ctx.get_ctl_nnp().unwrap());
        assert_eq!(ctx.get_act_default().unwrap(), ScmpAction::Errno(1));
    }
}
