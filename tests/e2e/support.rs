//! Test support: run the plugin the way users do (`kubectl rails ...`, found through kubectl's
//! plugin lookup), the local test control plane, a namespace per test, and a leak check.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

#[path = "../common/copy_dir.rs"]
mod copy_dir;
pub use copy_dir::{copy_dir, copy_fixture};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A folder holding only the freshly built `kubectl-rails` (the build folder also has files
/// kubectl would take for broken plugins), put first on PATH. `KUBECTL_RAILS_TEST_PLUGIN` names
/// another build instead: to see a new test fail on the code before a fix.
pub fn plugin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let other = std::env::var_os("KUBECTL_RAILS_TEST_PLUGIN").map(PathBuf::from);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(if other.is_some() {
            "plugin-path-other"
        } else {
            "plugin-path"
        });
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("kubectl-rails");
        let _ = std::fs::remove_file(&link);
        let binary = other.unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kubectl-rails")));
        std::os::unix::fs::symlink(binary, &link).unwrap();
        // kubectl's plugin completion looks for this one beside the plugin.
        let complete = dir.join("kubectl_complete-rails");
        let _ = std::fs::remove_file(&complete);
        std::os::unix::fs::symlink(
            root().join("plugins/kubectl-rails/kubectl_complete-rails"),
            &complete,
        )
        .unwrap();
        dir
    })
    .clone()
}

/// PATH with the plugin first, so kubectl finds this build and no other.
pub fn path_env() -> String {
    format!(
        "{}:{}",
        plugin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The image the Rails 7.1 fixture is deployed as.
pub const RAILS71_IMAGE: &str = "docker-registry.example.dev/imagestorage:1.4.2";

/// The Rails 7.1 fixture after `kubectl rails init --no-input` as `imagestorage` with
/// [`RAILS71_IMAGE`], plus `flags`.
pub fn rails71_initialised(flags: &[&str]) -> tempfile::TempDir {
    let app = fixture("rails71-sidekiq");
    let mut args = vec![
        "init",
        "--no-input",
        "--name",
        "imagestorage",
        "--image",
        RAILS71_IMAGE,
        // Rails 7.1's Dockerfile runs as `rails`, a name: its uid is the user's to give.
        "--uid",
        "1000",
        "--private",
    ];
    args.extend(flags);
    rails(app.path(), None, &args).success();
    // `init` keeps every value of `example.env` secret; these four are plain settings.
    rails(
        app.path(),
        None,
        &[
            "env",
            "set",
            "CDN_HOST=cdn.imagestorage.dev",
            "E2_BUCKET=tu_bucket_name",
            "E2_ENDPOINT=https://endpoint.de.tu.s3provider.com",
            "E2_REGION=miami",
        ],
    )
    .success();
    app
}

/// A copy of a fixture app in a temp folder, so tests can write into it.
pub fn fixture(name: &str) -> tempfile::TempDir {
    let base = name.rsplit('/').next().unwrap_or(name);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{base}-"))
        .tempdir()
        .unwrap();
    copy_fixture(&root().join("tests/fixtures"), name, dir.path());
    dir
}

/// The result of one command, with helpers that print everything on failure.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stderr says `needle`, and shows all of stderr when it does not.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) {
        says("stderr", &self.stderr, needle);
    }

    /// Asserts that stdout says `needle`, and shows all of stdout when it does not.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) {
        says("stdout", &self.stdout, needle);
    }

    /// stdout, parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The words of a command line, split at spaces: `&words("init --no-input")`.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `git ARGS` in `dir` as a test user, which must succeed; its output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.dev"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replaces the first `from` in the app's spec file with `to`, as a person editing it would;
/// the spec must hold `from`.
pub fn edit_spec(app: &Path, from: &str, to: &str) {
    let path = app.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&path).unwrap();
    assert!(spec.contains(from), "the spec lacks {from:?}:\n{spec}");
    std::fs::write(&path, spec.replacen(from, to, 1)).unwrap();
}

