//! Which pod a command runs in: a Ready pod of the process, from the newest revision. Nobody
//! copies a pod name.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::{CHECKSUM_ANNOTATION, labels};
use kubectl_rails_kube::api_err;

use crate::ExecError;

/// One pod of a process, as a picker or an error shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodChoice {
    pub name: String,
    pub ready: bool,
    pub state: String,
    /// Runs the Deployment's current template.
    pub newest: bool,
    pub created: i64,
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn state(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let status = pod.status.clone().unwrap_or_default();
    status
        .container_statuses
        .unwrap_or_default()
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .or(status.phase)
        .unwrap_or_else(|| "Pending".into())
}

/// The pods of `process`, Ready and newest first.
pub async fn pods_of(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    process: &str,
) -> Result<Vec<PodChoice>, ExecError> {
    if spec.replicas_of(process).is_none() {
        return Err(ExecError::UnknownProcess {
            process: process.into(),
            known: spec.process_names().join(", "),
        });
    }
    let deployment = spec.deployment_name(process);
    let template_checksum = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&deployment)
        .await
        .map_err(api_err(format!("read Deployment `{deployment}`")))?
        .and_then(|d| {
            d.spec?
                .template
                .metadata?
                .annotations?
                .get(CHECKSUM_ANNOTATION)
                .cloned()
        });
    let selector = format!(
        "{}={},{}={process}",
        labels::INSTANCE,
        spec.name,
        labels::COMPONENT
    );
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_err(format!(
            "list the pods of `{process}` in namespace `{ns}`"
        )))?;
    let mut out: Vec<PodChoice> = pods
        .items
        .iter()
        .map(|p| PodChoice {
            name: p.metadata.name.clone().unwrap_or_default(),
            ready: is_ready(p),
            state: state(p),
            newest: p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CHECKSUM_ANNOTATION))
                == template_checksum.as_ref(),
            created: p
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second()),
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse((p.ready, p.newest, p.created)));
    Ok(out)
}

/// The pod to run in: the first Ready one, or an error that says what the pods are doing.
pub async fn pick(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    process: &str,
) -> Result<String, ExecError> {
    let pods = pods_of(client, ns, spec, process).await?;
    match pods.iter().find(|p| p.ready) {
        Some(p) => Ok(p.name.clone()),
        None => Err(ExecError::NoReadyPod {
            process: process.into(),
            namespace: ns.into(),
            pods: if pods.is_empty() {
                "it has no pods".into()
            } else {
                pods.iter()
                    .map(|p| format!("{} is {}", p.name, p.state))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        }),
    }
}
