//! Faults while a deploy waits: the apiserver restarting, and Ctrl-C. Images tagged `slowstart`
//! take 8 seconds to become Ready (see tests/cluster/stages.yaml), so the deploy is waiting when
//! the fault comes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::deploy::rails71_app;
use crate::support::{Run, TestNs, fault_cluster, path_env, root};

/// Starts `kubectl rails -n NS ARGS` and returns it with a channel of its stderr lines.
fn spawn(ns: &TestNs, dir: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new("kubectl")
        .arg("rails")
        .args(["-n", &ns.name])
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env())
        .env("KUBECONFIG", &ns.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits for a stderr line containing `marker`, returning every line read so far.
fn wait_for(rx: &mpsc::Receiver<String>, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let found = line.contains(marker);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(e) => panic!("no `{marker}` on stderr ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

fn finish(child: Child, rx: mpsc::Receiver<String>, mut seen: Vec<String>) -> Run {
    let out = child.wait_with_output().unwrap();
    seen.extend(rx.iter());
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: seen.join("\n"),
    }
}

fn web_image(ns: &TestNs) -> String {
    ns.kubectl(&[
        "get",
        "deployment",
        "imagestorage-web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
    .success()
    .stdout
}

#[test]
fn an_apiserver_restart_during_the_wait_recovers_or_fails_clearly_and_a_rerun_converges() {
    let (state, kubeconfig) = fault_cluster();
    let ns = TestNs::restricted_on(kubeconfig, "restart");
    let app = rails71_app(&ns, "2");
    ns.rails(app.path(), &["deploy", "--no-input"]).success();

    let (child, rx) = spawn(
        &ns,
        app.path(),
        &[
            "deploy",
            "--no-input",
            "--tag",
            "2.0.0-slowstart",
            "--timeout",
            "120s",
        ],
    );
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
        _ => assert!(
            run.stderr.contains("error: "),
            "a failure says why:\n{}",
            run.stderr
        ),
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // Either way, running it again converges.
    ns.rails(
        app.path(),
        &[
            "deploy",
            "--no-input",
            "--tag",
            "2.0.0-slowstart",
            "--timeout",
            "120s",
        ],
    )
    .success();
    assert_eq!(
        web_image(&ns),
        "docker-registry.example.dev/imagestorage:2.0.0-slowstart"
    );
}

#[test]
fn ctrl_c_while_waiting_exits_130_and_says_where_the_release_is() {
    let ns = TestNs::restricted("sigint");
    let app = rails71_app(&ns, "2");
    ns.rails(app.path(), &["deploy", "--no-input"]).success();
    let spec_before = std::fs::read(app.path().join("config/kubernetes.yml")).unwrap();

    let (child, rx) = spawn(
        &ns,
        app.path(),
        &["deploy", "--no-input", "--tag", "2.0.0-slowstart"],
    );
    let seen = wait_for(&rx, "waiting for the rollout");
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
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
    assert!(
        run.stderr
            .contains("`kubectl rails deploy` resumes it; `kubectl rails rollback` goes back"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(app.path().join("config/kubernetes.yml")).unwrap(),
        spec_before,
        "nothing half-written"
    );
    // The lease was given back: the next deploy is not locked out, and converges.
    ns.rails(
        app.path(),
        &[
            "deploy",
            "--no-input",
            "--tag",
            "2.0.0-slowstart",
            "--timeout",
            "120s",
        ],
    )
    .success();
    assert_eq!(
        web_image(&ns),
        "docker-registry.example.dev/imagestorage:2.0.0-slowstart"
    );
}

#[test]
fn a_rollout_slower_than_the_timeout_exits_124() {
    let ns = TestNs::restricted("timeout");
    let app = rails71_app(&ns, "1");
    ns.rails(app.path(), &["deploy", "--no-input"]).success();
    let run = ns
        .rails(
            app.path(),
            &[
                "deploy",
                "--no-input",
                "--migrate",
                "skip",
                "--tag",
                "3.0.0-slowstart",
                "--timeout",
                "2s",
            ],
        )
        .code(124);
    assert!(
        run.stderr
            .contains("timed out after 2s waiting for the rollout"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("kubectl rails status -w"),
        "{}",
        run.stderr
    );
    let releases = ns.rails(app.path(), &["releases"]).success().stdout;
    assert!(
        releases.contains("v2        failed"),
        "the release history says what happened:\n{releases}"
    );
}
