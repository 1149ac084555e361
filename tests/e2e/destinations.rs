//! Staging and production as destinations (`-d`), pinned to their clusters, Kamal's destination
//! files imported, and review apps per pull request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::deploy::rails71_app;
use crate::support::{TestNs, fixture, kubectl, plugin_audit_events, rails, rails71_initialised};

/// A copy of the test kubeconfig with two more contexts, `staging` and `production`, on the same
/// cluster; the current one is `staging`.
fn two_context_kubeconfig(ns: &TestNs, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&ns.kubeconfig).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let base = config["contexts"][0]["context"].clone();
    for name in ["staging", "production"] {
        config["contexts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": name, "context": base}));
    }
    config["current-context"] = "staging".into();
    let path = dir.join("two-contexts.kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

/// Write requests the plugin made in `namespace`, from the apiserver's audit log.
fn plugin_writes_in(ns: &TestNs, namespace: &str) -> Vec<String> {
    plugin_audit_events(ns)
        .into_iter()
        .filter(|e| {
            (e["objectRef"]["namespace"] == namespace || e["objectRef"]["name"] == namespace)
                && ["create", "update", "patch", "delete"]
                    .contains(&e["verb"].as_str().unwrap_or_default())
        })
        .map(|e| format!("{} {}", e["verb"], e["requestURI"]))
        .collect()
}

/// A hand-written overlay without `namespace:` renders into `<app>-<dest>`, as the README
/// promises, never into the base spec's namespace (which would share its Secret, releases,
/// lease and pruning with the base); one with `namespace:` keeps it.
#[test]
fn a_destination_without_a_namespace_renders_into_its_own() {
    let app = rails71_initialised(&["-n", "imagestorage"]);
    let dir = app.path();
    std::fs::write(dir.join("config/kubernetes.x.yml"), "web:\n  replicas: 2\n").unwrap();
    let run = rails(dir, None, &["-d", "x", "render"]).success();
    assert!(
        run.stdout.contains("namespace: imagestorage-x\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("namespace: imagestorage\n"),
        "nothing renders into the base namespace:\n{}",
        run.stdout
    );
    run.stderr_has("names no `namespace:`: destination `x` deploys to namespace `imagestorage-x`");
    std::fs::write(
        dir.join("config/kubernetes.x.yml"),
        "namespace: imagestorage-staging\nweb:\n  replicas: 2\n",
    )
    .unwrap();
    let run = rails(dir, None, &["-d", "x", "render"]).success();
    assert!(run.stdout.contains("namespace: imagestorage-staging\n"));
    assert!(
        !run.stderr.contains("names no `namespace:`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_destination_pinned_to_another_context_is_refused_and_changes_nothing() {
    let ns = TestNs::restricted("dest");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    let prod = format!("{}-prod", ns.name);
    std::fs::write(
        dir.join("config/kubernetes.production.yml"),
        format!("namespace: {prod}\ncontext: production\nweb:\n  replicas: 2\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("config/kubernetes.staging.yml"),
        format!("namespace: {}\ncontext: staging\n", ns.name),
    )
    .unwrap();
    let kubeconfig = two_context_kubeconfig(&ns, dir);

    let refused = rails(
        dir,
        Some(&kubeconfig),
        &["-d", "production", "deploy", "--no-input", "--yes"],
    )
    .code(1);
    refused.stderr_has("destination `production` is pinned to context `production`, but this command would run on context `staging`");
    refused.stderr_has("nothing was changed");
    refused.stderr_has("pass `--context production`");
    assert!(
        kubectl(&kubeconfig, &["get", "namespace", &prod]).code != 0,
        "no namespace was made"
    );
    assert_eq!(
        plugin_writes_in(&ns, &prod),
        Vec::<String>::new(),
        "no write request"
    );

    // A pin to a server is checked the same way, whatever the context is called.
    std::fs::write(
        dir.join("config/kubernetes.edge.yml"),
        format!("namespace: {}\nserver: https://192.0.2.10:6443\n", ns.name),
    )
    .unwrap();
    let writes_before = plugin_writes_in(&ns, &ns.name);
    let refused = rails(
        dir,
        Some(&kubeconfig),
        &["-d", "edge", "deploy", "--no-input", "--yes"],
    )
    .code(1);
    refused.stderr_has(
        "destination `edge` is pinned to server https://192.0.2.10:6443, but this command would run on context `staging`",
    );
    refused.stderr_has("nothing was changed");
    assert_eq!(
        plugin_writes_in(&ns, &ns.name),
        writes_before,
        "no write request"
    );

    // Chosen explicitly, it deploys, with the overlay's replicas.
    kubectl(&kubeconfig, &["create", "namespace", &prod]).success();
    for secret in [
        vec![
            "create",
            "secret",
            "generic",
            "imagestorage-secrets",
            "--from-literal=DATABASE_URL=postgres://x",
            "--from-literal=SECRET_KEY_BASE=y",
            "--from-literal=E2_ACCESS_KEY=a",
            "--from-literal=E2_SECRET_ACCESS_KEY=b",
            "--from-literal=REDIS_URL=redis://z",
        ],
        vec![
            "create",
            "secret",
            "docker-registry",
            "imagestorage-registry",
            "--docker-server=docker-registry.example.dev",
            "--docker-username=u",
            "--docker-password=p",
        ],
    ] {
        let mut args = vec!["-n", prod.as_str()];
        args.extend(secret);
        kubectl(&kubeconfig, &args).success();
    }
    let run = rails(
        dir,
        Some(&kubeconfig),
        &[
            "-d",
            "production",
            "--context",
            "production",
            "deploy",
            "--no-input",
        ],
    )
    .success();
    assert!(
        run.stderr
            .contains(&format!("to namespace `{prod}` on context `production`")),
        "{}",
        run.stderr
    );
    let replicas = kubectl(
        &kubeconfig,
        &[
            "-n",
            &prod,
            "get",
            "deployment",
            "imagestorage-web",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )
    .success()
    .stdout;
    assert_eq!(replicas, "2");
    // The staging destination on its own context is allowed as it is.
    rails(dir, Some(&kubeconfig), &["-d", "staging", "releases"]).success();
    let _ = kubectl(&kubeconfig, &["delete", "namespace", &prod, "--wait=false"]);
}

#[test]
fn a_kamal_destination_imports_as_an_overlay_with_its_host_and_replicas() {
    let app = fixture("rails8-kamal");
    let dir = app.path();
    std::fs::write(
        dir.join("config/deploy.staging.yml"),
        "servers:\n  web:\n    - 10.0.1.1\n    - 10.0.1.2\n    - 10.0.1.3\nproxy:\n  host: staging.shop.example.com\nenv:\n  clear:\n    RAILS_LOG_LEVEL: debug\n",
    )
    .unwrap();
    let run = rails(
        dir,
        None,
        &["init", "--no-input", "--image", "ghcr.io/acme/shop:1"],
    )
    .success();
    run.stderr_has("wrote `./config/kubernetes.staging.yml` for Kamal's destination `staging`");
    let overlay = std::fs::read_to_string(dir.join("config/kubernetes.staging.yml")).unwrap();
    assert!(overlay.contains("namespace: shop-staging\n"), "{overlay}");
    let yaml = rails(dir, None, &["-d", "staging", "render"])
        .success()
        .stdout;
    assert!(yaml.contains("- host: staging.shop.example.com"), "{yaml}");
    assert!(
        !yaml.contains("- host: shop.example.com"),
        "lists replace: {yaml}"
    );
    assert!(yaml.contains("  namespace: shop-staging\n"), "{yaml}");
    assert!(yaml.contains("  replicas: 3\n"), "{yaml}");
    assert!(
        yaml.contains("RAILS_LOG_LEVEL: debug"),
        "maps merge: {yaml}"
    );
    assert!(
        yaml.contains("DB_HOST: shop-db.internal"),
        "maps merge: {yaml}"
    );
    let base = rails(dir, None, &["render"]).success().stdout;
    assert!(base.contains("- host: shop.example.com"), "{base}");
    let missing = rails(dir, None, &["-d", "qa", "render"]).code(1);
    missing.stderr_has("destination `qa` has no overlay");
}

fn secret_value(ns: &str, key: &str, kubeconfig: &Path) -> String {
    let encoded = kubectl(
        kubeconfig,
        &[
            "-n",
            ns,
            "get",
            "secret",
            "imagestorage-secrets",
            "-o",
            &format!("jsonpath={{.data.{key}}}"),
        ],
    )
    .success()
    .stdout;
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    out.stdin
        .as_ref()
        .unwrap()
        .write_all(encoded.as_bytes())
        .unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn review_apps_come_and_go_each_in_its_own_namespace() {
    let ns = TestNs::restricted("review");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let app_name = format!("r{}", std::process::id());
    // A name of its own: namespaces are cluster-wide, and other runs may hold `imagestorage-pr-7`.
    let spec = spec.replace("name: imagestorage\n", &format!("name: imagestorage\nreview:\n  host: \"{{name}}.review.example.dev\"\n  namespace: \"{app_name}-{{name}}\"\n  override:\n    DATABASE_URL: \"{{DATABASE_URL}}_{{db_name}}\"\n  seed: [bin/rails, db:seed]\n"));
    std::fs::write(&spec_path, spec).unwrap();
    let pr7 = format!("{app_name}-pr-7");
    let pr8 = format!("{app_name}-pr-8");

    let up7 = ns
        .rails(dir, &["review", "up", "pr-7", "--ttl", "72h", "-o", "json"])
        .success();
    let info: serde_json::Value = serde_json::from_str(&up7.stdout).unwrap();
    assert_eq!(info["url"], "http://pr-7.review.example.dev");
    assert_eq!(info["namespace"], pr7.as_str());
    up7.stderr_has("running migrations");
    up7.stderr_has("seeding: `bin/rails db:seed`");
    ns.rails(dir, &["review", "up", "pr-8", "--ttl", "1s"])
        .success()
        .stderr_has("with DATABASE_URL set for `pr-8`");

    let host8 = kubectl(
        &ns.kubeconfig,
        &[
            "-n",
            &pr8,
            "get",
            "ingress",
            "imagestorage",
            "-o",
            "jsonpath={.spec.rules[0].host}",
        ],
    )
    .success()
    .stdout;
    assert_eq!(host8, "pr-8.review.example.dev");
    let db7 = secret_value(&pr7, "DATABASE_URL", &ns.kubeconfig);
    let db8 = secret_value(&pr8, "DATABASE_URL", &ns.kubeconfig);
    assert!(
        db8.ends_with("_pr_8") && db7.ends_with("_pr_7") && db7 != db8,
        "each its own database"
    );
    let migrate = kubectl(
        &ns.kubeconfig,
        &[
            "-n",
            &pr8,
            "get",
            "jobs",
            "-o",
            "jsonpath={.items[*].spec.template.spec.containers[0].args}",
        ],
    )
    .success()
    .stdout;
    assert!(
        migrate.contains("db:prepare"),
        "the first deploy prepares: {migrate}"
    );

    let list = ns.rails(dir, &["review", "list"]).success().stdout;
    assert!(list.contains("pr-7") && list.contains("pr-8"), "{list}");
    assert!(list.contains("http://pr-7.review.example.dev"), "{list}");

    std::thread::sleep(Duration::from_secs(2));
    let pruned = ns.rails(dir, &["review", "prune"]).success();
    pruned.stderr_has("pruned 1 expired review app");
    assert!(
        kubectl(&ns.kubeconfig, &["get", "namespace", &pr8]).code != 0,
        "pr-8 expired and is gone"
    );
    assert!(
        kubectl(&ns.kubeconfig, &["get", "namespace", &pr7]).code == 0,
        "pr-7 is kept"
    );

    ns.rails(dir, &["review", "down", "pr-7"]).success();
    assert!(
        kubectl(&ns.kubeconfig, &["get", "namespace", &pr7]).code != 0,
        "no object of pr-7 is left"
    );
    // The guard: never into a destination's namespace.
    std::fs::write(
        dir.join("config/kubernetes.production.yml"),
        format!("namespace: {app_name}-production\n"),
    )
    .unwrap();
    let refused = ns.rails(dir, &["review", "up", "production"]).code(2);
    refused.stderr_has("which a destination deploys to");
}

/// The spec of `rails71_app` with review apps in namespaces `{prefix}-{name}`.
fn with_reviews(dir: &std::path::Path, prefix: &str) {
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let spec = spec.replace(
        "name: imagestorage\n",
        &format!("name: imagestorage\nreview:\n  host: \"{{name}}.review.example.dev\"\n  namespace: \"{prefix}-{{name}}\"\n"),
    );
    std::fs::write(&spec_path, spec).unwrap();
}

/// A review app is a namespace the plugin made for this app and base namespace, and nothing
/// else: another team's namespace that matches the pattern is refused before any write, and
/// `down`/`prune` leave it; a review app of the same app name made from another base namespace
/// is not this one's to list, delete or prune.
#[test]
fn review_apps_never_take_a_namespace_they_did_not_make() {
    let ns = TestNs::restricted("reviewown");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    let prefix = format!("o{}", std::process::id());
    with_reviews(dir, &prefix);

    // Someone else's namespace, privileged, holding a ConfigMap.
    let other = format!("{prefix}-other");
    kubectl(&ns.kubeconfig, &["create", "namespace", &other]).success();
    kubectl(
        &ns.kubeconfig,
        &[
            "label",
            "namespace",
            &other,
            "pod-security.kubernetes.io/enforce=privileged",
        ],
    )
    .success();
    kubectl(
        &ns.kubeconfig,
        &[
            "-n",
            &other,
            "create",
            "configmap",
            "keep",
            "--from-literal=a=b",
        ],
    )
    .success();
    let refused = ns.rails(dir, &["review", "up", "other", "--ttl", "1s"]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    refused.stderr_has(&format!(
        "namespace `{other}` exists and is not a review app `kubectl rails` made for `imagestorage/{}`; nothing was written",
        ns.name
    ));
    let enforce = kubectl(
        &ns.kubeconfig,
        &[
            "get",
            "namespace",
            &other,
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ],
    )
    .success()
    .stdout;
    assert_eq!(enforce.trim(), "privileged", "its labels are untouched");
    assert_ne!(
        kubectl(
            &ns.kubeconfig,
            &["-n", &other, "get", "secret", "imagestorage-secrets"]
        )
        .code,
        0,
        "no Secret was written into it"
    );
    let down = ns.rails(dir, &["review", "down", "other"]);
    assert_ne!(down.code, 0, "{}", down.stderr);
    down.stderr_has("is not a review app of");

    // The same app name from another base namespace: its review app is not ours.
    let ns2 = TestNs::restricted("reviewown2");
    let app2 = rails71_app(&ns2, "1");
    with_reviews(app2.path(), &prefix);
    ns2.rails(app2.path(), &["review", "up", "pr-1", "--ttl", "1s"])
        .success();
    let theirs = format!("{prefix}-pr-1");
    let list = ns.rails(dir, &["review", "list"]).success().stdout;
    assert!(!list.contains("pr-1"), "{list}");
    let down = ns.rails(dir, &["review", "down", "pr-1"]);
    assert_ne!(down.code, 0, "{}", down.stderr);
    // Our own `up` of that name does not take theirs either.
    let taken = ns.rails(dir, &["review", "up", "pr-1"]);
    assert_ne!(taken.code, 0, "{}", taken.stderr);

    std::thread::sleep(Duration::from_secs(2));
    ns.rails(dir, &["review", "prune"])
        .success()
        .stderr_has("pruned 0 expired review apps");
    for kept in [&other, &theirs] {
        assert_eq!(
            kubectl(&ns.kubeconfig, &["get", "namespace", kept]).code,
            0,
            "`{kept}` is kept"
        );
    }
    ns2.rails(app2.path(), &["review", "prune"])
        .success()
        .stderr_has("pruned 1 expired review app");
    kubectl(
        &ns.kubeconfig,
        &["delete", "namespace", &other, "--wait=false"],
    )
    .success();
}

/// A review app copies the app's secrets from its base namespace: without the app Secret there
/// (a wrong `-n`, a new app) `review up` is an error before anything is written, never a review
/// app whose secrets are a template's text. An accessory gets a password Secret of its own in
/// the review namespace, which its StatefulSet needs (#27 M2).
#[test]
fn review_up_needs_the_base_secret_and_makes_the_accessory_secret() {
    let ns = TestNs::restricted("reviewbase");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    let prefix = format!("b{}", std::process::id());
    with_reviews(dir, &prefix);
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let spec = spec.replace(
        "review:\n",
        "accessories:\n  cache: {kind: redis, image: \"redis:7\", size: 1Gi}\nreview:\n  override:\n    E2_ACCESS_KEY: \"{E2_ACCESS_KEY}-{name}\"\n",
    );
    std::fs::write(&spec_path, spec).unwrap();

    let empty = TestNs::restricted("reviewempty");
    let refused = empty.rails(dir, &["review", "up", "pr-3", "--ttl", "1h"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    refused.stderr_has(&format!(
        "Secret `imagestorage-secrets` is missing in namespace `{}`",
        empty.name
    ));
    let pr3 = format!("{prefix}-pr-3");
    assert_ne!(
        kubectl(&ns.kubeconfig, &["get", "namespace", &pr3]).code,
        0,
        "no review namespace was made"
    );

    ns.rails(dir, &["review", "up", "pr-4", "--ttl", "1h"])
        .success();
    let pr4 = format!("{prefix}-pr-4");
    let password = kubectl(
        &ns.kubeconfig,
        &[
            "-n",
            &pr4,
            "get",
            "secret",
            "imagestorage-cache",
            "-o",
            "jsonpath={.data.PASSWORD}",
        ],
    )
    .success()
    .stdout;
    assert!(
        !password.trim().is_empty(),
        "the accessory's Secret is there"
    );
    ns.rails(dir, &["review", "down", "pr-4"]).success();
}

/// Review app names are used as given or refused, never converted into another's (`123-login`
/// stays `123-login`), and a namespace too long for Kubernetes is refused before any write
/// (#27 L7).
#[test]
fn review_names_are_kept_or_refused_never_converted() {
    let ns = TestNs::restricted("reviewnames");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    let prefix = format!("n{}", std::process::id());
    with_reviews(dir, &prefix);
    let bad = ns.rails(dir, &["review", "up", "Bad_Name"]).code(2);
    bad.stderr_has("did you mean `bad-name`?");
    let up = ns
        .rails(
            dir,
            &["review", "up", "123-login", "--ttl", "1h", "-o", "json"],
        )
        .success();
    let info: serde_json::Value = serde_json::from_str(&up.stdout).unwrap();
    assert_eq!(info["namespace"], format!("{prefix}-123-login"));
    ns.rails(dir, &["review", "down", "123-login"]).success();

    let long = format!("{prefix}-{}", "x".repeat(40));
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        spec.replace(
            &format!("\"{prefix}-{{name}}\""),
            &format!("\"{long}-{{name}}\""),
        ),
    )
    .unwrap();
    let name = "a-name-of-twenty-five-chars";
    let refused = ns.rails(dir, &["review", "up", name]).code(2);
    refused.stderr_has("not a DNS label of at most 63 characters");
    assert_ne!(
        kubectl(
            &ns.kubeconfig,
            &["get", "namespace", &format!("{long}-{name}")]
        )
        .code,
        0
    );
}
