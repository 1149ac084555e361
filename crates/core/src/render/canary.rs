//! A canary: the new release's web pods as a second Deployment beside the current one, selected
//! by the same Service, and (where the ingress controller can weigh them) the Ingress annotations
//! that give it its share. The current web Deployment is never part of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Object, RenderInputs, Stage, labels, render};
use crate::model::AppSpec;

/// The label only a canary's pods carry (`canary`), added to its Deployment's selector so the
/// two Deployments never count each other's pods as their own.
pub const TRACK_LABEL: &str = "kubectl-rails.dev/track";
/// The share of requests the canary was asked for, on its Deployment.
pub const PERCENT_ANNOTATION: &str = "kubectl-rails.dev/canary-percent";
/// How the share is made ([`CanaryRouting`]), on its Deployment.
pub const ROUTING_ANNOTATION: &str = "kubectl-rails.dev/canary-routing";
/// The canary's spec as deployed, which `promote` deploys.
pub const SPEC_ANNOTATION: &str = "kubectl-rails.dev/canary-spec";
/// The cookie HAProxy Ingress sets to keep a browser on one pod, so on one release.
pub const STICKY_COOKIE: &str = "kubectl-rails-pod";
/// The label whose values tell the two releases apart at the ingress.
pub const SPLIT_LABEL: &str = labels::VERSION;

const HAPROXY: &str = "haproxy-ingress.github.io";

/// How the canary gets its share of the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CanaryRouting {
    /// HAProxy Ingress weighs the two releases' pods by their version label (blue-green
    /// `deploy` mode) and keeps a browser on the pod it first reached with a cookie.
    HaproxyWeights,
    /// Any other ingress controller: the Service spreads requests over every pod, so the share
    /// is the canary's part of the pods, and one browser may see both releases.
    ReplicaRatio,
}

impl CanaryRouting {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HaproxyWeights => "haproxy-weights",
            Self::ReplicaRatio => "replica-ratio",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::HaproxyWeights, Self::ReplicaRatio]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// What a person should know of the split.
    pub fn describe(self) -> String {
        match self {
            Self::HaproxyWeights => format!(
                "split by HAProxy Ingress weights; sticky per browser (cookie `{STICKY_COOKIE}`): a browser that keeps its cookie sees one release"
            ),
            Self::ReplicaRatio => "split by replica ratio (the ingress controller cannot weigh releases): each request goes to any pod, so a browser may see both releases".into(),
        }
    }
}

/// What the canary's rendering needs to know of the release that runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryInputs {
    /// The requested share, 1 to 99.
    pub percent: u8,
    pub routing: CanaryRouting,
    /// The current web pods' [`SPLIT_LABEL`] value.
    pub stable_version: String,
    /// The current web Deployment's replicas.
    pub stable_replicas: i32,
}

/// The canary's pods: enough that they are about `percent` of all web pods, at least one, and
/// never more than the current release runs (a canary is not a second copy of the app).
pub fn canary_replicas(stable_replicas: i32, percent: u8) -> i32 {
    let stable = stable_replicas.max(1);
    let p = f64::from(percent.clamp(1, 99));
    let wanted = f64::from(stable) * p / (100.0 - p);
    #[allow(clippy::cast_possible_truncation, reason = "replica counts are small")]
    let n = wanted.round() as i32;
    n.clamp(1, stable)
}

/// The share of requests the canary gets, in percent: asked for when the ingress weighs the
/// releases, its part of the ready pods otherwise.
pub fn canary_share(
    routing: CanaryRouting,
    percent: u8,
    stable_ready: i32,
    canary_ready: i32,
) -> f64 {
    match routing {
        CanaryRouting::HaproxyWeights if canary_ready == 0 => 0.0,
        CanaryRouting::HaproxyWeights if stable_ready == 0 => 100.0,
        CanaryRouting::HaproxyWeights => f64::from(percent),
        CanaryRouting::ReplicaRatio => {
            let total = stable_ready + canary_ready;
            if total == 0 {
                0.0
            } else {
                100.0 * f64::from(canary_ready) / f64::from(total)
            }
        }
    }
}

/// The value of [`SPLIT_LABEL`] the pods of `spec`'s release carry, if its image has a tag.
pub fn version_label(spec: &AppSpec) -> Option<String> {
    let tag = spec.image.tag.as_ref()?;
    Some(
        tag.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .take(63)
            .collect(),
    )
}

/// The name of the canary's Deployment.
pub fn canary_deployment_name(spec: &AppSpec) -> String {
    spec.deployment_name("web-canary")
}

/// The Ingress annotations that weigh the two releases (none for [`CanaryRouting::ReplicaRatio`]).
pub fn split_annotations(canary: &CanaryInputs, canary_version: &str) -> BTreeMap<String, String> {
    match canary.routing {
        CanaryRouting::ReplicaRatio => BTreeMap::new(),
        CanaryRouting::HaproxyWeights => BTreeMap::from([
            (
                format!("{HAPROXY}/blue-green-balance"),
                format!(
                    "{SPLIT_LABEL}={}={},{SPLIT_LABEL}={canary_version}={}",
                    canary.stable_version,
                    100 - u32::from(canary.percent),
                    canary.percent
                ),
            ),
            (format!("{HAPROXY}/blue-green-mode"), "deploy".into()),
            // `random(2)` (a common default) sends each request to the less busy of two
            // servers drawn by weight, which evens the shares out: 20% came out as 25-27% on
            // the test cluster. Round robin follows the weights.
            (format!("{HAPROXY}/balance-algorithm"), "roundrobin".into()),
            (format!("{HAPROXY}/affinity"), "cookie".into()),
            (
                format!("{HAPROXY}/session-cookie-name"),
                STICKY_COOKIE.into(),
            ),
        ]),
    }
}

