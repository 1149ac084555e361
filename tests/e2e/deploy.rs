//! `kubectl rails deploy`, `releases`, `rollback`, `diff` and `status` against the real test
//! control plane.

use std::path::Path;

use crate::support::{
    Run, TestNs, date_utc, edit_spec, finish, fixture, git, leaks, plugin_audit_events, rails,
    rails71_initialised, spawn, wait_for,
};

/// Secret values of the fixtures; registered so that no command may print them.
const DATABASE_URL: &str = "postgres://imagestorage:Pg-s3cret-9f2c@db.internal:5432/imagestorage";
const SECRET_KEY_BASE: &str = "skb-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed";

/// A Rails 7.1 app initialised for `ns`, with its Secret and pull secret in place.
pub fn rails71_app(ns: &TestNs, replicas: &str) -> tempfile::TempDir {
    let app = rails71_initialised(&[
        "--host",
        "imagestorage.example.dev",
        "--replicas",
        replicas,
        "-n",
        &ns.name,
    ]);
    // The URL's password, not the URL: its other parts (the app's name) are public.
    for v in [
        "Pg-s3cret-9f2c",
        SECRET_KEY_BASE,
        "E2-Secret-Access-7d1e",
        "E2-Access-Key-AKIA77",
    ] {
        leaks::register(v);
    }
    ns.create_secret(
        "imagestorage-secrets",
        &[
            ("DATABASE_URL", DATABASE_URL),
            ("SECRET_KEY_BASE", SECRET_KEY_BASE),
            ("E2_ACCESS_KEY", "E2-Access-Key-AKIA77"),
            ("E2_SECRET_ACCESS_KEY", "E2-Secret-Access-7d1e"),
            ("REDIS_URL", "redis://redis.internal:6379/0"),
        ],
    );
    let registry = "docker-registry.example.dev";
    ns.create_pull_secret("imagestorage-registry", registry, "deploy", "Rg-Pw-31-x9q");
    leaks::register("Rg-Pw-31-x9q");
    app
}

/// [`rails71_app`] with `replicas` web replicas, deployed into a restricted namespace of its own.
pub fn deployed_rails71(prefix: &str, replicas: &str) -> (TestNs, tempfile::TempDir) {
    let ns = TestNs::restricted(prefix);
    let app = rails71_app(&ns, replicas);
    ns.rails(app.path(), &["deploy", "--no-input"]).success();
    (ns, app)
}

/// The Rails 8 Kamal fixture, initialised for `ns`.
pub fn rails8_initialised(ns: &TestNs) -> tempfile::TempDir {
    let app = fixture("rails8-kamal");
    let image = "ghcr.io/acme/shop:2026.11.27";
    rails(
        app.path(),
        None,
        &["init", "--no-input", "--image", image, "-n", &ns.name],
    )
    .success();
    app
}

/// A Rails 8 Kamal app initialised for `ns`, with its secrets (its volume comes later).
fn rails8_app(ns: &TestNs) -> tempfile::TempDir {
    let app = rails8_initialised(ns);
    leaks::register("Master-Key-0a1b2c3d4e5f");
    leaks::register("Db-Pass-Shop-88");
    ns.create_secret(
        "shop-secrets",
        &[
            ("RAILS_MASTER_KEY", "Master-Key-0a1b2c3d4e5f"),
            ("SHOP_DATABASE_PASSWORD", "Db-Pass-Shop-88"),
        ],
    );
    ns.create_pull_secret("shop-registry", "ghcr.io", "acme", "x");
    app
}

fn deploy(ns: &TestNs, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["deploy", "--no-input", "--timeout", "120s"];
    args.extend(extra);
    ns.rails(dir, &args)
}

/// Names and resourceVersions of every object the app owns. The deploy ends when the migration's
/// pod has succeeded; the Job controller marks the Job Complete up to a second later. That write
/// is the controller's, not the plugin's, so the snapshot waits for it.
fn snapshot(ns: &TestNs) -> String {
    let jobs = ns.kubectl(&["get", "jobs", "-o", "name"]).success().stdout;
    if !jobs.trim().is_empty() {
        let wait = [
            "wait",
            "--for=condition=complete",
            "job",
            "--all",
            "--timeout=30s",
        ];
        ns.kubectl(&wait).success();
    }
    ns.kubectl(&[
        "get",
        "deploy,svc,cm,ingress,pdb,job,secret",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name}@{.metadata.resourceVersion}{\"\\n\"}{end}",
    ])
    .success()
    .stdout
}

/// The image the Deployment's pod template runs.
pub fn web_image(ns: &TestNs, deployment: &str) -> String {
    let image = "{.spec.template.spec.containers[0].image}";
    ns.jsonpath("deployment", deployment, image)
}

