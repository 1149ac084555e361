//! `scale`, `autoscale`, `status` and `destroy` against the real test control plane.

use crate::deploy::{deployed_rails71, rails71_app};
use crate::support::{TestNs, spawn_for_stdout, wait_for};

fn web_nodes(ns: &TestNs) -> Vec<String> {
    let out = ns.pods(
        "app.kubernetes.io/component=web",
        "{.items[*].spec.nodeName}",
    );
    let mut nodes: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

#[test]
fn scale_spreads_pods_and_the_next_deploy_keeps_the_count() {
    let (ns, app) = deployed_rails71("scale", "1");
    let run = ns.rails(app.path(), &["scale", "web=3"]).success();
    run.stderr_has("scaled `web` to 3");
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(
        spec.contains("  replicas: 3\n"),
        "the spec keeps the count:\n{spec}"
    );
    ns.kubectl(&[
        "rollout",
        "status",
        "deployment/imagestorage-web",
        "--timeout=60s",
    ])
    .success();

    let wide = ns
        .rails(app.path(), &["status", "-o", "wide"])
        .success()
        .stdout;
    let header: Vec<&str> = wide
        .lines()
        .find(|l| l.trim_start().starts_with("POD "))
        .expect("a pods table")
        .split_whitespace()
        .collect();
    let node_column = header.iter().position(|h| *h == "NODE").unwrap();
    assert_eq!(
        header[node_column + 1..],
        ["IP", "IMAGE"],
        "wide adds IP and IMAGE"
    );
    let nodes: std::collections::BTreeSet<&str> = wide
        .lines()
        .filter(|l| l.trim_start().starts_with("imagestorage-web-"))
        .filter_map(|l| l.split_whitespace().nth(node_column))
        .collect();
    assert_eq!(nodes.len(), 3, "status shows 3 nodes:\n{wide}");
    assert_eq!(web_nodes(&ns).len(), 3);

    ns.rails(app.path(), &["deploy", "--no-input", "--tag", "1.4.3"])
        .success();
    let replicas = ns.jsonpath("deployment", "imagestorage-web", "{.spec.replicas}");
    assert_eq!(replicas, "3", "the next deploy keeps 3 replicas");
}

#[test]
fn autoscale_creates_an_hpa_the_apiserver_accepts_and_off_removes_it() {
    let (ns, app) = deployed_rails71("autoscale", "2");
    let run = ns
        .rails(
            app.path(),
            &[
                "autoscale",
                "web",
                "--min",
                "2",
                "--max",
                "10",
                "--cpu",
                "70",
            ],
        )
        .success();
    run.stderr_has("autoscales from 2 to 10 replicas at 70% CPU");
    let hpa = ns.jsonpath("hpa", "imagestorage-web", "{.spec.minReplicas}/{.spec.maxReplicas}/{.spec.metrics[0].resource.target.averageUtilization}");
    assert_eq!(hpa, "2/10/70");
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(
        spec.contains("  autoscale: {min: 2, max: 10, cpu: 70}\n"),
        "{spec}"
    );
    // With an autoscaler, deploys leave the replica count alone; scale warns.
    ns.rails(app.path(), &["deploy", "--no-input", "--tag", "1.4.3"])
        .success();
    let status = ns.rails(app.path(), &["status"]).success().stdout;
    assert!(status.contains("Autoscaler web: 2-10 replicas"), "{status}");
    let run = ns.rails(app.path(), &["scale", "4"]).success();
    run.stderr_has("an autoscaler manages `web`");

    ns.rails(app.path(), &["autoscale", "web", "--off"])
        .success();
    let left = ns.kubectl(&["get", "hpa", "-o", "name"]).success().stdout;
    assert_eq!(left.trim(), "");
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(!spec.contains("autoscale:"), "{spec}");
}

/// With `-d`, spec edits go to the destination's overlay, never to the base spec that every
/// destination reads; what an overlay cannot do (remove a base entry) is refused, naming where.
#[test]
fn with_a_destination_edits_go_to_its_overlay_not_the_base() {
    let (ns, app) = deployed_rails71("scale-dest", "1");
    let dir = app.path();
    let base_path = dir.join("config/kubernetes.yml");
    let overlay_path = dir.join("config/kubernetes.production.yml");
    std::fs::write(
        &overlay_path,
        format!("namespace: {}\nweb: {{replicas: 2}}\n", ns.name),
    )
    .unwrap();
    let base = std::fs::read_to_string(&base_path).unwrap();
    let read_overlay = || std::fs::read_to_string(&overlay_path).unwrap();

    let run = ns
        .rails(dir, &["-d", "production", "scale", "web=3"])
        .success();
    run.stderr_has("kubernetes.production.yml`, so the next deploy keeps these counts");
    assert_eq!(
        std::fs::read_to_string(&base_path).unwrap(),
        base,
        "the base spec is untouched"
    );
    assert!(read_overlay().contains("replicas: 3"), "{}", read_overlay());
    assert_eq!(
        ns.jsonpath("deployment", "imagestorage-web", "{.spec.replicas}"),
        "3"
    );
    let rendered = ns
        .rails(dir, &["-d", "production", "render"])
        .success()
        .stdout;
    assert!(rendered.contains("replicas: 3"), "{rendered}");

    ns.rails(dir, &["-d", "production", "env", "set", "FEATURE_X=on"])
        .success()
        .stderr_has("kubernetes.production.yml`");
    assert!(
        read_overlay().contains("FEATURE_X: \"on\""),
        "{}",
        read_overlay()
    );
    assert_eq!(std::fs::read_to_string(&base_path).unwrap(), base);

    // The base's env shows through an overlay, which cannot delete it: refused, nothing written.
    let before = read_overlay();
    let refused = ns
        .rails(dir, &["-d", "production", "env", "unset", "RAILS_ENV"])
        .code(1);
    refused.stderr_has("`env.RAILS_ENV` is set in the base spec");
    assert_eq!(read_overlay(), before);
    assert_eq!(std::fs::read_to_string(&base_path).unwrap(), base);
}

#[test]
fn destroy_removes_the_app_and_keeps_the_secret() {
    let (ns, app) = deployed_rails71("destroy", "2");
    let refused = ns.rails(app.path(), &["destroy", "--no-input"]).code(2);
    refused.stderr_has("pass `--yes`");
    let run = ns.rails(app.path(), &["destroy", "--yes"]).success();
    run.stderr_has("kept imagestorage-secrets, imagestorage-registry");
    let left = ns
        .kubectl(&[
            "get",
            "deploy,svc,ingress,pdb,hpa,job,configmap",
            "-l",
            "app.kubernetes.io/instance=imagestorage",
            "-o",
            "name",
        ])
        .success()
        .stdout;
    assert_eq!(left.trim(), "", "none of the app's objects remain");
    ns.kubectl(&["get", "secret", "imagestorage-secrets"])
        .success();
    ns.rails(app.path(), &["destroy", "--yes", "--include-secrets"])
        .success();
    assert!(ns.kubectl(&["get", "secret", "imagestorage-secrets"]).code != 0);
}

/// A Lease `depot-deploy` held by `holder`, renewed at `renewed` for `seconds`.
fn deploy_lease(holder: &str, renewed: &str, seconds: u32) -> String {
    format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: depot-deploy}}\nspec: {{holderIdentity: {holder}, leaseDurationSeconds: {seconds}, acquireTime: '{renewed}', renewTime: '{renewed}'}}\n"
    )
}

