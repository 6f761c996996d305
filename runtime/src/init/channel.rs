//! The create handshake's channel: one [`Message`] per frame over the socketpair.
//!
//! A frame is a tag byte, the payload's length (u32, little-endian) and the payload. The
//! length is checked against [`MAX_PAYLOAD`] before anything is allocated, so a confused or
//! hostile peer cannot make the other side allocate at will; a malformed frame is an error
//! that says what was wrong. The init end runs in a freshly cloned child: a send is one
//! buffer and one `write_all`, nothing else.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use super::message::{InitFailure, Message};

/// The largest payload a frame may carry (the state JSON of `Go` is the largest).
pub const MAX_PAYLOAD: u32 = 4 << 20;

const TAG_RECORDED: u8 = 1;
const TAG_INTENT: u8 = 2;
const TAG_MADE: u8 = 3;
const TAG_PREPARED: u8 = 4;
const TAG_GO: u8 = 5;
const TAG_READY: u8 = 6;
const TAG_FAILED: u8 = 7;

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{op} a handshake message: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("the handshake ended in the middle of a message ({got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    #[error("unknown handshake message tag {0}")]
    UnknownTag(u8),
    #[error("handshake message {name} of {len} bytes is larger than the {max}-byte bound")]
    TooLarge {
        name: &'static str,
        len: u64,
        max: u32,
    },
    #[error("bad {name} handshake message: {reason}")]
    BadPayload { name: &'static str, reason: String },
}

/// One end of the create handshake.
#[derive(Debug)]
pub struct Channel {
    stream: UnixStream,
}

impl From<OwnedFd> for Channel {
    fn from(fd: OwnedFd) -> Self {
        Channel {
            stream: UnixStream::from(fd),
        }
    }
}

impl From<UnixStream> for Channel {
    fn from(stream: UnixStream) -> Self {
        Channel { stream }
    }
}

impl Channel {
    /// Sends one message.
    pub fn send(&mut self, msg: &Message) -> Result<(), ChannelError> {
        let frame = encode(msg)?;
        self.stream
            .write_all(&frame)
            .map_err(|source| ChannelError::Io {
                op: "sending",
                source,
            })
    }

    /// Receives one message; `None` when the other end closed between messages.
    pub fn recv(&mut self) -> Result<Option<Message>, ChannelError> {
        decode(&mut self.stream)
    }
}

/// A message as one frame.
pub fn encode(msg: &Message) -> Result<Vec<u8>, ChannelError> {
    let json = |name, v: Result<Vec<u8>, serde_json::Error>| {
        v.map_err(|e| ChannelError::BadPayload {
            name,
            reason: e.to_string(),
        })
    };
    let (tag, payload): (u8, std::borrow::Cow<'_, [u8]>) = match msg {
        Message::Recorded => (TAG_RECORDED, (&[][..]).into()),
        Message::Intent(p) => (TAG_INTENT, p.as_os_str().as_bytes().into()),
        Message::Made(c) => (TAG_MADE, json("made", serde_json::to_vec(c))?.into()),
        Message::Prepared => (TAG_PREPARED, (&[][..]).into()),
        Message::Go { creating, created } => {
            // The first document's length, then both: the init splits without parsing.
            let first = u32::try_from(creating.len()).unwrap_or(u32::MAX);
            let mut p = Vec::with_capacity(4 + creating.len() + created.len());
            p.extend_from_slice(&first.to_le_bytes());
            p.extend_from_slice(creating);
            p.extend_from_slice(created);
            (TAG_GO, p.into())
        }
        Message::Ready => (TAG_READY, (&[][..]).into()),
        Message::Failed(f) => (TAG_FAILED, json("failed", serde_json::to_vec(f))?.into()),
    };
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|n| *n <= MAX_PAYLOAD)
        .ok_or(ChannelError::TooLarge {
            name: msg.name(),
            len: payload.len() as u64,
            max: MAX_PAYLOAD,
        })?;
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(tag);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// The failure reported in `bytes` (all a start fifo or exec's report pipe carried): a
/// frame that is not one comes back as an error naming what was wrong.
pub fn decode_failure(bytes: &[u8]) -> Result<InitFailure, ChannelError> {
    match decode(&mut &bytes[..])? {
        Some(Message::Failed(f)) => Ok(f),
        Some(other) => Err(ChannelError::BadPayload {
            name: other.name(),
            reason: "only a failure report may come here".into(),
        }),
        None => Err(ChannelError::Truncated {
            got: 0,
            expected: 5,
        }),
    }
}

/// Reads one frame from `r`; `None` at end of stream before a frame starts.
pub fn decode(r: &mut impl Read) -> Result<Option<Message>, ChannelError> {
    let mut header = [0u8; 5];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < header.len() {
        return Err(ChannelError::Truncated {
            got,
            expected: header.len(),
        });
    }
    let tag = header[0];
    let name = tag_name(tag).ok_or(ChannelError::UnknownTag(tag))?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    if len > MAX_PAYLOAD {
        return Err(ChannelError::TooLarge {
            name,
            len: len.into(),
            max: MAX_PAYLOAD,
        });
    }
    let mut payload = vec![0u8; len as usize];
    let got = read_full(r, &mut payload)?;
    if got < payload.len() {
        return Err(ChannelError::Truncated {
            got: header.len() + got,
            expected: header.len() + payload.len(),
        });
    }
    let bad = |reason: String| ChannelError::BadPayload { name, reason };
    let empty = |payload: Vec<u8>, msg: Message| {
        if payload.is_empty() {
            Ok(msg)
        } else {
            Err(bad(format!("{} unexpected payload bytes", payload.len())))
        }
    };
    let msg = match tag {
        TAG_RECORDED => empty(payload, Message::Recorded)?,
        TAG_PREPARED => empty(payload, Message::Prepared)?,
        TAG_READY => empty(payload, Message::Ready)?,
        TAG_INTENT => {
            if payload.is_empty() || payload.contains(&0) {
                return Err(bad("the path is empty or contains a NUL byte".into()));
            }
            Message::Intent(PathBuf::from(std::ffi::OsString::from_vec(payload)))
        }
        TAG_MADE => Message::Made(
            serde_json::from_slice(&payload).map_err(|e| bad(format!("not a record: {e}")))?,
        ),
        TAG_GO => {
            let (first, rest) = payload
                .split_first_chunk::<4>()
                .ok_or_else(|| bad("shorter than its 4-byte split".into()))?;
            let first = u32::from_le_bytes(*first) as usize;
            if first > rest.len() {
                return Err(bad(format!(
                    "its first document of {first} bytes runs past the {} that follow",
                    rest.len()
                )));
            }
            let (creating, created) = rest.split_at(first);
            Message::Go {
                creating: creating.to_vec(),
                created: created.to_vec(),
            }
        }
        TAG_FAILED => Message::Failed(
            serde_json::from_slice::<InitFailure>(&payload)
                .map_err(|e| bad(format!("not a failure report: {e}")))?,
        ),
        _ => return Err(ChannelError::UnknownTag(tag)),
    };
    Ok(Some(msg))
}

fn tag_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        TAG_RECORDED => "recorded",
        TAG_INTENT => "intent",
        TAG_MADE => "made",
        TAG_PREPARED => "prepared",
        TAG_GO => "go",
        TAG_READY => "ready",
        TAG_FAILED => "failed",
        _ => return None,
    })
}