#[test]
fn rails71_deploys_migrates_and_reports() {
    let ns = TestNs::restricted("deploy71");
    let app = rails71_app(&ns, "3");
    let run = deploy(&ns, app.path(), &[]).success();
    assert!(
        run.stdout
            .starts_with("Deployed imagestorage as release v1"),
        "{}",
        run.stdout
    );
    run.stdout_has(" web      3/3");
    run.stdout_has(" worker   1/1");
    run.stderr_has("running migrations: Job `imagestorage-migrate-");
    run.stderr_has("migrations done");
    // The migration's log, each line once, before the deploy goes on.
    let log_lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("  | "))
        .collect();
    assert_eq!(
        log_lines,
        [
            "  | I, [2026-11-27T10:00:00.000000 #1]  INFO -- : Migrating to CreatePosts (20261101090000)",
            "  | == 20261101090000 CreatePosts: migrating ======================================",
            "  | -- create_table(:posts)",
            "  |    -> 0.0042s",
            "  | == 20261101090000 CreatePosts: migrated (0.0043s) =============================",
        ],
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("web 3/3 ready"),
        "progress per process: {}",
        run.stderr
    );
    let ready = ns.pods(
        "app.kubernetes.io/component=web",
        "{.items[*].status.containerStatuses[0].ready}",
    );
    let ready = ready.split_whitespace().filter(|r| *r == "true").count();
    assert_eq!(ready, 3);
}

/// The volume appears only once the migration pod waits for it, as when a provisioner is slow:
/// an unschedulable pod is waited for, not called hopeless at once. On the fault tests'
/// cluster, which has no default StorageClass: the claim waits for a volume made by hand.
#[test]
fn rails8_kamal_app_deploys_and_waits_for_its_volume_to_bind() {
    let (_, kubeconfig) = crate::support::fault_cluster();
    let ns = TestNs::restricted_on(kubeconfig, "deploy8");
    let app = rails8_app(&ns);
    let (child, rx) = spawn(
        &ns,
        app.path(),
        &["deploy", "--no-input", "--timeout", "120s"],
    );
    let seen = wait_for(&rx, "cannot be scheduled yet");
    assert!(
        seen.last()
            .unwrap()
            .contains("unbound immediate PersistentVolumeClaims"),
        "{seen:?}"
    );
    ns.volume_for_claim("shop-storage");
    let run = finish(child, rx, seen).success();
    run.stdout_has(" web      1/1");
    run.stdout_has(" job      1/1");
    let claim = ns.jsonpath("pvc", "shop-storage", "{.status.phase}");
    assert_eq!(claim, "Bound");
}

/// On the fault tests' cluster: the main one's default StorageClass (the real node's
/// provisioner) would take the claim; this one, like a bare cluster, has none.
#[test]
fn a_volume_that_never_binds_fails_with_the_storage_hint() {
    let (_, kubeconfig) = crate::support::fault_cluster();
    let ns = TestNs::restricted_on(kubeconfig, "novolume");
    let app = rails8_app(&ns);
    let run = deploy(&ns, app.path(), &[]).code(1);
    // Said before anything changes, by doctor's storage check.
    run.stderr_has("volume: no default StorageClass, so claim `shop-storage` stays Pending unless a PersistentVolume matches it");
    run.stderr_has("cannot be scheduled yet");
    run.stderr_has("the app's volume claim is not bound");
    run.stderr_has("nothing was rolled out");
}