/// `destroy` on an app with cron entries and an accessory removes all that the app created:
/// CronJobs, the accessory's StatefulSet and Service; with `--include-secrets` its password
/// Secret; with `--include-volumes` the claim its StatefulSet's template made. It never
/// deletes the lease of a live deploy (it refuses, deleting nothing); a crashed deploy's
/// expired lease is taken, then removed.
#[test]
fn destroy_removes_cron_jobs_accessories_their_secrets_and_claims() {
    let ns = TestNs::restricted("destroy-all");
    let app = crate::kamal::deployable(&ns);
    let dir = app.path();
    ns.rails(dir, &["accessory", "add", "postgres"]).success();
    ns.rails(
        dir,
        &["deploy", "--no-input", "--timeout", "120s", "--skip-hooks"],
    )
    .success();
    // The StatefulSet controller makes the accessory's claim from its template.
    let claim = "data-depot-postgres-0";
    let made = (0..60).any(|_| {
        let found = ns.kubectl(&["get", "pvc", claim]).code == 0;
        if !found {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        found
    });
    assert!(made, "the StatefulSet made its claim `{claim}`");
    let everything = "deploy,statefulset,svc,ingress,pdb,hpa,job,cronjob,configmap";
    let app_objects = || {
        ns.kubectl(&[
            "get",
            everything,
            "-l",
            "app.kubernetes.io/instance=depot",
            "-o",
            "name",
        ])
        .success()
        .stdout
    };
    let before = app_objects();
    for object in [
        "cronjob.batch/depot-cron-report-send-daily",
        "statefulset.apps/depot-postgres",
        "service/depot-postgres",
    ] {
        assert!(before.contains(object), "{object} in:\n{before}");
    }

    // A live deploy of someone else holds the lease: nothing is deleted, the lease stays.
    ns.apply(&deploy_lease(
        "someone@elsewhere",
        "2099-01-01T00:00:00.000000Z",
        30,
    ))
    .success();
    let refused = ns.rails(dir, &["destroy", "--yes"]).code(1);
    refused.stderr_has("another deploy of `depot` is running (held by someone@elsewhere");
    refused.stderr_has("nothing was deleted");
    assert_eq!(app_objects(), before, "nothing was deleted");
    assert_eq!(
        ns.jsonpath("lease", "depot-deploy", "{.spec.holderIdentity}"),
        "someone@elsewhere"
    );

    // A crashed deploy's lease has expired: destroy takes it, and removes it with the rest.
    ns.apply(&deploy_lease(
        "crashed@elsewhere",
        "2000-01-01T00:00:00.000000Z",
        30,
    ))
    .success();
    let run = ns.rails(dir, &["destroy", "--yes"]).success();
    run.stderr_has("kept depot-secrets, depot-registry, depot-postgres");
    run.stderr_has("kept volume claims");
    assert_eq!(app_objects().trim(), "", "none of the app's objects remain");
    assert!(
        ns.kubectl(&["get", "lease", "depot-deploy"]).code != 0,
        "the lease is gone"
    );
    ns.kubectl(&["get", "secret", "depot-postgres"]).success();
    ns.kubectl(&["get", "pvc", claim, "depot-storage"])
        .success();

    ns.rails(
        dir,
        &["destroy", "--yes", "--include-secrets", "--include-volumes"],
    )
    .success();
    let secrets = ns.secrets();
    for secret in ["depot-secrets", "depot-registry", "depot-postgres"] {
        assert!(
            !secrets.contains(&format!("secret/{secret}\n")),
            "{secret} is gone: {secrets}"
        );
    }
    ns.kubectl(&[
        "wait",
        "--for=delete",
        &format!("pvc/{claim}"),
        "pvc/depot-storage",
        "--timeout=60s",
    ])
    .success();
}

#[test]
fn status_output_snapshot() {
    let (ns, app) = deployed_rails71("status", "2");
    // The test cluster's ingress controller writes the address a moment after the deploy.
    ns.kubectl(&[
        "wait",
        "ingress/imagestorage",
        "--for=jsonpath={.status.loadBalancer.ingress[0].ip}=127.0.0.1",
        "--timeout=30s",
    ])
    .success();
    let out = ns.rails(app.path(), &["status"]).success().stdout;
    insta::with_settings!({filters => vec![
        (r"t-status-\d+-\d+", "[namespace]"),
        (r"imagestorage-(web|worker|assets)-[a-z0-9]+-[a-z0-9]{5}", "imagestorage-$1-[pod]"),
        (r"imagestorage-migrate-[a-f0-9]{8}-[a-z0-9]{5}", "imagestorage-migrate-[job]-[pod]"),
        (r"kwok-node-\d", "[node]"),
        (r" \d+[smhd] ", " [age] "),
        (r" +", " "),
    ]}, {
        insta::assert_snapshot!("status", out);
    });
}

#[test]
fn bad_scale_input_is_refused() {
    let ns = TestNs::new("scale-bad");
    let app = rails71_app(&ns, "1");
    let spec_before = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    let run = ns.rails(app.path(), &["scale", "web=-1"]).code(2);
    run.stderr_has("replicas must be 0 or more, not -1 (`web=-1`)");
    let run = ns.rails(app.path(), &["scale", "sidekiq=2"]).code(2);
    run.stderr_has("process `sidekiq` does not exist (the app has web, worker)");
    let run = ns
        .rails(
            app.path(),
            &["autoscale", "web", "--min", "5", "--max", "2"],
        )
        .code(2);
    run.stderr_has("`min` (5) is greater than `max` (2)");
    let run = ns.rails(app.path(), &["scale", "web=3"]).code(1);
    run.stderr_has("`web` is not deployed");
    assert_eq!(
        std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap(),
        spec_before,
        "the spec is untouched"
    );
}

/// `status -w` prints a fresh screen when the app changes: scaling up shows up without a rerun.
#[test]
fn status_watch_follows_a_scale_up() {
    let (ns, app) = deployed_rails71("statusw", "1");
    let (mut child, rx) = spawn_for_stdout(&ns, app.path(), &["status", "-w"]);
    let mut seen = wait_for(&rx, "imagestorage-web-");
    ns.kubectl(&["scale", "deployment/imagestorage-web", "--replicas=3"])
        .success();
    seen.extend(wait_for(&rx, " 3/3 "));
    let _ = child.kill();
    let _ = child.wait();
    let screens = seen
        .iter()
        .filter(|l| l.starts_with("App imagestorage"))
        .count();
    assert!(
        screens >= 2,
        "a new screen per change, not one:\n{}",
        seen.join("\n")
    );
    assert!(
        !seen.iter().any(|l| l.contains('\x1b')),
        "no screen-clearing codes into a pipe"
    );

    // At a terminal the screen is redrawn in place: cursor home and clear, then the new screen.
    use expectrl::Expect;
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["rails", "-n", &ns.name, "status", "-w"])
        .current_dir(app.path())
        .env("PATH", crate::support::path_env())
        .env("KUBECONFIG", &ns.kubeconfig)
        .env("TERM", "xterm");
    let mut p = crate::support::transcribed(expectrl::Session::spawn(cmd).expect("spawn in a pty"));
    p.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    p.expect(" web      3/3").unwrap();
    ns.kubectl(&["scale", "deployment/imagestorage-web", "--replicas=2"])
        .success();
    p.expect("\x1b[H\x1b[2JApp imagestorage")
        .expect("a redraw in place");
    p.expect(" web      2/2").unwrap();
    let _ = p.get_process_mut().exit(true);
}
