//! Parsing and validation of `linux.seccomp`.

use super::*;
use serde_json::json;

fn parse_v(v: Value) -> Result<SeccompProfile, ConfigError> {
    let Value::Object(m) = v else { unreachable!() };
    parse(&m)
}

#[test]
fn a_full_profile_is_typed() {
    let p = parse_v(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["ptrace"], "action": "SCMP_ACT_KILL"},
            {"names": ["chmod"], "action": "SCMP_ACT_TRACE"}
        ]
    }))
    .unwrap();
    assert_eq!(p.default_action, SeccompAction::Errno(38));
    assert_eq!(p.architectures, vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    assert_eq!(p.syscalls[1].action, SeccompAction::Errno(13));
    assert_eq!(
        p.syscalls[2].args[0],
        SeccompArg {
            index: 0,
            value: 255,
            value_two: 8,
            op: SeccompOp::MaskedEqual
        }
    );
    assert_eq!(p.syscalls[3].action, SeccompAction::KillThread);
    assert_eq!(p.syscalls[4].action, SeccompAction::Trace(1));
    let p = parse_v(json!({"defaultAction": "SCMP_ACT_ERRNO"})).unwrap();
    assert_eq!(p.default_action, SeccompAction::Errno(1));
}

#[test]
fn bad_names_are_errors_naming_the_json_path() {
    for (v, path, hint) in [
        (
            json!({"defaultAction": "SCMP_ACT_NOPE"}),
            "linux.seccomp.defaultAction",
            "SCMP_ACT_ALLOW",
        ),
        (json!({}), "linux.seccomp.defaultAction", "required"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
            "linux.seccomp.architectures[0]",
            "SCMP_ARCH_X86_64",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}),
            "linux.seccomp.flags[0]",
            "SECCOMP_FILTER_FLAG_LOG",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}, {"names": ["b"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}),
            "linux.seccomp.syscalls[1].args[0].op",
            "SCMP_CMP_MASKED_EQ",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index",
            "0 to 5",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
            "linux.seccomp.syscalls[0].names",
            "non-empty",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}),
            "linux.seccomp.syscalls[0].errnoRet",
            "only returned by",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}),
            "linux.seccomp.listenerPath",
            "no rule uses",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "rel.sock"}),
            "linux.seccomp.listenerPath",
            "absolute",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": -1}),
            "linux.seccomp.defaultErrnoRet",
            "errno",
        ),
    ] {
        let err = parse_v(v).unwrap_err().to_string();
        assert!(
            err.contains(path) && err.contains(hint),
            "{err} lacks {path} / {hint}"
        );
    }
}

#[test]
fn notify_needs_and_keeps_its_listener() {
    let p = parse_v(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "hello",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .unwrap();
    assert!(p.notifies());
    assert_eq!(p.listener_metadata, "hello");
}
