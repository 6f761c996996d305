//! Loading and validating a bundle's `config.json` into a [`ContainerConfig`].
//!
//! The common and Linux parts are parsed by `oci-spec`; the runtime-spec 1.3.0 `freebsd`
//! section, the `org.freebsd.*` annotations and `process.rlimits` (whose `oci-spec` type
//! only knows Linux names) are read here. Precedence for jail settings, highest first: the
//! `freebsd` section, the annotations, `linux.namespaces`, then stockade's defaults.

mod addresses;
mod annotations;
pub mod capabilities;
mod default_seccomp;
mod error;
pub mod freebsd;
mod json;
mod rules;
pub mod seccomp;
mod template;
mod validate;
mod version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::{Map, Value};

pub use addresses::MAX_ADDRESSES;
pub use annotations::PARENT_JAIL;
pub use capabilities::CapabilitySets;
pub use error::ConfigError;
pub use freebsd::{DeviceRule, JailSettings, Setting, SharingMode};
pub use seccomp::SeccompProfile;
pub use template::{
    add_linux_image_defaults, add_rootless_user_namespace, default_freebsd_config,
    IMAGE_DEFAULT_CAPABILITIES,
};
pub use version::{check_oci_version, SPEC_VERSION};

/// The file name of a bundle's configuration.
pub const CONFIG_FILE: &str = "config.json";

/// One `process.rlimits` entry, by its spec name (`RLIMIT_NOFILE`). Whether the platform
/// has that limit is decided when the process is prepared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// A validated container configuration. Once one exists it is consistent: later code does
/// not re-check what is checked here.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The common and Linux parts, as parsed by `oci-spec` (without `process.rlimits`).
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute root filesystem path (`root.path` resolved against the bundle).
    pub root: PathBuf,
    /// `root.readonly`.
    pub root_readonly: bool,
    /// `process.rlimits`.
    pub rlimits: Vec<Rlimit>,
    /// Annotations (string values only, as the spec requires).
    pub annotations: BTreeMap<String, String>,
    /// `freebsd.devices`.
    pub devices: Vec<DeviceRule>,
    /// Jail settings after merging the section, annotations and `linux.namespaces`.
    pub jail: JailSettings,
    /// `process.capabilities` (empty sets when absent, as with runc).
    pub capabilities: CapabilitySets,
    /// `linux.seccomp`.
    pub seccomp: Option<SeccompProfile>,
}

