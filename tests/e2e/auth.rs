//! Every way a kubeconfig or kubectl's flags say who you are, end to end: a client certificate
//! signed through the cluster's own CertificateSigningRequest API, a ServiceAccount token (as
//! `--token` and as a `tokenFile`), an `exec` credential plugin printing an `ExecCredential` (as
//! `aws eks get-token` does), and impersonation (`--as`, `--as-group`) that RBAC allows. Each
//! identity may read only the test namespace: success there and a denial naming the identity in
//! another namespace prove the plugin authenticated as that identity.

use std::path::Path;
use std::process::Command;

use crate::netfakes::{ClusterCreds, cluster_creds, kubeconfig};
use crate::support::{TestNs, kubectl, kubectl_with_stdin, rails_full, rails71_initialised};

fn sh(script: &str, dir: &Path) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl rails releases` in `ns` (allowed) and in `other` (denied, naming `who`).
fn proves_identity(app: &Path, cfg: &Path, ns: &TestNs, other: &TestNs, flags: &[&str], who: &str) {
    let mut args = vec!["-n", ns.name.as_str(), "releases"];
    args.extend(flags);
    rails_full(app, Some(cfg), &args, None, &[]).success();
    let mut args = vec!["-n", other.name.as_str(), "releases"];
    args.extend(flags);
    let denied = rails_full(app, Some(cfg), &args, None, &[]).code(1);
    denied.stderr_has(&format!(
        "User \"{who}\" cannot list resource \"configmaps\""
    ));
}

fn cluster_lines(creds: &ClusterCreds) -> Vec<String> {
    vec![
        format!("server: {}", creds.server),
        format!("certificate-authority-data: {}", creds.ca_data),
    ]
}

#[test]
fn certificates_tokens_exec_plugins_and_impersonation() {
    let ns = TestNs::new("auth");
    let other = TestNs::new("auth-other");
    let app = rails71_initialised(&["--no-ingress", "-n", &ns.name]);
    let dir = app.path();
    let creds = cluster_creds();
    let cert_user = format!("rails-cert-{}", ns.name);
    let alice = format!("alice-{}", ns.name);
    ns.kubectl(&["create", "serviceaccount", "deployer"])
        .success();
    ns.kubectl(&["create", "serviceaccount", "impersonator"])
        .success();
    for (name, subject) in [
        ("sa", format!("--serviceaccount={}:deployer", ns.name)),
        ("cert", format!("--user={cert_user}")),
        ("alice", format!("--user={alice}")),
    ] {
        ns.kubectl(&[
            "create",
            "rolebinding",
            &format!("view-{name}"),
            "--clusterrole=view",
            &subject,
        ])
        .success();
    }

    // A client certificate, signed by the controller-manager's signer.
    sh(
        &format!(
            "openssl req -new -newkey rsa:2048 -nodes -keyout user.key -subj /CN={cert_user} -out user.csr 2>/dev/null"
        ),
        dir,
    );
    let csr = std::fs::read(dir.join("user.csr")).unwrap();
    let csr_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(csr)
    };
    let csr_name = cert_user.clone();
    kubectl_with_stdin(
        &ns.kubeconfig,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {csr_name}}}\nspec:\n  request: {csr_b64}\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: 3600\n  usages: [client auth]\n"
        )),
    )
    .success();
    kubectl(&ns.kubeconfig, &["certificate", "approve", &csr_name]).success();
    let mut cert = String::new();
    for _ in 0..100 {
        cert = kubectl(
            &ns.kubeconfig,
            &[
                "get",
                "csr",
                &csr_name,
                "-o",
                "jsonpath={.status.certificate}",
            ],
        )
        .success()
        .stdout;
        if !cert.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!cert.is_empty(), "the controller-manager signed the CSR");
    {
        use base64::Engine;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(cert)
            .unwrap();
        std::fs::write(dir.join("user.crt"), pem).unwrap();
    }
    let anonymous = kubeconfig(dir, "nobody", &cluster_lines(&creds), &[]);
    let (crt, key) = (
        dir.join("user.crt").display().to_string(),
        dir.join("user.key").display().to_string(),
    );
    proves_identity(
        dir,
        &anonymous,
        &ns,
        &other,
        &["--client-certificate", &crt, "--client-key", &key],
        &cert_user,
    );
    let cert_cfg = kubeconfig(
        dir,
        "cert-user",
        &cluster_lines(&creds),
        &[
            format!("client-certificate: {crt}"),
            format!("client-key: {key}"),
        ],
    );
    proves_identity(dir, &cert_cfg, &ns, &other, &[], &cert_user);

    // A ServiceAccount token: as `--token`, in a `tokenFile`, and from an exec plugin.
    let token = ns
        .kubectl(&["create", "token", "deployer", "--duration", "1h"])
        .success()
        .stdout
        .trim()
        .to_string();
    let sa = format!("system:serviceaccount:{}:deployer", ns.name);
    proves_identity(dir, &anonymous, &ns, &other, &["--token", &token], &sa);
    std::fs::write(dir.join("token"), &token).unwrap();
    let file_cfg = kubeconfig(
        dir,
        "token-file",
        &cluster_lines(&creds),
        &[format!("tokenFile: {}", dir.join("token").display())],
    );
    proves_identity(dir, &file_cfg, &ns, &other, &[], &sa);
    let plugin = dir.join("get-token");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\n# An exec credential plugin, as `aws eks get-token` is one.\ntest -n \"$KUBERNETES_EXEC_INFO\" || exit 3\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\"}}}}' \"$(cat '{}')\"\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let exec_cfg = kubeconfig(
        dir,
        "exec-user",
        &cluster_lines(&creds),
        &[
            "exec:".into(),
            "  apiVersion: client.authentication.k8s.io/v1".into(),
            format!("  command: {}", plugin.display()),
            "  interactiveMode: Never".into(),
            "  provideClusterInfo: true".into(),
        ],
    );
    proves_identity(dir, &exec_cfg, &ns, &other, &[], &sa);

    // Impersonation: the impersonator may act as alice and her group, and as nobody else.
    let imp_token = ns
        .kubectl(&["create", "token", "impersonator", "--duration", "1h"])
        .success()
        .stdout
        .trim()
        .to_string();
    let role = format!("impersonate-{}", ns.name);
    kubectl_with_stdin(
        &ns.kubeconfig,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {role}}}\nrules:\n- apiGroups: ['']\n  resources: [users]\n  verbs: [impersonate]\n  resourceNames: [{alice}]\n- apiGroups: ['']\n  resources: [groups]\n  verbs: [impersonate]\n  resourceNames: [rails-devs]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {role}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects:\n- {{kind: ServiceAccount, name: impersonator, namespace: {}}}\n",
            ns.name
        )),
    )
    .success();
    proves_identity(
        dir,
        &anonymous,
        &ns,
        &other,
        &["--token", &imp_token, "--as", &alice],
        &alice,
    );
    proves_identity(
        dir,
        &anonymous,
        &ns,
        &other,
        &[
            "--token",
            &imp_token,
            "--as",
            &alice,
            "--as-group",
            "rails-devs",
        ],
        &alice,
    );
    let refused = rails_full(
        dir,
        Some(&anonymous),
        &[
            "-n", &ns.name, "releases", "--token", &imp_token, "--as", "bob",
        ],
        None,
        &[],
    )
    .code(1);
    refused.stderr_has("cannot impersonate resource \"users\"");
    let refused = rails_full(
        dir,
        Some(&anonymous),
        &[
            "-n",
            &ns.name,
            "releases",
            "--token",
            &imp_token,
            "--as",
            &alice,
            "--as-group",
            "system:masters",
        ],
        None,
        &[],
    )
    .code(1);
    refused.stderr_has("cannot impersonate resource \"groups\"");
    for kind in ["clusterrolebinding", "clusterrole", "csr"] {
        let name = if kind == "csr" { &csr_name } else { &role };
        let _ = kubectl(&ns.kubeconfig, &["delete", kind, name]);
    }
}
