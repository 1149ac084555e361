//! What `kubectl rails status` shows, read from the cluster: the app's processes, pods, Ingress,
//! autoscalers, current release and recent warnings, as one [`StatusData`] value made in a
//! handful of list calls; and [`changes`], the stream `status -w` redraws on.
//!
//! It only reads, and it never formats: tables, ages and the redraw are the binary's. It never
//! reads a Secret.

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::{GatewayRef, listener_takes};
use kubectl_rails_core::render::labels;
use kubectl_rails_deploy::route::Verdict;
use kubectl_rails_deploy::{progress, release};
use kubectl_rails_kube::{KubeError, api_err};
use serde::Serialize;
use serde_json::Value;

/// Everything `status` shows; `-o json` prints it as is.
#[derive(Debug, Clone, Serialize)]
pub struct StatusData {
    pub app: String,
    pub namespace: String,
    pub revision: Option<u32>,
    pub processes: Vec<ProcessRow>,
    pub pods: Vec<PodRow>,
    pub ingress: Option<IngressRow>,
    /// Set while `maintenance on` sends the hosts to the maintenance page.
    pub maintenance: Option<MaintenanceRow>,
    pub autoscalers: Vec<AutoscalerRow>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceRow {
    pub since: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessRow {
    pub process: String,
    pub ready: i32,
    pub desired: i32,
    pub image: String,
    pub rolled_out: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodRow {
    pub name: String,
    pub process: String,
    pub node: String,
    pub ready: String,
    pub status: String,
    pub restarts: i32,
    /// Seconds since the pod was created.
    pub age_seconds: i64,
    pub ip: Option<String>,
    /// The image of the pod's main container: during a rollout, which release a pod runs.
    pub image: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngressRow {
    /// `Ingress`, or `HTTPRoute` behind a Gateway.
    pub kind: &'static str,
    pub hosts: Vec<String>,
    pub address: Option<String>,
    pub url: Option<String>,
    /// The Gateway an HTTPRoute attaches to (`namespace/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// What the Gateway said of the HTTPRoute: `accepted`, `refused (...)` or `not reported`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutoscalerRow {
    pub process: String,
    pub min: i32,
    pub max: i32,
    pub current: i32,
    pub cpu_target: Option<i32>,
}

/// Reads everything `status` shows, in a handful of list calls.
pub async fn collect(client: &Client, ns: &str, spec: &AppSpec) -> Result<StatusData, KubeError> {
    let selector = format!("{}={}", labels::INSTANCE, spec.name);
    let params = ListParams::default().labels(&selector);
    // Every read at once: the screen waits on the slowest call, not on their sum.
    let deployment_api = Api::<Deployment>::namespaced(client.clone(), ns);
    let pod_api = Api::<Pod>::namespaced(client.clone(), ns);
    let hpa_api = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns);
    let (deployments, pods, ingress, autoscalers, warnings, history, maintenance) = tokio::join!(
        deployment_api.list(&params),
        pod_api.list(&params),
        front(client, ns, spec),
        hpa_api.list(&params),
        recent_warnings(client, ns, &spec.name),
        release::list(client, ns, &spec.name),
        kubectl_rails_deploy::maintenance::current(client, ns, spec),
    );
    let deployments = deployments.map_err(api_err(format!(
        "list the Deployments of `{}` in namespace `{ns}`",
        spec.name
    )))?;
    let mut processes = Vec::new();
    for process in spec.process_names() {
        let name = spec.deployment_name(&process);
        if let Some(d) = deployments
            .items
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name.as_str()))
        {
            let p = progress::progress(&process, d);
            let template = d.spec.as_ref().map(|s| &s.template);
            let image = shown_image(
                template
                    .and_then(|t| t.spec.as_ref())
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.as_deref()),
                template.and_then(|t| t.metadata.as_ref()),
            );
            processes.push(ProcessRow {
                process,
                ready: p.ready,
                desired: p.desired,
                image,
                rolled_out: p.done,
            });
        }
    }
    let now = Timestamp::now();
    let pods = pods.map_err(api_err(format!(
        "list the pods of `{}` in namespace `{ns}`",
        spec.name
    )))?;
    let mut pod_rows: Vec<PodRow> = pods.items.iter().map(|p| pod_row(p, now)).collect();
    pod_rows.sort_by(|a, b| (&a.process, &a.name).cmp(&(&b.process, &b.name)));
    let ingress = ingress?;
    let autoscalers = autoscalers
        .map(|l| l.items.iter().map(autoscaler_row).collect())
        .unwrap_or_default();
    let revision = history
        .ok()
        .and_then(|h| release::current(&h).map(|r| r.revision));
    Ok(StatusData {
        app: spec.name.clone(),
        namespace: ns.to_string(),
        revision,
        processes,
        pods: pod_rows,
        ingress,
        maintenance: maintenance?.map(|m| MaintenanceRow {
            since: m.since,
            message: m.message,
        }),
        autoscalers,
        warnings,
    })
}

