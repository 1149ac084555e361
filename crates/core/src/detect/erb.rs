//! The part of ERB that Rails and Kamal config files use: `<%= ENV["X"] %>`,
//! `ENV.fetch("X", default)`, `ENV.fetch("X") { default }`, `ENV["X"] || default`, literals, and
//! `<% %>` statements that only load things (`require "dotenv"; Dotenv.load`), which are
//! ignored. Kamal and Rails evaluate these files as ERB before reading their YAML; so do we.
//!
//! The environment is never read here: an `ENV` lookup takes the value from the map the caller
//! gives (empty for `init`, so that no value of the machine lands in a committed spec), else its
//! default, else it is left empty and reported.

use std::collections::BTreeMap;

/// A tag that cannot be evaluated: its line and its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: cannot evaluate the ERB tag `{tag}` ({why})")]
pub struct ErbError {
    pub line: usize,
    pub tag: String,
    pub why: String,
}

/// The text with every tag replaced, and the lookups that found no value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluated {
    pub text: String,
    /// `line N: ENV["X"]` for each lookup that had neither a value nor a default.
    pub unresolved: Vec<String>,
    /// Env keys read with a default: (key, default).
    pub defaults: Vec<(String, String)>,
}

/// Statements that change nothing the file's YAML says.
fn is_harmless_statement(code: &str) -> bool {
    code.split(';').map(str::trim).all(|s| {
        s.is_empty()
            || s.starts_with("require ")
            || s.starts_with("require(")
            || s.starts_with("Dotenv.")
            || s.starts_with('#')
    })
}

/// Evaluates the tags of `text` with `env` as `ENV`.
pub fn evaluate(text: &str, env: &BTreeMap<String, String>) -> Result<Evaluated, ErbError> {
    let mut out = Evaluated::default();
    let mut rest = text;
    let mut line = 1;
    while let Some(start) = rest.find("<%") {
        let before = &rest[..start];
        out.text.push_str(before);
        line += before.matches('\n').count();
        let after = &rest[start + 2..];
        if let Some(literal) = after.strip_prefix('%') {
            out.text.push_str("<%");
            rest = literal;
            continue;
        }
        let Some(end) = after.find("%>") else {
            return Err(ErbError {
                line,
                tag: after
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(60)
                    .collect(),
                why: "the tag is not closed with `%>`".into(),
            });
        };
        let inner = &after[..end];
        let mut next = &after[end + 2..];
        let tag = format!("<%{inner}%>");
        let trim_newline = inner.ends_with('-');
        let inner = inner.trim_end_matches('-');
        let statement = inner.starts_with('#') || !inner.starts_with('=');
        if inner.starts_with('#') {
            // A comment: nothing to evaluate.
        } else if let Some(expr) = inner.strip_prefix('=') {
            let value = expression(expr.trim(), env, line, &mut out).map_err(|why| ErbError {
                line,
                tag: tag.clone(),
                why,
            })?;
            out.text.push_str(&value);
        } else if !is_harmless_statement(inner.trim_start_matches('-').trim()) {
            return Err(ErbError {
                line,
                tag,
                why: "only `<%= ENV... %>` expressions and `require`/`Dotenv` statements are understood: write the value in the file, or put it in the spec by hand".into(),
            });
        }
        // A statement on a line of its own leaves no blank line behind, as `-%>` says.
        if statement
            && (trim_newline || out.text.ends_with('\n') || out.text.is_empty())
            && let Some(stripped) = next.strip_prefix('\n')
        {
            next = stripped;
            line += 1;
        }
        line += inner.matches('\n').count();
        rest = next;
    }
    out.text.push_str(rest);
    Ok(out)
}

/// `text` without a trailing conversion (`.to_i`, `.to_s`, `.to_sym`), which changes nothing a
/// YAML reader sees.
fn without_conversion(text: &str) -> &str {
    let t = text.trim();
    t.strip_suffix(".to_i")
        .or_else(|| t.strip_suffix(".to_s"))
        .or_else(|| t.strip_suffix(".to_sym"))
        .unwrap_or(t)
        .trim()
}

/// A Ruby literal: a quoted string, a number, `nil`, `true` or `false`.
fn literal(text: &str) -> Option<String> {
    let t = without_conversion(text);
    if let Some(q) = t.chars().next().filter(|c| *c == '"' || *c == '\'')
        && t.len() >= 2
        && t.ends_with(q)
    {
        let body = &t[1..t.len() - 1];
        return (!body.contains(q)).then(|| body.to_string());
    }
    if let Some(sym) = t.strip_prefix(':')
        && sym.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Some(sym.to_string());
    }
    if t.parse::<f64>().is_ok() || t == "true" || t == "false" {
        return Some(t.to_string());
    }
    (t == "nil").then(String::new)
}

/// Where the app folder is inside the image: storage.yml's `root:` says
/// `<%= Rails.root.join("storage") %>`, and only the caller knows the image's WORKDIR.
pub const RAILS_ROOT: &str = "<Rails.root>";

/// `Rails.root.join("a", "b")` as `<Rails.root>/a/b`.
fn rails_root_join(expr: &str) -> Option<String> {
    let t = expr.trim().strip_suffix(".to_s").unwrap_or(expr.trim());
    if t == "Rails.root" {
        return Some(RAILS_ROOT.to_string());
    }
    let args = t.strip_prefix("Rails.root.join(")?.strip_suffix(')')?;
    let parts: Option<Vec<String>> = args.split(',').map(literal).collect();
    Some(format!("{RAILS_ROOT}/{}", parts?.join("/")))
}

