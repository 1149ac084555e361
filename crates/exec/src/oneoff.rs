//! One-off pods: a clone of the web pod template (same image, env and secrets) that serves no
//! traffic, for `run`, `console` and `dbconsole`. The pod waits; the command is exec'd into it,
//! so stdin, the terminal and the exit code behave as with `exec`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::api_err;

use crate::ExecError;

/// The longest a forgotten one-off pod lives.
const MAX_LIFETIME_SECS: i64 = 12 * 3600;

/// A running one-off pod; [`OneOff::remove`] deletes it.
pub struct OneOff {
    api: Api<Pod>,
    pub name: String,
    pub container: String,
}

/// Creates the pod from the live web Deployment's template; [`OneOff::running`] waits for it.
pub async fn create(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    suffix: &str,
) -> Result<OneOff, ExecError> {
    let deployment_name = spec.deployment_name("web");
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&deployment_name)
        .await
        .map_err(api_err(format!("read Deployment `{deployment_name}`")))?
        .ok_or_else(|| ExecError::NotDeployed {
            app: spec.name.clone(),
            namespace: ns.into(),
        })?;
    let template = deployment.spec.map(|s| s.template).unwrap_or_default();
    let mut pod_spec = template.spec.unwrap_or_default();
    let container = pod_spec
        .containers
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    for c in &mut pod_spec.containers {
        // It serves no traffic: no probes, no ports; it only waits for commands.
        c.command = Some(vec!["sleep".into(), MAX_LIFETIME_SECS.to_string()]);
        c.args = None;
        c.readiness_probe = None;
        c.liveness_probe = None;
        c.startup_probe = None;
        c.lifecycle = None;
        c.ports = None;
    }
    pod_spec.restart_policy = Some("Never".into());
    pod_spec.active_deadline_seconds = Some(MAX_LIFETIME_SECS);
    pod_spec.topology_spread_constraints = None;
    let name = format!("{}-run-{suffix}", spec.name);
    let mut pod_labels: BTreeMap<String, String> =
        template.metadata.and_then(|m| m.labels).unwrap_or_default();
    pod_labels.insert(labels::COMPONENT.into(), "run".into());
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(pod_labels),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        ..Pod::default()
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &pod)
        .await
        .map_err(api_err(format!("create pod `{name}` in namespace `{ns}`")))?;
    Ok(OneOff {
        api,
        name,
        container,
    })
}

impl OneOff {
    /// Waits until the pod runs; removes it when it cannot. A watch error is neither: the
    /// watch is resumed, and the last error is named if the pod is not running by `timeout`.
    pub async fn running(&self, timeout: Duration) -> Result<(), ExecError> {
        let events = watcher(
            self.api.clone(),
            watcher::Config::default().fields(&format!("metadata.name={}", self.name)),
        )
        .default_backoff()
        .applied_objects();
        futures::pin_mut!(events);
        let mut last_error = None;
        let waited = tokio::time::timeout(timeout, async {
            while let Some(event) = events.next().await {
                let pod = match event {
                    Ok(pod) => pod,
                    Err(e) => {
                        last_error = Some(e.to_string());
                        continue;
                    }
                };
                if let Some(problem) = crate::problem(&pod) {
                    return Err(problem);
                }
                if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                    return Ok(());
                }
            }
            Err("the watch on the pod ended".into())
        })
        .await;
        let problem = match waited {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(problem)) => problem,
            Err(_) => match &last_error {
                Some(e) => {
                    format!("it did not start within {timeout:?} (the watch on it failed: {e})")
                }
                None => format!("it did not start within {timeout:?}"),
            },
        };
        self.remove().await;
        Err(ExecError::PodFailed {
            pod: self.name.clone(),
            problem,
        })
    }

    /// Deletes the pod at once; errors are ignored, the pod's deadline removes it anyway.
    pub async fn remove(&self) {
        let _ = self
            .api
            .delete(
                &self.name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await;
    }
}
