//! Shared by both benchmarks: the cluster they run against, commands run and timed the same way
//! for every side, the by-hand deploy path, the control plane's floor, and the tables.

pub mod by_hand;
pub mod floor;
pub mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube::Client;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs one part of a bench, saying on stderr what it is and how long it took.
pub fn section<T>(name: &str, part: impl FnOnce() -> T) -> T {
    eprintln!("==> {name}");
    let start = Instant::now();
    let out = part();
    eprintln!("    ({name}: {})", stats::fmt(start.elapsed()));
    out
}

/// `KEY` from the environment as a number, else `default` (shorter runs while working on a bench).
pub fn env_count(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one of the project's scripts (its progress on our stderr) with `env`; the path it
/// prints on its last line, as `tests/cluster/up` and `build-helm` end.
pub fn script_path(script: &str, env: &[(&str, String)]) -> PathBuf {
    let out = Command::new(root().join(script))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script} failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

/// A cluster and a work folder; commands run with its kubeconfig and the fresh plugin first on
/// PATH, so `kubectl rails` is this build.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// The cluster's state folder (its logs, its audit log, the real node's env file).
    pub state: PathBuf,
    path: String,
    pub work: tempfile::TempDir,
    /// Stopped on drop: only a control plane this process started for itself.
    own: bool,
}

impl Cluster {
    /// `tests/cluster/up` with `env` (it reuses a healthy cluster in the same state folder, and
    /// builds what is missing). A cluster started for the bench alone (`own`) is stopped when
    /// the bench ends; the shared test cluster is left running.
    pub fn up(env: &[(&str, String)], own: bool) -> Self {
        let kubeconfig = script_path("tests/cluster/up", env);
        let state = kubeconfig.parent().unwrap().to_path_buf();
        let work = tempfile::Builder::new()
            .prefix("kubectl-rails-bench-")
            .tempdir()
            .unwrap();
        let bin = work.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_kubectl-rails"),
            bin.join("kubectl-rails"),
        )
        .unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        Self {
            kubeconfig,
            state,
            path,
            work,
            own,
        }
    }

    pub fn cmd(&self, program: &str, args: &[&str], dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(dir)
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null());
        c
    }

    /// Runs a command, which may fail; its wall time from spawn to exit, and its output.
    pub fn output(&self, program: &str, args: &[&str], dir: &Path) -> (Duration, Output) {
        let start = Instant::now();
        let out = self.cmd(program, args, dir).output().unwrap();
        (start.elapsed(), out)
    }

    /// Runs a command that must succeed; its wall time and stdout.
    pub fn run(&self, program: &str, args: &[&str], dir: &Path) -> (Duration, String) {
        let (took, out) = self.output(program, args, dir);
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (took, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        self.run("kubectl", args, self.work.path()).1
    }

    pub fn client(&self, runtime: &tokio::runtime::Runtime) -> Client {
        runtime.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap(),
                &Default::default(),
            )
            .await
            .unwrap();
            Client::try_from(config).unwrap()
        })
    }

    /// Deletes namespaces and waits until they are gone, so that the next round starts on a
    /// quiet cluster.
    pub fn delete_namespaces(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let mut args = vec![
            "delete",
            "namespace",
            "--ignore-not-found",
            "--timeout=300s",
        ];
        args.extend(names.iter().map(String::as_str));
        self.kubectl(&args);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.own {
            let _ = Command::new(root().join("tests/cluster/down"))
                .env("KUBECTL_RAILS_CLUSTER_STATE", &self.state)
                .status();
        }
    }
}
