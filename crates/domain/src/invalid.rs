//! [`Invalid`]: the one error of domain's parsers and checks. A value from outside (a flag, a
//! configuration key, a CSV cell, an HTTP field, a stored row) is not what it must be; the
//! message says what was given and what is accepted, so an operator can act on it. Callers
//! that know the field (the CLI, the API) name it; the message never repeats a secret.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid(message.into())
    }

    /// What is wrong, as the operator reads it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Invalid {
        Invalid(message.to_string())
    }
}
