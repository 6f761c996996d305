//! The live status and the OCI state document.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::state::{Status, StoredState};

/// The stored status corrected by reality: a container whose init is gone (or whose pid now
/// belongs to another process) is `stopped`.
pub fn live_status(st: &StoredState) -> Status {
    match (st.status, st.pid) {
        (Status::Stopped, _) => Status::Stopped,
        (s, Some(pid)) => {
            let now = crate::platform::procs::process_start_time(pid);
            if now.is_some() && now == st.pid_start_time {
                s
            } else {
                Status::Stopped
            }
        }
        (Status::Creating, None) => Status::Creating,
        (_, None) => Status::Stopped,
    }
}

/// The state as `stockade state` prints it: the OCI fields plus rootfs, created and owner.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub annotations: BTreeMap<String, String>,
}

/// The OCI state of a stored container; `pid` only while created or running.
pub fn container_state(st: &StoredState) -> Snapshot {
    container_state_as(st, live_status(st))
}

/// The OCI state with a given status, as hooks of each phase receive it; `pid` while the
/// container's init exists (creating, created, running).
pub fn container_state_as(st: &StoredState, status: Status) -> Snapshot {
    Snapshot {
        oci_version: crate::config::SPEC_VERSION.to_string(),
        id: st.id.as_str().to_string(),
        status,
        pid: if status == Status::Stopped {
            None
        } else {
            st.pid
        },
        bundle: st.bundle.clone(),
        rootfs: st.rootfs.clone(),
        created: st.created.clone(),
        owner: st.owner.clone(),
        annotations: st.annotations.clone(),
    }
}
