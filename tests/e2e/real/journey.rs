//! The seed's journey, end to end on the real node: deploy the example app (migration against
//! PostgreSQL, Ready through the real `/up` with `force_ssl` and host authorization on, a page
//! through the ingress, the worker's heartbeat), work inside it (exec, console, logs, run), roll a
//! new tag out under traffic, and roll it back.

use std::time::Duration;

use expectrl::Expect;

use super::{RealNode, blog_app, deploy, nodes_of, relayed, title_of, version_on};
use crate::support::{TestNs, in_terminal};

#[test]
fn the_example_app_deploys_serves_rolls_forward_and_back_on_the_real_node() {
    let (node, _alone) = RealNode::take();
    // A host of its own: an Ingress of an earlier run may linger while its namespace goes.
    let host = &format!("journey-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-journey");
    let url = node.database("journey");
    let app = blog_app(node, &ns, host, "2", &url);
    let dir = app.path();

    // 1. The deploy: the migration creates the tables in PostgreSQL before any pod serves.
    let run = deploy(&ns, dir, &[]).success();
    assert!(
        run.stdout.starts_with("Deployed blog as release v1"),
        "{}",
        run.stdout
    );
    let migrated = relayed(&run);
    assert!(
        migrated.iter().any(|l| l.contains("CreatePosts: migrated")),
        "the migration's real log is shown: {migrated:?}"
    );
    assert_eq!(
        node.psql("journey", "SELECT count(*) FROM schema_migrations"),
        "2",
        "both migrations are recorded in PostgreSQL"
    );
    assert_eq!(
        node.psql("journey", "SELECT to_regclass('public.posts') IS NOT NULL"),
        "t"
    );
    let real = node.get("REAL_NODE");
    assert_eq!(
        nodes_of(&ns, "web"),
        [real, real],
        "web pods run on the real node"
    );
    // Ready came from the kubelet's real probe of `/up`.
    let ready = ns.pods("app.kubernetes.io/component=web", "{range .items[*]}{.status.containerStatuses[0].ready}/{.spec.containers[0].readinessProbe.httpGet.path} {end}");
    assert_eq!(ready.trim(), "true//up true//up");

    // The page, through the ingress controller, over TLS: force_ssl is satisfied.
    let (status, page) = node.first_page(host);
    assert_eq!(status, 200, "{page}");
    assert_eq!(title_of(&page), Some("Blog"), "{page}");
    assert_eq!(version_on(&page).as_deref(), Some("1.0.0"), "{page}");
    assert_eq!(
        node.plain_http_status(host),
        301,
        "plain HTTP is redirected to HTTPS: force_ssl is on"
    );

    // The worker's heartbeat rows reach PostgreSQL.
    RealNode::eventually(Duration::from_secs(60), "a heartbeat row", || {
        node.psql("journey", "SELECT count(*) FROM heartbeats") != "0"
    });

    // 4. Inside the app, without a pod name.
    node.psql(
        "journey",
        "INSERT INTO posts (title, body, created_at, updated_at) VALUES ('From psql', 'hello', now(), now())",
    );
    let count = node.psql("journey", "SELECT count(*) FROM posts");
    let exec = ns
        .rails(
            dir,
            &["exec", "--", "bin/rails", "runner", "puts Post.count"],
        )
        .success();
    assert_eq!(exec.stdout.trim(), count, "{}", exec.stderr);
    // Host authorization is on: Puma itself, asked from inside the pod, refuses a foreign Host
    // (what the ingress never sends) and serves the app's own; `/up` passes for the probes.
    let status_for = |host: &str, path: &str| {
        let script = format!(
            r#"r = Net::HTTP.new("127.0.0.1", ENV.fetch("PORT", "3000")).get("{path}", "Host" => "{host}", "X-Forwarded-Proto" => "https"); puts r.code"#
        );
        let run = ns
            .rails(dir, &["exec", "--", "ruby", "-rnet/http", "-e", &script])
            .success();
        run.stdout.trim().to_string()
    };
    assert_eq!(
        status_for("evil.test", "/"),
        "403",
        "a foreign Host is blocked"
    );
    assert_eq!(status_for(host, "/"), "200", "the app's own host is served");
    assert_eq!(
        status_for("10.88.0.9", "/up"),
        "200",
        "the probe's path is exempt"
    );

    // Hardened by default (#34): every container's root filesystem is read-only; the app
    // writes only its emptyDirs (`tmp/`, `/tmp`), and the migration ran the same way.
    for component in ["web", "migrate"] {
        let read_only = ns.pods(
            &format!("app.kubernetes.io/component={component}"),
            "{range .items[*]}{.spec.containers[0].securityContext.readOnlyRootFilesystem} {end}",
        );
        assert!(
            !read_only.trim().is_empty() && read_only.split_whitespace().all(|r| r == "true"),
            "{component}: {read_only}"
        );
    }
    let write = |path: &str| {
        ns.rails(
            dir,
            &[
                "exec",
                "--",
                "sh",
                "-c",
                &format!("echo x > {path} && echo wrote"),
            ],
        )
    };
    let refused = write("/rails/written-at-runtime");
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("Read-only file system"),
        "{}",
        refused.stderr
    );
    for writable in ["/rails/tmp/written-at-runtime", "/tmp/written-at-runtime"] {
        write(writable).success().stdout_has("wrote");
    }
    // Liveness asks only the port; readiness the health path.
    let liveness = ns.pods(
        "app.kubernetes.io/component=web",
        "{.items[0].spec.containers[0].livenessProbe.tcpSocket.port}",
    );
    assert_eq!(liveness.trim(), "http");

    let mut console = in_terminal(&ns, dir, &["console"]);
    // A one-off pod starts, then Rails boots: slow when the whole suite shares the machine.
    console.set_expect_timeout(Some(Duration::from_secs(180)));
    console
        .expect("Loading production environment")
        .expect("the console starts in a one-off pod");
    console.set_expect_timeout(Some(Duration::from_secs(60)));
    answer_as_a_terminal_until(&mut console, Some(r"irb\(main\)"));
    console.send_line("1+1").unwrap();
    // irb colours the value: `=> ESC[34m2ESC[0m`.
    answer_as_a_terminal_until(&mut console, Some(r"=> (?:\x1b\[[0-9;]*m)*2\b"));
    // The next prompt first: irb asks the terminal where its cursor is before reading a line.
    answer_as_a_terminal_until(&mut console, Some(r"irb\(main\):002"));
    console.send_line("exit").unwrap();
    // The query may come once more as irb leaves.
    answer_as_a_terminal_until(&mut console, None);

    for _ in 0..6 {
        assert_eq!(node.get_page(host, "/").0, 200);
    }
    let logs = ns
        .rails(dir, &["logs", "-p", "web", "--tail", "400"])
        .success();
    let pods: Vec<String> = ns
        .pods(
            "app.kubernetes.io/component=web",
            "{.items[*].metadata.name}",
        )
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for pod in &pods {
        assert!(
            logs.stdout
                .lines()
                .any(|l| l.starts_with(&format!("[{pod}]")) && l.contains("Started GET \"/\"")),
            "no request line from {pod}:\n{}",
            logs.stdout
        );
    }

    let run = ns
        .rails(
            dir,
            &["run", "--", "bin/rails", "runner", "puts Post.count + 1000"],
        )
        .success();
    assert!(
        run.stdout
            .contains(&format!("{}", 1000 + count.parse::<u32>().unwrap()))
    );
    // Deletion is asynchronous in Kubernetes: wait for the pod to be gone, then check.
    let mut left = String::new();
    for _ in 0..50 {
        left = ns.pod_names("app.kubernetes.io/component=run");
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(left.trim(), "", "`run` leaves no pod behind");

    // 5. A rolling deploy of the second tag under traffic: every answer is 200.
    let traffic = node.request_loop(host, 20);
    std::thread::sleep(Duration::from_secs(2));
    deploy(&ns, dir, &["--tag", "2.0.0"]).success();
    assert!(
        traffic.settle_on("2.0.0", 20, Duration::from_secs(20)),
        "the ingress answers with 2.0.0 after the rollout"
    );
    let (answers, _) = traffic.stop();
    let failed: Vec<_> = answers.iter().filter(|(code, _)| *code != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the rollout: {failed:?}",
        failed.len(),
        answers.len()
    );
    assert!(answers.len() > 100, "the loop ran: {}", answers.len());
    let versions: Vec<&str> = answers.iter().filter_map(|(_, v)| v.as_deref()).collect();
    let mut timeline: Vec<(&str, usize)> = Vec::new();
    for v in &versions {
        match timeline.last_mut() {
            Some((last, n)) if last == v => *n += 1,
            _ => timeline.push((v, 1)),
        }
    }
    assert_eq!(versions.first(), Some(&"1.0.0"), "{timeline:?}");
    assert_eq!(versions.last(), Some(&"2.0.0"), "{timeline:?}");

    // 7. Rollback returns to the first tag, as the ingress shows.
    ns.rails(dir, &["rollback", "--no-input", "--timeout", "180s"])
        .success();
    node.shows_version(host, "1.0.0");
}

/// Waits for the regex `text` (or, with `None`, for the session to end), answering irb's
/// cursor-position queries (`ESC [ 6 n`) as a terminal does: its line editor waits for the answer.
fn answer_as_a_terminal_until(p: &mut crate::support::Terminal, text: Option<&str>) {
    let query = "\x1b\\[6n";
    let wanted = match text {
        Some(text) => format!("{text}|{query}"),
        None => query.to_string(),
    };
    loop {
        let found = match p.expect(expectrl::Regex(wanted.as_str())) {
            Ok(found) => found,
            Err(expectrl::Error::Eof) if text.is_none() => return,
            Err(e) => panic!("waiting for {text:?} in the console: {e}"),
        };
        // expectrl consumes up to the last match in what it read: every query in it is
        // answered, even one read together with the awaited text, or irb waits forever.
        let mut saw_text = false;
        for m in found.matches() {
            if m.ends_with(b"[6n") {
                p.send("\x1b[1;1R").unwrap();
            } else {
                saw_text = true;
            }
        }
        if saw_text {
            return;
        }
    }
}
