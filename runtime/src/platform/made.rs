//! What create made, as recorded in `state.json`: the part both backends share (the mount
//! points made on the root filesystem) and the backend's own record ([`Platform::Made`]:
//! `freebsd_plan::FreeBsdMade` or `linux_plan::LinuxMade`). Each is recorded as it is made,
//! so that a failed create and a delete undo exactly that, in reverse order.
//!
//! The backend's fields are flattened into the same JSON object, so a state file reads the
//! same as it did when one struct held both kernels' fields: state written before the
//! split is still read.
//!
//! [`Platform::Made`]: super::Platform::Made

use serde::{Deserialize, Serialize};

use super::HostMade;

/// What create made: mount points, and what the backend `B` made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources<B = HostMade> {
    /// Files, directories, device nodes and links created on the root filesystem (mount
    /// points, default devices), outermost first, each with its identity when made.
    #[serde(default)]
    pub mount_points: Vec<crate::mounts::Created>,
    /// What only this kernel has (a jail, rctl rules, cgroups …).
    #[serde(flatten)]
    pub backend: B,
}

#[cfg(test)]
mod tests {
    use super::Resources;
    use crate::platform::freebsd_plan::FreeBsdMade;
    use crate::platform::linux_plan::LinuxMade;

    #[test]
    fn state_written_before_the_split_is_read() {
        // A FreeBSD and a Linux record as the single all-kernels struct wrote them.
        let freebsd = r#"{"jid":7,"jailName":"c1","mounts":["/r/tmp"],"mountPoints":[],
            "interfaceAliases":[["em0","10.0.0.2"]],"vnetInterfaces":[],"devfsRulesets":[1001],
            "rctlRules":["jail:c1:maxproc:deny=9"]}"#;
        let r: Resources<FreeBsdMade> = serde_json::from_str(freebsd).unwrap();
        assert_eq!(r.backend.jid, Some(7));
        assert_eq!(r.backend.jail_name.as_deref(), Some("c1"));
        assert_eq!(r.backend.devfs_rulesets, [1001]);
        assert_eq!(r.backend.rctl_rules, ["jail:c1:maxproc:deny=9"]);
        let linux = r#"{"mounts":[],"mountPoints":[],"interfaceAliases":[],"vnetInterfaces":[],
            "devfsRulesets":[],"cgroups":["/sys/fs/cgroup/c1"]}"#;
        let r: Resources<LinuxMade> = serde_json::from_str(linux).unwrap();
        assert_eq!(
            r.backend.cgroups,
            [std::path::Path::new("/sys/fs/cgroup/c1")]
        );
        // And what is written now reads back the same.
        let again: Resources<LinuxMade> =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }
}
