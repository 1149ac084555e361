//! Accessories (PostgreSQL, Redis): the Service the app reaches each by and the StatefulSet that
//! runs it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    PersistentVolumeClaim, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Renderer;
use super::volume::claim_spec;

/// What each of an accessory's emptyDirs (its socket folder, `/tmp`) may hold.
const ACCESSORY_SCRATCH_MIB: u64 = 256;
use crate::model::{AccessoryKind, AccessorySpec, Resources};

impl Renderer<'_> {
    fn accessory_selector(&self, name: &str) -> BTreeMap<String, String> {
        self.selector(&format!("accessory-{name}"))
    }

    pub(super) fn accessory_service(&self, name: &str, accessory: &AccessorySpec) -> Service {
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

    /// The headless Service that governs an accessory's StatefulSet (stable pod names in DNS);
    /// the app reaches the accessory through [`Renderer::accessory_service`].
    pub(super) fn accessory_pods_service(&self, name: &str, accessory: &AccessorySpec) -> Service {
        let mut service = self.accessory_service(name, accessory);
        service.metadata.name = Some(self.accessory_pods_service_name(name));
        if let Some(spec) = service.spec.as_mut() {
            spec.cluster_ip = Some("None".into());
            spec.type_ = None;
        }
        service
    }

    fn accessory_pods_service_name(&self, name: &str) -> String {
        format!(
            "{}{}",
            self.spec.accessory_name(name),
            crate::validate::ACCESSORY_PODS_SUFFIX
        )
    }

    /// PostgreSQL or Redis with a volume of its own, running as the image's non-root user and
    /// admitted under the `restricted` Pod Security Standard; its password from its Secret.
    pub(super) fn accessory_stateful_set(
        &self,
        name: &str,
        accessory: &AccessorySpec,
    ) -> StatefulSet {
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
        let scratch: &[&str] = match accessory.kind {
            AccessoryKind::Postgres => &["/var/run/postgresql", "/tmp"],
            AccessoryKind::Redis => &["/tmp"],
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
            resources: Some(Self::resources(
                &Resources {
                    cpu: "100m".into(),
                    memory: "256Mi".into(),
                    memory_limit: Some("1Gi".into()),
                    ephemeral_storage: None,
                    ephemeral_storage_limit: None,
                },
                &super::mebibytes(
                    super::LOG_ROOM_MIB + ACCESSORY_SCRATCH_MIB * scratch.len() as u64,
                ),
            )),
            security_context: Some(SecurityContext {
                // The official images write only their data folder, the socket folder and
                // `/tmp`: the first is the volume, the others emptyDirs.
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(
                std::iter::once(VolumeMount {
                    name: "data".into(),
                    mount_path: mount.into(),
                    ..VolumeMount::default()
                })
                .chain(scratch.iter().map(|path| VolumeMount {
                    name: super::scratch_volume_name(path),
                    mount_path: (*path).into(),
                    ..VolumeMount::default()
                }))
                .collect(),
            ),
            ..Container::default()
        };
        let scratch_volumes = scratch
            .iter()
            .map(|path| Volume {
                name: super::scratch_volume_name(path),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity(super::mebibytes(ACCESSORY_SCRATCH_MIB))),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            })
            .collect();
        let component = format!("accessory-{name}");
        StatefulSet {
            metadata: self.meta(&object_name, &component),
            spec: Some(StatefulSetSpec {
                service_name: Some(self.accessory_pods_service_name(name)),
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
                        volumes: Some(scratch_volumes),
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
}
