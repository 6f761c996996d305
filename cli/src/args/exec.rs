//! `exec`: the flags runc's exec takes.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// JSON file holding a runtime-spec `process` object.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Return once started instead of waiting.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid here (no trailing newline).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the process (runc 1.2's protocol).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Pass this many extra file descriptors.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Add a capability (CAP_*) to the bounding, effective and permitted sets (Linux).
    #[arg(short = 'c', long = "cap")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process (Linux).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (Linux).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Container id.
    pub id: String,
    /// Command and arguments (when --process is not given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
