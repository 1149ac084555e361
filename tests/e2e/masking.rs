//! What the server or the app's pods say is shown as they say it, except a value the plugin set
//! or read as a secret, which shows as `[secret KEY]`. And logs of pods with sidecars show the
//! app's container.

use std::time::Duration;

use expectrl::{Eof, Expect};

use crate::deploy::rails71_app;
use crate::support::{TestNs, kubectl_with_stdin, leaks};

/// An admission policy that quotes the value it refuses (in base64, as CEL sees Secret data), as
/// some webhooks do.
#[test]
fn an_api_error_quoting_a_secret_value_is_masked() {
    let ns = TestNs::new("mask-api");
    let app = crate::support::rails71_initialised(&["--no-ingress", "-n", &ns.name]);
    let value = "Quoted-By-Policy-4242";
    leaks::register(value);
    let name = format!("quote-{}", ns.name);
    kubectl_with_stdin(
        &ns.kubeconfig,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {{name: {name}}}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - {{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [secrets]}}\n  validations:\n  - expression: \"!has(object.data) || !('SECRET_KEY_BASE' in object.data)\"\n    messageExpression: \"'SECRET_KEY_BASE may not be ' + string(object.data['SECRET_KEY_BASE'])\"\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: {name}}}\nspec:\n  policyName: {name}\n  validationActions: [Deny]\n  matchResources:\n    namespaceSelector:\n      matchLabels: {{kubernetes.io/metadata.name: {}}}\n",
            ns.name
        )),
    )
    .success();
    // The policy takes a moment to be enforced: a server-side dry run tells when it is.
    let enforced = (0..100).any(|_| {
        let probe = ns.kubectl(&[
            "create",
            "secret",
            "generic",
            "probe",
            "--from-literal=SECRET_KEY_BASE=probe-value",
            "--dry-run=server",
        ]);
        if probe.code != 0
            && probe
                .stderr
                .contains("denied request: SECRET_KEY_BASE may not be")
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
        false
    });
    assert!(enforced, "the admission policy is enforced");
    let run = ns
        .rails(
            app.path(),
            &["secrets", "set", &format!("SECRET_KEY_BASE={value}")],
        )
        .code(1);
    run.stderr_has("SECRET_KEY_BASE may not be [secret SECRET_KEY_BASE]");
    for kind in [
        "validatingadmissionpolicybinding",
        "validatingadmissionpolicy",
    ] {
        let _ = crate::support::kubectl(&ns.kubeconfig, &["delete", kind, &name]);
    }
}

#[test]
fn logs_mask_secret_values_and_show_the_app_container_beside_sidecars() {
    let ns = TestNs::new("mask-logs");
    let app = rails71_app(&ns, "1");
    ns.rails(app.path(), &["deploy", "--no-input", "--timeout", "120s"])
        .success();
    // A value the app's log happens to print (the simulated log has this line).
    let fragment = "Started GET \"/\" for 10.0.0.2";
    let patch = format!(
        "{{\"stringData\":{{\"LOG_PROBE\":{}}}}}",
        serde_json::to_string(fragment).unwrap()
    );
    ns.kubectl(&["patch", "secret", "imagestorage-secrets", "-p", &patch])
        .success();
    // A pod of `web` with a sidecar, as a service mesh adds one.
    ns.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-with-sidecar\n  labels: {app.kubernetes.io/name: imagestorage, app.kubernetes.io/instance: imagestorage, app.kubernetes.io/component: web}\nspec:\n  containers:\n  - {name: mesh-proxy, image: envoy:1}\n  - {name: web, image: docker-registry.example.dev/imagestorage:1.4.2}\n",
    )
    .success();
    ns.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/web-with-sidecar",
        "--timeout=60s",
    ])
    .success();
    let run = ns
        .rails(app.path(), &["logs", "--process", "web"])
        .success();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("[web-with-sidecar] ")),
        "the pod with a sidecar is shown:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stdout.contains(fragment), "{}", run.stdout);
    assert!(run.stdout.contains("[secret LOG_PROBE]"), "{}", run.stdout);
}

