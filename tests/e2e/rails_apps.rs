//! Real Rails apps as a new user brings them: a Rails 8 + Kamal app keeping SQLite on a volume,
//! a named `USER`, encrypted credentials, a `.env` full of secrets under ordinary names, images
//! without a tag or without a private registry, and a long release history.

use std::path::Path;

use crate::support::{Run, TestNs, fixture, git, leaks, rails, words};

/// The fixtures of real apps: `init --no-input` with each one's flags, then `render`.
const FIXTURES: &[(&str, &str)] = &[
    ("rails8-sqlite", "--image ghcr.io/acme/notes:1.0.0"),
    (
        "named-user",
        "--name named --image ghcr.io/acme/named:1 --host named.example.com",
    ),
    (
        "credentials",
        "--name cred --image ghcr.io/acme/cred:1 --no-ingress",
    ),
    (
        "dotenv-secrets",
        "--name dotenv --image ghcr.io/acme/dotenv:1 --no-ingress",
    ),
];

/// `kubectl rails init --no-input FLAGS` in `dir`, without a cluster.
fn init(dir: &Path, flags: &str) -> Run {
    let args = format!("init --no-input {flags}");
    rails(dir, None, &words(&args))
}

#[test]
fn real_app_fixtures_init_and_render() {
    for (name, flags) in FIXTURES {
        let app = fixture(name);
        let run = init(app.path(), flags).success();
        let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
        insta::assert_snapshot!(format!("{name}_spec"), spec);
        let render = rails(app.path(), None, &["render", "-n", name]).success();
        insta::assert_snapshot!(format!("{name}_render"), render.stdout);
        match *name {
            "rails8-sqlite" => {
                run.stderr_has("SOLID_QUEUE_IN_PUMA is set: Solid Queue runs inside Puma");
                run.stderr_has(
                    "so it runs 1 web replica and every pod that mounts it runs on the same node",
                );
                assert!(spec.contains("  replicas: 1\n"), "{spec}");
                assert!(spec.contains("SOLID_QUEUE_IN_PUMA: \"true\""), "{spec}");
                assert!(!spec.contains("workers:"), "no jobs Deployment: {spec}");
                assert!(!spec.contains("SECRET_KEY_BASE"), "{spec}");
            }
            "named-user" => {
                assert!(spec.contains("uid: 1001\ngid: 1001\n"), "{spec}");
            }
            "credentials" => {
                assert!(spec.contains("- RAILS_MASTER_KEY\n"), "{spec}");
                assert!(
                    !spec.contains("SECRET_KEY_BASE"),
                    "credentials hold secret_key_base: {spec}"
                );
            }
            "dotenv-secrets" => {
                for secret in [
                    "Db-Pass-Dotenv-41",
                    "Smtp-Pass-Dotenv-42",
                    "sk_live_Dotenv43xyz",
                    "Dotenv44",
                    "Skb-Dotenv-45",
                    "hello@example.com",
                ] {
                    assert!(
                        !spec.contains(secret),
                        "`{secret}` reached the spec:\n{spec}"
                    );
                }
                for key in ["SMTP_PASS", "STRIPE_SK", "SLACK_WEBHOOK", "MAILER_FROM"] {
                    assert!(spec.contains(&format!("- {key}\n")), "{key}: {spec}");
                }
                assert!(spec.contains("  WEB_CONCURRENCY: \"2\"\n"), "{spec}");
                run.stderr_has("from `.env`, plain env in the spec: RAILS_ENV, RAILS_MAX_THREADS, WEB_CONCURRENCY");
                run.stderr_has("from `.env`, secrets (names only in the spec");
                assert!(
                    !spec.contains("registry:"),
                    "a registry host alone does not make an image private: {spec}"
                );
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn a_named_user_without_a_uid_is_asked_for_never_guessed() {
    let app = fixture("rails71-sidekiq");
    let run = init(app.path(), "--image x/y:1 --no-ingress").code(2);
    run.stderr_has(
        "the Dockerfile's `USER rails` is a name, and no `useradd --uid` line gives its number",
    );
    run.stderr_has("pass `--uid`");
    assert!(!app.path().join("config/kubernetes.yml").exists());
    let run = init(app.path(), "--image x/y:1 --no-ingress --uid 0").code(2);
    run.stderr_has("invalid `--uid`: 0");
}

#[test]
fn env_and_secrets_move_a_key_between_plain_and_secret() {
    let ns = TestNs::restricted("envmove");
    let app = fixture("dotenv-secrets");
    let flags = format!(
        "--name dotenv --image ghcr.io/acme/dotenv:1 --no-ingress -n {}",
        ns.name
    );
    init(app.path(), &flags).success();
    let path = app.path().join("config/kubernetes.yml");
    // A plain setting kept secret by default moves to plain env.
    let set = words("env set MAILER_FROM=hello@example.com");
    rails(app.path(), None, &set)
        .success()
        .stderr_has("`MAILER_FROM` moves from the secrets to plain env");
    let spec = std::fs::read_to_string(&path).unwrap();
    assert!(
        spec.contains("  MAILER_FROM: \"hello@example.com\"\n"),
        "{spec}"
    );
    assert!(!spec.contains("- MAILER_FROM\n"), "{spec}");
    let listed = rails(app.path(), None, &["env", "list"]).success();
    listed.stdout_has("MAILER_FROM");
    // And a plain value that turns out secret moves the other way.
    leaks::register("Wq7Zk3xVb9pLm2Tr");
    let set = words("secrets set WEB_CONCURRENCY=Wq7Zk3xVb9pLm2Tr");
    ns.rails(app.path(), &set)
        .success()
        .stderr_has("moved WEB_CONCURRENCY from plain `env` to `secrets:`");
    let spec = std::fs::read_to_string(&path).unwrap();
    assert!(!spec.contains("WEB_CONCURRENCY: "), "{spec}");
    assert!(spec.contains("- WEB_CONCURRENCY\n"), "{spec}");
    rails(app.path(), None, &["render"]).success();
}

fn no_git(dir: &Path) {
    // The fixture copy lives in a temp folder, outside any repository.
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--git-dir"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{} is in a git repository",
        dir.display()
    );
}

/// A public image with no tag: no pull secret is asked for, and the app's git commit tags it.
#[test]
fn an_untagged_public_image_deploys_as_the_apps_git_commit() {
    let ns = TestNs::restricted("gittag");
    let app = fixture("dotenv-secrets");
    let flags = format!(
        "--name dotenv --image ghcr.io/acme/dotenv --no-ingress -n {}",
        ns.name
    );
    init(app.path(), &flags).success();
    for value in [
        "Db-Pass-Dotenv-41",
        "Smtp-Pass-Dotenv-42",
        "sk_live_Dotenv43xyz",
        "B000/Dotenv44",
        "Skb-Dotenv-45",
    ] {
        leaks::register(value);
    }
    ns.rails(app.path(), &["secrets", "import", "--yes"])
        .success();
    no_git(app.path());
    let run = ns.rails(app.path(), &["deploy", "--no-input"]).code(2);
    run.stderr_has("has no tag, and");
    run.stderr_has("is not in a git repository");

    git(app.path(), &["init", "-q"]);
    git(app.path(), &["add", "-A"]);
    git(app.path(), &["commit", "-qm", "the app"]);
    let sha = git(app.path(), &["rev-parse", "HEAD"]);
    let run = ns.rails(app.path(), &["deploy", "--no-input"]).success();
    let first = run
        .stderr
        .lines()
        .find(|l| l.starts_with("==> deploying"))
        .unwrap_or_default();
    assert!(
        first.contains(&format!(
            "ghcr.io/acme/dotenv:{sha}, tagged with the app's git commit"
        )),
        "{first}"
    );
    let web = |path: &str| ns.jsonpath("deployment", "dotenv-web", path);
    let image = web("{.spec.template.spec.containers[0].image}");
    assert_eq!(image, format!("ghcr.io/acme/dotenv:{sha}"));
    let pull = web("{.spec.template.spec.imagePullSecrets}");
    assert_eq!(pull, "", "a public image needs no pull secret");
    let run = ns
        .rails(app.path(), &["deploy", "--no-input", "--tag", "v9"])
        .success();
    run.stderr_has("(ghcr.io/acme/dotenv:v9) to namespace");
}

fn nodes(ns: &TestNs, selector: &str) -> Vec<String> {
    ns.pods(selector, "{.items[*].spec.nodeName}")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_sqlite_app_keeps_the_pods_that_share_its_volume_on_one_node() {
    let ns = TestNs::restricted("sqlite");
    let app = fixture("rails8-sqlite");
    let flags = format!("--image ghcr.io/acme/notes:1.0.0 -n {}", ns.name);
    init(app.path(), &flags).success();
    leaks::register("Notes-Master-Key-77");
    let master_key = ("RAILS_MASTER_KEY", "Notes-Master-Key-77");
    ns.create_secret("notes-secrets", &[master_key]);
    ns.create_pull_secret("notes-registry", "ghcr.io", "acme", "x");
    ns.volume_for_claim("notes-storage");
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "--no-input", "--timeout", "120s"];
        args.extend(extra);
        ns.rails(app.path(), &args)
    };
    deploy(&[]).success();
    let count = words("run --keep -- bin/rails runner Note.count");
    let run = ns.rails(app.path(), &count).success();
    assert!(!run.stdout.is_empty(), "{}", run.stderr);
    let web = nodes(&ns, "app.kubernetes.io/component=web");
    let migration = nodes(&ns, "app.kubernetes.io/component=migrate");
    let oneoff = nodes(&ns, "app.kubernetes.io/component=run");
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(
        migration, web,
        "the migration wrote the volume where web runs"
    );
    assert_eq!(oneoff, web, "`run` shares the volume's node");

    let refused = ns.rails(app.path(), &["scale", "web=3"]).code(1);
    refused.stderr_has("refusing 3 `web` replicas: the app keeps its data on volume `storage`, which is ReadWriteOnce");
    refused.stderr_has("ReadWriteMany StorageClass");
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(
        spec.contains("  replicas: 1\n"),
        "the refused scale left the spec: {spec}"
    );

    // A second release: its migration and new web pod start beside the running one.
    deploy(&["--tag", "1.0.1"]).success();
    let all = nodes(&ns, "kubectl-rails.dev/volume=notes-storage");
    assert!(all.len() >= 3, "{all:?}");
    assert!(
        all.iter().all(|n| *n == web[0]),
        "every pod on {}: {all:?}",
        web[0]
    );

    let doctor = ns.rails(app.path(), &["doctor"]);
    doctor.stdout_has("claim `notes-storage` is bound; the app needs 1Gi of ReadWriteOnce at `/rails/storage` (one node at a time: its pods share a node)");

    // `--force` scales anyway, and the pods still share the volume's node.
    ns.rails(app.path(), &["scale", "web=2", "--force"])
        .success();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("  replicas: 2\n"), "{spec}");
    assert_eq!(
        ns.jsonpath("deployment", "notes-web", "{.spec.replicas}"),
        "2"
    );
}

#[test]
fn the_history_keeps_its_limit_and_says_how_far_back_it_reaches() {
    let ns = TestNs::restricted("history");
    let app = crate::deploy::rails71_app(&ns, "1");
    let path = app.path().join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{spec}history_limit: 3\n")).unwrap();
    for tag in ["1", "2", "3", "4", "5"] {
        ns.rails(
            app.path(),
            &["deploy", "--no-input", "--tag", tag, "--migrate", "skip"],
        )
        .success();
    }
    let releases = ns.rails(app.path(), &["releases"]).success();
    let revisions: Vec<&str> = releases
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with('v'))
        .collect();
    assert_eq!(revisions, ["v5", "v4", "v3"], "{}", releases.stdout);
    releases.stderr_has(
        "the history reaches back to v3: it keeps the last 3 releases and the current one",
    );
    let run = ns
        .rails(app.path(), &["rollback", "1", "--no-input"])
        .code(2);
    run.stderr_has(
        "release v1 of `imagestorage` is not in the history; the history reaches back to v3",
    );
    let configmaps = ns
        .kubectl(&[
            "get",
            "configmaps",
            "-l",
            "app.kubernetes.io/component=release",
            "-o",
            "name",
        ])
        .success()
        .stdout;
    assert_eq!(configmaps.lines().count(), 3, "{configmaps}");
}

