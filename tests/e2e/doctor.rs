//! `doctor`, the ingress URL, and least privilege (`rbac`) against the real test control plane.

use std::path::{Path, PathBuf};

use crate::deploy::rails71_app;
use crate::support::{Run, TestNs, edit_spec, kubectl, kubectl_with_stdin, list_kinds, rails};

/// The doctor line that starts with `mark check`, which must be there.
#[track_caller]
fn line<'a>(out: &'a str, mark: &str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{mark} {check}")))
        .unwrap_or_else(|| panic!("no `{mark} {check}` line:\n{out}"))
}

/// A CustomResourceDefinition of cert-manager's, as far as doctor looks at it.
fn crd(kind: &str, plural: &str, scope: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.cert-manager.io}}
spec:
  group: cert-manager.io
  names: {{kind: {kind}, plural: {plural}, singular: {singular}}}
  scope: {scope}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
",
        singular = kind.to_lowercase()
    )
}

/// Not the default: the test cluster's real ingress controller owns the default class.
const CLASS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
"#;

/// The Rails 7.1 app in a namespace of its own, its ingress settings `lines` where the spec says
/// `tls: false`.
fn app_with_ingress(prefix: &str, lines: &str) -> (TestNs, tempfile::TempDir) {
    let ns = TestNs::restricted(prefix);
    let app = rails71_app(&ns, "1");
    edit_spec(app.path(), "  tls: false\n", lines);
    (ns, app)
}

/// IngressClasses, CRDs and issuers are cluster-wide, so one test owns them from start to end.
#[test]
fn doctor_checks_ingress_tls_secrets_and_rbac() {
    // Ask for TLS through cert-manager, and for an IngressClass the cluster lacks so far.
    let ingress = "  class: nginx\n  tls: true\n  issuer: letsencrypt-prod\n";
    let (ns, app) = app_with_ingress("doctor", ingress);

    let before = ns.rails(app.path(), &["doctor"]).code(1);
    let ic = line(&before.stdout, "✗", "IngressClass");
    assert!(
        ic.contains("the spec asks for `nginx`, the cluster has haproxy (default)"),
        "{ic}"
    );
    before.stdout_has("    fix: set `ingress.class` to one of them, or install `nginx`");
    line(&before.stdout, "✗", "cert-manager CRDs");
    for check in ["app Secret", "pull secret", "nodes Ready", "RBAC"] {
        line(&before.stdout, "✓", check);
    }
    before.stderr_has("checks failed");

    let cluster = &ns.kubeconfig;
    kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some(CLASS)).success();
    let crds = [
        crd("Certificate", "certificates", "Namespaced"),
        crd("ClusterIssuer", "clusterissuers", "Cluster"),
    ]
    .join("---\n");
    kubectl_with_stdin(cluster, &["apply", "-f", "-"], Some(&crds)).success();
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

/// Changes the deployer's Role by a JSON patch.
fn patch_role(ns: &TestNs, json_patch: &str) {
    let args = [
        "patch",
        "role",
        "imagestorage-deployer",
        "--type=json",
        "-p",
        json_patch,
    ];
    ns.kubectl(&args).success();
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
    patch_role(
        &ns,
        r#"[{"op":"replace","path":"/rules/0/verbs","value":["get","list","watch","patch","delete"]}]"#,
    );
    let config = token_kubeconfig(&ns, "imagestorage-deployer", app.path());
    let run = as_deployer(app.path(), &config, &["doctor"]).code(1);
    let rbac = line(&run.stdout, "✗", "RBAC");
    assert!(rbac.contains("create deployments.apps"), "{rbac}");
    assert!(
        !rbac.contains("patch deployments.apps"),
        "only what is missing: {rbac}"
    );
    run.stdout_has("kubectl rails rbac -n");
}

