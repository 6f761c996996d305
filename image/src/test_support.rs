//! Helpers shared by the unit tests of several modules.

/// The name the test harness gives test `name` of module `module` (pass `module_path!()`):
/// the module path without the crate name. Tests that re-run this binary with `--exact` to
/// run one helper in a child derive the name here, so that moving a file cannot leave the
/// child matching nothing and passing vacuously.
pub fn test_name(module: &str, name: &str) -> String {
    let path = module.split_once("::").map_or("", |(_, rest)| rest);
    format!("{path}::{name}")
}

/// Runs test `helper` of `module` (pass `module_path!()`) alone in a child of this test
/// binary whose descriptor limit is `max_fds`, with `key=value` in its environment (how
/// the helper learns what to do). Whether it passed.
pub fn run_helper_with_fd_limit(
    module: &str,
    helper: &str,
    max_fds: u32,
    key: &str,
    value: &std::ffi::OsStr,
) -> bool {
    let exe = std::env::current_exe().expect("the test binary's path");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {max_fds} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args(["--exact", &test_name(module, helper), "--ignored"])
        .arg("--test-threads=1")
        .env(key, value)
        .status()
        .expect("running the test binary")
        .success()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_crate_name_is_dropped() {
        assert_eq!(
            super::test_name("stockade_image::rootfs::remove::tests", "helper"),
            "rootfs::remove::tests::helper"
        );
    }

    /// The crate is a layering: no two modules import each other, directly or around a
    /// circle (scripts/lib/modcycles.py, which also checks the other workspace crates).
    #[test]
    fn no_import_circles_between_modules() {
        let crate_dir = env!("CARGO_MANIFEST_DIR");
        let script = format!("{crate_dir}/../scripts/lib/modcycles.py");
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(crate_dir)
            .output()
            .expect("running python3 scripts/lib/modcycles.py");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
