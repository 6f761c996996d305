//! Docker credential helpers: the `credsStore` and `credHelpers` of a Docker-style
//! `config.json` name a program `docker-credential-<name>` that keeps the secrets (in a
//! keychain, `pass`, a cloud provider's token service). `get` is the whole protocol we
//! need: the server URL on stdin, `{"ServerURL","Username","Secret"}` on stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use super::credentials::Credentials;

/// What the helpers print (on stdout, exit status 1) when they hold nothing for a server;
/// every helper in docker/docker-credential-helpers uses this text.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Why a credential helper gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("credential helper name {} is invalid; expected letters, digits, '-', '_' or '.' (the program run is docker-credential-<name>)", stockade_quote::quote(name))]
    Name { name: String },
    #[error("credential helper {program} is not installed (not found on PATH)")]
    NotFound { program: String },
    #[error("running credential helper {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("credential helper {program} failed for {server} ({status}): {detail}")]
    Failed {
        program: String,
        server: String,
        status: std::process::ExitStatus,
        detail: String,
    },
    #[error("credential helper {program} printed no valid credentials for {server}: {detail}")]
    Output {
        program: String,
        server: String,
        detail: String,
    },
}

#[derive(serde::Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The program a helper name stands for.
pub fn program(name: &str) -> Result<String, HelperError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    if !valid {
        return Err(HelperError::Name {
            name: name.to_string(),
        });
    }
    Ok(format!("docker-credential-{name}"))
}

/// Asks helper `name` for the credentials of `server` (what Docker passes: the registry
/// host, or `https://index.docker.io/v1/` for Docker Hub). `Ok(None)` when the helper
/// holds none. A username of `<token>` means the secret is an identity token.
pub fn get(name: &str, server: &str) -> Result<Option<Credentials>, HelperError> {
    run(&program(name)?, server)
}

/// Runs `program get` (found on PATH unless it is a path) for `server`.
fn run(program: &str, server: &str) -> Result<Option<Credentials>, HelperError> {
    let program = program.to_string();
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                HelperError::NotFound {
                    program: program.clone(),
                }
            } else {
                HelperError::Spawn {
                    program: program.clone(),
                    source,
                }
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its stdin is judged by its output below;
        // the broken pipe itself says nothing.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| HelperError::Spawn {
            program: program.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.trim() == NOT_FOUND {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = [stdout.trim(), stderr.trim()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
        return Err(HelperError::Failed {
            program,
            server: server.to_string(),
            status: out.status,
            detail: if detail.is_empty() {
                "no output".into()
            } else {
                detail
            },
        });
    }
    let parsed: HelperOutput =
        serde_json::from_slice(&out.stdout).map_err(|e| HelperError::Output {
            program: program.clone(),
            server: server.to_string(),
            detail: e.to_string(),
        })?;
    if parsed.username.is_empty() || parsed.secret.is_empty() {
        return Err(HelperError::Output {
            program,
            server: server.to_string(),
            detail: "Username or Secret is empty".into(),
        });
    }
    Ok(Some(Credentials {
        username: parsed.username,
        password: parsed.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    #[test]
    fn helper_names_that_are_not_plain_words_are_refused() {
        assert_eq!(program("pass").unwrap(), "docker-credential-pass");
        assert_eq!(program("ecr-login").unwrap(), "docker-credential-ecr-login");
        for bad in ["", "../x", "a/b", "x y", "..", "$(id)"] {
            let e = program(bad).unwrap_err().to_string();
            assert!(e.contains("invalid"), "{bad}: {e}");
        }
    }

    /// Writes `docker-credential-<name>` into `dir` with `body` as its shell script, and
    /// returns its path.
    fn fake_helper(dir: &Path, name: &str, body: &str) -> String {
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// `run`, retried while the script is "text file busy": another test thread may fork
    /// while the script is still open for writing, and its child holds the descriptor
    /// until it execs.
    fn run_fresh(program: &str, server: &str) -> Result<Option<Credentials>, HelperError> {
        for _ in 0..50 {
            match run(program, server) {
                Err(HelperError::Spawn { source, .. })
                    if source.raw_os_error() == Some(libc::ETXTBSY) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                r => return r,
            }
        }
        run(program, server)
    }

    #[test]
    fn the_protocol_server_on_stdin_json_on_stdout_and_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let t1 = fake_helper(
            dir.path(),
            "t1",
            r#"[ "$1" = get ] || exit 9
read -r server
case "$server" in
  reg.example:5000) printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}' "$server" ;;
  *) printf 'credentials not found in native keychain\n'; exit 1 ;;
esac"#,
        );
        let c = run_fresh(&t1, "reg.example:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
        assert!(run_fresh(&t1, "other.example").unwrap().is_none());
    }

    #[test]
    fn failures_name_the_helper_and_what_it_said() {
        let dir = tempfile::tempdir().unwrap();
        let broken = fake_helper(dir.path(), "broken", "echo 'keychain locked' >&2; exit 3");
        let garbage = fake_helper(dir.path(), "garbage", "echo not-json");
        let empty = fake_helper(dir.path(), "empty", r#"echo '{"Username":"","Secret":""}'"#);
        let e = run_fresh(&broken, "r.example").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-broken") && e.contains("keychain locked"),
            "{e}"
        );
        assert!(e.contains("r.example"), "{e}");
        let e = run_fresh(&garbage, "r.example").unwrap_err().to_string();
        assert!(e.contains("no valid credentials"), "{e}");
        let e = run_fresh(&empty, "r.example").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        // Not on PATH: the error names the program.
        let e = get("absent-helper-xyz", "r.example")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("docker-credential-absent-helper-xyz is not installed"),
            "{e}"
        );
    }
}
