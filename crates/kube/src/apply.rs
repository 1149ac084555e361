//! Server-side apply of rendered objects, and pruning of the ones an app no longer renders.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::core::ApiResource;
use serde_json::Value;

use crate::{FIELD_MANAGER, KubeError, api_err};

/// The API resource of a kind the plugin manages.
pub fn api_resource(kind: &str) -> Result<ApiResource, KubeError> {
    Ok(match kind {
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "PersistentVolumeClaim" => ApiResource::erase::<PersistentVolumeClaim>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "CronJob" => ApiResource::erase::<CronJob>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        "Ingress" => ApiResource::erase::<Ingress>(&()),
        "NetworkPolicy" => ApiResource::erase::<NetworkPolicy>(&()),
        "HorizontalPodAutoscaler" => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        "HTTPRoute" => gateway_api_resource("HTTPRoute", "httproutes"),
        other => {
            return Err(KubeError::UnsupportedKind {
                kind: other.to_string(),
            });
        }
    })
}

/// A kind of the Gateway API (`gateway.networking.k8s.io/v1`): a CRD, which k8s-openapi has
/// no type for.
pub fn gateway_api_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Kinds that pruning may delete. Volume claims hold data and Jobs hold migration history, so
/// they are never pruned automatically.
pub const PRUNABLE_KINDS: &[&str] = &[
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "Ingress",
    // A CRD ([`is_optional_api`]): a cluster without the Gateway API has none.
    "HTTPRoute",
    "NetworkPolicy",
    "ConfigMap",
    "HorizontalPodAutoscaler",
    "CronJob",
    // An accessory's volume claims outlive its StatefulSet: its data stays.
    "StatefulSet",
];

/// Whether a kind's API is one the cluster may not serve at all (a CRD): listing it there
/// answers 404, which means the app has none of it.
pub fn is_optional_api(kind: &str) -> bool {
    kind == "HTTPRoute"
}

/// A 404 for a kind whose API the cluster does not serve (rather than for a missing object or
/// namespace, which name themselves in the message).
pub fn is_missing_api(kind: &str, e: &kube::Error) -> bool {
    // An unknown group answers a bare `404 page not found`, an unknown resource of a known
    // group a Status saying it.
    is_optional_api(kind)
        && matches!(e, kube::Error::Api(s) if s.code == 404
            && (s.message.contains("could not find the requested resource")
                || s.message.contains("page not found")))
}

/// [`api_err`] for a request about a `kind`: where the cluster does not serve its API, a
/// [`KubeError::MissingApi`] that says what to install.
pub fn kind_err(kind: &str, action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let (kind, action) = (kind.to_string(), action.into());
    move |e| {
        if is_missing_api(&kind, &e) {
            KubeError::MissingApi { action, kind }
        } else {
            api_err(action)(e)
        }
    }
}

/// The label selector of every object the plugin created for `app` (release records excluded).
pub fn prune_selector(app: &str) -> String {
    format!(
        "app.kubernetes.io/instance={app},app.kubernetes.io/managed-by=kubectl-rails,app.kubernetes.io/component!=release"
    )
}

/// An object without the fields the server owns (managed fields, versions, status), so that
/// only the app's intent is compared.
pub fn comparable<T: serde::Serialize>(object: &T) -> Value {
    let mut v = serde_json::to_value(object).unwrap_or_default();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(key);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("deployment.kubernetes.io/revision");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// `unchanged` or `configured`: a dry run never bumps the resourceVersion, so content is
/// compared instead (without the kind and version, which a listing's items lack).
fn changed_or_not(before: &DynamicObject, after: &DynamicObject) -> &'static str {
    let content = |o: &DynamicObject| {
        let mut v = comparable(o);
        if let Some(o) = v.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
        }
        v
    };
    if content(before) == content(after) {
        "unchanged"
    } else {
        "configured"
    }
}

fn kind_and_name(value: &Value) -> (String, String) {
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (kind, name)
}

/// The app's objects by kind, as [`Applier::owned`] lists them.
pub type Owned = BTreeMap<&'static str, Vec<DynamicObject>>;

/// What one apply did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    pub kind: String,
    pub name: String,
    /// `created`, `configured` or `unchanged`, as kubectl says it.
    pub action: &'static str,
    pub object: DynamicObject,
}

/// Applies objects into one namespace.
pub struct Applier {
    client: kube::Client,
    namespace: String,
    dry_run: bool,
}

