//! `kubectl rails secrets` against the real test control plane. Every command's output is
//! checked for the values (see `support::leaks`).

use std::path::Path;

use crate::support::{TestNs, in_terminal_with, leaks, rails71_initialised, root, words};

const ENV_VALUES: &[&str] = &[
    "Local-Pg-Pass-4417",
    "E2AKIA-LOCAL-5521",
    "e2-secret-Local-9f8e7d",
    "Redis-Pass-6620",
    "8c1f4d0b7a2e9f6c3b5d8e1a4f7c0b3e6d9a2c5f8b1e4d7a0c3f6b9e2d5a8c1f",
];

/// The Rails 7.1 fixture, initialised for `ns`, with the developer's `.env` beside it.
fn app_with_env(ns: &TestNs) -> tempfile::TempDir {
    let app = rails71_initialised(&["--no-ingress", "--replicas", "1", "-n", &ns.name]);
    std::fs::copy(
        root().join("tests/fixtures/env/imagestorage.env"),
        app.path().join(".env"),
    )
    .unwrap();
    for v in ENV_VALUES {
        leaks::register(v);
    }
    app
}

fn secret_data(ns: &TestNs, name: &str, key: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = ns.jsonpath(
        "secret",
        name,
        &format!("{{.data.{}}}", key.replace('.', "\\.")),
    );
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap()
}

/// Asserts that the app Secret of the Rails 7.1 app holds `value` under `key`.
#[track_caller]
fn app_secret_holds(ns: &TestNs, key: &str, value: impl AsRef<[u8]>) {
    assert_holds(ns, "imagestorage-secrets", key, value);
}

/// Asserts that Secret `name` holds `value` under `key`.
#[track_caller]
fn assert_holds(ns: &TestNs, name: &str, key: &str, value: impl AsRef<[u8]>) {
    let held = secret_data(ns, name, key);
    assert_eq!(held, value.as_ref(), "{name} {key}");
}

#[test]
fn import_then_list_shows_names_and_digests_only() {
    let ns = TestNs::new("secrets-import");
    let app = app_with_env(&ns);
    let run = ns.rails(app.path(), &["secrets", "import"]).success();
    run.stderr_has(
        "set DATABASE_URL, E2_ACCESS_KEY, E2_SECRET_ACCESS_KEY, REDIS_URL, SECRET_KEY_BASE",
    );
    // Plain keys the spec already holds under `env:` are not secrets and stay out.
    assert!(!run.stderr.contains("not imported"), "{}", run.stderr);
    let list = ns.rails(app.path(), &["secrets", "list"]).success();
    for key in [
        "DATABASE_URL",
        "E2_ACCESS_KEY",
        "E2_SECRET_ACCESS_KEY",
        "REDIS_URL",
        "SECRET_KEY_BASE",
    ] {
        let row = list
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} listed:\n{}", list.stdout));
        let digest = row.split_whitespace().nth(1).unwrap();
        assert_eq!(digest.len(), 8, "a short digest: {row}");
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()), "{row}");
    }
    app_secret_holds(&ns, "DATABASE_URL", ENV_VALUES_DATABASE_URL.as_bytes());
    let json = ns.rails(app.path(), &["secrets", "list", "-o", "json"]);
    let json = json.success().json();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|k| k["missing"] == false)
    );
    // Importing again changes nothing.
    let again = ns.rails(app.path(), &["secrets", "import"]).success();
    again.stderr_has("already holds these values");
}

const ENV_VALUES_DATABASE_URL: &str =
    "postgres://imagestorage:Local-Pg-Pass-4417@db.example.dev:5432/imagestorage_production";

#[test]
fn set_unset_and_missing_keys() {
    let ns = TestNs::new("secrets-set");
    let app = app_with_env(&ns);
    leaks::register("Set-By-Flag-0042");
    ns.rails(
        app.path(),
        &["secrets", "set", "SECRET_KEY_BASE=Set-By-Flag-0042"],
    )
    .success();
    let list = ns.rails(app.path(), &["secrets", "list"]).success().stdout;
    assert!(
        list.contains("DATABASE_URL") && list.contains("missing"),
        "{list}"
    );
    let run = ns
        .rails(app.path(), &["secrets", "unset", "SECRET_KEY_BASE"])
        .success();
    run.stderr_has("removed SECRET_KEY_BASE");
    run.stderr_has("the spec still names SECRET_KEY_BASE");
    let file = app.path().join("values.env");
    std::fs::write(&file, "REDIS_URL=redis://:Redis-Pass-6620@r:6379/1\n").unwrap();
    ns.rails(
        app.path(),
        &["secrets", "set", "--from-file", file.to_str().unwrap()],
    )
    .success();
    app_secret_holds(&ns, "REDIS_URL", b"redis://:Redis-Pass-6620@r:6379/1");
}

