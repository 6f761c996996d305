//! Kubernetes pods (containerd's CRI plugin) as a parent jail and its children, ocijail's
//! `parentJail` model: the sandbox (pause) container is a jail that owns the pod's network
//! stack (`vnet=new`) and may have children (`children.max`); each of the pod's
//! containers is a child jail `<sandbox jail>.<container>` whose `ip4`/`ip6` are
//! `inherit`, which inside a vnet parent means the parent's stack: the pod's containers
//! share one network and reach each other on localhost, as CRI requires.
//!
//! The role comes from the annotations the CRI plugin sets on every container's config:
//! `io.kubernetes.cri.container-type` (`sandbox` or `container`) and, on a container,
//! `io.kubernetes.cri.sandbox-id`. What the configuration sets itself (the `freebsd`
//! section, `org.freebsd.*` annotations) wins: an explicit `org.freebsd.parentJail` names
//! the parent, an explicit network setting on the sandbox is kept. A pod container that
//! asks for a network of its own is refused, since it would silently leave the pod's
//! network. docs/freebsd-backend.md, "Pods".

use std::collections::BTreeMap;

use stockade_quote::quote;

use crate::config::{ContainerConfig, Setting};
use crate::id::ContainerId;
use crate::jail::{IpAccess, JailName, JailNameError, JailSpec, Network};

/// The CRI plugin's container-type annotation.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// The CRI plugin's sandbox-id annotation (the sandbox container's id).
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// `children.max` of a sandbox's jail when the configuration sets none: room for the
/// pod's containers. The kernel counts it only for jails created from *inside* the
/// sandbox (kern_jail.c checks the creator's chain, "prison limit exceeded"); the host
/// creates the children, so this is the documented intent more than a limit, and it keeps
/// the pod's children from creating jails of their own (a child's `children.max` must stay
/// below its parent's).
pub const SANDBOX_CHILDREN_MAX: u32 = 256;

/// What a container is in its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRole {
    /// `container-type=sandbox`: the pod's parent jail.
    Sandbox,
    /// `container-type=container`: a child of the sandbox `sandbox`'s jail.
    Member { sandbox: ContainerId },
}

/// Why the CRI annotations cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    #[error("annotations[{CONTAINER_TYPE:?}]: {}: expected \"sandbox\" or \"container\"", quote(.0))]
    BadType(String),
    #[error("annotations[{SANDBOX_ID:?}]: missing; a pod container (container-type \"container\") names its sandbox")]
    NoSandbox,
    #[error("annotations[{SANDBOX_ID:?}]: {}: not a valid container id", quote(.0))]
    BadSandbox(String),
    #[error("annotations[{SANDBOX_ID:?}]: {}: a sandbox cannot be its own pod member", quote(.0))]
    OwnSandbox(String),
    #[error("{from}: a pod container shares its sandbox's network (ip4/ip6 inherit inside the sandbox's vnet); it cannot have a network of its own")]
    OwnNetwork { from: String },
    #[error(transparent)]
    Name(#[from] JailNameError),
}

/// The container's role in a CRI pod, `None` without the CRI annotations (or for a
/// container-type other CRI versions may add, which is refused rather than guessed).
pub fn role(
    annotations: &BTreeMap<String, String>,
    id: &ContainerId,
) -> Result<Option<PodRole>, PodError> {
    let Some(kind) = annotations.get(CONTAINER_TYPE) else {
        return Ok(None);
    };
    match kind.as_str() {
        "sandbox" => Ok(Some(PodRole::Sandbox)),
        "container" => {
            let raw = annotations.get(SANDBOX_ID).ok_or(PodError::NoSandbox)?;
            let sandbox = ContainerId::parse(raw).map_err(|_| PodError::BadSandbox(raw.clone()))?;
            if &sandbox == id {
                return Err(PodError::OwnSandbox(raw.clone()));
            }
            Ok(Some(PodRole::Member { sandbox }))
        }
        other => Err(PodError::BadType(other.to_string())),
    }
}

/// Turns `jail` (translated from `cfg` for container `id`) into its pod role's jail.
pub fn apply(cfg: &ContainerConfig, id: &ContainerId, jail: &mut JailSpec) -> Result<(), PodError> {
    let s = &cfg.jail;
    match role(&cfg.annotations, id)? {
        None => {}
        Some(PodRole::Sandbox) => {
            let network_set = s.vnet.is_some()
                || s.ip4.is_some()
                || s.ip6.is_some()
                || s.ip4_addr.is_some()
                || s.ip6_addr.is_some()
                || s.interface.is_some();
            if !network_set {
                jail.network = Network::Vnet {
                    interfaces: Vec::new(),
                };
            }
            if jail.children_max.is_none() {
                jail.children_max = Some(SANDBOX_CHILDREN_MAX);
            }
        }
        Some(PodRole::Member { sandbox }) => {
            let own = [
                s.vnet.as_ref().map(|v| &v.from),
                s.ip4.as_ref().map(|v| &v.from),
                s.ip6.as_ref().map(|v| &v.from),
                s.ip4_addr.as_ref().map(|v| &v.from),
                s.ip6_addr.as_ref().map(|v| &v.from),
                s.interface.as_ref().map(|v| &v.from),
            ];
            if let Some(from) = own.into_iter().flatten().next() {
                return Err(PodError::OwnNetwork { from: from.clone() });
            }
            jail.network = Network::Shared {
                ip4: IpAccess::Inherit,
                ip6: IpAccess::Inherit,
                interface: None,
            };
            if s.parent.is_none() {
                // The sandbox's jail is top-level (a sandbox that is itself nested needs
                // `org.freebsd.parentJail` on its members too, naming its full name).
                let parent = JailName::for_container(&sandbox, None)?;
                let setting = Setting::new(
                    parent.as_str().to_string(),
                    format!("annotations[{SANDBOX_ID:?}]"),
                );
                jail.name = JailName::for_container(id, Some(&setting))?;
                jail.parent = Some(setting.value);
            }
            // Otherwise `org.freebsd.parentJail` already named the parent (and the name).
        }
    }
    Ok(())
}
