//! The node that holds an app's ReadWriteOnce volume: where the pods that mount it run now.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::VOLUME_LABEL;
use kubectl_rails_kube::{KubeError, api_err};

/// The node of the app's live pods that mount its ReadWriteOnce volume, if any runs. `None` for
/// an app without such a volume.
pub async fn holder_node(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<String>, KubeError> {
    let Some(volume) = spec.single_node_volume() else {
        return Ok(None);
    };
    let claim = format!("{}-{}", spec.name, volume.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("{VOLUME_LABEL}={claim}")))
        .await
        .map_err(api_err(format!(
            "list the pods that mount `{claim}` in namespace `{ns}`"
        )))?;
    Ok(node_of_live_pods(&list.items))
}

/// The node most of the live (scheduled, not ended, not leaving) pods run on.
fn node_of_live_pods(pods: &[Pod]) -> Option<String> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let ended = matches!(phase, Some("Succeeded" | "Failed"));
        if ended || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *counts.entry(node).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(node, _)| node.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: Option<&str>, phase: &str, leaving: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "p",
                "deletionTimestamp": leaving.then_some("2026-11-27T10:00:00Z"),
            },
            "spec": {"containers": [], "nodeName": node},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn only_live_scheduled_pods_hold_the_volume() {
        assert_eq!(node_of_live_pods(&[]), None);
        let pods = [
            pod(Some("a"), "Succeeded", false),
            pod(Some("b"), "Running", true),
            pod(None, "Pending", false),
        ];
        assert_eq!(node_of_live_pods(&pods), None);
        let pods = [
            pod(Some("a"), "Succeeded", false),
            pod(Some("c"), "Running", false),
        ];
        assert_eq!(node_of_live_pods(&pods).as_deref(), Some("c"));
    }
}
