//! `cargo bench -p kubectl-rails --bench real`: real pods on the test cluster's real node (kubelet
//! and containerd; the example app's image from the private registry, its migration against
//! PostgreSQL, Ready through its real `/up`, pages through the HAProxy ingress controller).
//!
//! - Deploys: the plugin against the by-hand path with the same manifests, a first deploy of an
//!   image whose layers no node has (a real pull) and a redeploy of a new tag (a new app layer on
//!   the same base); the floor (first write to the last pod Ready) and each side's overhead.
//! - Requests lost during 10 consecutive rolling deploys, ~20 requests a second through the
//!   ingress: the plugin's manifests against the seed's hand-written ones with `kubectl apply`.
//! - Time to diagnose an image that cannot be pulled and a container that exits at boot: the
//!   plugin against `kubectl rollout status` with a stated progress deadline.
//!
//! It uses the running test cluster (`tests/cluster/up` starts one when none runs, and reuses a
//! running one) and leaves it running. `KUBECTL_RAILS_BENCH_REAL_ROUNDS` (2) and
//! `KUBECTL_RAILS_BENCH_DIAGNOSE_ROUNDS` (2) set the rounds, `KUBECTL_RAILS_BENCH_ROLLOUTS` (10)
//! the rolling deploys under traffic.

// A report for people: it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../../../../tests/common/copy_dir.rs"]
mod copy_dir;
#[path = "../../../../tests/common/real_node.rs"]
mod real_node;
#[path = "../support/mod.rs"]
mod support;

mod image;
mod node;
mod seed;
mod traffic;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use copy_dir::copy_dir;

use image::Images;
use node::RealNode;
use real_node::{BrowserLoop, LoadCounts, RequestLoop, count_loads};
use support::by_hand::{self, Manifests};
use support::stats::{Figure, fmt, header, ratio, row};
use support::{Cluster, env_count, floor, root, section};
use traffic::Lost;

const APP: &str = "blog";
const WEB_REPLICAS: &str = "2";
/// Web and the heartbeat worker.
const PODS: usize = 3;
/// The progress deadline the by-hand Deployments get in the diagnosis rounds: `kubectl rollout
/// status` fails when it passes, and not before.
const PROGRESS_DEADLINE: u64 = 60;
const REQUESTS_PER_SECOND: u32 = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Plugin,
    ByHand,
}

impl Side {
    fn short(self) -> &'static str {
        match self {
            Side::Plugin => "rails",
            Side::ByHand => "hand",
        }
    }
}

/// `items` rotated so that round `round` starts with a different one each time.
fn rotated<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let mut v = items.to_vec();
    v.rotate_left(round % items.len());
    v
}

struct Real {
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    node: RealNode,
    /// Part of every tag the bench pushes.
    run: String,
    /// Namespaces made and not yet torn down: removed on drop too, so that a failed run does
    /// not leave pods on the shared node.
    live: std::cell::RefCell<Vec<String>>,
}

impl Drop for Real {
    fn drop(&mut self) {
        for ns in self.live.borrow().iter() {
            let _ = self
                .cluster
                .cmd(
                    "kubectl",
                    &["delete", "namespace", ns, "--wait=false"],
                    self.cluster.work.path(),
                )
                .output();
        }
    }
}

/// A copy of `examples/blog` set up in its own namespace with its own database.
struct App {
    ns: String,
    host: String,
    db: String,
    /// The database's URL, in the app Secret.
    url: String,
    dir: PathBuf,
}

