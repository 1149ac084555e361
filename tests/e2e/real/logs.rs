//! `logs` of a pod with a long log, on the real node (a real containerd log file; kwok's are a
//! few lines).

use std::process::Command;
use std::time::Duration;

use super::RealNode;
use crate::support::{TestNs, fixture, plugin_dir, rails};

/// Lines the pod writes: 100 bytes each, 5 MB in all. On disk the runtime prefixes each line
/// with its time and stream (about 41 bytes), so the file is about 7 MB: under the kubelet's
/// 10 MiB rotation, which would otherwise move the log aside within seconds and leave
/// `kubectl logs` an empty file to read.
const LINES: usize = 50_000;

/// The peak memory (KiB) of `kubectl-rails ARGS` and the lines it printed, from `getrusage` of
/// the children of a Python parent (the workspace forbids `unsafe`, so no `wait4` here). The
/// bare binary is measured: through kubectl, the peak would be kubectl's own (it `exec`s the
/// plugin, and the peak carries over).
fn peak_and_lines(ns: &TestNs, dir: &std::path::Path, args: &[&str]) -> (i64, usize) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let measure = "import resource, subprocess, sys\n\
        with open(sys.argv[1], 'w') as out:\n    \
            run = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE)\n\
        sys.stderr.write(run.stderr.decode())\n\
        print(run.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let run = Command::new("python3")
        .current_dir(dir)
        .env("KUBECONFIG", &ns.kubeconfig)
        .arg("-c")
        .arg(measure)
        .arg(out.path())
        .arg(plugin_dir().join("kubectl-rails"))
        .args(["-n", &ns.name])
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    let (code, peak) = said
        .trim()
        .split_once(' ')
        .expect("python3 printed the code and the peak");
    assert_eq!(
        code,
        "0",
        "kubectl-rails {args:?} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = std::fs::read_to_string(out.path()).unwrap();
    (peak.parse().unwrap(), printed.lines().count())
}

/// `logs` without `--tail` streams a long log: its peak memory is about that of `--tail 1`, not
/// the log's size (#27 L8). Before, every pod's whole log was read into memory, then copied
/// into a line list to sort.
#[test]
fn a_long_log_is_shown_whole_without_being_held_in_memory() {
    let (node, _one) = RealNode::take();
    let ns = TestNs::new("real-logs");
    ns.create_pull_secret(
        "pull",
        node.get("REGISTRY"),
        node.get("REGISTRY_USER"),
        node.get("REGISTRY_PASSWORD"),
    );
    let (selector_key, selector_value) = node.get("REAL_NODE_SELECTOR").split_once('=').unwrap();
    ns.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: chatty
  labels: {{app.kubernetes.io/instance: chatty, app.kubernetes.io/component: web}}
spec:
  imagePullSecrets: [{{name: pull}}]
  nodeSelector: {{{selector_key}: "{selector_value}"}}
  tolerations: [{{key: {taint}, operator: Exists, effect: NoSchedule}}]
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: {image}
    command: [sh, -c, 'yes "$(printf "%099d" 0)" | head -n {LINES}; sleep 3600']
"#,
        taint = node.get("REAL_NODE_TAINT"),
        image = node.image("1.0.0"),
    ))
    .success();
    let app = fixture("rails71-sidekiq");
    rails(
        app.path(),
        None,
        &[
            "init",
            "--no-input",
            "--name",
            "chatty",
            "--image",
            &node.image("1.0.0"),
            "--host",
            "chatty.example.dev",
            "--uid",
            "1000",
            "-n",
            &ns.name,
        ],
    )
    .success();
    super::RealNode::eventually(Duration::from_secs(90), "the pod wrote its log", || {
        let run = ns.kubectl(&["logs", "chatty", "--tail", "1"]);
        run.code == 0 && run.stdout.len() >= 100
    });
    super::RealNode::eventually(Duration::from_secs(60), "the whole log is written", || {
        ns.kubectl(&["logs", "chatty"]).stdout.lines().count() == LINES
    });
    let (tail_peak, tail_lines) = peak_and_lines(&ns, app.path(), &["logs", "--tail", "1"]);
    assert_eq!(tail_lines, 1);
    let (whole_peak, whole_lines) = peak_and_lines(&ns, app.path(), &["logs"]);
    assert_eq!(whole_lines, LINES, "every line is shown");
    let grown_kib = whole_peak - tail_peak;
    assert!(
        grown_kib < 4 * 1024,
        "the whole 5 MB log took {grown_kib} KiB more than one line ({whole_peak} KiB against {tail_peak} KiB)"
    );
}
