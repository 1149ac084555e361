//! `cargo bench -p kubectl-rails --bench compare`: kubectl-rails against the by-hand kubectl path
//! and against Helm, side by side on one local control plane with 20 kwok nodes started for the
//! run. Every figure is several rounds (the order of the sides rotates from round to round, and
//! each round's namespaces are deleted after it); it prints min, median and max, the ratios of
//! this run, and the API requests of each side. A benchmark, not a test: it asserts nothing
//! about time. The real node's figures are the other bench, `real`.
//!
//! `KUBECTL_RAILS_BENCH_ROUNDS` (10) sets the rounds, for short runs while working on it;
//! `KUBECTL_RAILS_BENCH_STATE` and `KUBECTL_RAILS_BENCH_PORT_BASE` (38400) place the control plane.

// A report for people: it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../../../../tests/common/copy_dir.rs"]
mod copy_dir;
#[path = "../support/mod.rs"]
mod support;

mod audit;
mod helm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use copy_dir::copy_dir;
use k8s_openapi::jiff::Timestamp;

use helm::Helm;
use support::by_hand::{self, Manifests};
use support::stats::{Figure, fmt, header, ratio, row};
use support::{Cluster, env_count, floor, root, section};

const NODES: usize = 20;
const APP: &str = "imagestorage";
const IMAGE: &str = "docker-registry.example.dev/imagestorage";
const TAG: &str = "1.4.2";
const NEXT_TAG: &str = "1.4.3";

/// The four ways a release reaches the cluster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Side {
    /// `kubectl rails deploy`: through kubectl's plugin lookup, as users type it.
    Plugin,
    /// `kubectl-rails deploy`: the binary alone, to compare with Helm's binary.
    PluginBare,
    /// Plain kubectl: [`by_hand`].
    ByHand,
    /// `helm upgrade --install --wait` of a chart of the same manifests.
    Helm,
}

impl Side {
    const ALL: [Side; 4] = [Side::Plugin, Side::PluginBare, Side::ByHand, Side::Helm];

    fn short(self) -> &'static str {
        match self {
            Side::Plugin => "rails",
            Side::PluginBare => "bare",
            Side::ByHand => "hand",
            Side::Helm => "helm",
        }
    }

    fn short_label(self) -> &'static str {
        match self {
            Side::Plugin => "`kubectl rails deploy`",
            Side::PluginBare => "`kubectl-rails deploy`",
            Side::ByHand => "by hand",
            Side::Helm => "Helm",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Side::Plugin => "`kubectl rails deploy` (through kubectl)",
            Side::PluginBare => "`kubectl-rails deploy` (bare binary)",
            Side::ByHand => "by hand: plain kubectl, 4+ commands (through kubectl)",
            Side::Helm => "`helm upgrade --install --wait` (bare binary)",
        }
    }

    /// The user agent its requests carry.
    fn agent(self) -> &'static str {
        match self {
            Side::Plugin | Side::PluginBare => "kubectl-rails/",
            Side::ByHand => "kubectl/",
            Side::Helm => "Helm/",
        }
    }
}

/// `items` rotated so that round `round` starts with a different one each time.
fn rotated<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let mut v = items.to_vec();
    v.rotate_left(round % items.len());
    v
}

/// The shape of an app made from the Rails 7.1 fixture.
#[derive(Clone, Copy)]
struct Shape {
    web: usize,
    /// Extra Procfile processes beside web; the fixture itself has one (Sidekiq).
    workers: usize,
}

impl Shape {
    fn pods(self) -> usize {
        self.web + self.workers
    }
}

/// Process names for an app of many processes (the fixture's `worker` is the first).
const WORKERS: [&str; 9] = [
    "worker",
    "mailers",
    "imports",
    "exports",
    "reports",
    "webhooks",
    "search",
    "thumbnails",
    "cleanup",
];

struct Bench {
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    helm: Helm,
    /// Request counts to take from the audit log at the end: (figure, side, window).
    windows: Vec<(String, Side, audit::Window)>,
}

