//! Rendering: an [`AppSpec`] becomes the Kubernetes objects of one release. Pure and
//! deterministic: the same spec and inputs give byte-identical output.
//!
//! One file per kind of object. This one holds the public API and what every pod shares:
//! labels, metadata, the container, the pod spec, its template and probes.

mod accessory;
mod assets;
pub mod canary;
mod config;
mod cron;
mod maintenance;
mod migrate;
mod network;
mod policy;
mod side_server;
#[cfg(test)]
mod test_support;
mod volume;
mod workloads;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, HTTPHeader, KeyToPath, LocalObjectReference,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext,
    TCPSocketAction, Toleration as K8sToleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{AppSpec, Resources};
use crate::version::ServerVersion;

pub use assets::ASSETS;
pub use maintenance::{
    MAINTENANCE, MESSAGE_ANNOTATION, Maintenance, PAGE_KEY, RETRY_AFTER_SECONDS, SINCE_ANNOTATION,
    maintenance_page,
};
pub use network::GATEWAY_GROUP;

/// Label keys the plugin owns. Pruning selects on these, so it never touches other objects.
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    pub const VERSION: &str = "app.kubernetes.io/version";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGER: &str = "kubectl-rails";

    /// A label selector for every object the plugin made for `app`.
    pub fn made_for(app: &str) -> String {
        format!("{INSTANCE}={app},{MANAGED_BY}={MANAGER}")
    }

    /// The process (`web`, `worker`) or role (`migrate`) an object belongs to, from its labels.
    pub fn component_of(meta: &super::ObjectMeta) -> String {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(COMPONENT).cloned())
            .unwrap_or_default()
    }
}

/// Annotation on pod templates: a digest of config and secrets, so that a change rolls the pods.
pub const CHECKSUM_ANNOTATION: &str = "kubectl-rails.dev/config-checksum";

/// Annotation on a pod template whose image is pinned by digest: the tag it was resolved from.
pub const IMAGE_TAG_ANNOTATION: &str = "kubectl-rails.dev/image-tag";

/// Annotation on a pod template whose root filesystem stays writable: why.
pub const WRITABLE_ROOT_ANNOTATION: &str = "kubectl-rails.dev/writable-root";

/// Label on every pod that mounts a ReadWriteOnce volume, valued with the claim's name: such
/// pods require each other's node ([`RenderInputs::volume_node`] says which node holds it).
pub const VOLUME_LABEL: &str = "kubectl-rails.dev/volume";

/// Inputs that come from the cluster rather than the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderInputs {
    /// A digest of the app Secret's data, when known (deploy reads it; `render` cannot).
    pub secret_digest: Option<String>,
    /// The node that holds the app's ReadWriteOnce volume (where its pods run, or where the
    /// migration just ran), when known: the app's Deployments prefer it, so that a first deploy
    /// starts web where the migration wrote the volume.
    pub volume_node: Option<String>,
    /// The server's version, when known. Below 1.30 the web container's preStop hook is an
    /// `exec` of `sleep` rather than the `sleep` action; `None` renders for a current server.
    pub server_version: Option<ServerVersion>,
    /// How long the migration Job may run (the deploy's `--timeout`); `None` gives 30 minutes.
    pub migrate_deadline_seconds: Option<i64>,
    /// Maintenance mode, when it is on: the page's objects are part of the release and the
    /// Ingress sends the hosts to it.
    pub maintenance: Option<Maintenance>,
    /// The images of the earlier releases, newest first: the asset server keeps serving
    /// their assets (`assets.keep` of them). Deploy reads them from the release history.
    pub earlier_images: Vec<String>,
}

/// The resource name of local disk.
const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// Local disk a container may count on when the spec says nothing.
const DEFAULT_DISK_REQUEST: &str = "256Mi";
/// Local disk past which a container with a writable root is evicted, when the spec says nothing.
const WRITABLE_ROOT_DISK_LIMIT: &str = "2Gi";
/// Room for a container's log (and what little else it writes) in its local-disk limit.
const LOG_ROOM_MIB: u64 = 512;

/// How much an emptyDir at `path` may hold: the app's `tmp/` holds caches (bootsnap, assets),
/// `/tmp` buffers uploads; anything else (`log/`) 512Mi.
fn scratch_size_mib(path: &str, workdir: Option<&str>) -> u64 {
    let app_tmp = workdir.map(|w| format!("{}/tmp", w.trim_end_matches('/')));
    if Some(path) == app_tmp.as_deref() {
        1024
    } else {
        512
    }
}

