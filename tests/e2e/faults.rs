//! Faults while a deploy waits: the apiserver restarting, and Ctrl-C. Images tagged `slowstart`
//! take 8 seconds to become Ready (see tests/cluster/stages.yaml), so the deploy is waiting when
//! the fault comes.

use std::process::Command;

use crate::deploy::{deployed_rails71, rails71_app, web_image};
use crate::support::{TestNs, fault_cluster, finish, root, signal, spawn, wait_for, words};

/// A deploy of a release whose pods take 8 seconds to become Ready.
const SLOW_DEPLOY: &[&str] = &[
    "deploy",
    "--no-input",
    "--tag",
    "2.0.0-slowstart",
    "--timeout",
    "120s",
];

/// The interrupted release, deployed again, ends up running.
fn deploy_again_converges(ns: &TestNs, dir: &std::path::Path) {
    ns.rails(dir, SLOW_DEPLOY).success();
    assert_eq!(
        web_image(ns, "imagestorage-web"),
        "docker-registry.example.dev/imagestorage:2.0.0-slowstart"
    );
}

#[test]
fn an_apiserver_restart_during_the_wait_recovers_or_fails_clearly_and_a_rerun_converges() {
    let (state, kubeconfig) = fault_cluster();
    let ns = TestNs::restricted_on(kubeconfig, "restart");
    let app = rails71_app(&ns, "2");
    ns.rails(app.path(), &["deploy", "--no-input"]).success();

    let (child, rx) = spawn(&ns, app.path(), SLOW_DEPLOY);
    let seen = wait_for(&rx, "waiting for the rollout");
    let restart = Command::new(root().join("tests/cluster/restart-apiserver"))
        .arg("3")
        .env("KUBECTL_RAILS_CLUSTER_STATE", state)
        .output()
        .unwrap();
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let run = finish(child, rx, seen);
    match run.code {
        0 => assert!(
            run.stderr.contains("lost the watch on the cluster"),
            "it saw the outage and recovered:\n{}",
            run.stderr
        ),
        // A failure is the plugin's own, about the cluster it lost, with the exit code of a
        // failure: not any error, not a panic, not a usage code.
        code => assert!(
            code == 1
                && run.stderr.contains("error: ")
                && [
                    "cannot reach the cluster",
                    "lost the watch on the cluster",
                    "could not be renewed",
                    "connection refused",
                    "client error (Connect)",
                ]
                .iter()
                .any(|why| run.stderr.contains(why)),
            "a failure says that the cluster went away (exit {code}):\n{}",
            run.stderr
        ),
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // Either way, running it again converges.
    deploy_again_converges(&ns, app.path());
}

#[test]
fn ctrl_c_while_waiting_exits_130_and_says_where_the_release_is() {
    let (ns, app) = deployed_rails71("sigint", "2");
    let spec_before = std::fs::read(app.path().join("config/kubernetes.yml")).unwrap();

    let (child, rx) = spawn(
        &ns,
        app.path(),
        &["deploy", "--no-input", "--tag", "2.0.0-slowstart"],
    );
    let seen = wait_for(&rx, "waiting for the rollout");
    signal(child.id(), "-INT");
    let run = finish(child, rx, seen);
    assert_eq!(run.code, 130, "{}", run.stderr);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: interrupted"))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "one line says what state the release is in:\n{}",
        run.stderr
    );
    assert!(
        said[0].contains("the rollout goes on in the cluster"),
        "{}",
        said[0]
    );
    run.stderr_has("`kubectl rails deploy` resumes it; `kubectl rails rollback` goes back");
    assert_eq!(
        std::fs::read(app.path().join("config/kubernetes.yml")).unwrap(),
        spec_before,
        "nothing half-written"
    );
    // The lease was given back: the next deploy is not locked out, and converges.
    deploy_again_converges(&ns, app.path());
}

#[test]
fn a_rollout_slower_than_the_timeout_exits_124() {
    let (ns, app) = deployed_rails71("timeout", "1");
    let slow = words("deploy --no-input --migrate skip --tag 3.0.0-slowstart --timeout 2s");
    let run = ns.rails(app.path(), &slow).code(124);
    run.stderr_has("timed out after 2s waiting for the rollout");
    run.stderr_has("kubectl rails status -w");
    let releases = ns.rails(app.path(), &["releases"]).success().stdout;
    assert!(
        releases.contains("v2        failed"),
        "the release history says what happened:\n{releases}"
    );
}