/// Fires whenever a pod or Deployment of the app changes (and as each watch starts or
/// restarts), for a screen that redraws itself.
pub fn changes(client: &Client, ns: &str, spec: &AppSpec) -> BoxStream<'static, ()> {
    let selector = format!("{}={}", labels::INSTANCE, spec.name);
    let pods = watcher(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    let deps = watcher(
        Api::<Deployment>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    futures::stream::select(pods.map(|_| ()).boxed(), deps.map(|_| ()).boxed()).boxed()
}

fn pod_row(p: &Pod, now: Timestamp) -> PodRow {
    let status = p.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    let ready = containers.iter().filter(|c| c.ready).count();
    let waiting = containers
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let phase = if p.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        waiting.unwrap_or_else(|| status.phase.clone().unwrap_or_else(|| "Pending".into()))
    };
    PodRow {
        name: p.metadata.name.clone().unwrap_or_default(),
        process: labels::component_of(&p.metadata),
        node: p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "<none>".into()),
        ready: format!(
            "{ready}/{}",
            p.spec.as_ref().map_or(0, |s| s.containers.len())
        ),
        status: phase,
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        age_seconds: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| now.as_second() - t.0.as_second()),
        ip: status.pod_ip.clone(),
        image: shown_image(
            p.spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref()),
            Some(&p.metadata),
        ),
    }
}

/// Where the app is reached: its Ingress, or its HTTPRoute and Gateway; `None` without hosts.
pub async fn front(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<IngressRow>, KubeError> {
    match spec.ingress.as_ref().map(|i| i.gateway_ref()) {
        Some(Some(gw)) => route_row(client, ns, spec, &gw).await,
        Some(None) => Ok(Api::<Ingress>::namespaced(client.clone(), ns)
            .get_opt(&spec.name)
            .await
            .map_err(api_err(format!("read Ingress `{}`", spec.name)))?
            .map(|i| ingress_row(&i))),
        None => Ok(None),
    }
}

/// What `deploy` shows when it ends, from what it already knows (the rollout it watched, the
/// release it recorded, the image it deployed) and one read of where the app is reached,
/// instead of everything `status` reads.
pub async fn after_deploy(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    revision: Option<u32>,
    processes: &[progress::ProcessProgress],
) -> Result<StatusData, KubeError> {
    let image = spec.image.shown();
    Ok(StatusData {
        app: spec.name.clone(),
        namespace: ns.to_string(),
        revision,
        processes: processes
            .iter()
            .map(|p| ProcessRow {
                process: p.process.clone(),
                ready: p.ready,
                desired: p.desired,
                image: image.clone(),
                rolled_out: p.done,
            })
            .collect(),
        pods: vec![],
        ingress: front(client, ns, spec).await?,
        maintenance: None,
        autoscalers: vec![],
        warnings: vec![],
    })
}

fn ingress_row(i: &Ingress) -> IngressRow {
    let spec = i.spec.clone().unwrap_or_default();
    let hosts: Vec<String> = spec
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.host)
        .collect();
    let address = i
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|list| list.first())
        .and_then(|a| a.hostname.clone().or_else(|| a.ip.clone()));
    let scheme = if spec.tls.is_some_and(|t| !t.is_empty()) {
        "https"
    } else {
        "http"
    };
    let url = address
        .as_ref()
        .and(hosts.first())
        .map(|h| format!("{scheme}://{h}"));
    IngressRow {
        kind: "Ingress",
        hosts,
        address,
        url,
        gateway: None,
        route: None,
    }
}

