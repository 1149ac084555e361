//! `cargo bench -p kubectl-rails --bench compare`: kubectl-rails against the plain kubectl way,
//! side by side on one local control plane (20 kwok nodes) started for the run, several rounds
//! each. Prints the min and median of every figure, the ratios, and API request counts from the
//! apiserver's audit log. A benchmark, not a test: it asserts nothing about time.

// A report for people: it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../../../tests/common/copy_dir.rs"]
mod copy_dir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use copy_dir::copy_dir;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

const ROUNDS: usize = 5;
const NODES: &str = "20";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Bench {
    state: PathBuf,
    kubeconfig: PathBuf,
    path: String,
    work: tempfile::TempDir,
}

impl Bench {
    fn start() -> Self {
        let state = std::env::temp_dir().join("kubectl-rails-bench");
        eprintln!("==> starting a control plane with {NODES} nodes for the benchmark");
        let out = Command::new(root().join("tests/cluster/up"))
            .env("KUBECTL_RAILS_CLUSTER_STATE", &state)
            .env("KUBECTL_RAILS_NODES", NODES)
            .env("KUBECTL_RAILS_PORT_BASE", "38400")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "tests/cluster/up failed");
        let kubeconfig = PathBuf::from(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .last()
                .unwrap()
                .trim(),
        );
        let work = tempfile::tempdir().unwrap();
        let bin = work.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_kubectl-rails"),
            bin.join("kubectl-rails"),
        )
        .unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        Self {
            state,
            kubeconfig,
            path,
            work,
        }
    }

    fn cmd(&self, program: &str, args: &[&str], dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(dir)
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null());
        c
    }

    /// Runs a command that must succeed; returns its wall time and stdout.
    fn run(&self, program: &str, args: &[&str], dir: &Path) -> (Duration, String) {
        let start = Instant::now();
        let out = self.cmd(program, args, dir).output().unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (took, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.run("kubectl", args, self.work.path()).1
    }

    /// A copy of the Rails 7.1 fixture with `replicas` web pods, one worker, its secrets in `ns`.
    fn app(&self, ns: &str, replicas: usize) -> PathBuf {
        let dir = self.work.path().join(ns);
        copy_dir(&root().join("tests/fixtures/rails71-sidekiq"), &dir);
        let r = replicas.to_string();
        let image = "docker-registry.example.dev/imagestorage:1.4.2";
        self.run(
            "kubectl",
            &[
                "rails",
                "init",
                "--no-input",
                "--name",
                "imagestorage",
                "--image",
                image,
                "--no-ingress",
                "--replicas",
                &r,
                "--uid",
                "1000",
                "--private",
                "-n",
                ns,
            ],
            &dir,
        );
        self.kubectl(&["create", "namespace", ns]);
        self.kubectl(&[
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            "imagestorage-secrets",
            "--from-literal=DATABASE_URL=postgres://x",
            "--from-literal=SECRET_KEY_BASE=x",
            "--from-literal=E2_ACCESS_KEY=x",
            "--from-literal=E2_SECRET_ACCESS_KEY=x",
            "--from-literal=REDIS_URL=redis://x",
        ]);
        self.kubectl(&[
            "-n",
            ns,
            "create",
            "secret",
            "docker-registry",
            "imagestorage-registry",
            "--docker-server=docker-registry.example.dev",
            "--docker-username=u",
            "--docker-password=p",
        ]);
        dir
    }

    /// Requests in `ns` since `since` (RFC 3339) from one client, by user agent: the plugin sends
    /// `kubectl-rails/...`, kubectl sends `kubectl/...`. The scheduler and kwok, which share the
    /// admin user here, are left out.
    fn audit_counts(&self, ns: &str, since: &str, plugin: bool) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(self.state.join("logs/audit.log")).unwrap_or_default();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let agent = e["userAgent"].as_str().unwrap_or("");
            let ours = if plugin {
                agent.starts_with("kubectl-rails/")
            } else {
                agent.starts_with("kubectl/")
            };
            if e["objectRef"]["namespace"] != ns
                || !ours
                || e["requestReceivedTimestamp"].as_str().unwrap_or("") < since
            {
                continue;
            }
            let verb = e["verb"].as_str().unwrap_or("");
            // A watch is logged when its response starts; everything else when it completes.
            let counted = if verb == "watch" {
                e["stage"] == "ResponseStarted"
            } else {
                e["stage"] == "ResponseComplete"
            };
            if counted {
                *counts.entry(verb.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = Command::new(root().join("tests/cluster/down"))
            .env("KUBECTL_RAILS_CLUSTER_STATE", &self.state)
            .status();
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// The control plane's own time, seen by a raw watch: from the first object the deploy writes
/// (its ConfigMap) to the moment `expected` app pods are Ready.
fn floor_watch(
    runtime: &tokio::runtime::Runtime,
    client: Client,
    ns: &str,
    expected: usize,
) -> tokio::task::JoinHandle<Duration> {
    let ns = ns.to_string();
    runtime.spawn(async move {
        let cms = watcher(
            Api::<ConfigMap>::namespaced(client.clone(), &ns),
            watcher::Config::default().fields("metadata.name=imagestorage-env"),
        )
        .applied_objects()
        .boxed();
        let mut cms = cms;
        let _ = cms.next().await;
        let first = Instant::now();
        let selector = "app.kubernetes.io/component in (web,worker)";
        let mut pods = watcher(
            Api::<Pod>::namespaced(client, &ns),
            watcher::Config::default().labels(selector),
        )
        .applied_objects()
        .boxed();
        let mut ready = std::collections::BTreeSet::new();
        while let Some(Ok(p)) = pods.next().await {
            let name = p.metadata.name.clone().unwrap_or_default();
            let is_ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let newest = p.spec.as_ref().is_some_and(|s| {
                s.containers
                    .iter()
                    .any(|c| c.image.as_deref().is_some_and(|i| i.ends_with(":1.4.2")))
            });
            if is_ready && newest && p.metadata.deletion_timestamp.is_none() {
                ready.insert(name);
            } else {
                ready.remove(&name);
            }
            if ready.len() >= expected {
                break;
            }
        }
        first.elapsed()
    })
}

#[derive(Default)]
struct Figure {
    samples: Vec<Duration>,
}

impl Figure {
    fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }
    fn min(&self) -> Duration {
        *self.samples.iter().min().unwrap()
    }
    fn median(&self) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[s.len() / 2]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, f: &Figure) {
    println!(
        "| {name} | {} | {} | {} |",
        f.samples.len(),
        ms(f.min()),
        ms(f.median())
    );
}

fn ratio(name: &str, a: &Figure, b: &Figure) {
    println!(
        "| {name} | {:.2} | {:.2} |",
        a.min().as_secs_f64() / b.min().as_secs_f64(),
        a.median().as_secs_f64() / b.median().as_secs_f64()
    );
}

/// One comparison of deploys: the plugin against apply + wait + rollout status.
fn compare_deploys(
    bench: &Bench,
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    replicas: usize,
    label: &str,
) -> (
    Figure,
    Figure,
    Figure,
    BTreeMap<String, usize>,
    BTreeMap<String, usize>,
) {
    let (mut plugin, mut plain, mut floor) =
        (Figure::default(), Figure::default(), Figure::default());
    let (mut plugin_calls, mut plain_calls) = (BTreeMap::new(), BTreeMap::new());
    for round in 0..ROUNDS {
        let ns = format!("bench-{label}-plugin-{round}");
        let dir = bench.app(&ns, replicas);
        let since = now_rfc3339();
        let watch = floor_watch(runtime, client.clone(), &ns, replicas + 1);
        let (took, _) = bench.run(
            "kubectl",
            &["rails", "deploy", "--no-input", "--timeout", "600s"],
            &dir,
        );
        plugin.push(took);
        floor.push(runtime.block_on(watch).unwrap());
        if round == 0 {
            plugin_calls = bench.audit_counts(&ns, &since, true);
        }

        let ns = format!("bench-{label}-kubectl-{round}");
        let dir = bench.app(&ns, replicas);
        let (_, yaml) = bench.run("kubectl", &["rails", "render", "-n", &ns], &dir);
        let manifests = dir.join("rendered.yaml");
        std::fs::write(&manifests, yaml).unwrap();
        let job = std::fs::read_to_string(&manifests)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name: imagestorage-migrate-")
                    .map(|h| format!("imagestorage-migrate-{h}"))
            })
            .unwrap();
        let start = Instant::now();
        bench.run(
            "kubectl",
            &[
                "-n",
                &ns,
                "apply",
                "--server-side",
                "-f",
                manifests.to_str().unwrap(),
            ],
            &dir,
        );
        bench.run(
            "kubectl",
            &[
                "-n",
                &ns,
                "wait",
                "--for=condition=complete",
                &format!("job/{job}"),
                "--timeout=600s",
            ],
            &dir,
        );
        for d in ["imagestorage-web", "imagestorage-worker"] {
            bench.run(
                "kubectl",
                &[
                    "-n",
                    &ns,
                    "rollout",
                    "status",
                    &format!("deployment/{d}"),
                    "--timeout=600s",
                ],
                &dir,
            );
        }
        plain.push(start.elapsed());
        if round == 0 {
            plain_calls = bench.audit_counts(&ns, &since, false);
        }
    }
    (plugin, plain, floor, plugin_calls, plain_calls)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` lists targets: nothing to run there.
    }
    let bench = Bench::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&bench.kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        Client::try_from(config).unwrap()
    });

    eprintln!("==> start-up");
    let (mut rails_version, mut rails_direct, mut rails_render, mut kubectl_version) = (
        Figure::default(),
        Figure::default(),
        Figure::default(),
        Figure::default(),
    );
    let app_dir = bench.app("bench-startup", 3);
    for _ in 0..ROUNDS * 4 {
        rails_version.push(bench.run("kubectl", &["rails", "--version"], &app_dir).0);
        rails_direct.push(bench.run("kubectl-rails", &["--version"], &app_dir).0);
        rails_render.push(bench.run("kubectl-rails", &["render"], &app_dir).0);
        kubectl_version.push(bench.run("kubectl", &["version", "--client"], &app_dir).0);
    }

    eprintln!("==> deploys: web 3 replicas, 1 worker, migration Job ({ROUNDS} rounds each)");
    let small = compare_deploys(&bench, &runtime, &client, 3, "small");
    eprintln!("==> deploys: web 100 replicas on {NODES} nodes ({ROUNDS} rounds each)");
    let large = compare_deploys(&bench, &runtime, &client, 100, "large");

    eprintln!("==> status with 1,000 pods");
    let status_dir = bench.app("bench-status", 1000);
    bench.run(
        "kubectl",
        &["rails", "deploy", "--no-input", "--timeout", "900s"],
        &status_dir,
    );
    let (mut status, mut get_pods) = (Figure::default(), Figure::default());
    for _ in 0..ROUNDS {
        status.push(bench.run("kubectl-rails", &["status"], &status_dir).0);
        get_pods.push(
            bench
                .run(
                    "kubectl",
                    &[
                        "-n",
                        "bench-status",
                        "get",
                        "pods",
                        "-l",
                        "app.kubernetes.io/instance=imagestorage",
                        "-o",
                        "wide",
                    ],
                    &status_dir,
                )
                .0,
        );
    }

    println!("\n## Figures (min and median of each)\n");
    println!("| figure | rounds | min | median |\n| --- | --- | --- | --- |");
    row(
        "`kubectl rails --version` (through kubectl)",
        &rails_version,
    );
    row(
        "`kubectl-rails --version` (the binary alone)",
        &rails_direct,
    );
    row("`kubectl-rails render`", &rails_render);
    row("`kubectl version --client`", &kubectl_version);
    for (label, (plugin, plain, floor, _, _)) in [("3 replicas", &small), ("100 replicas", &large)]
    {
        row(&format!("deploy, {label}: `kubectl rails deploy`"), plugin);
        row(
            &format!("deploy, {label}: apply + wait + rollout status"),
            plain,
        );
        row(
            &format!("deploy, {label}: control-plane floor (raw watch)"),
            floor,
        );
        let overhead = Figure {
            samples: plugin
                .samples
                .iter()
                .zip(&floor.samples)
                .map(|(p, f)| p.saturating_sub(*f))
                .collect(),
        };
        row(
            &format!("deploy, {label}: plugin overhead over the floor"),
            &overhead,
        );
    }
    row("`kubectl rails status`, 1,000 pods", &status);
    row("`kubectl get pods -l ... -o wide`, 1,000 pods", &get_pods);

    println!("\n## Ratios (plugin / kubectl; below 1 is faster)\n");
    println!("| comparison | min | median |\n| --- | --- | --- |");
    ratio("deploy, 3 replicas", &small.0, &small.1);
    ratio("deploy, 100 replicas", &large.0, &large.1);
    ratio(
        "start-up: `kubectl-rails --version` / `kubectl version --client`",
        &rails_direct,
        &kubectl_version,
    );
    ratio(
        "start-up: `kubectl-rails render` / `kubectl version --client`",
        &rails_render,
        &kubectl_version,
    );
    ratio(
        "start-up through kubectl: `kubectl rails --version` / `kubectl version --client`",
        &rails_version,
        &kubectl_version,
    );
    ratio("status / get pods, 1,000 pods", &status, &get_pods);

    println!("\n## API requests per deploy (first round, 3 replicas, from the audit log)\n");
    println!(
        "| verb | kubectl rails deploy | apply + wait + rollout status |\n| --- | --- | --- |"
    );
    let verbs: std::collections::BTreeSet<&String> = small.3.keys().chain(small.4.keys()).collect();
    for v in verbs {
        println!(
            "| {v} | {} | {} |",
            small.3.get(v).unwrap_or(&0),
            small.4.get(v).unwrap_or(&0)
        );
    }
    println!(
        "| total | {} | {} |",
        small.3.values().sum::<usize>(),
        small.4.values().sum::<usize>()
    );
}