impl Real {
    /// `examples/blog` initialised for the real node with `image`, in a new namespace `ns` with
    /// its Secret (the master key, a fresh database's URL) and its pull secret.
    fn app(&self, ns: &str, image: &str) -> App {
        let host = format!("{ns}.example.com");
        let db = ns.replace('-', "_");
        let url = self.node.database(&db);
        let dir = self.cluster.work.path().join(ns);
        copy_dir(&root().join("examples/blog"), &dir);
        let taint = format!("{}:NoSchedule", self.node.get("REAL_NODE_TAINT"));
        self.cluster.run(
            "kubectl",
            &[
                "rails",
                "init",
                "--no-input",
                "--image",
                image,
                "--host",
                &host,
                "--replicas",
                WEB_REPLICAS,
                "--private",
                "-n",
                ns,
                "--node-selector",
                self.node.get("REAL_NODE_SELECTOR"),
                "--toleration",
                &taint,
            ],
            &dir,
        );
        modest_cpu_requests(&dir);
        // A namespace left by an interrupted run goes first.
        self.cluster.delete_namespaces(&[ns.to_string()]);
        self.cluster.kubectl(&["create", "namespace", ns]);
        self.live.borrow_mut().push(ns.to_string());
        let out = self
            .cluster
            .cmd("kubectl", &["rails", "secrets", "import", "--yes"], &dir)
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(out.status.success(), "secrets import failed");
        self.with_stdin(
            &[
                "rails",
                "secrets",
                "registry",
                "--server",
                self.node.get("REGISTRY"),
                "--username",
                self.node.get("REGISTRY_USER"),
                "--password-stdin",
            ],
            &dir,
            self.node.get("REGISTRY_PASSWORD"),
        );
        App {
            ns: ns.to_string(),
            host,
            db,
            url,
            dir,
        }
    }

    /// `kubectl ARGS` with `input` on stdin; it must succeed.
    fn with_stdin(&self, args: &[&str], dir: &Path, input: &str) {
        let mut child = self
            .cluster
            .cmd("kubectl", args, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "kubectl {args:?} failed");
    }

    /// Deletes the app's namespace without waiting (its pods' preStop and Puma's shutdown take
    /// a few seconds, which the next app's set-up covers) and drops its database.
    fn teardown(&self, app: App) {
        self.cluster
            .kubectl(&["delete", "namespace", &app.ns, "--wait=false"]);
        self.live.borrow_mut().retain(|ns| *ns != app.ns);
        self.node.drop_database(&app.db);
    }

    /// `kubectl rails deploy --tag TAG` of `app`; its wall time.
    fn deploy_tag(&self, app: &App, tag: &str) -> Duration {
        let args = [
            "rails",
            "deploy",
            "--no-input",
            "--tag",
            tag,
            "--timeout",
            "300s",
        ];
        self.cluster.run("kubectl", &args, &app.dir).0
    }

    /// The by-hand manifests of `app` with the image tag `tag`, rendered from its spec.
    fn manifests(&self, app: &App, tag: &str, name: &str) -> Manifests {
        set_tag(&app.dir, tag);
        Manifests::render(&self.cluster, &app.dir, &app.ns, &app.dir.join(name))
    }

    /// The kubelet's pull times in `ns` of `image`, from its `Pulled` events.
    fn pulls(&self, ns: &str, image: &str) -> Vec<Duration> {
        self.cluster
            .kubectl(&[
                "-n",
                ns,
                "get",
                "events",
                "--field-selector",
                "reason=Pulled",
                "-o",
                "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
            ])
            .lines()
            .filter(|l| l.contains(&format!("\"{image}\"")))
            .filter_map(pull_time)
            .collect()
    }
}

/// The real node has two cores, shared with the test suite's apps: the bench's pods ask for
/// little CPU (the same for every side, and no limit), so that a rolling update can always
/// place its extra pod.
fn modest_cpu_requests(app_dir: &Path) {
    let spec = app_dir.join("config/kubernetes.yml");
    let text: String = std::fs::read_to_string(&spec)
        .unwrap()
        .lines()
        .map(|l| match l.trim_start().strip_prefix("cpu:") {
            Some(_) => format!("{}cpu: 50m\n", &l[..l.len() - l.trim_start().len()]),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&spec, text).unwrap();
}

/// The spec's image tag set to `tag`.
fn set_tag(app_dir: &Path, tag: &str) {
    let spec = app_dir.join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let text: String = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("tag:") {
            Some(_) => format!("{}tag: \"{tag}\"\n", &l[..l.len() - l.trim_start().len()]),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&spec, text).unwrap();
}

/// `Successfully pulled image "X" in 1.234s (1.234s including waiting) ...`: the first time.
fn pull_time(message: &str) -> Option<Duration> {
    let rest = message.split(" in ").nth(1)?;
    parse_go_duration(rest.split_whitespace().next()?)
}

/// A Go duration as the kubelet prints it: `532ms`, `1.5s`, `1m2.3s`.
fn parse_go_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse::<f64>()
            .ok()
            .map(|v| Duration::from_secs_f64(v / 1000.0));
    }
    let s = text.strip_suffix('s')?;
    let (minutes, seconds) = match s.split_once('m') {
        Some((m, s)) => (m.parse::<f64>().ok()?, s.parse::<f64>().ok()?),
        None => (0.0, s.parse::<f64>().ok()?),
    };
    Some(Duration::from_secs_f64(minutes * 60.0 + seconds))
}

