//! Registry credentials: a user name and password, or an identity token in Docker's form.

use base64::Engine as _;

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a password, not even in debug logs.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `--creds` without a `user:` part.
#[derive(Debug, thiserror::Error)]
#[error("--creds value is invalid; expected user:password")]
pub struct BadCredsFlag;

/// The user name Docker pairs with an identity token (the secret is then the token).
const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// Parses `--creds user:password` (the password may contain ':').
    pub fn from_flag(value: &str) -> Result<Credentials, BadCredsFlag> {
        match value.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(BadCredsFlag),
        }
    }

    /// Credentials that are an identity token (an OAuth2 refresh token), in Docker's form.
    pub fn identity(token: &str) -> Credentials {
        Credentials {
            username: IDENTITY_TOKEN_USER.to_string(),
            password: token.to_string(),
        }
    }

    /// The identity token (an OAuth2 refresh token), when these credentials are one rather
    /// than a password: Docker's convention is the user name `<token>`.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }

    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_flag_splits_at_the_first_colon() {
        let c = Credentials::from_flag("user:pa:ss").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        assert!(Credentials::from_flag("nocolon").is_err());
        assert!(Credentials::from_flag(":pw").is_err());
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYTpzcw==");
        assert!(
            !format!("{c:?}").contains("pa:ss"),
            "debug output hides the password"
        );
    }
}
