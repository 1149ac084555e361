//! The app's volume: its PersistentVolumeClaim, and the affinity that keeps the pods of a
//! ReadWriteOnce volume on the node that holds it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinity, PodAffinityTerm, PodSpec, PreferredSchedulingTerm,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{Renderer, VOLUME_LABEL};

/// A claim for `size` of storage with one access mode; `storage_class` `None` takes the
/// cluster's default.
pub(super) fn claim_spec(
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

impl Renderer<'_> {
    pub(super) fn claim_name(&self) -> Option<String> {
        self.spec
            .volume
            .as_ref()
            .map(|v| format!("{}-{}", self.spec.name, v.name))
    }

    pub(super) fn volume_claim(&self) -> Option<PersistentVolumeClaim> {
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

    /// Every pod that mounts a ReadWriteOnce volume requires the node of the others: a volume of
    /// attachable block storage mounts on one node at a time, and a pod elsewhere would wait in
    /// `ContainerCreating` with a Multi-Attach error. The first such pod may go anywhere (the
    /// scheduler lets a pod that matches its own term start alone).
    pub(super) fn volume_affinity(&self) -> Option<Affinity> {
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
    pub(super) fn prefer_volume_node(&self, pod: &mut PodSpec) {
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
}

#[cfg(test)]
mod tests {
    use crate::render::test_support::spec;
    use crate::render::{RenderInputs, render};

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
}
