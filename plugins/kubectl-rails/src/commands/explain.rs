//! `kubectl rails explain [KEY]`, as `kubectl explain`: a key of the spec file with its type,
//! default, what it does and the keys under it. It reads the JSON Schema that editors read
//! (`kubectl_rails_core::schema`), so needs no cluster and no app folder.

use std::fmt::Write as _;

use kubectl_rails_core::schema::{self, Entries, Explained};

use crate::cli::{ExplainArgs, OutputFormat};
use crate::context::Context;
use crate::exit;

/// Where the text of a description wraps, as kubectl's does.
const WIDTH: usize = 96;

pub(crate) fn run(args: &ExplainArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let format = ctx
        .settings
        .output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    if args.schema {
        let schema = if args.overlay {
            schema::overlay()
        } else {
            schema::spec()
        };
        ctx.printer.out(&schema::to_pretty(&schema))?;
        return Ok(());
    }
    let key = args.key.as_deref().unwrap_or_default();
    let explained = schema::explain(&schema::spec(), key).map_err(|e| {
        let hint = match e.closest.as_slice() {
            [] if e.siblings.is_empty() => format!("`{}` has no keys under it", e.parent),
            [] if e.parent.is_empty() => {
                format!("the spec's top-level keys: {}", e.siblings.join(", "))
            }
            [] => format!("the keys of `{}`: {}", e.parent, e.siblings.join(", ")),
            closest => format!(
                "did you mean {}? (`kubectl rails explain` lists the top-level keys)",
                closest
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        };
        exit::usage(format!("the spec has no key `{}`", e.key), Some(hint))
    })?;
    let text = match format {
        Some(OutputFormat::Json) => schema::to_pretty(&explained.schema),
        Some(OutputFormat::Yaml) => serde_saphyr::to_string(&explained.schema)?,
        _ => text(&explained),
    };
    ctx.printer.out(&text)?;
    Ok(())
}

/// The key as `kubectl explain` lays one out: its name, type and default, what it does, then
/// the keys under it with the first sentence of theirs.
fn text(e: &Explained) -> String {
    let mut out = String::new();
    let key = if e.key.is_empty() {
        "config/kubernetes.yml (every destination's overlay takes the same keys, all optional)"
    } else {
        &e.key
    };
    let _ = writeln!(out, "KEY:      {key}");
    let _ = writeln!(out, "TYPE:     {}", e.type_name);
    if let Some(default) = &e.default {
        let default = match default {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "DEFAULT:  {default}");
    }
    if !e.one_of.is_empty() {
        let _ = writeln!(out, "ONE OF:   {}", e.one_of.join(", "));
    }
    if !e.description.is_empty() {
        out.push_str("\nDESCRIPTION:\n");
        for paragraph in e.description.split("\n\n") {
            out.push_str(&wrap(paragraph, "    "));
        }
    }
    if !e.fields.is_empty() {
        let heading = match e.fields_of {
            Some(Entries::Map) => format!("\nFIELDS (of each entry, `{}.<NAME>`):\n", e.key),
            Some(Entries::List) => format!("\nFIELDS (of each item of `{}`):\n", e.key),
            None => "\nFIELDS:\n".to_string(),
        };
        out.push_str(&heading);
        for f in &e.fields {
            let required = if f.required { " -required-" } else { "" };
            let _ = writeln!(out, "  {}\t<{}>{required}", f.name, f.type_name);
            if !f.summary.is_empty() {
                out.push_str(&wrap(&f.summary, "    "));
            }
        }
    }
    out
}

/// `text` wrapped at [`WIDTH`], each line indented.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_as_kubectl_explain() {
        let e = schema::explain(&schema::spec(), "web.health_path").unwrap();
        let t = text(&e);
        assert!(
            t.starts_with("KEY:      web.health_path\nTYPE:     string\nDEFAULT:  /up\n"),
            "{t}"
        );
        assert!(t.contains("\nDESCRIPTION:\n    "), "{t}");
        assert!(t.lines().all(|l| l.len() <= WIDTH), "{t}");
    }

    #[test]
    fn a_map_lists_the_keys_of_its_entries() {
        let e = schema::explain(&schema::spec(), "workers").unwrap();
        let t = text(&e);
        assert!(
            t.contains("FIELDS (of each entry, `workers.<NAME>`):"),
            "{t}"
        );
        assert!(t.contains("  command\t<[]string> -required-\n"), "{t}");
    }
}
