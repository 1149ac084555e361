//! The `cluster` builder: a BuildKit pod in the cluster builds the app's image and pushes it
//! from inside the cluster. The build context goes to the pod over the Kubernetes API (a tar
//! stream on an exec's stdin), so the machine deploying needs no Docker, no registry access
//! and no open port: a laptop without Docker, a CI runner without a daemon, or an arm64 laptop
//! deploying to amd64 nodes (the pod runs where the app's pods run, on their architecture).
//!
//! What the pod is and what it runs are pure functions ([`pod`], [`buildctl_args`],
//! [`buildkitd_toml`], [`refusal`]); [`build`] does the I/O. Registry credentials and build
//! secrets reach the pod on an exec's stdin into memory-backed files: never in the pod spec,
//! a Secret or a command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, EmptyDirVolumeSource, EnvVar, LocalObjectReference, Namespace, Pod,
    PodSpec, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{AttachParams, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_build::{BuildError, step_of};
use kubectl_rails_core::model::{BuildSpec, ClusterBuilderSpec, Placement};
use kubectl_rails_core::render::{labels, tolerations};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

/// How many lines of BuildKit's log a failure shows.
const TAIL: usize = 15;
/// The longest a builder pod lives, whatever happens to the command that made it.
const MAX_LIFETIME_SECS: i64 = 3600;
/// The pod's working folder: the context, the Docker config, the secrets (memory-backed).
const WORK: &str = "/work";
/// The Pod Security label a namespace enforces.
const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
/// The user a rootless BuildKit runs as (the `user` of BuildKit's rootless image).
const ROOTLESS_UID: i64 = 1000;
/// Where a rootless buildkitd listens (its user may not write `/run`); `buildctl` finds it
/// through `BUILDKIT_HOST`.
const ROOTLESS_SOCKET: &str = "unix:///tmp/run/buildkitd.sock";

/// One build in the cluster.
#[derive(Debug, Clone)]
pub struct Request {
    pub app: String,
    /// Where the builder pod runs.
    pub namespace: String,
    /// The BuildKit image (pinned).
    pub builder_image: String,
    /// `repository:tag` to build and push.
    pub image: String,
    /// The registry cache (`repository:buildcache` when the spec names none).
    pub cache: String,
    /// The app's files (the committed tree, or the folder as it is): sent whole, so that the
    /// recipe's `context` and `dockerfile`, relative to it, are found in the pod.
    pub root: PathBuf,
    pub recipe: BuildSpec,
    /// Where the app's pods run: the builder runs there too (their architecture).
    pub placement: Placement,
    /// The pull secret of the app's registry, for a builder image kept there.
    pub pull_secret: Option<String>,
    /// The registry's host, when the image names one.
    pub registry_host: Option<String>,
    /// A Docker config with the registry's credentials, for the push.
    pub docker_config: Option<String>,
    /// Each build secret's id and value.
    pub secrets: Vec<(String, Vec<u8>)>,
}

/// The builder image the spec (or `--builder-image`) names, checked to be pinned; the pinned
/// default of the spec's mode when it names none.
pub fn builder_image(
    wanted: Option<&str>,
    cluster: &ClusterBuilderSpec,
) -> Result<String, BuildError> {
    let default = cluster.default_image();
    let image = wanted.unwrap_or(default);
    let last = image.rsplit('/').next().unwrap_or(image);
    let pinned = image.contains("@sha256:")
        || last
            .split_once(':')
            .is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
    if pinned {
        Ok(image.to_string())
    } else {
        Err(BuildError::Cluster {
            what: format!("the BuildKit image `{image}` is not pinned to a version"),
            fix: format!(
                "name a version, as `{default}` (`build.cluster.image` or `--builder-image`): `latest` changes under you"
            ),
        })
    }
}

/// The cache BuildKit reads and writes: the spec's, or a `buildcache` tag beside the image.
pub fn cache_ref(recipe: &BuildSpec, repository: &str) -> String {
    recipe
        .cache
        .clone()
        .unwrap_or_else(|| format!("{repository}:buildcache"))
}

/// A registry on the node's loopback (a registry only the nodes reach, as a kind or test
/// cluster's): only the node's own network reaches it, so the builder uses it.
pub fn on_node_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// What the BuildKit pod needs of its namespace, and why, for the mode it runs in.
pub fn needs(cluster: &ClusterBuilderSpec) -> &'static str {
    if cluster.privileged {
        "BuildKit runs privileged (`build.cluster.privileged`: it mounts and unshares as root to run each RUN step)"
    } else {
        "BuildKit runs rootless (as uid 1000) but needs seccomp and AppArmor `Unconfined` to make its user namespaces"
    }
}

