//! `linux.seccomp` (runtime-spec 1.3.0), read from the raw document into a typed profile.
//! Every name is checked here, once, so that a bad action, operator, architecture or flag is
//! a create error naming its JSON path; the Linux backend only compiles what is valid.

use serde_json::{Map, Value};

use super::{json, ConfigError};

/// The architectures of runtime-spec 1.3.0's `SeccompArch`.
pub const ARCHITECTURES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

/// The filter flags a profile may name. TSYNC is accepted and has nothing to do: the
/// process that loads the filter has a single thread.
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The actions, by their spec names.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// The argument comparison operators, by their spec names.
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// What a rule (or the default) does. `Errno` and `Trace` carry the value returned (runc's
/// default when `errnoRet` is absent: EPERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SeccompAction {
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Allow,
    Log,
    Notify,
}

/// An argument comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SeccompOp {
    NotEqual,
    LessThan,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    GreaterThan,
    /// `(arg & value) == value_two`.
    MaskedEqual,
}

/// One `args` entry of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeccompArg {
    pub index: u8,
    pub value: u64,
    pub value_two: u64,
    pub op: SeccompOp,
}

/// One `syscalls` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeccompRule {
    pub names: Vec<String>,
    pub action: SeccompAction,
    pub args: Vec<SeccompArg>,
}

/// A whole `linux.seccomp` profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeccompProfile {
    pub default_action: SeccompAction,
    /// The spec's `SCMP_ARCH_*` names, checked against [`ARCHITECTURES`].
    pub architectures: Vec<String>,
    /// The spec's `SECCOMP_FILTER_FLAG_*` names, checked against [`FLAGS`].
    pub flags: Vec<String>,
    pub listener_path: Option<std::path::PathBuf>,
    pub listener_metadata: String,
    pub syscalls: Vec<SeccompRule>,
}

impl SeccompProfile {
    /// Whether any rule (or the default) hands syscalls to a listener.
    pub fn notifies(&self) -> bool {
        self.default_action == SeccompAction::Notify
            || self
                .syscalls
                .iter()
                .any(|r| r.action == SeccompAction::Notify)
    }
}

/// Most arguments a syscall has.
const MAX_ARGS: u64 = 6;
/// A bound on the rules and names one profile may carry (containerd's default has about 400
/// names); far above any real profile, it keeps a hostile config from costing the compiler
/// unbounded time.
const MAX_NAMES: usize = 16 * 1024;

const EPERM: u16 = 1;

/// Removes `linux.seccomp` from a raw document and parses it.
pub(crate) fn take(root: &mut Map<String, Value>) -> Result<Option<SeccompProfile>, ConfigError> {
    let Some(Value::Object(linux)) = root.get_mut("linux") else {
        return Ok(None);
    };
    match linux.remove("seccomp") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => parse(&m).map(Some),
        Some(other) => Err(ConfigError::untrusted(
            "linux.seccomp",
            json::compact(&other),
            "an object with defaultAction and syscalls",
        )),
    }
}

