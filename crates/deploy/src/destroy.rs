//! `destroy`: what of an app a namespace holds, and deleting it.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kube::core::ApiResource;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::{KubeError, api_err, api_resource};

/// The kinds the plugin renders for an app, in the order they are deleted.
const KINDS: &[&str] = &[
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Service",
    "Deployment",
    "Job",
    "ConfigMap",
];

/// What of an app a namespace holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Objects the plugin made for the app, as `(kind, name)`.
    pub objects: Vec<(String, String)>,
    /// Its volume claims: their data cannot be made again from the spec.
    pub claims: Vec<String>,
    /// Its app Secret and pull secret, those that exist: neither can be made from the spec.
    pub secrets: Vec<String>,
}

/// Lists what of the app the namespace holds.
pub async fn inventory(client: &Client, ns: &str, spec: &AppSpec) -> Result<Inventory, KubeError> {
    let params = ListParams::default().labels(&labels::made_for(&spec.name));
    let mut out = Inventory::default();
    for kind in KINDS {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &api_resource(kind)?);
        for o in api
            .list_metadata(&params)
            .await
            .map_err(api_err(format!("list {kind}s of `{}`", spec.name)))?
            .items
        {
            out.objects
                .push((kind.to_string(), o.metadata.name.unwrap_or_default()));
        }
    }
    out.claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .list_metadata(&params)
        .await
        .map_err(api_err("list volume claims"))?
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut names = vec![spec.secret_name()];
    names.extend(spec.registry.as_ref().map(|r| r.pull_secret.clone()));
    for name in names {
        if secrets
            .get_opt(&name)
            .await
            .map_err(api_err(format!("read Secret `{name}`")))?
            .is_some()
        {
            out.secrets.push(name);
        }
    }
    Ok(out)
}

/// Deletes `doomed` (`(kind, name)`, kinds of [`Inventory`]) in order, what is gone already
/// included, then the app's deploy lease.
pub async fn delete(
    client: &Client,
    ns: &str,
    app: &str,
    doomed: &[(String, String)],
) -> Result<(), KubeError> {
    let delete = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for (kind, name) in doomed {
        let resource = match kind.as_str() {
            "Secret" => ApiResource::erase::<Secret>(&()),
            "PersistentVolumeClaim" => ApiResource::erase::<PersistentVolumeClaim>(&()),
            k => api_resource(k)?,
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        match api.delete(name, &delete).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(api_err(format!(
                    "delete {kind} `{name}` (objects listed before it are deleted, the rest are not)"
                ))(e));
            }
        }
    }
    let _ = Api::<Lease>::namespaced(client.clone(), ns)
        .delete(&format!("{app}-deploy"), &DeleteParams::default())
        .await;
    Ok(())
}
