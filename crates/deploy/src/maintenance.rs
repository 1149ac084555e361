//! Maintenance mode in the cluster: the page's objects, and the app's Ingress (or HTTPRoute)
//! turned to them and back. The ConfigMap `<app>-maintenance` is the switch: while it exists,
//! every deploy renders the page and a route that points at it, so a deploy during maintenance
//! keeps it.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::{
    self, MAINTENANCE, MESSAGE_ANNOTATION, Maintenance, PAGE_KEY, SINCE_ANNOTATION, labels,
};
use kubectl_rails_core::version::ServerVersion;
use kubectl_rails_kube::{Applier, FIELD_MANAGER, KubeError, api_err};
use serde_json::{Value, json};

use crate::{DeployError, Reporter};

/// The maintenance ConfigMap of `app`, read back: `None` when maintenance is off.
pub async fn current(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<Maintenance>, KubeError> {
    let name = spec.deployment_name(MAINTENANCE);
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(&name)
        .await
        .map_err(api_err(format!(
            "read ConfigMap `{name}` in namespace `{ns}`"
        )))?;
    Ok(cm.map(|cm| read(&cm)))
}

/// [`current`] from a listing of the app's ConfigMaps.
pub fn current_in(spec: &AppSpec, items: &[ConfigMap]) -> Option<Maintenance> {
    let name = spec.deployment_name(MAINTENANCE);
    items
        .iter()
        .find(|cm| cm.metadata.name.as_deref() == Some(name.as_str()))
        .map(read)
}

fn read(cm: &ConfigMap) -> Maintenance {
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    Maintenance {
        page: cm
            .data
            .as_ref()
            .and_then(|d| d.get(PAGE_KEY))
            .cloned()
            .unwrap_or_default(),
        since: annotations
            .get(SINCE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        message: annotations.get(MESSAGE_ANNOTATION).cloned(),
    }
}

/// What `maintenance on` or `off` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Switched {
    /// `Ingress`, or `HTTPRoute` for an app behind a Gateway.
    pub kind: &'static str,
    /// The Ingress (or HTTPRoute) turned.
    pub ingress: String,
    /// Its hosts.
    pub hosts: Vec<String>,
    /// Backends it turned (0 when it already pointed where asked).
    pub backends: usize,
}

/// Where the app's web pods run now: the image of the live web Deployment, which the page runs
/// (the spec's tag may name an image never deployed, or one the deploy pinned by digest).
pub async fn live_web_image(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<String>, KubeError> {
    let name = spec.deployment_name("web");
    let live = Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&name)
        .await
        .map_err(api_err(format!(
            "read Deployment `{name}` in namespace `{ns}`"
        )))?;
    Ok(live
        .and_then(|d| d.spec)
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().find(|c| c.name == "web"))
        .and_then(|c| c.image))
}

/// The kind of object that sends the app's hosts to it: an HTTPRoute behind a Gateway, an
/// Ingress otherwise.
pub fn front_kind(spec: &AppSpec) -> &'static str {
    match spec.gateway() {
        Some(_) => "HTTPRoute",
        None => "Ingress",
    }
}

/// The app's live Ingress (or HTTPRoute), if it has one.
pub async fn live_front(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<DynamicObject>, KubeError> {
    let kind = front_kind(spec);
    let name = spec.name.clone();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &kubectl_rails_kube::api_resource(kind)?);
    match api.get_opt(&name).await {
        Ok(o) => Ok(o),
        Err(e) if kubectl_rails_kube::is_missing_api(kind, &e) => Ok(None),
        Err(e) => Err(api_err(format!("read {kind} `{name}` in namespace `{ns}`"))(e)),
    }
}

