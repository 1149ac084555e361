//! The JSON Schema of the spec file (`config/kubernetes.yml`) and of a destination's overlay
//! (`config/kubernetes.<DEST>.yml`), generated from the spec types: their doc comments and serde
//! attributes. Editors check and complete the spec with it; `kubectl rails explain` reads the
//! same schema, one key at a time, so the two never disagree.
//!
//! Like the rest of the core it reads nothing but its arguments: the published address of the
//! schema is built from this crate's version and repository at compile time.

use serde_json::{Map, Value};

use crate::model::AppSpec;

/// The file name of the spec's schema, as published with each release and committed under
/// `schema/`.
pub const SPEC_FILE: &str = "kubernetes.schema.json";
/// The file name of the overlay's schema.
pub const OVERLAY_FILE: &str = "kubernetes.overlay.schema.json";

/// Where the schema of this version is published: an asset of its GitHub release.
pub fn url(overlay: bool) -> String {
    format!(
        "{}/releases/download/v{}/{}",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION"),
        if overlay { OVERLAY_FILE } else { SPEC_FILE }
    )
}

/// The first line of a spec (or overlay) file: it tells the YAML language server (VS Code's
/// YAML extension and others) which schema checks and completes the file. YAML reads it as a
/// comment.
pub fn modeline(overlay: bool) -> String {
    format!("# yaml-language-server: $schema={}", url(overlay))
}

/// The schema of the spec file. Draft-07: the draft editors' YAML and JSON servers all read.
pub fn spec() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<AppSpec>().to_value();
    let map = schema.as_object_mut().expect("a root schema is an object");
    map.insert("$id".into(), url(false).into());
    map.insert(
        "title".into(),
        "kubectl-rails spec (config/kubernetes.yml)".into(),
    );
    map.insert(
        "description".into(),
        "One Rails app as kubectl-rails deploys it. `kubectl rails explain KEY` describes each key."
            .into(),
    );
    schema
}

/// The schema of a destination's overlay: a partial spec laid over the base one (mappings
/// merge, lists replace), so every key at every level is optional; unknown keys are still
/// refused, as in the merged spec.
pub fn overlay() -> Value {
    let mut schema = spec();
    drop_required(&mut schema);
    let map = schema.as_object_mut().expect("a root schema is an object");
    map.insert("$id".into(), url(true).into());
    map.insert(
        "title".into(),
        "kubectl-rails destination overlay (config/kubernetes.<DEST>.yml)".into(),
    );
    map.insert(
        "description".into(),
        "Keys laid over `config/kubernetes.yml` for one destination (`kubectl rails -d DEST ...`): mappings merge, lists and other values replace; every key is optional."
            .into(),
    );
    schema
}

/// The schema as the committed and published file holds it: pretty, with a final newline.
pub fn to_pretty(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    text.push('\n');
    text
}

fn drop_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("required");
            map.values_mut().for_each(drop_required);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_required),
        _ => {}
    }
}

/// One key of the spec, as `kubectl rails explain` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The key as given, dotted (`web.health_path`); empty for the whole spec.
    pub key: String,
    /// Its type, in kubectl's words: `string`, `integer`, `[]string`, `map[string]Object`, ...
    pub type_name: String,
    /// Its default, when the spec gives one.
    pub default: Option<Value>,
    /// The values it may take, when they are a fixed few.
    pub one_of: Vec<String>,
    /// What it does.
    pub description: String,
    /// The keys under it; for a map (`workers`), the keys of each entry.
    pub fields: Vec<Field>,
    /// Whether `fields` are those of each entry of a map, or of each item of a list.
    pub fields_of: Option<Entries>,
    /// Its schema, every reference resolved: `explain -o json`.
    pub schema: Value,
}

/// What `fields` of an [`Explained`] belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// Each entry of a map, under a name of the user's (`workers.<NAME>`).
    Map,
    /// Each item of a list.
    List,
}

/// A key under an explained one.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub type_name: String,
    pub required: bool,
    /// The first sentence of its description.
    pub summary: String,
}

