//! NetworkPolicies: every pod of the app takes no traffic but what a policy lets in. Web takes
//! it on its port (the ingress controller may run anywhere); workers, cron, the migration and
//! one-off pods take none; an accessory takes its port from the app's own pods. Egress stays
//! open, said explicitly: databases and APIs often live outside the cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Renderer, labels, string_map};

impl Renderer<'_> {
    /// Labels every pod of the app carries, whatever its process or role.
    fn app_pods(&self) -> BTreeMap<String, String> {
        string_map([
            (labels::NAME, &self.spec.name),
            (labels::INSTANCE, &self.spec.name),
        ])
    }

    fn policy(
        &self,
        name: &str,
        component: &str,
        pods: BTreeMap<String, String>,
        spec: NetworkPolicySpec,
    ) -> NetworkPolicy {
        NetworkPolicy {
            metadata: self.meta(name, component),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(pods),
                    ..LabelSelector::default()
                }),
                ..spec
            }),
        }
    }

    /// The app's NetworkPolicies, none when the spec turns them off.
    pub(super) fn network_policies(&self) -> Vec<NetworkPolicy> {
        if !self.spec.network_policy {
            return Vec::new();
        }
        let tcp = |port: u16| NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(port))),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        };
        let mut policies = vec![self.policy(
            &self.spec.name,
            "network",
            self.app_pods(),
            NetworkPolicySpec {
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: None,
                egress: Some(vec![NetworkPolicyEgressRule::default()]),
                ..NetworkPolicySpec::default()
            },
        )];
        policies.push(self.policy(
            &self.spec.deployment_name("web"),
            "web",
            self.selector("web"),
            NetworkPolicySpec {
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    ports: Some(vec![tcp(self.spec.web.port)]),
                    from: None,
                }]),
                ..NetworkPolicySpec::default()
            },
        ));
        for (name, accessory) in &self.spec.accessories {
            policies.push(self.policy(
                &self.spec.accessory_name(name),
                &format!("accessory-{name}"),
                self.selector(&format!("accessory-{name}")),
                NetworkPolicySpec {
                    policy_types: Some(vec!["Ingress".into()]),
                    ingress: Some(vec![NetworkPolicyIngressRule {
                        ports: Some(vec![tcp(accessory.kind.port())]),
                        from: Some(vec![NetworkPolicyPeer {
                            pod_selector: Some(LabelSelector {
                                match_labels: Some(self.app_pods()),
                                ..LabelSelector::default()
                            }),
                            ..NetworkPolicyPeer::default()
                        }]),
                    }]),
                    ..NetworkPolicySpec::default()
                },
            ));
        }
        policies
    }
}

#[cfg(test)]
mod tests {
    use crate::render::test_support::spec;
    use crate::render::{RenderInputs, render};

    fn policies(yaml: &str) -> Vec<serde_json::Value> {
        render(&spec(yaml), &RenderInputs::default())
            .objects
            .into_iter()
            .filter(|o| o.kind == "NetworkPolicy")
            .map(|o| o.value)
            .collect()
    }

    #[test]
    fn every_pod_is_isolated_and_web_takes_its_port_only() {
        let p = policies("accessories: {cache: {kind: redis, image: 'redis:7'}}\n");
        let names: Vec<&str> = p
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["shop", "shop-web", "shop-cache"]);
        // All the app's pods: no ingress rule at all, every egress.
        let all = &p[0]["spec"];
        assert_eq!(
            all["podSelector"]["matchLabels"],
            serde_json::json!({"app.kubernetes.io/instance": "shop", "app.kubernetes.io/name": "shop"})
        );
        assert_eq!(all["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        assert!(all.get("ingress").is_none());
        assert_eq!(all["egress"], serde_json::json!([{}]));
        // Web: its port, from anywhere.
        let web = &p[1]["spec"];
        assert_eq!(
            web["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
            "web"
        );
        assert_eq!(
            web["ingress"],
            serde_json::json!([{"ports": [{"port": 3000, "protocol": "TCP"}]}])
        );
        // The accessory: its port, from the app's pods only.
        let cache = &p[2]["spec"];
        assert_eq!(cache["ingress"][0]["ports"][0]["port"], 6379);
        assert_eq!(
            cache["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
            all["podSelector"]["matchLabels"]
        );
    }

    #[test]
    fn the_spec_can_turn_them_off() {
        assert!(policies("network_policy: false\n").is_empty());
    }
}
