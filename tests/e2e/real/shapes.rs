//! Image shapes real apps have, on the real node, as `init` reads them and Docker runs them: an
//! image that starts as root and drops to its user after a `chown`, and a Puma that binds
//! loopback unless told otherwise. Each answers through the ingress, and `logs` shows its
//! requests.

use super::{RealNode, deploy, title_of, variant_app, version_on};
use crate::support::{TestNs, kubectl};

/// The spec `init` wrote, as JSON.
fn spec_of(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("config/kubernetes.yml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The page answers with `version`, and `kubectl rails logs` shows the request that fetched it.
fn serves_and_logs(node: &RealNode, ns: &TestNs, dir: &std::path::Path, host: &str, version: &str) {
    let (status, page) = node.first_page(host);
    assert_eq!(status, 200, "{page}");
    assert_eq!(title_of(&page), Some("Blog"), "{page}");
    assert_eq!(version_on(&page).as_deref(), Some(version), "{page}");
    let logs = ns.rails(dir, &["logs", "--tail", "200"]).success();
    let all = format!("{}{}", logs.stdout, logs.stderr);
    assert!(
        all.contains("Started GET \"/\""),
        "`logs` shows the request the page came from:\n{all}"
    );
}

#[test]
fn an_image_that_starts_as_root_and_drops_to_its_user_boots_and_serves() {
    let (node, _alone) = RealNode::take();
    let host = &format!("rootstart-{}.example.com", std::process::id());
    // Such pods pass the baseline Pod Security Standard, not restricted: a namespace that
    // enforces baseline admits them.
    let ns = TestNs::new("real-rootstart");
    kubectl(
        &ns.kubeconfig,
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=baseline",
        ],
    )
    .success();
    let url = node.database("rootstart");
    let app = variant_app(
        node,
        &ns,
        host,
        "1",
        &url,
        Some("root-entrypoint"),
        "4.0.0-root-entrypoint",
    );
    let dir = app.path();
    let spec = spec_of(dir);
    assert_eq!(
        spec["uid"], 0,
        "the pods start as root, as Docker runs the image"
    );

    deploy(&ns, dir, &[]).success();
    serves_and_logs(node, &ns, dir, host, "4.0.0");
    // The entrypoint gave tmp/ to `rails` and the server runs as it: its pid file is rails'.
    let owner = ns
        .rails(
            dir,
            &[
                "exec",
                "--",
                "stat",
                "-c",
                "%U",
                "/rails/tmp/pids/server.pid",
            ],
        )
        .success();
    assert_eq!(owner.stdout.trim(), "rails", "{}", owner.stderr);
}

#[test]
fn a_puma_that_binds_loopback_by_default_is_told_to_listen_on_all_addresses() {
    let (node, _alone) = RealNode::take();
    let host = &format!("loopback-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-loopback");
    let url = node.database("loopback");
    let app = variant_app(
        node,
        &ns,
        host,
        "1",
        &url,
        Some("loopback"),
        "5.0.0-loopback",
    );
    let dir = app.path();
    assert_eq!(spec_of(dir)["env"]["BIND_ADDRESS"], "0.0.0.0");
    // A secret that is a file (a JSON credential): mounted read-only where the spec says.
    let credential = format!("{{\"private_key\": \"k{}x\"}}\n", std::process::id());
    crate::support::leaks::register(&credential);
    std::fs::write(dir.join("gcp.json"), &credential).unwrap();
    crate::support::edit_spec(
        dir,
        "secrets:\n- RAILS_MASTER_KEY\n- DATABASE_URL\n",
        "secrets:\n  RAILS_MASTER_KEY: {}\n  DATABASE_URL: {}\n  GCP_CREDENTIALS: {file: /rails/config/gcp.json}\n",
    );
    ns.rails(
        dir,
        &[
            "secrets",
            "set",
            "GCP_CREDENTIALS",
            "--from-file",
            "gcp.json",
        ],
    )
    .success();

    deploy(&ns, dir, &[]).success();
    serves_and_logs(node, &ns, dir, host, "5.0.0");
    // Its digest, not its text: the leak check would rightly refuse the text in any output.
    let sum = ns
        .rails(dir, &["exec", "--", "sha256sum", "/rails/config/gcp.json"])
        .success();
    let expected = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(credential.as_bytes()))
    };
    assert!(sum.stdout.starts_with(&expected), "{}", sum.stdout);
    let write = ns.rails(
        dir,
        &["exec", "--", "sh", "-c", "echo x >> /rails/config/gcp.json"],
    );
    assert_ne!(write.code, 0, "the file is read-only");
}