/// Turns maintenance on: the page's objects (the ConfigMap first, so a deploy that starts now
/// keeps the page), its pod Ready, then the Ingress's backends from web to the page. `spec`
/// carries the image the page runs.
pub async fn on(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    m: &Maintenance,
    server_version: Option<ServerVersion>,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<Switched, DeployError> {
    let applier = Applier::new(client.clone(), ns, false);
    let objects = render::render_maintenance(spec, m, server_version);
    reporter.step(&format!(
        "applying the maintenance page (`{}`)",
        spec.deployment_name(MAINTENANCE)
    ));
    applier
        .apply_all(objects.iter().map(|o| &o.value))
        .await
        .map_err(|e| half_on(spec, e))?;
    wait_ready(client, ns, spec, timeout, reporter).await?;
    reporter.step("sending the app's hosts to the maintenance page");
    turn(client, ns, spec, "web", MAINTENANCE)
        .await
        .map_err(|e| half_on(spec, e))
}

fn half_on(spec: &AppSpec, e: KubeError) -> DeployError {
    DeployError::Refused {
        message: format!(
            "{e}; maintenance of `{}` is half on: the page's objects may exist, the app's hosts still go to web",
            spec.name
        ),
        hint: Some(
            "run `kubectl rails maintenance on` again to finish, or `kubectl rails maintenance off` to undo"
                .into(),
        ),
    }
}

/// Turns maintenance off: the Ingress back to web, then the page's objects deleted (the
/// ConfigMap last, so a deploy that starts meanwhile still renders what is live).
pub async fn off(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    reporter: &dyn Reporter,
) -> Result<Option<Switched>, DeployError> {
    let switched = match live_front(client, ns, spec).await? {
        Some(_) => {
            reporter.step("sending the app's hosts back to web");
            Some(turn(client, ns, spec, MAINTENANCE, "web").await?)
        }
        None => None,
    };
    let name = spec.deployment_name(MAINTENANCE);
    reporter.step(&format!("deleting the maintenance page (`{name}`)"));
    for kind in ["Deployment", "Service", "NetworkPolicy", "ConfigMap"] {
        let ar = kubectl_rails_kube::api_resource(kind)?;
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(
                    api_err(format!("delete {kind} `{name}` in namespace `{ns}`"))(e).into(),
                );
            }
        }
    }
    Ok(switched)
}

/// Points every backend of the app's Ingress (or HTTPRoute) that names `<app>-<from>` at
/// `<app>-<to>`. The merge patch carries the resourceVersion it was made from: a concurrent
/// change fails it rather than being overwritten.
async fn turn(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    from: &str,
    to: &str,
) -> Result<Switched, KubeError> {
    let kind = front_kind(spec);
    let name = spec.name.clone();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &kubectl_rails_kube::api_resource(kind)?);
    let live = api
        .get(&name)
        .await
        .map_err(api_err(format!("read {kind} `{name}` in namespace `{ns}`")))?;
    let value = serde_json::to_value(&live).unwrap_or_default();
    let (from, to) = (spec.deployment_name(from), spec.deployment_name(to));
    let (patch, backends) = match kind {
        "HTTPRoute" => route_backend_patch(&value, &from, &to),
        _ => backend_patch(&value, &from, &to),
    };
    if backends > 0 {
        api.patch(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map_err(api_err(format!(
            "point {kind} `{name}` in namespace `{ns}` at `{to}`"
        )))?;
    }
    Ok(Switched {
        kind,
        ingress: name,
        hosts: hosts(&value),
        backends,
    })
}

/// The hosts of an Ingress's rules, or an HTTPRoute's hostnames.
fn hosts(front: &Value) -> Vec<String> {
    let listed: Vec<&Value> = match front["spec"]["hostnames"].as_array() {
        Some(names) => names.iter().collect(),
        None => front["spec"]["rules"]
            .as_array()
            .map(|rules| rules.iter().map(|r| &r["host"]).collect())
            .unwrap_or_default(),
    };
    listed
        .into_iter()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect()
}

/// [`backend_patch`] for an HTTPRoute: every Service `backendRef` of its rules named `from`.
fn route_backend_patch(route: &Value, from: &str, to: &str) -> (Value, usize) {
    let mut turned = 0;
    let mut spec = serde_json::Map::new();
    if let Some(rules) = route["spec"]["rules"].as_array() {
        let mut rules = rules.clone();
        for rule in &mut rules {
            for r in rule["backendRefs"].as_array_mut().into_iter().flatten() {
                let service = r["kind"].as_str().unwrap_or("Service") == "Service"
                    && r["group"].as_str().unwrap_or_default().is_empty();
                if service && r["name"] == from {
                    r["name"] = json!(to);
                    turned += 1;
                }
            }
        }
        if turned > 0 {
            spec.insert("rules".into(), Value::Array(rules));
        }
    }
    let patch = json!({
        "metadata": {"resourceVersion": route["metadata"]["resourceVersion"]},
        "spec": spec,
    });
    (patch, turned)
}

