//! Shapes seen in real public Rails apps (tests/fixtures/wild/README.md), each in a minimal
//! fixture of ours: `init --no-input` given only the flags its first error lists, then
//! `render -o json`, and the facts a careful reader of the app's files concludes.

use serde_json::Value;

use crate::support::{copy_fixture, rails, root, words};

/// A fact: an object of the render (`Kind/name`, or `spec` for the spec file), a JSON pointer
/// in it, and the value it must hold.
type Fact = (&'static str, &'static str, Value);

struct Case {
    fixture: &'static str,
    /// The flags the first `init --no-input` lists as missing, and the values given for them.
    first_error_flags: &'static [(&'static str, &'static str)],
    facts: Vec<Fact>,
}

fn cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        Case {
            fixture: "wild/procfile-env-words",
            // `useradd --uid 1000` gives no group, and SQLite's volume needs one.
            first_error_flags: &[
                ("--image", "registry.example.com/chat:1"),
                ("--gid", "1000"),
            ],
            facts: vec![
                // `KEY=value` words are the process's env, never its program.
                (
                    "Deployment/procfile-env-words-workers",
                    "/spec/template/spec/containers/0/args",
                    json!(["bundle", "exec", "resque-pool"]),
                ),
                (
                    "spec",
                    "/workers/workers/env",
                    json!({"FORK_PER_JOB": "false", "INTERVAL": "0.1"}),
                ),
                // redis-server is not a process of the app: its URL is a secret.
                ("spec", "/workers/redis", Value::Null),
                ("spec", "/secrets", json!(["REDIS_URL", "SECRET_KEY_BASE"])),
                ("spec", "/volume/mount_path", json!("/app/storage")),
            ],
        },
        Case {
            fixture: "wild/kamal-erb-local-registry",
            first_error_flags: &[("--image", "registry.example.com/relay:1")],
            facts: vec![
                ("spec", "/ingress/hosts", json!(["relay.example.com"])),
                ("spec", "/ingress/tls", json!(true)),
                (
                    "spec",
                    "/aliases/seed-all",
                    json!("run -- bin/rails db:seed"),
                ),
                ("spec", "/web/port", json!(8080)),
                ("spec", "/env/HTTP_PORT", json!("8080")),
            ],
        },
        Case {
            fixture: "wild/drawn-routes-parent-user",
            first_error_flags: &[("--image", "registry.example.com/shop:1")],
            facts: vec![
                ("spec", "/uid", json!(1500)),
                ("spec", "/web/health_path", json!("/health")),
                ("spec", "/web/port", json!(4000)),
                (
                    "spec",
                    "/web/command",
                    json!(["bin/rails", "server", "-p", "4000", "-b", "0.0.0.0"]),
                ),
                (
                    "spec",
                    "/workers/mail-poller/command",
                    json!(["bin/rails", "runner", "MailPoller.run"]),
                ),
            ],
        },
        Case {
            fixture: "wild/puma-loopback-embedded-sidekiq",
            first_error_flags: &[("--image", "registry.example.com/docs:1")],
            facts: vec![
                ("spec", "/env/BIND_ADDRESS", json!("0.0.0.0")),
                ("spec", "/web/port", json!(5000)),
                ("spec", "/workers", Value::Null),
                ("spec", "/web/health_path", json!("tcp")),
                ("spec", "/env/RAILS_LOG_TO_STDOUT", json!("1")),
                ("spec", "/uid", json!(2000)),
                (
                    "Deployment/puma-loopback-embedded-sidekiq-web",
                    "/spec/template/spec/containers/0/readinessProbe/tcpSocket/port",
                    json!("http"),
                ),
            ],
        },
        Case {
            fixture: "wild/subfolder-dockerfile-multidb",
            first_error_flags: &[("--image", "registry.example.com/multi:1")],
            facts: vec![
                (
                    "spec",
                    "/migrate/command",
                    json!(["bin/rails", "db:prepare"]),
                ),
                ("spec", "/web/health_path", json!("/")),
                ("spec", "/secrets/DB_HOST", json!({})),
                (
                    "spec",
                    "/secrets/RAILS_MASTER_KEY",
                    json!({"optional": true}),
                ),
                ("spec", "/volume", Value::Null),
                (
                    "Job",
                    "/spec/template/spec/containers/0/args",
                    json!(["bin/rails", "db:prepare"]),
                ),
            ],
        },
        Case {
            fixture: "wild/start-scripts-mongoid",
            // Its archive folder is a volume, which needs the group no line of the Dockerfile gives.
            first_error_flags: &[
                ("--image", "registry.example.com/gateway:1"),
                ("--gid", "1000"),
            ],
            facts: vec![
                // The web script serves; the other start scripts are processes as the app runs them.
                ("spec", "/web/command", Value::Null),
                (
                    "spec",
                    "/workers/worker/command",
                    json!(["scripts/start.worker.sh"]),
                ),
                (
                    "spec",
                    "/workers/clock/command",
                    json!(["scripts/start.clock.sh"]),
                ),
                ("spec", "/web/health_path", json!("/ping")),
                // Mongoid's URI, and the key an initializer raises without, are required.
                (
                    "spec",
                    "/secrets",
                    json!([
                        "MONGODB_URI",
                        "GATEWAY_SIGNING_KEY",
                        "REDIS_URL",
                        "SECRET_KEY_BASE"
                    ]),
                ),
                (
                    "spec",
                    "/migrate/command",
                    json!(["bin/rails", "db:mongoid:create_indexes"]),
                ),
                // A documented data folder (`ARCHIVE_DIR`'s default) is the volume; scratch is not.
                (
                    "spec",
                    "/volume/mount_path",
                    json!("/srv/gateway/storage/archive"),
                ),
                ("spec", "/web/replicas", json!(1)),
            ],
        },
        Case {
            fixture: "wild/compose-worker-sidekiq-config",
            first_error_flags: &[("--image", "registry.example.com/ledger:1")],
            facts: vec![
                (
                    "spec",
                    "/workers/worker/command",
                    json!(["bundle", "exec", "sidekiq", "-C", "config/sidekiq.yml"]),
                ),
                ("spec", "/workers/db", Value::Null),
                ("spec", "/workers/redis", Value::Null),
                ("spec", "/web/port", json!(3000)),
                (
                    "spec",
                    "/secrets/ELASTICSEARCH_URL",
                    json!({"optional": true}),
                ),
                ("spec", "/secrets/REDIS_URL", json!({})),
            ],
        },
        Case {
            fixture: "wild/disk-storage-good-job",
            first_error_flags: &[("--image", "registry.example.com/files:1")],
            facts: vec![
                // Active Storage's Disk service (through an ENV default) keeps files on a volume.
                ("spec", "/volume/mount_path", json!("/app/storage")),
                ("spec", "/web/replicas", json!(1)),
                (
                    "spec",
                    "/workers/good-job/command",
                    json!(["bundle", "exec", "good_job", "start"]),
                ),
                ("spec", "/web/health_path", json!("/internal/ping")),
                ("spec", "/gid", json!(1000)),
            ],
        },
        Case {
            fixture: "wild/root-ruby-drop-carrierwave",
            first_error_flags: &[("--image", "registry.example.com/profiles:1")],
            facts: vec![
                // No USER, and Ruby that Puma loads drops to 2000 after a chown: the pods
                // start as root, as Docker starts them.
                ("spec", "/uid", json!(0)),
                (
                    "Deployment/root-ruby-drop-carrierwave-web",
                    "/spec/template/spec/securityContext/runAsUser",
                    json!(0),
                ),
                // CarrierWave's local uploads under public/ are the volume.
                ("spec", "/volume/mount_path", json!("/app/public/uploads")),
                ("spec", "/web/replicas", json!(1)),
            ],
        },
        Case {
            fixture: "wild/no-dockerfile-delayed-job",
            // No Dockerfile: nothing says who the image runs as.
            first_error_flags: &[
                ("--image", "registry.example.com/shop:1"),
                ("--uid", "1000"),
            ],
            facts: vec![
                ("spec", "/web/port", json!(3000)),
                (
                    "spec",
                    "/web/command",
                    json!([
                        "sh",
                        "-c",
                        "bundle exec puma -p ${PORT:-3000} -C config/puma.rb"
                    ]),
                ),
                (
                    "spec",
                    "/migrate/command",
                    json!(["sh", "-c", "bin/rails db:migrate && bin/rails db:seed"]),
                ),
                (
                    "spec",
                    "/workers/delayed-job/command",
                    json!(["bundle", "exec", "rake", "jobs:work"]),
                ),
                // Per-environment credentials with their key: the key is required.
                (
                    "spec",
                    "/secrets",
                    json!(["DATABASE_URL", "RAILS_MASTER_KEY"]),
                ),
                ("spec", "/web/health_path", json!("/")),
            ],
        },
    ]
}