/// A key that is not in the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key `{key}`")]
pub struct UnknownKey {
    /// The key as given.
    pub key: String,
    /// The known keys closest to it, dotted, closest first.
    pub closest: Vec<String>,
    /// The deepest known key on its way, dotted; empty at the top.
    pub parent: String,
    /// The keys of `parent`, dotted.
    pub siblings: Vec<String>,
}

/// Describes the spec key `key` (dotted; a map entry such as a worker's name is any name), from
/// `schema` (the [`spec`] schema).
pub fn explain(schema: &Value, key: &str) -> Result<Explained, UnknownKey> {
    let defs = schema.get("definitions").cloned().unwrap_or(Value::Null);
    let words: Vec<&str> = if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    };
    let mut node = resolve(schema, &defs);
    for (depth, word) in words.iter().enumerate() {
        let next = child(&node, word, &defs);
        node = match next {
            Some(n) => n,
            None => {
                let parent = &words[..depth];
                let siblings: Vec<String> = child_names(&node, &defs)
                    .into_iter()
                    .map(|name| dotted(parent, &name))
                    .collect();
                let closest = closest(word, &child_names(&node, &defs))
                    .into_iter()
                    .map(|name| dotted(parent, &name))
                    .collect();
                return Err(UnknownKey {
                    key: key.to_string(),
                    closest,
                    parent: parent.join("."),
                    siblings,
                });
            }
        };
    }
    let (fields_node, fields_of) = match entries(&node, &defs) {
        Some((entry, kind)) if properties(&node).is_none() => (entry, Some(kind)),
        _ => (node.clone(), None),
    };
    let required: Vec<String> = fields_node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let fields = properties(&fields_node)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| {
                    let s = resolve(s, &defs);
                    Field {
                        name: name.clone(),
                        type_name: type_name(&s, &defs),
                        required: required.contains(name),
                        summary: summary(&description(&s)),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut inlined = node.clone();
    inline(&mut inlined, &defs, 0);
    if let Value::Object(m) = &mut inlined {
        m.remove("definitions");
    }
    Ok(Explained {
        key: key.to_string(),
        type_name: type_name(&node, &defs),
        default: node.get("default").cloned(),
        one_of: enum_values(&node),
        description: description(&node),
        fields,
        fields_of: fields_of.filter(|_| properties(&fields_node).is_some()),
        schema: inlined,
    })
}

fn dotted(parent: &[&str], name: &str) -> String {
    parent
        .iter()
        .copied()
        .chain([name])
        .collect::<Vec<_>>()
        .join(".")
}

/// `node` with its reference followed and an `Option`'s null taken away: the schema of the value
/// a user writes. The outer description and default win over the referenced type's: they are
/// the field's own.
fn resolve(node: &Value, defs: &Value) -> Value {
    let Some(map) = node.as_object() else {
        return node.clone();
    };
    let mut inner: Option<Value> = None;
    if let Some(Value::String(r)) = map.get("$ref") {
        inner = r
            .strip_prefix("#/definitions/")
            .and_then(|name| defs.get(name))
            .cloned();
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get(combinator) {
            let real: Vec<&Value> = branches.iter().filter(|b| !is_null(b)).collect();
            if real.len() == 1 && (combinator == "allOf" || real.len() < branches.len()) {
                inner = Some(real[0].clone());
            }
        }
    }
    let mut out = match inner {
        Some(i) => resolve(&i, defs),
        None => node.clone(),
    };
    if let Value::Object(out_map) = &mut out {
        if let Some(Value::Array(types)) = out_map.get("type") {
            let real: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            if real.len() == 1 {
                out_map.insert("type".into(), real[0].clone());
            }
        }
        for key in ["description", "default"] {
            if let Some(v) = map.get(key) {
                out_map.insert(key.into(), v.clone());
            }
        }
    }
    out
}

fn is_null(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn properties(node: &Value) -> Option<&Map<String, Value>> {
    node.get("properties").and_then(Value::as_object)
}

/// The schema of each entry of a map or item of a list, when `node` is one of those (for
/// `secrets`, which may be either, the map's entries: they have keys).
fn entries(node: &Value, defs: &Value) -> Option<(Value, Entries)> {
    let branches: Vec<Value> = match node.get("anyOf").and_then(Value::as_array) {
        Some(b) => b.iter().map(|b| resolve(b, defs)).collect(),
        None => vec![node.clone()],
    };
    let map = branches
        .iter()
        .find_map(|b| match b.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some((resolve(v, defs), Entries::Map)),
            _ => None,
        });
    map.or_else(|| {
        branches.iter().find_map(|b| {
            b.get("items")
                .filter(|i| i.is_object())
                .map(|i| (resolve(i, defs), Entries::List))
        })
    })
}

fn child(node: &Value, word: &str, defs: &Value) -> Option<Value> {
    if let Some(props) = properties(node) {
        return props.get(word).map(|s| resolve(s, defs));
    }
    let (entry, kind) = entries(node, defs)?;
    match kind {
        // Any name is an entry's name (`workers.jobs`).
        Entries::Map => Some(entry),
        // A list's items have no names: their keys are the list's own (`tolerations.key`).
        Entries::List => child(&entry, word, defs),
    }
}

fn child_names(node: &Value, defs: &Value) -> Vec<String> {
    if let Some(props) = properties(node) {
        return props.keys().cloned().collect();
    }
    match entries(node, defs) {
        Some((entry, Entries::List)) => child_names(&entry, defs),
        _ => Vec::new(),
    }
}

/// The known names a typo most likely meant: few edits (a swap counts as one), or a shared
/// prefix; closest first, at most three.
fn closest(typed: &str, known: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, f64, &String)> = known
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(typed, c),
                strsim::jaro_winkler(typed, c),
                c,
            )
        })
        .filter(|(edits, jw, c)| {
            *edits <= (c.len() / 3).max(1) || *jw > 0.85 || c.contains(typed) || typed.contains(*c)
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, _, c)| c.clone())
        .collect()
}

