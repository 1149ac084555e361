//! The app's volume: a StorageClass to provision it (the named one, else the default), or a
//! claim already bound; and the access mode it needs.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;

use crate::{Finding, forbidden};

/// The volume can be provisioned, or is already bound.
pub async fn storage(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Finding> {
    const CHECK: &str = "storage";
    let Some(volume) = &spec.volume else {
        return vec![];
    };
    let need = format!(
        "the app needs {} of {} at `{}`{}",
        volume.size,
        volume.access_mode.as_str(),
        volume.mount_path,
        if spec.single_node_volume().is_some() {
            " (one node at a time: its pods share a node)"
        } else {
            ""
        }
    );
    let claim = format!("{}-{}", spec.name, volume.name);
    if let Ok(Some(pvc)) = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(&claim)
        .await
        && pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    {
        return vec![Finding::ok(
            CHECK,
            format!("claim `{claim}` is bound; {need}"),
        )];
    }
    let classes = match Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(l) => l.items,
        Err(e) if forbidden(&e) => {
            return vec![Finding::not_checked(
                CHECK,
                format!("cannot list StorageClasses (forbidden); {need}"),
            )];
        }
        Err(e) => return vec![Finding::fail(CHECK, e.to_string(), "check the cluster")],
    };
    let name = |c: &StorageClass| c.metadata.name.clone().unwrap_or_default();
    let is_default = |c: &StorageClass| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
            .is_some_and(|v| v == "true")
    };
    let listed = classes.iter().map(name).collect::<Vec<_>>().join(", ");
    let finding = match &volume.storage_class {
        Some(wanted) if classes.iter().any(|c| &name(c) == wanted) => {
            Finding::ok(CHECK, format!("StorageClass `{wanted}` exists; {need}"))
        }
        Some(wanted) => Finding::fail(
            CHECK,
            format!(
                "the spec asks for StorageClass `{wanted}`, the cluster has {}; {need}",
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed
                }
            ),
            "set `volume.storage_class` to one the cluster has, or install a provisioner for it",
        ),
        None => match classes.iter().find(|c| is_default(c)) {
            Some(d) => Finding::ok(CHECK, format!("default StorageClass `{}`; {need}", name(d))),
            None => Finding::fail(
                CHECK,
                format!(
                    "no default StorageClass, so claim `{claim}` stays Pending unless a PersistentVolume matches it; {need}"
                ),
                "name one in `volume.storage_class`, mark one default (`storageclass.kubernetes.io/is-default-class`), or create a matching PersistentVolume",
            ),
        },
    };
    vec![finding]
}
