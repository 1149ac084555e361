//! The seed's whole journey on the test cluster's real node: the example Rails app pulled from a
//! private registry, migrating a real PostgreSQL, Ready through its real `/up`, answering through
//! a real ingress controller. Nothing here is simulated: if the real node is missing, these tests
//! fail and say why.

mod assets;
mod bake;
mod build;
mod canary;
mod gateway;
mod journey;
mod logs;
mod maintenance;
mod registry;
mod shapes;
mod trouble;

#[path = "../../common/real_node.rs"]
mod real_node;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub use real_node::{RequestLoop, version_on};

use crate::support::{Run, TestNs, cluster, leaks, root};

/// What `tests/cluster/real-node` wrote about the node it started.
pub struct RealNode {
    facts: Arc<real_node::NodeFacts>,
}

/// The real node runs one of these tests at a time: it has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl RealNode {
    /// The running real node, and the right to use it alone.
    pub fn take() -> (&'static RealNode, MutexGuard<'static, ()>) {
        let node = Self::load();
        let guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (node, guard)
    }

    /// The node's facts, read once from the cluster's state folder.
    fn load() -> &'static RealNode {
        static NODE: OnceLock<RealNode> = OnceLock::new();
        NODE.get_or_init(|| {
            let state = cluster()
                .parent()
                .expect("the kubeconfig lives in the cluster's state folder");
            let facts = real_node::NodeFacts::load(state);
            leaks::register(facts.get("REGISTRY_PASSWORD"));
            leaks::register(facts.get("POSTGRES_PASSWORD"));
            RealNode {
                facts: Arc::new(facts),
            }
        })
    }

    pub fn get(&self, key: &str) -> &str {
        self.facts.get(key)
    }

    /// `REGISTRY/blog:TAG`, an image of the example app in the private registry.
    pub fn image(&self, tag: &str) -> String {
        self.facts.image(tag)
    }

    /// A copy of the image `tag` under a tag of its own, which no node has pulled yet (a cached
    /// image is started without asking the registry again).
    pub fn fresh_tag(&self, tag: &str, fresh: &str) -> String {
        let creds = format!(
            "{}:{}",
            self.get("REGISTRY_USER"),
            self.get("REGISTRY_PASSWORD")
        );
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--src-creds",
                &creds,
                "--dest-creds",
                &creds,
                "--src-cert-dir",
                self.get("REGISTRY_CERT_DIR"),
                "--dest-cert-dir",
                self.get("REGISTRY_CERT_DIR"),
                &format!("docker://{}", self.image(tag)),
                &format!("docker://{}", self.image(fresh)),
            ])
            .output()
            .expect("skopeo is installed with the real node");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.image(fresh)
    }

    /// The `init` flags that put every pod of the app on the real node.
    pub fn placement_flags(&self) -> Vec<String> {
        vec![
            "--node-selector".into(),
            self.get("REAL_NODE_SELECTOR").into(),
            "--toleration".into(),
            format!("{}:NoSchedule", self.get("REAL_NODE_TAINT")),
        ]
    }

    /// `psql` as the superuser against `db`, one value per line.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.facts.psql(db, sql)
    }

    /// A database and role of its own for one test; the `DATABASE_URL` pods use (through the
    /// bridge address, as an app reaches a database outside the cluster).
    pub fn database(&self, name: &str) -> String {
        // Nothing of the name in it: the leak check looks for every 8-character slice.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let password = format!("Pw{}q{nanos}z", std::process::id());
        leaks::register(&password);
        self.facts.database(name, &password)
    }

    /// `GET https://HOST/PATH` through the ingress controller: the status code and the body.
    pub fn get_page(&self, host: &str, path: &str) -> (u16, String) {
        self.facts.get_page(host, path)
    }

    /// Requests to `https://HOST/`, `per_second`, until stopped.
    pub fn request_loop(&self, host: &str, per_second: u32) -> RequestLoop {
        RequestLoop::start(self.facts.clone(), host, per_second)
    }

    /// A page and every asset it names, as a browser loads them.
    pub fn load_page(&self, host: &str) -> real_node::PageLoad {
        self.facts.load_page(host)
    }

    /// The status of each `https://HOST/PATH` through the ingress.
    pub fn statuses(&self, host: &str, paths: &[String]) -> Vec<u16> {
        self.facts.statuses(host, paths)
    }

    /// Browser-like page loads to `https://HOST/`, `per_second`, until stopped.
    pub fn browser_loop(&self, host: &str, per_second: u32) -> real_node::BrowserLoop {
        real_node::BrowserLoop::start(self.facts.clone(), host, per_second, 4)
    }

    /// The page at `/` once the ingress controller routes `host` (it learns of a new Ingress and
    /// its endpoints a moment after the pods are Ready).
    pub fn first_page(&self, host: &str) -> (u16, String) {
        let mut last = (0, String::new());
        Self::eventually(
            Duration::from_secs(20),
            "the ingress routes the host",
            || {
                last = self.get_page(host, "/");
                last.0 != 503 && last.0 != 404
            },
        );
        last
    }

    /// Waits (briefly) until the page shows `version`: the ingress controller stops routing to a
    /// terminating pod a moment after the rollout is done, not at the same instant.
    pub fn shows_version(&self, host: &str, version: &str) {
        Self::eventually(
            Duration::from_secs(20),
            &format!("version {version} on the page"),
            || version_on(&self.get_page(host, "/").1).as_deref() == Some(version),
        );
    }

    /// `GET http://HOST/` through the ingress's plain-HTTP port: no TLS, so `force_ssl` redirects.
    pub fn plain_http_status(&self, host: &str) -> u16 {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
                "-H",
                &format!("Host: {host}"),
                "-w",
                "%{http_code}",
                &format!("http://127.0.0.1:{}/", self.get("INGRESS_HTTP_PORT")),
            ])
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
    }

    /// Waits until `check` holds, for at most `limit`; panics with `what` otherwise.
    pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The `<title>` of a page.