/// Parses a `linux.seccomp` object.
pub fn parse(obj: &Map<String, Value>) -> Result<SeccompProfile, ConfigError> {
    const P: &str = "linux.seccomp";
    let known = [
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "syscalls",
    ];
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ConfigError::untrusted(
            format!("{P}.{k}"),
            stockade_quote::quote(k).to_string(),
            format!("one of {}", known.join(", ")),
        ));
    }
    let default_errno = errno_ret(obj, &format!("{P}.defaultErrnoRet"))?;
    let default_name = json::string(obj, "defaultAction", &format!("{P}.defaultAction"))?
        .ok_or_else(|| ConfigError::Missing {
            path: format!("{P}.defaultAction"),
            expected: format!("one of {}", ACTIONS.join(", ")),
        })?;
    let default_action = action(
        default_name,
        default_errno,
        &format!("{P}.defaultAction"),
        &format!("{P}.defaultErrnoRet"),
    )?;
    let architectures = names(obj, "architectures", P, ARCHITECTURES)?;
    let flags = names(obj, "flags", P, FLAGS)?;
    let listener_path = json::string(obj, "listenerPath", &format!("{P}.listenerPath"))?
        .map(std::path::PathBuf::from);
    if let Some(p) = &listener_path {
        if !p.is_absolute() {
            return Err(ConfigError::untrusted(
                format!("{P}.listenerPath"),
                stockade_quote::quote_os(p.as_os_str()).to_string(),
                "the absolute path of a unix socket on the host",
            ));
        }
    }
    let listener_metadata =
        json::string(obj, "listenerMetadata", &format!("{P}.listenerMetadata"))?
            .unwrap_or_default()
            .to_string();
    let mut syscalls = Vec::new();
    let mut total_names = 0usize;
    match obj.get("syscalls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let r = rule(item, &format!("{P}.syscalls[{i}]"))?;
                total_names += r.names.len();
                if total_names > MAX_NAMES {
                    return Err(ConfigError::untrusted(
                        format!("{P}.syscalls[{i}].names"),
                        format!("{total_names} names so far"),
                        format!("at most {MAX_NAMES} syscall names in one profile"),
                    ));
                }
                syscalls.push(r);
            }
        }
        Some(other) => {
            return Err(ConfigError::untrusted(
                format!("{P}.syscalls"),
                json::compact(other),
                "an array of {names, action} objects",
            ))
        }
    }
    let profile = SeccompProfile {
        default_action,
        architectures,
        flags,
        listener_path,
        listener_metadata,
        syscalls,
    };
    match (profile.notifies(), &profile.listener_path) {
        (true, None) => Err(ConfigError::Missing {
            path: format!("{P}.listenerPath"),
            expected: "the unix socket that receives the notify descriptor, since a rule uses SCMP_ACT_NOTIFY".into(),
        }),
        (false, Some(_)) => Err(ConfigError::conflict(
            format!("{P}.listenerPath"),
            format!("{P}.syscalls"),
            "a listener is given but no rule uses SCMP_ACT_NOTIFY",
        )),
        _ => Ok(profile),
    }
}

fn errno_ret(obj: &Map<String, Value>, path: &str) -> Result<Option<u16>, ConfigError> {
    let key = path.rsplit('.').next().unwrap_or(path);
    Ok(json::uint(obj, key, path, u16::MAX as u64, "an errno number")?.map(|n| n as u16))
}

/// An action by its spec name; `errno` is the rule's `errnoRet`.
fn action(
    name: &str,
    errno: Option<u16>,
    path: &str,
    errno_path: &str,
) -> Result<SeccompAction, ConfigError> {
    let a = match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_ERRNO" => return Ok(SeccompAction::Errno(errno.unwrap_or(EPERM))),
        "SCMP_ACT_TRACE" => return Ok(SeccompAction::Trace(errno.unwrap_or(EPERM))),
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_NOTIFY" => SeccompAction::Notify,
        other => {
            return Err(ConfigError::untrusted(
                path,
                stockade_quote::quote(other).to_string(),
                format!("one of {}", ACTIONS.join(", ")),
            ))
        }
    };
    if errno.is_some() {
        return Err(ConfigError::conflict(
            errno_path,
            path,
            format!("an errno is only returned by SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {name}"),
        ));
    }
    Ok(a)
}

