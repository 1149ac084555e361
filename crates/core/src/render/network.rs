//! How requests reach web: its Service, and either the Ingress with its TLS and nginx
//! annotations or, with `ingress.gateway`, an HTTPRoute of the Gateway API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, ServiceBackendPort,
};

use serde_json::{Value, json};

use super::{Renderer, tls_secret_name};

/// The Gateway API's group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

impl Renderer<'_> {
    pub(super) fn service(&self) -> Service {
        self.http_service("web")
    }

    /// The maintenance page in maintenance, web otherwise.
    fn front_component(&self) -> &'static str {
        if self.inputs.maintenance.is_some() {
            super::MAINTENANCE
        } else {
            "web"
        }
    }

    /// The asset path routed to the asset server, outside maintenance (where everything goes
    /// to the page).
    fn routed_assets_path(&self) -> Option<String> {
        match (&self.spec.assets, &self.inputs.maintenance) {
            (Some(a), None) => Some(a.path.trim_end_matches('/').to_string()),
            _ => None,
        }
    }

    /// The HTTPRoute that attaches the app's hosts to `ingress.gateway`: the asset path to the
    /// asset server, the rest to web (or to the page in maintenance). TLS is the Gateway
    /// listener's, so the route carries none.
    pub(super) fn route(&self) -> Option<Value> {
        let ingress = self.spec.ingress.as_ref()?;
        let gateway = ingress.gateway_ref()?;
        let mut parent = json!({
            "group": GATEWAY_GROUP,
            "kind": "Gateway",
            "name": gateway.name,
        });
        if let Some(ns) = &gateway.namespace {
            parent["namespace"] = json!(ns);
        }
        let timeouts = ingress
            .timeout
            .map(|seconds| json!({"request": format!("{seconds}s")}));
        let rule = |path: &str, component: &str| {
            let mut rule = json!({
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "backendRefs": [{
                    "kind": "Service",
                    "name": self.spec.deployment_name(component),
                    "port": 80,
                }],
            });
            if let Some(t) = &timeouts {
                rule["timeouts"] = t.clone();
            }
            rule
        };
        let rules: Vec<Value> = self
            .routed_assets_path()
            .map(|path| rule(&path, super::ASSETS))
            .into_iter()
            .chain([rule("/", self.front_component())])
            .collect();
        Some(json!({
            "apiVersion": format!("{GATEWAY_GROUP}/v1"),
            "kind": "HTTPRoute",
            "metadata": self.meta(&self.spec.name, "web"),
            "spec": {
                "parentRefs": [parent],
                "hostnames": ingress.hosts,
                "rules": rules,
            },
        }))
    }

    pub(super) fn ingress(&self) -> Option<Ingress> {
        let ingress = self.spec.ingress.as_ref()?;
        if ingress.gateway.is_some() {
            return None;
        }
        // In maintenance the hosts go to the page, web keeps running behind its Service.
        let to = self.front_component();
        let backend = IngressBackend {
            service: Some(IngressServiceBackend {
                name: self.spec.deployment_name(to),
                port: Some(ServiceBackendPort {
                    name: Some("http".into()),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        };
        // The asset path goes to the asset server, which holds every kept release's assets.
        let assets_path = self.routed_assets_path();
        let assets_backend = IngressBackend {
            service: Some(IngressServiceBackend {
                name: self.spec.deployment_name(super::ASSETS),
                port: Some(ServiceBackendPort {
                    name: Some("http".into()),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        };
        let rules = ingress
            .hosts
            .iter()
            .map(|host| IngressRule {
                host: Some(host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: assets_path
                        .iter()
                        .map(|path| HTTPIngressPath {
                            path: Some(path.to_string()),
                            path_type: "Prefix".into(),
                            backend: assets_backend.clone(),
                        })
                        .chain([HTTPIngressPath {
                            path: Some("/".into()),
                            path_type: "Prefix".into(),
                            backend: backend.clone(),
                        }])
                        .collect(),
                }),
            })
            .collect();
        let mut annotations = BTreeMap::new();
        if let (true, Some(issuer)) = (ingress.tls, &ingress.issuer) {
            annotations.insert(ingress.issuer_kind.annotation().to_string(), issuer.clone());
        }
        if ingress.www_redirect {
            annotations.insert(
                "nginx.ingress.kubernetes.io/from-to-www-redirect".into(),
                "true".into(),
            );
        }
        if let Some(size) = &ingress.body_size {
            annotations.insert(
                "nginx.ingress.kubernetes.io/proxy-body-size".into(),
                size.clone(),
            );
        }
        if let Some(timeout) = ingress.timeout {
            for key in ["proxy-read-timeout", "proxy-send-timeout"] {
                annotations.insert(
                    format!("nginx.ingress.kubernetes.io/{key}"),
                    timeout.to_string(),
                );
            }
        }
        let mut meta = self.meta(&self.spec.name, "web");
        meta.annotations = (!annotations.is_empty()).then_some(annotations);
        // One certificate per host, so that adding a host never reissues the others; a www
        // redirect needs the www name on the apex's certificate.
        let tls = ingress.tls.then(|| {
            ingress
                .hosts
                .iter()
                .map(|host| {
                    let mut hosts = vec![host.clone()];
                    if ingress.www_redirect && !host.starts_with("www.") && !host.starts_with("*.")
                    {
                        hosts.push(format!("www.{host}"));
                    }
                    IngressTLS {
                        hosts: Some(hosts),
                        secret_name: Some(tls_secret_name(&self.spec.name, host)),
                    }
                })
                .collect()
        });
        Some(Ingress {
            metadata: meta,
            spec: Some(K8sIngressSpec {
                ingress_class_name: ingress.class.clone(),
                rules: Some(rules),
                tls,
                ..K8sIngressSpec::default()
            }),
            ..Ingress::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::AppSpec;
    use crate::render::test_support::spec;
    use crate::render::{RenderInputs, render};

    fn ingress_yaml(spec: &AppSpec) -> String {
        let release = render(spec, &RenderInputs::default());
        let ingress = release
            .objects
            .iter()
            .find(|o| o.kind == "Ingress")
            .unwrap();
        serde_saphyr::to_string(&ingress.value).unwrap()
    }

    #[test]
    fn tls_with_cert_manager_one_secret_per_host_and_www_redirect() {
        let s = spec(
            "ingress:\n  hosts: [shop.example.com, api.example.com]\n  class: nginx\n  tls: true\n  issuer: letsencrypt-prod\n  www_redirect: true\n  body_size: 25m\n  timeout: 60\n",
        );
        insta::assert_snapshot!("ingress_tls", ingress_yaml(&s));
    }

    fn route_yaml(spec: &AppSpec, inputs: &RenderInputs) -> String {
        let release = render(spec, inputs);
        assert!(
            !release.objects.iter().any(|o| o.kind == "Ingress"),
            "a Gateway's app renders no Ingress"
        );
        let route = release
            .objects
            .iter()
            .find(|o| o.kind == "HTTPRoute")
            .expect("an HTTPRoute");
        assert_eq!(route.stage, crate::render::Stage::Workload);
        serde_saphyr::to_string(&route.value).unwrap()
    }

    #[test]
    fn a_gateway_gets_an_http_route_with_the_asset_path_before_web() {
        let s = spec(
            "workdir: /rails\nassets: {}\ningress:\n  hosts: [shop.example.com, www.shop.example.com]\n  gateway: gateway-system/public\n  timeout: 60\n",
        );
        insta::assert_snapshot!("http_route", route_yaml(&s, &RenderInputs::default()));
    }

    #[test]
    fn an_http_route_in_maintenance_sends_everything_to_the_page() {
        let s = spec(
            "workdir: /rails\nassets: {}\ningress:\n  hosts: [shop.example.com]\n  gateway: public\n",
        );
        let inputs = RenderInputs {
            maintenance: Some(crate::render::Maintenance {
                page: "<p>back soon</p>".into(),
                since: "2026-12-06T00:00:00Z".into(),
                message: None,
            }),
            ..RenderInputs::default()
        };
        let y = route_yaml(&s, &inputs);
        let route: serde_json::Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(
            route["spec"]["rules"],
            serde_json::json!([{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"kind": "Service", "name": "shop-maintenance", "port": 80}],
            }])
        );
        // A Gateway in the app's namespace: the parent names none.
        assert_eq!(
            route["spec"]["parentRefs"],
            serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}])
        );
        assert!(!y.contains("timeouts"), "{y}");
    }

    #[test]
    fn namespaced_issuer_and_plain_http() {
        let s = spec(
            "ingress:\n  hosts: [shop.example.com]\n  tls: true\n  issuer: shop-ca\n  issuer_kind: Issuer\n",
        );
        let y = ingress_yaml(&s);
        assert!(y.contains("cert-manager.io/issuer: shop-ca"), "{y}");
        assert!(!y.contains("cluster-issuer"), "{y}");
        let plain = ingress_yaml(&spec("ingress:\n  hosts: [shop.example.com]\n"));
        assert!(!plain.contains("tls:"), "{plain}");
        assert!(!plain.contains("annotations"), "{plain}");
    }
}
