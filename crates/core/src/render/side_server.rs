//! What the app's small side servers share (the maintenance page, the asset server): a few
//! lines of Ruby in the app's own image, run as the app's user (nobody when the image starts as
//! root), under the same `restricted` settings as the app, taking only their port through the
//! app's isolating NetworkPolicy.

use k8s_openapi::api::core::v1::{
    Capabilities, LocalObjectReference, PodSecurityContext, SeccompProfile, SecurityContext,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Renderer;

/// The user a side server runs as when the spec names none (the image starts as root): nobody.
const NOBODY: i64 = 65534;

impl Renderer<'_> {
    /// No privilege, no capability, a read-only root.
    pub(super) fn side_container_security() -> SecurityContext {
        SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }
    }

    /// The app's user and group, never root.
    pub(super) fn side_pod_security(&self) -> PodSecurityContext {
        PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(self.spec.uid.filter(|u| *u != 0).unwrap_or(NOBODY)),
            run_as_group: Some(self.spec.gid.filter(|g| *g != 0).unwrap_or(NOBODY)),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }
    }

    /// The app's pull secret, when its registry is private.
    pub(super) fn pull_secrets(&self) -> Option<Vec<LocalObjectReference>> {
        self.spec.registry.as_ref().map(|r| {
            vec![LocalObjectReference {
                name: r.pull_secret.clone(),
            }]
        })
    }

    /// `component`'s pods take traffic on `port`; the app's isolating policy lets nothing
    /// else in. None when the spec turns NetworkPolicies off.
    pub(super) fn side_policy(&self, component: &str, port: u16) -> Option<NetworkPolicy> {
        self.spec.network_policy.then(|| NetworkPolicy {
            metadata: self.meta(&self.spec.deployment_name(component), component),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(self.selector(component)),
                    ..LabelSelector::default()
                }),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    ports: Some(vec![NetworkPolicyPort {
                        port: Some(IntOrString::Int(i32::from(port))),
                        protocol: Some("TCP".into()),
                        ..NetworkPolicyPort::default()
                    }]),
                    ..NetworkPolicyIngressRule::default()
                }]),
                ..NetworkPolicySpec::default()
            }),
        })
    }
}
