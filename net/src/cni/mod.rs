//! The CNI plugin runner (CNI spec 1.0): each plugin of a network's list is executed with
//! `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH` in its
//! environment and its configuration on stdin, ADD in list order with each result handed
//! to the next as `prevResult`, DEL in reverse order. Output is read up to a bound and
//! parsed; a plugin's error object is quoted bounded and escaped.
//!
//! No crate on crates.io runs CNI plugins for a runtime (the `cni-plugin` crate is for
//! writing plugins); this is the small typed runner the spec asks for.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};
use stockade_quote::quote;

use crate::config::Network;
use crate::NetError;

/// The most a plugin may print (a result lists a few interfaces and addresses).
const MAX_OUTPUT: u64 = 1 << 20;

/// What a plugin is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Add,
    Del,
    Check,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "ADD",
            Verb::Del => "DEL",
            Verb::Check => "CHECK",
        }
    }
}

/// Who the plugins act for.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub container_id: &'a str,
    /// Linux: the network namespace's path; FreeBSD: the vnet jail's name.
    pub netns: &'a str,
    pub ifname: &'a str,
    /// Capability arguments (`portMappings`), given to the plugins that declare them.
    pub runtime_config: &'a Map<String, Value>,
}

/// One plugin execution: its binary name, environment and stdin. Pure data, so that the
/// FreeBSD plan can be checked without executing anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub plugin: String,
    pub env: Vec<(String, String)>,
    pub stdin: Value,
}

/// The invocation of plugin `plugin` (an element of `network`'s list) for `verb`.
pub fn invocation(
    network: &Network,
    plugin: &Value,
    verb: Verb,
    at: &Attachment<'_>,
    plugin_dirs: &[PathBuf],
    prev_result: Option<&Value>,
) -> Result<Invocation, NetError> {
    let kind = plugin["type"].as_str().unwrap_or_default();
    // A plugin is a file name in the plugin directories, never a path.
    if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
        return Err(NetError::BadPlugin {
            network: network.name.clone(),
            plugin: kind.to_string(),
        });
    }
    let mut conf = plugin.as_object().cloned().unwrap_or_default();
    conf.insert("cniVersion".into(), network.list["cniVersion"].clone());
    conf.insert("name".into(), Value::String(network.name.clone()));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    // runtimeConfig carries only the capabilities the plugin declares.
    let mut rc = Map::new();
    if let Some(caps) = plugin["capabilities"].as_object() {
        for (cap, on) in caps {
            if on == true {
                if let Some(v) = at.runtime_config.get(cap) {
                    rc.insert(cap.clone(), v.clone());
                }
            }
        }
    }
    if !rc.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(rc));
    }
    let path = std::env::join_paths(plugin_dirs)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Invocation {
        plugin: kind.to_string(),
        env: vec![
            ("CNI_COMMAND".into(), verb.as_str().into()),
            ("CNI_CONTAINERID".into(), at.container_id.into()),
            ("CNI_NETNS".into(), at.netns.into()),
            ("CNI_IFNAME".into(), at.ifname.into()),
            ("CNI_ARGS".into(), String::new()),
            ("CNI_PATH".into(), path),
            // The plugins call iptables, ip and the like.
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ],
        stdin: Value::Object(conf),
    })
}

/// Runs the whole list for `verb`. ADD returns the last plugin's result; when a plugin
/// fails, what the earlier ones made is deleted again. DEL runs every plugin in reverse
/// order, with `prev_result` (the ADD's result), and returns the first error after trying
/// them all: a DEL is idempotent, and a missing piece is no reason to leave the rest.
pub fn run_list(
    network: &Network,
    verb: Verb,
    at: &Attachment<'_>,
    plugin_dirs: &[PathBuf],
    prev_result: Option<&Value>,
) -> Result<Option<Value>, NetError> {
    run_list_saving(network, verb, at, plugin_dirs, prev_result, &mut |_| Ok(()))
}

