//! The command line containerd gives a shim v2 binary: Go `flag` style single-dash options
//! (`-namespace ns`, `-id x`, `-debug`), then an optional action (`start` or `delete`;
//! none means "serve").

use std::path::PathBuf;

/// What the shim was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start (or reuse) a shim daemon, print its address.
    Start,
    /// Clean up after a dead shim's container, print a DeleteResponse.
    Delete,
    /// Serve the task service on the socket given with `-socket`.
    Serve,
}

/// The parsed flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub namespace: String,
    pub id: String,
    /// containerd's gRPC address (the socket name is derived from it).
    pub address: String,
    pub publish_binary: String,
    pub bundle: Option<PathBuf>,
    /// Where the daemon binds (given by `start` to the daemon it spawns).
    pub socket: Option<PathBuf>,
    pub debug: bool,
    pub action: Action,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("flag {0} needs a value")]
    MissingValue(String),
    #[error("unknown flag {0}")]
    UnknownFlag(String),
    #[error("unknown action {0} (expected start or delete)")]
    UnknownAction(String),
    #[error("flag -{0} is required")]
    Required(&'static str),
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, ArgsError> {
    let mut a = Args {
        namespace: String::new(),
        id: String::new(),
        address: String::new(),
        publish_binary: String::new(),
        bundle: None,
        socket: None,
        debug: false,
        action: Action::Serve,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            a.action = match arg.as_str() {
                "start" => Action::Start,
                "delete" => Action::Delete,
                _ => {
                    return Err(ArgsError::UnknownAction(
                        stockade_quote::quote(&arg).to_string(),
                    ))
                }
            };
            continue;
        };
        // Go's flag package also takes `-flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "debug" || name == "v" {
            a.debug = inline.as_deref() != Some("false");
            if name == "v" {
                // `-v` asks for the version; containerd never sends it to a running shim.
                a.debug = false;
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| ArgsError::MissingValue(name.to_string()))?,
        };
        match name {
            "namespace" => a.namespace = value,
            "id" => a.id = value,
            "address" => a.address = value,
            "publish-binary" => a.publish_binary = value,
            "bundle" => a.bundle = Some(PathBuf::from(value)),
            "socket" => a.socket = Some(PathBuf::from(value)),
            _ => {
                return Err(ArgsError::UnknownFlag(
                    stockade_quote::quote(name).to_string(),
                ))
            }
        }
    }
    if a.namespace.is_empty() {
        return Err(ArgsError::Required("namespace"));
    }
    if a.id.is_empty() {
        return Err(ArgsError::Required("id"));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn containerd_start_line() {
        let a = parse(v(
            "-namespace k8s.io -address /run/c.sock -publish-binary /usr/bin/containerd -id abc start",
        ))
        .unwrap();
        assert_eq!(a.namespace, "k8s.io");
        assert_eq!(a.id, "abc");
        assert_eq!(a.address, "/run/c.sock");
        assert_eq!(a.publish_binary, "/usr/bin/containerd");
        assert_eq!(a.action, Action::Start);
        assert!(!a.debug);
    }

    #[test]
    fn delete_with_bundle_and_debug() {
        let a = parse(v("-debug -namespace n -id x -bundle=/b delete")).unwrap();
        assert_eq!(a.bundle.as_deref(), Some(std::path::Path::new("/b")));
        assert!(a.debug);
        assert_eq!(a.action, Action::Delete);
    }

    #[test]
    fn no_action_serves() {
        assert_eq!(
            parse(v("-namespace n -id x")).unwrap().action,
            Action::Serve
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(v("-namespace n")), Err(ArgsError::Required("id")));
        assert_eq!(
            parse(v("-namespace")),
            Err(ArgsError::MissingValue("namespace".into()))
        );
        assert!(matches!(
            parse(v("-namespace n -id x -bogus 1")),
            Err(ArgsError::UnknownFlag(_))
        ));
        assert!(matches!(
            parse(v("-namespace n -id x frob")),
            Err(ArgsError::UnknownAction(_))
        ));
    }
}