/// `"X"` in `ENV["X"]` or `ENV.fetch("X"...`: the key and what follows the closing bracket.
fn env_key(text: &str) -> Option<(String, &str, bool)> {
    let (rest, fetch) = if let Some(r) = text.strip_prefix("ENV[") {
        (r, false)
    } else if let Some(r) = text.strip_prefix("ENV.fetch(") {
        (r, true)
    } else {
        return None;
    };
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let close = rest[1..].find(q)? + 1;
    let key = rest[1..close].to_string();
    Some((key, &rest[close + 1..], fetch))
}

fn expression(
    expr: &str,
    env: &BTreeMap<String, String>,
    line: usize,
    out: &mut Evaluated,
) -> Result<String, String> {
    if let Some(value) = literal(expr) {
        return Ok(value);
    }
    if let Some(path) = rails_root_join(expr) {
        return Ok(path);
    }
    let unsupported = || {
        "only `ENV[...]`, `ENV.fetch(...)` and literals are understood: write the value in the file, or put it in the spec by hand".to_string()
    };
    let Some((key, tail, fetch)) = env_key(expr) else {
        return Err(unsupported());
    };
    let tail = tail.trim();
    // The default, from `, d)`, `) { d }`, `] || d` or `].presence || d`.
    let default = if fetch {
        if let Some(d) = tail.strip_prefix(',') {
            let d = d.trim().strip_suffix(')').ok_or_else(unsupported)?;
            Some(literal(d).ok_or_else(unsupported)?)
        } else {
            let t = without_conversion(tail.strip_prefix(')').ok_or_else(unsupported)?);
            if t.is_empty() {
                None
            } else {
                let block = t
                    .strip_prefix('{')
                    .and_then(|b| b.strip_suffix('}'))
                    .ok_or_else(unsupported)?;
                Some(literal(block).ok_or_else(unsupported)?)
            }
        }
    } else {
        let t = tail.strip_prefix(']').ok_or_else(unsupported)?.trim();
        let t = without_conversion(t.strip_prefix(".presence").unwrap_or(t));
        if t.is_empty() {
            None
        } else {
            let d = t.strip_prefix("||").ok_or_else(unsupported)?;
            Some(literal(d).ok_or_else(unsupported)?)
        }
    };
    if let Some(d) = &default {
        out.defaults.push((key.clone(), d.clone()));
    }
    Ok(match (env.get(&key), default) {
        (Some(v), _) if !v.is_empty() => v.clone(),
        (_, Some(d)) => d,
        _ => {
            out.unresolved.push(format!("line {line}: ENV[\"{key}\"]"));
            String::new()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_erb_real_config_files_use() {
        let env = BTreeMap::from([("SET".to_string(), "from-env".to_string())]);
        let cases = [
            ("a: <%= ENV[\"SET\"] %>", "a: from-env"),
            ("a: <%= ENV['UNSET'] %>", "a: "),
            ("a: <%= ENV.fetch(\"UNSET\", \"sqlite\") %>", "a: sqlite"),
            ("a: <%= ENV.fetch('UNSET') { 5 } %>", "a: 5"),
            ("a: <%= ENV.fetch(\"UNSET\") { \"x\" }.to_i %>", "a: x"),
            ("a: <%= ENV[\"UNSET\"] || \"d\" %>", "a: d"),
            ("a: <%= ENV[\"UNSET\"].presence || 'd' %>", "a: d"),
            ("a: <%= ENV.fetch(\"SET\", \"d\") %>", "a: from-env"),
            ("a: <%= 3000 %>", "a: 3000"),
            (
                "root: <%= Rails.root.join(\"storage\") %>",
                "root: <Rails.root>/storage",
            ),
            (
                "<% require \"dotenv\"; Dotenv.load(\".env\") %>\nservice: x\n",
                "service: x\n",
            ),
            ("<%# a comment %>\nservice: x\n", "service: x\n"),
            ("a: 1\n<% require 'dotenv/load' -%>\nb: 2\n", "a: 1\nb: 2\n"),
            ("a: '<%%= literal %>'", "a: '<%= literal %>'"),
        ];
        for (text, expected) in cases {
            let got = evaluate(text, &env).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got.text, expected, "{text}");
        }
        let got = evaluate("x: 1\ny: <%= ENV.fetch(\"KAMAL_HOST\") %>\n", &env).unwrap();
        assert_eq!(got.unresolved, ["line 2: ENV[\"KAMAL_HOST\"]"]);
    }

    #[test]
    fn what_cannot_be_evaluated_names_its_line_and_tag() {
        let env = BTreeMap::new();
        let cases = [
            ("a: 1\nb: <%= `hostname` %>\n", 2, "<%= `hostname` %>"),
            (
                "a: 1\n\n<% if ENV[\"X\"] %>\nb: 2\n<% end %>\n",
                3,
                "<% if ENV[\"X\"] %>",
            ),
            ("a: <%= Time.now %>", 1, "<%= Time.now %>"),
        ];
        for (text, line, tag) in cases {
            let e = evaluate(text, &env).unwrap_err();
            assert_eq!((e.line, e.tag.as_str()), (line, tag), "{text}");
        }
        assert!(evaluate("a: <%= ENV['X'", &env).is_err());
    }
}