#[test]
fn a_changed_secret_rolls_the_pods() {
    let ns = TestNs::restricted("secrets-roll");
    let app = app_with_env(&ns);
    ns.rails(app.path(), &["secrets", "import"]).success();
    ns.create_pull_secret(
        "imagestorage-registry",
        "docker-registry.example.dev",
        "u",
        "p",
    );
    ns.rails(app.path(), &["deploy", "--no-input"]).success();
    let web = |path: &str| ns.jsonpath("deployment", "imagestorage-web", path);
    let checksum =
        || web("{.spec.template.metadata.annotations.kubectl-rails\\.dev/config-checksum}");
    let env = web("{.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name}");
    assert_eq!(
        env, "imagestorage-secrets",
        "the pod's env comes from the Secret"
    );
    let first = checksum();
    leaks::register("Rotated-Key-Base-7777");
    let set = "secrets set SECRET_KEY_BASE=Rotated-Key-Base-7777 --restart";
    ns.rails(app.path(), &words(set)).success();
    let second = checksum();
    assert_ne!(first, second, "--restart rolls the pods at once");
    // The next deploy agrees with the restart: the pods are not rolled a second time. (It does
    // migrate again: the migration Job belongs to the image and config of a release.)
    let run = ns.rails(app.path(), &["deploy", "--no-input"]).success();
    assert!(
        !run.stderr
            .contains("Deployment `imagestorage-web` configured"),
        "{}",
        run.stderr
    );
    assert_eq!(checksum(), second);
    leaks::register("Rotated-Again-8888");
    ns.rails(
        app.path(),
        &["secrets", "set", "SECRET_KEY_BASE=Rotated-Again-8888"],
    )
    .success();
    ns.rails(app.path(), &["deploy", "--no-input"]).success();
    assert_ne!(checksum(), second, "a deploy after a change rolls the pods");
}

/// The Docker config in the Rails 7.1 app's pull secret.
fn pull_secret_config(ns: &TestNs) -> serde_json::Value {
    let json = secret_data(ns, "imagestorage-registry", ".dockerconfigjson");
    serde_json::from_slice(&json).unwrap()
}

fn write_docker_config(dir: &Path, json: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
    dir.to_str().unwrap().to_string()
}

#[test]
fn registry_from_plain_auths_and_from_a_credential_helper() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ns = TestNs::new("secrets-registry");
    let app = app_with_env(&ns);
    leaks::register("Plain-Auth-Pass-123");
    leaks::register("Helper-Token-456");
    let docker = app.path().join("docker-plain");
    let config = format!(
        r#"{{"auths":{{"docker-registry.example.dev":{{"auth":"{}"}}}}}}"#,
        b64("deploy:Plain-Auth-Pass-123")
    );
    let dir = write_docker_config(&docker, &config);
    let env = [("DOCKER_CONFIG", dir)];
    ns.rails_full(app.path(), &["secrets", "registry"], None, &env)
        .success();
    let cfg = pull_secret_config(&ns);
    let auth = &cfg["auths"]["docker-registry.example.dev"]["auth"];
    assert_eq!(auth, &b64("deploy:Plain-Auth-Pass-123"));
    assert_eq!(
        cfg["auths"].as_object().unwrap().len(),
        1,
        "scoped to one registry"
    );

    // Docker Desktop style: no credentials in the file, a helper holds them.
    let helper_dir = app.path().join("helper-bin");
    std::fs::create_dir_all(&helper_dir).unwrap();
    let helper = helper_dir.join("docker-credential-testvault");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = docker-registry.example.dev ] || { echo 'credentials not found in native keychain'; exit 1; }\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"ci-bot\",\"Secret\":\"Helper-Token-456\"}' \"$server\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let docker = app.path().join("docker-helper");
    let dir = write_docker_config(
        &docker,
        r#"{"auths":{"docker-registry.example.dev":{}},"credsStore":"testvault"}"#,
    );
    let env = [
        ("DOCKER_CONFIG", dir),
        ("PATH", helper_dir.to_str().unwrap().to_string()),
    ];
    ns.rails_full(app.path(), &["secrets", "registry"], None, &env)
        .success();
    let cfg = pull_secret_config(&ns);
    let auth = &cfg["auths"]["docker-registry.example.dev"]["auth"];
    assert_eq!(auth, &b64("ci-bot:Helper-Token-456"));

    // A mismatched registry is written, with a warning.
    let registry = words("secrets registry --server ghcr.io --username me --password-stdin");
    let password = Some("Plain-Auth-Pass-123\n");
    let run = ns
        .rails_full(app.path(), &registry, password, &[])
        .success();
    run.stderr_has("is not the host of the image");
}

