//! `exec`, `console`, `shell`, `run` and `logs`, through kwok's exec and logs simulation: commands
//! run in `tests/cluster/simulated/app` (a stand-in `bin/rails`), logs come from
//! `tests/cluster/simulated/logs`.

use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect};

use crate::deploy::deployed_rails71;
use crate::support::{Terminal, in_terminal};

#[test]
fn exec_output_and_exit_codes_pass_through() {
    let (ns, app) = deployed_rails71("exec", "3");
    let run = ns
        .rails(app.path(), &["exec", "--", "bin/rails", "db:migrate"])
        .success();
    assert!(
        run.stdout.contains("CreateProducts: migrated"),
        "{}",
        run.stdout
    );
    let run = ns
        .rails(
            app.path(),
            &["exec", "--", "sh", "-c", "echo to-stderr >&2; exit 3"],
        )
        .code(3);
    run.stderr_has("to-stderr");
    assert!(
        !run.stderr.contains("error:"),
        "the remote code is passed on quietly: {}",
        run.stderr
    );
    // Piped stdin reaches the command. (kwok never closes a simulated command's stdin, so the
    // command reads one line rather than waiting for the end of input.)
    let run = crate::support::rails_with_stdin(
        app.path(),
        Some(&ns.kubeconfig),
        &[
            "-n",
            &ns.name,
            "exec",
            "--",
            "sh",
            "-c",
            "head -n 1 | tr a-z A-Z",
        ],
        Some("piped input\n"),
    )
    .success();
    assert_eq!(run.stdout.trim(), "PIPED INPUT");
    let run = ns
        .rails(
            app.path(),
            &[
                "exec",
                "--process",
                "worker",
                "--",
                "bin/rails",
                "runner",
                "Sidekiq",
            ],
        )
        .success();
    assert!(run.stdout.contains("runner: Sidekiq"), "{}", run.stdout);
}

#[test]
fn run_leaves_no_pod_behind() {
    let (ns, app) = deployed_rails71("run", "3");
    let run = ns
        .rails(
            app.path(),
            &["run", "--", "bin/rails", "runner", "Image.count"],
        )
        .success();
    assert!(run.stdout.contains("runner: Image.count"), "{}", run.stdout);
    let run = ns
        .rails(app.path(), &["run", "--", "sh", "-c", "exit 4"])
        .code(4);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // Deletion is asynchronous in Kubernetes: wait for the pods to be gone, then check.
    let mut left = String::new();
    for _ in 0..50 {
        left = ns.pod_names("app.kubernetes.io/component=run");
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(left.trim(), "", "one-off pods are removed");
}

#[test]
fn logs_merge_every_replica() {
    let (ns, app) = deployed_rails71("logs", "3");
    let run = ns
        .rails(app.path(), &["logs", "--process", "web"])
        .success();
    let mut pods: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split(']').next())
        .collect();
    pods.sort();
    pods.dedup();
    assert_eq!(pods.len(), 3, "lines from all 3 replicas:\n{}", run.stdout);
    assert!(run.stdout.contains("Completed 200 OK"), "{}", run.stdout);
    let all = ns.rails(app.path(), &["logs", "--tail", "1"]).success();
    assert_eq!(
        all.stdout.lines().count(),
        4,
        "one line from each of 3 web pods and 1 worker:\n{}",
        all.stdout
    );
}

