//! Rendering: an [`AppSpec`] becomes the Kubernetes objects of one release. Pure and
//! deterministic: the same spec and inputs give byte-identical output.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource,
    EnvVar, EnvVarSource, ExecAction, HTTPGetAction, HTTPHeader, KeyToPath, Lifecycle,
    LifecycleHandler, LocalObjectReference, NodeAffinity, NodeSelectorRequirement,
    NodeSelectorTerm, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodAffinity, PodAffinityTerm, PodSecurityContext, PodSpec,
    PodTemplateSpec, PreferredSchedulingTerm, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    SleepAction, TCPSocketAction, Toleration as K8sToleration, TopologySpreadConstraint, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{AccessoryKind, AccessorySpec, AppSpec, CronSpec, Resources};
use crate::version::{SLEEP_ACTION, ServerVersion};

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
}

/// The migration Job's deadline when the caller names none.
pub const DEFAULT_MIGRATE_DEADLINE_SECONDS: i64 = 1800;

/// What an object is for in a release, which decides when deploy applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Stage {
    /// ConfigMap and volume claim: needed by the migration Job.
    Config,
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
        objects.push(object(
            Stage::Config,
            "StatefulSet",
            &object_name,
            &r.accessory_stateful_set(name, accessory),
        ));
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
    if let Some(ingress) = r.ingress() {
        objects.push(object(Stage::Workload, "Ingress", &spec.name, &ingress));
    }
    Release { objects, checksum }
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