#[test]
fn shapes_of_real_apps_init_and_render_as_their_files_say() {
    let mut failures = Vec::new();
    for case in cases() {
        // The app folder keeps the fixture's name, which `init` takes as the app's name.
        let temp = tempfile::tempdir().unwrap();
        let name = case.fixture.trim_start_matches("wild/");
        let dir = &temp.path().join(name);
        copy_fixture(&root().join("tests/fixtures"), case.fixture, dir);
        let first = rails(dir, None, &words("init --no-input"));
        let listed: Vec<&str> = first
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("  `")?.split('`').next())
            .collect();
        let expected: Vec<&str> = case.first_error_flags.iter().map(|(f, _)| *f).collect();
        if listed != expected {
            failures.push(format!(
                "{}: the first error lists {listed:?}, not {expected:?}:\n{}",
                case.fixture, first.stderr
            ));
            continue;
        }
        let mut args = vec!["init", "--no-input"];
        for (flag, value) in case.first_error_flags {
            args.extend([*flag, *value]);
        }
        let second = rails(dir, None, &args);
        if second.code != 0 {
            failures.push(format!(
                "{}: init with the listed flags fails:\n{}",
                case.fixture, second.stderr
            ));
            continue;
        }
        let spec_text = std::fs::read_to_string(dir.join("config/kubernetes.yml")).unwrap();
        let spec: Value = serde_saphyr::from_str(&spec_text).unwrap();
        for wrong in summary_disagrees(&second.stderr, &spec) {
            failures.push(format!("{}: the summary says {wrong}", case.fixture));
        }
        let render = rails(dir, None, &["render", "-o", "json"]).success();
        let list: Value = serde_json::from_str(&render.stdout).unwrap();
        insta::assert_snapshot!(format!("wild_{name}_render"), render.stdout);
        for (object, pointer, value) in &case.facts {
            let found = if *object == "spec" {
                spec.pointer(pointer).cloned()
            } else {
                let (kind, oname) = object.split_once('/').unwrap_or((object, ""));
                list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| {
                        o["kind"] == *kind && (oname.is_empty() || o["metadata"]["name"] == oname)
                    })
                    .and_then(|o| o.pointer(pointer).cloned())
            };
            if found.clone().unwrap_or(Value::Null) != *value {
                failures.push(format!(
                    "{}: {object} {pointer} is {found:?}, not {value}\n{spec_text}",
                    case.fixture
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The summary rows that say something the spec does not: the web port and health check, the
/// processes, the volume, the secrets (required and optional).
fn summary_disagrees(stderr: &str, spec: &Value) -> Vec<String> {
    let row = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(&format!("  {name:<10} ")))
            .unwrap_or("")
            .to_string()
    };
    let mut wrong = Vec::new();
    let web = row("web");
    if !web.starts_with(&format!("port {}", spec["web"]["port"])) {
        wrong.push(format!(
            "`web {web}`, but the port is {}",
            spec["web"]["port"]
        ));
    }
    let health = spec["web"]["health_path"].as_str().unwrap_or("/up");
    let said = if health == "tcp" {
        "a TCP check on the port".to_string()
    } else {
        format!("health check `{health}`")
    };
    if !web.contains(&said) {
        wrong.push(format!("`web {web}`, but the probe is {health}"));
    }
    let processes = row("processes");
    let workers: Vec<&str> = spec["workers"]
        .as_object()
        .map(|w| w.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for worker in &workers {
        if !processes.contains(&format!("{worker} (`")) {
            wrong.push(format!("`processes {processes}`, without worker {worker}"));
        }
    }
    if workers.is_empty() && processes != "web only" {
        wrong.push(format!("`processes {processes}`, but there is no worker"));
    }
    let volume = row("volume");
    match spec["volume"]["mount_path"].as_str() {
        Some(path) if !volume.contains(&format!(" at {path} ")) => {
            wrong.push(format!("`volume {volume}`, but it is at {path}"))
        }
        None if volume != "none" => wrong.push(format!("`volume {volume}`, but there is none")),
        _ => {}
    }
    let secrets = row("secrets");
    let (required, optional): (Vec<String>, Vec<String>) = match &spec["secrets"] {
        Value::Array(names) => (
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
            vec![],
        ),
        Value::Object(map) => {
            let (o, r): (Vec<_>, Vec<_>) = map
                .iter()
                .partition(|(_, v)| v["optional"] == Value::Bool(true));
            (
                r.into_iter().map(|(k, _)| k.clone()).collect(),
                o.into_iter().map(|(k, _)| k.clone()).collect(),
            )
        }
        _ => (vec![], vec![]),
    };
    for key in required.iter().chain(optional.iter()) {
        if !secrets.contains(key.as_str()) {
            wrong.push(format!("`secrets {secrets}`, without {key}"));
        }
    }
    if !optional.is_empty() && !secrets.contains("optional: ") {
        wrong.push(format!(
            "`secrets {secrets}`, without saying which are optional"
        ));
    }
    wrong
}
