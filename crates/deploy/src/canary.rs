//! Canaries in the cluster: how the ingress controller can split requests, what a canary
//! deploy renders from the release that runs now, where a running canary stands, and ending
//! one (its Deployment gone, the Ingress as the current release renders it). It takes no lease
//! of its own: a canary deploy runs inside [`crate::deploy`]'s, `abort` inside the binary's.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::file;
use kubectl_rails_core::render::canary::{
    self as core_canary, CanaryInputs, CanaryRouting, PERCENT_ANNOTATION, ROUTING_ANNOTATION,
    SPEC_ANNOTATION, TRACK_LABEL,
};
use kubectl_rails_core::render::{Release, RenderInputs, labels};
use kubectl_rails_kube::{Applier, KubeError, api_err};
use serde::Serialize;

use kubectl_rails_doctor::{self as doctor, ClassChoice};

use crate::release;
use crate::{DeployError, Reporter};

/// The controller name HAProxy Ingress registers its IngressClass under.
pub const HAPROXY_CONTROLLER: &str = "haproxy-ingress.github.io/controller";

/// How the app's ingress can split requests: by weights when its IngressClass (the spec's, or
/// the cluster's default) is HAProxy Ingress's, by replica ratio otherwise. A deployer who may
/// not list IngressClasses gets the replica ratio, and is told why.
pub async fn routing(
    client: &Client,
    spec: &AppSpec,
    reporter: &dyn Reporter,
) -> Result<CanaryRouting, KubeError> {
    let Some(ingress) = &spec.ingress else {
        return Ok(CanaryRouting::ReplicaRatio);
    };
    // Behind a Gateway the HTTPRoute sends to web's Service, which selects both releases' pods.
    if ingress.gateway.is_some() {
        return Ok(CanaryRouting::ReplicaRatio);
    }
    let classes = match doctor::ingress_classes(client).await {
        Ok(classes) => classes,
        Err(e) if e.is_forbidden() => {
            reporter.note("cannot list IngressClasses (forbidden), so the ingress controller is not known: the canary's share is its part of the pods");
            return Ok(CanaryRouting::ReplicaRatio);
        }
        Err(e) => return Err(e),
    };
    let controller = match doctor::choose_class(&classes, ingress.class.as_deref()) {
        ClassChoice::Named(c) | ClassChoice::Default(c) => c.controller,
        _ => None,
    };
    Ok(if controller.as_deref() == Some(HAPROXY_CONTROLLER) {
        CanaryRouting::HaproxyWeights
    } else {
        CanaryRouting::ReplicaRatio
    })
}

/// The running canary's Deployment, if there is one.
pub async fn current(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<Deployment>, KubeError> {
    let name = core_canary::canary_deployment_name(spec);
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(&name)
        .await
        .map_err(api_err(format!(
            "read Deployment `{name}` in namespace `{ns}`"
        )))
}

/// The spec file text the canary was deployed from (what `promote` deploys).
pub fn spec_text(canary: &Deployment) -> Option<String> {
    canary
        .metadata
        .annotations
        .as_ref()?
        .get(SPEC_ANNOTATION)
        .cloned()
}

/// Refuses a canary while one runs.
pub(crate) fn refuse_second(app: &str, running: &Deployment) -> DeployError {
    DeployError::Refused {
        message: format!(
            "a canary of `{app}` is already running in namespace `{}` ({}); nothing was deployed",
            running.metadata.namespace.as_deref().unwrap_or_default(),
            image_of(running)
        ),
        hint: Some(
            "end it first: `kubectl rails canary promote` or `kubectl rails canary abort`".into(),
        ),
    }
}

/// A canary deploy's objects: read what runs now (the web Deployment, the current release, the
/// ingress controller), check a canary can run beside it, then render.
pub(crate) async fn plan(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    percent: u8,
    inputs: &RenderInputs,
    reporter: &dyn Reporter,
) -> Result<Release, DeployError> {
    let web_name = spec.deployment_name("web");
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let (web, running, history, routing) = tokio::try_join!(
        async {
            deployments
                .get_opt(&web_name)
                .await
                .map_err(api_err(format!(
                    "read Deployment `{web_name}` in namespace `{ns}`"
                )))
        },
        current(client, ns, spec),
        release::list(client, ns, &spec.name),
        routing(client, spec, reporter),
    )?;
    if let Some(running) = running {
        return Err(refuse_second(&spec.name, &running));
    }
    let (Some(web), Some(stable)) = (web, release::current(&history)) else {
        return Err(DeployError::Refused {
            message: format!(
                "`{}` has no current release in namespace `{ns}`: a canary runs beside one",
                spec.name
            ),
            hint: Some("deploy once without `--canary` (and without `rollout.canary`), then deploy the canary".into()),
        });
    };
    let mut stable_spec = file::parse(&stable.spec, std::path::Path::new("release"))
        .map_err(|e| DeployError::Refused {
            message: format!(
                "the record of release v{} of `{}` does not parse ({e})",
                stable.revision, spec.name
            ),
            hint: Some("deploy once without `--canary` to record a readable release".into()),
        })?
        .spec;
    stable_spec.namespace = Some(ns.to_string());
    let stable_version = version_of(&web);
    let new_version = core_canary::version_label(spec).unwrap_or_default();
    if routing == CanaryRouting::HaproxyWeights && stable_version == new_version {
        return Err(DeployError::Refused {
            message: format!(
                "the canary's image tag gives its pods the version label `{new_version}`, as release v{} has: HAProxy Ingress tells the two releases apart by the pods' `{}` label",
                stable.revision,
                labels::VERSION
            ),
            hint: Some("deploy the canary with a new image tag (`--tag`)".into()),
        });
    }
    let stable_replicas = web
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .or_else(|| web.status.as_ref().and_then(|s| s.replicas))
        .unwrap_or(1);
    Ok(core_canary::render_canary(
        spec,
        &file::to_yaml(spec),
        &stable_spec,
        inputs,
        &CanaryInputs {
            percent,
            routing,
            stable_version,
            stable_replicas,
        },
    ))
}

/// One of the two releases while a canary runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackStatus {
    /// `stable` or `canary`.
    pub track: String,
    pub deployment: String,
    pub image: String,
    pub version: String,
    pub replicas: i32,
    pub ready: i32,
    /// Percent of the requests it gets now.
    pub share: f64,
}