/// One deploy comparison: every side's times and floors, and for two sides a redeploy and a
/// rollback.
struct Deploys {
    label: String,
    time: BTreeMap<Side, Figure>,
    floor: BTreeMap<Side, Figure>,
    redeploy: BTreeMap<Side, Figure>,
    rollback: BTreeMap<Side, Figure>,
}

impl Bench {
    /// A copy of the Rails 7.1 fixture initialised for `ns`, with its namespace and Secrets.
    fn app(&self, ns: &str, shape: Shape) -> PathBuf {
        let dir = self.cluster.work.path().join(ns);
        copy_dir(&root().join("tests/fixtures/rails71-sidekiq"), &dir);
        if shape.workers != 1 {
            let mut procfile = "web: bundle exec puma -C config/puma.rb\n".to_string();
            for w in &WORKERS[..shape.workers] {
                procfile.push_str(&format!("{w}: bundle exec sidekiq -C config/sidekiq.yml\n"));
            }
            std::fs::write(dir.join("Procfile"), procfile).unwrap();
        }
        let web = shape.web.to_string();
        let image = format!("{IMAGE}:{TAG}");
        self.cluster.run(
            "kubectl",
            &[
                "rails",
                "init",
                "--no-input",
                "--name",
                APP,
                "--image",
                &image,
                "--no-ingress",
                "--replicas",
                &web,
                "--uid",
                "1000",
                "--private",
                "-n",
                ns,
            ],
            &dir,
        );
        // `init` keeps every value of `example.env` secret; these four are plain settings.
        self.cluster.run(
            "kubectl",
            &[
                "rails",
                "env",
                "set",
                "CDN_HOST=cdn.imagestorage.dev",
                "E2_BUCKET=tu_bucket_name",
                "E2_ENDPOINT=https://endpoint.de.tu.s3provider.com",
                "E2_REGION=miami",
            ],
            &dir,
        );
        // A namespace left by an interrupted run goes first.
        self.cluster.delete_namespaces(&[ns.to_string()]);
        self.cluster.kubectl(&["create", "namespace", ns]);
        self.cluster.kubectl(&[
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
        self.cluster.kubectl(&[
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

    fn plugin(&self, program: &str, args: &[&str], dir: &std::path::Path) -> Duration {
        let mut full = Vec::new();
        if program == "kubectl" {
            full.push("rails");
        }
        full.extend(args);
        self.cluster.run(program, &full, dir).0
    }

    /// Deploys of `shape` by every side, `rounds` times; with `rollbacks`, the plugin's binary
    /// and Helm also roll a new tag out and back in each round.
    fn deploys(
        &mut self,
        key: &str,
        label: &str,
        shape: Shape,
        rounds: usize,
        rollbacks: bool,
    ) -> Deploys {
        let mut d = Deploys {
            label: label.to_string(),
            time: BTreeMap::new(),
            floor: BTreeMap::new(),
            redeploy: BTreeMap::new(),
            rollback: BTreeMap::new(),
        };
        let image = format!("{IMAGE}:{TAG}");
        for round in 0..rounds {
            let mut namespaces = Vec::new();
            let mut dirs = BTreeMap::new();
            for side in rotated(&Side::ALL, round) {
                let ns = format!("b-{key}-{}-{round}", side.short());
                let dir = self.app(&ns, shape);
                // What a person keeps in their repository is ready before the clock starts.
                let manifests = (side == Side::ByHand)
                    .then(|| Manifests::render(&self.cluster, &dir, &ns, &dir.join("by-hand")));
                let chart = (side == Side::Helm)
                    .then(|| Helm::chart(&self.cluster, &dir, &ns, APP, &dir.join("chart")));
                let since = Timestamp::now();
                let watch = floor::arm(&self.runtime, &self.client, &ns, APP, &image, shape.pods());
                let took = match side {
                    Side::Plugin => self.plugin(
                        "kubectl",
                        &["deploy", "--no-input", "--timeout", "600s"],
                        &dir,
                    ),
                    Side::PluginBare => self.plugin(
                        "kubectl-rails",
                        &["deploy", "--no-input", "--timeout", "600s"],
                        &dir,
                    ),
                    Side::ByHand => manifests.unwrap().deploy(&self.cluster, &ns, "600s"),
                    Side::Helm => self.helm.upgrade(&self.cluster, APP, &chart.unwrap(), &ns),
                };
                d.time.entry(side).or_default().push(took);
                let floor = watch
                    .wait(&self.runtime)
                    .expect("the release's pods became Ready");
                d.floor.entry(side).or_default().push(floor);
                if round == 0 {
                    self.windows.push((
                        label.to_string(),
                        side,
                        audit::Window {
                            ns: ns.clone(),
                            since,
                            until: Timestamp::now(),
                            agent: side.agent(),
                        },
                    ));
                }
                dirs.insert(side, dir);
                namespaces.push(ns);
            }
            if rollbacks {
                for side in rotated(&[Side::PluginBare, Side::Helm], round) {
                    let took = self.redeploy(
                        side,
                        &dirs[&side],
                        &format!("b-{key}-{}-{round}", side.short()),
                    );
                    d.redeploy.entry(side).or_default().push(took);
                }
                for side in rotated(&[Side::PluginBare, Side::Helm], round) {
                    let ns = format!("b-{key}-{}-{round}", side.short());
                    let took = match side {
                        Side::Helm => self.helm.rollback(&self.cluster, APP, &ns),
                        _ => self.plugin(
                            "kubectl-rails",
                            &["rollback", "--no-input", "--timeout", "600s"],
                            &dirs[&side],
                        ),
                    };
                    d.rollback.entry(side).or_default().push(took);
                }
            }
            self.cluster.delete_namespaces(&namespaces);
        }
        d
    }

    /// The next tag rolled out by the plugin's binary (`--tag`) or by Helm (the chart rendered
    /// again from the spec with the new tag).
    fn redeploy(&self, side: Side, dir: &std::path::Path, ns: &str) -> Duration {
        match side {
            Side::Helm => {
                let spec = dir.join("config/kubernetes.yml");
                let text = std::fs::read_to_string(&spec).unwrap();
                std::fs::write(&spec, text.replace(TAG, NEXT_TAG)).unwrap();
                let chart = Helm::chart(&self.cluster, dir, ns, APP, &dir.join("chart-next"));
                self.helm.upgrade(&self.cluster, APP, &chart, ns)
            }
            _ => self.plugin(
                "kubectl-rails",
                &[
                    "deploy",
                    "--no-input",
                    "--tag",
                    NEXT_TAG,
                    "--timeout",
                    "600s",
                ],
                dir,
            ),
        }
    }
}

/// Start-up: `kubectl rails --version` (through kubectl), the binary's `--version` and
/// `render` alone, and `kubectl version --client`.
const STARTUP: [(&str, &[&str]); 4] = [
    ("kubectl", &["rails", "--version"]),
    ("kubectl-rails", &["--version"]),
    ("kubectl-rails", &["render"]),
    ("kubectl", &["version", "--client"]),
];

fn startup(bench: &Bench, rounds: usize) -> Vec<Figure> {
    let dir = bench.app("bench-startup", Shape { web: 3, workers: 1 });
    let mut figures = vec![Figure::default(); STARTUP.len()];
    for round in 0..rounds {
        for i in rotated(&[0, 1, 2, 3], round) {
            let (program, args) = STARTUP[i];
            figures[i].push(bench.cluster.run(program, args, &dir).0);
        }
    }
    bench.cluster.delete_namespaces(&["bench-startup".into()]);
    figures
}

/// Status of an app with 1,000 pods: `kubectl rails status`, `kubectl-rails status`, and
/// `kubectl get pods -l ... -o wide`.
fn status(bench: &Bench, rounds: usize) -> Vec<Figure> {
    let ns = "bench-status";
    let dir = bench.app(
        ns,
        Shape {
            web: 999,
            workers: 1,
        },
    );
    bench.plugin(
        "kubectl",
        &["deploy", "--no-input", "--timeout", "900s"],
        &dir,
    );
    let selector = format!("app.kubernetes.io/instance={APP}");
    let commands: [(&str, Vec<&str>); 3] = [
        ("kubectl", vec!["rails", "status"]),
        ("kubectl-rails", vec!["status"]),
        (
            "kubectl",
            vec!["-n", ns, "get", "pods", "-l", &selector, "-o", "wide"],
        ),
    ];
    let processes = format!("{selector},app.kubernetes.io/component!=migrate");
    let pods = bench
        .cluster
        .kubectl(&["-n", ns, "get", "pods", "-l", &processes, "-o", "name"])
        .lines()
        .count();
    assert_eq!(
        pods, 1000,
        "the status app has 1,000 pods beside its migration pod"
    );
    let mut figures = vec![Figure::default(); commands.len()];
    for round in 0..rounds {
        for i in rotated(&[0, 1, 2], round) {
            let (program, args) = &commands[i];
            figures[i].push(bench.cluster.run(program, args, &dir).0);
        }
    }
    bench.cluster.delete_namespaces(&[ns.into()]);
    figures
}

/// `logs --tail 10` across 100 web pods: the plugin through kubectl and alone, against
/// `kubectl logs -l ... --prefix`, each under `/usr/bin/time` for its peak memory.
struct Logs {
    time: Vec<Figure>,
    /// Peak resident memory of each run, KiB.
    memory: Vec<Vec<u64>>,
    /// Lines printed by the first run of each.
    lines: Vec<usize>,
}

/// `kubectl logs -l` reads the pods one after another, paced by client-go's default rate limit
/// (5 requests a second after a burst of 10): about 18 s for 100 pods, so a few rounds do.
const KUBECTL_LOGS_ROUNDS: usize = 3;

const LOGS: [&str; 3] = [
    "`kubectl rails logs -p web --tail 10` (through kubectl)",
    "`kubectl-rails logs -p web --tail 10` (bare binary)",
    "`kubectl logs -l ...component=web --tail 10 --prefix`",
];

fn logs(bench: &Bench, rounds: usize) -> Logs {
    let ns = "bench-logs";
    let dir = bench.app(
        ns,
        Shape {
            web: 100,
            workers: 1,
        },
    );
    bench.plugin(
        "kubectl",
        &["deploy", "--no-input", "--timeout", "600s"],
        &dir,
    );
    let selector = format!("app.kubernetes.io/instance={APP},app.kubernetes.io/component=web");
    let commands: [Vec<&str>; 3] = [
        vec!["kubectl", "rails", "logs", "-p", "web", "--tail", "10"],
        vec!["kubectl-rails", "logs", "-p", "web", "--tail", "10"],
        vec![
            "kubectl", "-n", ns, "logs", "-l", &selector, "--tail", "10", "--prefix",
        ],
    ];
    let mut logs = Logs {
        time: vec![Figure::default(); 3],
        memory: vec![Vec::new(); 3],
        lines: vec![0; 3],
    };
    for round in 0..rounds {
        for i in rotated(&[0, 1, 2], round) {
            if i == 2 && round >= KUBECTL_LOGS_ROUNDS {
                continue;
            }
            let mut args = vec!["-f", "maxrss=%M"];
            args.extend(&commands[i]);
            let (took, out) = bench.cluster.output("/usr/bin/time", &args, &dir);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{:?} failed:\n{stderr}", commands[i]);
            let kib = stderr
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("maxrss="))
                .and_then(|v| v.trim().parse().ok())
                .expect("/usr/bin/time reports the peak memory");
            logs.time[i].push(took);
            logs.memory[i].push(kib);
            if round == 0 {
                logs.lines[i] = String::from_utf8_lossy(&out.stdout).lines().count();
            }
        }
    }
    bench.cluster.delete_namespaces(&[ns.into()]);
    logs
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` lists targets: nothing to run there.
    }
    let started = Instant::now();
    let rounds = env_count("KUBECTL_RAILS_BENCH_ROUNDS", 10);
    let helm = Helm::build();
    let state = std::env::var_os("KUBECTL_RAILS_BENCH_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kubectl-rails-bench"));
    let port_base =
        std::env::var("KUBECTL_RAILS_BENCH_PORT_BASE").unwrap_or_else(|_| "38400".into());
    // A control plane of its own; no real node (there is one per machine, and the test cluster
    // has it).
    eprintln!("==> starting a control plane with {NODES} kwok nodes for the benchmark");
    let cluster = Cluster::up(
        &[
            ("KUBECTL_RAILS_CLUSTER_STATE", state.display().to_string()),
            ("KUBECTL_RAILS_NODES", NODES.to_string()),
            ("KUBECTL_RAILS_PORT_BASE", port_base),
            ("KUBECTL_RAILS_REAL_NODE", "0".to_string()),
        ],
        true,
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = cluster.client(&runtime);
    let mut bench = Bench {
        cluster,
        runtime,
        client,
        helm,
        windows: Vec::new(),
    };

    let startup = section(&format!("start-up ({} rounds)", rounds * 2), || {
        startup(&bench, rounds * 2)
    });
    let mut deploys = Vec::new();
    for (key, label, shape) in [
        ("3r", "3 replicas", Shape { web: 3, workers: 1 }),
        (
            "100r",
            "100 replicas",
            Shape {
                web: 100,
                workers: 1,
            },
        ),
        ("10p", "10 processes", Shape { web: 1, workers: 9 }),
    ] {
        let rollbacks = key == "3r";
        deploys.push(section(
            &format!("deploys, {label} ({rounds} rounds, 4 sides)"),
            || bench.deploys(key, label, shape, rounds, rollbacks),
        ));
    }
    let status = section(&format!("status with 1,000 pods ({rounds} rounds)"), || {
        status(&bench, rounds)
    });
    let logs = section(
        &format!("logs --tail 10 across 100 pods ({rounds} rounds)"),
        || logs(&bench, rounds),
    );
    let calls = audit::counts(
        &bench.cluster.state.join("logs/audit.log"),
        &bench.windows.iter().map(|(_, _, w)| w).collect::<Vec<_>>(),
    );

    println!("\n## Versions\n");
    println!(
        "- {}",
        bench
            .cluster
            .kubectl(&["version"])
            .replace('\n', "; ")
            .trim_end_matches("; ")
    );
    println!("- kubectl-rails {}", env!("CARGO_PKG_VERSION"));
    println!("- Helm {}", bench.helm.version);
    println!("- by-hand variant: {}", by_hand::VARIANT);

    println!("\n## Start-up ({} rounds)\n", startup[0].samples.len());
    header(&["command", "rounds", "min", "median", "max"]);
    let names = [
        "`kubectl rails --version` (through kubectl)",
        "`kubectl-rails --version` (bare binary)",
        "`kubectl-rails render` (bare binary)",
        "`kubectl version --client` (bare binary)",
    ];
    for (name, f) in names.iter().zip(&startup) {
        row(name, f);
    }

    for d in &deploys {
        println!("\n## Deploy, {} (kwok nodes)\n", d.label);
        header(&["figure", "rounds", "min", "median", "max"]);
        for side in Side::ALL {
            row(side.label(), &d.time[&side]);
        }
        for side in Side::ALL {
            row(
                &format!("floor during {}", side.short_label()),
                &d.floor[&side],
            );
        }
        for side in Side::ALL {
            row(
                &format!("overhead of {} over its floor", side.short_label()),
                &d.time[&side].minus(&d.floor[&side]),
            );
        }
        for (what, figures) in [
            ("redeploy, new tag", &d.redeploy),
            ("rollback", &d.rollback),
        ] {
            for (side, f) in figures.iter() {
                let command = match (what, side) {
                    ("rollback", Side::Helm) => "`helm rollback --wait`",
                    ("rollback", _) => "`kubectl-rails rollback`",
                    (_, Side::Helm) => "`helm upgrade --install --wait`",
                    _ => "`kubectl-rails deploy --tag`",
                };
                row(&format!("{what}: {command} (bare binary)"), f);
            }
        }
    }

    println!("\n## Status, 1,000 pods\n");
    header(&["command", "rounds", "min", "median", "max"]);
    row("`kubectl rails status` (through kubectl)", &status[0]);
    row("`kubectl-rails status` (bare binary)", &status[1]);
    row("`kubectl get pods -l ... -o wide` (kubectl)", &status[2]);

    println!("\n## Logs, `--tail 10` across 100 pods\n");
    header(&[
        "command",
        "rounds",
        "min",
        "median",
        "max",
        "lines",
        "peak memory (median, max)",
    ]);
    for (i, name) in LOGS.iter().enumerate() {
        let mut mem = logs.memory[i].clone();
        mem.sort();
        // kubectl execs a plugin in its own process, whose peak then is kubectl's.
        let memory = if i == 0 {
            "kubectl's (it execs the plugin)".to_string()
        } else {
            format!(
                "{:.1} MiB, {:.1} MiB",
                mem[mem.len() / 2] as f64 / 1024.0,
                mem[mem.len() - 1] as f64 / 1024.0
            )
        };
        let f = &logs.time[i];
        println!(
            "| {name} | {} | {} | {} | {} | {} | {memory} |",
            f.samples.len(),
            fmt(f.min()),
            fmt(f.median()),
            fmt(f.max()),
            logs.lines[i],
        );
    }

    println!("\n## Ratios of this run (median, and min over min; below 1 the plugin is faster)\n");
    header(&[
        "comparison",
        "both sides started",
        "plugin / by hand",
        "plugin / Helm",
    ]);
    for d in &deploys {
        println!(
            "| deploy, {} | plugin and by hand through kubectl; plugin and Helm bare binaries | {} | {} |",
            d.label,
            ratio(&d.time[&Side::Plugin], &d.time[&Side::ByHand]),
            ratio(&d.time[&Side::PluginBare], &d.time[&Side::Helm]),
        );
        if !d.rollback.is_empty() {
            println!(
                "| redeploy, {}, new tag | bare binaries | - | {} |",
                d.label,
                ratio(&d.redeploy[&Side::PluginBare], &d.redeploy[&Side::Helm]),
            );
            println!(
                "| rollback, {}: `kubectl-rails rollback` / `helm rollback --wait` | bare binaries | - | {} |",
                d.label,
                ratio(&d.rollback[&Side::PluginBare], &d.rollback[&Side::Helm]),
            );
        }
    }
    println!(
        "| status, 1,000 pods: `kubectl rails status` / `kubectl get pods` | through kubectl | {} | - |",
        ratio(&status[0], &status[2])
    );
    println!(
        "| status, 1,000 pods: `kubectl-rails status` / `kubectl get pods` | bare binaries | {} | - |",
        ratio(&status[1], &status[2])
    );
    println!(
        "| logs, 100 pods: `kubectl rails logs` / `kubectl logs` | through kubectl | {} | - |",
        ratio(&logs.time[0], &logs.time[2])
    );
    println!(
        "| logs, 100 pods: `kubectl-rails logs` / `kubectl logs` | bare binaries | {} | - |",
        ratio(&logs.time[1], &logs.time[2])
    );
    println!(
        "| start-up: `kubectl-rails --version` / `kubectl version --client` | bare binaries | {} | - |",
        ratio(&startup[1], &startup[3])
    );
    println!(
        "| start-up: `kubectl-rails render` / `kubectl version --client` | bare binaries | {} | - |",
        ratio(&startup[2], &startup[3])
    );
    println!(
        "| start-up: `kubectl rails --version` / `kubectl version --client` | the plugin through kubectl, kubectl alone | {} | - |",
        ratio(&startup[0], &startup[3])
    );

    for label in ["3 replicas", "10 processes"] {
        println!("\n## API requests per deploy, {label} (first round, audit log)\n");
        let sides: Vec<(Side, &BTreeMap<String, usize>)> = bench
            .windows
            .iter()
            .zip(&calls)
            .filter(|((l, _, _), _)| l == label)
            .map(|((_, side, _), c)| (*side, c))
            .collect();
        let mut columns = vec!["verb"];
        columns.extend(sides.iter().map(|(s, _)| s.short_label()));
        header(&columns);
        let verbs: BTreeSet<&String> = sides.iter().flat_map(|(_, c)| c.keys()).collect();
        for verb in verbs {
            let counts: Vec<String> = sides
                .iter()
                .map(|(_, c)| c.get(verb).unwrap_or(&0).to_string())
                .collect();
            println!("| {verb} | {} |", counts.join(" | "));
        }
        let totals: Vec<String> = sides
            .iter()
            .map(|(_, c)| c.values().sum::<usize>().to_string())
            .collect();
        println!("| total | {} |", totals.join(" | "));
    }
    eprintln!("==> the benchmark took {}", fmt(started.elapsed()));
}
