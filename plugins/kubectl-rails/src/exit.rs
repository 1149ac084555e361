//! Exit codes and the error type that carries one. Documented in the README.

use std::fmt;

pub(crate) const FAILURE: u8 = 1;
pub(crate) const USAGE: u8 = 2;
pub(crate) const TIMEOUT: u8 = 124;
pub(crate) const INTERRUPTED: u8 = 130;

/// An error the user caused or can fix, with its exit code and what to do next.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A usage error (exit 2): a bad or missing flag value.
pub(crate) fn usage(message: impl Into<String>, hint: Option<String>) -> anyhow::Error {
    Failure {
        message: message.into(),
        hint,
        code: USAGE,
    }
    .into()
}

/// A failure (exit 1) with a hint.
pub(crate) fn failure(message: impl Into<String>, hint: Option<String>) -> anyhow::Error {
    Failure {
        message: message.into(),
        hint,
        code: FAILURE,
    }
    .into()
}

/// A failure with its own exit code, such as a timeout or a remote command's status.
pub(crate) fn with_code(
    code: u8,
    message: impl Into<String>,
    hint: Option<String>,
) -> anyhow::Error {
    Failure {
        message: message.into(),
        hint,
        code,
    }
    .into()
}

/// A remote command's exit status, passed on without a message of our own.
#[derive(Debug)]
pub(crate) struct Passthrough(pub u8);

impl fmt::Display for Passthrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the command exited with {}", self.0)
    }
}

impl std::error::Error for Passthrough {}

/// An error and its causes on one line. kube's API errors print the whole Status; the server's
/// own message says it once, and nothing below it adds anything.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let api = e.downcast_ref::<kube::Error>().and_then(|k| match k {
            kube::Error::Api(status) => Some(status.message.clone()),
            _ => None,
        });
        let text = api.clone().unwrap_or_else(|| e.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if api.is_some() {
            break;
        }
        cause = e.source();
    }
    parts.join(": ")
}
