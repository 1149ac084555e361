//! The test control plane itself: a real kube-apiserver, controllers, scheduler and kwok nodes.

use crate::support::{TestNs, cluster, fixture, kubectl, kubectl_with_stdin, rails, words};

#[test]
fn kubectl_finds_the_plugin() {
    let run = kubectl(cluster(), &["plugin", "list"]).success();
    run.stdout_has("kubectl-rails");
}

#[test]
fn server_version_is_the_pinned_release() {
    let pinned =
        std::fs::read_to_string(crate::support::root().join("tests/cluster/versions.sh")).unwrap();
    let version = pinned
        .lines()
        .find_map(|l| l.strip_prefix("KUBE_VERSION="))
        .unwrap()
        .trim();
    let json = kubectl(cluster(), &["version", "-o", "json"])
        .success()
        .json();
    assert_eq!(json["serverVersion"]["gitVersion"], version);
}

#[test]
fn every_rendered_object_passes_server_dry_run_under_restricted() {
    let cases = [
        (
            "rails8-kamal",
            "init --no-input --image ghcr.io/acme/shop:1.0.0",
        ),
        (
            "rails8-sqlite",
            "init --no-input --image ghcr.io/acme/notes:1.0.0",
        ),
        (
            "named-user",
            "init --no-input --image ghcr.io/acme/named:1 --host named.example.com",
        ),
        (
            "credentials",
            "init --no-input --image ghcr.io/acme/cred:1 --no-ingress",
        ),
        (
            "dotenv-secrets",
            "init --no-input --image ghcr.io/acme/dotenv:1 --no-ingress",
        ),
        (
            "rails71-sidekiq",
            "init --no-input --name imagestorage --image docker-registry.example.dev/imagestorage:1.4.2 --host imagestorage.example.dev --uid 1000",
        ),
    ];
    for (name, init) in cases {
        let ns = TestNs::restricted("dryrun");
        let app = fixture(name);
        rails(app.path(), None, &words(init)).success();
        let yaml = rails(app.path(), None, &["render", "-n", &ns.name])
            .success()
            .stdout;
        let run = kubectl_with_stdin(
            &ns.kubeconfig,
            &["apply", "--server-side", "--dry-run=server", "-f", "-"],
            Some(&yaml),
        );
        assert_eq!(
            run.code, 0,
            "{name}: the apiserver rejected a rendered object:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("violates PodSecurity")
                && !run.stderr.contains("would violate PodSecurity"),
            "{name}: {}",
            run.stderr
        );
        let applied = run
            .stdout
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count();
        let rendered = yaml.matches("\n---\n").count() + usize::from(yaml.starts_with("---"));
        assert_eq!(
            applied, rendered,
            "{name}: every object was checked:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_root_pod_is_refused_by_the_restricted_namespace() {
    // Proves the dry-run check above can fail: the namespace really enforces `restricted`.
    let ns = TestNs::restricted("psa");
    let run = ns.kubectl(&["run", "root", "--image=busybox:1", "--dry-run=server"]);
    assert_ne!(run.code, 0);
    run.stderr_has("violates PodSecurity");
    // A workload's pod template is only warned about: the check above reads that warning too.
    let run = ns.kubectl(&[
        "create",
        "deployment",
        "root",
        "--image=busybox:1",
        "--dry-run=server",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stderr_has("would violate PodSecurity \"restricted:latest\"");
}

#[test]
fn three_replicas_become_ready_across_the_fake_nodes() {
    let ns = TestNs::new("spread");
    ns.apply(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      topologySpreadConstraints:\n      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}\n      containers: [{name: web, image: 'nginx:1'}]\n",
    )
    .success();
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .success();
    let nodes = ns.pods("app=web", "{.items[*].spec.nodeName}");
    let mut nodes: Vec<&str> = nodes.split_whitespace().collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 3, "pods spread over 3 nodes: {nodes:?}");
}

#[test]
fn a_job_completes_and_exec_returns_output() {
    let ns = TestNs::new("job");
    ns.kubectl(&["create", "job", "once", "--image=busybox:1", "--", "true"])
        .success();
    ns.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=60s",
    ])
    .success();

    ns.kubectl(&["create", "deployment", "app", "--image=nginx:1"])
        .success();
    ns.kubectl(&["rollout", "status", "deployment/app", "--timeout=60s"])
        .success();
    let run = ns
        .kubectl(&["exec", "deployment/app", "--", "bin/rails", "db:migrate"])
        .success();
    assert!(
        run.stdout.contains("CreateProducts: migrated"),
        "{}",
        run.stdout
    );
}