/// Short values, the password of a URL, URL-safe base64 and base64 inside a larger blob are
/// masked in `exec` and `run` output (the remote command's own) and in `status` events; `cron run`
/// masks the Job's log (#27 M4).
#[test]
fn remote_output_events_and_every_form_of_a_value_are_masked() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let (ns, app) = crate::deploy::deployed_rails71("mask-remote", "1");
    let (pin, password, token) = ("Qx7z", "Url-Part-Pass-5150", "Tok>>?Value~6006");
    assert_ne!(
        STANDARD.encode(token).trim_end_matches('='),
        URL_SAFE_NO_PAD.encode(token),
        "the token's URL-safe base64 is its own"
    );
    for v in [pin, password, token] {
        leaks::register(v);
    }
    let patch = serde_json::json!({"stringData": {
        "SHORT_PIN": pin,
        "EXTRA_URL": format!("postgres://app:{password}@db.internal/app?sslmode=require"),
        "TOKEN_B64": token,
    }});
    ns.kubectl(&[
        "patch",
        "secret",
        "imagestorage-secrets",
        "-p",
        &patch.to_string(),
    ])
    .success();
    let blob = STANDARD.encode(format!("{{\"auths\":{{\"x\":\"{token}\"}}}}"));
    let script = format!(
        "echo pin {pin}.; echo password {password} alone; echo url-safe {}; echo blob {blob}",
        URL_SAFE_NO_PAD.encode(token)
    );
    for command in ["exec", "run"] {
        let run = ns
            .rails(app.path(), &[command, "--", "sh", "-c", &script])
            .success();
        for shown in [
            "pin [secret SHORT_PIN].",
            "password [secret EXTRA_URL] alone",
            "url-safe [secret TOKEN_B64]",
        ] {
            assert!(
                run.stdout.contains(shown),
                "{command}: {shown}\n{}",
                run.stdout
            );
        }
        let blob_line = run.stdout.lines().find(|l| l.starts_with("blob ")).unwrap();
        assert!(
            blob_line.contains("[secret TOKEN_B64]"),
            "{command}: {blob_line}"
        );
    }
    // At a terminal too. What is typed is cut with quotes, so that its echo shows no part of
    // the value: only the remote shell's output does.
    let mut terminal = crate::support::in_terminal(&ns, app.path(), &["exec", "--", "sh"]);
    terminal
        .send_line("echo pw Url-Pa''rt-Pas''s-5150 end")
        .unwrap();
    terminal.expect("pw [secret EXTRA_URL] end").unwrap();
    terminal.send_line("exit").unwrap();
    terminal.expect(Eof).unwrap();
    ns.apply(&format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: masked-event}}\ninvolvedObject: {{kind: Pod, name: imagestorage-web-0, namespace: {}}}\ntype: Warning\nreason: BadConfig\nmessage: \"connecting with {password} failed\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\n",
        ns.name
    ))
    .success();
    let status = ns.rails(app.path(), &["status"]).success();
    let all = format!("{}{}", status.stdout, status.stderr);
    assert!(
        all.contains("connecting with [secret EXTRA_URL] failed"),
        "{all}"
    );
}

/// `cron run` shows the Job's log masked (#27 M4).
#[test]
fn cron_run_masks_the_jobs_log() {
    let ns = TestNs::restricted("mask-cron");
    let app = crate::kamal::deployable(&ns);
    let dir = app.path();
    ns.rails(
        dir,
        &["deploy", "--no-input", "--timeout", "120s", "--skip-hooks"],
    )
    .success();
    // A value the simulated log happens to print.
    let fragment = "Started GET \"/\" for 10.0.0.2";
    let patch = serde_json::json!({"stringData": {"LOG_PROBE": fragment}});
    ns.kubectl(&["patch", "secret", "depot-secrets", "-p", &patch.to_string()])
        .success();
    let run = ns
        .rails(
            dir,
            &["cron", "run", "report-send-daily", "--timeout", "60s"],
        )
        .success();
    assert!(!run.stderr.contains(fragment), "{}", run.stderr);
    run.stderr_has("[secret LOG_PROBE]");
}
