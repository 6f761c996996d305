//! How a test ends other than passing: the `Fail` a test returns, and the `ensure!` macros
//! that build it. Below everything else, so that any helper can fail a test.

use std::fmt;

/// Why a test did not pass.
#[derive(Debug)]
pub enum Fail {
    /// The runtime did not behave as required.
    Fail(String),
    /// The machine cannot provide what the test needs (the reason is printed).
    Skip(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::Fail(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Self {
        Fail::Fail(s.to_string())
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Fail(m) => write!(f, "{m}"),
            Fail::Skip(m) => write!(f, "skipped: {m}"),
        }
    }
}

pub type TestResult = Result<(), Fail>;

/// Fails the current test with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::fail::Fail::Fail(format!($($fmt)+)));
        }
    };
}

/// Fails the current test unless the two values are equal, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    return Err($crate::fail::Fail::Fail(format!(
                        "{}: got {:?}, want {:?}",
                        format!($($fmt)+),
                        l,
                        r
                    )));
                }
            }
        }
    };
}