/// On the fault tests' cluster, which serves no Gateway API: a spec behind a Gateway is refused
/// by the dry run, with what to install, before anything changes (and `diff` says the same).
#[test]
fn a_gateway_on_a_cluster_without_the_gateway_api_is_refused_before_any_change() {
    let (_, kubeconfig) = crate::support::fault_cluster();
    let ns = TestNs::restricted_on(kubeconfig, "nogateway");
    let app = rails8_app(&ns);
    let spec = app.path().join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let routed = text
        .lines()
        .filter(|l| !l.starts_with("  tls:") && !l.starts_with("  issuer:"))
        .map(|l| {
            if l == "ingress:" {
                "ingress:\n  gateway: gateway-system/public".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&spec, routed + "\n").unwrap();
    for args in [
        &["deploy", "--no-input", "--timeout", "60s"][..],
        &["diff"][..],
    ] {
        let run = ns.rails(app.path(), args);
        assert_ne!(run.code, 0, "{args:?}: {}", run.stderr);
        run.stderr_has("the cluster does not serve the `HTTPRoute` API");
        run.stderr_has("install the Gateway API's CRDs and a Gateway controller");
    }
    assert_eq!(
        ns.kubectl(&[
            "get",
            "deployments,jobs,configmaps",
            "-l",
            "app.kubernetes.io/instance=shop",
            "-o",
            "name"
        ])
        .success()
        .stdout
        .trim(),
        "",
        "nothing was applied"
    );
}

/// Right after a deploy, the Job controller may not have marked the migration Job Complete yet
/// (it batches pod updates for a second); a redeploy of the same release still must not run the
/// migration again.
#[test]
fn an_immediate_redeploy_does_not_migrate_again() {
    let ns = TestNs::restricted("redeploy");
    let app = rails71_app(&ns, "2");
    deploy(&ns, app.path(), &[]).success();
    edit_spec(app.path(), "  replicas: 2\n", "  replicas: 3\n");
    let run = deploy(&ns, app.path(), &[]).success();
    run.stderr_has("migrations already ran for this release");
    assert!(!run.stderr.contains("running migrations"), "{}", run.stderr);
    run.stdout_has(" web      3/3");
}

#[test]
fn a_second_deploy_without_changes_changes_nothing() {
    let ns = TestNs::restricted("nochange");
    let app = rails71_app(&ns, "2");
    deploy(&ns, app.path(), &[]).success();
    let before = snapshot(&ns);
    let run = deploy(&ns, app.path(), &[]).success();
    run.stderr_has("no changes: release v1 is current");
    assert!(
        run.stdout.starts_with("imagestorage is up to date"),
        "{}",
        run.stdout
    );
    assert_eq!(snapshot(&ns), before, "resourceVersions must not move");
}

/// The value of plain env `key` that the web pods read: from the ConfigMap their template names.
fn live_env(ns: &TestNs, key: &str) -> String {
    let config_map = ns.jsonpath(
        "deployment",
        "imagestorage-web",
        "{.spec.template.spec.containers[0].envFrom[0].configMapRef.name}",
    );
    ns.jsonpath("configmap", &config_map, &format!("{{.data.{key}}}"))
}

/// A release whose migration fails changes nothing the running pods read: not its image, and
/// not its plain env either (a web pod that starts again meanwhile reads the old env, #27 M8).
#[test]
fn a_failing_migration_keeps_the_previous_release_serving() {
    let ns = TestNs::restricted("migfail");
    let app = rails71_app(&ns, "2");
    deploy(&ns, app.path(), &[]).success();
    assert_eq!(live_env(&ns, "E2_REGION"), "miami");
    edit_spec(app.path(), "E2_REGION: \"miami\"", "E2_REGION: \"madrid\"");
    let run = deploy(&ns, app.path(), &["--tag", "2.0.0-migration-fails"]).code(1);
    assert_eq!(
        live_env(&ns, "E2_REGION"),
        "miami",
        "the old env stays live"
    );
    run.stderr_has("the migration Job `imagestorage-migrate-");
    run.stderr_has("nothing was rolled out and release v1 keeps serving");
    run.stderr_has("last lines of the migration log:");
    assert_eq!(
        web_image(&ns, "imagestorage-web"),
        "docker-registry.example.dev/imagestorage:1.4.2"
    );
    let releases = ns.rails(app.path(), &["releases"]).success().stdout;
    assert!(releases.contains("v2        failed"), "{releases}");
    assert!(releases.contains("migration failed"), "{releases}");
    assert!(releases.contains("v1        current"), "{releases}");
    // The same broken release again: its failed Job is replaced and the migration runs (and fails)
    // again, rather than the deploy waiting out `--timeout`.
    let again = deploy(&ns, app.path(), &["--tag", "2.0.0-migration-fails"]).code(1);
    again.stderr_has("(the migration exited with code 1)");
    again.stderr_has("last lines of the migration log:");
    // A release that rolls out brings its env, and the old env's ConfigMap goes once it is done.
    deploy(&ns, app.path(), &["--tag", "2.0.0"]).success();
    assert_eq!(live_env(&ns, "E2_REGION"), "madrid");
    let config_maps = ns
        .kubectl(&[
            "get",
            "configmaps",
            "-l",
            "app.kubernetes.io/instance=imagestorage",
            "-o",
            "name",
        ])
        .success()
        .stdout;
    let env_maps: Vec<&str> = config_maps
        .lines()
        .filter(|l| l.starts_with("configmap/imagestorage-env"))
        .collect();
    assert_eq!(env_maps.len(), 1, "{config_maps}");
}

#[test]
fn an_unpullable_image_fails_fast_with_the_reason() {
    let ns = TestNs::restricted("pull");
    let app = rails71_app(&ns, "2");
    deploy(&ns, app.path(), &[]).success();
    // Exit 1 (a diagnosed failure), not 124 (the timeout): the wait gave up on its own.
    let run = deploy(
        &ns,
        app.path(),
        &["--tag", "9.9.9-unpullable", "--migrate", "skip"],
    )
    .code(1);
    run.stderr_has("is stuck in ImagePullBackOff");
    run.stderr_has("check the repository and tag");
    run.stderr_has("recorded release v2 as failed");
    // With migrations on, the migration Job meets the same image first.
    let run = deploy(&ns, app.path(), &["--tag", "9.9.9-unpullable"]).code(1);
    run.stderr_has("ImagePullBackOff");
}

#[test]
fn rollback_restores_image_and_config_together() {
    let ns = TestNs::restricted("rollback");
    let app = rails71_app(&ns, "2");
    deploy(&ns, app.path(), &[]).success();
    edit_spec(app.path(), "E2_REGION: \"miami\"", "E2_REGION: \"madrid\"");
    edit_spec(app.path(), "tag: \"1.4.2\"", "tag: \"1.5.0\"");
    deploy(&ns, app.path(), &[]).success();
    assert_eq!(
        web_image(&ns, "imagestorage-web"),
        "docker-registry.example.dev/imagestorage:1.5.0"
    );

    let run = ns.rails(app.path(), &["rollback", "--no-input"]).success();
    run.stdout_has("as release v3");
    assert_eq!(
        web_image(&ns, "imagestorage-web"),
        "docker-registry.example.dev/imagestorage:1.4.2"
    );
    assert_eq!(live_env(&ns, "E2_REGION"), "miami");
    let releases = ns.rails(app.path(), &["releases", "-o", "json"]);
    assert_eq!(releases.success().json()[2]["note"], "rollback to v1");
}

#[test]
fn removing_a_worker_prunes_only_its_deployment() {
    let ns = TestNs::restricted("prune");
    let app = rails71_app(&ns, "2");
    deploy(&ns, app.path(), &[]).success();
    // Objects the plugin did not create, even with the app's name on them, are never touched.
    ns.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: imagestorage-notes\n  labels: {app.kubernetes.io/instance: imagestorage}\n")
        .success();
    let web_version = || {
        ns.jsonpath(
            "deployment",
            "imagestorage-web",
            "{.metadata.resourceVersion}",
        )
    };
    let web_before = web_version();

    remove_top_level_key(&app.path().join("config/kubernetes.yml"), "workers");
    let run = deploy(&ns, app.path(), &[]).success();
    run.stderr_has("Deployment `imagestorage-worker` pruned");
    let deployments = ns
        .kubectl(&["get", "deployments", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(
        deployments.trim(),
        "deployment.apps/imagestorage-assets\ndeployment.apps/imagestorage-web"
    );
    ns.kubectl(&["get", "configmap", "imagestorage-notes"])
        .success();
    assert_eq!(web_before, web_version(), "the web Deployment is untouched");
}

#[test]
fn dry_run_and_diff_change_nothing() {
    let ns = TestNs::restricted("dryrun");
    let app = rails71_app(&ns, "2");
    let before = snapshot(&ns);
    let run = deploy(&ns, app.path(), &["--dry-run"]).success();
    run.stderr_has("Deployment `imagestorage-web` would be created (server dry run)");
    assert_eq!(snapshot(&ns), before);

    deploy(&ns, app.path(), &[]).success();
    let before = snapshot(&ns);
    let diff = ns
        .rails(app.path(), &["diff", "--tag", "1.5.0", "--exit-code"])
        .code(1);
    diff.stdout_has("-        image: docker-registry.example.dev/imagestorage:1.4.2");
    diff.stdout_has("+        image: docker-registry.example.dev/imagestorage:1.5.0");
    let same = ns.rails(app.path(), &["diff"]).success();
    same.stderr_has("no changes");
    assert_eq!(snapshot(&ns), before);
}

#[test]
fn json_output_parses() {
    let ns = TestNs::restricted("json");
    let app = rails71_app(&ns, "2");
    let outcome = deploy(&ns, app.path(), &["-o", "json"]).success().json();
    assert_eq!(outcome["revision"], 1);
    assert_eq!(outcome["processes"][0]["process"], "web");
    assert_eq!(outcome["processes"][0]["done"], true);
    let status = ns.rails(app.path(), &["status", "-o", "json"]);
    assert_eq!(status.success().json()["processes"][0]["ready"], 2);
}

#[test]
fn without_a_terminal_every_question_names_its_flag() {
    let ns = TestNs::new("noinput");
    let bare = fixture("rails71-sidekiq");
    // No spec yet: deploy asks init's questions first, and the image is one nobody can answer.
    let run = ns.rails(bare.path(), &["deploy", "--no-input"]).code(2);
    run.stderr_has("pass `--image`");
    // A namespace that does not exist needs a yes.
    let app = rails71_initialised(&["--no-ingress"]);
    let run = rails(
        app.path(),
        Some(&ns.kubeconfig),
        &["deploy", "--no-input", "-n", "does-not-exist-yet"],
    )
    .code(2);
    run.stderr_has("pass `--yes`");
    // An image without a tag, and `latest`.
    let run = ns
        .rails(
            app.path(),
            &["deploy", "--no-input", "--image", "ghcr.io/acme/shop"],
        )
        .code(2);
    run.stderr_has("pass `--tag`");
    let run = ns
        .rails(app.path(), &["deploy", "--no-input", "--tag", "latest"])
        .code(2);
    run.stderr_has("`--allow-latest`");
}

#[test]
fn a_held_lease_stops_a_second_deploy() {
    let ns = TestNs::restricted("lease");
    let app = rails71_app(&ns, "2");
    let renew = k8s_time_now();
    ns.apply(&format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: imagestorage-deploy}}\nspec:\n  holderIdentity: alice@laptop\n  leaseDurationSeconds: 300\n  acquireTime: {renew}\n  renewTime: {renew}\n"
    ))
    .success();
    let before = snapshot(&ns);
    let run = deploy(&ns, app.path(), &[]).code(1);
    run.stderr_has("another deploy of `imagestorage` is running (held by alice@laptop");
    assert_eq!(snapshot(&ns), before, "nothing applied");
    ns.kubectl(&["delete", "lease", "imagestorage-deploy"])
        .success();
    deploy(&ns, app.path(), &[]).success();
}

#[test]
fn concurrent_deploys_do_not_interleave() {
    let ns = TestNs::restricted("concurrent");
    let app = rails71_app(&ns, "20");
    // The pre-deploy hook runs inside the lease: whichever deploy takes it holds it for a few
    // seconds more, so the other certainly meets it (two deploys that happened to run one
    // after the other would prove nothing, #27 L10).
    let hooks = app.path().join("config/kubernetes/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("pre-deploy"), "#!/bin/sh\nsleep 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        hooks.join("pre-deploy"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let spawn = || {
        let dir = app.path().to_path_buf();
        let kubeconfig = ns.kubeconfig.clone();
        let name = ns.name.clone();
        std::thread::spawn(move || {
            crate::support::rails(
                &dir,
                Some(&kubeconfig),
                &["-n", &name, "deploy", "--no-input", "--timeout", "120s"],
            )
        })
    };
    let (a, b) = (spawn(), spawn());
    let runs = [a.join().unwrap(), b.join().unwrap()];
    let ok = runs.iter().filter(|r| r.code == 0).count();
    assert_eq!(ok, 1, "one deploy succeeds, the other is refused: {runs:?}");
    for r in runs.iter().filter(|r| r.code != 0) {
        assert!(
            r.stderr
                .contains("another deploy of `imagestorage` is running"),
            "a refused deploy says why: {}",
            r.stderr
        );
    }
    let releases = ns.rails(app.path(), &["releases", "-o", "json"]);
    let releases = releases.success().json();
    let revisions: Vec<u64> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, [1], "exactly one release recorded: {releases}");
}

