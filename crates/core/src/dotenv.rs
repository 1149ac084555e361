//! A strict `.env` parser: `KEY=value`, `export KEY=value`, quoted values and comments. A line
//! it cannot read is an error with its line number, never silently dropped.

use crate::validate::is_env_key;

/// One `KEY=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A line that is neither blank, a comment nor `KEY=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EnvLineError {
    pub line: usize,
    pub reason: String,
}

/// Parses `.env` text into its entries, in file order.
pub fn parse(text: &str) -> Result<Vec<EnvEntry>, EnvLineError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .map_or(trimmed, str::trim_start);
        // A bad line is named by its number, and by its key only once the key is a valid name:
        // its text may be a pasted secret (`postgres://user:password@host/db`).
        let Some((key, value)) = body.split_once('=') else {
            return Err(EnvLineError {
                line,
                reason: "expected `KEY=value` (the line's text is not shown: it may be secret)"
                    .into(),
            });
        };
        let key = key.trim();
        if !is_env_key(key) {
            return Err(EnvLineError {
                line,
                reason: "the text before `=` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)".into(),
            });
        }
        let value = unquote(value.trim()).map_err(|reason| EnvLineError {
            line,
            reason: format!("`{key}`: {reason}"),
        })?;
        out.push(EnvEntry {
            key: key.to_string(),
            value,
            line,
        });
    }
    Ok(out)
}

fn unquote(value: &str) -> Result<String, String> {
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            let Some(end) = rest.find(quote) else {
                return Err(format!(
                    "the value opens a {quote} quote that is never closed"
                ));
            };
            let tail = rest[end + 1..].trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err("unexpected text after the closing quote".into());
            }
            let inner = &rest[..end];
            return Ok(if quote == '"' {
                inner.replace("\\n", "\n")
            } else {
                inner.to_string()
            });
        }
    }
    // An unquoted value ends at a comment that follows white space.
    let value = value.split(" #").next().unwrap_or(value).trim_end();
    Ok(value.to_string())
}

/// Settings known to hold no secret: the only `.env` keys `init` writes into the (committed)
/// spec as plain env. Every other value is stored as a secret.
pub const KNOWN_PLAIN: &[&str] = &[
    "RAILS_ENV",
    "RACK_ENV",
    "NODE_ENV",
    "PORT",
    "HTTP_PORT",
    "TARGET_PORT",
    "RAILS_LOG_TO_STDOUT",
    "RAILS_SERVE_STATIC_FILES",
    "RAILS_LOG_LEVEL",
    "WEB_CONCURRENCY",
    "RAILS_MAX_THREADS",
    "RAILS_MIN_THREADS",
    "JOB_CONCURRENCY",
    "SOLID_QUEUE_IN_PUMA",
    "MALLOC_ARENA_MAX",
    "RUBY_YJIT_ENABLE",
    "LANG",
    "LC_ALL",
    "TZ",
];

/// Whether a `.env` key is a known plain setting ([`KNOWN_PLAIN`]).
pub fn is_known_plain(key: &str) -> bool {
    KNOWN_PLAIN.contains(&key)
}

/// Whether a key's value is likely a credential, from its name alone.
pub fn looks_secret(key: &str) -> bool {
    const MARKERS: &[&str] = &[
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "PRIVATE",
        "CREDENTIAL",
        "MASTER_KEY",
        "API_KEY",
        "ACCESS_KEY",
        "AUTH",
        "DSN",
        "SALT",
        "CERT",
    ];
    let key = key.to_ascii_uppercase();
    MARKERS.iter().any(|m| key.contains(m))
        || key.ends_with("_KEY")
        // Connection URLs carry a user and password: DATABASE_URL, REDIS_URL, AMQP_URL...
        || (key.ends_with("_URL") && !key.contains("HOST") && !key.contains("CDN") && !key.contains("ASSET"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_comments_and_export() {
        let text = "# db\nDATABASE_URL=postgres://u:p@h/db\nexport E2_REGION='miami'\nCDN_HOST=\"cdn.example.com\" # cdn\nEMPTY=\nX=a #note\n";
        let entries = parse(text).unwrap();
        let pairs: Vec<_> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            pairs,
            [
                ("DATABASE_URL", "postgres://u:p@h/db", 2),
                ("E2_REGION", "miami", 3),
                ("CDN_HOST", "cdn.example.com", 4),
                ("EMPTY", "", 5),
                ("X", "a", 6)
            ]
        );
    }

    #[test]
    fn bad_lines_name_their_number_without_the_value() {
        let err = parse("A=1\nthis is not env\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse("A=1\nMY-KEY=hunter2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: the text before `=` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)"
        );
        let err = parse("A=\"open\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: `A`: the value opens a \" quote that is never closed"
        );
    }

    #[test]
    fn a_bad_line_never_shows_any_of_its_text() {
        for line in [
            "postgres://user:Pa55word-Secret@db.internal/app",
            "postgres://user:Pa55word-Secret@db.internal/app?sslmode=require",
            "export Pa55word-Secret=1",
            "TOKEN=\"Pa55word-Secret",
        ] {
            let err = parse(&format!("A=1\n{line}\n")).unwrap_err().to_string();
            assert!(err.starts_with("line 2: "), "{err}");
            for start in 0..line.len().saturating_sub(8) {
                let slice = &line[start..start + 8];
                assert!(
                    !err.contains(slice),
                    "`{slice}` of the line shows in: {err}"
                );
            }
        }
    }

    #[test]
    fn only_known_settings_are_plain() {
        for k in [
            "RAILS_ENV",
            "WEB_CONCURRENCY",
            "RAILS_MAX_THREADS",
            "HTTP_PORT",
        ] {
            assert!(is_known_plain(k), "{k}");
        }
        // Names that give no hint of a secret are still secrets by default.
        for k in [
            "SMTP_PASS",
            "STRIPE_SK",
            "SLACK_WEBHOOK",
            "CDN_HOST",
            "rails_env",
        ] {
            assert!(!is_known_plain(k), "{k}");
        }
    }

    #[test]
    fn secret_looking_keys() {
        for k in [
            "DATABASE_URL",
            "SECRET_KEY_BASE",
            "E2_ACCESS_KEY",
            "E2_SECRET_ACCESS_KEY",
            "RAILS_MASTER_KEY",
            "REDIS_URL",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in [
            "CDN_HOST",
            "E2_REGION",
            "E2_BUCKET",
            "E2_ENDPOINT",
            "RAILS_ENV",
            "ASSET_HOST_URL",
        ] {
            assert!(!looks_secret(k), "{k}");
        }
    }
}
