//! `destroy`: what of an app a namespace holds, and deleting it. The caller holds the app's
//! deploy lease meanwhile, so that no deploy recreates what is being deleted.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kube::core::ApiResource;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::{KubeError, api_err, api_resource};

/// The kinds the plugin renders for an app, in the order they are deleted: what starts pods
/// (CronJobs, Deployments, accessory StatefulSets) before the ConfigMap their pods read.
const KINDS: &[&str] = &[
    "Ingress",
    "HTTPRoute",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "CronJob",
    "Service",
    "Deployment",
    "StatefulSet",
    "Job",
    "ConfigMap",
    // Last: pods stay isolated until none is left.
    "NetworkPolicy",
];

/// The name of the claim template of an accessory's StatefulSet (`render`): its claims are
/// `data-<app>-<accessory>-<ordinal>`.
const ACCESSORY_CLAIM_TEMPLATE: &str = "data";

/// What of an app a namespace holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Objects the plugin made for the app, as `(kind, name)`.
    pub objects: Vec<(String, String)>,
    /// Its volume claims, the app's own and those its accessories' StatefulSets made: their
    /// data cannot be made again from the spec.
    pub claims: Vec<String>,
    /// Its app Secret, pull secret and accessory password Secrets, those that exist: none can be
    /// made again from the spec (a new accessory password would not open the kept data).
    pub secrets: Vec<String>,
}

/// Lists what of the app the namespace holds.
pub async fn inventory(client: &Client, ns: &str, spec: &AppSpec) -> Result<Inventory, KubeError> {
    let params = ListParams::default().labels(&labels::made_for(&spec.name));
    let mut out = Inventory::default();
    for kind in KINDS {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &api_resource(kind)?);
        let listed = match api.list_metadata(&params).await {
            Ok(list) => list.items,
            Err(e) if kubectl_rails_kube::is_missing_api(kind, &e) => Vec::new(),
            // An app that routes with an Ingress may not be allowed to list HTTPRoutes.
            Err(kube::Error::Api(s))
                if s.code == 403
                    && kubectl_rails_kube::is_optional_api(kind)
                    && spec.gateway().is_none() =>
            {
                Vec::new()
            }
            Err(e) => return Err(api_err(format!("list {kind}s of `{}`", spec.name))(e)),
        };
        for o in listed {
            out.objects
                .push((kind.to_string(), o.metadata.name.unwrap_or_default()));
        }
    }
    // A StatefulSet labels the claims it makes with its selector, which has no `managed-by`.
    let app = &spec.name;
    let claim_params = ListParams::default().labels(&format!(
        "{}={app},{}={app}",
        labels::INSTANCE,
        labels::NAME
    ));
    let accessory_claim = format!("{ACCESSORY_CLAIM_TEMPLATE}-{app}-");
    out.claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .list_metadata(&claim_params)
        .await
        .map_err(api_err("list volume claims"))?
        .items
        .into_iter()
        .filter(|o| {
            let label = |key: &str| o.metadata.labels.as_ref().and_then(|l| l.get(key));
            let name = o.metadata.name.as_deref().unwrap_or_default();
            label(labels::MANAGED_BY).is_some_and(|m| m == labels::MANAGER)
                || (label(labels::COMPONENT).is_some_and(|c| c.starts_with("accessory-"))
                    && name.starts_with(&accessory_claim))
        })
        .filter_map(|o| o.metadata.name)
        .collect();
    // Each accessory's password Secret is named as its StatefulSet: those of the spec, those
    // still running from an earlier spec, and those whose claims outlived their StatefulSet.
    // Read by name: the deployer may not list Secrets.
    let mut names = spec.own_secret_names();
    names.extend(
        out.objects
            .iter()
            .filter(|(kind, _)| kind == "StatefulSet")
            .map(|(_, name)| name.clone()),
    );
    names.extend(out.claims.iter().filter_map(|claim| {
        let rest = claim.strip_prefix(&format!("{ACCESSORY_CLAIM_TEMPLATE}-"))?;
        let (set, ordinal) = rest.rsplit_once('-')?;
        ordinal.parse::<u32>().is_ok().then(|| set.to_string())
    }));
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
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
/// included.
pub async fn delete(
    client: &Client,
    ns: &str,
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
    Ok(())
}