#[test]
fn import_from_hand_written_manifests() {
    let ns = TestNs::new("secrets-manifests");
    let app = app_with_env(&ns);
    let k8s = app.path().join("k8s");
    std::fs::create_dir_all(&k8s).unwrap();
    leaks::register("tu_secret_access_key_Real-31");
    std::fs::write(
        k8s.join("is-depl.yml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: imagestorage-depl\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: imagestorage\n  template:\n    metadata:\n      labels:\n        app: imagestorage\n    spec:\n      containers:\n        - name: imagestorage\n          image: docker-registry.jesusmarin.dev/imagestorage\n          env:\n            - name: E2_SECRET_ACCESS_KEY\n              value: 'tu_secret_access_key_Real-31'\n            - name: E2_REGION\n              value: 'miami'\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: imagestorage-srv\nspec:\n  ports:\n    - port: 3000\n",
    )
    .unwrap();
    let import = format!("secrets import --from-manifests {}", k8s.display());
    let run = ns.rails(app.path(), &words(&import)).success();
    assert!(
        run.stderr.contains("is-depl.yml:19  E2_SECRET_ACCESS_KEY"),
        "tells which line to delete: {}",
        run.stderr
    );
    run.stderr_has("keep them under `env:` in the spec: E2_REGION");
    app_secret_holds(&ns, "E2_SECRET_ACCESS_KEY", b"tu_secret_access_key_Real-31");
}

#[test]
fn bad_secret_input_is_refused_and_writes_nothing() {
    let ns = TestNs::new("secrets-bad");
    let app = app_with_env(&ns);
    let bad_env = app.path().join("bad.env");
    std::fs::write(&bad_env, "DATABASE_URL=postgres://x\nthis is not a line\n").unwrap();
    let bad_env = bad_env.display();
    let no_config = app.path().join("no-such-dir").display().to_string();
    let other_config = write_docker_config(
        &app.path().join("other"),
        r#"{"auths":{"quay.io":{"auth":"eDp5"}}}"#,
    );
    // Command line, stdin, environment, exit code, message.
    type Case<'a> = (
        String,
        Option<&'a str>,
        Vec<(&'a str, String)>,
        i32,
        &'a str,
    );
    #[rustfmt::skip]
    let cases: [Case; 7] = [
        (format!("secrets set --from-file {bad_env}"), None, vec![], 1, "line 2: expected `KEY=value`"),
        (format!("secrets import --from-env {bad_env}"), None, vec![], 1, "line 2: expected `KEY=value`"),
        ("secrets set 1BAD-KEY=x".into(), None, vec![], 2, "`1BAD-KEY` is not a valid environment variable name"),
        ("secrets set SECRET_KEY_BASE".into(), None, vec![], 2, "pass `SECRET_KEY_BASE=VALUE`"),
        ("secrets registry".into(), None, vec![("DOCKER_CONFIG", no_config)], 1, "cannot read the Docker config"),
        ("secrets registry".into(), None, vec![("DOCKER_CONFIG", other_config)], 1, "registry `docker-registry.example.dev` is not in the Docker config"),
        ("secrets registry --username me --password-stdin".into(), Some("\n"), vec![], 2, "the password read from stdin is empty"),
    ];
    for (line, stdin, env, code, message) in cases {
        let args = words(&line);
        let run = ns.rails_full(app.path(), &args, stdin, &env);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    ns.assert_no_secret("imagestorage");
}

#[test]
fn a_key_alone_is_asked_for_with_hidden_input_at_a_terminal() {
    use expectrl::{Eof, Expect};
    let ns = TestNs::new("secrets-prompt");
    let app = app_with_env(&ns);
    leaks::register("Typed-Secret-Value-909");
    let args = ["secrets", "set", "SECRET_KEY_BASE"];
    let mut p = in_terminal_with(&ns, app.path(), &args, &[]);
    p.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    p.expect("Value of SECRET_KEY_BASE").unwrap();
    // The hidden prompt turns echo off with TCSAFLUSH, which drops input typed a moment too
    // early; a person would type again, and so does the test.
    p.set_expect_timeout(Some(std::time::Duration::from_secs(2)));
    let done = (0..15)
        .find_map(|_| {
            p.send_line("Typed-Secret-Value-909").unwrap();
            p.expect("in Secret `imagestorage-secrets`").ok()
        })
        .expect("the typed value is taken");
    p.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    let shown = String::from_utf8_lossy(done.before()).into_owned();
    assert!(shown.contains("set SECRET_KEY_BASE"), "{shown}");
    assert!(
        !shown.contains("Typed-Secret-Value-909"),
        "the typed value is not echoed: {shown}"
    );
    p.expect(Eof).unwrap();
    app_secret_holds(&ns, "SECRET_KEY_BASE", b"Typed-Secret-Value-909");
}

/// The Rails 8 Kamal app initialised for `ns`, whose master key lives in a password manager
/// (`.kamal/secrets` fetches it), not in `config/master.key`. `values` are secret.
fn kamal_app(ns: &TestNs, values: &[&str]) -> tempfile::TempDir {
    let app = crate::deploy::rails8_initialised(ns);
    for v in values {
        leaks::register(v);
    }
    std::fs::remove_file(app.path().join("config/master.key")).unwrap();
    app
}

/// `.kamal/secrets` lines that run commands (a password manager's `kamal secrets fetch`, say)
/// run only with `--allow-commands` and a yes: from a person at a terminal, or `--yes`.
#[test]
fn kamal_secret_commands_run_only_when_allowed_and_confirmed() {
    use expectrl::{Eof, Expect};
    let ns = TestNs::new("secrets-kamal");
    let from_command = "Master-Key-From-Command-33";
    let from_env = "Shop-Db-Pass-From-Env-32";
    // The command that fetches the key leaves a mark, so the test sees whether it ran.
    let app = kamal_app(&ns, &[from_command, from_env]);
    let kamal = app.path().join(".kamal/secrets");
    let text = std::fs::read_to_string(&kamal).unwrap().replace(
        "RAILS_MASTER_KEY=$(cat config/master.key)",
        // Built from two parts: the command's text is shown, its output never is.
        "RAILS_MASTER_KEY=$(touch command-ran; printf %s-%s Master-Key-From-Command 33)",
    );
    std::fs::write(&kamal, text).unwrap();
    let ran = app.path().join("command-ran");
    let env = [("SHOP_DATABASE_PASSWORD", from_env.to_string())];
    let import = |args: &[&str]| {
        let mut all = vec!["-n", ns.name.as_str(), "secrets", "import"];
        all.extend(args);
        crate::support::rails_full(app.path(), Some(&ns.kubeconfig), &all, None, &env)
    };

    let run = import(&[]).success();
    run.stderr_has("skipped `.kamal/secrets` lines that run commands (pass `--allow-commands` to run them): line 6: RAILS_MASTER_KEY\n");
    assert!(
        !run.stderr.contains("touch command-ran"),
        "a skipped line is named by its key, never its text: {}",
        run.stderr
    );
    assert!(!ran.exists(), "no command runs without --allow-commands");
    assert_holds(
        &ns,
        "shop-secrets",
        "SHOP_DATABASE_PASSWORD",
        from_env.as_bytes(),
    );

    let run = import(&["--allow-commands"]).code(2);
    run.stderr_has("confirmation needed");
    run.stderr_has("pass `--yes`");
    assert!(!ran.exists(), "no command runs unconfirmed");
    let master_key = ns.jsonpath("secret", "shop-secrets", "{.data.RAILS_MASTER_KEY}");
    assert!(master_key.is_empty());

    let args = ["secrets", "import", "--allow-commands"];
    let env = [("SHOP_DATABASE_PASSWORD", from_env)];
    let mut p = in_terminal_with(&ns, app.path(), &args, &env);
    p.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    p.expect("Run `.kamal/secrets` in one shell, as Kamal does (it runs commands on line 6: RAILS_MASTER_KEY)")
        .expect("the question names the lines that run commands");
    p.send("y").unwrap();
    let done = p.expect(Eof).unwrap();
    let shown = String::from_utf8_lossy(done.before()).into_owned();
    assert!(!shown.contains(from_command), "{shown}");
    assert!(ran.exists(), "the confirmed command ran");
    assert_holds(
        &ns,
        "shop-secrets",
        "RAILS_MASTER_KEY",
        from_command.as_bytes(),
    );
}

/// Kamal 2's own pattern: one `kamal secrets fetch` into a variable, then `kamal secrets extract`
/// per key from it. It works only when the file runs in one shell, in order. A stub `kamal`
/// stands in for the real one (and for the password manager behind it).
#[test]
fn kamal_2_fetch_and_extract_run_in_one_shell() {
    let ns = TestNs::new("secrets-kamal2");
    let master = "Master-From-Vault-4471";
    let db = "Db-From-Vault-5582";
    let app = kamal_app(&ns, &[master, db]);
    std::fs::write(
        app.path().join(".kamal/secrets"),
        "SECRETS=$(kamal secrets fetch --adapter 1password --account acme --from Vault/Shop RAILS_MASTER_KEY SHOP_DATABASE_PASSWORD)\nRAILS_MASTER_KEY=$(kamal secrets extract RAILS_MASTER_KEY ${SECRETS})\nSHOP_DATABASE_PASSWORD=$(kamal secrets extract SHOP_DATABASE_PASSWORD ${SECRETS})\n",
    )
    .unwrap();
    let bin = app.path().join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kamal = bin.join("kamal");
    // `fetch` prints JSON of the fetched items; `extract KEY JSON` prints one value.
    std::fs::write(
        &kamal,
        format!(
            "#!/bin/sh\n[ \"$1\" = secrets ] || exit 2\ncase \"$2\" in\nfetch) printf '{{\"Vault/Shop/RAILS_MASTER_KEY\":\"{master}\",\"Vault/Shop/SHOP_DATABASE_PASSWORD\":\"{db}\"}}' ;;\nextract) [ -n \"$4\" ] || {{ echo 'kamal: no secrets given to extract' >&2; exit 1; }}; printf '%s' \"$4\" | sed -e \"s/.*\\\"[^\\\"]*\\/$3\\\":\\\"\\([^\\\"]*\\)\\\".*/\\1/\" ;;\n*) exit 2 ;;\nesac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&kamal, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = [("PATH", bin.display().to_string())];
    ns.rails_full(
        app.path(),
        &["secrets", "import", "--allow-commands", "--yes"],
        None,
        &path,
    )
    .success();
    assert_holds(&ns, "shop-secrets", "RAILS_MASTER_KEY", master.as_bytes());
    assert_holds(&ns, "shop-secrets", "SHOP_DATABASE_PASSWORD", db.as_bytes());

    // A failing command stops the import with what it said, and nothing is written.
    let other = TestNs::new("secrets-kamal2-fail");
    let app = kamal_app(&other, &[]);
    std::fs::write(
        app.path().join(".kamal/secrets"),
        "RAILS_MASTER_KEY=$(echo 'op: not signed in' >&2; exit 6)\nSHOP_DATABASE_PASSWORD=plain\n",
    )
    .unwrap();
    let import = words("secrets import --allow-commands --yes");
    let run = other.rails(app.path(), &import).code(1);
    run.stderr_has("a command failed (exit 6)");
    run.stderr_has("op: not signed in");
    // One that hangs is stopped at `--timeout`.
    std::fs::write(
        app.path().join(".kamal/secrets"),
        "RAILS_MASTER_KEY=$(sleep 60)\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let import = words("secrets import --allow-commands --yes --timeout 2s");
    let run = other.rails(app.path(), &import).code(1);
    run.stderr_has("did not finish within 2s");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    other.assert_no_secret("shop-secrets");
}

/// The leak check itself: a value is caught whole, in base64, by any 8-character slice, and in
/// what a pseudo-terminal showed.
#[test]
fn the_leak_check_sees_encodings_slices_and_terminals() {
    use base64::Engine;
    let value = "Leak-Probe-Value-7c3e91";
    leaks::register(value);
    let caught =
        |text: String| std::panic::catch_unwind(|| leaks::check_text("probe", &text)).is_err();
    assert!(caught(format!("x {value} y")));
    assert!(caught(
        base64::engine::general_purpose::STANDARD.encode(value)
    ));
    assert!(caught("…Probe-Va…".into()), "an 8-character slice");
    assert!(
        !caught("Leak-Pro".chars().take(7).collect()),
        "7 characters pass"
    );
    let shown = std::panic::catch_unwind(|| {
        let mut t = leaks::Transcript::default();
        use std::io::Write;
        writeln!(t, "write: \"typed {value}\"").unwrap();
        writeln!(t, "read: \"\\u{{1b}}[1mLeak-Probe-Val\"").unwrap();
        writeln!(t, "read: \"ue-7c3e91\\r\\n\"").unwrap();
    });
    assert!(
        shown.is_err(),
        "a value split across terminal reads is caught"
    );
    let typed_only = std::panic::catch_unwind(|| {
        let mut t = leaks::Transcript::default();
        use std::io::Write;
        writeln!(t, "write: \"{value}\"").unwrap();
    });
    assert!(typed_only.is_ok(), "what the test typed is not output");
}

/// Digests are keyed per app: the same value in two apps' Secrets shows two different digests in
/// `secrets list`, and neither is the digest with no key (an HMAC with an empty key), which anyone
/// could check against guesses of a weak value. Pod-template checksums: see the next test.
#[test]
fn digests_are_keyed_by_a_random_key_of_each_app() {
    let weak = "password1";
    let digests = |ns: &TestNs, app: &Path| {
        ns.rails(app, &["secrets", "set", &format!("SECRET_KEY_BASE={weak}")])
            .success();
        let list = ns.rails(app, &["secrets", "list", "-o", "json"]).success();
        let keys = list.json();
        assert!(
            !list.stdout.contains(".kubectl-rails-digest-key"),
            "the digest key is not listed: {}",
            list.stdout
        );
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == "SECRET_KEY_BASE")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (TestNs::new("digest-a"), TestNs::new("digest-b"));
    let (app_a, app_b) = (app_with_env(&a), app_with_env(&b));
    let (da, db) = (digests(&a, app_a.path()), digests(&b, app_b.path()));
    assert_ne!(da, db, "the same value, two apps, two digests");
    let unkeyed = kubectl_rails_secrets::key_digest(b"", "SECRET_KEY_BASE", weak.as_bytes());
    assert_ne!(da, unkeyed, "not a digest anyone can recompute");
    assert_ne!(db, unkeyed, "not a digest anyone can recompute");
}

/// `diff` of an app whose Secret was made with `kubectl create secret` (no digest key until the
/// first deploy adds one) shows a pod-template checksum that cannot be recomputed from a guess of
/// a weak value: it is not the one an empty HMAC key gives (#27 M6).
#[test]
fn diff_before_the_digest_key_shows_no_guessable_checksum() {
    use kubectl_rails_core::digest::short_hmac;
    use kubectl_rails_core::render::{RenderInputs, config_checksum};
    let ns = TestNs::new("digest-diff");
    let app = rails71_initialised(&["--no-ingress", "--replicas", "1", "-n", &ns.name]);
    ns.create_secret("imagestorage-secrets", &[("SECRET_KEY_BASE", "password1")]);
    let diff = ns.rails(app.path(), &["diff"]).success();
    let shown: Vec<&str> = diff
        .stdout
        .lines()
        .filter_map(|l| l.split_once("kubectl-rails.dev/config-checksum: "))
        .map(|(_, checksum)| checksum.trim().trim_matches('"'))
        .collect();
    assert!(
        !shown.is_empty(),
        "diff shows the checksum:\n{}",
        diff.stdout
    );
    let spec = kubectl_rails_core::file::load(&app.path().join("config/kubernetes.yml"))
        .unwrap()
        .spec;
    let guessable = config_checksum(
        &spec,
        &RenderInputs {
            secret_digest: Some(short_hmac(b"", b"SECRET_KEY_BASE\0password1\0", 8)),
            ..RenderInputs::default()
        },
    );
    for checksum in shown {
        assert_ne!(checksum, guessable, "an unkeyed checksum:\n{}", diff.stdout);
    }
}
