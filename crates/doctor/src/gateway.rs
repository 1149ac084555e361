//! The way in through the Gateway API (`ingress.gateway`): its API served, the Gateway's class
//! accepted by a controller, the Gateway programmed with a listener that takes the app's hosts
//! from its namespace, and the app's HTTPRoute accepted.
//!
//! A controller that writes no status (HAProxy Ingress v0.16) leaves the API's defaults,
//! `Unknown` with reason `Pending`: that is "not checked", never a failure, since it may serve.

use kube::api::DynamicObject;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::gateway::{Verdict, verdict};
use kubectl_rails_core::model::{GatewayRef, listener_takes};
use kubectl_rails_core::render::GATEWAY_GROUP;
use kubectl_rails_kube::gateway_api_resource;
use serde_json::Value;

use crate::{Finding, forbidden};

const INSTALL: &str = "install the Gateway API CRDs (`kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml`) and a controller that implements them, or remove `ingress.gateway` to route with an Ingress";

/// A condition of an object's `status.conditions` (or of one of its parents'): status, reason
/// and message.
fn condition<'a>(conditions: &'a Value, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    conditions.as_array()?.iter().find_map(|c| {
        (c["type"] == kind).then(|| {
            (
                c["status"].as_str().unwrap_or("Unknown"),
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default(),
            )
        })
    })
}

/// A finding from one condition: true is ok, false fails with `fix`, anything else (the API's
/// default before a controller writes) was not checked.
fn from_condition(
    check: &str,
    what: &str,
    kind: &str,
    conditions: &Value,
    ok: String,
    fix: &str,
) -> Finding {
    match condition(conditions, kind) {
        Some(("True", _, _)) => Finding::ok(check, ok),
        Some(("False", reason, message)) => Finding::fail(
            check,
            format!("{what}: `{kind}` is false ({reason}: {message})"),
            fix,
        ),
        Some((_, reason, message)) => Finding::not_checked(
            check,
            format!(
                "{what}: its controller has not reported `{kind}` ({reason}: {message}); some controllers (HAProxy Ingress v0.16) never do"
            ),
        ),
        None => Finding::not_checked(
            check,
            format!("{what}: no `{kind}` condition in its status yet"),
        ),
    }
}

/// Whether a listener's `allowedRoutes` lets an HTTPRoute of `route_ns` attach, when it can be
/// told without reading the namespace: `Some(true)`, `Some(false)`, or `None` for a selector.
fn listener_allows(listener: &Value, gateway_ns: &str, route_ns: &str) -> Option<bool> {
    let allowed = &listener["allowedRoutes"];
    let kinds_ok = allowed["kinds"].as_array().is_none_or(|kinds| {
        kinds.is_empty()
            || kinds.iter().any(|k| {
                k["kind"] == "HTTPRoute"
                    && k["group"].as_str().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            })
    });
    if !kinds_ok {
        return Some(false);
    }
    match allowed["namespaces"]["from"].as_str().unwrap_or("Same") {
        "All" => Some(true),
        "Same" => Some(gateway_ns == route_ns),
        _ => None,
    }
}

/// Every Gateway of the cluster, as `namespace/name`: none where the cluster does not serve the
/// Gateway API.
pub async fn gateways(client: &Client) -> Result<Vec<String>, kubectl_rails_kube::KubeError> {
    let api = Api::<DynamicObject>::all_with(
        client.clone(),
        &gateway_api_resource("Gateway", "gateways"),
    );
    match api.list_metadata(&kube::api::ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .map(|g| {
                format!(
                    "{}/{}",
                    g.metadata.namespace.unwrap_or_default(),
                    g.metadata.name.unwrap_or_default()
                )
            })
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(kubectl_rails_kube::api_err("list Gateways")(e)),
    }
}

