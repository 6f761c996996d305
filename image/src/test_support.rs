//! Helpers shared by the unit tests of several modules.

/// The name the test harness gives test `name` of module `module` (pass `module_path!()`):
/// the module path without the crate name. Tests that re-run this binary with `--exact` to
/// run one helper in a child derive the name here, so that moving a file cannot leave the
/// child matching nothing and passing vacuously.
pub fn test_name(module: &str, name: &str) -> String {
    let path = module.split_once("::").map_or("", |(_, rest)| rest);
    format!("{path}::{name}")
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
}
