//! What the FreeBSD backend does with Linux confinement fields: a jail has no per-process
//! capability sets, no seccomp and no AppArmor/SELinux, and none of them maps onto a jail
//! parameter without changing what every process in the jail may do. Each field that
//! asks for something is named in one warning at create (docs/jail-mapping.md).

use crate::process::Confinement;

/// The warning for `c`, if any field of it asks for something.
pub fn warning(c: &Confinement) -> Option<String> {
    let mut fields = Vec::new();
    if !c.capabilities.is_empty() {
        fields.push("process.capabilities (root in a jail keeps the privileges the jail's allow.* parameters give)");
    }
    if c.seccomp.is_some() {
        fields.push("linux.seccomp (no system call filter)");
    }
    if c.apparmor_profile.as_deref().is_some_and(|p| !p.is_empty()) {
        fields.push("process.apparmorProfile");
    }
    if c.selinux_label.as_deref().is_some_and(|l| !l.is_empty()) {
        fields.push("process.selinuxLabel");
    }
    (!fields.is_empty()).then(|| {
        format!(
            "Linux confinement not applied on FreeBSD: {}",
            fields.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::seccomp::{SeccompAction, SeccompProfile};
    use crate::config::CapabilitySets;

    #[test]
    fn each_field_that_asks_for_something_is_named_once() {
        assert_eq!(warning(&Confinement::default()), None);
        let c = Confinement {
            capabilities: CapabilitySets {
                bounding: vec![0],
                ..CapabilitySets::default()
            },
            seccomp: Some(SeccompProfile {
                default_action: SeccompAction::Allow,
                architectures: Vec::new(),
                flags: Vec::new(),
                listener_path: None,
                listener_metadata: String::new(),
                syscalls: Vec::new(),
            }),
            apparmor_profile: Some("docker-default".into()),
            selinux_label: Some(String::new()),
            compiled: None,
        };
        let w = warning(&c).unwrap();
        assert_eq!(
            w,
            "Linux confinement not applied on FreeBSD: process.capabilities (root in a jail keeps \
             the privileges the jail's allow.* parameters give); linux.seccomp (no system call \
             filter); process.apparmorProfile"
        );
    }
}
