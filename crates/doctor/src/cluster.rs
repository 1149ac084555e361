//! The cluster itself: its version against kubectl's and the oldest supported, its nodes, the
//! caller's permissions, and whether the app's host names resolve to its Ingress.

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::rbac::PERMISSIONS;
use kubectl_rails_core::version::{MIN_SUPPORTED, ServerVersion};

use crate::{Finding, forbidden};

/// The local kubectl's version (`v1.33.1`), when `kubectl version --client` tells it.
pub fn kubectl_version() -> Option<String> {
    std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| {
            v["clientVersion"]["gitVersion"]
                .as_str()
                .map(str::to_string)
        })
}

fn minor(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)?
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// The server answers, is supported, and is within one minor version of the local kubectl.
pub async fn server_version(client: &Client) -> Finding {
    const CHECK: &str = "server version";
    let server = match client.apiserver_version().await {
        Ok(v) => v,
        Err(e) => {
            return Finding::fail(
                CHECK,
                format!("the server did not answer: {e}"),
                "check `--context` and `kubectl get --raw /version`",
            );
        }
    };
    if let Some(why) = ServerVersion::parse(&server.major, &server.minor, &server.git_version)
        .as_ref()
        .and_then(ServerVersion::unsupported)
    {
        return Finding::fail(
            CHECK,
            why,
            format!(
                "upgrade the cluster to Kubernetes {}.{} or newer",
                MIN_SUPPORTED.0, MIN_SUPPORTED.1
            ),
        );
    }
    match (kubectl_version(), minor(&server.git_version)) {
        (Some(c), Some(s)) => match minor(&c) {
            Some(cm) if cm.abs_diff(s) <= 1 => Finding::ok(
                CHECK,
                format!(
                    "{} (kubectl {c}, within one minor version)",
                    server.git_version
                ),
            ),
            Some(_) => Finding::fail(
                CHECK,
                format!(
                    "{} is more than one minor version from kubectl {c}",
                    server.git_version
                ),
                format!("install kubectl 1.{s}"),
            ),
            None => Finding::ok(CHECK, server.git_version.clone()),
        },
        _ => Finding::ok(
            CHECK,
            format!("{} (kubectl's version unknown)", server.git_version),
        ),
    }
}

/// At least one node is Ready.
pub async fn nodes(client: &Client) -> Finding {
    const CHECK: &str = "nodes Ready";
    match Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            let ready = list
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            if ready > 0 {
                Finding::ok(CHECK, format!("{ready}/{} Ready", list.items.len()))
            } else {
                Finding::fail(
                    CHECK,
                    format!("0/{} Ready", list.items.len()),
                    "check the nodes with `kubectl describe nodes`",
                )
            }
        }
        Err(e) if forbidden(&e) => Finding::not_checked(CHECK, "cannot list nodes (forbidden)"),
        Err(e) => Finding::fail(CHECK, e.to_string(), "check the cluster"),
    }
}

/// Each of the app's hosts resolves to the Ingress address (not checked until it has one).
pub async fn dns(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Finding> {
    let Some(ingress) = &spec.ingress else {
        return vec![];
    };
    let (address, front) = match ingress.gateway_ref() {
        Some(gw) => (
            crate::gateway::live_address(client, ns, &gw).await,
            "Gateway",
        ),
        None => (
            match Api::<Ingress>::namespaced(client.clone(), ns)
                .get_opt(&spec.name)
                .await
            {
                Ok(Some(i)) => i
                    .status
                    .and_then(|s| s.load_balancer)
                    .and_then(|lb| lb.ingress)
                    .and_then(|l| l.into_iter().next())
                    .and_then(|a| a.ip.or(a.hostname)),
                _ => None,
            },
            "Ingress",
        ),
    };
    let mut out = Vec::new();
    for host in &ingress.hosts {
        let check = format!("DNS {host}");
        let Some(address) = &address else {
            out.push(Finding::not_checked(
                &check,
                format!("not checked: the {front} has no address yet"),
            ));
            continue;
        };
        let lookup = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host.as_str(), 443)),
        )
        .await;
        out.push(match lookup {
            Ok(Ok(addrs)) => {
                let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                if ips.contains(address) || address.parse::<std::net::IpAddr>().is_err() {
                    Finding::ok(&check, format!("resolves to {}", ips.join(", ")))
                } else {
                    Finding::fail(
                        &check,
                        format!(
                            "resolves to {}, not the {front} address {address}",
                            ips.join(", ")
                        ),
                        format!("point an A record for {host} at {address}"),
                    )
                }
            }
            Ok(Err(e)) => Finding::not_checked(&check, format!("not checked: no DNS answer ({e})")),
            Err(_) => Finding::not_checked(
                &check,
                "not checked: DNS did not answer in time (no network?)",
            ),
        });
    }
    out
}

/// Every permission deploy, exec and scale use (`kubectl rails rbac`) is granted in `ns`.
pub async fn rbac(client: &Client, ns: &str, secret_names: &[String]) -> Finding {
    const CHECK: &str = "RBAC";
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for p in PERMISSIONS {
        let (resource, subresource) = match p.resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (p.resource, None),
        };
        // A named permission is asked of each of the app's own objects.
        let names: Vec<Option<String>> = if p.named {
            secret_names.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        for verb in p.verbs {
            for name in &names {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            namespace: Some(ns.to_string()),
                            verb: Some(verb.to_string()),
                            group: Some(p.group.to_string()),
                            resource: Some(resource.to_string()),
                            subresource: subresource.clone(),
                            name: name.clone(),
                            ..ResourceAttributes::default()
                        }),
                        ..SelfSubjectAccessReviewSpec::default()
                    },
                    ..SelfSubjectAccessReview::default()
                };
                match api.create(&PostParams::default(), &review).await {
                    Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
                    Ok(_) => missing.push(match name {
                        Some(n) => format!("{verb} {}/{n}", p.resource_name()),
                        None => format!("{verb} {}", p.resource_name()),
                    }),
                    Err(e) => {
                        return Finding::fail(
                            CHECK,
                            format!("cannot ask the server: {e}"),
                            "check the cluster",
                        );
                    }
                }
            }
        }
    }
    if missing.is_empty() {
        Finding::ok(
            CHECK,
            format!("every permission deploy, exec and scale use is granted in `{ns}`"),
        )
    } else {
        Finding::fail(
            CHECK,
            format!("missing in `{ns}`: {}", missing.join(", ")),
            format!(
                "ask an admin to run `kubectl rails rbac -n {ns} | kubectl apply -f -` and bind it to you"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn minor_versions_as_kubectl_and_the_server_write_them() {
        assert_eq!(super::minor("v1.33.13"), Some(33));
        assert_eq!(super::minor("v1.29.0-eks-1234"), Some(29));
        assert_eq!(super::minor("1.30+"), Some(30));
        assert_eq!(super::minor("v1"), None);
    }
}
