//! Whether the app's NetworkPolicies are enforced: that is the network plugin's job, and
//! plugins that do not enforce them (flannel, kindnet, a plain bridge) accept them silently.

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::ListParams;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;

use crate::{Finding, forbidden};

const CHECK: &str = "NetworkPolicy";

/// Network plugins known to enforce NetworkPolicies, by the name of the DaemonSet that runs
/// them on every node.
const ENFORCING: &[(&str, &str)] = &[
    ("calico-node", "Calico"),
    ("canal", "Canal (Calico)"),
    ("cilium", "Cilium"),
    ("kube-router", "kube-router"),
    ("antrea-agent", "Antrea"),
    ("weave-net", "Weave Net"),
    ("kube-ovn-cni", "Kube-OVN"),
];

/// The enforcing plugin a list of DaemonSets (`namespace/name`) runs, if any.
pub fn enforcing_plugin(daemon_sets: &[(String, String)]) -> Option<(String, &'static str)> {
    daemon_sets.iter().find_map(|(ns, name)| {
        ENFORCING
            .iter()
            .find(|(known, _)| name == known)
            .map(|(_, label)| (format!("{ns}/{name}"), *label))
    })
}

/// Said only when the spec renders NetworkPolicies.
pub async fn network_policy(client: &Client, spec: &AppSpec) -> Option<Finding> {
    if !spec.network_policy {
        return None;
    }
    let list = match Api::<DaemonSet>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list,
        Err(e) if forbidden(&e) => {
            return Some(Finding::not_checked(
                CHECK,
                "cannot list DaemonSets (forbidden), so the network plugin is unknown: the app's NetworkPolicies are enforced only if it enforces them",
            ));
        }
        Err(e) => return Some(Finding::fail(CHECK, e.to_string(), "check the cluster")),
    };
    let daemon_sets: Vec<(String, String)> = list
        .items
        .iter()
        .map(|d| {
            (
                d.metadata.namespace.clone().unwrap_or_default(),
                d.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    Some(match enforcing_plugin(&daemon_sets) {
        Some((at, label)) => Finding::ok(CHECK, format!("enforced by {label} ({at})")),
        None => Finding::not_checked(
            CHECK,
            "no network plugin known to enforce NetworkPolicies runs here (Calico, Cilium, kube-router, Antrea, Weave Net, Kube-OVN): the app's policies are applied, and enforced only if this cluster's plugin does",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::enforcing_plugin;

    #[test]
    fn known_plugins_by_their_daemon_set() {
        let ds = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        // (namespace, name) of each DaemonSet, and the plugin found.
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (
                &[
                    ("kube-system", "kube-proxy"),
                    ("kube-system", "kube-flannel-ds"),
                ],
                None,
            ),
            (&[("calico-system", "calico-node")], Some("Calico")),
            (
                &[("kube-system", "kube-proxy"), ("kube-system", "cilium")],
                Some("Cilium"),
            ),
            (&[("kube-system", "cilium-envoy")], None),
            (&[], None),
        ];
        for (sets, want) in cases {
            assert_eq!(
                enforcing_plugin(&ds(sets)).map(|(_, label)| label),
                *want,
                "{sets:?}"
            );
        }
    }
}