/// `obj[key]`, an array of names each in `accepted`, without duplicates.
fn names(
    obj: &Map<String, Value>,
    key: &str,
    parent: &str,
    accepted: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let path = format!("{parent}.{key}");
    let items = match obj.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(ConfigError::untrusted(
                path,
                json::compact(other),
                format!("an array of names from {}", accepted.join(", ")),
            ))
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = match item {
            Value::String(s) if accepted.contains(&s.as_str()) => s,
            Value::String(s) => {
                return Err(ConfigError::untrusted(
                    format!("{path}[{i}]"),
                    stockade_quote::quote(s).to_string(),
                    format!("one of {}", accepted.join(", ")),
                ))
            }
            other => {
                return Err(ConfigError::untrusted(
                    format!("{path}[{i}]"),
                    json::compact(other),
                    format!("one of {}", accepted.join(", ")),
                ))
            }
        };
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn rule(item: &Value, path: &str) -> Result<SeccompRule, ConfigError> {
    let Value::Object(obj) = item else {
        return Err(ConfigError::untrusted(
            path,
            json::compact(item),
            "an object with names and action",
        ));
    };
    let known = ["names", "action", "errnoRet", "args", "comment"];
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ConfigError::untrusted(
            format!("{path}.{k}"),
            stockade_quote::quote(k).to_string(),
            "one of names, action, errnoRet, args",
        ));
    }
    let names_path = format!("{path}.names");
    let names: Vec<String> = match obj.get("names") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(ConfigError::untrusted(
                    format!("{names_path}[{i}]"),
                    json::compact(other),
                    "a syscall name such as \"mount\"",
                )),
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => {
            return Err(ConfigError::Missing {
                path: names_path,
                expected: "a non-empty array of syscall names".into(),
            })
        }
        Some(other) => {
            return Err(ConfigError::untrusted(
                names_path,
                json::compact(other),
                "a non-empty array of syscall names",
            ))
        }
    };
    let errno = errno_ret(obj, &format!("{path}.errnoRet"))?;
    let action_name = json::string(obj, "action", &format!("{path}.action"))?.ok_or_else(|| {
        ConfigError::Missing {
            path: format!("{path}.action"),
            expected: format!("one of {}", ACTIONS.join(", ")),
        }
    })?;
    let action = action(
        action_name,
        errno,
        &format!("{path}.action"),
        &format!("{path}.errnoRet"),
    )?;
    let mut args = Vec::new();
    match obj.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, a) in items.iter().enumerate() {
                args.push(arg(a, &format!("{path}.args[{i}]"))?);
            }
        }
        Some(other) => {
            return Err(ConfigError::untrusted(
                format!("{path}.args"),
                json::compact(other),
                "an array of {index, value, op} objects",
            ))
        }
    }
    Ok(SeccompRule {
        names,
        action,
        args,
    })
}

fn arg(item: &Value, path: &str) -> Result<SeccompArg, ConfigError> {
    let Value::Object(obj) = item else {
        return Err(ConfigError::untrusted(
            path,
            json::compact(item),
            "an object with index, value and op",
        ));
    };
    let required = |key: &str, max: u64, what: &str| -> Result<u64, ConfigError> {
        json::uint(obj, key, &format!("{path}.{key}"), max, what)?.ok_or_else(|| {
            ConfigError::Missing {
                path: format!("{path}.{key}"),
                expected: what.to_string(),
            }
        })
    };
    let index = required("index", MAX_ARGS - 1, "an argument index from 0 to 5")? as u8;
    let value = required("value", u64::MAX, "an unsigned 64-bit integer")?;
    let value_two = json::uint(
        obj,
        "valueTwo",
        &format!("{path}.valueTwo"),
        u64::MAX,
        "an unsigned 64-bit integer",
    )?
    .unwrap_or(0);
    let op_path = format!("{path}.op");
    let op_name = json::string(obj, "op", &op_path)?.ok_or_else(|| ConfigError::Missing {
        path: op_path.clone(),
        expected: format!("one of {}", OPERATORS.join(", ")),
    })?;
    let op = match op_name {
        "SCMP_CMP_NE" => SeccompOp::NotEqual,
        "SCMP_CMP_LT" => SeccompOp::LessThan,
        "SCMP_CMP_LE" => SeccompOp::LessOrEqual,
        "SCMP_CMP_EQ" => SeccompOp::Equal,
        "SCMP_CMP_GE" => SeccompOp::GreaterOrEqual,
        "SCMP_CMP_GT" => SeccompOp::GreaterThan,
        "SCMP_CMP_MASKED_EQ" => SeccompOp::MaskedEqual,
        other => {
            return Err(ConfigError::untrusted(
                op_path,
                stockade_quote::quote(other).to_string(),
                format!("one of {}", OPERATORS.join(", ")),
            ))
        }
    };
    Ok(SeccompArg {
        index,
        value,
        value_two,
        op,
    })
}

#[cfg(test)]
mod tests;