/// The emptyDir at a path: `scratch-rails-tmp` for `/rails/tmp`.
fn scratch_volume_name(path: &str) -> String {
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let name = format!("scratch-{}", words.join("-"));
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// A quantity in Gi when it is whole, else in Mi.
fn mebibytes(mib: u64) -> String {
    if mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// The migration Job's deadline when the caller names none.
pub const DEFAULT_MIGRATE_DEADLINE_SECONDS: i64 = 1800;

/// What an object is for in a release, which decides when deploy applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Stage {
    /// ConfigMap and volume claim: needed by the migration Job.
    Config,
    /// The asset server: applied with the config, Ready before web changes.
    Assets,
    /// The migration Job, run to completion before any workload changes.
    Migrate,
    /// Deployments, Service, PodDisruptionBudgets, Ingress.
    Workload,
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub stage: Stage,
    pub kind: &'static str,
    pub name: String,
    /// The full object, with `apiVersion` and `kind`.
    pub value: Value,
}

/// The objects of one release, in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub objects: Vec<Object>,
    /// The pod-template checksum shared by every process.
    pub checksum: String,
    /// The asset pods' template checksum, when the spec has `assets:`.
    pub assets_checksum: Option<String>,
}

impl Release {
    pub fn by_stage(&self, stage: Stage) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(move |o| o.stage == stage)
    }

    /// A `v1` `List` of every object.
    pub fn to_list(&self) -> Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": self.objects.iter().map(|o| o.value.clone()).collect::<Vec<_>>(),
        })
    }
}

fn object<T: Serialize>(stage: Stage, kind: &'static str, name: &str, obj: &T) -> Object {
    Object {
        stage,
        kind,
        name: name.to_string(),
        value: serde_json::to_value(obj).expect("k8s-openapi objects always serialize"),
    }
}

/// Renders every object of the app.
/// The pod volume that holds the secrets that are files.
const SECRET_FILES_VOLUME: &str = "secret-files";

pub fn render(spec: &AppSpec, inputs: &RenderInputs) -> Release {
    let checksum = config_checksum(spec, inputs);
    let r = Renderer {
        spec,
        checksum: &checksum,
        inputs,
    };
    let mut objects = vec![object(
        Stage::Config,
        "ConfigMap",
        &spec.config_map_name(),
        &r.config_map(),
    )];
    // Before any pod starts: an accessory is never open to every pod of the cluster.
    for policy in r.network_policies() {
        objects.push(object(
            Stage::Config,
            "NetworkPolicy",
            &policy.metadata.name.clone().unwrap_or_default(),
            &policy,
        ));
    }
    if let Some(pvc) = r.volume_claim() {
        objects.push(object(
            Stage::Config,
            "PersistentVolumeClaim",
            &pvc.metadata.name.clone().unwrap_or_default(),
            &pvc,
        ));
    }
    // Accessories come before the migration, which may need the database they run.
    for (name, accessory) in &spec.accessories {
        let object_name = spec.accessory_name(name);
        objects.push(object(
            Stage::Config,
            "Service",
            &object_name,
            &r.accessory_service(name, accessory),
        ));
        let governing = r.accessory_pods_service(name, accessory);
        objects.push(object(
            Stage::Config,
            "Service",
            &governing.metadata.name.clone().unwrap_or_default(),
            &governing,
        ));
        objects.push(object(
            Stage::Config,
            "StatefulSet",
            &object_name,
            &r.accessory_stateful_set(name, accessory),
        ));
    }
    let mut assets_checksum = None;
    if let Some(assets) = &spec.assets {
        let name = spec.deployment_name(assets::ASSETS);
        objects.push(object(
            Stage::Config,
            "ConfigMap",
            &name,
            &r.assets_config_map(),
        ));
        if let Some(policy) = r.assets_policy() {
            objects.push(object(Stage::Config, "NetworkPolicy", &name, &policy));
        }
        objects.push(object(
            Stage::Assets,
            "Deployment",
            &name,
            &r.assets_deployment(assets),
        ));
        objects.push(object(Stage::Assets, "Service", &name, &r.assets_service()));
        objects.push(object(
            Stage::Assets,
            "PodDisruptionBudget",
            &name,
            &r.pdb(assets::ASSETS),
        ));
        assets_checksum = Some(r.assets_checksum(assets));
    }
    let job = r.migrate_job();
    objects.push(object(
        Stage::Migrate,
        "Job",
        &job.metadata.name.clone().unwrap_or_default(),
        &job,
    ));
    for process in spec.process_names() {
        objects.push(object(
            Stage::Workload,
            "Deployment",
            &spec.deployment_name(&process),
            &r.deployment(&process),
        ));
    }
    objects.push(object(
        Stage::Workload,
        "Service",
        &spec.deployment_name("web"),
        &r.service(),
    ));
    for process in spec.process_names() {
        let min = spec
            .autoscale_of(&process)
            .map_or(spec.replicas_of(&process).unwrap_or(0), |a| a.min);
        if min > 1 {
            objects.push(object(
                Stage::Workload,
                "PodDisruptionBudget",
                &spec.deployment_name(&process),
                &r.pdb(&process),
            ));
        }
    }
    for process in spec.process_names() {
        if let Some(hpa) = r.autoscaler(&process) {
            objects.push(object(
                Stage::Workload,
                "HorizontalPodAutoscaler",
                &spec.deployment_name(&process),
                &hpa,
            ));
        }
    }
    for (name, cron) in &spec.cron {
        objects.push(object(
            Stage::Workload,
            "CronJob",
            &cron_job_name(&spec.name, name),
            &r.cron_job(name, cron),
        ));
    }
    if let Some(m) = &inputs.maintenance {
        objects.extend(r.maintenance_objects(m));
    }
    if let Some(ingress) = r.ingress() {
        objects.push(object(Stage::Workload, "Ingress", &spec.name, &ingress));
    }
    if let Some(route) = r.route() {
        objects.push(object(Stage::Workload, "HTTPRoute", &spec.name, &route));
    }
    Release {
        objects,
        checksum,
        assets_checksum,
    }
}