/// Rails 8's default shape on a real pod: SQLite in `/rails/storage`, a volume the test cluster's
/// default StorageClass makes on the real node, jobs run inside Puma, the heartbeat worker
/// writing beside web. Its rows survive a redeploy and a pod restart.
#[test]
fn a_sqlite_app_keeps_its_rows_on_its_volume_across_a_redeploy_and_a_restart() {
    let (node, _alone) = RealNode::take();
    let host = &format!("sqlite-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-sqlite");
    // No DATABASE_URL: the spec of this app names none, so the import leaves it out.
    let app = variant_app(
        node,
        &ns,
        host,
        "1",
        "unused",
        Some("sqlite"),
        "6.0.0-sqlite",
    );
    let dir = app.path();
    let spec = spec_of(dir);
    assert_eq!(spec["volume"]["mount_path"], "/rails/storage");
    assert_eq!(spec["web"]["replicas"], 1);
    assert!(
        !spec["secrets"].to_string().contains("DATABASE_URL"),
        "{spec}"
    );
    // No class named: the cluster's default one (the real node's provisioner) makes the volume.
    assert!(spec["volume"]["storage_class"].is_null(), "{spec}");
    deploy(&ns, dir, &[]).success();
    let classes = ns
        .kubectl(&[
            "get",
            "pvc",
            "-o",
            "jsonpath={.items[*].spec.storageClassName}",
        ])
        .success()
        .stdout;
    assert_eq!(classes, "real-local", "the claim took the default class");
    serves_and_logs(node, &ns, dir, host, "6.0.0");
    let count = |what: &str| -> String {
        ns.rails(dir, &["exec", "--", "bin/rails", "runner", what])
            .success()
            .stdout
            .trim()
            .to_string()
    };
    // Jobs run inside Puma (the variant's plugin, as Solid Queue's): a job queued from another
    // process is done by a web pod, not by the heartbeat worker.
    count("Job.create!(name: 'queued-by-the-test')");
    let web_pods = ns.pod_names("app.kubernetes.io/component=web");
    let mut done_by = String::new();
    RealNode::eventually(
        std::time::Duration::from_secs(30),
        "a web pod runs the queued job",
        || {
            done_by = count("puts Job.find_by(name: 'queued-by-the-test')&.done_by.to_s");
            !done_by.is_empty()
        },
    );
    assert!(
        web_pods.lines().any(|p| p == format!("pod/{done_by}")),
        "the job was done by `{done_by}`, not by a web pod ({web_pods})"
    );
    count("Post.create!(title: 'kept', body: 'on the volume')");
    assert_eq!(count("puts Post.where(title: 'kept').count"), "1");
    assert_eq!(
        ns.jsonpath("pvc", "blog-storage", "{.status.phase}"),
        "Bound",
        "the provisioner made the volume"
    );

    // A redeploy (a new pod template), then a pod restart: the row is still there.
    ns.rails(dir, &["env", "set", "REDEPLOYED=1"]).success();
    deploy(&ns, dir, &[]).success();
    assert_eq!(count("puts Post.where(title: 'kept').count"), "1");
    ns.kubectl(&[
        "delete",
        "pods",
        "-l",
        "app.kubernetes.io/component=web",
        "--wait=true",
    ])
    .success();
    RealNode::eventually(
        std::time::Duration::from_secs(90),
        "a new web pod is Ready",
        || {
            ns.pods(
                "app.kubernetes.io/component=web",
                "{.items[*].status.containerStatuses[0].ready}",
            )
            .trim()
                == "true"
        },
    );
    assert_eq!(count("puts Post.where(title: 'kept').count"), "1");
    // The worker wrote its heartbeats to the same database.
    let beats: u64 = count("puts Heartbeat.count").parse().unwrap_or(0);
    assert!(
        beats > 0,
        "the heartbeat worker writes to the volume's database"
    );
}