/// Fills `buf` as far as the stream goes; returns how much was read (less only at end of
/// stream).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, ChannelError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ChannelError::Io {
                    op: "receiving",
                    source,
                })
            }
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::message::Step;
    use crate::init::InitError;
    use crate::mounts::{CreatedKind, Identity};
    use nix::errno::Errno;

    fn every_message() -> Vec<Message> {
        vec![
            Message::Recorded,
            Message::Intent(PathBuf::from("/run/c/rootfs/dev/\u{e9}t\u{e9}")),
            Message::Intent(PathBuf::from(std::ffi::OsString::from_vec(vec![
                b'/', 0xff, 0xfe,
            ]))),
            Message::Made(crate::mounts::Created {
                path: PathBuf::from("/run/c/rootfs/proc"),
                identity: Some(Identity {
                    kind: CreatedKind::Dir,
                    dev: 64769,
                    ino: 1234,
                    rdev: 0,
                }),
                intended: false,
            }),
            Message::Prepared,
            Message::Go {
                creating: br#"{"ociVersion":"1.3.0","status":"creating"}"#.to_vec(),
                created: br#"{"ociVersion":"1.3.0","status":"created"}"#.to_vec(),
            },
            Message::Go {
                creating: Vec::new(),
                created: Vec::new(),
            },
            Message::Ready,
            Message::Failed(InitFailure {
                step: Step::Enter,
                errno: Some(Errno::EACCES),
                message: "mount of proc on /proc: Permission denied".into(),
            }),
            Message::Failed(InitFailure {
                step: Step::CreateContainerHooks,
                errno: None,
                message: "createContainer hook 0 exited with status 1".into(),
            }),
        ]
    }

    #[test]
    fn every_message_round_trips_over_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut tx, mut rx) = (Channel::from(a), Channel::from(b));
        let all = every_message();
        for m in &all {
            tx.send(m).unwrap();
        }
        drop(tx);
        for m in &all {
            assert_eq!(rx.recv().unwrap().as_ref(), Some(m));
        }
        assert!(rx.recv().unwrap().is_none(), "end of stream between frames");
    }

    #[test]
    fn a_truncated_frame_is_an_error_not_the_end() {
        let frame = encode(&Message::Go {
            creating: b"01234".to_vec(),
            created: b"56789".to_vec(),
        })
        .unwrap();
        for cut in 1..frame.len() {
            let err = decode(&mut &frame[..cut]).unwrap_err();
            assert!(
                matches!(err, ChannelError::Truncated { got, .. } if got == cut),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn a_failure_report_decodes_and_anything_else_is_refused() {
        let e = InitError::Path {
            what: "exec",
            path: "/bin/nope".into(),
            errno: Errno::ENOENT,
        };
        let f = decode_failure(&e.report(Step::Exec)).unwrap();
        assert_eq!((f.step, f.errno), (Step::Exec, Some(Errno::ENOENT)));
        assert!(f.message.contains("/bin/nope"), "{}", f.message);
        let ready = encode(&Message::Ready).unwrap();
        assert!(matches!(
            decode_failure(&ready),
            Err(ChannelError::BadPayload { name: "ready", .. })
        ));
        assert!(matches!(
            decode_failure(b"exec /bin/nope: ENOENT"),
            Err(ChannelError::UnknownTag(b'e'))
        ));
    }

    #[test]
    fn an_oversized_frame_is_refused_before_allocating() {
        let mut frame = vec![TAG_GO];
        frame.extend_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        let err = decode(&mut frame.as_slice()).unwrap_err();
        assert!(
            matches!(err, ChannelError::TooLarge { name: "go", .. }),
            "{err}"
        );
        let big = Message::Go {
            creating: vec![0; MAX_PAYLOAD as usize / 2],
            created: vec![0; MAX_PAYLOAD as usize / 2],
        };
        assert!(matches!(
            encode(&big),
            Err(ChannelError::TooLarge { name: "go", .. })
        ));
    }

    #[test]
    fn garbage_is_a_typed_error_naming_what_was_wrong() {
        // The old text framing (kind byte, decimal length, `:`) is not a frame.
        let err = decode(&mut &b"W0:ok"[..]).unwrap_err();
        assert!(matches!(err, ChannelError::UnknownTag(b'W')), "{err}");
        let frame = |tag: u8, payload: &[u8]| {
            let mut f = vec![tag];
            f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            f.extend_from_slice(payload);
            f
        };
        for (tag, payload, name) in [
            (TAG_MADE, &b"{not json"[..], "made"),
            (TAG_FAILED, &b"[]"[..], "failed"),
            (TAG_READY, &b"x"[..], "ready"),
            (TAG_INTENT, &b""[..], "intent"),
            (TAG_INTENT, &b"/a\0b"[..], "intent"),
            (TAG_GO, &b"\x01\x00"[..], "go"),
            (TAG_GO, &b"\x09\x00\x00\x00abc"[..], "go"),
        ] {
            let err = decode(&mut frame(tag, payload).as_slice()).unwrap_err();
            assert!(
                matches!(err, ChannelError::BadPayload { name: n, .. } if n == name),
                "{name}: {err}"
            );
        }
    }
}
