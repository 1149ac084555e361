//! What the app's code reads from the environment at boot (`config/application.rb`,
//! `config/environments/production.rb`, `config/initializers/`), each read classified:
//! required (`ENV.fetch("X")` without a default, or a `raise`/`abort` when it is blank), optional
//! with a default (`ENV.fetch("X", d)`, `ENV["X"] || d`), or a flag (`.present?`, `== "true"`),
//! which any value would turn on.

/// How the code reads one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The app cannot start without it.
    Required,
    /// It has a default.
    Optional,
    /// A switch: set means on.
    Flag,
}

/// One read: the key, how, and where (`config/initializers/gateway.rb:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRead {
    pub key: String,
    pub read: Read,
    pub at: String,
    /// The default, when it is a quoted string (`ENV.fetch("UPLOADS_DIR", "storage/uploads")`).
    pub default: Option<String>,
}

/// The quoted string a default starts with: `"storage/uploads")` -> `storage/uploads`.
fn quoted_default(text: &str) -> Option<String> {
    let t = text.trim_start();
    let q = t.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = t[1..].find(q)? + 1;
    Some(t[1..end].to_string())
}

/// The key of an `ENV[...]`/`ENV.fetch(...)` starting at `rest` (just after `ENV`), and what
/// follows its closing quote and bracket.
fn key_at(rest: &str) -> Option<(String, bool, &str)> {
    let (body, fetch) = if let Some(b) = rest.strip_prefix(".fetch(") {
        (b, true)
    } else if let Some(b) = rest.strip_prefix('[') {
        (b, false)
    } else {
        return None;
    };
    let q = body.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let close = body[1..].find(q)? + 1;
    let key = &body[1..close];
    crate::validate::is_env_key(key).then(|| (key.to_string(), fetch, &body[close + 1..]))
}

/// Whether line `i` runs only sometimes: inside an `if`/`unless`/`case` branch, a method or a
/// lambda (a feature the app enables when configured), as the indentation of the lines that
/// enclose it says.
fn conditional(lines: &[&str], i: usize) -> bool {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut level = indent(lines[i]);
    for line in lines[..i].iter().rev() {
        let code = line.trim();
        if code.is_empty() || code.starts_with('#') || indent(line) >= level {
            continue;
        }
        level = indent(line);
        let opens = [
            "if ", "unless ", "elsif ", "else", "when ", "case ", "def ", "begin",
        ]
        .iter()
        .any(|k| code.starts_with(k))
            || code.contains("->")
            || code.contains("lambda")
            || code.contains("proc {")
            || code.contains("proc do");
        if opens {
            return true;
        }
        if level == 0 {
            break;
        }
    }
    false
}

/// The reads of one Ruby file.
pub fn reads(file: &str, text: &str) -> Vec<EnvRead> {
    let mut out: Vec<EnvRead> = Vec::new();
    let all: Vec<&str> = text.lines().collect();
    for (i, raw) in all.iter().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        let sometimes = conditional(&all, i);
        let at = format!("{file}:{}", i + 1);
        let raises = line.contains("raise ") || line.contains("abort") || line.contains("fail ");
        let mut rest = line;
        while let Some(p) = rest.find("ENV") {
            rest = &rest[p + 3..];
            let Some((key, fetch, after)) = key_at(rest) else {
                continue;
            };
            let after = after.trim_start();
            let default = if fetch {
                after.strip_prefix(',').and_then(quoted_default)
            } else {
                after
                    .trim_start_matches(']')
                    .trim_start()
                    .strip_prefix("||")
                    .and_then(quoted_default)
            };
            let read = if fetch {
                // `, default)` or `) { default }` or `)` alone.
                if after.starts_with(',') {
                    Read::Optional
                } else {
                    let tail = after.trim_start_matches(')').trim_start();
                    if tail.starts_with('{') || tail.starts_with("do") {
                        Read::Optional
                    } else {
                        Read::Required
                    }
                }
            } else {
                let tail = after.trim_start_matches(']').trim_start();
                if raises
                    && (tail.starts_with(".blank?")
                        || tail.starts_with(".nil?")
                        || tail.starts_with(".to_s.empty?")
                        || line.starts_with("unless ")
                        || line.contains(" unless ENV"))
                {
                    Read::Required
                } else if tail.starts_with(".present?")
                    || tail.starts_with("==")
                    || tail.starts_with("!=")
                    || tail.starts_with(".blank?")
                    || tail.starts_with(".nil?")
                    || line.starts_with("if ENV")
                    || line.starts_with("unless ENV")
                    || line.contains(" if ENV")
                {
                    Read::Flag
                } else {
                    Read::Optional
                }
            };
            // A read in a branch the app takes only when configured does not stop it booting.
            let read = if read == Read::Required && sometimes {
                Read::Optional
            } else {
                read
            };
            match out.iter_mut().find(|r| r.key == key) {
                // The strictest read wins: one `ENV.fetch("X")` makes X required.
                Some(r) if read == Read::Required => {
                    r.read = Read::Required;
                    r.at = at.clone();
                }
                Some(_) => {}
                None => out.push(EnvRead {
                    key,
                    read,
                    at: at.clone(),
                    default,
                }),
            }
        }
        // `raise "..." if ENV["X"].blank?` on one line is handled above; `abort unless
        // ENV["X"]` too.
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_required_optional_or_flags() {
        let cases = [
            (
                "Gateway.key = ENV.fetch(\"GATEWAY_SIGNING_KEY\")",
                "GATEWAY_SIGNING_KEY",
                Read::Required,
            ),
            (
                "raise \"set GATEWAY_SIGNING_KEY\" if ENV[\"GATEWAY_SIGNING_KEY\"].blank?",
                "GATEWAY_SIGNING_KEY",
                Read::Required,
            ),
            (
                "abort(\"no key\") unless ENV[\"API_KEY\"]",
                "API_KEY",
                Read::Required,
            ),
            (
                "config.x = ENV.fetch(\"DB_POOL\", 5)",
                "DB_POOL",
                Read::Optional,
            ),
            (
                "config.x = ENV.fetch(\"DB_POOL\") { 5 }",
                "DB_POOL",
                Read::Optional,
            ),
            (
                "host = ENV[\"APP_HOST\"] || \"localhost\"",
                "APP_HOST",
                Read::Optional,
            ),
            ("config.x = ENV[\"APP_HOST\"]", "APP_HOST", Read::Optional),
            (
                "if ENV[\"ENABLE_SIGNUP\"].present?",
                "ENABLE_SIGNUP",
                Read::Flag,
            ),
            ("config.y = ENV[\"CACHE\"] == \"true\"", "CACHE", Read::Flag),
            (
                "Sentry.init { } if ENV[\"SENTRY_DSN\"]",
                "SENTRY_DSN",
                Read::Flag,
            ),
            ("# ENV.fetch(\"COMMENTED\")", "", Read::Optional),
        ];
        for (line, key, read) in cases {
            let got = reads("config/initializers/x.rb", line);
            if key.is_empty() {
                assert!(got.is_empty(), "{line}: {got:?}");
                continue;
            }
            assert_eq!(got.len(), 1, "{line}: {got:?}");
            assert_eq!((got[0].key.as_str(), &got[0].read), (key, &read), "{line}");
        }
        let got = reads(
            "config/application.rb",
            "a = ENV[\"K\"]\nb = ENV.fetch(\"K\")\n",
        );
        assert_eq!(
            (got[0].read.clone(), got[0].at.as_str()),
            (Read::Required, "config/application.rb:2")
        );
    }
}