#[test]
fn no_ready_pod_and_unknown_process_are_clear() {
    let (ns, app) = deployed_rails71("noready", "3");
    let run = ns
        .rails(app.path(), &["exec", "--process", "sidekiq", "--", "true"])
        .code(1);
    run.stderr_has("process `sidekiq` does not exist (the app has web, worker)");
    ns.kubectl(&["scale", "deployment", "imagestorage-worker", "--replicas=0"])
        .success();
    for _ in 0..50 {
        if ns
            .pod_names("app.kubernetes.io/component=worker")
            .trim()
            .is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let run = ns
        .rails(app.path(), &["exec", "--process", "worker", "--", "true"])
        .code(1);
    run.stderr_has("no Ready pod of `worker`");
    run.stderr_has("it has no pods");
    run.stderr_has("hint: see why with `kubectl rails status`");
}

#[test]
fn interactive_console_through_a_pseudo_terminal() {
    let (ns, app) = deployed_rails71("console", "3");
    for (args, note) in [
        (vec!["exec", "--", "bin/rails", "console"], "exec"),
        (vec!["console"], "console"),
    ] {
        let mut p = in_terminal(&ns, app.path(), &args);
        p.expect("Loading production environment")
            .unwrap_or_else(|e| panic!("{note}: {e}"));
        p.expect("shop(prod)> ").unwrap();
        p.send_line("Image.count").unwrap();
        p.expect("=> \"Image.count\"")
            .unwrap_or_else(|e| panic!("{note}: {e}"));
        p.send_line("exit").unwrap();
        p.expect(Eof).unwrap();
    }
}

/// The remote terminal starts at the local size and follows a resize of the local one.
#[test]
fn the_terminal_size_is_passed_on_and_follows_resizes() {
    let (ns, app) = deployed_rails71("resize", "3");
    let mut p = in_terminal(&ns, app.path(), &["exec", "--", "sh"]);
    // Sizes travel beside the typed input, so ask until the expected one shows.
    fn shows(p: &mut Terminal, size: &str) -> bool {
        p.set_expect_timeout(Some(Duration::from_millis(500)));
        let seen = (0..20).any(|_| {
            p.send_line("stty size").unwrap();
            p.expect(size).is_ok()
        });
        p.set_expect_timeout(Some(Duration::from_secs(30)));
        seen
    }
    assert!(
        shows(&mut p, "24 80"),
        "the starting size never reached the remote terminal"
    );
    p.get_process_mut().set_window_size(111, 33).unwrap();
    assert!(
        shows(&mut p, "33 111"),
        "the remote terminal never became 33 rows by 111 columns"
    );
    p.send_line("exit 4").unwrap();
    p.expect(Eof).unwrap();
    assert_eq!(
        p.get_process().wait().ok(),
        Some(WaitStatus::Exited(p.get_process().pid(), 4))
    );
}

/// `--pick` lists the pods; the one chosen is the one the command runs in.
#[test]
fn pick_runs_the_command_in_the_chosen_pod() {
    let (ns, app) = deployed_rails71("pick", "3");
    // kwok closes a simulated terminal the moment its command exits, sometimes before the last
    // output is copied out; the pause lets the output through.
    let mut p = in_terminal(
        &ns,
        app.path(),
        &[
            "-v",
            "exec",
            "--pick",
            "--",
            "sh",
            "-c",
            "echo picked-ok; sleep 1",
        ],
    );
    p.expect("Pod of `web`").unwrap();
    let pod = r"(imagestorage-web-[a-z0-9]+-[a-z0-9]+)";
    let listed = p
        .expect(expectrl::Regex(format!("(?s){pod}.*{pod}.*{pod}")))
        .expect("three pods are listed");
    let second = String::from_utf8_lossy(listed.get(2).unwrap()).into_owned();
    let mut names: Vec<String> = (1..=3)
        .map(|i| String::from_utf8_lossy(listed.get(i).unwrap()).into_owned())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 3, "three different pods: {names:?}");
    p.send("\x1b[B").unwrap(); // arrow down
    p.send("\r").unwrap();
    p.expect(format!("exec in pod `{second}`").as_str())
        .expect("the command runs in the second pod");
    p.expect("picked-ok").unwrap();
    p.expect(Eof).unwrap();
}

/// Ctrl-C while the one-off pod of `run` is starting (here it can never be scheduled) removes
/// it, rather than leaving it, with the app's secrets, to its 12-hour deadline (#27 M11).
#[test]
fn ctrl_c_while_a_one_off_pod_starts_removes_it() {
    use crate::support::{finish, signal, spawn, wait_for};
    let (ns, app) = deployed_rails71("run-interrupt", "1");
    let nowhere =
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"kubectl-rails.dev/nowhere":"true"}}}}}"#;
    ns.kubectl(&[
        "patch",
        "deployment",
        "imagestorage-web",
        "--type",
        "merge",
        "-p",
        nowhere,
    ])
    .success();
    let run_pods = || ns.pod_names("app.kubernetes.io/component=run");
    let (child, rx) = spawn(
        &ns,
        app.path(),
        &["run", "--timeout", "120s", "--", "echo", "never"],
    );
    let seen = wait_for(&rx, "starting a one-off pod");
    let created = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        !run_pods().trim().is_empty()
    });
    assert!(created, "the one-off pod was created");
    signal(child.id(), "-INT");
    let run = finish(child, rx, seen);
    assert_eq!(run.code, 130, "{}", run.stderr);
    run.stderr_has("was removed");
    let mut left = String::new();
    for _ in 0..50 {
        left = run_pods();
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(left.trim(), "", "the one-off pod is gone");
}

