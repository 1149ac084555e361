//! `.kamal/secrets`: plain values, references to variables, and shell commands. Commands are
//! never run here; the caller runs them only with the user's consent.

use crate::SecretsError;
use kubectl_rails_spec::validate::is_env_key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KamalValue {
    Plain(String),
    /// `$VAR` or `${VAR}`: the value of a variable in the environment.
    Reference(String),
    /// Anything a shell must evaluate, such as `$(cat config/master.key)`.
    Command(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KamalLine {
    pub key: String,
    pub value: KamalValue,
    pub line: usize,
}

fn reference(value: &str) -> Option<&str> {
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'))?;
    is_env_key(name).then_some(name)
}

/// Parses the file; a line that is not `KEY=...` is an error with its number.
pub fn parse(text: &str) -> Result<Vec<KamalLine>, SecretsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| SecretsError::BadLine {
            file: ".kamal/secrets".into(),
            line: i + 1,
            reason,
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad("expected `KEY=value`".into()))?;
        let key = key.trim().trim_start_matches("export ").trim();
        if !is_env_key(key) {
            return Err(bad(format!(
                "`{key}` is not a valid environment variable name"
            )));
        }
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let single_quoted = value.starts_with('\'');
        let value = if single_quoted || !unquoted.contains(['$', '`']) {
            KamalValue::Plain(unquoted.to_string())
        } else if let Some(name) = reference(unquoted) {
            KamalValue::Reference(name.to_string())
        } else {
            KamalValue::Command(unquoted.to_string())
        };
        out.push(KamalLine {
            key: key.to_string(),
            value,
            line: i + 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_values() {
        let lines = parse(
            "# c\nA=plain\nB=$KAMAL_REGISTRY_PASSWORD\nC=${OTHER}\nD=$(cat config/master.key)\nE='$NOT_EXPANDED'\nF=\"quoted\"\n",
        )
        .unwrap();
        let values: Vec<_> = lines
            .iter()
            .map(|l| (l.key.as_str(), l.value.clone()))
            .collect();
        assert_eq!(
            values,
            [
                ("A", KamalValue::Plain("plain".into())),
                ("B", KamalValue::Reference("KAMAL_REGISTRY_PASSWORD".into())),
                ("C", KamalValue::Reference("OTHER".into())),
                ("D", KamalValue::Command("$(cat config/master.key)".into())),
                ("E", KamalValue::Plain("$NOT_EXPANDED".into())),
                ("F", KamalValue::Plain("quoted".into())),
            ]
        );
    }

    #[test]
    fn bad_line_has_its_number() {
        let e = parse("A=1\nnope\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
