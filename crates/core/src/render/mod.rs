//! Rendering: an [`AppSpec`] becomes the Kubernetes objects of one release. Pure and
//! deterministic: the same spec and inputs give byte-identical output.
//!
//! One file per kind of object. This one holds the public API and what every pod shares:
//! labels, metadata, the container, the pod spec, its template and probes.

mod accessory;
mod config;
mod cron;
mod migrate;
mod network;
#[cfg(test)]
mod test_support;
mod volume;
mod workloads;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, EnvFromSource, EnvVar, EnvVarSource,
    HTTPGetAction, HTTPHeader, KeyToPath, LocalObjectReference, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, TCPSocketAction,
    Toleration as K8sToleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{AppSpec, Resources};
use crate::version::ServerVersion;

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
