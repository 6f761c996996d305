//! The messages of the create handshake, both directions, with typed payloads.
//!
//! The order, for one create:
//!
//! ```text
//! create                          init
//!   Recorded  ───────────────────▶    (the init's pid is in the state)
//!             ◀─────────────────── Intent(path)     ┐ for each object the init
//!   Recorded  ───────────────────▶                  │ makes on the root filesystem
//!             ◀─────────────────── Made(record)     ┘
//!             ◀─────────────────── Prepared
//!   (prestart, createRuntime hooks)
//!   Go{states} ──────────────────▶    (createContainer hooks, enter the root, terminal)
//!             ◀─────────────────── Ready            (or Failed at any step)
//! ```

use std::path::PathBuf;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::mounts::Created;

/// One message of the create handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Create → init: what the init announced (its pid, then each intent) is recorded in
    /// the state; it may go on.
    Recorded,
    /// Init → create: a path on the root filesystem the init is about to make; the init
    /// waits for [`Message::Recorded`] before making it.
    Intent(PathBuf),
    /// Init → create: what the init made on the root filesystem, with its identity.
    Made(Created),
    /// Init → create: set up inside; prestart and createRuntime hooks may run now.
    Prepared,
    /// Create → init: hooks done; go on. The state JSON the init's hooks receive, made by
    /// create (the init parses nothing): `creating` for createContainer, `created` for
    /// startContainer and the seccomp agent.
    Go { creating: Vec<u8>, created: Vec<u8> },
    /// Init → create: the container is set up; the init now waits for `start`.
    Ready,
    /// Init → create: setting up failed; the init exits.
    Failed(InitFailure),
}

impl Message {
    /// The message's name, for errors about the handshake.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Recorded => "recorded",
            Message::Intent(_) => "intent",
            Message::Made(_) => "made",
            Message::Prepared => "prepared",
            Message::Go { .. } => "go",
            Message::Ready => "ready",
            Message::Failed(_) => "failed",
        }
    }
}

/// The step of the init's setup that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// The backend's setup inside the container (mounts, devices).
    Enter,
    /// The createContainer hooks.
    CreateContainerHooks,
    /// Entering the root for good.
    EnterRoot,
    /// Attaching the terminal.
    Terminal,
    /// Applying `process.rlimits`.
    Rlimits,
    /// Preparing an exec'd process from its settings.
    Prepare,
    /// The startContainer hooks (during `start`).
    StartContainerHooks,
    /// Applying the process's settings and executing it.
    Exec,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Enter => "setting up the container",
            Step::CreateContainerHooks => "running createContainer hooks",
            Step::EnterRoot => "entering the container's root",
            Step::Terminal => "attaching the terminal",
            Step::Rlimits => "applying process.rlimits",
            Step::Prepare => "preparing the process",
            Step::StartContainerHooks => "running startContainer hooks",
            Step::Exec => "executing the process",
        }
    }
}

/// Why the init failed, as it crosses to create: the step, the errno when a system call
/// failed (so callers can match on it), and the init's full message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct InitFailure {
    pub step: Step,
    #[serde(default, with = "errno_number")]
    pub errno: Option<Errno>,
    pub message: String,
}

/// An errno as its number on the wire.
mod errno_number {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &Option<Errno>, s: S) -> Result<S::Ok, S::Error> {
        match e {
            Some(e) => s.serialize_some(&(*e as i32)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Errno>, D::Error> {
        Ok(Option::<i32>::deserialize(d)?.map(Errno::from_raw))
    }
}