/// Sets `progressDeadlineSeconds` on every Deployment of the by-hand manifests.
fn with_progress_deadline(m: &Manifests) {
    for entry in std::fs::read_dir(&m.deployments).unwrap() {
        let path = entry.unwrap().path();
        let mut d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        d["spec"]["progressDeadlineSeconds"] = PROGRESS_DEADLINE.into();
        std::fs::write(&path, serde_json::to_string_pretty(&d).unwrap()).unwrap();
    }
}

#[derive(Default)]
struct Deploys {
    first: [Figure; 2],
    first_floor: [Figure; 2],
    redeploy: [Figure; 2],
    redeploy_floor: [Figure; 2],
    /// The longest pull of each deploy, first deploys then redeploys.
    first_pull: Figure,
    redeploy_pull: Figure,
}

fn deploys(real: &Real, rounds: usize) -> Deploys {
    let mut d = Deploys::default();
    let images = Images::new(&real.node, &real.cluster.work.path().join("oci"));
    for round in 0..rounds {
        for side in rotated(&[Side::Plugin, Side::ByHand], round) {
            let i = side as usize;
            let ns = format!("bench-real-{}-{round}", side.short());
            // A release and its next version: all new layers, then a new app layer on the same
            // base, as an app's next build is.
            let first_tag = format!("bench-{}-{round}-{}-a", real.run, side.short());
            let next_tag = format!("bench-{}-{round}-{}-b", real.run, side.short());
            let base = images.push_unpulled(&real.node, "1.0.0", None, &first_tag);
            images.push_unpulled(&real.node, "2.0.0", Some(&base), &next_tag);
            let app = real.app(&ns, &real.node.image(&first_tag));
            for (tag, time, floor_fig, pull, version) in [
                (
                    &first_tag,
                    &mut d.first[i],
                    &mut d.first_floor[i],
                    &mut d.first_pull,
                    "1.0.0",
                ),
                (
                    &next_tag,
                    &mut d.redeploy[i],
                    &mut d.redeploy_floor[i],
                    &mut d.redeploy_pull,
                    "2.0.0",
                ),
            ] {
                let image = real.node.image(tag);
                let manifests = (side == Side::ByHand).then(|| real.manifests(&app, tag, tag));
                let watch = floor::arm(&real.runtime, &real.client, &ns, APP, &image, PODS);
                let took = match manifests {
                    Some(m) => m.deploy(&real.cluster, &ns, "300s"),
                    None => real.deploy_tag(&app, tag),
                };
                time.push(took);
                floor_fig.push(
                    watch
                        .wait(&real.runtime)
                        .expect("the release's pods became Ready"),
                );
                if let Some(longest) = real.pulls(&ns, &image).into_iter().max() {
                    pull.push(longest);
                }
                real.node.wait_for_version(&app.host, version);
            }
            real.teardown(app);
        }
    }
    d
}

/// Requests lost during `rollouts` consecutive rolling deploys of one side.
fn rollouts(real: &Real, side: Side, rollouts: usize) -> Lost {
    let ns = format!("bench-real-traffic-{}", side.short());
    let (app, deploy) = traffic_app(real, side, &ns, true);
    let traffic = RequestLoop::start(real.node.facts(), &app.host, REQUESTS_PER_SECOND);
    std::thread::sleep(Duration::from_secs(2));
    let mut bounds = Vec::new();
    for i in 0..rollouts {
        let tag = if i % 2 == 0 { "2.0.0" } else { "1.0.0" };
        bounds.push(traffic.len());
        deploy(tag);
        let settled = traffic.settle_on(tag, 20, Duration::from_secs(30));
        if !settled {
            eprintln!(
                "    deploy {} of {tag}: answers had not settled after 30 s",
                i + 1
            );
        }
    }
    let (answers, took) = traffic.stop();
    drop(deploy);
    real.teardown(app);
    Lost::count(&answers, &bounds, took)
}

