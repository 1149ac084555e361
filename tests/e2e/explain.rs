//! The spec as editors and people read it: `kubectl rails explain`, the JSON Schema it shares
//! with editors, and the line at the top of the spec that points editors at that schema. None
//! of it needs a cluster.

use crate::support::{fixture, rails, root, words};

const SCHEMA_LINE: &str = "# yaml-language-server: $schema=https://github.com/kubectl-rails/kubectl-rails/releases/download/v";

/// An empty folder: `explain` needs no app.
fn nowhere() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn explain_lists_the_top_level_keys_anywhere() {
    let dir = nowhere();
    let run = rails(dir.path(), None, &["explain"]).success();
    run.stdout_has("FIELDS:\n");
    for key in [
        "  name\t<string> -required-",
        "  web\t<Object> -required-",
        "  workers\t<map[string]Object>",
    ] {
        run.stdout_has(key);
    }
}

#[test]
fn explain_a_key_gives_its_type_default_and_description() {
    let dir = nowhere();
    let run = rails(dir.path(), None, &["explain", "web.health_path"]).success();
    run.stdout_has("KEY:      web.health_path\nTYPE:     string\nDEFAULT:  /up\n");
    run.stdout_has("readiness and liveness probes");

    let web = rails(dir.path(), None, &["explain", "web"]).success();
    web.stdout_has("  health_path\t<string>\n");
    let tls = rails(dir.path(), None, &["explain", "ingress.tls"]).success();
    tls.stdout_has("TYPE:     boolean\nDEFAULT:  false\n");
    // A worker is any name.
    let command = rails(dir.path(), None, &["explain", "workers.mailers.command"]).success();
    command.stdout_has("KEY:      workers.mailers.command\nTYPE:     []string\n");
}

#[test]
fn explain_an_unknown_key_is_a_usage_error_naming_the_closest() {
    let dir = nowhere();
    let run = rails(dir.path(), None, &["explain", "web.healthpath"]).code(2);
    run.stderr_has("error: the spec has no key `web.healthpath`");
    run.stderr_has("did you mean `web.health_path`?");
    let run = rails(dir.path(), None, &["explain", "web.zzzz"]).code(2);
    run.stderr_has("the keys of `web`: web.autoscale, web.command,");
}

#[test]
fn explain_json_prints_the_keys_schema() {
    let dir = nowhere();
    let run = rails(
        dir.path(),
        None,
        &["explain", "web.autoscale", "-o", "json"],
    )
    .success();
    let schema = run.json();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["cpu"]["type"], "integer");
    assert_eq!(schema["required"], serde_json::json!(["min", "max", "cpu"]));
}

/// The committed copies are what the plugin prints (the release publishes them).
#[test]
fn explain_schema_prints_the_committed_schemas() {
    let dir = nowhere();
    for (flags, file) in [
        (&["explain", "--schema"][..], "kubernetes.schema.json"),
        (
            &["explain", "--schema", "--overlay"][..],
            "kubernetes.overlay.schema.json",
        ),
    ] {
        let run = rails(dir.path(), None, flags).success();
        let committed = std::fs::read_to_string(root().join("schema").join(file)).unwrap();
        assert!(
            run.stdout == committed,
            "`schema/{file}` differs from `kubectl rails {}`",
            flags.join(" ")
        );
    }
}

/// Editors find the schema from the first line of what `init` writes, the overlay's too; the
/// spec still reads, and an edit written anew from its data keeps the line.
#[test]
fn init_writes_the_schema_line_and_edits_keep_it() {
    let app = fixture("rails8-kamal");
    let dir = app.path();
    std::fs::write(
        dir.join("config/deploy.staging.yml"),
        "servers:\n  web:\n    - 10.0.1.1\nproxy:\n  host: staging.shop.example.com\n",
    )
    .unwrap();
    rails(
        dir,
        None,
        &words("init --no-input --image ghcr.io/acme/shop:1"),
    )
    .success();
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let first = spec.lines().next().unwrap();
    assert!(first.starts_with(SCHEMA_LINE), "{spec}");
    assert!(first.ends_with("/kubernetes.schema.json"), "{first}");
    assert!(spec.contains("`kubectl rails explain [KEY]`"), "{spec}");
    let overlay_path = dir.join("config/kubernetes.staging.yml");
    let overlay = std::fs::read_to_string(&overlay_path).unwrap();
    let first = overlay.lines().next().unwrap();
    assert!(
        first.starts_with(SCHEMA_LINE) && first.ends_with("/kubernetes.overlay.schema.json"),
        "{overlay}"
    );
    rails(dir, None, &["render"]).success();
    rails(dir, None, &["-d", "staging", "render"]).success();

    rails(dir, None, &["env", "set", "REGION=madrid"]).success();
    let edited = std::fs::read_to_string(&spec_path).unwrap();
    assert_eq!(edited.lines().next(), spec.lines().next(), "{edited}");

    // A flow mapping on the way: the overlay is written anew, its first lines kept.
    let schema_line = overlay.lines().next().unwrap().to_string();
    std::fs::write(
        &overlay_path,
        format!("{schema_line}\nenv: {{LEVEL: debug}}\n"),
    )
    .unwrap();
    let run = rails(dir, None, &["-d", "staging", "env", "set", "REGION=lisbon"]).success();
    run.stderr_has("written anew");
    let edited = std::fs::read_to_string(&overlay_path).unwrap();
    assert_eq!(
        edited.lines().next(),
        Some(schema_line.as_str()),
        "{edited}"
    );
    assert!(edited.contains("REGION: lisbon"), "{edited}");
}