/// The kinds of the items of a JSON `List`, in order.
pub fn list_kinds(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts that `text` (the output named `what`) says `needle`, and shows it when it does not.
#[track_caller]
fn says(what: &str, text: &str, needle: &str) {
    assert!(text.contains(needle), "{what} lacks {needle:?}:\n{text}");
}

/// `kubectl rails ARGS` in `dir`, with no terminal attached (stdin is null).
pub fn rails(dir: &Path, kubeconfig: Option<&Path>, args: &[&str]) -> Run {
    rails_with_stdin(dir, kubeconfig, args, None)
}

pub fn rails_with_stdin(
    dir: &Path,
    kubeconfig: Option<&Path>,
    args: &[&str],
    stdin: Option<&str>,
) -> Run {
    rails_full(dir, kubeconfig, args, stdin, &[])
}

/// The general form: stdin text and extra environment (a `PATH` goes before the plugin's;
/// `ONLY_PATH` is the whole `PATH`, the plugin's folder then added).
pub fn rails_full(
    dir: &Path,
    kubeconfig: Option<&Path>,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, String)],
) -> Run {
    let mut cmd = Command::new("kubectl");
    cmd.arg("rails")
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env());
    for (k, v) in env {
        if *k == "PATH" {
            cmd.env("PATH", format!("{v}:{}", path_env()));
        } else if *k == "ONLY_PATH" {
            cmd.env("PATH", format!("{}:{v}", plugin_dir().display()));
        } else {
            cmd.env(k, v);
        }
    }
    match kubeconfig {
        Some(k) => cmd.env("KUBECONFIG", k),
        // No cluster for this test: point at nothing, so that no real cluster can be touched.
        None => cmd.env("KUBECONFIG", "/nonexistent/kubeconfig"),
    };
    // The plugin's output, and only it: kubectl's own (a test reading a Secret back) may show
    // what the test set.
    let run = run_with_stdin(cmd, stdin);
    leaks::check(&run);
    run
}

/// Runs a command with `stdin` as its input (or none), capturing its output.
fn run_with_stdin(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl is on PATH");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    Run::from(child.wait_with_output().unwrap())
}

/// Plain `kubectl ARGS` against the test cluster.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Run {
    kubectl_with_stdin(kubeconfig, args, None)
}

pub fn kubectl_with_stdin(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path_env());
    run_with_stdin(cmd, stdin)
}

/// The local test control plane: started once per test run by `tests/cluster/up` (idempotent),
/// or taken from `KUBECTL_RAILS_TEST_KUBECONFIG`. A cluster that cannot start fails the test.
pub fn cluster() -> &'static Path {
    static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();
    KUBECONFIG.get_or_init(|| {
        if let Some(path) = std::env::var_os("KUBECTL_RAILS_TEST_KUBECONFIG") {
            return PathBuf::from(path);
        }
        cluster_up(&[], "")
    })
}

/// Runs `tests/cluster/up` with `env`, and returns the kubeconfig path it prints last. `which`
/// names the cluster in the failure.
fn cluster_up(env: &[(&str, &OsStr)], which: &str) -> PathBuf {
    let mut up = Command::new(root().join("tests/cluster/up"));
    for (k, v) in env {
        up.env(k, v);
    }
    let out = up.stderr(Stdio::inherit()).output().unwrap();
    assert!(
        out.status.success(),
        "tests/cluster/up{which} failed: the control plane is needed by this test"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last();
    PathBuf::from(last.expect("up prints the kubeconfig path").trim())
}

/// A second control plane for tests that stop the apiserver: they must not disturb the tests
/// running beside them. Its state folder is returned with its kubeconfig.
pub fn fault_cluster() -> &'static (PathBuf, PathBuf) {
    static CLUSTER: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let state = std::env::temp_dir().join("kubectl-rails-cluster-faults");
        let env = [
            ("KUBECTL_RAILS_CLUSTER_STATE", state.as_os_str()),
            ("KUBECTL_RAILS_PORT_BASE", OsStr::new("37400")),
            // One real node per machine: it owns the pod bridge and the host's cgroups.
            ("KUBECTL_RAILS_REAL_NODE", OsStr::new("0")),
        ];
        let kubeconfig = cluster_up(&env, " (faults)");
        (state, kubeconfig)
    })
}