/// The Gateway's checks for the app: none when it routes with an Ingress.
pub async fn gateway(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Finding> {
    let Some(ingress) = &spec.ingress else {
        return vec![];
    };
    let Some(gw) = ingress.gateway_ref() else {
        return vec![];
    };
    let mut out = Vec::new();
    // The API: served or not.
    match client
        .list_api_group_resources(&format!("{GATEWAY_GROUP}/v1"))
        .await
    {
        Ok(list) if list.resources.iter().any(|r| r.name == "httproutes") => out.push(Finding::ok(
            "Gateway API",
            "`httproutes`, `gateways` and `gatewayclasses` served (gateway.networking.k8s.io/v1)",
        )),
        Ok(_) | Err(kube::Error::Api(_)) => {
            out.push(Finding::fail(
                "Gateway API",
                "the cluster does not serve `gateway.networking.k8s.io/v1` HTTPRoutes",
                INSTALL,
            ));
            return out;
        }
        Err(e) => {
            out.push(Finding::fail(
                "Gateway API",
                e.to_string(),
                "check the cluster",
            ));
            return out;
        }
    }
    let gateway_ns = gw.namespace.clone().unwrap_or_else(|| ns.to_string());
    let shown = gw.display(ns);
    let gateway = match Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &gateway_ns,
        &gateway_api_resource("Gateway", "gateways"),
    )
    .get_opt(&gw.name)
    .await
    {
        Ok(Some(g)) => serde_json::to_value(g).unwrap_or_default(),
        Ok(None) => {
            out.push(Finding::fail(
                "Gateway",
                format!("Gateway `{shown}` does not exist"),
                "create it (your cluster's Gateway controller documents one), or name an existing one in `ingress.gateway`",
            ));
            return out;
        }
        Err(e) if forbidden(&e) => {
            out.push(Finding::not_checked(
                "Gateway",
                format!("cannot read Gateway `{shown}` (forbidden)"),
            ));
            return out;
        }
        Err(e) => {
            out.push(Finding::fail("Gateway", e.to_string(), "check the cluster"));
            return out;
        }
    };
    out.push(class_finding(client, &gateway).await);
    out.push(from_condition(
        "Gateway",
        &format!("Gateway `{shown}`"),
        "Programmed",
        &gateway["status"]["conditions"],
        format!(
            "`{shown}` programmed{}",
            address(&gateway)
                .map(|a| format!(" at {a}"))
                .unwrap_or_default()
        ),
        "see `kubectl describe gateway` for what its controller says",
    ));
    out.extend(listener_findings(&gateway, &gateway_ns, ns, &ingress.hosts));
    out.push(route_finding(client, ns, spec, &gw).await);
    out
}

async fn class_finding(client: &Client, gateway: &Value) -> Finding {
    const CHECK: &str = "GatewayClass";
    let name = gateway["spec"]["gatewayClassName"]
        .as_str()
        .unwrap_or_default();
    match Api::<DynamicObject>::all_with(
        client.clone(),
        &gateway_api_resource("GatewayClass", "gatewayclasses"),
    )
    .get_opt(name)
    .await
    {
        Ok(Some(c)) => {
            let c = serde_json::to_value(c).unwrap_or_default();
            let controller = c["spec"]["controllerName"].as_str().unwrap_or_default();
            from_condition(
                CHECK,
                &format!("`{name}` (controller `{controller}`)"),
                "Accepted",
                &c["status"]["conditions"],
                format!("`{name}` accepted by `{controller}`"),
                "install or fix the controller the class names",
            )
        }
        Ok(None) => Finding::fail(
            CHECK,
            format!("the Gateway's class `{name}` does not exist"),
            "install the Gateway controller, which creates its GatewayClass",
        ),
        Err(e) if forbidden(&e) => {
            Finding::not_checked(CHECK, "cannot read GatewayClasses (forbidden)")
        }
        Err(e) => Finding::fail(CHECK, e.to_string(), "check the cluster"),
    }
}

/// The Gateway's first address, as its controller reports it.
pub fn address(gateway: &Value) -> Option<String> {
    gateway["status"]["addresses"]
        .as_array()?
        .first()?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// The address of the Gateway `gw` as its controller reports it, if it can be read.
pub async fn live_address(client: &Client, ns: &str, gw: &GatewayRef) -> Option<String> {
    let gateway_ns = gw.namespace.as_deref().unwrap_or(ns);
    let g = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        gateway_ns,
        &gateway_api_resource("Gateway", "gateways"),
    )
    .get_opt(&gw.name)
    .await
    .ok()??;
    address(&serde_json::to_value(g).ok()?)
}

