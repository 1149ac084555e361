//! The deploy lock is a lock: a deploy that was stopped until its lease expired and another
//! deploy took it writes nothing more, says who holds the lease, and leaves that lease alone.

use crate::deploy::{rails71_app, web_image};
use crate::support::{TestNs, date_utc, finish, signal, spawn, wait_for};

fn lease_holder(ns: &TestNs) -> String {
    ns.jsonpath("lease", "imagestorage-deploy", "{.spec.holderIdentity}")
}

#[test]
fn a_deploy_whose_lease_expired_and_was_taken_writes_nothing_more() {
    let ns = TestNs::restricted("lease-race");
    let app = rails71_app(&ns, "2");
    let deploy = |tag: &str| {
        spawn(
            &ns,
            app.path(),
            &["deploy", "--no-input", "--timeout", "120s", "--tag", tag],
        )
    };
    // A takes the lease, then stops (a laptop lid closed, a paused CI runner).
    let (a, a_err) = deploy("a-1");
    let a_seen = wait_for(&a_err, "validating");
    signal(a.id(), "-STOP");
    let a_holder = lease_holder(&ns);
    assert!(
        a_holder.contains("(run "),
        "the holder names a run: {a_holder}"
    );
    assert!(a_holder.contains('@'), "and user@host: {a_holder}");
    // It stays stopped for longer than a deploy trusts its last word from the lease (5 s)
    // without reading it again: a lease that another deploy took must be at least that old.
    std::thread::sleep(std::time::Duration::from_secs(6));
    // Its lease runs out while it is stopped (forced here rather than waited for).
    ns.kubectl(&[
        "patch",
        "lease",
        "imagestorage-deploy",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"renewTime":"2000-01-01T00:00:00.000000Z","leaseDurationSeconds":1}}"#,
    ])
    .success();
    // B takes the expired lease; A wakes up while B holds it (B waits meanwhile, so that its
    // lease is certainly still there when A looks).
    let (b, b_err) = deploy("b-2");
    let b_seen = wait_for(&b_err, "validating");
    signal(b.id(), "-STOP");
    let b_holder = lease_holder(&ns);
    assert_ne!(b_holder, a_holder, "B holds the lease now");
    signal(a.id(), "-CONT");
    let a = finish(a, a_err, a_seen);
    signal(b.id(), "-CONT");
    let b = finish(b, b_err, b_seen);
    assert_eq!(b.code, 0, "B deploys:\n{}", b.stderr);
    assert_eq!(a.code, 1, "A stops:\n{}", a.stderr);
    a.stderr_has(&format!("taken over by {b_holder}"));
    assert_eq!(
        web_image(&ns, "imagestorage-web"),
        "docker-registry.example.dev/imagestorage:b-2",
        "only B's release was applied"
    );
    let releases: serde_json::Value = serde_json::from_str(
        &ns.rails(app.path(), &["releases", "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    let images: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        ["docker-registry.example.dev/imagestorage:b-2"],
        "exactly one release recorded"
    );
    let leases = ns
        .kubectl(&["get", "leases", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(leases.trim(), "", "no lease is left behind");
}

/// `date -u` `seconds` ago, as a Lease time.
fn k8s_time_ago(seconds: u32) -> String {
    date_utc(&[
        "-d",
        &format!("{seconds} seconds ago"),
        "+%Y-%m-%dT%H:%M:%S.000000Z",
    ])
}

/// A holder whose clock runs 40 s behind ours still holds its lease while it renews it: a deploy
/// judges expiry by whether it saw the lease change, never by the holder's `renewTime` against
/// its own clock. Once nobody renews, the lease is taken after it stayed unchanged for its
/// duration (#27 M5).
#[test]
fn a_live_lease_renewed_by_a_skewed_clock_is_not_taken() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let ns = TestNs::restricted("lease-skew");
    let app = rails71_app(&ns, "1");
    let skewed = k8s_time_ago(40);
    ns.apply(&format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: imagestorage-deploy}}\nspec:\n  holderIdentity: skewed@elsewhere\n  leaseDurationSeconds: 6\n  acquireTime: {skewed}\n  renewTime: {skewed}\n"
    ))
    .success();
    let renewing = Arc::new(AtomicBool::new(true));
    let renewer = {
        let (renewing, kubeconfig, name) =
            (renewing.clone(), ns.kubeconfig.clone(), ns.name.clone());
        std::thread::spawn(move || {
            while renewing.load(Ordering::SeqCst) {
                let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, k8s_time_ago(40));
                crate::support::kubectl(
                    &kubeconfig,
                    &[
                        "-n",
                        &name,
                        "patch",
                        "lease",
                        "imagestorage-deploy",
                        "--type",
                        "merge",
                        "-p",
                        &patch,
                    ],
                )
                .success();
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
        })
    };
    let run = ns
        .rails(app.path(), &["deploy", "--no-input", "--timeout", "120s"])
        .code(1);
    run.stderr_has("another deploy of `imagestorage` is running (held by skewed@elsewhere");
    renewing.store(false, Ordering::SeqCst);
    renewer.join().unwrap();
    assert_eq!(
        lease_holder(&ns),
        "skewed@elsewhere",
        "the lease was left alone"
    );
    let started = std::time::Instant::now();
    let run = ns
        .rails(app.path(), &["deploy", "--no-input", "--timeout", "120s"])
        .success();
    run.stderr_has("looks expired; taking it once it stays unchanged for 6s");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(6),
        "taken only after watching it: {:?}",
        started.elapsed()
    );
}

/// A deploy whose lease cannot be renewed (here an admission policy refuses every update of it)
/// stops before the lease could expire and be taken, even while it only waits (here in its
/// pre-deploy hook), instead of going on without it (#27 M5).
#[test]
fn a_deploy_that_cannot_renew_its_lease_stops() {
    let ns = TestNs::restricted("lease-renew");
    let app = crate::kamal::deployable(&ns);
    std::fs::write(
        app.path().join(".kamal/hooks/pre-deploy"),
        "#!/bin/sh\necho holding\nsleep 60\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (child, rx) = spawn(
        &ns,
        app.path(),
        &["deploy", "--no-input", "--timeout", "120s"],
    );
    let seen = wait_for(&rx, "pre-deploy | holding");
    let name = format!("no-renew-{}", ns.name);
    crate::support::kubectl_with_stdin(
        &ns.kubeconfig,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {{name: {name}}}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - {{apiGroups: [coordination.k8s.io], apiVersions: [v1], operations: [UPDATE], resources: [leases]}}\n  validations:\n  - expression: \"false\"\n    message: renewals refused by the test\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: {name}}}\nspec:\n  policyName: {name}\n  validationActions: [Deny]\n  matchResources:\n    namespaceSelector:\n      matchLabels: {{kubernetes.io/metadata.name: {}}}\n",
            ns.name
        )),
    )
    .success();
    let run = finish(child, rx, seen);
    for kind in [
        "validatingadmissionpolicybinding",
        "validatingadmissionpolicy",
    ] {
        let _ = crate::support::kubectl(&ns.kubeconfig, &["delete", kind, &name]);
    }
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.stderr_has("the deploy lease of `depot` could not be renewed for");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(55),
        "it stopped before the hook ended: {:?}",
        started.elapsed()
    );
    let deployments = ns
        .kubectl(&["get", "deploy", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(deployments.trim(), "", "nothing was deployed");
}