/// `init` asks for the asset server when the image precompiles fingerprinted assets (or Kamal
/// names `asset_path`) and no CDN (`asset_host`) serves them, with the app's own asset path.
#[test]
fn init_asks_for_the_asset_server_where_the_app_serves_fingerprinted_assets() {
    type Change = fn(&Path);
    let cases: &[(&str, Change, Option<&str>)] = &[
        ("the Dockerfile precompiles", |_| {}, Some("assets: {}\n")),
        (
            "a CDN serves them",
            |d| {
                std::fs::create_dir_all(d.join("config/environments")).unwrap();
                std::fs::write(
                    d.join("config/environments/production.rb"),
                    "Rails.application.configure do\n  config.asset_host = \"https://cdn.example.com\"\nend\n",
                )
                .unwrap();
            },
            None,
        ),
        (
            "under another prefix",
            |d| {
                std::fs::create_dir_all(d.join("config/initializers")).unwrap();
                std::fs::write(
                    d.join("config/initializers/assets.rb"),
                    "Rails.application.config.assets.prefix = \"/static\"\n",
                )
                .unwrap();
            },
            Some("assets:\n  path: /static\n"),
        ),
        (
            "no precompile",
            |d| {
                let file = d.join("Dockerfile");
                let text = std::fs::read_to_string(&file).unwrap();
                let kept: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("assets:precompile"))
                    .collect();
                assert_ne!(kept.len(), text.lines().count(), "{text}");
                std::fs::write(&file, kept.join("\n")).unwrap();
            },
            None,
        ),
    ];
    for (what, change, expected) in cases {
        let app = fixture("named-user");
        change(app.path());
        let run = init(
            app.path(),
            "--name named --image ghcr.io/acme/named:1 --host named.example.com",
        )
        .success();
        let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
        match expected {
            Some(lines) => {
                assert!(spec.contains(lines), "{what}: {spec}");
                run.stderr_has("`named-assets` pods serve /");
            }
            None => {
                assert!(!spec.contains("assets:"), "{what}: {spec}");
                run.stderr_has("served by web (or a CDN)");
            }
        }
        if *what == "a CDN serves them" {
            run.stderr_has("config.asset_host is set: a CDN serves the assets");
        }
    }
}