/// The app's HTTPRoute and its Gateway: the URL is known from the hosts and whether an HTTPS
/// listener takes them, the address only once the Gateway's controller reports one.
async fn route_row(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    gw: &GatewayRef,
) -> Result<Option<IngressRow>, KubeError> {
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kubectl_rails_kube::api_resource("HTTPRoute")?,
    );
    let route = match routes.get_opt(&spec.name).await {
        Ok(Some(r)) => serde_json::to_value(r).unwrap_or_default(),
        Ok(None) => return Ok(None),
        Err(e) if kubectl_rails_kube::is_missing_api("HTTPRoute", &e) => return Ok(None),
        Err(e) => return Err(api_err(format!("read HTTPRoute `{}`", spec.name))(e)),
    };
    let gateway_ns = gw.namespace.as_deref().unwrap_or(ns);
    let gateway_api = kubectl_rails_kube::gateway_api_resource("Gateway", "gateways");
    // The Gateway may be another team's, in a namespace the deployer cannot read.
    let gateway = Api::<DynamicObject>::namespaced_with(client.clone(), gateway_ns, &gateway_api)
        .get_opt(&gw.name)
        .await
        .ok()
        .flatten()
        .map(|g| serde_json::to_value(g).unwrap_or_default())
        .unwrap_or_default();
    Ok(Some(http_route_row(&route, &gateway, gw, ns)))
}

fn http_route_row(route: &Value, gateway: &Value, gw: &GatewayRef, ns: &str) -> IngressRow {
    let hosts: Vec<String> = route["spec"]["hostnames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect();
    let https = hosts.first().is_some_and(|host| {
        gateway["spec"]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["protocol"] == "HTTPS" && listener_takes(l["hostname"].as_str(), host))
    });
    let scheme = if https { "https" } else { "http" };
    let address = gateway["status"]["addresses"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a["value"].as_str())
        .map(str::to_string);
    let state = match kubectl_rails_deploy::route::verdict(route, gw, ns) {
        Verdict::Accepted => "accepted".to_string(),
        Verdict::Refused {
            condition, reason, ..
        } => format!("refused ({condition} false: {reason})"),
        Verdict::Pending(_) => "not reported".to_string(),
    };
    IngressRow {
        kind: "HTTPRoute",
        url: hosts.first().map(|h| format!("{scheme}://{h}")),
        hosts,
        address,
        gateway: Some(gw.display(ns)),
        route: Some(state),
    }
}

fn autoscaler_row(h: &HorizontalPodAutoscaler) -> AutoscalerRow {
    let spec = h.spec.clone().unwrap_or_default();
    AutoscalerRow {
        process: labels::component_of(&h.metadata),
        min: spec.min_replicas.unwrap_or(1),
        max: spec.max_replicas,
        current: h
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0),
        cpu_target: spec.metrics.unwrap_or_default().iter().find_map(|m| {
            m.resource
                .as_ref()
                .filter(|r| r.name == "cpu")?
                .target
                .average_utilization
        }),
    }
}

/// The five newest Warning events about the app's objects.
async fn recent_warnings(client: &Client, ns: &str, app: &str) -> Vec<String> {
    let Ok(events) = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("type=Warning"))
        .await
    else {
        return vec![];
    };
    let mut items: Vec<&Event> = events
        .items
        .iter()
        .filter(|e| {
            e.involved_object
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&format!("{app}-")) || n == app)
        })
        .collect();
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(0)
    });
    items
        .iter()
        .rev()
        .take(5)
        .map(|e| {
            format!(
                "{} {}: {}",
                e.involved_object.name.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default().trim()
            )
        })
        .collect()
}

/// A container's image as people read it: a pinned one (`repository@sha256:...`) with the tag
/// its pod template keeps (`repository:tag (0123456789ab)`).
fn shown_image(
    image: Option<&str>,
    meta: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
) -> String {
    let Some(image) = image else {
        return String::new();
    };
    let mut spec = kubectl_rails_core::ImageSpec::parse(image);
    if spec.digest.is_some() {
        spec.tag = meta
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(kubectl_rails_core::render::IMAGE_TAG_ANNOTATION))
            .cloned();
    }
    spec.shown()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingress_has_a_url_once_it_has_an_address() {
        let ingress = |address: serde_json::Value| -> Ingress {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "shop"},
                "spec": {"rules": [{"host": "shop.example.com"}], "tls": [{"hosts": ["shop.example.com"]}]},
                "status": {"loadBalancer": {"ingress": address}},
            }))
            .unwrap()
        };
        let row = ingress_row(&ingress(serde_json::json!([])));
        assert_eq!(row.url, None);
        let row = ingress_row(&ingress(serde_json::json!([{"ip": "10.0.0.9"}])));
        assert_eq!(row.address.as_deref(), Some("10.0.0.9"));
        assert_eq!(row.url.as_deref(), Some("https://shop.example.com"));
    }
}