impl ContainerConfig {
    /// Reads `<bundle>/config.json`. `bundle` is made absolute against the current directory.
    pub fn load(bundle: &Path) -> Result<Self, ConfigError> {
        let bundle = std::path::absolute(bundle).map_err(|source| ConfigError::Read {
            file: bundle.to_path_buf(),
            source,
        })?;
        let file = bundle.join(CONFIG_FILE);
        let bytes = std::fs::read(&file).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|source| ConfigError::Json {
            file: file.clone(),
            source,
        })?;
        Self::from_value(value, &bundle)
    }

    /// Validates an already-parsed document; `bundle` must be absolute.
    pub fn from_value(mut value: Value, bundle: &Path) -> Result<Self, ConfigError> {
        let Value::Object(root) = &mut value else {
            return Err(ConfigError::Shape {
                path: "(document)".into(),
                message: format!(
                    "{} is not valid here; expected a JSON object",
                    json::kind(&value)
                ),
            });
        };
        match root.get("ociVersion") {
            Some(Value::String(v)) => check_oci_version(v)?,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "ociVersion",
                    json::compact(other),
                    "a string such as \"1.3.0\"",
                ))
            }
            None => {
                return Err(ConfigError::Missing {
                    path: "ociVersion".into(),
                    expected: "a runtime-spec 1.x version such as \"1.3.0\"".into(),
                })
            }
        }
        let rlimits = take_rlimits(root)?;
        let capabilities = take_capabilities(root)?;
        let seccomp = seccomp::take(root)?;
        default_process_user(root)?;
        list_no_namespaces(root);
        let section = freebsd::parse_section(root)?;

        let spec: Spec =
            serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Shape {
                path: e.path().to_string(),
                message: e.into_inner().to_string(),
            })?;
        validate::check(&spec)?;

        let root_cfg = spec.root().as_ref().ok_or_else(|| ConfigError::Missing {
            path: "root".into(),
            expected: "an object with \"path\", the root filesystem relative to the bundle".into(),
        })?;
        if root_cfg.path().as_os_str().is_empty() {
            return Err(ConfigError::Missing {
                path: "root.path".into(),
                expected: "the root filesystem's path, absolute or relative to the bundle".into(),
            });
        }
        let rootfs = bundle.join(root_cfg.path());
        let root_readonly = root_cfg.readonly().unwrap_or(false);

        if let Some(process) = spec.process() {
            match process.args() {
                Some(args) if !args.is_empty() => {
                    if args[0].is_empty() {
                        return Err(ConfigError::invalid(
                            "process.args[0]",
                            "",
                            "the program to run, a path or a name looked up in PATH",
                        ));
                    }
                }
                _ => {
                    return Err(ConfigError::Missing {
                        path: "process.args".into(),
                        expected: "at least one element: the program to run".into(),
                    })
                }
            }
            if !process.cwd().is_absolute() {
                return Err(ConfigError::invalid(
                    "process.cwd",
                    process.cwd().display().to_string(),
                    "an absolute path inside the container",
                ));
            }
        }

        let annotations: BTreeMap<String, String> = spec
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let from_annotations = annotations::parse_annotations(&annotations)?;
        let jail = section
            .jail
            .or(from_annotations)
            .or(from_linux_namespaces(&spec));
        rules::check(
            &jail,
            spec.hostname().as_deref(),
            spec.domainname().as_deref(),
        )?;

        Ok(ContainerConfig {
            spec,
            bundle: bundle.to_path_buf(),
            root: rootfs,
            root_readonly,
            rlimits,
            annotations,
            devices: section.devices,
            jail,
            capabilities,
            seccomp,
        })
    }

    /// The container's process; `create` needs one, `explain` does not.
    pub fn process(&self) -> Result<&oci_spec::runtime::Process, ConfigError> {
        self.spec
            .process()
            .as_ref()
            .ok_or_else(|| ConfigError::Missing {
                path: "process".into(),
                expected: "an object with args, cwd and user: what the container runs".into(),
            })
    }
}

/// A `process` object parsed on its own: the `oci-spec` part and what stockade reads itself.
#[derive(Debug, Clone)]
pub struct ParsedProcess {
    pub process: oci_spec::runtime::Process,
    pub rlimits: Vec<Rlimit>,
    pub capabilities: CapabilitySets,
}

/// Parses a runtime-spec `process` object on its own (for `exec --process`), with the same
/// rules as in config.json; paths in errors start at `process`.
pub fn parse_process(value: Value) -> Result<ParsedProcess, ConfigError> {
    let mut root = Map::new();
    root.insert("process".into(), value);
    let rlimits = take_rlimits(&mut root)?;
    let capabilities = take_capabilities(&mut root)?;
    default_process_user(&mut root)?;
    let process = root.remove("process").unwrap_or(Value::Null);
    let p: oci_spec::runtime::Process =
        serde_path_to_error::deserialize(process).map_err(|e| ConfigError::Shape {
            path: format!("process.{}", e.path()),
            message: e.into_inner().to_string(),
        })?;
    if p.args()
        .as_ref()
        .is_none_or(|a| a.is_empty() || a[0].is_empty())
    {
        return Err(ConfigError::Missing {
            path: "process.args".into(),
            expected: "at least one element: the program to run".into(),
        });
    }
    Ok(ParsedProcess {
        process: p,
        rlimits,
        capabilities,
    })
}

/// Removes `process.capabilities` from the document and parses it (see `capabilities`).
fn take_capabilities(root: &mut Map<String, Value>) -> Result<CapabilitySets, ConfigError> {
    match root.get_mut("process") {
        Some(Value::Object(process)) => capabilities::take(process),
        _ => Ok(CapabilitySets::default()),
    }
}