/// One finding per host: which listener takes it, and whether it lets the route attach.
fn listener_findings(
    gateway: &Value,
    gateway_ns: &str,
    route_ns: &str,
    hosts: &[String],
) -> Vec<Finding> {
    let listeners = gateway["spec"]["listeners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    hosts
        .iter()
        .map(|host| {
            let check = format!("listener for {host}");
            let taking: Vec<&Value> = listeners
                .iter()
                .filter(|l| matches!(l["protocol"].as_str(), Some("HTTP" | "HTTPS")))
                .filter(|l| listener_takes(l["hostname"].as_str(), host))
                .collect();
            if taking.is_empty() {
                return Finding::fail(
                    &check,
                    format!("no HTTP or HTTPS listener of the Gateway takes `{host}`"),
                    format!("add a listener for `{host}` (or with no hostname) to the Gateway"),
                );
            }
            let describe = |l: &Value| {
                format!(
                    "`{}` ({} :{})",
                    l["name"].as_str().unwrap_or_default(),
                    l["protocol"].as_str().unwrap_or_default(),
                    l["port"]
                )
            };
            let allowing: Vec<&&Value> = taking
                .iter()
                .filter(|l| listener_allows(l, gateway_ns, route_ns) != Some(false))
                .collect();
            match allowing.first() {
                None => Finding::fail(
                    &check,
                    format!(
                        "{} take `{host}` but do not let HTTPRoutes of namespace `{route_ns}` attach",
                        taking.iter().map(|l| describe(l)).collect::<Vec<_>>().join(", ")
                    ),
                    "set the listener's `allowedRoutes.namespaces.from` to `All` (or a selector that matches the app's namespace)",
                ),
                Some(_) => {
                    let tls = if allowing.iter().any(|l| l["protocol"] == "HTTPS") {
                        "; TLS by its HTTPS listener"
                    } else {
                        "; plain HTTP (no HTTPS listener takes it)"
                    };
                    let by_selector = allowing
                        .iter()
                        .all(|l| listener_allows(l, gateway_ns, route_ns).is_none());
                    let note = if by_selector {
                        " if the namespace's labels match its selector"
                    } else {
                        ""
                    };
                    Finding::ok(
                        &check,
                        format!(
                            "{}{note}{tls}",
                            allowing.iter().map(|l| describe(l)).collect::<Vec<_>>().join(", ")
                        ),
                    )
                }
            }
        })
        .collect()
}

async fn route_finding(client: &Client, ns: &str, spec: &AppSpec, gw: &GatewayRef) -> Finding {
    const CHECK: &str = "HTTPRoute";
    let name = &spec.name;
    match Api::<DynamicObject>::namespaced_with(
        client.clone(),
        ns,
        &gateway_api_resource("HTTPRoute", "httproutes"),
    )
    .get_opt(name)
    .await
    {
        Ok(Some(r)) => {
            let r = serde_json::to_value(r).unwrap_or_default();
            // What deploy waits on, read the same way: this Gateway's report, on this
            // generation of the route.
            match verdict(&r, gw, ns) {
                Verdict::Accepted => {
                    Finding::ok(CHECK, format!("`{name}` accepted, its backends resolved"))
                }
                Verdict::Refused {
                    condition,
                    reason,
                    message,
                } => Finding::fail(
                    CHECK,
                    format!("`{name}`: `{condition}` is false ({reason}: {message})"),
                    if condition == "ResolvedRefs" {
                        "deploy the app so that its Services exist (`kubectl rails deploy`)"
                    } else {
                        "fix what the Gateway says, then `kubectl rails deploy`"
                    },
                ),
                Verdict::Pending(why) => Finding::not_checked(
                    CHECK,
                    format!(
                        "`{name}`: {why}; some controllers (HAProxy Ingress v0.16) never report"
                    ),
                ),
            }
        }
        Ok(None) => Finding::not_checked(
            CHECK,
            format!("`{name}` does not exist yet: `kubectl rails deploy` makes it"),
        ),
        Err(e) if forbidden(&e) => {
            Finding::not_checked(CHECK, "cannot read HTTPRoutes (forbidden)")
        }
        Err(e) => Finding::fail(CHECK, e.to_string(), "check the cluster"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_listener_takes_its_host_any_host_under_its_wildcard_or_every_host() {
        let cases = [
            (None, "shop.example.com", true),
            (Some("shop.example.com"), "shop.example.com", true),
            (Some("shop.example.com"), "api.example.com", false),
            (Some("*.example.com"), "shop.example.com", true),
            (Some("*.example.com"), "a.shop.example.com", true),
            (Some("*.example.com"), "shop.example.org", false),
            (Some("*.example.com"), "example.com", false),
        ];
        for (listener, host, takes) in cases {
            assert_eq!(listener_takes(listener, host), takes, "{listener:?} {host}");
        }
    }

    #[test]
    fn a_listener_lets_routes_of_its_namespace_all_or_a_selector_attach() {
        let l = |allowed: Value| json!({"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": allowed});
        let cases = [
            (l(json!({})), "gw", "shop", Some(false)),
            (l(json!({})), "shop", "shop", Some(true)),
            (
                l(json!({"namespaces": {"from": "All"}})),
                "gw",
                "shop",
                Some(true),
            ),
            (
                l(json!({"namespaces": {"from": "Selector", "selector": {}}})),
                "gw",
                "shop",
                None,
            ),
            (
                l(json!({"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]})),
                "gw",
                "shop",
                Some(false),
            ),
        ];
        for (listener, gateway_ns, route_ns, allows) in cases {
            assert_eq!(
                listener_allows(&listener, gateway_ns, route_ns),
                allows,
                "{listener}"
            );
        }
    }

    #[test]
    fn a_condition_the_controller_never_wrote_is_not_a_failure() {
        let defaulted = json!([{"type": "Programmed", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller"}]);
        let f = from_condition(
            "Gateway",
            "Gateway `gw/public`",
            "Programmed",
            &defaulted,
            "ok".into(),
            "fix",
        );
        assert_eq!(f.severity, crate::Severity::NotChecked);
        assert!(
            f.detail.contains("Pending: Waiting for controller"),
            "{}",
            f.detail
        );
        let refused = json!([{"type": "Programmed", "status": "False", "reason": "Invalid", "message": "no address"}]);
        let f = from_condition(
            "Gateway",
            "Gateway `gw/public`",
            "Programmed",
            &refused,
            "ok".into(),
            "fix",
        );
        assert_eq!(f.severity, crate::Severity::Fail);
        assert_eq!(
            f.detail,
            "Gateway `gw/public`: `Programmed` is false (Invalid: no address)"
        );
    }
}