/// Why the namespace refuses the BuildKit pod, from its Pod Security labels; none when it
/// takes it. Rootless or not, only `privileged` does: `baseline` forbids `Unconfined` too.
pub fn refusal(
    namespace: &str,
    ns_labels: &BTreeMap<String, String>,
    cluster: &ClusterBuilderSpec,
) -> Option<BuildError> {
    let level = ns_labels.get(ENFORCE)?;
    (level != "privileged").then(|| BuildError::Cluster {
        what: format!(
            "namespace `{namespace}` enforces Pod Security `{level}`, and {}",
            needs(cluster)
        ),
        fix: format!(
            "set `build.cluster.namespace` to a namespace for builds that allows it (`kubectl create namespace builds && kubectl label namespace builds {ENFORCE}=privileged`), or build on this machine with `--builder buildah` (or docker, podman, nerdctl)"
        ),
    })
}

/// The builds' namespace does not exist (and the app's, made by a first deploy, enforces
/// `restricted`).
pub fn missing(namespace: &str) -> BuildError {
    BuildError::Cluster {
        what: format!(
            "namespace `{namespace}` does not exist (a first deploy makes the app's namespace `restricted`, which refuses the BuildKit pod)"
        ),
        fix: format!(
            "make a namespace for builds and name it in `build.cluster.namespace`: `kubectl create namespace builds && kubectl label namespace builds {ENFORCE}=privileged`"
        ),
    }
}

/// buildkitd's configuration: the OCI worker, the `docker.io` mirrors, and TLS for the
/// registries on the node's loopback (BuildKit would speak plain HTTP to them; the plugin's own
/// registry client speaks TLS to every registry, and so does the builder).
pub fn buildkitd_toml(mirrors: &[String], loopback: &[String]) -> String {
    let mut toml =
        String::from("[worker.oci]\n  enabled = true\n[worker.containerd]\n  enabled = false\n");
    if !mirrors.is_empty() {
        let list: Vec<String> = mirrors.iter().map(|m| format!("{m:?}")).collect();
        toml.push_str(&format!(
            "[registry.\"docker.io\"]\n  mirrors = [{}]\n",
            list.join(", ")
        ));
    }
    for host in loopback {
        toml.push_str(&format!("[registry.{host:?}]\n  http = false\n"));
    }
    toml
}