/// The maintenance page's objects alone (ConfigMap, NetworkPolicy, Deployment, Service), in
/// apply order, with the spec's image: what `maintenance on` applies before it turns the
/// Ingress to them.
pub fn render_maintenance(
    spec: &AppSpec,
    m: &Maintenance,
    server_version: Option<ServerVersion>,
) -> Vec<Object> {
    let inputs = RenderInputs {
        server_version,
        ..RenderInputs::default()
    };
    let r = Renderer {
        spec,
        checksum: "",
        inputs: &inputs,
    };
    r.maintenance_objects(m)
}

impl Renderer<'_> {
    fn maintenance_objects(&self, m: &Maintenance) -> Vec<Object> {
        let name = self.spec.deployment_name(MAINTENANCE);
        let mut objects = vec![object(
            Stage::Config,
            "ConfigMap",
            &name,
            &self.maintenance_config_map(m),
        )];
        if let Some(policy) = self.maintenance_policy() {
            objects.push(object(Stage::Config, "NetworkPolicy", &name, &policy));
        }
        objects.push(object(
            Stage::Workload,
            "Deployment",
            &name,
            &self.maintenance_deployment(m),
        ));
        objects.push(object(
            Stage::Workload,
            "Service",
            &name,
            &self.maintenance_service(),
        ));
        objects
    }
}

/// The spec's tolerations as Kubernetes writes them; none when there are none.
pub fn tolerations(placement: &crate::model::Placement) -> Option<Vec<K8sToleration>> {
    (!placement.tolerations.is_empty()).then(|| {
        placement
            .tolerations
            .iter()
            .map(|t| K8sToleration {
                key: Some(t.key.clone()),
                operator: Some(if t.value.is_some() { "Equal" } else { "Exists" }.into()),
                value: t.value.clone(),
                effect: t.effect.clone(),
                ..K8sToleration::default()
            })
            .collect()
    })
}

/// The CronJob of a `cron:` entry: `shop-cron-nightly-report`.
pub fn cron_job_name(app: &str, name: &str) -> String {
    format!("{app}-cron-{name}")
}

/// Label on a CronJob and its pods: the `cron:` entry it runs.
pub const CRON_LABEL: &str = "kubectl-rails.dev/cron";

/// The TLS Secret cert-manager writes for one host: `shop-tls-shop-example-com`.
pub fn tls_secret_name(app: &str, host: &str) -> String {
    let host: String = host
        .trim_start_matches("*.")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = format!("{app}-tls-{host}");
    name.chars().take(253).collect()
}

/// Digest of everything a pod reads at start that is not in its template: plain env, secret
/// key names and (when known) the Secret's data digest.
pub fn config_checksum(spec: &AppSpec, inputs: &RenderInputs) -> String {
    let mut h = Sha256::new();
    for (k, v) in &spec.env {
        h.update(format!("env:{k}={v}\n"));
    }
    for k in spec.secrets.iter() {
        h.update(format!("secret:{k}\n"));
    }
    if let Some(d) = &inputs.secret_digest {
        h.update(format!("secret-digest:{d}\n"));
    }
    hex(&h.finalize())[..16].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Renderer<'a> {
    spec: &'a AppSpec,
    checksum: &'a str,
    inputs: &'a RenderInputs,
}