/// Where a running canary stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryStatus {
    pub app: String,
    pub namespace: String,
    /// The share asked for.
    pub percent: u8,
    pub routing: CanaryRouting,
    /// Whether a browser keeping its cookie sees one release only.
    pub sticky: bool,
    /// The split in words.
    pub split: String,
    /// The stable release first, then the canary.
    pub releases: Vec<TrackStatus>,
}

/// The running canary and the release beside it, or `None` when no canary runs.
pub async fn status(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<CanaryStatus>, KubeError> {
    let web_name = spec.deployment_name("web");
    let (canary, web) = tokio::try_join!(current(client, ns, spec), async {
        Api::<Deployment>::namespaced(client.clone(), ns)
            .get_opt(&web_name)
            .await
            .map_err(api_err(format!(
                "read Deployment `{web_name}` in namespace `{ns}`"
            )))
    })?;
    let Some(canary) = canary else {
        return Ok(None);
    };
    let annotations = canary.metadata.annotations.clone().unwrap_or_default();
    let percent = annotations
        .get(PERCENT_ANNOTATION)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let routing = annotations
        .get(ROUTING_ANNOTATION)
        .and_then(|r| CanaryRouting::parse(r))
        .unwrap_or(CanaryRouting::ReplicaRatio);
    let ready = |d: &Deployment| {
        d.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    };
    let stable_ready = web.as_ref().map_or(0, ready);
    let canary_ready = ready(&canary);
    let share = core_canary::canary_share(routing, percent, stable_ready, canary_ready);
    let track = |name: &str, d: &Deployment, share: f64| TrackStatus {
        track: name.into(),
        deployment: d.metadata.name.clone().unwrap_or_default(),
        image: image_of(d),
        version: version_of(d),
        replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        ready: ready(d),
        share,
    };
    let mut releases = Vec::new();
    if let Some(web) = &web {
        releases.push(track("stable", web, 100.0 - share));
    }
    releases.push(track("canary", &canary, share));
    Ok(Some(CanaryStatus {
        app: spec.name.clone(),
        namespace: ns.to_string(),
        percent,
        routing,
        sticky: routing == CanaryRouting::HaproxyWeights,
        split: routing.describe(),
        releases,
    }))
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn version_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(labels::VERSION))
        .cloned()
        .unwrap_or_default()
}

/// Ends a canary: its Deployment is deleted and its pods waited out (so no request reaches
/// them), then the Ingress goes back to what the current release renders, without the split.
/// The current web Deployment is not touched. Nothing to do when no canary runs.
pub async fn end(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    timeout: Duration,
) -> Result<bool, DeployError> {
    let name = core_canary::canary_deployment_name(spec);
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let existed = current(client, ns, spec).await?.is_some();
    if existed {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        match deployments.delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(
                    api_err(format!("delete Deployment `{name}` in namespace `{ns}`"))(e).into(),
                );
            }
        }
    }
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let selector = format!("{}={},{TRACK_LABEL}=canary", labels::INSTANCE, spec.name);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = pods
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(api_err(format!("list the canary pods of `{}`", spec.name)))?;
        if left.items.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DeployError::Timeout {
                waited: timeout,
                progress: format!("{} canary pod(s) still stopping", left.items.len()),
                revision: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    restore_ingress(client, ns, spec).await?;
    Ok(existed)
}

/// Applies the Ingress the current release renders (its split annotations dropped, since the
/// plugin's field manager no longer sets them).
async fn restore_ingress(client: &Client, ns: &str, spec: &AppSpec) -> Result<(), DeployError> {
    let history = release::list(client, ns, &spec.name).await?;
    let Some(stable) = release::current(&history) else {
        return Ok(());
    };
    let Ok(loaded) = file::parse(&stable.spec, std::path::Path::new("release")) else {
        return Ok(());
    };
    let mut stable_spec = loaded.spec;
    stable_spec.namespace = Some(ns.to_string());
    let inputs = RenderInputs {
        maintenance: crate::maintenance::current(client, ns, &stable_spec).await?,
        ..RenderInputs::default()
    };
    if let Some(ingress) = core_canary::stable_ingress(&stable_spec, &inputs) {
        Applier::new(client.clone(), ns, false)
            .write(&ingress.value)
            .await?;
    }
    Ok(())
}
