//! `doctor`, the ingress URL, and least privilege (`rbac`) against the real test control plane.

use std::path::{Path, PathBuf};

use crate::deploy::rails71_app;
use crate::support::{Run, TestNs, kubectl, kubectl_with_stdin, rails};

/// The doctor line that starts with `mark check`.
fn line<'a>(out: &'a str, mark: &str, check: &str) -> Option<&'a str> {
    out.lines()
        .find(|l| l.starts_with(&format!("{mark} {check}")))
}

const CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Certificate, plural: certificates, singular: certificate}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clusterissuers.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: ClusterIssuer, plural: clusterissuers, singular: clusterissuer}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

/// Not the default: the test cluster's real ingress controller owns the default class.
const CLASS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
"#;

/// IngressClasses, CRDs and issuers are cluster-wide, so one test owns them from start to end.
#[test]
fn doctor_checks_ingress_tls_secrets_and_rbac() {
    let ns = TestNs::restricted("doctor");
    let app = rails71_app(&ns, "1");
    // Ask for TLS through cert-manager, and for an IngressClass the cluster lacks so far.
    let spec_path = app.path().join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap().replace(
        "  tls: false\n",
        "  class: nginx\n  tls: true\n  issuer: letsencrypt-prod\n",
    );
    std::fs::write(&spec_path, spec).unwrap();

    let before = ns.rails(app.path(), &["doctor"]).code(1);
    let ic =
        line(&before.stdout, "✗", "IngressClass").unwrap_or_else(|| panic!("{}", before.stdout));
    assert!(
        ic.contains("the spec asks for `nginx`, the cluster has haproxy (default)"),
        "{ic}"
    );
    assert!(
        before
            .stdout
            .contains("    fix: set `ingress.class` to one of them, or install `nginx`"),
        "{}",
        before.stdout
    );
    assert!(
        line(&before.stdout, "✗", "cert-manager CRDs").is_some(),
        "{}",
        before.stdout
    );
    assert!(
        line(&before.stdout, "✓", "app Secret").is_some(),
        "{}",
        before.stdout
    );
    assert!(
        line(&before.stdout, "✓", "pull secret").is_some(),
        "{}",
        before.stdout
    );
    assert!(
        line(&before.stdout, "✓", "nodes Ready").is_some(),
        "{}",
        before.stdout
    );
    assert!(
        line(&before.stdout, "✓", "RBAC").is_some(),
        "{}",
        before.stdout
    );
    before.stderr_has("checks failed");

    let cluster = &ns.kubeconfig;
    kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some(CLASS)).success();
    kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some(CRDS)).success();
    kubectl(
        cluster,
        &[
            "wait",
            "--for=condition=Established",
            "crd/clusterissuers.cert-manager.io",
            "--timeout=30s",
        ],
    )
    .success();
    kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some("apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: letsencrypt-prod}\nspec: {acme: {}}\n")).success();
    let cleanup = || {
        let _ = kubectl(
            cluster,
            &["delete", "ingressclass", "nginx", "--ignore-not-found"],
        );
        let _ = kubectl(
            cluster,
            &[
                "delete",
                "clusterissuer",
                "letsencrypt-prod",
                "--ignore-not-found",
            ],
        );
        let _ = kubectl(
            cluster,
            &[
                "delete",
                "crd",
                "certificates.cert-manager.io",
                "clusterissuers.cert-manager.io",
                "--ignore-not-found",
            ],
        );
    };

    let after = ns.rails(app.path(), &["doctor", "-o", "json"]);
    let checks: serde_json::Value = serde_json::from_str(&after.stdout).unwrap_or_else(|e| {
        cleanup();
        panic!("{e}: {}", after.stdout)
    });
    let outcome = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["check"].as_str().unwrap().starts_with(name))
            .map(|c| c["outcome"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let results = (
        outcome("IngressClass"),
        outcome("cert-manager CRDs"),
        outcome("ClusterIssuer"),
    );
    let text = ns.rails(app.path(), &["doctor"]).stdout;
    cleanup();
    assert_eq!(results.0, ["ok"], "{text}");
    assert_eq!(results.1, ["ok", "ok"], "{text}");
    assert_eq!(results.2, ["ok"], "{text}");
    assert!(text.contains("✓ IngressClass: `nginx` exists"), "{text}");
    assert!(
        text.contains("– DNS imagestorage.example.dev: not checked"),
        "{text}"
    );
}

/// A kubeconfig that authenticates with the token of `sa` in `ns`.
fn token_kubeconfig(ns: &TestNs, sa: &str, dir: &Path) -> PathBuf {
    let token = ns
        .kubectl(&["create", "token", sa, "--duration=1h"])
        .success()
        .stdout;
    let text = std::fs::read_to_string(&ns.kubeconfig).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    config["users"][0]["user"] = serde_json::json!({ "token": token.trim() });
    let path = dir.join(format!("{sa}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

fn as_deployer(app: &Path, kubeconfig: &Path, args: &[&str]) -> Run {
    rails(app, Some(kubeconfig), args)
}

#[test]
fn doctor_names_a_missing_permission() {
    let ns = TestNs::restricted("doctor-rbac");
    let app = rails71_app(&ns, "1");
    let role = ns.rails(app.path(), &["rbac"]).success().stdout;
    ns.apply(&role).success();
    // The Role, less `create` on Deployments.
    ns.kubectl(&["patch", "role", "imagestorage-deployer", "--type=json", "-p", r#"[{"op":"replace","path":"/rules/0/verbs","value":["get","list","watch","patch","delete"]}]"#])
        .success();
    let config = token_kubeconfig(&ns, "imagestorage-deployer", app.path());
    let run = as_deployer(app.path(), &config, &["doctor"]).code(1);
    let rbac = line(&run.stdout, "✗", "RBAC").unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(rbac.contains("create deployments.apps"), "{rbac}");
    assert!(
        !rbac.contains("patch deployments.apps"),
        "only what is missing: {rbac}"
    );
    assert!(
        run.stdout.contains("kubectl rails rbac -n"),
        "{}",
        run.stdout
    );
}

#[test]
fn least_privilege_role_deploys_and_each_missing_rule_is_named() {
    let ns = TestNs::restricted("rbac");
    let app = rails71_app(&ns, "1");
    let rbac = ns
        .rails(app.path(), &["rbac", "-o", "json"])
        .success()
        .stdout;
    let list: serde_json::Value = serde_json::from_str(&rbac).unwrap();
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"]);
    ns.apply(&ns.rails(app.path(), &["rbac"]).success().stdout)
        .success();
    let config = token_kubeconfig(&ns, "imagestorage-deployer", app.path());
    let deployer = |args: &[&str]| {
        let mut all = vec!["-n", ns.name.as_str()];
        all.extend(args);
        as_deployer(app.path(), &config, &all)
    };
    deployer(&["deploy", "--no-input"]).success();
    deployer(&["exec", "--", "bin/rails", "db:migrate"]).success();
    deployer(&["scale", "2"]).success();
    deployer(&["logs", "--tail", "1"]).success();

    // Every rule a deploy cannot do without: take it away, and the deploy names it.
    let rules = list["items"][1]["rules"].as_array().unwrap().clone();
    let needed = [
        ("deployments", "apps"),
        ("services", ""),
        ("configmaps", ""),
        ("jobs", "batch"),
        ("ingresses", "networking.k8s.io"),
        ("poddisruptionbudgets", "policy"),
        ("horizontalpodautoscalers", "autoscaling"),
        ("leases", "coordination.k8s.io"),
        ("secrets", ""),
    ];
    for (n, (resource, group)) in needed.iter().enumerate() {
        let index = rules
            .iter()
            .position(|r| r["resources"][0] == *resource)
            .unwrap();
        ns.kubectl(&[
            "patch",
            "role",
            "imagestorage-deployer",
            "--type=json",
            "-p",
            &format!(r#"[{{"op":"remove","path":"/rules/{index}"}}]"#),
        ])
        .success();
        let tag = format!("1.5.{n}");
        let run = deployer(&["deploy", "--no-input", "--tag", &tag]);
        let restore =
            serde_json::json!([{ "op": "replace", "path": "/rules", "value": rules }]).to_string();
        ns.kubectl(&[
            "patch",
            "role",
            "imagestorage-deployer",
            "--type=json",
            "-p",
            &restore,
        ])
        .success();
        assert_eq!(run.code, 1, "without {resource}: {}", run.stderr);
        let named = if group.is_empty() {
            format!("resource \"{resource}\"")
        } else {
            format!("resource \"{resource}\" in API group \"{group}\"")
        };
        assert!(
            run.stderr.contains(&named),
            "without {resource}, the error names it:\n{}",
            run.stderr
        );
        run.stderr_has("lacks this permission");
    }
}

#[test]
fn the_url_appears_once_the_ingress_has_an_address() {
    let ns = TestNs::restricted("url");
    let app = rails71_app(&ns, "1");
    // A class no controller serves: the test cluster's real controller would give the address
    // of the default class at a moment of its own choosing.
    let spec_path = app.path().join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path)
        .unwrap()
        .replace("  tls: false\n", "  class: unserved\n  tls: false\n");
    std::fs::write(&spec_path, spec).unwrap();
    let run = ns.rails(app.path(), &["deploy", "--no-input"]).success();
    assert!(
        run.stdout
            .contains("has no address yet: check that an ingress controller runs"),
        "{}",
        run.stdout
    );
    // The test sets the address a controller would.
    ns.kubectl(&[
        "patch",
        "ingress",
        "imagestorage",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10"}]}}}"#,
    ])
    .success();
    let status = ns.rails(app.path(), &["status"]).success().stdout;
    assert!(
        status.contains("Ingress: http://imagestorage.example.dev -> 203.0.113.10"),
        "{status}"
    );
    let again = ns
        .rails(app.path(), &["deploy", "--no-input"])
        .success()
        .stdout;
    assert!(
        again.contains("Ingress: http://imagestorage.example.dev -> 203.0.113.10"),
        "{again}"
    );
}
