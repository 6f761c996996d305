//! An OCI bundle for one test: a busybox root filesystem and a Linux-flavoured runtime-spec
//! 1.3.0 `config.json` (namespaces, the usual /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
//! /sys mounts) that each test tweaks through `config` before `save()`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::env::Env;
use crate::rootfs;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_HOSTNAME: &str = "spec-test";

pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config: Value,
}

/// The config every test starts from, running `args` as root in `/`.
pub fn default_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.3.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": DEFAULT_HOSTNAME,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "network" }
            ]
        }
    })
}

impl Bundle {
    /// Makes `dir` with a fresh root filesystem and the default config (saved).
    pub fn new(dir: &Path, env: &Env, args: &[&str]) -> Result<Bundle, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let rootfs = dir.join("rootfs");
        rootfs::build(&rootfs, &env.busybox, &env.applets)?;
        let b = Bundle {
            dir: dir.to_path_buf(),
            rootfs,
            config: default_config(args),
        };
        b.save()?;
        Ok(b)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.config).map_err(|e| e.to_string())?;
        std::fs::write(self.config_path(), text)
            .map_err(|e| format!("writing {}: {e}", self.config_path().display()))
    }

    /// `process` object (for tweaking).
    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    pub fn add_mount(&mut self, mount: Value) {
        if let Some(m) = self.config["mounts"].as_array_mut() {
            m.push(mount);
        }
    }

    /// Appends `KEY=VALUE` to the process environment.
    pub fn add_env(&mut self, kv: &str) {
        if let Some(e) = self.config["process"]["env"].as_array_mut() {
            e.push(json!(kv));
        }
    }
}