/// A namespace of its own for one test. Deleted when dropped.
pub struct TestNs {
    pub name: String,
    pub kubeconfig: PathBuf,
}

impl TestNs {
    /// A namespace that enforces the `restricted` Pod Security Standard, like a careful
    /// production cluster: every pod the plugin renders must be admitted there.
    pub fn restricted(prefix: &str) -> Self {
        Self::restricted_on(cluster(), prefix)
    }

    pub fn restricted_on(kubeconfig: &Path, prefix: &str) -> Self {
        let ns = Self::on(kubeconfig, prefix);
        kubectl(
            &ns.kubeconfig,
            &[
                "label",
                "namespace",
                &ns.name,
                "pod-security.kubernetes.io/enforce=restricted",
                "pod-security.kubernetes.io/enforce-version=latest",
                // Enforce admits or refuses Pods only; warn checks the pod templates of
                // Deployments, Jobs, CronJobs and StatefulSets ("would violate PodSecurity").
                "pod-security.kubernetes.io/warn=restricted",
                "pod-security.kubernetes.io/warn-version=latest",
            ],
        )
        .success();
        ns
    }

    pub fn new(prefix: &str) -> Self {
        Self::on(cluster(), prefix)
    }

    /// A namespace on another cluster (see [`fault_cluster`]).
    pub fn on(kubeconfig: &Path, prefix: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let kubeconfig = kubeconfig.to_path_buf();
        let name = format!(
            "t-{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        kubectl(&kubeconfig, &["create", "namespace", &name]).success();
        Self { name, kubeconfig }
    }

    /// `kubectl rails ARGS -n NS` in `dir`.
    pub fn rails(&self, dir: &Path, args: &[&str]) -> Run {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args);
        rails(dir, Some(&self.kubeconfig), &all)
    }

