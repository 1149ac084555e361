//! The test cluster's real node, as `tests/cluster/real-node` describes it in `real/env`: its
//! private registry, its PostgreSQL (a database per app), and pages fetched through its ingress
//! controller over HTTPS on loopback.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct RealNode {
    env: BTreeMap<String, String>,
}

impl RealNode {
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

    /// `REGISTRY/blog:TAG`.
    pub fn image(&self, tag: &str) -> String {
        format!("{}/blog:{tag}", self.get("REGISTRY"))
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql")
            .args([
                "-h",
                self.get("POSTGRES_HOST"),
                "-p",
                self.get("POSTGRES_PORT"),
                "-U",
                self.get("POSTGRES_USER"),
                "-d",
                "postgres",
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
    }

    /// A fresh database and role `name`; the `DATABASE_URL` pods use (the bridge address, as an
    /// app reaches a database outside the cluster).
    pub fn database(&self, name: &str) -> String {
        self.drop_database(name);
        let password = format!("Bench-{name}-{}", std::process::id());
        self.psql(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"));
        self.psql(&format!("CREATE DATABASE {name} OWNER {name}"));
        format!(
            "postgres://{name}:{password}@{}:{}/{name}",
            self.get("POSTGRES_BRIDGE_HOST"),
            self.get("POSTGRES_PORT")
        )
    }

    pub fn drop_database(&self, name: &str) {
        self.psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        self.psql(&format!("DROP ROLE IF EXISTS {name}"));
    }

    /// `GET https://HOST/` through the ingress controller (loopback, the test CA trusted): the
    /// status (0 when no HTTP answer came within 10 s) and the version on the page.
    pub fn get_page(&self, host: &str) -> (u16, Option<String>) {
        let port = self.get("INGRESS_HTTPS_PORT");
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "--cacert",
                self.get("REGISTRY_CA"),
                "--resolve",
                &format!("{host}:{port}:127.0.0.1"),
                "-w",
                "\n%{http_code}",
                &format!("https://{host}:{port}/"),
            ])
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), version_on(body))
    }

    /// Waits until the page answers 200 with `version` (the ingress controller learns of new
    /// endpoints a moment after the pods are Ready).
    pub fn wait_for_version(&self, host: &str, version: &str) {
        let start = Instant::now();
        loop {
            let (code, seen) = self.get_page(host);
            if code == 200 && seen.as_deref() == Some(version) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "https://{host}/ answers {code} with version {seen:?}, not {version}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
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