/// Browser-like page loads (the page, then its CSS and JS) during `rollouts` consecutive
/// rolling deploys between two releases whose assets differ: the plugin with its asset server,
/// the plugin without it (`assets:` taken out of the spec: the manifests before it), and the
/// seed's manifests.
fn asset_rollouts(real: &Real, side: Side, assets: bool, rollouts: usize) -> LoadCounts {
    let ns = format!(
        "bench-real-assets-{}{}",
        side.short(),
        if assets { "" } else { "-none" }
    );
    let (app, deploy) = traffic_app(real, side, &ns, assets);
    let traffic = BrowserLoop::start(real.node.facts(), &app.host, REQUESTS_PER_SECOND, 4);
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..rollouts {
        let tag = if i % 2 == 0 { "2.0.0" } else { "1.0.0" };
        deploy(tag);
        real.node.wait_for_version(&app.host, tag);
    }
    // The last rollout's old pods drain too.
    std::thread::sleep(Duration::from_secs(5));
    let loads = traffic.stop();
    drop(deploy);
    real.teardown(app);
    count_loads(&loads)
}

/// How one side deploys a tag of its app.
type DeployTag<'a> = Box<dyn Fn(&str) + 'a>;

/// An app of `side` serving 1.0.0, and how that side deploys a tag. `assets: false` takes the
/// asset server out of the plugin's spec.
fn traffic_app<'a>(real: &'a Real, side: Side, ns: &str, assets: bool) -> (App, DeployTag<'a>) {
    let first = real.node.image("1.0.0");
    let app = real.app(ns, &first);
    if !assets {
        let file = app.dir.join("config/kubernetes.yml");
        let text = std::fs::read_to_string(&file).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("assets:")).collect();
        assert!(
            kept.len() + 1 == text.lines().count(),
            "`assets:` is one line of the spec:\n{text}"
        );
        std::fs::write(&file, kept.join("\n") + "\n").unwrap();
    }
    let seed_ns = ns.to_string();
    let seed_dir = app.dir.join("k8s");
    let master_key = std::fs::read_to_string(app.dir.join("config/master.key")).unwrap();
    let (dir, host, url) = (app.dir.clone(), app.host.clone(), app.url.clone());
    let plugin_app = App {
        ns: app.ns.clone(),
        host: host.clone(),
        db: app.db.clone(),
        url: url.clone(),
        dir: dir.clone(),
    };
    let deploy = move |tag: &str| match side {
        Side::Plugin => {
            real.deploy_tag(&plugin_app, tag);
        }
        Side::ByHand => {
            std::fs::create_dir_all(&seed_dir).unwrap();
            for (file, text) in seed::manifests(
                &real.node,
                &real.node.image(tag),
                &host,
                &url,
                master_key.trim(),
            ) {
                std::fs::write(seed_dir.join(file), text).unwrap();
            }
            real.cluster.run(
                "kubectl",
                &["-n", &seed_ns, "apply", "-f", seed_dir.to_str().unwrap()],
                &dir,
            );
            // Only to know when the rollout ended; the seed itself waits by looking.
            real.cluster.kubectl(&[
                "-n",
                &seed_ns,
                "rollout",
                "status",
                &format!("deployment/{}", seed::DEPLOYMENT),
                "--timeout=300s",
            ]);
        }
    };
    if side == Side::ByHand {
        // The seed's pull secret and its first apply, then its migration in a running pod.
        real.cluster.kubectl(&[
            "-n",
            ns,
            "create",
            "secret",
            "docker-registry",
            "regcred",
            &format!("--docker-server={}", real.node.get("REGISTRY")),
            &format!("--docker-username={}", real.node.get("REGISTRY_USER")),
            &format!("--docker-password={}", real.node.get("REGISTRY_PASSWORD")),
        ]);
        deploy("1.0.0");
        real.cluster.kubectl(&[
            "-n",
            ns,
            "exec",
            &format!("deployment/{}", seed::DEPLOYMENT),
            "--",
            "bin/rails",
            "db:migrate",
        ]);
    } else {
        deploy("1.0.0");
    }
    real.node.wait_for_version(&app.host, "1.0.0");
    (app, Box::new(deploy))
}