fn string_map<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Renderer<'_> {
    fn selector(&self, component: &str) -> BTreeMap<String, String> {
        string_map([
            (labels::NAME, &self.spec.name),
            (labels::INSTANCE, &self.spec.name),
            (labels::COMPONENT, component),
        ])
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut l = self.selector(component);
        l.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
        if let Some(tag) = &self.spec.image.tag {
            // Label values are limited to 63 characters of [A-Za-z0-9._-].
            let v: String = tag
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .take(63)
                .collect();
            l.insert(labels::VERSION.into(), v);
        }
        l
    }

    fn meta(&self, name: &str, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.spec.namespace.clone(),
            labels: Some(self.labels(component)),
            ..ObjectMeta::default()
        }
    }

    /// Requests and limits. Local disk: the request is the spec's (256Mi by default), the limit
    /// the spec's or `default_disk_limit`, what the container's writable folders may hold
    /// plus room for its log.
    fn resources(r: &Resources, default_disk_limit: &str) -> ResourceRequirements {
        let mut limits = BTreeMap::from([(
            EPHEMERAL_STORAGE.to_string(),
            Quantity(
                r.ephemeral_storage_limit
                    .clone()
                    .unwrap_or_else(|| default_disk_limit.to_string()),
            ),
        )]);
        if let Some(m) = &r.memory_limit {
            limits.insert("memory".to_string(), Quantity(m.clone()));
        }
        ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(r.cpu.clone())),
                ("memory".to_string(), Quantity(r.memory.clone())),
                (
                    EPHEMERAL_STORAGE.to_string(),
                    Quantity(
                        r.ephemeral_storage
                            .clone()
                            .unwrap_or_else(|| DEFAULT_DISK_REQUEST.to_string()),
                    ),
                ),
            ])),
            limits: Some(limits),
            ..ResourceRequirements::default()
        }
    }

    /// The folders a component may write under a read-only root, or why its root stays
    /// writable. The migration writes `db/schema.rb` unless the app turns that off.
    fn writable_paths(&self, component: &str) -> Result<Vec<String>, String> {
        if component == "migrate" && !self.spec.migrate.read_only_root {
            return Err(
                "the migration writes db/schema.rb (`migrate.read_only_root: false`)".into(),
            );
        }
        self.spec.writable_paths()
    }

    /// Makes a pod's root filesystem read-only where the app's writable folders are known:
    /// an emptyDir (with a size limit) at each, and a local-disk limit that holds them.
    fn local_disk(&self, component: &str, resources: &Resources, pod: &mut PodSpec) {
        let paths = self.writable_paths(component);
        let (mounts, volumes, limit) = match &paths {
            Ok(paths) => {
                let mut total = LOG_ROOM_MIB;
                let mut mounts = Vec::new();
                let mut volumes = pod.volumes.take().unwrap_or_default();
                for path in paths {
                    let size = scratch_size_mib(path, self.spec.workdir.as_deref());
                    total += size;
                    let name = scratch_volume_name(path);
                    mounts.push(VolumeMount {
                        name: name.clone(),
                        mount_path: path.clone(),
                        ..VolumeMount::default()
                    });
                    volumes.push(Volume {
                        name,
                        empty_dir: Some(EmptyDirVolumeSource {
                            size_limit: Some(Quantity(mebibytes(size))),
                            ..EmptyDirVolumeSource::default()
                        }),
                        ..Volume::default()
                    });
                }
                (mounts, Some(volumes), mebibytes(total))
            }
            Err(_) => (
                Vec::new(),
                pod.volumes.take(),
                WRITABLE_ROOT_DISK_LIMIT.to_string(),
            ),
        };
        pod.volumes = volumes.filter(|v| !v.is_empty());
        for c in &mut pod.containers {
            c.resources = Some(Self::resources(resources, &limit));
            if let Some(sc) = c.security_context.as_mut() {
                sc.read_only_root_filesystem = Some(paths.is_ok());
            }
            if !mounts.is_empty() {
                c.volume_mounts
                    .get_or_insert_with(Vec::new)
                    .extend(mounts.iter().cloned());
            }
        }
    }

    /// The container every process shares: image, env from the ConfigMap and Secret, a
    /// restricted security context. Process-specific parts are added by the caller.
    fn container(
        &self,
        name: &str,
        command: Option<Vec<String>>,
        resources: &Resources,
    ) -> Container {
        // A process's own plain env comes first: explicit entries win over the ConfigMap.
        let process = if self.spec.workers.contains_key(name) {
            name
        } else {
            "web"
        };
        let own = if process == "web" {
            &self.spec.web.env
        } else {
            &self.spec.workers[process].env
        };
        let own_env = own.iter().map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..EnvVar::default()
        });
        // An accessory's URL is in the pod template, its password read from the accessory's
        // own Secret when the container starts: it goes live with the release's pods, never by
        // a write to the app Secret that pods already running would read.
        let urls = self.spec.accessory_urls();
        let accessory_env = urls.iter().flat_map(|(key, (name, accessory))| {
            let variable = format!(
                "KUBECTL_RAILS_{}_PASSWORD",
                name.to_ascii_uppercase().replace('-', "_")
            );
            let secret = self.spec.accessory_name(name);
            [
                EnvVar {
                    name: variable.clone(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret.clone(),
                            key: "PASSWORD".into(),
                            optional: Some(false),
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                },
                EnvVar {
                    name: key.to_string(),
                    value: Some(accessory.kind.url(
                        &self.spec.name,
                        &secret,
                        &format!("$({variable})"),
                    )),
                    ..EnvVar::default()
                },
            ]
        });
        let secret_env = own_env
            .chain(accessory_env)
            .chain(
                self.spec
                    .secrets
                    .iter()
                    // A key that is a file is mounted, not set in the env.
                    .filter(|key| !self.spec.secrets.files().contains_key(*key))
                    .filter(|key| !urls.contains_key(key.as_str()))
                    .map(|key| EnvVar {
                        name: key.clone(),
                        value_from: Some(EnvVarSource {
                            secret_key_ref: Some(SecretKeySelector {
                                name: self.spec.secret_name(),
                                key: key.clone(),
                                optional: Some(self.spec.secrets.is_optional(key)),
                            }),
                            ..EnvVarSource::default()
                        }),
                        ..EnvVar::default()
                    }),
            )
            .collect::<Vec<_>>();
        Container {
            name: name.to_string(),
            image: Some(self.spec.image.reference()),
            image_pull_policy: Some("IfNotPresent".into()),
            // As Kamal's `cmd` and `docker run IMAGE CMD` do: the image's ENTRYPOINT
            // (`bin/docker-entrypoint`: jemalloc, `db:prepare` for the server) still runs first.
            args: command,
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: self.spec.config_map_name(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]),
            env: (!secret_env.is_empty()).then_some(secret_env),
            resources: Some(Self::resources(resources, WRITABLE_ROOT_DISK_LIMIT)),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    // What an entrypoint that starts as root needs to give folders to its user
                    // and drop to it; all within the baseline Pod Security Standard.
                    add: self.spec.starts_as_root().then(|| {
                        ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
                            .map(String::from)
                            .to_vec()
                    }),
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: {
                let mut mounts: Vec<VolumeMount> = self
                    .spec
                    .volume
                    .iter()
                    .map(|v| VolumeMount {
                        name: v.name.clone(),
                        mount_path: v.mount_path.clone(),
                        ..VolumeMount::default()
                    })
                    .collect();
                // Secrets that are files: each key at its path, read-only.
                mounts.extend(
                    self.spec
                        .secrets
                        .files()
                        .iter()
                        .map(|(key, path)| VolumeMount {
                            name: SECRET_FILES_VOLUME.into(),
                            mount_path: path.clone(),
                            sub_path: Some(key.clone()),
                            read_only: Some(true),
                            ..VolumeMount::default()
                        }),
                );
                (!mounts.is_empty()).then_some(mounts)
            },
            ..Container::default()
        }
    }

    /// The Service in front of a process's pods, on port 80 to their `http` port.
    fn http_service(&self, component: &str) -> k8s_openapi::api::core::v1::Service {
        use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
        Service {
            metadata: self.meta(&self.spec.deployment_name(component), component),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(self.selector(component)),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn pod_spec(
        &self,
        process: &str,
        containers: Vec<Container>,
        restart_policy: Option<&str>,
    ) -> PodSpec {
        let placement = self.spec.placement_of(process);
        PodSpec {
            tolerations: tolerations(&placement),
            node_selector: (!placement.node_selector.is_empty()).then_some(placement.node_selector),
            containers,
            restart_policy: restart_policy.map(str::to_string),
            // The app never talks to the Kubernetes API.
            automount_service_account_token: Some(false),
            // Service links would inject `<NAME>_PORT` variables that can shadow the app's own.
            enable_service_links: Some(false),
            image_pull_secrets: self.spec.registry.as_ref().map(|r| {
                vec![LocalObjectReference {
                    name: r.pull_secret.clone(),
                }]
            }),
            security_context: Some(PodSecurityContext {
                // An entrypoint that starts as root drops to its user itself.
                run_as_non_root: (!self.spec.starts_as_root()).then_some(true),
                run_as_user: self.spec.uid,
                run_as_group: if self.spec.starts_as_root() {
                    None
                } else {
                    self.spec.gid
                },
                fs_group: self.spec.gid,
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            affinity: self.volume_affinity(),
            volumes: {
                let mut volumes: Vec<Volume> = self
                    .spec
                    .volume
                    .iter()
                    .map(|v| Volume {
                        name: v.name.clone(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: self.claim_name().unwrap_or_default(),
                            ..PersistentVolumeClaimVolumeSource::default()
                        }),
                        ..Volume::default()
                    })
                    .collect();
                let files = self.spec.secrets.files();
                if !files.is_empty() {
                    volumes.push(Volume {
                        name: SECRET_FILES_VOLUME.into(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(self.spec.secret_name()),
                            items: Some(
                                files
                                    .keys()
                                    .map(|key| KeyToPath {
                                        key: key.clone(),
                                        path: key.clone(),
                                        mode: Some(0o440),
                                    })
                                    .collect(),
                            ),
                            optional: Some(files.keys().all(|k| self.spec.secrets.is_optional(k))),
                            ..SecretVolumeSource::default()
                        }),
                        ..Volume::default()
                    });
                }
                (!volumes.is_empty()).then_some(volumes)
            },
            ..PodSpec::default()
        }
    }

    fn template(&self, component: &str, pod: PodSpec) -> PodTemplateSpec {
        let mut labels = self.labels(component);
        if self.spec.single_node_volume().is_some()
            && let Some(claim) = self.claim_name()
        {
            labels.insert(VOLUME_LABEL.into(), claim);
        }
        let mut annotations = string_map([
            (CHECKSUM_ANNOTATION, self.checksum),
            ("kubectl.kubernetes.io/default-container", component),
        ]);
        // Whoever reads the manifest (a reviewer, a policy engine) sees why the root is not
        // read-only.
        if let Err(why) = self.writable_paths(component) {
            annotations.insert(WRITABLE_ROOT_ANNOTATION.into(), why);
        }
        // A pinned image names its digest; the tag it was resolved from stays readable.
        if let (Some(_), Some(tag)) = (&self.spec.image.digest, &self.spec.image.tag) {
            annotations.insert(IMAGE_TAG_ANNOTATION.into(), tag.clone());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            }),
            spec: Some(pod),
        }
    }

    /// A TCP connection to the web port: cheap, and independent of the app's dependencies.
    fn port_probe(period: i32, failures: i32) -> Probe {
        Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("http".into()),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(period),
            timeout_seconds: Some(5),
            failure_threshold: Some(failures),
            ..Probe::default()
        }
    }

    fn probe(&self, period: i32, failures: i32) -> Probe {
        // `X-Forwarded-Proto: https` keeps `force_ssl` (Rails 7.1/7.2) from answering 301, and
        // the ingress host keeps host authorization (`config.hosts`) from answering 403.
        let mut headers = vec![HTTPHeader {
            name: "X-Forwarded-Proto".into(),
            value: "https".into(),
        }];
        if let Some(host) = self.spec.ingress.as_ref().and_then(|i| i.hosts.first()) {
            headers.push(HTTPHeader {
                name: "Host".into(),
                value: host.trim_start_matches("*.").to_string(),
            });
        }
        let tcp = self.spec.web.health_path == crate::model::TCP_PROBE;
        Probe {
            http_get: (!tcp).then(|| HTTPGetAction {
                path: Some(self.spec.web.health_path.clone()),
                port: IntOrString::String("http".into()),
                http_headers: Some(headers),
                ..HTTPGetAction::default()
            }),
            tcp_socket: tcp.then(|| TCPSocketAction {
                port: IntOrString::String("http".into()),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(period),
            timeout_seconds: Some(5),
            failure_threshold: Some(failures),
            ..Probe::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::test_support::{object, spec};

    #[test]
    fn rendering_is_deterministic() {
        let s = spec(
            "workers:\n  jobs: {command: [bin/jobs], replicas: 2}\nenv: {B: '2', A: '1'}\nsecrets: [SECRET_KEY_BASE]\n",
        );
        let a = serde_json::to_string(&render(&s, &RenderInputs::default()).to_list()).unwrap();
        let b = serde_json::to_string(&render(&s, &RenderInputs::default()).to_list()).unwrap();
        assert_eq!(a, b);
        let with_secret = render(
            &s,
            &RenderInputs {
                secret_digest: Some("abc".into()),
                ..RenderInputs::default()
            },
        );
        assert_ne!(
            with_secret.checksum,
            render(&s, &RenderInputs::default()).checksum,
            "a secret change rolls the pods"
        );
    }

    /// The web, worker, cron and migration pods of a release, as `(component, pod spec)`.
    fn pods(release: &Release) -> Vec<(String, Value)> {
        release
            .objects
            .iter()
            .filter_map(|o| {
                let pod = match o.kind {
                    "Deployment" | "Job" => &o.value["spec"]["template"],
                    "CronJob" => &o.value["spec"]["jobTemplate"]["spec"]["template"],
                    _ => return None,
                };
                let component = pod["metadata"]["labels"][labels::COMPONENT]
                    .as_str()
                    .unwrap()
                    .to_string();
                Some((component, pod["spec"].clone()))
            })
            .collect()
    }

    /// A read-only root where the app's writable folders are known (its WORKDIR): an emptyDir
    /// at each, a size limit on each, and a local-disk limit that holds them all.
    #[test]
    fn the_root_filesystem_is_read_only_where_the_writable_folders_are_known() {
        let app = "workers: {jobs: {command: [bin/jobs]}}\ncron: {nightly: {schedule: '0 4 * * *', command: [bin/rails, runner, X]}}\n";
        // (extra spec lines, read-only, mount paths, local-disk limit, why not)
        let cases: &[(&str, bool, &[&str], &str)] = &[
            ("workdir: /rails\n", true, &["/rails/tmp", "/tmp"], "2Gi"),
            (
                "workdir: /app/\nwritable: [log, /var/cache/app]\n",
                true,
                &["/app/tmp", "/tmp", "/app/log", "/var/cache/app"],
                "3Gi",
            ),
            // Unknown WORKDIR, an image that starts as root, or turned off: writable, 2Gi.
            ("", false, &[], "2Gi"),
            ("workdir: /rails\nuid: 0\n", false, &[], "2Gi"),
            (
                "workdir: /rails\nread_only_root: false\n",
                false,
                &[],
                "2Gi",
            ),
        ];
        for (extra, read_only, paths, limit) in cases {
            let release = render(&spec(&format!("{app}{extra}")), &RenderInputs::default());
            let all = pods(&release);
            assert_eq!(all.len(), 4, "web, jobs, cron, migrate: {extra}");
            for (component, pod) in all {
                let c = &pod["containers"][0];
                assert_eq!(
                    c["securityContext"]["readOnlyRootFilesystem"], *read_only,
                    "{component}: {extra}"
                );
                let mounts: Vec<&str> = c["volumeMounts"]
                    .as_array()
                    .map(|m| m.iter().map(|m| m["mountPath"].as_str().unwrap()).collect())
                    .unwrap_or_default();
                assert_eq!(&mounts, paths, "{component}: {extra}");
                for m in c["volumeMounts"].as_array().into_iter().flatten() {
                    let volume = pod["volumes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|v| v["name"] == m["name"])
                        .unwrap();
                    assert!(volume["emptyDir"]["sizeLimit"].is_string(), "{volume}");
                }
                let disk = &c["resources"];
                assert_eq!(
                    disk["requests"]["ephemeral-storage"], "256Mi",
                    "{component}"
                );
                assert_eq!(
                    disk["limits"]["ephemeral-storage"], *limit,
                    "{component}: {extra}"
                );
            }
        }
        // The spec sizes local disk; a migration that dumps the schema keeps a writable root.
        let mut s = spec(&format!(
            "{app}workdir: /rails\nmigrate: {{command: [bin/rails, db:migrate], read_only_root: false}}\n"
        ));
        s.web.resources.ephemeral_storage = Some("1Gi".into());
        s.web.resources.ephemeral_storage_limit = Some("8Gi".into());
        for (component, pod) in pods(&render(&s, &RenderInputs::default())) {
            let c = &pod["containers"][0];
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"],
                component != "migrate",
                "{component}"
            );
            if component != "jobs" {
                assert_eq!(c["resources"]["requests"]["ephemeral-storage"], "1Gi");
                assert_eq!(c["resources"]["limits"]["ephemeral-storage"], "8Gi");
            }
        }
        let volume = spec("workdir: /rails\nvolume: {name: data, mount_path: /rails/tmp}\n");
        assert_eq!(
            volume.writable_paths().unwrap(),
            ["/tmp"],
            "the volume is writable already"
        );
    }

    /// Readiness asks the health path; liveness only the port, and tolerates more failures, so
    /// that a slow database takes pods out of the Service but never restarts them all.
    /// A pinned image runs by digest; the tag stays in an annotation and the version label.
    #[test]
    fn a_pinned_image_runs_by_digest_and_keeps_its_tag_readable() {
        let mut s = spec("");
        let digest = format!("sha256:{}", "ab".repeat(32));
        s.image.digest = Some(digest.clone());
        let release = render(&s, &RenderInputs::default());
        for kind in ["Deployment", "Job"] {
            let template = &object(&release, kind)["spec"]["template"];
            assert_eq!(
                template["spec"]["containers"][0]["image"],
                format!("ghcr.io/acme/shop@{digest}"),
                "{kind}"
            );
            assert_eq!(
                template["metadata"]["annotations"][IMAGE_TAG_ANNOTATION],
                "1.0"
            );
            assert_eq!(template["metadata"]["labels"][labels::VERSION], "1.0");
        }
        assert_eq!(s.image.shown(), "ghcr.io/acme/shop:1.0 (abababababab)");
        s.image.digest = None;
        let release = render(&s, &RenderInputs::default());
        let template = &object(&release, "Deployment")["spec"]["template"];
        assert_eq!(
            template["spec"]["containers"][0]["image"],
            "ghcr.io/acme/shop:1.0"
        );
        assert!(
            template["metadata"]["annotations"]
                .get(IMAGE_TAG_ANNOTATION)
                .is_none()
        );
    }

    #[test]
    fn liveness_is_not_readiness() {
        let release = render(&spec(""), &RenderInputs::default());
        let web = &object(&release, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(web["readinessProbe"]["httpGet"]["path"], "/up");
        assert_eq!(web["startupProbe"]["httpGet"]["path"], "/up");
        assert!(web["livenessProbe"].get("httpGet").is_none());
        assert_eq!(web["livenessProbe"]["tcpSocket"]["port"], "http");
        assert!(
            web["livenessProbe"]["failureThreshold"].as_i64()
                > web["readinessProbe"]["failureThreshold"].as_i64()
        );
        // A TCP health check: readiness is that check, and no second copy of it restarts pods.
        let mut tcp = spec("");
        tcp.web.health_path = crate::model::TCP_PROBE.into();
        let release = render(&tcp, &RenderInputs::default());
        let web = &object(&release, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(web["readinessProbe"]["tcpSocket"]["port"], "http");
        assert!(web.get("livenessProbe").is_none(), "{web}");
    }

    #[test]
    fn placement_reaches_every_pod_the_app_creates() {
        let s = spec(
            "placement:\n  node_selector: {pool: rails}\n  tolerations:\n  - {key: dedicated, value: rails, effect: NoSchedule}\nworkers:\n  jobs:\n    command: [bin/jobs]\n    placement:\n      node_selector: {pool: jobs}\n      tolerations: [{key: spot}]\n",
        );
        let release = render(&s, &RenderInputs::default());
        let pod = |kind: &str, name: &str| {
            let o = release
                .objects
                .iter()
                .find(|o| o.kind == kind && o.name.starts_with(name))
                .unwrap();
            o.value["spec"]["template"]["spec"].clone()
        };
        let rails_pool = serde_json::json!({"pool": "rails"});
        let dedicated = serde_json::json!([{"key": "dedicated", "operator": "Equal", "value": "rails", "effect": "NoSchedule"}]);
        for (kind, name) in [("Deployment", "shop-web"), ("Job", "shop-migrate")] {
            let p = pod(kind, name);
            assert_eq!(p["nodeSelector"], rails_pool, "{kind} {name}");
            assert_eq!(p["tolerations"], dedicated, "{kind} {name}");
        }
        let jobs = pod("Deployment", "shop-jobs");
        assert_eq!(jobs["nodeSelector"], serde_json::json!({"pool": "jobs"}));
        assert_eq!(
            jobs["tolerations"],
            serde_json::json!([{"key": "spot", "operator": "Exists"}])
        );
        let plain = render(&spec(""), &RenderInputs::default());
        let web = &plain
            .objects
            .iter()
            .find(|o| o.kind == "Deployment")
            .unwrap()
            .value;
        assert!(
            web["spec"]["template"]["spec"]
                .get("nodeSelector")
                .is_none()
        );
        assert!(web["spec"]["template"]["spec"].get("tolerations").is_none());
    }

    #[test]
    fn cron_entries_and_accessories_render_from_the_spec() {
        let mut s = spec(
            "cron:\n  nightly: {schedule: '30 4 * * *', command: [bin/rails, runner, Report.daily], time_zone: Europe/Madrid}\naccessories:\n  postgres: {kind: postgres, image: 'postgres:16', size: 5Gi}\n  redis: {kind: redis, image: 'redis:7'}\n",
        );
        s.web.env.insert("WEB_ONLY".into(), "1".into());
        s.web.drain_timeout = Some(45);
        let release = render(&s, &RenderInputs::default());
        let find = |kind: &str, name: &str| {
            release
                .objects
                .iter()
                .find(|o| o.kind == kind && o.name == name)
                .unwrap_or_else(|| panic!("no {kind} {name}"))
        };
        let cron = &find("CronJob", "shop-cron-nightly").value["spec"];
        assert_eq!(cron["schedule"], "30 4 * * *");
        assert_eq!(cron["timeZone"], "Europe/Madrid");
        assert_eq!(cron["concurrencyPolicy"], "Forbid");
        let pod = &cron["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["args"],
            serde_json::json!(["bin/rails", "runner", "Report.daily"])
        );
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(
            pod["containers"][0]["env"][0],
            serde_json::json!({"name": "WEB_ONLY", "value": "1"})
        );
        let db = find("StatefulSet", "shop-postgres");
        assert_eq!(db.stage, Stage::Config, "before the migration");
        let pg = &db.value["spec"]["template"]["spec"];
        assert_eq!(pg["securityContext"]["runAsUser"], 999);
        assert_eq!(pg["containers"][0]["image"], "postgres:16");
        assert_eq!(
            db.value["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "5Gi"
        );
        assert_eq!(
            find("Service", "shop-redis").value["spec"]["ports"][0]["port"],
            6379
        );
        let web = &find("Deployment", "shop-web").value["spec"]["template"]["spec"];
        assert_eq!(web["terminationGracePeriodSeconds"], 45);
        assert_eq!(web["containers"][0]["env"][0]["name"], "WEB_ONLY");
    }

    #[test]
    fn a_secret_that_is_a_file_is_mounted_read_only_not_set_in_the_env() {
        let s =
            spec("secrets:\n  SECRET_KEY_BASE: {}\n  GCP_KEY: {file: /rails/config/gcp.json}\n");
        let release = render(&s, &RenderInputs::default());
        let pod = &object(&release, "Deployment")["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let env: Vec<&str> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(env, ["SECRET_KEY_BASE"]);
        assert_eq!(
            c["volumeMounts"],
            serde_json::json!([{"name": "secret-files", "mountPath": "/rails/config/gcp.json", "subPath": "GCP_KEY", "readOnly": true}])
        );
        assert_eq!(
            pod["volumes"],
            serde_json::json!([{"name": "secret-files", "secret": {"secretName": "shop-secrets", "items": [{"key": "GCP_KEY", "path": "GCP_KEY", "mode": 288}], "optional": false}}])
        );
        // The migration and cron pods are the web pod's: they get the file too.
        let job = &object(&release, "Job")["spec"]["template"]["spec"];
        assert_eq!(job["volumes"][0]["name"], "secret-files");
    }

    #[test]
    fn an_image_that_starts_as_root_gets_what_its_entrypoint_needs_and_no_more() {
        let mut s = spec("");
        s.uid = Some(0);
        s.gid = Some(1000);
        let release = render(&s, &RenderInputs::default());
        let pod = &object(&release, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 0);
        assert!(pod["securityContext"]["runAsNonRoot"].is_null());
        assert_eq!(pod["securityContext"]["fsGroup"], 1000);
        let context = &pod["containers"][0]["securityContext"];
        assert_eq!(context["allowPrivilegeEscalation"], false);
        assert_eq!(context["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(
            context["capabilities"]["add"],
            serde_json::json!(["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"])
        );
        // Any other uid keeps the restricted profile.
        s.uid = Some(1000);
        let release = render(&s, &RenderInputs::default());
        let pod = &object(&release, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert!(pod["containers"][0]["securityContext"]["capabilities"]["add"].is_null());
    }
}