impl Applier {
    pub fn new(client: kube::Client, namespace: &str, dry_run: bool) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            dry_run,
        }
    }

    fn api(&self, kind: &str) -> Result<Api<DynamicObject>, KubeError> {
        let ar = api_resource(kind)?;
        Ok(Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &ar,
        ))
    }

    /// Server-side apply with our field manager; conflicts are forced, since the spec is the
    /// source of truth for the fields it renders.
    pub async fn apply(&self, value: &Value) -> Result<ApplyOutcome, KubeError> {
        let (kind, name) = kind_and_name(value);
        let read = self.read(&kind, &name);
        // A dry run changes nothing, so the read and the apply may overlap; a real apply must
        // read the object as it was first.
        let (before, object) = if self.dry_run {
            tokio::try_join!(read, self.patch(&kind, &name, value))?
        } else {
            let before = read.await?;
            (before, self.patch(&kind, &name, value).await?)
        };
        let action = match before {
            None => "created",
            Some(b) => changed_or_not(&b, &object),
        };
        Ok(ApplyOutcome {
            kind,
            name,
            action,
            object,
        })
    }

    /// Server-side apply of one object, without reading it first (so no action is known).
    pub async fn write(&self, value: &Value) -> Result<DynamicObject, KubeError> {
        let (kind, name) = kind_and_name(value);
        self.patch(&kind, &name, value).await
    }

    async fn patch(
        &self,
        kind: &str,
        name: &str,
        value: &Value,
    ) -> Result<DynamicObject, KubeError> {
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = self.dry_run;
        let mut body = value.clone();
        body["metadata"]["namespace"] = Value::String(self.namespace.clone());
        self.api(kind)?
            .patch(name, &params, &Patch::Apply(&body))
            .await
            .map_err(kind_err(
                kind,
                format!("apply {kind} `{name}` in namespace `{}`", self.namespace),
            ))
    }

    /// Applies objects that a dry run of the same apply already planned, all at once: nothing is
    /// read first, and what the plan found unchanged is not sent again. An object the plan does
    /// not hold is applied as [`Applier::apply`] does.
    pub async fn apply_planned<'a>(
        &self,
        values: impl IntoIterator<Item = &'a Value>,
        plan: &[ApplyOutcome],
    ) -> Result<Vec<ApplyOutcome>, KubeError> {
        futures::future::try_join_all(values.into_iter().map(|value| async move {
            let (kind, name) = kind_and_name(value);
            match plan.iter().find(|p| p.kind == kind && p.name == name) {
                Some(planned) if planned.action == "unchanged" => Ok(planned.clone()),
                Some(planned) => Ok(ApplyOutcome {
                    object: self.patch(&kind, &name, value).await?,
                    kind,
                    name,
                    action: planned.action,
                }),
                None => self.apply(value).await,
            }
        }))
        .await
    }

    /// Lists the app's objects of every prunable kind, whole: kind -> objects. The listing is
    /// both what pruning compares with the release and the "before" of a planned dry run. An
    /// optional API's kind lists as empty where the cluster does not serve it, or where the
    /// user may not list it and `rendered` (the kinds the release renders) lacks it.
    pub async fn owned(&self, app: &str, rendered: &[&'static str]) -> Result<Owned, KubeError> {
        self.owned_but(app, rendered, &Owned::new()).await
    }

    /// [`Applier::owned`] without the kinds `known` holds.
    async fn owned_but(
        &self,
        app: &str,
        rendered: &[&'static str],
        known: &Owned,
    ) -> Result<Owned, KubeError> {
        let params = ListParams::default().labels(&prune_selector(app));
        let kinds = PRUNABLE_KINDS.iter().filter(|k| !known.contains_key(*k));
        // One list per kind, all at once: a deploy waits on the slowest, not on the sum.
        let lists = kinds.map(|kind| {
            let params = params.clone();
            async move {
                let items = match self.api(kind)?.list(&params).await {
                    Ok(list) => list.items,
                    Err(e) if is_missing_api(kind, &e) => Vec::new(),
                    Err(kube::Error::Api(s))
                        if s.code == 403 && is_optional_api(kind) && !rendered.contains(kind) =>
                    {
                        Vec::new()
                    }
                    Err(e) => {
                        return Err(api_err(format!(
                            "list {kind}s of `{app}` in namespace `{}`",
                            self.namespace
                        ))(e));
                    }
                };
                Ok::<_, KubeError>((*kind, items))
            }
        });
        Ok(futures::future::try_join_all(lists)
            .await?
            .into_iter()
            .collect())
    }

    /// The app's objects that `keep` does not name, from a listing by [`Applier::owned`].
    pub fn unkept(owned: &Owned, keep: &[(String, String)]) -> Vec<(String, String)> {
        owned
            .iter()
            .flat_map(|(kind, objects)| {
                objects
                    .iter()
                    .filter_map(|o| o.metadata.name.clone())
                    .map(move |n| (kind.to_string(), n))
            })
            .filter(|(kind, name)| !keep.iter().any(|(k, n)| k == kind && n == name))
            .collect()
    }

    /// A dry run of every object at once, beside the listing of the app's objects
    /// ([`Applier::owned`], returned too, with the caller's `known` listings), which gives the "before" of each instead of a read per
    /// object: an object the server would create comes back without a resourceVersion; one that
    /// exists is compared with its listed self. Only an existing object the listing lacks (not
    /// the app's labels yet) is read. A Job is named by the hash of its content, so an existing
    /// one is unchanged.
    pub async fn dry_run_with_owned<'a>(
        &self,
        values: impl IntoIterator<Item = &'a Value>,
        app: &str,
        rendered: &[&'static str],
        known: Owned,
    ) -> Result<(Vec<ApplyOutcome>, Owned), KubeError> {
        let patches = futures::future::try_join_all(values.into_iter().map(|value| async move {
            let (kind, name) = kind_and_name(value);
            let object = self.patch(&kind, &name, value).await?;
            Ok::<_, KubeError>((kind, name, object))
        }));
        // What the caller listed already (`known`, by kind) is not listed again.
        let (patched, mut owned) =
            tokio::try_join!(patches, self.owned_but(app, rendered, &known))?;
        owned.extend(known);
        let owned_ref = &owned;
        let outcomes = futures::future::try_join_all(patched.into_iter().map(
            |(kind, name, object)| async move {
                let listed = owned_ref.get(kind.as_str()).and_then(|objects| {
                    objects
                        .iter()
                        .find(|o| o.metadata.name.as_deref() == Some(name.as_str()))
                });
                let exists = object
                    .metadata
                    .resource_version
                    .as_deref()
                    .is_some_and(|v| !v.is_empty());
                let action = if !exists {
                    "created"
                } else if let Some(before) = listed {
                    changed_or_not(before, &object)
                } else if kind == "Job" {
                    "unchanged"
                } else {
                    match self.read(&kind, &name).await? {
                        Some(before) => changed_or_not(&before, &object),
                        None => "created",
                    }
                };
                Ok::<_, KubeError>(ApplyOutcome {
                    kind,
                    name,
                    action,
                    object,
                })
            },
        ))
        .await?;
        Ok((outcomes, owned))
    }

    async fn read(&self, kind: &str, name: &str) -> Result<Option<DynamicObject>, KubeError> {
        self.api(kind)?.get_opt(name).await.map_err(api_err(format!(
            "read {kind} `{name}` in namespace `{}`",
            self.namespace
        )))
    }

    /// Deletes these objects (each `(kind, name)`), all at once.
    pub async fn delete_all(&self, doomed: &[(String, String)]) -> Result<(), KubeError> {
        let mut params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        params.dry_run = self.dry_run;
        let deletes = doomed.iter().map(|(kind, name)| {
            let params = params.clone();
            async move {
                self.api(kind)?
                    .delete(name, &params)
                    .await
                    .map_err(api_err(format!(
                        "prune {kind} `{name}` in namespace `{}`",
                        self.namespace
                    )))?;
                Ok::<_, KubeError>(())
            }
        });
        futures::future::try_join_all(deletes).await?;
        Ok(())
    }

    /// Applies every object at once; the results keep the input order.
    pub async fn apply_all<'a>(
        &self,
        values: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Vec<ApplyOutcome>, KubeError> {
        futures::future::try_join_all(values.into_iter().map(|v| self.apply(v))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparable_keeps_content_and_drops_server_fields() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "5", "managedFields": [{"manager": "x", "time": "2026-01-01T00:00:00Z"}],
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "data": {"K": "v"}
        }))
        .unwrap();
        let c = comparable(&obj);
        assert_eq!(
            c,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"K": "v"}})
        );
    }
}
