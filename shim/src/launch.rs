//! The two one-shot actions containerd runs the shim binary for: `start` (find or start the
//! daemon for this container's group, print its address) and `delete` (clean up a
//! container whose shim died).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::protobuf::MessageField;

use crate::address;
use crate::args::Args;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the shim daemon did not start: {0}")]
    Daemon(String),
    #[error("bundle config: {0}")]
    Config(String),
    #[error("{0}")]
    Runtime(String),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LaunchError + 'a {
    move |source| LaunchError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Where stockade keeps its container state for a namespace: `$STOCKADE_SHIM_ROOT`
/// (containerd passes its environment to shims), else /run/stockade-shim, then the
/// namespace.
pub fn state_root(namespace: &str) -> PathBuf {
    let base = std::env::var_os("STOCKADE_SHIM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/stockade-shim"));
    base.join(namespace)
}

/// The annotations of the bundle's config.json (for the pod grouping).
fn annotations(bundle: &Path) -> Result<std::collections::HashMap<String, String>, LaunchError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(io("reading", &path))?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| LaunchError::Config(e.to_string()))?;
    Ok(v.get("annotations")
        .and_then(|a| a.as_object())
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// `start`: prints the address of the shim serving this container's group, starting one
/// if none is listening.
pub fn start(args: &Args) -> Result<(), LaunchError> {
    let bundle = match &args.bundle {
        Some(b) => b.clone(),
        None => {
            std::env::current_dir().map_err(io("reading the working directory", Path::new(".")))?
        }
    };
    let ann = annotations(&bundle)?;
    let group = address::group_id(&args.id, Some(&ann));
    let dir = Path::new(address::SOCKET_DIR);
    let socket = address::socket_path(dir, &args.address, &args.namespace, group);
    let addr = address::unix_address(&socket);
    if std::os::unix::net::UnixStream::connect(&socket).is_err() {
        // A socket nobody answers on is a dead shim's: replaced.
        let _ = std::fs::remove_file(&socket);
        spawn_daemon(args, &bundle, &socket)?;
    }
    let file = bundle.join("address");
    std::fs::write(&file, &addr).map_err(io("writing", &file))?;
    let mut out = std::io::stdout();
    out.write_all(addr.as_bytes())
        .and_then(|()| out.flush())
        .map_err(io("writing", Path::new("stdout")))?;
    Ok(())
}

/// Starts `containerd-shim-stockade-v1 … -socket PATH` (no action: serve) in the bundle
/// and waits until it listens (it writes "ready" on the pipe that is its stdout).
fn spawn_daemon(args: &Args, bundle: &Path, socket: &Path) -> Result<(), LaunchError> {
    let exe = std::env::current_exe().map_err(io("finding", Path::new("/proc/self/exe")))?;
    let mut cmd = Command::new(&exe);
    cmd.current_dir(bundle)
        .arg("-namespace")
        .arg(&args.namespace)
        .arg("-id")
        .arg(&args.id)
        .arg("-address")
        .arg(&args.address)
        .arg("-publish-binary")
        .arg(&args.publish_binary)
        .arg("-socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Not containerd's pipe: it reads start's output until every holder closes it.
        .stderr(Stdio::null());
    if args.debug {
        cmd.arg("-debug");
    }
    let mut child = cmd.spawn().map_err(io("starting", &exe))?;
    let mut said = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut said);
    }
    if said.trim() != "ready" {
        let status = child.try_wait().ok().flatten();
        return Err(LaunchError::Daemon(format!(
            "it said {} (exit status {status:?}); see the shim log in the bundle",
            stockade_quote::quote(said.trim())
        )));
    }
    // The daemon runs on (in its own session); it is not waited for.
    drop(child);
    Ok(())
}

/// `delete`: removes the container a dead shim left (its processes killed), unmounts the
/// rootfs, and prints the DeleteResponse containerd reads.
pub fn delete(args: &Args) -> Result<(), LaunchError> {
    let bundle = match &args.bundle {
        Some(b) => b.clone(),
        None => {
            std::env::current_dir().map_err(io("reading the working directory", Path::new(".")))?
        }
    };
    let store = stockade_runtime::state::StateStore::open(&state_root(&args.namespace))
        .map_err(|e| LaunchError::Runtime(e.to_string()))?;
    let id = stockade_runtime::id::ContainerId::parse(&args.id)
        .map_err(|e| LaunchError::Runtime(e.to_string()))?;
    let pid = store.read(&id).ok().and_then(|s| s.pid).unwrap_or(0);
    if store.ids().map(|ids| ids.contains(&id)).unwrap_or(false) {
        stockade_runtime::container::delete(&store, &id, true)
            .map_err(|e| LaunchError::Runtime(e.to_string()))?;
    }
    crate::rootfs::unmount(&bundle).map_err(|e| LaunchError::Runtime(e.to_string()))?;
    let e = crate::exit::Exit {
        pid,
        status: 128 + 9,
        at: crate::exit::now(),
    };
    let mut r = containerd_shim_protos::api::DeleteResponse::new();
    r.pid = pid.max(0) as u32;
    r.exit_status = e.status;
    r.exited_at = MessageField::some(e.timestamp());
    let bytes = r
        .write_to_bytes()
        .map_err(|e| LaunchError::Runtime(e.to_string()))?;
    let mut out = std::io::stdout();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(io("writing", Path::new("stdout")))?;
    Ok(())
}