/// Removes `process.rlimits` from the document (so `oci-spec`'s Linux-only enum never sees
/// FreeBSD names) and parses it.
fn take_rlimits(root: &mut Map<String, Value>) -> Result<Vec<Rlimit>, ConfigError> {
    let Some(Value::Object(process)) = root.get_mut("process") else {
        return Ok(Vec::new());
    };
    let Some(raw) = process.remove("rlimits") else {
        return Ok(Vec::new());
    };
    let items = match raw {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(ConfigError::invalid(
                "process.rlimits",
                json::compact(&other),
                "an array of {\"type\", \"soft\", \"hard\"} objects",
            ))
        }
    };
    let mut out: Vec<Rlimit> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("process.rlimits[{i}]");
        let Value::Object(obj) = &item else {
            return Err(ConfigError::invalid(
                &path,
                json::compact(&item),
                "an object with type, soft and hard",
            ));
        };
        let name = json::string(obj, "type", &format!("{path}.type"))?.ok_or_else(|| {
            ConfigError::Missing {
                path: format!("{path}.type"),
                expected: "a limit name such as \"RLIMIT_NOFILE\"".into(),
            }
        })?;
        if !name.starts_with("RLIMIT_") || name.len() <= "RLIMIT_".len() {
            return Err(ConfigError::invalid(
                format!("{path}.type"),
                name,
                "a limit name such as \"RLIMIT_NOFILE\"",
            ));
        }
        let num = |key: &str| -> Result<u64, ConfigError> {
            json::uint(
                obj,
                key,
                &format!("{path}.{key}"),
                u64::MAX,
                "an unsigned integer",
            )?
            .ok_or_else(|| ConfigError::Missing {
                path: format!("{path}.{key}"),
                expected: "an unsigned integer".into(),
            })
        };
        let (soft, hard) = (num("soft")?, num("hard")?);
        if soft > hard {
            return Err(ConfigError::conflict(
                format!("{path}.soft"),
                format!("{path}.hard"),
                format!("the soft limit {soft} is above the hard limit {hard}"),
            ));
        }
        if out.iter().any(|r| r.name == name) {
            return Err(ConfigError::invalid(
                format!("{path}.type"),
                name,
                "each limit listed once",
            ));
        }
        out.push(Rlimit {
            name: name.to_string(),
            soft,
            hard,
        });
    }
    Ok(out)
}

/// Gives a `process` without `user` the root user. The spec makes `user` required on POSIX
/// platforms, yet its own FreeBSD example omits it, and runj and ocijail both run such a
/// process as root; `oci-spec` would reject it. `cwd` has no safe default and must be given.
fn default_process_user(root: &mut Map<String, Value>) -> Result<(), ConfigError> {
    let Some(Value::Object(process)) = root.get_mut("process") else {
        return Ok(());
    };
    if !process.contains_key("cwd") {
        return Err(ConfigError::Missing {
            path: "process.cwd".into(),
            expected: "the absolute working directory inside the container, such as \"/\"".into(),
        });
    }
    process
        .entry("user")
        .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    Ok(())
}

/// Makes a `linux` object without `namespaces` list none (every namespace the runtime's
/// own), as runc reads it, unless the configuration has a `freebsd` section: a jail
/// configuration's `linux` object (often only `resources`, which FreeBSD applies as rctl
/// rules) says nothing about namespaces, and the jail model decides.
fn list_no_namespaces(root: &mut Map<String, Value>) {
    if root.contains_key("freebsd") {
        return;
    }
    if let Some(Value::Object(linux)) = root.get_mut("linux") {
        linux
            .entry("namespaces")
            .or_insert_with(|| Value::Array(Vec::new()));
    }
}

/// What `linux.namespaces` says about the jail: uts → host, network → vnet, ipc → SysV IPC.
/// Absent types share the host's (inherit); without a namespace list nothing is said.
fn from_linux_namespaces(spec: &Spec) -> JailSettings {
    let Some(list) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return JailSettings::default();
    };
    let find = |t: LinuxNamespaceType| list.iter().position(|n| n.typ() == t);
    let mode = |t: LinuxNamespaceType| match find(t) {
        Some(i) => Setting::new(SharingMode::New, format!("linux.namespaces[{i}]")),
        None => Setting::new(SharingMode::Inherit, "linux.namespaces"),
    };
    let ipc = mode(LinuxNamespaceType::Ipc);
    JailSettings {
        host: Some(mode(LinuxNamespaceType::Uts)),
        vnet: find(LinuxNamespaceType::Network)
            .map(|i| Setting::new(SharingMode::New, format!("linux.namespaces[{i}]"))),
        sysvmsg: Some(ipc.clone()),
        sysvsem: Some(ipc.clone()),
        sysvshm: Some(ipc),
        ..JailSettings::default()
    }
}

#[cfg(test)]
mod tests;