/// A claim for `size` of storage with one access mode; `storage_class` `None` takes the
/// cluster's default.
fn claim_spec(
    access_mode: &str,
    storage_class: Option<String>,
    size: &str,
) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec![access_mode.into()]),
        storage_class_name: storage_class,
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(size.to_string()),
            )])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
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

    fn config_map(&self) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(&self.spec.config_map_name(), "config"),
            data: Some(self.spec.env.clone()),
            ..ConfigMap::default()
        }
    }

    fn claim_name(&self) -> Option<String> {
        self.spec
            .volume
            .as_ref()
            .map(|v| format!("{}-{}", self.spec.name, v.name))
    }

    fn volume_claim(&self) -> Option<PersistentVolumeClaim> {
        let volume = self.spec.volume.as_ref()?;
        Some(PersistentVolumeClaim {
            metadata: self.meta(&self.claim_name()?, "storage"),
            spec: Some(claim_spec(
                volume.access_mode.as_str(),
                volume.storage_class.clone(),
                &volume.size,
            )),
            ..PersistentVolumeClaim::default()
        })
    }

    fn resources(r: &Resources) -> ResourceRequirements {
        ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(r.cpu.clone())),
                ("memory".to_string(), Quantity(r.memory.clone())),
            ])),
            limits: r
                .memory_limit
                .as_ref()
                .map(|m| BTreeMap::from([("memory".to_string(), Quantity(m.clone()))])),
            ..ResourceRequirements::default()
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
        let secret_env = own_env
            .chain(
                self.spec
                    .secrets
                    .iter()
                    // A key that is a file is mounted, not set in the env.
                    .filter(|key| !self.spec.secrets.files().contains_key(*key))
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
            resources: Some(Self::resources(resources)),
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

    fn pod_spec(
        &self,
        process: &str,
        containers: Vec<Container>,
        restart_policy: Option<&str>,
    ) -> PodSpec {
        let placement = self.spec.placement_of(process);
        PodSpec {
            node_selector: (!placement.node_selector.is_empty()).then_some(placement.node_selector),
            tolerations: (!placement.tolerations.is_empty()).then(|| {
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
            }),
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

    /// Every pod that mounts a ReadWriteOnce volume requires the node of the others: a volume of
    /// attachable block storage mounts on one node at a time, and a pod elsewhere would wait in
    /// `ContainerCreating` with a Multi-Attach error. The first such pod may go anywhere (the
    /// scheduler lets a pod that matches its own term start alone).
    fn volume_affinity(&self) -> Option<Affinity> {
        self.spec.single_node_volume()?;
        let claim = self.claim_name()?;
        Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(VOLUME_LABEL.to_string(), claim)])),
                        ..LabelSelector::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..PodAffinityTerm::default()
                }]),
                ..PodAffinity::default()
            }),
            ..Affinity::default()
        })
    }

    /// For a Deployment's pods: prefer the node that holds the volume ([`RenderInputs::volume_node`]).
    fn prefer_volume_node(&self, pod: &mut PodSpec) {
        let (Some(node), Some(affinity)) =
            (self.inputs.volume_node.as_deref(), pod.affinity.as_mut())
        else {
            return;
        };
        affinity.node_affinity = Some(NodeAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                PreferredSchedulingTerm {
                    weight: 100,
                    preference: NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "kubernetes.io/hostname".into(),
                            operator: "In".into(),
                            values: Some(vec![node.to_string()]),
                        }]),
                        ..NodeSelectorTerm::default()
                    },
                },
            ]),
            ..NodeAffinity::default()
        });
    }

    fn template(&self, component: &str, pod: PodSpec) -> PodTemplateSpec {
        let mut labels = self.labels(component);
        if self.spec.single_node_volume().is_some()
            && let Some(claim) = self.claim_name()
        {
            labels.insert(VOLUME_LABEL.into(), claim);
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(string_map([
                    (CHECKSUM_ANNOTATION, self.checksum),
                    ("kubectl.kubernetes.io/default-container", component),
                ])),
                ..ObjectMeta::default()
            }),
            spec: Some(pod),
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

    fn deployment(&self, process: &str) -> Deployment {
        let spec = self.spec;
        let (replicas, container, grace) = if process == "web" {
            let mut c = self.container("web", spec.web.command.clone(), &spec.web.resources);
            c.ports = Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(spec.web.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]);
            // Boot may take a while (bootsnap, eager loading); after that, probes are quick.
            c.startup_probe = Some(self.probe(5, 60));
            c.readiness_probe = Some(self.probe(10, 3));
            c.liveness_probe = Some(self.probe(20, 3));
            // Give the ingress time to stop routing to a terminating pod. A kubelet older than
            // 1.30 has no `sleep` action; the image's own `sleep` does the same there (Rails
            // images are Debian or Alpine based; without one the hook fails and the pod stops
            // at once, as it would with no hook).
            let old_kubelet = self
                .inputs
                .server_version
                .as_ref()
                .is_some_and(|v| !v.at_least(SLEEP_ACTION));
            let pre_stop = if old_kubelet {
                LifecycleHandler {
                    exec: Some(ExecAction {
                        command: Some(vec!["sleep".into(), "5".into()]),
                    }),
                    ..LifecycleHandler::default()
                }
            } else {
                LifecycleHandler {
                    sleep: Some(SleepAction { seconds: 5 }),
                    ..LifecycleHandler::default()
                }
            };
            c.lifecycle = Some(Lifecycle {
                pre_stop: Some(pre_stop),
                ..Lifecycle::default()
            });
            let grace = spec.web.drain_timeout.map_or(30, i64::from);
            (spec.web.replicas, c, grace)
        } else {
            let w = &spec.workers[process];
            (
                w.replicas,
                self.container(process, Some(w.command.clone()), &w.resources),
                60,
            )
        };
        let mut pod = self.pod_spec(process, vec![container], None);
        pod.termination_grace_period_seconds = Some(grace);
        self.prefer_volume_node(&mut pod);
        // Spreading pods that must share a node would fight the volume's affinity.
        pod.topology_spread_constraints = self.spec.single_node_volume().is_none().then(|| {
            vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(self.selector(process)),
                    ..LabelSelector::default()
                }),
                ..TopologySpreadConstraint::default()
            }]
        });
        Deployment {
            metadata: self.meta(&spec.deployment_name(process), process),
            spec: Some(DeploymentSpec {
                // An autoscaler owns the count: leaving it out keeps deploys from resetting it.
                replicas: spec.autoscale_of(process).is_none().then_some(replicas),
                revision_history_limit: Some(10),
                selector: LabelSelector {
                    match_labels: Some(self.selector(process)),
                    ..LabelSelector::default()
                },
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::String("25%".into())),
                    }),
                }),
                template: self.template(process, pod),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    /// The Job's name is a digest of its pod template. A Job's template cannot be changed, so a
    /// release whose migration pod differs in anything (image, config, command, resources) gets
    /// a Job of its own, and migrates once.
    fn migrate_job_name(&self, template: &PodTemplateSpec) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(template).unwrap_or_default());
        format!("{}-migrate-{}", self.spec.name, &hex(&h.finalize())[..8])
    }

    fn migrate_job(&self) -> Job {
        let spec = self.spec;
        let container = self.container(
            "migrate",
            Some(spec.migrate.command.clone()),
            &spec.web.resources,
        );
        // The migration runs where web runs: same nodes, same volume.
        let mut pod = self.pod_spec("web", vec![container], Some("Never"));
        pod.termination_grace_period_seconds = Some(30);
        let template = self.template("migrate", pod);
        Job {
            metadata: self.meta(&self.migrate_job_name(&template), "migrate"),
            spec: Some(JobSpec {
                // A failed migration is reported, not retried: retries hide the first error.
                backoff_limit: Some(0),
                active_deadline_seconds: Some(
                    self.inputs
                        .migrate_deadline_seconds
                        .unwrap_or(DEFAULT_MIGRATE_DEADLINE_SECONDS),
                ),
                ttl_seconds_after_finished: Some(7 * 24 * 3600),
                template,
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }

    /// A scheduled command: the web pod with the entry's command, one run at a time.
    fn cron_job(&self, name: &str, cron: &CronSpec) -> CronJob {
        let container =
            self.container("cron", Some(cron.command.clone()), &self.spec.web.resources);
        let mut pod = self.pod_spec("web", vec![container], Some("Never"));
        pod.termination_grace_period_seconds = Some(30);
        let mut template = self.template("cron", pod);
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(CRON_LABEL.into(), name.to_string());
        }
        let mut meta = self.meta(&cron_job_name(&self.spec.name, name), "cron");
        if let Some(labels) = meta.labels.as_mut() {
            labels.insert(CRON_LABEL.into(), name.to_string());
        }
        CronJob {
            metadata: meta,
            spec: Some(CronJobSpec {
                schedule: cron.schedule.clone(),
                time_zone: cron.time_zone.clone(),
                suspend: Some(cron.suspend),
                // A run still going when the next is due is not doubled.
                concurrency_policy: Some("Forbid".into()),
                starting_deadline_seconds: Some(300),
                successful_jobs_history_limit: Some(3),
                failed_jobs_history_limit: Some(3),
                job_template: JobTemplateSpec {
                    metadata: None,
                    spec: Some(JobSpec {
                        backoff_limit: Some(0),
                        ttl_seconds_after_finished: Some(24 * 3600),
                        template,
                        ..JobSpec::default()
                    }),
                },
            }),
            ..CronJob::default()
        }
    }

    fn accessory_selector(&self, name: &str) -> BTreeMap<String, String> {
        self.selector(&format!("accessory-{name}"))
    }

    fn accessory_service(&self, name: &str, accessory: &AccessorySpec) -> Service {
        let mut meta = self.meta(
            &self.spec.accessory_name(name),
            &format!("accessory-{name}"),
        );
        meta.labels.get_or_insert_default();
        Service {
            metadata: meta,
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(self.accessory_selector(name)),
                ports: Some(vec![ServicePort {
                    name: Some(name.to_string()),
                    port: i32::from(accessory.kind.port()),
                    target_port: Some(IntOrString::Int(i32::from(accessory.kind.port()))),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// PostgreSQL or Redis with a volume of its own, running as the image's non-root user and
    /// admitted under the `restricted` Pod Security Standard; its password from its Secret.
    fn accessory_stateful_set(&self, name: &str, accessory: &AccessorySpec) -> StatefulSet {
        let object_name = self.spec.accessory_name(name);
        let password = EnvVar {
            name: "PASSWORD".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: object_name.clone(),
                    key: "PASSWORD".into(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        let plain = |k: &str, v: &str| EnvVar {
            name: k.into(),
            value: Some(v.into()),
            ..EnvVar::default()
        };
        let (uid, mount, env, command, probe) = match accessory.kind {
            AccessoryKind::Postgres => (
                999,
                "/var/lib/postgresql/data",
                vec![
                    password,
                    plain("POSTGRES_PASSWORD", "$(PASSWORD)"),
                    plain("POSTGRES_USER", &self.spec.name),
                    plain("POSTGRES_DB", &self.spec.name),
                    // A folder inside the volume: initdb wants an empty one.
                    plain("PGDATA", "/var/lib/postgresql/data/pgdata"),
                ],
                None,
                Probe {
                    exec: Some(ExecAction {
                        command: Some(vec![
                            "pg_isready".into(),
                            "-U".into(),
                            self.spec.name.clone(),
                        ]),
                    }),
                    period_seconds: Some(5),
                    ..Probe::default()
                },
            ),
            AccessoryKind::Redis => (
                999,
                "/data",
                vec![password],
                Some(vec![
                    "redis-server".into(),
                    "--requirepass".into(),
                    "$(PASSWORD)".into(),
                    "--appendonly".into(),
                    "yes".into(),
                ]),
                Probe {
                    tcp_socket: Some(TCPSocketAction {
                        port: IntOrString::Int(6379),
                        ..TCPSocketAction::default()
                    }),
                    period_seconds: Some(5),
                    ..Probe::default()
                },
            ),
        };
        let container = Container {
            name: name.to_string(),
            image: Some(accessory.image.clone()),
            command,
            env: Some(env),
            ports: Some(vec![ContainerPort {
                container_port: i32::from(accessory.kind.port()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(probe),
            resources: Some(Self::resources(&Resources {
                cpu: "100m".into(),
                memory: "256Mi".into(),
                memory_limit: Some("1Gi".into()),
            })),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: mount.into(),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };
        let component = format!("accessory-{name}");
        StatefulSet {
            metadata: self.meta(&object_name, &component),
            spec: Some(StatefulSetSpec {
                service_name: Some(object_name.clone()),
                replicas: Some(1),
                selector: LabelSelector {
                    match_labels: Some(self.accessory_selector(name)),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels(&component)),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        automount_service_account_token: Some(false),
                        enable_service_links: Some(false),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            run_as_user: Some(uid),
                            run_as_group: Some(uid),
                            fs_group: Some(uid),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".into(),
                                ..SeccompProfile::default()
                            }),
                            ..PodSecurityContext::default()
                        }),
                        ..PodSpec::default()
                    }),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(claim_spec("ReadWriteOnce", None, &accessory.size)),
                    ..PersistentVolumeClaim::default()
                }]),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }
    }

    fn service(&self) -> Service {
        Service {
            metadata: self.meta(&self.spec.deployment_name("web"), "web"),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(self.selector("web")),
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

    fn pdb(&self, process: &str) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.meta(&self.spec.deployment_name(process), process),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(self.selector(process)),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }
    }

    fn autoscaler(&self, process: &str) -> Option<HorizontalPodAutoscaler> {
        let a = self.spec.autoscale_of(process)?;
        let name = self.spec.deployment_name(process);
        Some(HorizontalPodAutoscaler {
            metadata: self.meta(&name, process),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name,
                },
                min_replicas: Some(a.min),
                max_replicas: a.max,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(a.cpu),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                ..HorizontalPodAutoscalerSpec::default()
            }),
            ..HorizontalPodAutoscaler::default()
        })
    }

    fn ingress(&self) -> Option<Ingress> {
        let ingress = self.spec.ingress.as_ref()?;
        let backend = IngressBackend {
            service: Some(IngressServiceBackend {
                name: self.spec.deployment_name("web"),
                port: Some(ServiceBackendPort {
                    name: Some("http".into()),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        };
        let rules = ingress
            .hosts
            .iter()
            .map(|host| IngressRule {
                host: Some(host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: backend.clone(),
                    }],
                }),
            })
            .collect();
        let mut annotations = BTreeMap::new();
        if let (true, Some(issuer)) = (ingress.tls, &ingress.issuer) {
            annotations.insert(ingress.issuer_kind.annotation().to_string(), issuer.clone());
        }
        if ingress.www_redirect {
            annotations.insert(
                "nginx.ingress.kubernetes.io/from-to-www-redirect".into(),
                "true".into(),
            );
        }
        if let Some(size) = &ingress.body_size {
            annotations.insert(
                "nginx.ingress.kubernetes.io/proxy-body-size".into(),
                size.clone(),
            );
        }
        if let Some(timeout) = ingress.timeout {
            for key in ["proxy-read-timeout", "proxy-send-timeout"] {
                annotations.insert(
                    format!("nginx.ingress.kubernetes.io/{key}"),
                    timeout.to_string(),
                );
            }
        }
        let mut meta = self.meta(&self.spec.name, "web");
        meta.annotations = (!annotations.is_empty()).then_some(annotations);
        // One certificate per host, so that adding a host never reissues the others; a www
        // redirect needs the www name on the apex's certificate.
        let tls = ingress.tls.then(|| {
            ingress
                .hosts
                .iter()
                .map(|host| {
                    let mut hosts = vec![host.clone()];
                    if ingress.www_redirect && !host.starts_with("www.") && !host.starts_with("*.")
                    {
                        hosts.push(format!("www.{host}"));
                    }
                    IngressTLS {
                        hosts: Some(hosts),
                        secret_name: Some(tls_secret_name(&self.spec.name, host)),
                    }
                })
                .collect()
        });
        Some(Ingress {
            metadata: meta,
            spec: Some(K8sIngressSpec {
                ingress_class_name: ingress.class.clone(),
                rules: Some(rules),
                tls,
                ..K8sIngressSpec::default()
            }),
            ..Ingress::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file;

    fn spec(extra: &str) -> AppSpec {
        let text = format!(
            "name: shop\nimage: {{repository: ghcr.io/acme/shop, tag: '1.0'}}\nweb: {{port: 3000, replicas: 2}}\n{extra}"
        );
        file::parse(&text, std::path::Path::new("kubernetes.yml"))
            .unwrap()
            .spec
    }

    fn ingress_yaml(spec: &AppSpec) -> String {
        let release = render(spec, &RenderInputs::default());
        let ingress = release
            .objects
            .iter()
            .find(|o| o.kind == "Ingress")
            .unwrap();
        serde_saphyr::to_string(&ingress.value).unwrap()
    }

    #[test]
    fn tls_with_cert_manager_one_secret_per_host_and_www_redirect() {
        let s = spec(
            "ingress:\n  hosts: [shop.example.com, api.example.com]\n  class: nginx\n  tls: true\n  issuer: letsencrypt-prod\n  www_redirect: true\n  body_size: 25m\n  timeout: 60\n",
        );
        insta::assert_snapshot!("ingress_tls", ingress_yaml(&s));
    }

    #[test]
    fn namespaced_issuer_and_plain_http() {
        let s = spec(
            "ingress:\n  hosts: [shop.example.com]\n  tls: true\n  issuer: shop-ca\n  issuer_kind: Issuer\n",
        );
        let y = ingress_yaml(&s);
        assert!(y.contains("cert-manager.io/issuer: shop-ca"), "{y}");
        assert!(!y.contains("cluster-issuer"), "{y}");
        let plain = ingress_yaml(&spec("ingress:\n  hosts: [shop.example.com]\n"));
        assert!(!plain.contains("tls:"), "{plain}");
        assert!(!plain.contains("annotations"), "{plain}");
    }

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

    fn object<'a>(release: &'a Release, kind: &str) -> &'a Value {
        &release
            .objects
            .iter()
            .find(|o| o.kind == kind)
            .unwrap()
            .value
    }

    #[test]
    fn a_kubelet_before_1_30_gets_a_sleep_command_for_the_pre_stop_hook() {
        let s = spec("");
        let at = |minor: u32| {
            let inputs = RenderInputs {
                server_version: Some(ServerVersion {
                    major: 1,
                    minor,
                    git_version: String::new(),
                }),
                ..RenderInputs::default()
            };
            let release = render(&s, &inputs);
            object(&release, "Deployment")["spec"]["template"]["spec"]["containers"][0]["lifecycle"]
                ["preStop"]
                .clone()
        };
        assert_eq!(
            at(29),
            serde_json::json!({"exec": {"command": ["sleep", "5"]}})
        );
        assert_eq!(at(30), serde_json::json!({"sleep": {"seconds": 5}}));
        let unknown = render(&s, &RenderInputs::default());
        assert_eq!(
            object(&unknown, "Deployment")["spec"]["template"]["spec"]["containers"][0]["lifecycle"]
                ["preStop"],
            at(33)
        );
    }

    #[test]
    fn the_migration_deadline_follows_the_callers_timeout() {
        let s = spec("");
        let deadline = |inputs: &RenderInputs| {
            object(&render(&s, inputs), "Job")["spec"]["activeDeadlineSeconds"].clone()
        };
        assert_eq!(deadline(&RenderInputs::default()), 1800);
        let long = RenderInputs {
            migrate_deadline_seconds: Some(7200),
            ..RenderInputs::default()
        };
        assert_eq!(deadline(&long), 7200);
        assert_eq!(
            object(&render(&s, &long), "Job")["metadata"]["name"],
            object(&render(&s, &RenderInputs::default()), "Job")["metadata"]["name"],
            "the deadline is not part of the pod template, so the Job keeps its name"
        );
    }

    #[test]
    fn pods_that_share_a_read_write_once_volume_share_a_node() {
        let s = spec(
            "workers:\n  jobs: {command: [bin/jobs]}\nvolume: {name: storage, mount_path: /rails/storage}\n",
        );
        let inputs = RenderInputs {
            volume_node: Some("node-7".into()),
            ..RenderInputs::default()
        };
        let release = render(&s, &inputs);
        let claim = serde_json::json!({"kubectl-rails.dev/volume": "shop-storage"});
        for o in release
            .objects
            .iter()
            .filter(|o| o.kind == "Deployment" || o.kind == "Job")
        {
            let template = &o.value["spec"]["template"];
            assert_eq!(
                template["metadata"]["labels"]["kubectl-rails.dev/volume"], "shop-storage",
                "{}",
                o.name
            );
            let pod = &template["spec"];
            let term = &pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                [0];
            assert_eq!(term["labelSelector"]["matchLabels"], claim, "{}", o.name);
            assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
            assert!(pod.get("topologySpreadConstraints").is_none(), "{}", o.name);
            let preferred = &pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                [0]["preference"]["matchExpressions"][0]["values"];
            if o.kind == "Deployment" {
                assert_eq!(preferred, &serde_json::json!(["node-7"]), "{}", o.name);
            } else {
                // The Job's name is a digest of its template: a node in it would rename it.
                assert!(preferred.is_null(), "{}", o.name);
            }
        }
        let shared = spec(
            "volume: {name: storage, mount_path: /rails/storage, access_mode: ReadWriteMany, storage_class: efs}\n",
        );
        let release = render(&shared, &inputs);
        let web = release
            .objects
            .iter()
            .find(|o| o.kind == "Deployment")
            .unwrap();
        assert!(
            web.value["spec"]["template"]["spec"]
                .get("affinity")
                .is_none()
        );
        assert!(
            web.value["spec"]["template"]["spec"]
                .get("topologySpreadConstraints")
                .is_some()
        );
        let pvc = release
            .objects
            .iter()
            .find(|o| o.kind == "PersistentVolumeClaim")
            .unwrap();
        assert_eq!(
            pvc.value["spec"]["accessModes"],
            serde_json::json!(["ReadWriteMany"])
        );
        assert_eq!(pvc.value["spec"]["storageClassName"], "efs");
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

    #[test]
    fn autoscaled_processes_leave_replicas_to_the_hpa() {
        let s = spec(
            "workers:\n  jobs: {command: [bin/jobs], replicas: 1, autoscale: {min: 2, max: 6, cpu: 60}}\n",
        );
        let release = render(&s, &RenderInputs::default());
        let jobs = release
            .objects
            .iter()
            .find(|o| o.kind == "Deployment" && o.name == "shop-jobs")
            .unwrap();
        assert!(jobs.value["spec"].get("replicas").is_none());
        let hpa = release
            .objects
            .iter()
            .find(|o| o.kind == "HorizontalPodAutoscaler")
            .unwrap();
        assert_eq!(hpa.value["spec"]["maxReplicas"], 6);
        assert!(
            release
                .objects
                .iter()
                .any(|o| o.kind == "PodDisruptionBudget" && o.name == "shop-jobs"),
            "min 2 gets a PDB"
        );
    }
}