/// Deletes a top-level key and its block from a spec file, as a person editing it would.
fn remove_top_level_key(path: &Path, key: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('-') {
            skipping = line.starts_with(&format!("{key}:"));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_ne!(out, text, "`{key}` was in the spec");
    std::fs::write(path, out).unwrap();
}

/// The current time in RFC 3339 with microseconds, as Lease times are written.
fn k8s_time_now() -> String {
    date_utc(&["+%Y-%m-%dT%H:%M:%S.000000Z"])
}

/// Each release names the commit it was deployed from (asked of git while the deploy runs), and
/// says so when the working tree had uncommitted changes.
#[test]
fn the_release_records_the_commit() {
    let ns = TestNs::restricted("commit");
    let app = rails71_app(&ns, "1");
    let git = |args: &[&str]| git(app.path(), args);
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "the app"]);
    let sha = git(&["rev-parse", "--short=12", "HEAD"]);
    deploy(&ns, app.path(), &[]).success();
    edit_spec(app.path(), "  replicas: 1\n", "  replicas: 2\n");
    deploy(&ns, app.path(), &[]).success();
    let releases = ns.rails(app.path(), &["releases"]).success().stdout;
    let line = |rev: &str| {
        releases
            .lines()
            .find(|l| l.trim_start().starts_with(rev))
            .unwrap_or_else(|| panic!("no {rev} in\n{releases}"))
            .to_string()
    };
    assert!(line("v1 ").contains(&format!(" {sha} ")), "{releases}");
    assert!(
        line("v2 ").contains(&format!(" {sha}-dirty ")),
        "{releases}"
    );
}

