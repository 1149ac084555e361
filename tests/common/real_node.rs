//! Shared by the real-node tests and the real-node benchmark: what `tests/cluster/real-node`
//! wrote about the node it started (`real/env` in the cluster's state folder), its PostgreSQL,
//! pages fetched through its ingress controller, and a paced loop of such requests.

// Included by path into each; each uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The real node's facts: the registry, PostgreSQL, the ingress ports, its label and taint.
pub struct NodeFacts {
    env: BTreeMap<String, String>,
}

impl NodeFacts {
    /// The facts of the real node of the cluster whose state folder is `state`.
    pub fn load(state: &Path) -> Self {
        let file = state.join("real/env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "the test cluster has no real node ({}: {e}); `tests/cluster/up` says why it could not start one",
                file.display()
            )
        });
        let env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { env }
    }

    pub fn get(&self, key: &str) -> &str {
        &self.env[key]
    }

    /// `REGISTRY/blog:TAG`, an image of the example app in the private registry.
    pub fn image(&self, tag: &str) -> String {
        format!("{}/blog:{tag}", self.get("REGISTRY"))
    }

    /// `psql` as the superuser against `db`, one value per line.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                self.get("POSTGRES_HOST"),
                "-p",
                self.get("POSTGRES_PORT"),
                "-U",
                self.get("POSTGRES_USER"),
                "-d",
                db,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", self.get("POSTGRES_PASSWORD"))
            .output()
            .expect("psql is installed with PostgreSQL");
        assert!(
            out.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh database and role `name` with `password`, dropped first if left by an earlier
    /// run; the `DATABASE_URL` pods use (the bridge address, as an app reaches a database
    /// outside the cluster).
    pub fn database(&self, name: &str, password: &str) -> String {
        self.drop_database(name);
        self.psql(
            "postgres",
            &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
        );
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {name}"));
        format!(
            "postgres://{name}:{password}@{}:{}/{name}",
            self.get("POSTGRES_BRIDGE_HOST"),
            self.get("POSTGRES_PORT")
        )
    }

    pub fn drop_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        self.psql("postgres", &format!("DROP ROLE IF EXISTS {name}"));
    }

    /// `GET https://HOST/PATH` through the ingress controller (loopback, the test CA trusted):
    /// the status code (0 when no HTTP answer came within 10 s) and the body.
    pub fn get_page(&self, host: &str, path: &str) -> (u16, String) {
        let out = self
            .curl(host)
            .args(["-w", "\n%{http_code}", &self.url(host, path)])
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// curl, silent, with a 10 s limit, trusting the test CA and sending `host` to the
    /// ingress on loopback.
    fn curl(&self, host: &str) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "--max-time",
            "10",
            "--cacert",
            self.get("REGISTRY_CA"),
            "--resolve",
            &format!("{host}:{}:127.0.0.1", self.get("INGRESS_HTTPS_PORT")),
        ]);
        cmd
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.get("INGRESS_HTTPS_PORT"))
    }

    /// The status of `https://HOST/` and the version on the page.
    pub fn answer(&self, host: &str) -> Answer {
        let (code, body) = self.get_page(host, "/");
        (code, version_on(&body))
    }
}