pub fn title_of(page: &str) -> Option<&str> {
    let start = page.find("<title>")? + "<title>".len();
    let end = page[start..].find("</title>")? + start;
    Some(page[start..end].trim())
}

/// A copy of `examples/blog`, initialised for the real node: its image from the private registry,
/// `host` for the ingress, `replicas` web pods, and secrets: the master key and `database_url`.
pub fn blog_app(
    node: &RealNode,
    ns: &TestNs,
    host: &str,
    replicas: &str,
    database_url: &str,
) -> tempfile::TempDir {
    variant_app(node, ns, host, replicas, database_url, None, "1.0.0")
}

/// [`blog_app`] with a variant of `tests/cluster/blog-variants` laid over the blog, and its
/// image `tag` (`tests/cluster/images` builds the same variant into it).
pub fn variant_app(
    node: &RealNode,
    ns: &TestNs,
    host: &str,
    replicas: &str,
    database_url: &str,
    variant: Option<&str>,
    tag: &str,
) -> tempfile::TempDir {
    let app = tempfile::Builder::new().prefix("blog-").tempdir().unwrap();
    crate::support::copy_dir(&root().join("examples/blog"), app.path());
    if let Some(variant) = variant {
        crate::support::copy_dir(
            &root().join("tests/cluster/blog-variants").join(variant),
            app.path(),
        );
    }
    let mut args: Vec<String> = [
        "init",
        "--no-input",
        "--image",
        &node.image(tag),
        "--host",
        host,
        "--replicas",
        replicas,
        "--private",
        "-n",
        &ns.name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(node.placement_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::support::rails(app.path(), None, &args).success();
    let master_key = std::fs::read_to_string(app.path().join("config/master.key")).unwrap();
    leaks::register(master_key.trim());
    ns.rails_full(
        app.path(),
        &["secrets", "import", "--yes"],
        None,
        &[("DATABASE_URL", database_url.to_string())],
    )
    .success();
    registry_login(node, ns, app.path(), node.get("REGISTRY_PASSWORD")).success();
    app
}

/// `kubectl rails secrets registry` with the registry's user and `password` on stdin.
pub fn registry_login(node: &RealNode, ns: &TestNs, dir: &Path, password: &str) -> Run {
    ns.rails_full(
        dir,
        &[
            "secrets",
            "registry",
            "--server",
            node.get("REGISTRY"),
            "--username",
            node.get("REGISTRY_USER"),
            "--password-stdin",
        ],
        Some(password),
        &[],
    )
}

/// `kubectl rails deploy` with room for image pulls and Rails boots.
/// The deploying machine trusts the registry's CA (`SSL_CERT_FILE`), as a laptop trusts its
/// company's registry, so the deploy pins the tag's digest; its builders (buildah) find the
/// registry, and docker.io's mirror in it, through containers' registries.conf.
pub fn deploy(ns: &TestNs, dir: &Path, extra: &[&str]) -> Run {
    deploy_with(ns, dir, extra, &[])
}

/// [`deploy`] with more environment (a build secret).
pub fn deploy_with(ns: &TestNs, dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Run {
    let mut args = vec!["deploy", "--no-input", "--timeout", "180s"];
    args.extend(extra);
    let node = RealNode::load();
    let mut all = vec![
        ("SSL_CERT_FILE", node.get("REGISTRY_CA").to_string()),
        (
            "CONTAINERS_REGISTRIES_CONF",
            node.get("BUILD_REGISTRIES_CONF").to_string(),
        ),
    ];
    all.extend(env.iter().cloned());
    ns.rails_full(dir, &args, None, &all)
}

/// Names of the nodes the app's pods of `component` run on.
pub fn nodes_of(ns: &TestNs, component: &str) -> Vec<String> {
    ns.pods(
        &format!("app.kubernetes.io/component={component}"),
        "{.items[*].spec.nodeName}",
    )
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

/// `kubectl rails` output lines that start with `  | ` (log lines the plugin relays).
pub fn relayed(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  | "))
        .collect()
}