/// Without a terminal, a deploy whose Secret is missing or incomplete stops before anything
/// changes, naming every missing item and the command that sets it (exit 2); the next try meets
/// the same clear message.
#[test]
fn missing_secrets_stop_the_deploy_before_any_change() {
    let ns = TestNs::restricted("preflight");
    let app = rails71_initialised(&["--no-ingress", "-n", &ns.name]);
    let run = deploy(&ns, app.path(), &[]).code(2);
    run.stderr_has("the deploy needs what it cannot ask for (`--no-input` is set)");
    // The keys of the example env file (E2_ACCESS_KEY...) are optional: only what the app needs
    // stops the deploy.
    run.stderr_has("Secret `imagestorage-secrets` lacks DATABASE_URL, REDIS_URL, SECRET_KEY_BASE: `kubectl rails secrets import`");
    run.stderr_has("pull secret `imagestorage-registry` for `docker-registry.example.dev` is missing: `kubectl rails secrets registry --server docker-registry.example.dev`");
    ns.create_secret(
        "imagestorage-secrets",
        &[("DATABASE_URL", "postgres://x"), ("SECRET_KEY_BASE", "y")],
    );
    for _ in 0..2 {
        let run = deploy(&ns, app.path(), &[]).code(2);
        run.stderr_has("Secret `imagestorage-secrets` lacks REDIS_URL:");
        assert!(!run.stderr.contains("another deploy"), "{}", run.stderr);
    }
    let left = ns
        .kubectl(&["get", "deploy,job,cm,lease", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(left.trim(), "configmap/kube-root-ca.crt", "nothing changed");
}

/// A web pod no node can take waits out its grace (20 s: a node may come back). Then the deploy
/// stops with the scheduler's reason and what to change; the release that was serving keeps
/// serving.
#[test]
fn a_pod_no_node_can_take_fails_after_its_grace_with_the_reason() {
    let ns = TestNs::restricted("toobig");
    let app = rails71_app(&ns, "1");
    deploy(&ns, app.path(), &[]).success();
    edit_spec(app.path(), "    cpu: 250m\n", "    cpu: \"64\"\n");
    let run = deploy(&ns, app.path(), &["--migrate", "skip"]).code(1);
    run.stderr_has("cannot be scheduled yet");
    run.stderr_has("Insufficient cpu");
    run.stderr_has("no node can take the pod: lower `resources`");
    run.stderr_has("recorded release v2 as failed");
    let ready = ns.jsonpath("deployment", "imagestorage-web", "{.status.readyReplicas}");
    assert_eq!(ready, "1", "the old pod still serves");
}

/// A Job's pod template cannot change. A release whose migration pod differs only in resources
/// gets a Job of its own instead of a rejected patch of the old one.
#[test]
fn changing_resources_deploys_with_a_job_of_its_own() {
    let ns = TestNs::restricted("resources");
    let app = rails71_app(&ns, "1");
    deploy(&ns, app.path(), &[]).success();
    edit_spec(app.path(), "    cpu: 250m\n", "    cpu: 300m\n");
    let run = deploy(&ns, app.path(), &[]).success();
    run.stderr_has("running migrations");
    let jobs = ns.kubectl(&["get", "jobs", "-o", "name"]).success().stdout;
    assert_eq!(jobs.lines().count(), 2, "{jobs}");
}

/// A release record that does not parse still takes its revision: the next deploy records the
/// one above it rather than failing, after its rollout, on a name that is taken (#27 L9).
#[test]
fn an_unreadable_release_record_keeps_its_revision() {
    let ns = TestNs::restricted("badrecord");
    let app = rails71_app(&ns, "1");
    deploy(&ns, app.path(), &[]).success();
    ns.kubectl(&[
        "patch",
        "configmap",
        "imagestorage-release-v1",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"release.json":"{not json"}}"#,
    ])
    .success();
    let run = deploy(&ns, app.path(), &["--tag", "2.0.0"]).success();
    run.stdout_has("as release v2");
}

