//! How requests reach web: its Service, and the Ingress with its TLS and nginx annotations.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as K8sIngressSpec, IngressTLS, ServiceBackendPort,
};

use super::{Renderer, tls_secret_name};

impl Renderer<'_> {
    pub(super) fn service(&self) -> Service {
        self.http_service("web")
    }

    pub(super) fn ingress(&self) -> Option<Ingress> {
        let ingress = self.spec.ingress.as_ref()?;
        // In maintenance the hosts go to the page, web keeps running behind its Service.
        let to = if self.inputs.maintenance.is_some() {
            super::MAINTENANCE
        } else {
            "web"
        };
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
        // The asset path goes to the asset server, which holds every kept release's assets;
        // in maintenance everything goes to the page.
        let assets_path = match (&self.spec.assets, &self.inputs.maintenance) {
            (Some(a), None) => Some(a.path.trim_end_matches('/').to_string()),
            _ => None,
        };
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