/// The version line the example app prints on its page (`Blog version 1.0.0`).
pub fn version_on(page: &str) -> Option<String> {
    let at = page.find("Blog version ")?;
    Some(
        page[at + "Blog version ".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect(),
    )
}

/// What one request got: the HTTP status (0: no answer within 10 s) and the version on the page.
pub type Answer = (u16, Option<String>);

/// Requests through the ingress, one after another, paced at `per_second` (a request that takes
/// longer delays the next), each answer kept in order, until stopped.
pub struct RequestLoop {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    worker: std::thread::JoinHandle<()>,
    started: Instant,
}

impl RequestLoop {
    pub fn start(node: Arc<NodeFacts>, host: &str, per_second: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (flag, sink, host) = (stop.clone(), answers.clone(), host.to_string());
        let worker = std::thread::spawn(move || {
            let gap = Duration::from_secs(1) / per_second;
            let mut next = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                let answer = node.answer(&host);
                sink.lock().unwrap().push(answer);
                next += gap;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Self {
            stop,
            answers,
            worker,
            started: Instant::now(),
        }
    }

    /// How many answers so far.
    pub fn len(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Waits until the last `n` answers are all 200 with `version`, for at most `limit`: the
    /// ingress controller stops routing to old pods a moment after a rollout ends.
    pub fn settle_on(&self, version: &str, n: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            {
                let answers = self.answers.lock().unwrap();
                if answers.len() >= n
                    && answers[answers.len() - n..]
                        .iter()
                        .all(|(code, v)| *code == 200 && v.as_deref() == Some(version))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Stops the loop: every answer, and how long it ran.
    pub fn stop(self) -> (Vec<Answer>, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.worker.join().unwrap();
        let took = self.started.elapsed();
        (std::mem::take(&mut *self.answers.lock().unwrap()), took)
    }
}

/// What one browser-like page load got: the page's status and version, then each asset the
/// page names (`href`/`src` under `/assets/`) with its status.
#[derive(Debug, Clone)]
pub struct PageLoad {
    pub code: u16,
    pub version: Option<String>,
    pub assets: Vec<(String, u16)>,
}

/// The asset paths a page names in `href="..."` and `src="..."`, under `prefix`.
pub fn asset_paths(page: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for (at, _) in page.match_indices(attr) {
            let rest = &page[at + attr.len()..];
            if let Some(end) = rest.find('"')
                && rest[..end].starts_with(prefix)
            {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

impl NodeFacts {
    /// The status of each `https://HOST/PATH`, in one curl (one connection per asset, as a
    /// browser's first visit).
    pub fn statuses(&self, host: &str, paths: &[String]) -> Vec<u16> {
        if paths.is_empty() {
            return Vec::new();
        }
        let mut cmd = self.curl(host);
        cmd.args(["-w", "%{http_code}\n"]);
        for path in paths {
            cmd.args(["-o", "/dev/null", &self.url(host, path)]);
        }
        let out = cmd.output().expect("curl is installed");
        let codes: Vec<u16> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().unwrap_or(0))
            .collect();
        (0..paths.len())
            .map(|i| codes.get(i).copied().unwrap_or(0))
            .collect()
    }

    /// A page, then every asset it names, as a browser loads it.
    pub fn load_page(&self, host: &str) -> PageLoad {
        let (code, body) = self.get_page(host, "/");
        let paths = asset_paths(&body, "/assets/");
        let codes = self.statuses(host, &paths);
        PageLoad {
            code,
            version: version_on(&body),
            assets: paths.into_iter().zip(codes).collect(),
        }
    }
}

/// Browser-like page loads through the ingress, paced at `per_second` pages, on `threads`
/// threads, until stopped.
pub struct BrowserLoop {
    stop: Arc<AtomicBool>,
    loads: Arc<Mutex<Vec<PageLoad>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl BrowserLoop {
    pub fn start(node: Arc<NodeFacts>, host: &str, per_second: u32, threads: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let loads = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..threads)
            .map(|_| {
                let (flag, sink, host, node) =
                    (stop.clone(), loads.clone(), host.to_string(), node.clone());
                std::thread::spawn(move || {
                    let gap = Duration::from_secs(1) * threads / per_second;
                    let mut next = Instant::now();
                    while !flag.load(Ordering::SeqCst) {
                        let load = node.load_page(&host);
                        sink.lock().unwrap().push(load);
                        next += gap;
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            loads,
            workers,
        }
    }

    /// Stops the loads: every one, in the order they ended.
    pub fn stop(self) -> Vec<PageLoad> {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.join().unwrap();
        }
        std::mem::take(&mut *self.loads.lock().unwrap())
    }
}

/// What a run of page loads saw: pages, assets fetched, asset 404s and answers that were not
/// 200 (5xx, no answer) of pages and assets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadCounts {
    pub pages: usize,
    pub assets: usize,
    pub asset_404s: usize,
    pub other_failures: usize,
}

pub fn count_loads(loads: &[PageLoad]) -> LoadCounts {
    let mut c = LoadCounts {
        pages: loads.len(),
        ..LoadCounts::default()
    };
    for l in loads {
        if l.code != 200 {
            c.other_failures += 1;
        }
        for (_, code) in &l.assets {
            c.assets += 1;
            match code {
                200 => {}
                404 => c.asset_404s += 1,
                _ => c.other_failures += 1,
            }
        }
    }
    c
}