#[test]
fn maintenance_needs_a_deployed_app_with_an_ingress_and_says_which_is_missing() {
    let ns = TestNs::new("maintenance-refused");
    let app = rails71_initialised(&["--no-ingress", "-n", &ns.name]);
    let run = ns.rails(app.path(), &["maintenance", "on"]).code(1);
    run.stderr_has("has no Ingress in namespace");
    run.stderr_has("add `ingress:` with the hosts to the spec and deploy");
    let run = ns.rails(app.path(), &["maintenance", "off"]).code(1);
    run.stderr_has("is not deployed in namespace");
    // Nothing was written: no page, and the lease is released.
    ns.kubectl(&["get", "deployment,configmap", "-o", "name"])
        .success()
        .stdout
        .lines()
        .for_each(|l| assert!(!l.contains("maintenance"), "{l}"));
    ns.kubectl(&["get", "lease", "imagestorage-deploy"]).code(1);
}

/// `deploy ARGS` in a pseudo-terminal `cols` wide with `TERM=term`: the screen a terminal
/// shows at the end (an emulator tall enough that nothing scrolls away) and the raw output.
fn deploy_on_screen(
    ns: &TestNs,
    dir: &Path,
    cols: u16,
    term: &str,
    args: &[&str],
) -> (String, String) {
    use expectrl::Expect;
    let mut all = vec!["deploy", "--no-input"];
    all.extend(args);
    let mut p = crate::support::in_terminal_with(ns, dir, &all, &[("TERM", term)]);
    p.get_process_mut().set_window_size(cols, 24).unwrap();
    // Eof's match is the whole output.
    let out = p.expect(expectrl::Eof).unwrap();
    let bytes: Vec<u8> = out
        .before()
        .iter()
        .chain(out.matches().flatten())
        .copied()
        .collect();
    let mut screen = vt100::Parser::new(2000, cols, 0);
    screen.process(&bytes);
    (
        screen.screen().contents(),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[test]
fn the_rollout_board_stays_whole_in_a_narrow_terminal_and_plain_where_term_is_dumb() {
    let ns = TestNs::new("board");
    let app = rails71_app(&ns, "3");
    let dir = app.path();
    ns.rails(dir, &["deploy", "--no-input"]).success();

    // A new release: old pods still running make board lines wider than 40 columns.
    let (screen, raw) = deploy_on_screen(&ns, dir, 40, "xterm", &["--tag", "1.4.3"]);
    let headers = screen
        .lines()
        .filter(|l| l.starts_with("  rollout, "))
        .count();
    assert_eq!(
        headers, 1,
        "the board was left behind in pieces:\n{screen}\n{raw:?}"
    );
    let board: Vec<String> = screen
        .lines()
        .skip_while(|l| !l.starts_with("  rollout, "))
        .take_while(|l| {
            l.starts_with("  rollout, ") || l.starts_with("  migration") || l.starts_with("✓ ")
        })
        .map(|l| {
            let digits = l.trim_start_matches("  rollout, ");
            if l.starts_with("  rollout, ") && digits.ends_with("s elapsed") {
                "  rollout, Ns elapsed".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    insta::assert_snapshot!("board_40_columns", board.join("\n"));

    // TERM=dumb: no cursor movement at all, and the rollout still says where it stands.
    let (_, raw) = deploy_on_screen(&ns, dir, 40, "dumb", &["--tag", "1.4.4"]);
    assert!(
        !raw.contains("\u{1b}["),
        "escape sequences with TERM=dumb:\n{raw}"
    );
    assert!(raw.contains("web 3/3 ready"), "{raw}");
}

#[test]
fn bake_limits_are_checked_and_an_unchanged_deploy_has_nothing_to_bake() {
    let ns = TestNs::new("bake-flags");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    let run = ns
        .rails(dir, &["deploy", "--bake", "30s", "--max-error-rate", "150"])
        .code(2);
    run.stderr_has("`150` is not between 0 and 100");
    ns.rails(dir, &["deploy", "--no-input"]).success();
    let run = ns
        .rails(dir, &["deploy", "--no-input", "--bake", "30s"])
        .success();
    run.stderr_has("no new release, so nothing to bake");

    // The spec's `rollout.bake` bakes every deploy; its limits are the spec's too.
    let spec = dir.join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        format!("{text}rollout: {{bake: 2s, max_error_rate: 1.5}}\n"),
    )
    .unwrap();
    let run = ns
        .rails(dir, &["deploy", "--no-input", "--tag", "1.4.3"])
        .success();
    run.stderr_has(
        "baking release v2 for 2s: rolled back at once if more than 1.5% of its requests",
    );
    run.stderr_has("release v2 held for 2s");
    std::fs::write(&spec, format!("{text}rollout: {{bake: soon}}\n")).unwrap();
    ns.rails(dir, &["deploy", "--no-input", "--tag", "1.4.4"])
        .code(1)
        .stderr_has("`soon` is not a duration");
}

#[test]
fn canary_refusals_name_what_to_do_and_a_canary_without_weights_says_so() {
    let ns = TestNs::new("canary-flags");
    let app = rails71_app(&ns, "1");
    let dir = app.path();
    // No Ingress: the Service alone spreads the requests, as behind a controller that cannot
    // weigh releases.
    let spec = dir.join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let mut in_ingress = false;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            if !l.starts_with(' ') && !l.starts_with('-') {
                in_ingress = l.starts_with("ingress:");
            }
            !in_ingress
        })
        .collect();
    std::fs::write(&spec, kept.join("\n") + "\n").unwrap();
    for percent in ["0", "150"] {
        ns.rails(dir, &["deploy", "--no-input", "--canary", percent])
            .code(2)
            .stderr_has("--canary <PERCENT>");
    }
    ns.rails(dir, &["deploy", "--no-input", "--promote", "--bake", "5s"])
        .code(2)
        .stderr_has("`--promote` promotes a canary");
    for (command, what) in [
        ("promote", "nothing to promote"),
        ("abort", "nothing to abort"),
    ] {
        let run = ns.rails(dir, &["canary", command]).code(1);
        run.stderr_has(&format!(
            "no canary of `imagestorage` is running in namespace `{}`: {what}",
            ns.name
        ));
        run.stderr_has("start one with `kubectl rails deploy --canary PERCENT`");
    }
    let run = deploy(&ns, dir, &["--canary", "20"]).code(1);
    run.stderr_has("has no current release");
    run.stderr_has("deploy once without `--canary`");

    deploy(&ns, dir, &[]).success();
    // A dry run writes nothing.
    deploy(
        &ns,
        dir,
        &[
            "--tag",
            "1.4.3",
            "--canary",
            "20",
            "--dry-run",
            "-o",
            "json",
        ],
    )
    .success();
    ns.kubectl(&["get", "deployment", "imagestorage-web-canary"])
        .code(1);

    // No ingress that can weigh releases: the share is the canary's part of the pods, said plainly.
    let run = deploy(&ns, dir, &["--tag", "1.4.3", "--canary", "20"]).success();
    run.stdout_has("a browser may see both releases");
    let status = ns
        .rails(dir, &["canary", "status", "-o", "json"])
        .success()
        .json();
    assert_eq!(status["routing"], "replica-ratio", "{status}");
    assert_eq!(status["sticky"], false, "{status}");
    assert_eq!(status["releases"][1]["share"], 50.0, "{status}");
    let again = deploy(&ns, dir, &["--tag", "1.4.4", "--canary", "20"]).code(1);
    again.stderr_has("a canary of `imagestorage` is already running");
    again.stderr_has("`kubectl rails canary abort`");
    ns.rails(dir, &["canary", "abort"]).success();
    ns.kubectl(&["get", "deployment", "imagestorage-web-canary"])
        .code(1);
}

/// The requests one deploy of the 3-replica app sent, from the apiserver's audit log: one
/// `verb resource name` line per request of the plugin in the namespace since `since`.
fn deploy_requests(ns: &TestNs, since: &str) -> Vec<String> {
    plugin_audit_events(ns)
        .into_iter()
        .filter(|e| {
            let verb = e["verb"].as_str().unwrap_or_default();
            // A watch is logged when its answer starts, anything else when it completes.
            let stage = if verb == "watch" {
                "ResponseStarted"
            } else {
                "ResponseComplete"
            };
            e["stage"] == stage
                && e["objectRef"]["namespace"] == ns.name.as_str()
                && e["requestReceivedTimestamp"].as_str().unwrap_or_default() >= since
        })
        .map(|e| {
            format!(
                "{} {} {}",
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["resource"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Now, as the audit log writes its times (microseconds), to compare them as text.
fn audit_now() -> String {
    date_utc(&["+%Y-%m-%dT%H:%M:%S.%6NZ"])
}

/// A deploy reads each Secret once (not once per question asked of it), plans from one
/// listing per kind instead of a read per object, and does not read its own lease back before
/// each write while it has just renewed it: the first deploy of the 3-replica app sent 74
/// requests and a redeploy 73; then 54 and 53 (with HTTPRoutes, 55 and 54); now at most 47
/// each, since the summary comes from the watched rollout and one listing of the app's
/// ConfigMaps gives the history, the maintenance switch and pruning's ConfigMaps (#31).
#[test]
fn a_deploy_reads_each_secret_once_and_no_object_one_by_one() {
    let ns = TestNs::new("requests");
    let app = rails71_app(&ns, "3");
    // The shape the request figures of BENCHMARKS.md were measured on: no asset server (its
    // five objects add their own dry runs and applies).
    remove_top_level_key(&app.path().join("config/kubernetes.yml"), "assets");
    for tag in ["r-1", "r-2"] {
        let since = audit_now();
        ns.rails(
            app.path(),
            &["deploy", "--no-input", "--timeout", "120s", "--tag", tag],
        )
        .success();
        // The audit log is written as each request ends; the last ones land just after.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let sent = deploy_requests(&ns, &since);
        let count = |line: &str| sent.iter().filter(|s| s.as_str() == line).count();
        for secret in ["imagestorage-secrets", "imagestorage-registry"] {
            assert_eq!(
                count(&format!("get secrets {secret}")),
                1,
                "{tag}: Secret `{secret}` read once:\n{sent:#?}"
            );
        }
        let applied: std::collections::BTreeSet<String> = sent
            .iter()
            .filter_map(|s| s.strip_prefix("patch "))
            .filter(|s| !s.starts_with("secrets "))
            .map(str::to_string)
            .collect();
        assert!(
            applied.len() >= 7,
            "{tag}: the release's objects: {applied:?}"
        );
        // Up to the release record: the status table printed after it reads what it shows.
        let planning: Vec<&String> = sent
            .iter()
            .take_while(|s| !s.starts_with("create configmaps imagestorage-release-v"))
            .collect();
        for object in &applied {
            let line = format!("get {object}");
            assert_eq!(
                planning.iter().filter(|s| ***s == line).count(),
                0,
                "{tag}: `{object}` planned without a read of its own:\n{sent:#?}"
            );
        }
        let lease_reads = sent.iter().filter(|s| s.starts_with("get leases")).count();
        assert!(
            lease_reads <= 2,
            "{tag}: the lease read {lease_reads} times:\n{sent:#?}"
        );
        assert!(
            sent.len() <= 47,
            "{tag}: {} requests:\n{sent:#?}",
            sent.len()
        );
    }
}