    /// `kubectl rails -n NS ARGS` with stdin text and extra environment.
    pub fn rails_full(
        &self,
        dir: &Path,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, String)],
    ) -> Run {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args);
        rails_full(dir, Some(&self.kubeconfig), &all, stdin, env)
    }

    /// `kubectl ARGS -n NS`.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args);
        kubectl(&self.kubeconfig, &all)
    }

    /// `kubectl get KIND NAME -n NS -o jsonpath=PATH`, which must succeed.
    pub fn jsonpath(&self, kind: &str, name: &str, path: &str) -> String {
        let path = format!("jsonpath={path}");
        self.kubectl(&["get", kind, name, "-o", &path])
            .success()
            .stdout
    }

    /// `kubectl get pods -l SELECTOR -n NS -o jsonpath=PATH`, which must succeed.
    pub fn pods(&self, selector: &str, path: &str) -> String {
        let path = format!("jsonpath={path}");
        self.kubectl(&["get", "pods", "-l", selector, "-o", &path])
            .success()
            .stdout
    }

    /// The names of the pods of `selector` (`pod/NAME`, a line each).
    pub fn pod_names(&self, selector: &str) -> String {
        self.kubectl(&["get", "pods", "-l", selector, "-o", "name"])
            .success()
            .stdout
    }

    /// A PersistentVolume pre-bound to `claim`, standing in for a provisioner (the real node's
    /// makes volumes on the real node only, and these pods run on kwok nodes). It has no node
    /// affinity of its own: only what the plugin renders can put the pods that mount it on one
    /// node. Its class is the one the claim gets: the cluster's default (`real-local`) where
    /// there is one, none elsewhere.
    pub fn volume_for_claim(&self, claim: &str) {
        let class = self
            .kubectl(&[
                "get",
                "storageclass",
                "-o",
                r#"jsonpath={.items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")].metadata.name}"#,
            ])
            .success()
            .stdout;
        let pv = format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {ns}-{claim}}}\nspec:\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"{class}\"\n  hostPath: {{path: /tmp/{ns}}}\n  claimRef: {{namespace: {ns}, name: {claim}}}\n",
            ns = self.name
        );
        self.apply(&pv).success();
    }

    /// The names of the namespace's Secrets (`secret/NAME`, a line each).
    pub fn secrets(&self) -> String {
        self.kubectl(&["get", "secrets", "-o", "name"])
            .success()
            .stdout
    }

    /// Asserts that no Secret of the namespace has `name` in its name: nothing was written.
    #[track_caller]
    pub fn assert_no_secret(&self, name: &str) {
        let secrets = self.secrets();
        assert!(!secrets.contains(name), "nothing was written: {secrets}");
    }

    /// `kubectl create secret generic NAME` with `KEY=VALUE` pairs.
    pub fn create_secret(&self, name: &str, pairs: &[(&str, &str)]) {
        let mut args = vec![
            "create".to_string(),
            "secret".into(),
            "generic".into(),
            name.into(),
        ];
        args.extend(pairs.iter().map(|(k, v)| format!("--from-literal={k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.kubectl(&args).success();
    }

    /// `kubectl create secret docker-registry NAME` for `server`, as `user` with `password`.
    pub fn create_pull_secret(&self, name: &str, server: &str, user: &str, password: &str) {
        self.kubectl(&[
            "create",
            "secret",
            "docker-registry",
            name,
            &format!("--docker-server={server}"),
            &format!("--docker-username={user}"),
            &format!("--docker-password={password}"),
        ])
        .success();
    }

    /// `kubectl apply -n NS -f -` of a YAML text.
    pub fn apply(&self, yaml: &str) -> Run {
        kubectl_with_stdin(
            &self.kubeconfig,
            &["-n", &self.name, "apply", "-f", "-"],
            Some(yaml),
        )
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .env("KUBECONFIG", &self.kubeconfig)
            .output();
    }
}

/// Secret values used anywhere in the suite: every command's output is checked for them, in
/// plain text, in base64, and for any 8-character slice of each; pseudo-terminal sessions too.
pub mod leaks {
    use std::sync::{Arc, Mutex};

    use base64::Engine;

    static VALUES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Registers a value that must never appear in any output.
    pub fn register(value: &str) {
        VALUES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(value.to_string());
    }

    /// What must not show for one value: itself, its base64 forms, its 8-character slices.
    fn needles(value: &str) -> Vec<String> {
        let b = value.as_bytes();
        let mut out = vec![value.to_string()];
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            out.push(engine.encode(b));
        }
        let chars: Vec<char> = value.chars().collect();
        for window in chars.windows(8) {
            out.push(window.iter().collect());
        }
        out
    }

    /// Fails the test when `text` (named `what`) holds any registered value in any form.
    pub fn check_text(what: &str, text: &str) {
        let values = VALUES.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for value in &values {
            for needle in needles(value) {
                assert!(
                    !text.contains(&needle),
                    "a secret value leaked to {what} (as `{needle}`):\n{text}"
                );
            }
        }
    }

    pub(super) fn check(run: &super::Run) {
        check_text("stdout", &run.stdout);
        check_text("stderr", &run.stderr);
    }

    /// Everything a pseudo-terminal session showed, checked when the session ends. Input the
    /// test typed (a secret into a hidden prompt) is not output, and is not checked.
    #[derive(Clone, Default)]
    pub struct Transcript(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Transcript {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The text of expectrl's `read: "..."` log lines, unescaped.
    fn shown(log: &str) -> String {
        let mut out = String::new();
        for line in log.lines() {
            let Some(quoted) = line
                .strip_prefix("read: \"")
                .and_then(|l| l.strip_suffix('"'))
            else {
                if let Some(bytes) = line.strip_prefix("read:(bytes): [") {
                    let bytes: Vec<u8> = bytes
                        .trim_end_matches(']')
                        .split(", ")
                        .filter_map(|b| b.parse().ok())
                        .collect();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                continue;
            };
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('0') => out.push('\0'),
                    Some('u') => {
                        let code: String =
                            chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                        if let Some(c) =
                            u32::from_str_radix(&code, 16).ok().and_then(char::from_u32)
                        {
                            out.push(c);
                        }
                    }
                    Some(other) => out.push(other),
                    None => {}
                }
            }
        }
        out
    }

    impl Drop for Transcript {
        fn drop(&mut self) {
            // The last clone (the session's own) checks; a failing test is not failed twice.
            if Arc::strong_count(&self.0) == 1 && !std::thread::panicking() {
                let log =
                    String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
                        .into_owned();
                check_text("the terminal", &shown(&log));
            }
        }
    }
}

/// A pseudo-terminal session whose output is checked for secret values when it ends.
pub type Terminal = expectrl::Session<
    expectrl::process::unix::UnixProcess,
    expectrl::stream::log::LogStream<expectrl::process::unix::PtyStream, leaks::Transcript>,
>;

/// Wraps a pseudo-terminal session so that its output is checked for secret values.
pub fn transcribed(session: expectrl::session::OsSession) -> Terminal {
    expectrl::session::log(session, leaks::Transcript::default()).expect("log the session")
}

/// Starts `kubectl rails -n NS ARGS` and returns it with a channel of its stderr lines.
pub fn spawn(ns: &TestNs, dir: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = spawn_piped(ns, dir, args);
    let rx = lines_of(child.stderr.take().unwrap());
    (child, rx)
}

/// Starts `kubectl rails -n NS ARGS` and returns it with a channel of its stdout lines.
pub fn spawn_for_stdout(ns: &TestNs, dir: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = spawn_piped(ns, dir, args);
    let rx = lines_of(child.stdout.take().unwrap());
    (child, rx)
}

fn spawn_piped(ns: &TestNs, dir: &Path, args: &[&str]) -> Child {
    Command::new("kubectl")
        .arg("rails")
        .args(["-n", &ns.name])
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env())
        .env("KUBECONFIG", &ns.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The lines of `stream`, read on a thread as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Sends `signal` (`-INT`, `-STOP`, ...) to a process, which must exist.
/// What `date -u ARGS...` prints (a time `-d` names, in the `+FORMAT` given), trimmed.
pub fn date_utc(args: &[&str]) -> String {
    let out = Command::new("date").arg("-u").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The apiserver's audit log entries of the plugin's own requests (its user agent), in order.
pub fn plugin_audit_events(ns: &TestNs) -> Vec<serde_json::Value> {
    let audit = ns.kubeconfig.parent().unwrap().join("logs/audit.log");
    std::fs::read_to_string(audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .unwrap_or_default()
                .starts_with("kubectl-rails/")
        })
        .collect()
}

pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {signal} {pid}");
}

/// Waits for a stderr line containing `marker`, returning every line read so far.
pub fn wait_for(rx: &mpsc::Receiver<String>, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let found = line.contains(marker);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(e) => panic!("no `{marker}` on stderr ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

pub fn finish(child: Child, rx: mpsc::Receiver<String>, mut seen: Vec<String>) -> Run {
    let out = child.wait_with_output().unwrap();
    seen.extend(rx.iter());
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: seen.join("\n"),
    };
    leaks::check(&run);
    run
}

/// `kubectl rails ARGS` in a pseudo-terminal (80 columns, 24 rows to start with).
pub fn in_terminal(ns: &TestNs, dir: &Path, args: &[&str]) -> Terminal {
    in_terminal_with(ns, dir, args, &[])
}

/// [`in_terminal`] with extra environment.
pub fn in_terminal_with(ns: &TestNs, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Terminal {
    let mut cmd = Command::new("kubectl");
    cmd.args(["rails", "-n", &ns.name])
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env())
        .env("KUBECONFIG", &ns.kubeconfig)
        .env("TERM", "xterm")
        .envs(env.iter().copied());
    let mut p = transcribed(expectrl::Session::spawn(cmd).expect("spawn in a pty"));
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    p
}