/// A merge patch that turns every service backend named `from` (the default backend
/// included) to `to`, and how many it turns. Lists are replaced whole by a merge patch, so the
/// rules go in as they are, with the names changed.
fn backend_patch(ingress: &Value, from: &str, to: &str) -> (Value, usize) {
    let mut turned = 0;
    let mut spec = serde_json::Map::new();
    let default = &ingress["spec"]["defaultBackend"];
    if default["service"]["name"] == from {
        let mut d = default.clone();
        d["service"]["name"] = json!(to);
        spec.insert("defaultBackend".into(), d);
        turned += 1;
    }
    if let Some(rules) = ingress["spec"]["rules"].as_array() {
        let mut rules = rules.clone();
        let mut any = false;
        for rule in &mut rules {
            if let Some(paths) = rule["http"]["paths"].as_array_mut() {
                for p in paths {
                    if p["backend"]["service"]["name"] == from {
                        p["backend"]["service"]["name"] = json!(to);
                        turned += 1;
                        any = true;
                    }
                }
            }
        }
        if any {
            spec.insert("rules".into(), Value::Array(rules));
        }
    }
    let patch = json!({
        "metadata": {"resourceVersion": ingress["metadata"]["resourceVersion"]},
        "spec": spec,
    });
    (patch, turned)
}

/// Waits until the page's pod is Ready, saying why when it cannot be.
async fn wait_ready(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), DeployError> {
    let name = spec.deployment_name(MAINTENANCE);
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let selector = format!(
        "{}={},{}={MAINTENANCE}",
        labels::INSTANCE,
        spec.name,
        labels::COMPONENT
    );
    let started = tokio::time::Instant::now();
    loop {
        let d = deployments.get(&name).await.map_err(api_err(format!(
            "read Deployment `{name}` in namespace `{ns}`"
        )))?;
        if crate::progress::progress(MAINTENANCE, &d).done {
            return Ok(());
        }
        let waiting = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(api_err(format!("list the pods of `{name}`")))?
            .items
            .iter()
            .find_map(waiting_reason);
        reporter.progress(&format!(
            "maintenance page: {}",
            waiting.as_deref().unwrap_or("starting")
        ));
        if started.elapsed() >= timeout {
            return Err(DeployError::Timeout {
                waited: timeout,
                progress: format!(
                    "the maintenance page is not Ready: {}; the app's hosts still go to web",
                    waiting.as_deref().unwrap_or("its pod is starting")
                ),
                revision: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.clone()?;
            Some(match &w.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason,
            })
        })
}

/// The annotations a record of maintenance carries, for the release history.
pub fn describe(m: &Maintenance) -> String {
    match &m.message {
        Some(message) => format!("maintenance since {} ({message})", m.since),
        None => format!("maintenance since {}", m.since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_turns_every_backend_of_web_and_nothing_else() {
        let ingress = json!({
            "metadata": {"resourceVersion": "42"},
            "spec": {
                "defaultBackend": {"service": {"name": "shop-web", "port": {"name": "http"}}},
                "rules": [
                    {"host": "a.example.com", "http": {"paths": [
                        {"path": "/", "backend": {"service": {"name": "shop-web"}}},
                        {"path": "/other", "backend": {"service": {"name": "someone-else"}}}
                    ]}},
                    {"host": "b.example.com", "http": {"paths": [
                        {"path": "/", "backend": {"service": {"name": "shop-web"}}}
                    ]}}
                ]
            }
        });
        let (patch, turned) = backend_patch(&ingress, "shop-web", "shop-maintenance");
        assert_eq!(turned, 3);
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(
            patch["spec"]["defaultBackend"],
            json!({"service": {"name": "shop-maintenance", "port": {"name": "http"}}})
        );
        let names: Vec<_> = patch["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["http"]["paths"].as_array().unwrap().iter())
            .map(|p| p["backend"]["service"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["shop-maintenance", "someone-else", "shop-maintenance"]
        );
        let (_, none) = backend_patch(&ingress, "shop-maintenance", "shop-web");
        assert_eq!(none, 0);
    }

    #[test]
    fn the_route_patch_turns_web_s_service_refs_and_keeps_the_asset_rule() {
        let route = json!({
            "metadata": {"resourceVersion": "7"},
            "spec": {
                "hostnames": ["a.example.com"],
                "rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/assets"}}],
                     "backendRefs": [{"kind": "Service", "name": "shop-assets", "port": 80}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                     "backendRefs": [{"name": "shop-web", "port": 80},
                                     {"group": "example.com", "kind": "Backend", "name": "shop-web"}]}
                ]
            }
        });
        let (patch, turned) = route_backend_patch(&route, "shop-web", "shop-maintenance");
        assert_eq!(turned, 1);
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let names: Vec<_> = patch["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["backendRefs"].as_array().unwrap().iter())
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["shop-assets", "shop-maintenance", "shop-web"]);
        assert_eq!(hosts(&route), ["a.example.com"]);
        let (back, none) = route_backend_patch(&route, "shop-maintenance", "shop-web");
        assert_eq!((none, back["spec"].as_object().unwrap().len()), (0, 0));
    }
}