/// [`run_list`], handing each ADD result to `save` as soon as it is there: a caller that
/// records it keeps what DEL needs (the addresses, for the plugins after the first) even
/// when it is killed before the list is done.
pub fn run_list_saving(
    network: &Network,
    verb: Verb,
    at: &Attachment<'_>,
    plugin_dirs: &[PathBuf],
    prev_result: Option<&Value>,
    save: &mut dyn FnMut(&Value) -> Result<(), NetError>,
) -> Result<Option<Value>, NetError> {
    match verb {
        Verb::Add | Verb::Check => {
            let mut prev = prev_result.cloned();
            for plugin in network.plugins() {
                let inv = invocation(network, plugin, verb, at, plugin_dirs, prev.as_ref())?;
                match execute(&inv, plugin_dirs, &network.name) {
                    Ok(out) if verb == Verb::Add => {
                        if let Some(r) = &out {
                            if let Err(e) = save(r) {
                                let _ = run_list(network, Verb::Del, at, plugin_dirs, Some(r));
                                return Err(e);
                            }
                        }
                        prev = out;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if verb == Verb::Add {
                            let _ = run_list(network, Verb::Del, at, plugin_dirs, prev.as_ref());
                        }
                        return Err(e);
                    }
                }
            }
            Ok(prev)
        }
        Verb::Del => {
            let mut first = None;
            for plugin in network.plugins().iter().rev() {
                let r = invocation(network, plugin, verb, at, plugin_dirs, prev_result)
                    .and_then(|inv| execute(&inv, plugin_dirs, &network.name));
                if let Err(e) = r {
                    first.get_or_insert(e);
                }
            }
            first.map_or(Ok(None), Err)
        }
    }
}

fn find_plugin(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Executes one invocation; returns its parsed result (None when it printed nothing).
fn execute(inv: &Invocation, dirs: &[PathBuf], network: &str) -> Result<Option<Value>, NetError> {
    let verb = inv
        .env
        .iter()
        .find(|(k, _)| k == "CNI_COMMAND")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let fail = |msg: String| NetError::Plugin {
        network: network.to_string(),
        plugin: inv.plugin.clone(),
        verb: verb.clone(),
        msg,
    };
    let bin = find_plugin(&inv.plugin, dirs).ok_or_else(|| NetError::NoPlugin {
        plugin: inv.plugin.clone(),
        dirs: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    })?;
    let mut child = Command::new(&bin)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetError::Spawn {
            path: bin.clone(),
            source,
        })?;
    let stdin = serde_json::to_vec(&inv.stdin).unwrap_or_default();
    if let Some(mut w) = child.stdin.take() {
        // A plugin that exits without reading its config fails below with its own message.
        let _ = w.write_all(&stdin);
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    let stderr = child.stderr.take();
    // stderr is drained on its own thread so that neither pipe can fill and stall the plugin.
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        buf
    });
    if let Some(s) = child.stdout.take() {
        let _ = s.take(MAX_OUTPUT).read_to_end(&mut out);
    }
    let status = child.wait().map_err(|source| NetError::Spawn {
        path: bin.clone(),
        source,
    })?;
    if let Ok(e) = err_thread.join() {
        err = e;
    }
    if !status.success() {
        // The spec's error object: {"code": N, "msg": "...", "details": "..."} on stdout.
        let msg = match serde_json::from_slice::<Value>(&out) {
            Ok(v) if v["msg"].is_string() => {
                let mut m = format!("{}", quote(v["msg"].as_str().unwrap_or_default()));
                if let Some(d) = v["details"].as_str().filter(|d| !d.is_empty()) {
                    m.push_str(&format!(" ({})", quote(d)));
                }
                m
            }
            _ => format!(
                "{status}; output {}, stderr {}",
                quote(&out[..]),
                quote(&err[..])
            ),
        };
        return Err(fail(msg));
    }
    if out.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| fail(format!("its result is not JSON ({e}): {}", quote(&out[..]))))?;
    if !v.is_object() {
        return Err(fail(format!(
            "its result is not an object: {}",
            quote(&out[..])
        )));
    }
    Ok(Some(v))
}

/// The IPv4 addresses (without prefix) a result gives the container's interface.
pub fn result_addresses(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .filter_map(|a| a.split('/').next())
        .map(str::to_string)
        .collect()
}

/// Where a plugin binary would be found; for messages and for `network ls`.
pub fn plugin_path(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    find_plugin(name, dirs)
}

#[cfg(test)]
mod tests;