/// The objects of a canary, in apply order: the new release's config (its env ConfigMap, volume
/// claim, policies, accessories) and migration Job, as a deploy of `new` renders them; its web
/// pods as the Deployment `<app>-web-canary`; and `stable`'s Ingress with the split's
/// annotations. `new_text` is `new`'s spec file as deployed, which `promote` deploys later.
pub fn render_canary(
    new: &AppSpec,
    new_text: &str,
    stable: &AppSpec,
    inputs: &RenderInputs,
    canary: &CanaryInputs,
) -> super::Release {
    let release = render(new, inputs);
    let version = version_label(new).unwrap_or_default();
    let web_name = new.deployment_name("web");
    let mut objects: Vec<Object> = release
        .objects
        .iter()
        .filter(|o| o.stage != Stage::Workload)
        .cloned()
        .collect();
    let web = release
        .objects
        .iter()
        .find(|o| o.kind == "Deployment" && o.name == web_name)
        .expect("render always renders the web Deployment");
    let name = canary_deployment_name(new);
    let mut d = web.value.clone();
    d["metadata"]["name"] = Value::String(name.clone());
    d["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    d["metadata"]["annotations"] = serde_json::json!({
        PERCENT_ANNOTATION: canary.percent.to_string(),
        ROUTING_ANNOTATION: canary.routing.as_str(),
        SPEC_ANNOTATION: new_text,
    });
    d["spec"]["replicas"] = canary_replicas(canary.stable_replicas, canary.percent).into();
    d["spec"]["selector"]["matchLabels"][TRACK_LABEL] = "canary".into();
    d["spec"]["template"]["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    objects.push(Object {
        stage: Stage::Workload,
        kind: "Deployment",
        name,
        value: d,
    });
    if let Some(mut ingress) = stable_ingress(stable, inputs) {
        let annotations = split_annotations(canary, &version);
        if !annotations.is_empty() {
            let meta = &mut ingress.value["metadata"];
            if !meta["annotations"].is_object() {
                meta["annotations"] = serde_json::json!({});
            }
            for (k, v) in annotations {
                meta["annotations"][k] = Value::String(v);
            }
        }
        objects.push(ingress);
    }
    super::Release {
        objects,
        checksum: release.checksum,
        assets_checksum: release.assets_checksum,
    }
}

/// `stable`'s Ingress as a deploy of it renders it: what ends a canary's split.
pub fn stable_ingress(stable: &AppSpec, inputs: &RenderInputs) -> Option<Object> {
    render(stable, inputs)
        .objects
        .into_iter()
        .find(|o| o.kind == "Ingress")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file;
    use crate::render::test_support::spec;

    fn canary(routing: CanaryRouting) -> CanaryInputs {
        CanaryInputs {
            percent: 20,
            routing,
            stable_version: "1.0".into(),
            stable_replicas: 2,
        }
    }

    fn rendered(routing: CanaryRouting) -> String {
        let stable = spec("ingress: {hosts: [shop.example.com], tls: true}\n");
        let mut new = stable.clone();
        new.image.tag = Some("2.0".into());
        let text = file::to_yaml(&new);
        let release = render_canary(
            &new,
            &text,
            &stable,
            &RenderInputs::default(),
            &canary(routing),
        );
        let workloads: Vec<&Value> = release
            .by_stage(Stage::Workload)
            .map(|o| &o.value)
            .collect();
        serde_saphyr::to_string(&workloads).unwrap()
    }

    #[test]
    fn haproxy_weighs_the_releases_by_version_and_keeps_a_browser_on_one() {
        insta::assert_snapshot!("canary_haproxy", rendered(CanaryRouting::HaproxyWeights));
    }

    #[test]
    fn other_controllers_get_the_canary_deployment_and_an_unchanged_ingress() {
        let y = rendered(CanaryRouting::ReplicaRatio);
        assert!(!y.contains("blue-green"), "{y}");
        insta::assert_snapshot!("canary_replica_ratio", y);
    }

    #[test]
    fn the_canary_never_replaces_the_web_deployment_and_runs_its_own_migration() {
        let stable = spec("");
        let mut new = stable.clone();
        new.image.tag = Some("2.0".into());
        let release = render_canary(
            &new,
            "",
            &stable,
            &RenderInputs::default(),
            &canary(CanaryRouting::ReplicaRatio),
        );
        let names: Vec<(&str, &str)> = release
            .objects
            .iter()
            .map(|o| (o.kind, o.name.as_str()))
            .collect();
        assert!(
            names.contains(&("Deployment", "shop-web-canary")),
            "{names:?}"
        );
        assert!(!names.contains(&("Deployment", "shop-web")), "{names:?}");
        assert!(!names.iter().any(|(k, _)| *k == "Service"), "{names:?}");
        assert!(names.iter().any(|(k, _)| *k == "Job"), "{names:?}");
    }

    #[test]
    fn replicas_follow_the_share_and_the_share_follows_the_routing() {
        assert_eq!(canary_replicas(1, 20), 1);
        assert_eq!(canary_replicas(4, 20), 1);
        assert_eq!(canary_replicas(8, 20), 2);
        assert_eq!(canary_replicas(3, 50), 3);
        assert_eq!(canary_replicas(1, 99), 1);
        assert!((canary_share(CanaryRouting::HaproxyWeights, 20, 1, 1) - 20.0).abs() < 1e-9);
        assert!((canary_share(CanaryRouting::HaproxyWeights, 20, 1, 0)).abs() < 1e-9);
        assert!((canary_share(CanaryRouting::ReplicaRatio, 20, 1, 1) - 50.0).abs() < 1e-9);
        assert!((canary_share(CanaryRouting::ReplicaRatio, 20, 3, 1) - 25.0).abs() < 1e-9);
    }
}
