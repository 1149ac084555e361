//! Leaving Kamal without losing anything: the import report of every key, roles, aliases, hooks
//! and cron, on a fixture that uses every key kubectl-rails knows.

use std::path::Path;

use crate::support::{Run, TestNs, fixture, leaks, rails, words};

const IMAGE: &str = "ghcr.io/acme/depot:1.0.0";

fn initialised(ns: Option<&TestNs>) -> (tempfile::TempDir, Run) {
    let app = fixture("kamal-everything");
    let mut args = vec!["init", "--no-input", "--image", IMAGE];
    if let Some(ns) = ns {
        args.extend(["-n", ns.name.as_str()]);
    }
    let run = rails(app.path(), None, &args).success();
    (app, run)
}

/// The report's lines, from the line after its title to the summary table.
fn report_of(stderr: &str) -> String {
    let start = stderr
        .find("Kamal's config/deploy.yml, key by key:\n")
        .expect("init prints the report")
        + "Kamal's config/deploy.yml, key by key:\n".len();
    let rest = &stderr[start..];
    let end = rest.find("\n  Rails ").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn the_kamal_import_reports_every_key_and_drops_none() {
    let (app, run) = initialised(None);
    let report = report_of(&run.stderr);
    insta::assert_snapshot!("kamal_everything_report", report);
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    insta::assert_snapshot!("kamal_everything_spec", spec);
    // Every top-level key of deploy.yml has a line.
    let deploy = std::fs::read_to_string(app.path().join("config/deploy.yml")).unwrap();
    for key in deploy
        .lines()
        .filter(|l| !l.starts_with([' ', '#', '-']) && l.contains(':'))
        .map(|l| l.split(':').next().unwrap())
    {
        assert!(
            report.lines().any(|l| l.trim_start().starts_with(key)),
            "`{key}` is not in the report:\n{report}"
        );
    }
    run.stderr_has("`config/recurring.yml` stays with Solid Queue");
}

/// `init --gateway`: Kamal's `proxy.ssl` becomes the Gateway listener's business, and the spec
/// routes the hosts through the Gateway with no certificate of its own.
#[test]
fn behind_a_gateway_kamals_ssl_is_the_listeners() {
    let app = fixture("kamal-everything");
    let run = rails(
        app.path(),
        None,
        &[
            "init",
            "--no-input",
            "--image",
            IMAGE,
            "--gateway",
            "gateway-system/public",
        ],
    )
    .success();
    let report = report_of(&run.stderr);
    let ssl = report
        .lines()
        .find(|l| l.trim_start().starts_with("proxy.ssl"))
        .expect("a proxy.ssl line");
    assert!(
        ssl.contains("not needed") && ssl.contains("the Gateway's HTTPS listener's"),
        "{ssl}"
    );
    run.stderr_has("through an HTTPRoute attached to Gateway `gateway-system/public`");
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(
        spec.contains("  gateway: gateway-system/public\n"),
        "{spec}"
    );
    assert!(
        spec.contains("  tls: false\n") && !spec.contains("issuer"),
        "{spec}"
    );
    // `--gateway` with TLS flags is refused before anything is written.
    let refused = rails(
        app.path(),
        None,
        &[
            "init",
            "--no-input",
            "--image",
            IMAGE,
            "--gateway",
            "gw/public",
            "--tls",
        ],
    );
    assert_ne!(refused.code, 0);
    refused.stderr_has("--tls");
}

pub(crate) fn deployable(ns: &TestNs) -> tempfile::TempDir {
    let (app, _) = initialised(Some(ns));
    leaks::register("Depot-Master-Key-19");
    ns.create_secret(
        "depot-secrets",
        &[
            ("RAILS_MASTER_KEY", "Depot-Master-Key-19"),
            ("DEPOT_DATABASE_PASSWORD", "Depot-Db-Pass-19"),
            ("DB_HOST", "db.internal"),
        ],
    );
    leaks::register("Depot-Db-Pass-19");
    ns.create_pull_secret("depot-registry", "ghcr.io", "acme", "x");
    ns.volume_for_claim("depot-storage");
    app
}

fn hooks_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("tmp/hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn hooks_run_around_the_deploy_with_kamals_variables_and_a_failing_one_stops_it() {
    let ns = TestNs::restricted("hooks");
    let app = deployable(&ns);
    let dir = app.path();
    let run = ns
        .rails(dir, &["deploy", "--no-input", "--timeout", "120s"])
        .success();
    run.stderr_has("running the pre-deploy hook");
    let log = hooks_log(dir);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("pre-deploy version=1.0.0 service=depot@1.0.0 performer="),
        "{log:?}"
    );
    assert!(log[0].contains("destination= recorded=20"), "{log:?}");
    assert!(log[0].ends_with(&format!("ns={}", ns.name)), "{log:?}");
    assert!(
        log[1].starts_with("post-deploy version=1.0.0 runtime="),
        "{log:?}"
    );
    assert!(log[1].ends_with("revision=1"), "{log:?}");

    std::fs::write(dir.join("tmp/fail-pre-deploy"), "").unwrap();
    let before = ns
        .kubectl(&["get", "deploy,cm,job", "-o", "name"])
        .success()
        .stdout;
    let failed = ns
        .rails(dir, &["deploy", "--no-input", "--tag", "2.0.0"])
        .code(1);
    failed.stderr_has("the pre-deploy hook failed");
    failed.stderr_has("nothing was deployed");
    failed.stderr_has("pre-deploy | refusing: tmp/fail-pre-deploy is there");
    let after = ns
        .kubectl(&["get", "deploy,cm,job", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(before, after, "the cluster is untouched");
    let image = ns.jsonpath(
        "deployment",
        "depot-web",
        "{.spec.template.spec.containers[0].image}",
    );
    assert_eq!(image, IMAGE);
    // --skip-hooks goes on without them.
    ns.rails(
        dir,
        &["deploy", "--no-input", "--tag", "2.0.0", "--skip-hooks"],
    )
    .success();
    assert_eq!(
        hooks_log(dir).len(),
        3,
        "only the failed pre-deploy was added"
    );
    // A destination's deploy tells its hooks which one, as `kamal deploy -d` does.
    std::fs::remove_file(dir.join("tmp/fail-pre-deploy")).unwrap();
    std::fs::write(
        dir.join("config/kubernetes.staging.yml"),
        format!("namespace: {}\n", ns.name),
    )
    .unwrap();
    ns.rails(dir, &["deploy", "--no-input", "-d", "staging"])
        .success();
    let log = hooks_log(dir);
    assert!(
        log[3].starts_with("pre-deploy ") && log[3].contains(" destination=staging "),
        "{log:?}"
    );

    // Roles became processes with their own env.
    let env = ns.jsonpath(
        "deployment",
        "depot-job",
        "{.spec.template.spec.containers[0].env[0]}",
    );
    assert!(
        env.contains("JOB_CONCURRENCY") && env.contains("\"3\""),
        "{env}"
    );
    let grace = ns.jsonpath(
        "deployment",
        "depot-web",
        "{.spec.template.spec.terminationGracePeriodSeconds}",
    );
    assert_eq!(grace, "45", "drain_timeout");

    // Kamal's aliases run as commands.
    let dbc = ns.rails(dir, &["dbc"]).success();
    assert!(
        dbc.stdout.contains("psql (16.4) simulated"),
        "{}",
        dbc.stdout
    );
    let unknown = ns.rails(dir, &["reboot-db"]).code(2);
    unknown.stderr_has(
        "unrecognized subcommand `reboot-db`: neither a command nor an alias of the spec",
    );
    unknown.stderr_has("the spec's aliases: console, dbc");
}

#[test]
fn cron_entries_run_suspend_and_resume() {
    let ns = TestNs::restricted("cron");
    let app = deployable(&ns);
    let dir = app.path();
    ns.rails(
        dir,
        &["deploy", "--no-input", "--timeout", "120s", "--skip-hooks"],
    )
    .success();
    let list = ns.rails(dir, &["cron", "list"]).success();
    list.stdout_has("report-send-daily");
    list.stdout_has("30 4 * * *");
    let cronjob = |path: &str| ns.jsonpath("cronjob", "depot-cron-report-send-daily", path);
    assert_eq!(cronjob("{.spec.concurrencyPolicy}"), "Forbid");

    let run = ns.rails(dir, &words("cron run report-send-daily --timeout 60s"));
    let run = run.success();
    run.stderr_has("started Job `depot-cron-report-send-daily-manual-");
    run.stderr_has("succeeded");
    let jobs = ns
        .kubectl(&[
            "get",
            "jobs",
            "-l",
            "kubectl-rails.dev/cron=report-send-daily",
            "-o",
            "name",
        ])
        .success()
        .stdout;
    assert_eq!(jobs.lines().count(), 1, "{jobs}");

    ns.rails(dir, &["cron", "suspend", "report-send-daily"])
        .success();
    assert_eq!(cronjob("{.spec.suspend}"), "true");
    let spec = std::fs::read_to_string(dir.join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("    suspend: true\n"), "{spec}");
    // A deploy keeps the choice, and resume undoes it in both places.
    ns.rails(dir, &["deploy", "--no-input", "--skip-hooks"])
        .success();
    ns.rails(dir, &["cron", "resume", "report-send-daily"])
        .success();
    assert_eq!(cronjob("{.spec.suspend}"), "false");
    let unknown = ns.rails(dir, &["cron", "run", "nightly"]).code(2);
    unknown.stderr_has("`nightly` is not a `cron:` entry of the spec (it has depot-sweep-carts, report-send-daily)");
}

/// A Kamal accessory run in the cluster: the objects pass the `restricted` Pod Security Standard
/// in a server-side dry run, the password lives in a Secret of its own, and the app's
/// `DATABASE_URL` points at the accessory.
#[test]
fn an_accessory_added_in_the_cluster_passes_restricted_and_wires_the_app() {
    let ns = TestNs::restricted("accessory");
    let (app, _) = initialised(Some(&ns));
    let dir = app.path();
    // The app already reaches a database: its pods keep that URL until a deploy rolls out the
    // accessory (#27 M8), so the app Secret is not written.
    let old_url = "postgres://depot:Old-Db-Pass-31@managed.example/depot";
    leaks::register("Old-Db-Pass-31");
    ns.create_secret("depot-secrets", &[("DATABASE_URL", old_url)]);
    ns.rails(dir, &["accessory", "add", "postgres", "--size", "2Gi"])
        .code(2)
        .stderr_has("DATABASE_URL");
    let run = ns
        .rails(
            dir,
            &["accessory", "add", "postgres", "--size", "2Gi", "--yes"],
        )
        .success();
    run.stderr_has("added accessory `postgres` (postgres:16, 2Gi volume)");
    run.stderr_has("its password is in Secret `depot-postgres`");
    let spec = std::fs::read_to_string(dir.join("config/kubernetes.yml")).unwrap();
    assert!(
        spec.contains(
            "accessories:\n  postgres: {kind: postgres, image: \"postgres:16\", size: 2Gi}\n"
        ),
        "{spec}"
    );
    ns.rails(dir, &["accessory", "add", "redis"]).success();
    let url = ns.jsonpath("secret", "depot-secrets", "{.data.DATABASE_URL}");
    use base64::Engine;
    let url = base64::engine::general_purpose::STANDARD
        .decode(url)
        .unwrap();
    // Compared without printing: the new URL would hold the accessory's password.
    assert!(
        url == old_url.as_bytes(),
        "the live app Secret is unchanged"
    );
    let keys = ns.jsonpath("secret", "depot-secrets", "{.data}");
    assert!(!keys.contains("REDIS_URL"), "{keys}");
    let rendered = ns.rails(dir, &["render", "-o", "json"]).success().json();
    let web = rendered["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "depot-web")
        .unwrap();
    let env = &web["spec"]["template"]["spec"]["containers"][0]["env"];
    let value_of = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {env}"))
            .clone()
    };
    assert_eq!(
        value_of("DATABASE_URL")["value"],
        "postgres://depot:$(KUBECTL_RAILS_POSTGRES_PASSWORD)@depot-postgres:5432/depot"
    );
    assert_eq!(
        value_of("REDIS_URL")["value"],
        "redis://:$(KUBECTL_RAILS_REDIS_PASSWORD)@depot-redis:6379/0"
    );
    assert_eq!(
        value_of("KUBECTL_RAILS_POSTGRES_PASSWORD")["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "depot-postgres", "key": "PASSWORD", "optional": false})
    );
    let password = ns.jsonpath("secret", "depot-postgres", "{.data.PASSWORD}");
    assert!(!password.is_empty());
    // Adding again keeps the password; the name must differ.
    ns.rails(dir, &["accessory", "add", "postgres"])
        .code(2)
        .stderr_has("already has accessory `postgres`");

    let yaml = ns.rails(dir, &["render"]).success().stdout;
    for kind in [
        "kind: StatefulSet",
        "name: depot-postgres",
        "name: depot-redis",
        "image: postgres:16",
    ] {
        assert!(yaml.contains(kind), "{kind} in\n{yaml}");
    }
    let applied = crate::support::kubectl_with_stdin(
        &ns.kubeconfig,
        &[
            "-n",
            &ns.name,
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            "-",
        ],
        Some(&yaml),
    );
    assert_eq!(
        applied.code, 0,
        "the apiserver refused a rendered object:\n{}",
        applied.stderr
    );
    assert!(
        !applied.stderr.contains("would violate PodSecurity"),
        "the StatefulSet's pod template breaks `restricted`:\n{}",
        applied.stderr
    );
    assert!(
        applied
            .stdout
            .contains("statefulset.apps/depot-postgres serverside-applied (server dry run)"),
        "{}",
        applied.stdout
    );
}

/// Hooks (#27 M3): found from a relative `-C`; stdout and stderr shown as they come, in order; a
/// line that is not UTF-8 does not kill the hook; what the pre-deploy hook prints is masked; it
/// runs while this deploy holds the lease; one that hangs is stopped at `--timeout`.
#[test]
fn hooks_run_from_a_relative_app_dir_live_masked_and_inside_the_lease() {
    let ns = TestNs::restricted("hooks-live");
    let app = deployable(&ns);
    let hook = app.path().join(".kamal/hooks/pre-deploy");
    std::fs::write(
        &hook,
        "#!/bin/sh\n\
         echo \"holder=$(kubectl get lease depot-deploy -n \"$KUBECTL_RAILS_NAMESPACE\" -o 'jsonpath={.spec.holderIdentity}' 2>&1)\"\n\
         echo first\n\
         sleep 0.5\n\
         echo second, on stderr >&2\n\
         sleep 0.5\n\
         echo third\n\
         printf 'not text \\377\\376 here\\n'\n\
         echo 'the key is Depot-Master-Key-19'\n\
         echo done\n",
    )
    .unwrap();
    let (parent, name) = (
        app.path().parent().unwrap(),
        app.path().file_name().unwrap().to_str().unwrap(),
    );
    let run = ns
        .rails(
            parent,
            &["-C", name, "deploy", "--no-input", "--timeout", "120s"],
        )
        .success();
    let at = |needle: &str| {
        run.stderr
            .find(&format!("pre-deploy | {needle}"))
            .unwrap_or_else(|| panic!("{needle:?} shown:\n{}", run.stderr))
    };
    assert!(at("first") < at("second, on stderr"), "{}", run.stderr);
    assert!(at("second, on stderr") < at("third"), "{}", run.stderr);
    at("not text");
    at("done");
    at("the key is [secret RAILS_MASTER_KEY]");
    let holder = &run.stderr[at("holder=")..];
    let holder = holder
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("pre-deploy | holder=");
    assert!(
        !holder.is_empty() && !holder.contains("NotFound"),
        "the lease is held while the hook runs: {holder}"
    );

    std::fs::write(&hook, "#!/bin/sh\necho waiting\nsleep 60\n").unwrap();
    let started = std::time::Instant::now();
    let stuck = ns
        .rails(
            app.path(),
            &["deploy", "--no-input", "--tag", "2.0.0", "--timeout", "3s"],
        )
        .code(1);
    stuck.stderr_has("the pre-deploy hook did not finish within 3s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "stopped at the timeout, not when the hook ends: {:?}",
        started.elapsed()
    );
}