fn description(node: &Value) -> String {
    let text = node
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Doc comments wrap at 100 columns; a paragraph is one line here, wrapped where printed.
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The first sentence of a description: what a list of keys shows.
fn summary(description: &str) -> String {
    let first = description.split("\n\n").next().unwrap_or_default();
    match first.find(". ") {
        Some(i) => first[..=i].to_string(),
        None => first.to_string(),
    }
}

fn enum_values(node: &Value) -> Vec<String> {
    let values: Vec<&Value> = match node.get("enum").and_then(Value::as_array) {
        Some(v) => v.iter().collect(),
        None => node
            .get("oneOf")
            .and_then(Value::as_array)
            .map(|b| b.iter().filter_map(|b| b.get("const")).collect())
            .unwrap_or_default(),
    };
    values
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A schema's type in kubectl's words.
fn type_name(node: &Value, defs: &Value) -> String {
    if let Some(Value::Array(branches)) = node.get("anyOf") {
        return branches
            .iter()
            .filter(|b| !is_null(b))
            .map(|b| type_name(&resolve(b, defs), defs))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    if !enum_values(node).is_empty() {
        return "string".into();
    }
    match node.get("type").and_then(Value::as_str) {
        Some("array") => match node.get("items") {
            Some(items) => format!("[]{}", type_name(&resolve(items, defs), defs)),
            None => "[]".into(),
        },
        Some("object") => match node.get("additionalProperties") {
            Some(v @ Value::Object(_)) => {
                format!("map[string]{}", type_name(&resolve(v, defs), defs))
            }
            _ => "Object".into(),
        },
        Some(t) => t.to_string(),
        None if node.get("properties").is_some() => "Object".into(),
        None => "any".into(),
    }
}

/// `node` with every reference replaced by what it names, for a schema that stands alone.
fn inline(node: &mut Value, defs: &Value, depth: usize) {
    // The spec's types do not nest themselves; the limit only guards against a future one that
    // does.
    if depth > 32 {
        return;
    }
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(target) = r
                    .strip_prefix("#/definitions/")
                    .and_then(|name| defs.get(name))
            {
                let mut target = target.clone();
                map.remove("$ref");
                if let Value::Object(t) = &mut target {
                    for (k, v) in std::mem::take(map) {
                        t.insert(k, v);
                    }
                }
                *node = target;
                inline(node, defs, depth + 1);
                return;
            }
            for v in map.values_mut() {
                inline(v, defs, depth + 1);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| inline(v, defs, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copies under `schema/` are what editors and the release read: they must be what the
    /// spec types give today.
    #[test]
    fn the_committed_schemas_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
        for (file, schema, flag) in [
            (SPEC_FILE, spec(), ""),
            (OVERLAY_FILE, overlay(), " --overlay"),
        ] {
            let committed = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            assert!(
                committed == to_pretty(&schema),
                "`schema/{file}` is stale: regenerate it with `cargo run -p kubectl-rails -- explain --schema{flag} > schema/{file}`"
            );
        }
    }

    #[test]
    fn top_level_keys_are_the_specs() {
        let top = explain(&spec(), "").unwrap();
        let names: Vec<&str> = top.fields.iter().map(|f| f.name.as_str()).collect();
        for key in [
            "name", "image", "web", "workers", "ingress", "secrets", "env",
        ] {
            assert!(names.contains(&key), "{key} in {names:?}");
        }
        let name = top.fields.iter().find(|f| f.name == "name").unwrap();
        assert!(name.required, "{name:?}");
        assert!(name.summary.contains("DNS label"), "{name:?}");
    }

    #[test]
    fn a_key_has_its_type_default_and_description() {
        let s = spec();
        let health = explain(&s, "web.health_path").unwrap();
        assert_eq!(health.type_name, "string");
        assert_eq!(health.default, Some(Value::from("/up")));
        assert!(health.description.contains("probes"), "{health:?}");
        assert!(health.fields.is_empty());

        let tls = explain(&s, "ingress.tls").unwrap();
        assert_eq!(tls.type_name, "boolean");

        let web = explain(&s, "web").unwrap();
        assert_eq!(web.type_name, "Object");
        assert!(web.fields.iter().any(|f| f.name == "health_path"));
        assert!(
            web.schema.get("properties").is_some(),
            "inlined: {}",
            web.schema
        );
        assert!(!web.schema.to_string().contains("$ref"), "{}", web.schema);
    }

    #[test]
    fn a_map_entry_is_any_name() {
        let s = spec();
        let workers = explain(&s, "workers").unwrap();
        assert_eq!(workers.type_name, "map[string]Object");
        assert_eq!(workers.fields_of, Some(Entries::Map));
        assert!(workers.fields.iter().any(|f| f.name == "command"));
        let command = explain(&s, "workers.anything.command").unwrap();
        assert_eq!(command.type_name, "[]string");
        assert!(command.description.contains("command"), "{command:?}");
        assert_eq!(
            explain(&s, "web.placement.tolerations.key")
                .unwrap()
                .type_name,
            "string"
        );
    }

    #[test]
    fn an_unknown_key_names_the_closest() {
        let s = spec();
        let err = explain(&s, "web.healthpath").unwrap_err();
        assert_eq!(
            err.closest.first().map(String::as_str),
            Some("web.health_path")
        );
        let err = explain(&s, "ingres").unwrap_err();
        assert_eq!(err.closest.first().map(String::as_str), Some("ingress"));
        assert!(explain(&s, "web.port.more").is_err());
    }

    #[test]
    fn defaults_hidden_by_skip_serializing_are_given() {
        let s = spec();
        assert_eq!(
            explain(&s, "read_only_root").unwrap().default,
            Some(Value::Bool(true))
        );
        assert_eq!(
            explain(&s, "history_limit").unwrap().default,
            Some(Value::from(crate::model::DEFAULT_HISTORY_LIMIT))
        );
    }

    #[test]
    fn an_overlay_requires_nothing() {
        let o = overlay();
        assert!(!o.to_string().contains("\"required\""));
        assert!(spec().to_string().contains("\"required\""));
        assert_eq!(o["additionalProperties"], Value::Bool(false));
        assert!(url(true).ends_with("/kubernetes.overlay.schema.json"));
    }

    /// The schema checks what the spec reader reads: a spec `init` writes is valid.
    #[test]
    fn the_modeline_names_this_versions_schema() {
        assert_eq!(
            modeline(false),
            format!(
                "# yaml-language-server: $schema=https://github.com/kubectl-rails/kubectl-rails/releases/download/v{}/kubernetes.schema.json",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
