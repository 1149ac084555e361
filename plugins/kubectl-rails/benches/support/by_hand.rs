//! The by-hand path: the plugin's own rendered manifests, deployed with plain kubectl as fast as
//! a competent person would while keeping the plugin's guarantee that no pod changes before the
//! migration has succeeded:
//!
//! 1. `kubectl apply --server-side -f` everything but the Deployments (ConfigMap, migration Job,
//!    Service, Ingress, PodDisruptionBudgets: none of them changes a pod);
//! 2. `kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod -l job-name=JOB`: the migration
//!    pod's own end, not the Job's `Complete`, which the Job controller batches up to a second
//!    later (run again at once while the pod does not exist yet);
//! 3. `kubectl apply --server-side -f` the Deployments;
//! 4. `kubectl rollout status deployment/NAME` for each, all at once.
//!
//! Applying the Deployments while the Job runs would be faster and break the guarantee, so it
//! is not done (BENCHMARKS.md says which variant ran).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Cluster;

/// What the tables call this path.
pub const VARIANT: &str = "config and Job first, migration pod `Succeeded`, then the Deployments, their rollouts awaited in parallel";

/// A rendered release split in the two applies of the by-hand path.
pub struct Manifests {
    /// Everything but the Deployments.
    pub first: PathBuf,
    pub deployments: PathBuf,
    pub job: String,
    pub deployment_names: Vec<String>,
}

impl Manifests {
    /// `kubectl rails render -o json --out-dir` of the app in `app_dir` for `ns`, split into `dir`
    /// (JSON, so that a bench can edit a field).
    pub fn render(cluster: &Cluster, app_dir: &Path, ns: &str, dir: &Path) -> Self {
        let all = dir.join("all");
        let out = all.to_str().unwrap();
        cluster.run(
            "kubectl",
            &["rails", "render", "-n", ns, "-o", "json", "--out-dir", out],
            app_dir,
        );
        let first = dir.join("first");
        let deployments = dir.join("deployments");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&deployments).unwrap();
        let (mut job, mut deployment_names) = (None, Vec::new());
        let mut files: Vec<_> = std::fs::read_dir(&all)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            // `NN-kind-name.json`
            let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
            let (kind, name) = stem
                .split_once('-')
                .and_then(|(_, rest)| rest.split_once('-'))
                .unwrap();
            let to = if kind == "deployment" {
                deployment_names.push(name.to_string());
                &deployments
            } else {
                if kind == "job" {
                    job = Some(name.to_string());
                }
                &first
            };
            std::fs::rename(&file, to.join(file.file_name().unwrap())).unwrap();
        }
        Self {
            first,
            deployments,
            job: job.expect("the release has a migration Job"),
            deployment_names,
        }
    }

    /// Runs the by-hand path in `ns`; its wall time from the first kubectl to the last one's exit.
    pub fn deploy(&self, cluster: &Cluster, ns: &str, timeout: &str) -> Duration {
        let dir = cluster.work.path();
        let timeout = format!("--timeout={timeout}");
        let start = Instant::now();
        apply(cluster, ns, &self.first);
        wait_for_migration(cluster, ns, &self.job, &timeout);
        apply(cluster, ns, &self.deployments);
        // One `rollout status` per Deployment, all at once (`... &` then `wait`): one after the
        // other, an app of 10 processes would pay 10 kubectl starts in a row.
        let waits: Vec<_> = self
            .deployment_names
            .iter()
            .map(|name| {
                cluster
                    .cmd(
                        "kubectl",
                        &[
                            "-n",
                            ns,
                            "rollout",
                            "status",
                            &format!("deployment/{name}"),
                            &timeout,
                        ],
                        dir,
                    )
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for wait in waits {
            let out = wait.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "kubectl rollout status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        start.elapsed()
    }
}

/// `kubectl wait` on the migration pod. It fails at once with "no matching resources found"
/// when the Job controller has not created the pod yet, so it is run again until the pod exists,
/// as `until kubectl wait ...; do :; done` would (`--for=create` polls only every 500 ms).
fn wait_for_migration(cluster: &Cluster, ns: &str, job: &str, timeout: &str) {
    let selector = format!("job-name={job}");
    let start = Instant::now();
    let args = [
        "-n",
        ns,
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod",
        "-l",
        &selector,
        timeout,
    ];
    loop {
        let (_, out) = cluster.output("kubectl", &args, cluster.work.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return;
        }
        assert!(
            stderr.contains("no matching resources found") && start.elapsed().as_secs() < 600,
            "kubectl wait on the migration pod failed: {stderr}"
        );
    }
}

/// `kubectl apply --server-side -f DIR` in `ns`.
pub fn apply(cluster: &Cluster, ns: &str, dir: &Path) {
    cluster.run(
        "kubectl",
        &[
            "-n",
            ns,
            "apply",
            "--server-side",
            "-f",
            dir.to_str().unwrap(),
        ],
        cluster.work.path(),
    );
}
