//! `ociVersion`: which runtime-spec versions stockade accepts.

use super::ConfigError;

/// The newest runtime-spec version stockade implements.
pub const SPEC_VERSION: &str = "1.3.0";

/// Accepted: a semantic version `1.MINOR.PATCH` with MINOR 0..=3, optionally followed by a
/// pre-release (`-dev`, `-rc.1`) and/or build metadata (`+abc`), e.g. `1.0.2-dev`, `1.3.0`.
pub fn check_oci_version(value: &str) -> Result<(), ConfigError> {
    const EXPECTED: &str = "a runtime-spec 1.x semantic version from 1.0.0 to 1.3.x, such as \"1.3.0\" or \"1.0.2-dev\"";
    let bad = || ConfigError::invalid("ociVersion", value, EXPECTED);
    let (core, build) = match value.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (value, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| is_numeric_identifier(p)) {
        return Err(bad());
    }
    if let Some(pre) = pre {
        if !identifiers_ok(pre) {
            return Err(bad());
        }
    }
    if let Some(build) = build {
        if !identifiers_ok(build) {
            return Err(bad());
        }
    }
    let major: u64 = parts[0].parse().map_err(|_| bad())?;
    let minor: u64 = parts[1].parse().map_err(|_| bad())?;
    if major != 1 || minor > 3 {
        return Err(bad());
    }
    Ok(())
}

/// A semver numeric identifier: digits, no leading zero unless it is "0".
fn is_numeric_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        && s.len() <= 9
}

/// Dot-separated non-empty identifiers of `[0-9A-Za-z-]`.
fn identifiers_ok(s: &str) -> bool {
    s.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_1_x_release_and_pre_releases() {
        for v in [
            "1.0.0",
            "1.0.2",
            "1.0.2-dev",
            "1.1.0",
            "1.2.0",
            "1.2.1",
            "1.3.0",
            "1.3.7",
            "1.3.0-rc.1",
            "1.0.0+build.5",
        ] {
            assert!(check_oci_version(v).is_ok(), "{v} should be accepted");
        }
    }

    #[test]
    fn rejects_non_1_x_and_malformed_versions() {
        for v in [
            "",
            "1",
            "1.0",
            "2.0.0",
            "0.9.0",
            "1.4.0",
            "1.0.0-",
            "01.0.0",
            "1.00.0",
            "v1.0.0",
            "1.0.0.0",
            "1.0.x",
            "1.0.0-dev..1",
            "latest",
        ] {
            let err = check_oci_version(v).expect_err(v).to_string();
            assert!(err.starts_with("ociVersion: "), "{err}");
            assert!(err.contains("expected a runtime-spec 1.x"), "{err}");
        }
    }
}
