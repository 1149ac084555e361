//! Rollout progress per process, from Deployment status alone.

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

/// Where one process's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessProgress {
    pub process: String,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    /// Pods of older revisions still running.
    pub old: i32,
    pub done: bool,
}

/// Reads a Deployment's status. A rollout is done only once the controller has seen the
/// current generation: otherwise the previous rollout's status would look complete.
pub fn progress(process: &str, d: &Deployment) -> ProcessProgress {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    ProcessProgress {
        process: process.to_string(),
        desired,
        updated,
        ready,
        old: (total - updated).max(0),
        done: observed && updated == desired && total == desired && available == desired,
    }
}

/// `web 2/3 ready, jobs 1/1 ready`.
pub fn summary(all: &[ProcessProgress]) -> String {
    all.iter()
        .map(|p| {
            let mut s = format!(
                "{} {}/{} ready",
                p.process,
                p.ready.min(p.desired),
                p.desired
            );
            if p.old > 0 {
                s.push_str(&format!(" ({} old)", p.old));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(
        generation: i64,
        observed: i64,
        replicas: i32,
        updated: i32,
        total: i32,
        available: i32,
    ) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-web", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "readyReplicas": available}
        }))
        .unwrap()
    }

    #[test]
    fn an_unobserved_generation_is_not_done() {
        assert!(!progress("web", &deployment(2, 1, 3, 3, 3, 3)).done);
        assert!(progress("web", &deployment(2, 2, 3, 3, 3, 3)).done);
    }

    #[test]
    fn old_pods_keep_it_going() {
        let p = progress("web", &deployment(2, 2, 3, 3, 4, 3));
        assert!(!p.done);
        assert_eq!(p.old, 1);
        assert_eq!(summary(&[p]), "web 3/3 ready (1 old)");
    }
}