/// A deployer that may do anything in the test namespace but watch: every watch it starts is
/// refused with 403. Its name, for `--as`.
fn deployer_without_watch(ns: &crate::support::TestNs) -> String {
    ns.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: no-watch, namespace: {ns}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: no-watch, namespace: {ns}}}\nrules:\n- {{apiGroups: ['*'], resources: ['*'], verbs: [get, list, create, update, patch, delete]}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: no-watch, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: no-watch}}\nsubjects:\n- {{kind: ServiceAccount, name: no-watch, namespace: {ns}}}\n",
        ns = ns.name
    ))
    .success();
    format!("system:serviceaccount:{}:no-watch", ns.name)
}

/// The same refused watch while `cron run` follows its Job is not "Job failed" (with an empty
/// log, while the Job may well succeed): the watch is resumed and the timeout names it (#27 M11).
#[test]
fn a_refused_watch_while_cron_run_follows_its_job_is_not_a_failure() {
    let ns = crate::support::TestNs::restricted("cron-watch");
    let app = crate::kamal::deployable(&ns);
    let dir = app.path();
    ns.rails(
        dir,
        &["deploy", "--no-input", "--timeout", "120s", "--skip-hooks"],
    )
    .success();
    let who = deployer_without_watch(&ns);
    let run = ns.rails(
        dir,
        &[
            "--as",
            &who,
            "cron",
            "run",
            "report-send-daily",
            "--timeout",
            "6s",
        ],
    );
    assert_eq!(run.code, 124, "{}", run.stderr);
    run.stderr_has("did not finish within 6s (the watch on its pod failed:");
    run.stderr_has("forbidden");
}

/// A watch that fails while the one-off pod of `run` starts (here the deployer may list pods
/// but not watch them, so every watch is refused with 403) is neither "Running" nor "Failed":
/// the watch is resumed, and at `--timeout` the run fails naming the watch's last error and
/// removes its pod (#27 M11). Before, the first watch error ended the wait as if the pod ran,
/// and the exec then failed on a pod that had never started.
#[test]
fn a_refused_watch_while_a_one_off_pod_starts_is_named_and_the_pod_removed() {
    let (ns, app) = deployed_rails71("run-watch", "1");
    let nowhere =
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"kubectl-rails.dev/nowhere":"true"}}}}}"#;
    ns.kubectl(&[
        "patch",
        "deployment",
        "imagestorage-web",
        "--type",
        "merge",
        "-p",
        nowhere,
    ])
    .success();
    let who = deployer_without_watch(&ns);
    let run = ns.rails(
        app.path(),
        &[
            "--as",
            &who,
            "run",
            "--timeout",
            "8s",
            "--",
            "echo",
            "never",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("did not start within 8s (the watch on it failed:");
    run.stderr_has("forbidden");
    assert!(!run.stdout.contains("never"), "{}", run.stdout);
    let mut left = String::new();
    for _ in 0..50 {
        left = ns.pod_names("app.kubernetes.io/component=run");
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(left.trim(), "", "the one-off pod is gone");
}

/// `logs -f` follows a container again after it restarts (a new run logs anew), not only the
/// run it first saw (#27 L8).
#[test]
fn logs_follow_a_restarted_container() {
    use crate::support::{signal, spawn_for_stdout, wait_for};
    let (ns, app) = deployed_rails71("logs-restart", "1");
    let pod = ns
        .pod_names("app.kubernetes.io/component=web")
        .trim()
        .trim_start_matches("pod/")
        .to_string();
    let (mut child, rx) = spawn_for_stdout(&ns, app.path(), &["logs", "-f", "--process", "web"]);
    let marker = "Started GET \"/up\" for 10.0.0.1";
    wait_for(&rx, marker);
    // Lines until `marker` shows again, for at most `limit`.
    let until_marker = |limit: Duration| {
        let deadline = std::time::Instant::now() + limit;
        let mut seen = vec![];
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(marker) => return (true, seen),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        (false, seen)
    };
    let (repeated, _) = until_marker(Duration::from_secs(3));
    assert!(!repeated, "the log does not repeat by itself");
    // The container restarts (as the kubelet reports it).
    ns.kubectl(&[
        "patch",
        "pod",
        &pod,
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/status/containerStatuses/0/restartCount","value":1}]"#,
    ])
    .success();
    let (found, seen) = until_marker(Duration::from_secs(20));
    signal(child.id(), "-TERM");
    let _ = child.wait();
    assert!(found, "the restarted container's log is followed: {seen:?}");
}
