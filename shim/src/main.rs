//! `containerd-shim-stockade-v1`: containerd's shim v2 for runtime `io.containerd.stockade.v1`.
//! It runs stockade's runtime library in-process (no runtime process per call).
//!
//! The daemon is single-threaded on purpose (a current-thread tokio runtime, no blocking
//! pool): the runtime forks and clones the container's processes from the calling process,
//! and a child of a multi-threaded process may only run async-signal-safe code, while
//! stockade's init runs ordinary Rust until it execs.

mod address;
mod args;
mod console;
mod events;
mod exit;
mod launch;
mod rootfs;
mod serve;
mod service;
mod stats;
mod stats_freebsd;
mod stdio;
mod sys;
mod table;

fn main() {
    let parsed = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("containerd-shim-stockade-v1: {e}");
            std::process::exit(2);
        }
    };
    let result = match parsed.action {
        args::Action::Start => launch::start(&parsed).map_err(|e| e.to_string()),
        args::Action::Delete => launch::delete(&parsed).map_err(|e| e.to_string()),
        args::Action::Serve => serve::run(&parsed).map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("containerd-shim-stockade-v1: {e}");
        std::process::exit(1);
    }
}