/// Seconds until each side exits non-zero on a broken release, and what it said.
#[derive(Default)]
struct Diagnosis {
    unpullable: [Figure; 2],
    crash: [Figure; 2],
    said: [Vec<String>; 2],
}

/// The lines of a failed command's stderr that say why.
fn cause(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("hint:"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn diagnose(real: &Real, rounds: usize) -> Diagnosis {
    let mut d = Diagnosis::default();
    let wrong_key = "0123456789abcdef0123456789abcdef";
    for round in 0..rounds {
        for side in rotated(&[Side::Plugin, Side::ByHand], round) {
            let i = side as usize;
            let ns = format!("bench-real-diag-{}-{round}", side.short());
            let app = real.app(&ns, &real.node.image("1.0.0"));
            let missing = format!("missing-{}-{round}-{}", real.run, side.short());
            match side {
                Side::Plugin => {
                    let deploy = |extra: &[&str]| {
                        let mut args = vec!["rails", "deploy", "--no-input", "--timeout", "300s"];
                        args.extend(extra);
                        real.cluster.output("kubectl", &args, &app.dir)
                    };
                    let (_, out) = deploy(&[]);
                    assert!(out.status.success(), "the first release deploys");
                    let image = real.node.image(&missing);
                    let (took, out) = deploy(&["--image", &image, "--migrate", "skip"]);
                    assert!(!out.status.success(), "a missing image fails the deploy");
                    d.unpullable[i].push(took);
                    let unpullable = cause(&String::from_utf8_lossy(&out.stderr));
                    set_master_key(real, &app, wrong_key);
                    let (took, out) = deploy(&["--tag", "2.0.0", "--migrate", "skip"]);
                    assert!(
                        !out.status.success(),
                        "a crashing container fails the deploy"
                    );
                    d.crash[i].push(took);
                    if round == 0 {
                        d.said[i] = vec![unpullable, cause(&String::from_utf8_lossy(&out.stderr))];
                    }
                }
                Side::ByHand => {
                    let m = real.manifests(&app, "1.0.0", "v1");
                    with_progress_deadline(&m);
                    m.deploy(&real.cluster, &ns, "300s");
                    let m = real.manifests(&app, &missing, "missing");
                    with_progress_deadline(&m);
                    let (took, unpullable) = roll_by_hand(real, &ns, &m);
                    d.unpullable[i].push(took);
                    set_master_key(real, &app, wrong_key);
                    let m = real.manifests(&app, "2.0.0", "crash");
                    with_progress_deadline(&m);
                    let (took, crash) = roll_by_hand(real, &ns, &m);
                    d.crash[i].push(took);
                    if round == 0 {
                        d.said[i] = vec![unpullable, crash];
                    }
                }
            }
            real.teardown(app);
        }
    }
    d
}

/// `kubectl rails secrets set RAILS_MASTER_KEY=...` (the pods roll on the next deploy).
fn set_master_key(real: &Real, app: &App, key: &str) {
    real.cluster.run(
        "kubectl",
        &[
            "rails",
            "secrets",
            "set",
            &format!("RAILS_MASTER_KEY={key}"),
        ],
        &app.dir,
    );
}

/// By hand, a broken release: apply the Deployments, then `kubectl rollout status` of web,
/// which must fail; its time from the apply and what it said.
fn roll_by_hand(real: &Real, ns: &str, m: &Manifests) -> (Duration, String) {
    let start = Instant::now();
    by_hand::apply(&real.cluster, ns, &m.deployments);
    let (_, out) = real.cluster.output(
        "kubectl",
        &[
            "-n",
            ns,
            "rollout",
            "status",
            &format!("deployment/{APP}-web"),
            "--timeout=600s",
        ],
        real.cluster.work.path(),
    );
    let took = start.elapsed();
    assert!(
        !out.status.success(),
        "rollout status fails at the deadline"
    );
    (took, cause(&String::from_utf8_lossy(&out.stderr)))
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` lists targets: nothing to run there.
    }
    let started = Instant::now();
    let rounds = env_count("KUBECTL_RAILS_BENCH_REAL_ROUNDS", 2);
    let diagnose_rounds = env_count("KUBECTL_RAILS_BENCH_DIAGNOSE_ROUNDS", 2);
    let rollout_count = env_count("KUBECTL_RAILS_BENCH_ROLLOUTS", 10);
    eprintln!("==> the test cluster and its real node (tests/cluster/up)");
    let cluster = Cluster::up(&[], false);
    let node = RealNode::load(&cluster.state);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = cluster.client(&runtime);
    let real = Real {
        cluster,
        runtime,
        client,
        node,
        run: format!("{}", std::process::id()),
        live: Default::default(),
    };

    // `KUBECTL_RAILS_BENCH_REAL_SECTIONS=assets` runs that part alone.
    let sections = std::env::var("KUBECTL_RAILS_BENCH_REAL_SECTIONS")
        .unwrap_or_else(|_| "deploys,requests,assets,diagnose".into());
    let runs = |name: &str| sections.split(',').any(|s| s.trim() == name);
    let deploys = runs("deploys").then(|| {
        section(
            &format!("deploys: plugin and by hand, first deploy and redeploy ({rounds} rounds)"),
            || deploys(&real, rounds),
        )
    });
    let lost = runs("requests").then(|| {
        [Side::Plugin, Side::ByHand].map(|side| {
            section(
                &format!("requests during {rollout_count} rolling deploys: {side:?}"),
                || rollouts(&real, side, rollout_count),
            )
        })
    });
    let assets = runs("assets").then(|| {
        [(Side::Plugin, true), (Side::Plugin, false), (Side::ByHand, false)].map(
            |(side, assets)| {
                section(
                    &format!(
                        "page loads with their assets during {rollout_count} rolling deploys: {side:?}{}",
                        if assets { ", asset server" } else { "" }
                    ),
                    || asset_rollouts(&real, side, assets, rollout_count),
                )
            },
        )
    });
    let diagnosis = runs("diagnose").then(|| {
        section(
            &format!("time to diagnose a broken release ({diagnose_rounds} rounds)"),
            || diagnose(&real, diagnose_rounds),
        )
    });

    println!("\n## Versions\n");
    println!(
        "- {}",
        real.cluster
            .kubectl(&["version"])
            .trim()
            .replace('\n', "; ")
    );
    println!(
        "- real node: {}",
        real.cluster
            .kubectl(&[
                "get",
                "node",
                real.node.get("REAL_NODE"),
                "-o",
                "jsonpath={.status.nodeInfo.kubeletVersion}, {.status.nodeInfo.containerRuntimeVersion}, {.status.nodeInfo.osImage}",
            ])
            .trim()
    );
    println!("- by-hand variant: {}", by_hand::VARIANT);

    if let Some(deploys) = &deploys {
        println!("\n## Deploy of examples/blog on the real node (web 2, heartbeat 1)\n");
        header(&["figure", "rounds", "min", "median", "max"]);
        for (what, time, floor) in [
            ("first deploy", &deploys.first, &deploys.first_floor),
            (
                "redeploy, new tag",
                &deploys.redeploy,
                &deploys.redeploy_floor,
            ),
        ] {
            let [plugin, hand] = time;
            row(&format!("{what}: `kubectl rails deploy`"), plugin);
            row(&format!("{what}: by hand, plain kubectl"), hand);
            row(
                &format!("{what}: floor during `kubectl rails deploy`"),
                &floor[0],
            );
            row(&format!("{what}: floor during by hand"), &floor[1]);
            row(
                &format!("{what}: overhead of `kubectl rails deploy` over its floor"),
                &plugin.minus(&floor[0]),
            );
            row(
                &format!("{what}: overhead of by hand over its floor"),
                &hand.minus(&floor[1]),
            );
        }
        row(
            "first deploy: the kubelet's image pull (longest per deploy, `Pulled` events)",
            &deploys.first_pull,
        );
        row(
            "redeploy: the kubelet's image pull (longest per deploy, `Pulled` events)",
            &deploys.redeploy_pull,
        );
    }
    if let Some(lost) = &lost {
        println!(
            "\n## Requests lost during {rollout_count} consecutive rolling deploys (~{REQUESTS_PER_SECOND}/s through the ingress)\n"
        );
        header(&[
            "side",
            "requests",
            "seconds",
            "no answer",
            "5xx",
            "other non-200",
            "deploys with a loss",
            "statuses",
        ]);
        for (name, l) in [
            (
                "`kubectl rails deploy` (its manifests: readiness probe, preStop)",
                &lost[0],
            ),
            ("the seed's manifests, `kubectl apply -f k8s/`", &lost[1]),
        ] {
            let statuses: Vec<String> = l
                .statuses
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            println!(
                "| {name} | {} | {:.0} | {} | {} | {} | {} of {} | {} |",
                l.requests,
                l.seconds,
                l.failed,
                l.server_errors,
                l.other,
                l.deploys_with_loss,
                l.deploys,
                statuses.join(", ")
            );
        }
    }
    if let Some(assets) = &assets {
        println!(
            "\n## Page loads with their assets during {rollout_count} consecutive rolling deploys between releases whose assets differ (~{REQUESTS_PER_SECOND} pages/s through the ingress)\n"
        );
        header(&[
            "side",
            "pages",
            "assets fetched",
            "asset 404s",
            "5xx or no answer (pages and assets)",
        ]);
        for (name, c) in [
            (
                "`kubectl rails deploy` with its asset server (`assets:`)",
                &assets[0],
            ),
            (
                "`kubectl rails deploy` without it (the manifests before it)",
                &assets[1],
            ),
            ("the seed's manifests, `kubectl apply -f k8s/`", &assets[2]),
        ] {
            println!(
                "| {name} | {} | {} | {} | {} |",
                c.pages, c.assets, c.asset_404s, c.other_failures
            );
        }
    }
    if let Some(diagnosis) = &diagnosis {
        println!("\n## Time to diagnose a broken release (until the command exits non-zero)\n");
        header(&["figure", "rounds", "min", "median", "max"]);
        row(
            "image that cannot be pulled: `kubectl rails deploy`",
            &diagnosis.unpullable[0],
        );
        row(
            &format!(
                "image that cannot be pulled: `kubectl rollout status` (progressDeadlineSeconds {PROGRESS_DEADLINE})"
            ),
            &diagnosis.unpullable[1],
        );
        row(
            "container that exits at boot: `kubectl rails deploy`",
            &diagnosis.crash[0],
        );
        row(
            &format!(
                "container that exits at boot: `kubectl rollout status` (progressDeadlineSeconds {PROGRESS_DEADLINE})"
            ),
            &diagnosis.crash[1],
        );
        println!("\nWhat each said (first round):\n");
        for (who, said) in [
            ("`kubectl rails deploy`", &diagnosis.said[0]),
            ("`kubectl rollout status`", &diagnosis.said[1]),
        ] {
            for (case, line) in ["cannot be pulled", "exits at boot"].iter().zip(said) {
                println!("- {who}, {case}: `{line}`");
            }
        }
    }
    if let (Some(deploys), Some(diagnosis)) = (&deploys, &diagnosis) {
        println!("\n## Ratios of this run (median, and min over min; plugin / by hand)\n");
        header(&["comparison", "both sides started", "plugin / by hand"]);
        println!(
            "| first deploy, real node | through kubectl | {} |",
            ratio(&deploys.first[0], &deploys.first[1])
        );
        println!(
            "| redeploy, new tag, real node | through kubectl | {} |",
            ratio(&deploys.redeploy[0], &deploys.redeploy[1])
        );
        println!(
            "| diagnose, image that cannot be pulled | through kubectl | {} |",
            ratio(&diagnosis.unpullable[0], &diagnosis.unpullable[1])
        );
        println!(
            "| diagnose, container that exits at boot | through kubectl | {} |",
            ratio(&diagnosis.crash[0], &diagnosis.crash[1])
        );
    }
    eprintln!("==> the benchmark took {}", fmt(started.elapsed()));
}
