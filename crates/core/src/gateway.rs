//! What a Gateway API controller says of a route, read from the route's status: per parent
//! Gateway, whether it accepted the route (`Accepted`) and found every backend
//! (`ResolvedRefs`), for this generation of the route. Pure: `deploy` waits on it, `doctor` and
//! `status` show it.

use serde_json::Value;

use crate::model::GatewayRef;
use crate::render::GATEWAY_GROUP;

/// What the route's status says of one parent Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `Accepted` and `ResolvedRefs` are both true for this version of the route.
    Accepted,
    /// A condition is false for this version of the route.
    Refused {
        condition: String,
        reason: String,
        message: String,
    },
    /// Nothing yet, or not for this version of the route: why.
    Pending(String),
}

/// What `route`'s status says of `gateway` (a route in `route_ns`).
pub fn verdict(route: &Value, gateway: &GatewayRef, route_ns: &str) -> Verdict {
    let generation = route["metadata"]["generation"].as_i64();
    let gateway_ns = gateway.namespace.as_deref().unwrap_or(route_ns);
    let parents = route["status"]["parents"].as_array();
    let ours = parents.into_iter().flatten().find(|p| {
        let r = &p["parentRef"];
        r["name"] == gateway.name.as_str()
            && r["namespace"].as_str().unwrap_or(route_ns) == gateway_ns
            && r["kind"].as_str().unwrap_or("Gateway") == "Gateway"
            && r["group"].as_str().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
    });
    let Some(parent) = ours else {
        return Verdict::Pending(format!(
            "the Gateway `{}/{}` has not reported on the route yet",
            gateway_ns, gateway.name
        ));
    };
    let conditions = parent["conditions"].as_array().cloned().unwrap_or_default();
    let mut missing = Vec::new();
    for kind in ["Accepted", "ResolvedRefs"] {
        let Some(c) = conditions.iter().find(|c| c["type"] == kind) else {
            missing.push(kind);
            continue;
        };
        let seen = c["observedGeneration"].as_i64();
        if let (Some(seen), Some(generation)) = (seen, generation)
            && seen < generation
        {
            return Verdict::Pending(format!(
                "the Gateway has not seen this version of the route yet (generation {generation}, seen {seen})"
            ));
        }
        match c["status"].as_str() {
            Some("True") => {}
            Some("False") => {
                return Verdict::Refused {
                    condition: kind.to_string(),
                    reason: c["reason"].as_str().unwrap_or_default().to_string(),
                    message: c["message"].as_str().unwrap_or_default().to_string(),
                };
            }
            _ => missing.push(kind),
        }
    }
    if missing.is_empty() {
        Verdict::Accepted
    } else {
        Verdict::Pending(format!("`{}` not true yet", missing.join("`, `")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gw(ns: Option<&str>) -> GatewayRef {
        GatewayRef {
            namespace: ns.map(str::to_string),
            name: "public".into(),
        }
    }

    fn route(generation: i64, parents: Value) -> Value {
        json!({"metadata": {"name": "shop", "generation": generation}, "status": {"parents": parents}})
    }

    fn cond(kind: &str, status: &str, seen: i64) -> Value {
        json!({"type": kind, "status": status, "reason": format!("{kind}Reason"), "message": format!("{kind} says {status}"), "observedGeneration": seen})
    }

    #[test]
    fn the_verdict_reads_this_gateways_conditions_for_this_version_of_the_route() {
        let ours = |conditions: Value| {
            json!([{"parentRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": "gw", "name": "public"},
                    "controllerName": "example.com/gateway", "conditions": conditions}])
        };
        let cases: Vec<(&str, Value, GatewayRef, Verdict)> = vec![
            (
                "both true",
                route(
                    2,
                    ours(json!([
                        cond("Accepted", "True", 2),
                        cond("ResolvedRefs", "True", 2)
                    ])),
                ),
                gw(Some("gw")),
                Verdict::Accepted,
            ),
            (
                "not allowed by the listener",
                route(
                    2,
                    ours(json!([
                        cond("Accepted", "False", 2),
                        cond("ResolvedRefs", "True", 2)
                    ])),
                ),
                gw(Some("gw")),
                Verdict::Refused {
                    condition: "Accepted".into(),
                    reason: "AcceptedReason".into(),
                    message: "Accepted says False".into(),
                },
            ),
            (
                "a backend missing",
                route(
                    1,
                    ours(json!([
                        cond("Accepted", "True", 1),
                        cond("ResolvedRefs", "False", 1)
                    ])),
                ),
                gw(Some("gw")),
                Verdict::Refused {
                    condition: "ResolvedRefs".into(),
                    reason: "ResolvedRefsReason".into(),
                    message: "ResolvedRefs says False".into(),
                },
            ),
            (
                "a refusal of the version before is not this version's",
                route(
                    3,
                    ours(json!([
                        cond("Accepted", "False", 2),
                        cond("ResolvedRefs", "True", 2)
                    ])),
                ),
                gw(Some("gw")),
                Verdict::Pending(
                    "the Gateway has not seen this version of the route yet (generation 3, seen 2)"
                        .into(),
                ),
            ),
            (
                "no status at all",
                json!({"metadata": {"generation": 1}}),
                gw(Some("gw")),
                Verdict::Pending(
                    "the Gateway `gw/public` has not reported on the route yet".into(),
                ),
            ),
            (
                "another Gateway's report",
                route(
                    1,
                    ours(json!([
                        cond("Accepted", "True", 1),
                        cond("ResolvedRefs", "True", 1)
                    ])),
                ),
                gw(Some("other")),
                Verdict::Pending(
                    "the Gateway `other/public` has not reported on the route yet".into(),
                ),
            ),
            (
                "a parent in the route's namespace names none",
                route(
                    1,
                    json!([{"parentRef": {"name": "public"}, "conditions": [cond("Accepted", "True", 1), cond("ResolvedRefs", "True", 1)]}]),
                ),
                gw(None),
                Verdict::Accepted,
            ),
            (
                "accepted, refs not reported yet",
                route(
                    1,
                    ours(json!([
                        cond("Accepted", "True", 1),
                        cond("ResolvedRefs", "Unknown", 1)
                    ])),
                ),
                gw(Some("gw")),
                Verdict::Pending("`ResolvedRefs` not true yet".into()),
            ),
        ];
        for (case, value, gateway, expected) in cases {
            assert_eq!(verdict(&value, &gateway, "shop"), expected, "{case}");
        }
    }
}
