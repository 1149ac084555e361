//! What runs each process: its Deployment, a PodDisruptionBudget when it keeps more than one
//! pod, and a HorizontalPodAutoscaler when it autoscales.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ContainerPort, ExecAction, Lifecycle, LifecycleHandler, SleepAction, TopologySpreadConstraint,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Renderer;
use crate::version::SLEEP_ACTION;

impl Renderer<'_> {
    /// Gives the ingress time to stop routing to a terminating pod. A kubelet older than
    /// 1.30 has no `sleep` action; the image's own `sleep` does the same there (Rails images
    /// are Debian or Alpine based; without one the hook fails and the pod stops at once, as it
    /// would with no hook).
    pub(super) fn pre_stop_sleep(&self) -> Lifecycle {
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
        Lifecycle {
            pre_stop: Some(pre_stop),
            ..Lifecycle::default()
        }
    }

    pub(super) fn deployment(&self, process: &str) -> Deployment {
        let spec = self.spec;
        let (replicas, container, grace) = if process == "web" {
            let mut c = self.container("web", spec.web.command.clone(), &spec.web.resources);
            c.ports = Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(spec.web.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]);
            // Boot may take a while (bootsnap, eager loading): the startup probe waits for the
            // health path. Readiness asks the health path (a slow database takes the pod out of
            // the Service); liveness only asks whether Puma still accepts connections, so a slow
            // dependency never restarts every pod at once.
            // When the health check is itself a TCP check there is nothing cheaper to ask: a
            // second, identical probe would only restart pods that readiness already took out,
            // and a server that dies exits, which restarts its container anyway.
            c.startup_probe = Some(self.probe(5, 60));
            c.readiness_probe = Some(self.probe(10, 3));
            c.liveness_probe =
                (spec.web.health_path != crate::model::TCP_PROBE).then(|| Self::port_probe(20, 6));
            c.lifecycle = Some(self.pre_stop_sleep());
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
        let resources = if process == "web" {
            &spec.web.resources
        } else {
            &spec.workers[process].resources
        };
        self.local_disk(process, resources, &mut pod);
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

    pub(super) fn pdb(&self, process: &str) -> PodDisruptionBudget {
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

    pub(super) fn autoscaler(&self, process: &str) -> Option<HorizontalPodAutoscaler> {
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
}

#[cfg(test)]
mod tests {
    use crate::render::test_support::{object, spec};
    use crate::render::{RenderInputs, render};
    use crate::version::ServerVersion;

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