/// The builder pod: BuildKit's daemon, waiting for the build the plugin execs into it.
/// Rootless unless `build.cluster.privileged`: RootlessKit maps uid 1000 and a subordinate
/// range into a user namespace where buildkitd is root; without a process sandbox, since an
/// unprivileged container cannot mount a fresh `/proc` for each step (the pod is the sandbox,
/// and it lives for one build).
pub fn pod(request: &Request, name: &str) -> Pod {
    let cluster = request.recipe.cluster.clone().unwrap_or_default();
    let loopback = request
        .registry_host
        .as_deref()
        .is_some_and(on_node_loopback);
    let mirrors = cluster.mirrors.clone();
    let mut tls: Vec<String> = request
        .registry_host
        .iter()
        .chain(&mirrors)
        .filter(|h| on_node_loopback(h))
        .cloned()
        .collect();
    tls.sort();
    tls.dedup();
    let pod_labels = BTreeMap::from([
        (labels::INSTANCE.to_string(), request.app.clone()),
        (labels::COMPONENT.to_string(), "build".to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]);
    let empty = |name: &str, memory: bool| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: memory.then(|| "Memory".into()),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(pod_labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            active_deadline_seconds: Some(MAX_LIFETIME_SECS),
            termination_grace_period_seconds: Some(5),
            automount_service_account_token: Some(false),
            // On the node's network it resolves names as the node does (`ClusterFirst` falls
            // back to that there): registries and package mirrors, as containerd reaches them.
            host_network: loopback.then_some(true),
            node_selector: (!request.placement.node_selector.is_empty())
                .then(|| request.placement.node_selector.clone()),
            tolerations: tolerations(&request.placement),
            image_pull_secrets: request
                .pull_secret
                .as_ref()
                .map(|s| vec![LocalObjectReference { name: s.clone() }]),
            containers: vec![Container {
                name: "buildkitd".into(),
                image: Some(request.builder_image.clone()),
                // The configuration comes through the environment: no ConfigMap to leave behind.
                command: Some(vec!["sh".into(), "-c".into(), daemon_command(&cluster)]),
                env: Some(daemon_env(&cluster, buildkitd_toml(&mirrors, &tls))),
                security_context: Some(daemon_security(&cluster)),
                volume_mounts: Some(vec![
                    mount("state", "/var/lib/buildkit"),
                    mount("work", WORK),
                    mount("private", &format!("{WORK}/private")),
                ]),
                ..Container::default()
            }],
            volumes: Some(vec![
                empty("state", false),
                empty("work", false),
                empty("private", true),
            ]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// How the pod starts buildkitd, with its configuration from `$BUILDKITD_TOML`.
fn daemon_command(cluster: &ClusterBuilderSpec) -> String {
    let config = "printf '%s' \"$BUILDKITD_TOML\" > /tmp/buildkitd.toml";
    if cluster.privileged {
        format!("{config} && exec buildkitd --config /tmp/buildkitd.toml")
    } else {
        format!(
            "mkdir -p /tmp/run && {config} && exec rootlesskit buildkitd --config /tmp/buildkitd.toml --oci-worker-no-process-sandbox --root /var/lib/buildkit --addr {ROOTLESS_SOCKET}"
        )
    }
}

fn daemon_env(cluster: &ClusterBuilderSpec, toml: String) -> Vec<EnvVar> {
    let var = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    };
    let mut env = vec![var("BUILDKITD_TOML", toml)];
    if !cluster.privileged {
        // buildkitd takes the rootless defaults only when `$USER` is not root; `buildctl`, run
        // by exec, finds the daemon through `BUILDKIT_HOST`.
        env.extend([
            var("USER", "user".into()),
            var("HOME", "/tmp".into()),
            var("XDG_RUNTIME_DIR", "/tmp/run".into()),
            var("BUILDKIT_HOST", ROOTLESS_SOCKET.into()),
        ]);
    }
    env
}

fn daemon_security(cluster: &ClusterBuilderSpec) -> SecurityContext {
    if cluster.privileged {
        return SecurityContext {
            privileged: Some(true),
            ..SecurityContext::default()
        };
    }
    // `unshare(CLONE_NEWUSER)` and the mounts inside the user namespace are what the runtime's
    // default seccomp and AppArmor profiles refuse a container without CAP_SYS_ADMIN.
    let unconfined = || "Unconfined".to_string();
    SecurityContext {
        run_as_user: Some(ROOTLESS_UID),
        run_as_group: Some(ROOTLESS_UID),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: unconfined(),
            ..SeccompProfile::default()
        }),
        app_armor_profile: Some(AppArmorProfile {
            type_: unconfined(),
            ..AppArmorProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// What `buildctl` runs in the pod. Pure.
pub fn buildctl_args(request: &Request) -> Vec<String> {
    let recipe = &request.recipe;
    let inside = |path: &str| {
        let path = path.trim_start_matches("./").trim_end_matches('/');
        if path.is_empty() || path == "." {
            format!("{WORK}/ctx")
        } else {
            format!("{WORK}/ctx/{path}")
        }
    };
    let (dir, file) = match recipe.dockerfile.rsplit_once('/') {
        Some((dir, file)) => (inside(dir), file.to_string()),
        None => (inside("."), recipe.dockerfile.clone()),
    };
    let mut args: Vec<String> = [
        "env",
        &format!("DOCKER_CONFIG={WORK}/private"),
        "buildctl",
        "build",
        "--progress",
        "plain",
        "--frontend",
        "dockerfile.v0",
        "--local",
        &format!("context={}", inside(&recipe.context)),
        "--local",
        &format!("dockerfile={dir}"),
        "--opt",
        &format!("filename={file}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut opt = |value: String| args.extend(["--opt".to_string(), value]);
    if let Some(target) = &recipe.target {
        opt(format!("target={target}"));
    }
    for (key, value) in &recipe.args {
        opt(format!("build-arg:{key}={value}"));
    }
    if !recipe.platforms.is_empty() {
        opt(format!("platform={}", recipe.platforms.join(",")));
    }
    for (id, _) in &request.secrets {
        args.extend([
            "--secret".into(),
            format!("id={id},src={WORK}/private/secret-{id}"),
        ]);
    }
    args.extend([
        "--import-cache".into(),
        format!("type=registry,ref={}", request.cache),
        "--export-cache".into(),
        format!("type=registry,ref={},mode=max", request.cache),
        "--output".into(),
        format!("type=image,name={},push=true", request.image),
    ]);
    args
}

fn failed(what: impl Into<String>) -> impl FnOnce(kube::Error) -> BuildError {
    let what = what.into();
    move |e| BuildError::Io {
        what,
        reason: e.to_string(),
    }
}

/// Builds and pushes in a BuildKit pod, each line of BuildKit's log handed to `on_line`; the
/// pod is removed afterwards, whatever the outcome.
pub async fn build(
    client: &Client,
    request: &Request,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Duration, BuildError> {
    let started = Instant::now();
    let cluster = request.recipe.cluster.clone().unwrap_or_default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // A deployer who may not read namespaces learns the level from the pod's refusal instead.
    match namespaces.get_opt(&request.namespace).await {
        Ok(Some(ns)) => {
            if let Some(refused) = refusal(
                &request.namespace,
                &ns.metadata.labels.clone().unwrap_or_default(),
                &cluster,
            ) {
                return Err(refused);
            }
        }
        Ok(None) => return Err(missing(&request.namespace)),
        Err(_) => {}
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &request.namespace);
    let name = pod_name(&request.app);
    pods.create(&PostParams::default(), &pod(request, &name))
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 403 => BuildError::Cluster {
                what: format!(
                    "creating the BuildKit pod in namespace `{}` was refused: {}",
                    request.namespace, s.message
                ),
                fix: "set `build.cluster.namespace` to a namespace that allows privileged pods and where you may create pods and exec into them, or build on this machine (`--builder buildah`)".into(),
            },
            _ => failed(format!(
                "create the BuildKit pod in namespace `{}`",
                request.namespace
            ))(e),
        })?;
    on_line(&format!(
        "BuildKit pod `{name}` in namespace `{}` ({})",
        request.namespace, request.builder_image
    ));
    let result = run_in(&pods, &name, request, on_line).await;
    let _ = pods
        .delete(
            &name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    result.map(|()| started.elapsed())
}

fn pod_name(app: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
    let suffix = format!("{:06x}", (nanos ^ std::process::id()) & 0xff_ffff);
    let app: String = app
        .chars()
        .take(63 - "-build-".len() - suffix.len())
        .collect();
    format!("{app}-build-{suffix}")
}

async fn run_in(
    pods: &Api<Pod>,
    name: &str,
    request: &Request,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), BuildError> {
    let cluster = request.recipe.cluster.clone().unwrap_or_default();
    match running(pods, name, Duration::from_secs(300)).await {
        Ok(()) => {}
        Err(NotRunning::Ended) => {
            return Err(did_not_start(
                name,
                &cluster,
                &log_tail(pods, name).await,
                &[],
            ));
        }
        Err(NotRunning::Other(e)) => return Err(e),
    }
    // buildkitd answers a moment after its container starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let argv = ["buildctl", "debug", "workers"].map(String::from);
        let mut quiet = Vec::new();
        // An exec that cannot start means the container has ended: buildkitd did not start.
        let code = exec(pods, name, &argv, None, &mut |l| quiet.push(l.to_string()))
            .await
            .unwrap_or(-1);
        if code == 0 {
            break;
        }
        if code == -1 || Instant::now() > deadline {
            return Err(did_not_start(
                name,
                &cluster,
                &log_tail(pods, name).await,
                &quiet,
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The context, as a tar stream on stdin.
    let mut tar = tokio::process::Command::new("tar")
        .args(["-c", "-f", "-", "--exclude=./.git", "-C"])
        .arg(&request.root)
        .arg(".")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| BuildError::Io {
            what: "run `tar` to send the build context".into(),
            reason: e.to_string(),
        })?;
    let stream = tar.stdout.take().expect("tar's stdout is piped");
    let unpack = ["sh", "-c", "mkdir -p /work/ctx && tar -x -C /work/ctx"].map(String::from);
    let mut said = Vec::new();
    let code = exec(pods, name, &unpack, Some(Box::new(stream)), &mut |l| {
        said.push(l.to_string())
    })
    .await?;
    let tar_status = tar.wait_with_output().await.map_err(|e| BuildError::Io {
        what: "wait for `tar`".into(),
        reason: e.to_string(),
    })?;
    if code != 0 || !tar_status.status.success() {
        said.extend(
            String::from_utf8_lossy(&tar_status.stderr)
                .lines()
                .map(str::to_string),
        );
        return Err(BuildError::Failed {
            builder: format!("BuildKit in pod `{name}`"),
            step: Some("send the build context".into()),
            tail: said,
        });
    }
    on_line(&format!(
        "sent the build context ({})",
        request.root.display()
    ));
    // Credentials and secrets into memory-backed files, through stdin.
    let mut files: Vec<(String, Vec<u8>)> = request
        .secrets
        .iter()
        .map(|(id, value)| (format!("secret-{id}"), value.clone()))
        .collect();
    if let Some(config) = &request.docker_config {
        files.push(("config.json".into(), config.as_bytes().to_vec()));
    }
    for (file, bytes) in files {
        // Secret ids are environment variable names: safe in a shell word.
        let write = [
            "sh".to_string(),
            "-c".to_string(),
            format!("umask 077 && cat > {WORK}/private/{file}"),
        ];
        let mut said = Vec::new();
        let code = exec(
            pods,
            name,
            &write,
            Some(Box::new(std::io::Cursor::new(bytes))),
            &mut |l| said.push(l.to_string()),
        )
        .await?;
        if code != 0 {
            return Err(BuildError::Failed {
                builder: format!("BuildKit in pod `{name}`"),
                step: Some(format!("write {file} in the pod")),
                tail: said,
            });
        }
    }
    let mut failing = FailingStep::default();
    let mut tail: Vec<String> = Vec::new();
    let code = exec(pods, name, &buildctl_args(request), None, &mut |line| {
        failing.read(line);
        on_line(line);
        tail.push(line.to_string());
        if tail.len() > TAIL {
            tail.remove(0);
        }
    })
    .await?;
    if code != 0 {
        return Err(BuildError::Failed {
            builder: format!("BuildKit in pod `{name}`"),
            step: failing.step(),
            tail,
        });
    }
    Ok(())
}

/// Why buildkitd did not start, from its log (the container's) and what `buildctl` said, with
/// what to do. Rootless BuildKit fails here when the node refuses it a user namespace, or when
/// the image has no RootlessKit. Pure.
pub fn did_not_start(
    pod: &str,
    cluster: &ClusterBuilderSpec,
    log: &str,
    buildctl: &[String],
) -> BuildError {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // A Go stack trace follows the error line: the error is the first line that says so.
    let said = lines
        .iter()
        .find(|l| l.contains("error") || l.contains("not found") || l.contains("denied"))
        .or(lines.last())
        .map(|l| l.to_string())
        .or_else(|| buildctl.last().cloned())
        .unwrap_or_else(|| "it said nothing".into());
    let lower = log.to_ascii_lowercase();
    let fix = if cluster.privileged {
        "check the builder image (`build.cluster.image`, `--builder-image`): it must be BuildKit's (`moby/buildkit:v0.26.3`); `kubectl logs` on the pod tells more".to_string()
    } else if lower.contains("rootlesskit") && lower.contains("not found") {
        "the builder image has no RootlessKit: name BuildKit's rootless image (`moby/buildkit:v0.26.3-rootless`) in `build.cluster.image`, or set `build.cluster.privileged: true` to run BuildKit as root".to_string()
    } else if [
        "uid_map",
        "gid_map",
        "newuidmap",
        "newgidmap",
        "user namespace",
        "userns",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        "the node refused rootless BuildKit its user namespace: allow unprivileged user namespaces on the nodes (`user.max_user_namespaces` above 0; on Ubuntu 24.04, `kernel.apparmor_restrict_unprivileged_userns=0`), or set `build.cluster.privileged: true` to run BuildKit as root".to_string()
    } else {
        "check the builder image (`build.cluster.image`, `--builder-image`): a rootless one runs `rootlesskit buildkitd` as uid 1000, as `moby/buildkit:v0.26.3-rootless`; or set `build.cluster.privileged: true`".to_string()
    };
    BuildError::Cluster {
        what: format!("buildkitd did not start in pod `{pod}`: {said}"),
        fix,
    }
}

/// The step a BuildKit build failed at, from its plain progress: steps run side by side, so
/// the last step line is not always the failing one; `#N ERROR:` names the step `#N` started.
/// (A cold cache's `ERROR: ... not found` is on a step without `[i/n]`, and does not fail the
/// build: only a non-zero exit does.)
#[derive(Default)]
struct FailingStep {
    steps: BTreeMap<String, String>,
    last: Option<String>,
    failed: Option<String>,
}

impl FailingStep {
    fn read(&mut self, line: &str) {
        let Some((id, rest)) = line.trim().split_once(' ') else {
            return;
        };
        if !id.starts_with('#') {
            return;
        }
        if let Some(step) = step_of(line) {
            self.steps.insert(id.to_string(), step.clone());
            self.last = Some(step);
        } else if rest.starts_with("ERROR:")
            && let Some(step) = self.steps.get(id)
        {
            self.failed.get_or_insert_with(|| step.clone());
        }
    }

    fn step(self) -> Option<String> {
        self.failed.or(self.last)
    }
}

/// The last lines the pod's container wrote (buildkitd's, or RootlessKit's, own log).
async fn log_tail(pods: &Api<Pod>, name: &str) -> String {
    let params = kube::api::LogParams {
        tail_lines: Some(TAIL as i64),
        ..kube::api::LogParams::default()
    };
    pods.logs(name, &params).await.unwrap_or_default()
}

/// Why the builder pod is not running.
enum NotRunning {
    /// Its container ended: its log says why.
    Ended,
    Other(BuildError),
}

/// Waits until the pod runs; says why when it cannot (its image, its namespace's rules).
async fn running(pods: &Api<Pod>, name: &str, timeout: Duration) -> Result<(), NotRunning> {
    let events = watcher(
        pods.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .applied_objects();
    futures::pin_mut!(events);
    let mut last = String::from("it was not scheduled");
    let waited = tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            let Ok(pod) = event else { continue };
            let status = pod.status.unwrap_or_default();
            if status.phase.as_deref() == Some("Running") {
                return Ok(());
            }
            if let Some(waiting) = status
                .container_statuses
                .iter()
                .flatten()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref())
            {
                let reason = waiting.reason.clone().unwrap_or_default();
                last = format!("{reason}: {}", waiting.message.clone().unwrap_or_default());
                if matches!(
                    reason.as_str(),
                    "ErrImagePull"
                        | "ImagePullBackOff"
                        | "InvalidImageName"
                        | "CreateContainerConfigError"
                ) {
                    return Err(Some(last.clone()));
                }
            }
            if matches!(status.phase.as_deref(), Some("Failed" | "Succeeded")) {
                return Err(None);
            }
        }
        Err(Some("the watch on it ended".into()))
    })
    .await;
    let why = match waited {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(None)) => return Err(NotRunning::Ended),
        Ok(Err(Some(why))) => why,
        Err(_) => format!("not running within {timeout:?} ({last})"),
    };
    Err(NotRunning::Other(BuildError::Cluster {
        what: format!("the BuildKit pod `{name}` did not start: {why}"),
        fix: "check the builder image (`build.cluster.image`, `--builder-image`) and that the app's pull secret reaches it; `kubectl describe pod` tells more".into(),
    }))
}

/// Runs `argv` in the pod, feeding `stdin` when given; each output line (stdout and stderr as
/// they come) to `on_line`. The command's exit code.
async fn exec(
    pods: &Api<Pod>,
    name: &str,
    argv: &[String],
    stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<i32, BuildError> {
    let params = AttachParams {
        container: Some("buildkitd".into()),
        stdin: stdin.is_some(),
        stdout: true,
        stderr: true,
        ..AttachParams::default()
    };
    let mut process = pods
        .exec(name, argv.to_vec(), &params)
        .await
        .map_err(failed(format!(
            "exec `{}` in the BuildKit pod `{name}`",
            argv[0]
        )))?;
    let status = process.take_status().expect("status is taken once");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut relays = Vec::new();
    let streams: Vec<Box<dyn AsyncRead + Send + Unpin>> = [
        process
            .stdout()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        process
            .stderr()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    .collect();
    for stream in streams {
        let tx = tx.clone();
        relays.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let feeder = match (stdin, process.stdin()) {
        (Some(mut input), Some(mut remote)) => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut input, &mut remote).await;
            let _ = remote.shutdown().await;
        })),
        _ => None,
    };
    while let Some(line) = rx.recv().await {
        on_line(&line);
    }
    for relay in relays {
        let _ = relay.await;
    }
    if let Some(feeder) = feeder {
        let _ = feeder.await;
    }
    let status = status.await;
    kubectl_rails_exec::session::exit_code(status.as_ref()).map_err(|message| BuildError::Io {
        what: format!("`{}` in the BuildKit pod `{name}`", argv[0]),
        reason: message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubectl_rails_core::model::{ClusterBuilderSpec, Toleration};

    fn request() -> Request {
        Request {
            app: "shop".into(),
            namespace: "builds".into(),
            builder_image: "registry.example/buildkit:v0.26.3".into(),
            image: "127.0.0.1:5000/shop:abc123".into(),
            cache: "127.0.0.1:5000/shop:buildcache".into(),
            root: "/tmp/tree".into(),
            recipe: BuildSpec {
                dockerfile: "docker/web/Dockerfile".into(),
                context: "./app".into(),
                target: Some("app".into()),
                args: BTreeMap::from([("RUBY_VERSION".into(), "3.3.6".into())]),
                secrets: vec!["GITHUB_TOKEN".into()],
                platforms: vec!["linux/amd64".into()],
                cache: None,
                builder: Some("cluster".into()),
                cluster: Some(ClusterBuilderSpec {
                    image: None,
                    namespace: Some("builds".into()),
                    mirrors: vec!["mirror.gcr.io".into()],
                    privileged: false,
                }),
            },
            placement: Placement {
                node_selector: BTreeMap::from([("kubernetes.io/arch".into(), "amd64".into())]),
                tolerations: vec![Toleration {
                    key: "dedicated".into(),
                    value: None,
                    effect: Some("NoSchedule".into()),
                }],
            },
            pull_secret: Some("shop-registry".into()),
            registry_host: Some("127.0.0.1:5000".into()),
            docker_config: Some("{}".into()),
            secrets: vec![("GITHUB_TOKEN".into(), b"never-shown".to_vec())],
        }
    }

    fn privileged(mut request: Request) -> Request {
        if let Some(c) = request.recipe.cluster.as_mut() {
            c.privileged = true;
        }
        request
    }

    #[test]
    fn the_builder_pod_runs_rootless_where_the_app_runs_and_holds_no_secret() {
        let pod = pod(&request(), "shop-build-abc");
        let text = serde_json::to_string(&pod).unwrap();
        assert!(!text.contains("never-shown"), "no secret in the pod spec");
        let security = pod.spec.as_ref().unwrap().containers[0]
            .security_context
            .clone()
            .unwrap();
        assert_eq!(security.privileged, None, "not privileged");
        assert_eq!(security.run_as_user, Some(1000));
        insta::assert_yaml_snapshot!(pod);
    }

    #[test]
    fn a_privileged_builder_pod_runs_buildkitd_as_root() {
        let pod = pod(&privileged(request()), "shop-build-abc");
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let security = container.security_context.clone().unwrap();
        assert_eq!(security.privileged, Some(true));
        assert_eq!(security.run_as_user, None);
        let command = container.command.clone().unwrap().join(" ");
        assert!(command.contains("exec buildkitd --config"), "{command}");
        assert!(!command.contains("rootlesskit"), "{command}");
    }

    #[test]
    fn buildctl_gets_the_recipe() {
        insta::assert_snapshot!(buildctl_args(&request()).join(" "));
    }

    #[test]
    fn each_mode_has_its_pinned_default_image() {
        let rootless = ClusterBuilderSpec::default();
        let privileged = ClusterBuilderSpec {
            privileged: true,
            ..ClusterBuilderSpec::default()
        };
        assert_eq!(
            builder_image(None, &rootless).unwrap(),
            "moby/buildkit:v0.26.3-rootless"
        );
        assert_eq!(
            builder_image(None, &privileged).unwrap(),
            "moby/buildkit:v0.26.3"
        );
    }

    #[test]
    fn only_a_pinned_builder_image_is_taken() {
        let cases = [
            (Some("moby/buildkit:v0.26.3"), Ok("moby/buildkit:v0.26.3")),
            (
                Some("r.example:5000/buildkit:v1"),
                Ok("r.example:5000/buildkit:v1"),
            ),
            (
                Some("moby/buildkit@sha256:abc"),
                Ok("moby/buildkit@sha256:abc"),
            ),
            (Some("moby/buildkit"), Err(())),
            (Some("moby/buildkit:latest"), Err(())),
            (Some("r.example:5000/buildkit"), Err(())),
        ];
        for (wanted, want) in cases {
            let got = builder_image(wanted, &ClusterBuilderSpec::default()).map_err(|_| ());
            assert_eq!(got.as_deref(), want.map_err(|_| &()), "{wanted:?}");
        }
    }

    #[test]
    fn loopback_registries_are_reached_from_the_node() {
        let cases = [
            ("127.0.0.1:5000", true),
            ("localhost:5000", true),
            ("localhost", true),
            ("[::1]:5000", true),
            ("ghcr.io", false),
            ("registry.internal:5000", false),
            ("10.0.0.5:5000", false),
        ];
        for (host, want) in cases {
            assert_eq!(on_node_loopback(host), want, "{host}");
        }
    }

    #[test]
    fn a_namespace_that_forbids_the_builder_pod_is_named_before_any_write() {
        let label = |level: &str| BTreeMap::from([(ENFORCE.to_string(), level.to_string())]);
        let rootless = ClusterBuilderSpec::default();
        let root = ClusterBuilderSpec {
            privileged: true,
            ..ClusterBuilderSpec::default()
        };
        for mode in [&rootless, &root] {
            assert!(refusal("builds", &BTreeMap::new(), mode).is_none());
            assert!(refusal("builds", &label("privileged"), mode).is_none());
        }
        let cases = [
            ("restricted", &rootless, "seccomp and AppArmor `Unconfined`"),
            ("baseline", &rootless, "seccomp and AppArmor `Unconfined`"),
            ("restricted", &root, "BuildKit runs privileged"),
            ("baseline", &root, "BuildKit runs privileged"),
        ];
        for (level, mode, why) in cases {
            let Some(BuildError::Cluster { what, fix }) = refusal("shop", &label(level), mode)
            else {
                panic!("{level} refuses");
            };
            assert!(
                what.contains(&format!("enforces Pod Security `{level}`")),
                "{what}"
            );
            assert!(what.contains(why), "{what}");
            assert!(fix.contains("build.cluster.namespace"), "{fix}");
        }
    }

    #[test]
    fn a_buildkitd_that_did_not_start_is_explained_from_its_log() {
        let rootless = ClusterBuilderSpec::default();
        let root = ClusterBuilderSpec {
            privileged: true,
            ..ClusterBuilderSpec::default()
        };
        let uid_map = "[rootlesskit:parent] error: failed to setup UID/GID map: newuidmap 14 [0 1000 1 1 100000 65536] failed: newuidmap: write to uid_map failed: Operation not permitted\n: exit status 1\n";
        let no_kit = "sh: 1: rootlesskit: not found\n";
        let crash = "buildkitd: mkdir /run/buildkit: permission denied\ncreating trace controller listener\nmain.runTraceController\n\tgithub.com/moby/buildkit/cmd/buildkitd/main.go:1\n";
        let cases = [
            (
                &rootless,
                uid_map,
                "write to uid_map failed",
                "refused rootless BuildKit its user namespace",
            ),
            (
                &rootless,
                no_kit,
                "rootlesskit: not found",
                "has no RootlessKit",
            ),
            (
                &rootless,
                crash,
                "mkdir /run/buildkit: permission denied",
                "a rootless one runs `rootlesskit buildkitd`",
            ),
            (
                &root,
                crash,
                "mkdir /run/buildkit: permission denied",
                "it must be BuildKit's",
            ),
            (
                &rootless,
                "",
                "connection refused",
                "build.cluster.privileged",
            ),
        ];
        for (mode, log, said, fix_has) in cases {
            let buildctl = vec!["error: dial unix: connection refused".to_string()];
            let BuildError::Cluster { what, fix } = did_not_start("p", mode, log, &buildctl) else {
                panic!("a cluster error");
            };
            assert!(
                what.starts_with("buildkitd did not start in pod `p`: "),
                "{what}"
            );
            assert!(what.contains(said), "{log}: {what}");
            assert!(fix.contains(fix_has), "{log}: {fix}");
        }
    }

    #[test]
    fn the_failing_step_is_the_one_whose_vertex_errs() {
        let mut failing = FailingStep::default();
        for line in [
            "#5 importing cache manifest from 127.0.0.1:5000/shop:buildcache",
            "#5 ERROR: failed to configure registry cache importer: not found",
            "#7 [2/4] RUN apt-get update",
            "#8 [3/4] RUN echo compiling-assets && exit 3",
            "#7 0.51 Get:1 http://deb.debian.org bookworm InRelease",
            "#8 0.038 compiling-assets",
            "#8 ERROR: process \"/bin/sh -c echo compiling-assets && exit 3\" did not complete successfully: exit code: 3",
            "#7 [2/4] RUN apt-get update",
            "------",
        ] {
            failing.read(line);
        }
        assert_eq!(
            failing.step().as_deref(),
            Some("RUN echo compiling-assets && exit 3")
        );
    }

    #[test]
    fn mirrors_go_to_buildkitd() {
        assert!(!buildkitd_toml(&[], &[]).contains("docker.io"));
        let toml = buildkitd_toml(&["127.0.0.1:5000".into()], &["127.0.0.1:5000".into()]);
        assert!(
            toml.contains("[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.1:5000\"]"),
            "{toml}"
        );
        assert!(
            toml.contains("[registry.\"127.0.0.1:5000\"]\n  http = false"),
            "a loopback registry speaks TLS: {toml}"
        );
    }
}
