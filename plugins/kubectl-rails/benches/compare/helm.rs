//! Helm as the third side: the peer users would pick instead. Built from the Go module proxy by
//! `tests/cluster/build-helm` (pinned, cached). Its chart is made from the same rendered
//! manifests as the other sides, the Helm way: the migration Job is a `pre-install,pre-upgrade`
//! hook, and the ConfigMap it reads is a hook of lower weight (hooks run before the release's
//! other objects exist), also `pre-rollback` so that a rollback restores the config.
//! `helm upgrade --install --wait` then installs it, waiting for the hook Job to complete and
//! for every Deployment to be ready.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{Cluster, script_path};

pub struct Helm {
    bin: PathBuf,
    pub version: String,
}

impl Helm {
    /// Builds Helm, or reuses the cached build.
    pub fn build() -> Self {
        eprintln!("==> helm (tests/cluster/build-helm)");
        let bin = script_path("tests/cluster/build-helm", &[]);
        let out = Command::new(&bin)
            .args(["version", "--short"])
            .output()
            .unwrap();
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Self { bin, version }
    }

    /// The chart of the app in `app_dir` for `ns`, written to `dir`: its templates are the
    /// objects of `kubectl rails render -o json --out-dir`, with the hook annotations added.
    pub fn chart(cluster: &Cluster, app_dir: &Path, ns: &str, name: &str, dir: &Path) -> PathBuf {
        let templates = dir.join("templates");
        cluster.run(
            "kubectl",
            &[
                "rails",
                "render",
                "-n",
                ns,
                "-o",
                "json",
                "--out-dir",
                templates.to_str().unwrap(),
            ],
            app_dir,
        );
        for entry in std::fs::read_dir(&templates).unwrap() {
            let path = entry.unwrap().path();
            let mut object: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let hook = match object["kind"].as_str().unwrap() {
                "Job" => ("pre-install,pre-upgrade", "0"),
                "ConfigMap" => ("pre-install,pre-upgrade,pre-rollback", "-5"),
                "PersistentVolumeClaim" => {
                    panic!(
                        "an app with a volume has no Helm chart here: a hook claim would lose its data"
                    )
                }
                _ => continue,
            };
            let annotations = object["metadata"]
                .as_object_mut()
                .unwrap()
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            annotations["helm.sh/hook"] = hook.0.into();
            annotations["helm.sh/hook-weight"] = hook.1.into();
            annotations["helm.sh/hook-delete-policy"] = "before-hook-creation".into();
            std::fs::write(&path, serde_json::to_string_pretty(&object).unwrap()).unwrap();
        }
        std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
        )
        .unwrap();
        dir.to_path_buf()
    }

    fn run(&self, cluster: &Cluster, args: &[&str]) -> Duration {
        let home = cluster.work.path().join("helm");
        let start = std::time::Instant::now();
        let out = cluster
            .cmd(self.bin.to_str().unwrap(), args, cluster.work.path())
            // Helm's own files stay in the work folder.
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// `helm upgrade --install --wait`: its wall time.
    pub fn upgrade(&self, cluster: &Cluster, release: &str, chart: &Path, ns: &str) -> Duration {
        self.run(
            cluster,
            &[
                "upgrade",
                "--install",
                release,
                chart.to_str().unwrap(),
                "-n",
                ns,
                "--wait",
                "--timeout",
                "10m",
            ],
        )
    }

    /// `helm rollback --wait` to the revision before: its wall time.
    pub fn rollback(&self, cluster: &Cluster, release: &str, ns: &str) -> Duration {
        self.run(
            cluster,
            &["rollback", release, "-n", ns, "--wait", "--timeout", "10m"],
        )
    }
}