#[test]
fn least_privilege_role_deploys_and_each_missing_rule_is_named() {
    let ns = TestNs::restricted("rbac");
    let app = rails71_app(&ns, "1");
    let list = ns
        .rails(app.path(), &["rbac", "-o", "json"])
        .success()
        .json();
    assert_eq!(list_kinds(&list), ["ServiceAccount", "Role", "RoleBinding"]);
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
    // Only the app's own Secrets: another app's in the same namespace is out of reach.
    ns.create_secret("other-app-secrets", &[("TOKEN", "other-app-token-7c1d")]);
    let can = kubectl(
        &config,
        &[
            "auth",
            "can-i",
            "get",
            "secret/other-app-secrets",
            "-n",
            &ns.name,
        ],
    );
    assert_eq!(can.stdout.trim(), "no", "{}", can.stderr);
    let can = kubectl(
        &config,
        &[
            "auth",
            "can-i",
            "get",
            "secret/imagestorage-secrets",
            "-n",
            &ns.name,
        ],
    );
    assert_eq!(can.stdout.trim(), "yes", "{}", can.stderr);
    // And doctor, asking by name, finds every permission granted.
    deployer(&["doctor"]).stdout_has("✓ RBAC");

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
        // The Secrets a deploy reads and changes are the named ones.
        let index = rules
            .iter()
            .position(|r| {
                r["resources"][0] == *resource
                    && (*resource != "secrets" || r["resourceNames"].is_array())
            })
            .unwrap();
        patch_role(
            &ns,
            &format!(r#"[{{"op":"remove","path":"/rules/{index}"}}]"#),
        );
        let tag = format!("1.5.{n}");
        let run = deployer(&["deploy", "--no-input", "--tag", &tag]);
        let restore =
            serde_json::json!([{ "op": "replace", "path": "/rules", "value": rules }]).to_string();
        patch_role(&ns, &restore);
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
    // Removing the app, its Secrets too, needs nothing more.
    deployer(&["destroy", "--yes", "--include-secrets"]).success();
    assert_ne!(
        ns.kubectl(&["get", "secret", "imagestorage-secrets"]).code,
        0,
        "the app's Secret is gone"
    );
    assert_eq!(
        ns.kubectl(&["get", "secret", "other-app-secrets"]).code,
        0,
        "another app's Secret stays"
    );
}

#[test]
fn the_url_appears_once_the_ingress_has_an_address() {
    // A class no controller serves: the test cluster's real controller would give the address
    // of the default class at a moment of its own choosing.
    let (ns, app) = app_with_ingress("url", "  class: unserved\n  tls: false\n");
    let run = ns.rails(app.path(), &["deploy", "--no-input"]).success();
    run.stdout_has("has no address yet: check that an ingress controller runs");
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
    let url = "Ingress: http://imagestorage.example.dev -> 203.0.113.10";
    ns.rails(app.path(), &["status"]).success().stdout_has(url);
    let again = ns.rails(app.path(), &["deploy", "--no-input"]);
    again.success().stdout_has(url);
}

/// The `cluster` builder (#28): doctor says whether its namespace admits the privileged
/// BuildKit pod, and refuses an unpinned BuildKit image, before any build starts.
#[test]
fn doctor_says_whether_the_cluster_builder_may_run() {
    let ns = TestNs::restricted("doctor-bk");
    let app = rails71_app(&ns, "1");
    let builds = TestNs::new("doctor-bk-builds");
    kubectl(
        &builds.kubeconfig,
        &[
            "label",
            "namespace",
            &builds.name,
            "pod-security.kubernetes.io/enforce=privileged",
        ],
    )
    .success();
    let spec = app.path().join("config/kubernetes.yml");
    let original = std::fs::read_to_string(&spec).unwrap();
    let with_build = |section: &str| {
        let text = match original.find("\nbuild:\n") {
            Some(_) => original.replacen("\nbuild:\n", &format!("\nbuild:\n{section}"), 1),
            None => format!("{original}build:\n{section}"),
        };
        std::fs::write(&spec, text).unwrap();
    };
    // No cluster builder in the spec: nothing said.
    let plain = ns.rails(app.path(), &["doctor"]);
    assert!(
        !plain.stdout.contains("cluster builder"),
        "{}",
        plain.stdout
    );
    let cases = [
        (
            "  builder: cluster\n".to_string(),
            "✗",
            "enforces Pod Security `restricted`, and BuildKit runs rootless (as uid 1000) but needs seccomp and AppArmor `Unconfined`".to_string(),
        ),
        (
            "  cluster: {namespace: no-such-builds}\n".to_string(),
            "✗",
            "namespace `no-such-builds` does not exist".to_string(),
        ),
        (
            format!(
                "  cluster: {{namespace: {}, image: moby/buildkit:latest}}\n",
                builds.name
            ),
            "✗",
            "is not pinned to a version".to_string(),
        ),
        (
            format!("  cluster: {{namespace: {}}}\n", builds.name),
            "✓",
            format!(
                "namespace `{}` admits the rootless BuildKit pod (moby/buildkit:v0.26.3-rootless)",
                builds.name
            ),
        ),
        (
            format!(
                "  cluster: {{namespace: {}, privileged: true}}\n",
                builds.name
            ),
            "✓",
            format!(
                "namespace `{}` admits the privileged BuildKit pod (moby/buildkit:v0.26.3)",
                builds.name
            ),
        ),
    ];
    for (section, mark, said) in cases {
        with_build(&section);
        let run = ns.rails(app.path(), &["doctor"]);
        let found = line(&run.stdout, mark, "cluster builder");
        assert!(found.contains(&said), "{section}: {found}");
    }
    // `rbac` lets the CI deployer run the BuildKit pod in the builds namespace, and no other.
    let list = ns
        .rails(app.path(), &["rbac", "-o", "json"])
        .success()
        .json();
    assert_eq!(
        list_kinds(&list),
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding"
        ]
    );
    // Objects in two namespaces: applied as they name them.
    kubectl_with_stdin(
        &ns.kubeconfig,
        &["apply", "-f", "-"],
        Some(&ns.rails(app.path(), &["rbac"]).success().stdout),
    )
    .success();
    let deployer = format!("system:serviceaccount:{}:imagestorage-deployer", ns.name);
    for (verb, resource, namespace, want) in [
        ("create", "pods", builds.name.as_str(), "yes"),
        ("create", "pods/exec", builds.name.as_str(), "yes"),
        ("delete", "pods", builds.name.as_str(), "yes"),
        ("get", "secrets", builds.name.as_str(), "no"),
        ("create", "pods", "default", "no"),
    ] {
        let can = kubectl(
            &ns.kubeconfig,
            &[
                "auth", "can-i", verb, resource, "-n", namespace, "--as", &deployer,
            ],
        );
        assert_eq!(can.stdout.trim(), want, "{verb} {resource} in {namespace}");
    }
}
