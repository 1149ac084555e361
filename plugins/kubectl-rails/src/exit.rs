//! Exit codes and the error type that carries one. Documented in the README.

use std::fmt;

pub(crate) const FAILURE: u8 = 1;
pub(crate) const USAGE: u8 = 2;
/// The release failed its bake (`deploy --bake`) and was rolled back.
pub(crate) const BAKE_FAILED: u8 = 3;
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

/// A remote command's exit code as ours: 0 is success, anything else passes through.
pub(crate) fn pass_through(code: i32) -> anyhow::Result<()> {
    match code {
        0 => Ok(()),
        c => Err(Passthrough(u8::try_from(c).unwrap_or(1)).into()),
    }
}

/// An error and its causes on one line. kube's API errors print the whole Status; the server's
/// own message says it once, and nothing below it adds anything.
/// The apiserver quotes a rejected value as a Go struct (`Invalid value: core.PodTemplateSpec{...}`),
/// thousands of characters that say nothing to a Rails developer; the field path and the reason
/// around it do. Values of a line or less stay.
fn without_go_values(message: &str) -> String {
    const MARK: &str = "Invalid value: ";
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let value_start = at + MARK.len();
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..];
        // A Go struct value: a type name, then braces to their balanced end.
        let end = value.find('{').filter(|&open| {
            value[..open]
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '_')
        });
        let close = end.and_then(|open| {
            let mut depth = 0usize;
            for (i, c) in value[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(open + i + 1);
                        }
                    }
                    _ => {}
                }
            }
            None
        });
        match close {
            Some(close) if close > 80 => {
                out.push_str(&value[..end.unwrap_or(0)]);
                out.push_str("{…}");
                rest = &value[close..];
            }
            _ => rest = value,
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let api = e.downcast_ref::<kube::Error>().and_then(|k| match k {
            kube::Error::Api(status) => Some(without_go_values(&status.message)),
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

#[cfg(test)]
mod tests {
    use super::without_go_values;

    #[test]
    fn a_go_struct_value_is_cut_to_its_type() {
        let long = format!(
            "core.PodTemplateSpec{{ObjectMeta:v1.ObjectMeta{{Name:\"\"}}, Spec:{}}}",
            "x".repeat(200)
        );
        let message = format!(
            "Job.batch \"shop-migrate-1\" is invalid: spec.template: Invalid value: {long}: field is immutable"
        );
        assert_eq!(
            without_go_values(&message),
            "Job.batch \"shop-migrate-1\" is invalid: spec.template: Invalid value: core.PodTemplateSpec{…}: field is immutable"
        );
    }

    #[test]
    fn short_values_stay() {
        let message = "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0";
        assert_eq!(without_go_values(message), message);
        let small = "x: Invalid value: core.Thing{A:1}: bad";
        assert_eq!(without_go_values(small), small);
    }
}
