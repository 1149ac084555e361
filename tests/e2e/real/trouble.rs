//! Releases that fail on the real node: a migration that raises, and a container that exits at
//! boot. Each is diagnosed with the app's own lines, and the release before keeps answering.

use std::time::Instant;

use super::{RealNode, blog_app, deploy, relayed, version_on};
use crate::support::{TestNs, leaks};

#[test]
fn failed_releases_leave_the_previous_one_answering_on_the_real_node() {
    let (node, _alone) = RealNode::take();
    // A host of its own: an Ingress of an earlier run may linger while its namespace goes.
    let host = &format!("trouble-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-trouble");
    let url = node.database("trouble");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    deploy(&ns, dir, &[]).success();
    assert_eq!(
        version_on(&node.first_page(host).1).as_deref(),
        Some("1.0.0")
    );

    // 3. A migration that raises: nothing rolls out, its real error lines are shown.
    let run = deploy(&ns, dir, &["--tag", "3.0.0-broken-migration"]).code(1);
    run.stderr_has("nothing was rolled out and release v1 keeps serving");
    let lines = relayed(&run);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("this migration fails on purpose")),
        "the migration's own error is shown: {}",
        run.stderr
    );
    let (status, page) = node.get_page(host, "/");
    assert_eq!((status, version_on(&page).as_deref()), (200, Some("1.0.0")));
    assert_eq!(
        node.psql(
            "trouble",
            "SELECT count(*) FROM schema_migrations WHERE version = '20250301000000'"
        ),
        "0",
        "the broken migration left no record"
    );

    // 6. A container that exits at boot (a wrong master key): diagnosed in seconds, with the
    // app's own last lines, while release v1 keeps answering.
    let wrong = "0123456789abcdef0123456789abcdef";
    leaks::register(wrong);
    ns.rails_full(
        dir,
        &["secrets", "set", &format!("RAILS_MASTER_KEY={wrong}")],
        None,
        &[],
    )
    .success();
    let started = Instant::now();
    let run = deploy(&ns, dir, &["--tag", "2.0.0", "--migrate", "skip"]).code(1);
    let took = started.elapsed();
    run.stderr_has("CrashLoopBackOff");
    run.stderr_has("last log lines:");
    run.stderr_has("InvalidMessage");
    run.stderr_has("`RAILS_MASTER_KEY` must match config/master.key");
    assert!(
        took.as_secs() < 90,
        "diagnosed after {took:?}, not at the timeout"
    );
    let (status, page) = node.get_page(host, "/");
    assert_eq!((status, version_on(&page).as_deref()), (200, Some("1.0.0")));
}

/// A deploy interrupted (Ctrl-C) while its migration runs, then deployed again: the second deploy
/// follows the migration still running instead of deleting its Job and starting it again, which
/// could leave a half-applied schema (#27 M7).
#[test]
fn a_deploy_after_an_interrupted_one_follows_the_running_migration() {
    use crate::support::{finish, signal, spawn, wait_for};
    let (node, _alone) = RealNode::take();
    let host = &format!("resume-{}.example.com", std::process::id());
    let ns = TestNs::restricted("real-resume");
    let url = node.database("resume");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    deploy(&ns, dir, &[]).success();
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let slow = spec.replace(
        "migrate:\n  command:\n  - bin/rails\n  - db:migrate\n",
        "migrate:\n  command: [sh, -c, 'echo slow migration started; sleep 25; echo slow migration ended; exec bin/rails db:migrate']\n",
    );
    assert_ne!(slow, spec, "the spec's migrate command is replaced");
    std::fs::write(&spec_path, slow).unwrap();
    let migration_pods = || ns.pods("job-name", "{.items[*].metadata.name}");
    let before = migration_pods();
    let args = [
        "deploy",
        "--no-input",
        "--timeout",
        "180s",
        "--tag",
        "2.0.0",
        // By tag on both deploys: the same release, whatever this process trusts to pin it.
        "--no-pin",
    ];
    let (child, rx) = spawn(&ns, dir, &args);
    let seen = wait_for(&rx, "slow migration started");
    signal(child.id(), "-INT");
    let interrupted = finish(child, rx, seen);
    assert_eq!(interrupted.code, 130, "{}", interrupted.stderr);
    let running = migration_pods();
    assert_ne!(
        running, before,
        "the interrupted deploy started a migration pod"
    );
    let again = deploy(&ns, dir, &["--tag", "2.0.0", "--no-pin"]).success();
    again.stderr_has("the migrations of this release are still running");
    assert!(
        relayed(&again)
            .iter()
            .any(|l| l.contains("slow migration ended")),
        "the running migration was followed to its end:\n{}",
        again.stderr
    );
    assert_eq!(
        migration_pods(),
        running,
        "no migration pod was deleted or started again"
    );
}
