//! The way in: an IngressClass for the app's Ingress, a running controller behind it, and
//! cert-manager with the issuer the spec names when it asks for TLS.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::IssuerKind;
use kubectl_rails_kube::{KubeError, api_err};

use crate::{Finding, forbidden};

const INSTALL_NGINX: &str = "helm upgrade --install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx --namespace ingress-nginx --create-namespace";

/// An IngressClass of the cluster, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressClassInfo {
    pub name: String,
    /// Annotated `ingressclass.kubernetes.io/is-default-class: "true"`.
    pub default: bool,
    /// `spec.controller`, such as `k8s.io/ingress-nginx`.
    pub controller: Option<String>,
}

/// The cluster's IngressClasses.
pub async fn ingress_classes(client: &Client) -> Result<Vec<IngressClassInfo>, KubeError> {
    let list = Api::<IngressClass>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_err("list IngressClasses"))?;
    Ok(list
        .items
        .into_iter()
        .map(|c| IngressClassInfo {
            default: c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("ingressclass.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true"),
            name: c.metadata.name.unwrap_or_default(),
            controller: c.spec.and_then(|s| s.controller),
        })
        .collect())
}

/// Which class the app's Ingress gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassChoice {
    /// The spec names a class, and the cluster has it.
    Named(IngressClassInfo),
    /// The spec names a class the cluster lacks (or the cluster has none at all).
    NamedMissing(String),
    /// The spec names none: the cluster's default.
    Default(IngressClassInfo),
    /// The spec names none, and the cluster has no class.
    NoneInCluster,
    /// The spec names none, and no class of the cluster is the default.
    NoDefault,
}

/// The class `wanted` (the spec's `ingress.class`) picks among `classes`.
pub fn choose_class(classes: &[IngressClassInfo], wanted: Option<&str>) -> ClassChoice {
    match wanted {
        Some(w) => match classes.iter().find(|c| c.name == w) {
            Some(c) => ClassChoice::Named(c.clone()),
            None => ClassChoice::NamedMissing(w.to_string()),
        },
        None if classes.is_empty() => ClassChoice::NoneInCluster,
        None => match classes.iter().find(|c| c.default) {
            Some(d) => ClassChoice::Default(d.clone()),
            None => ClassChoice::NoDefault,
        },
    }
}

/// The IngressClass check, and the class whose controller to look for.
pub async fn ingress_class(client: &Client, spec: &AppSpec) -> (Finding, Option<IngressClassInfo>) {
    const CHECK: &str = "IngressClass";
    let classes = match ingress_classes(client).await {
        Ok(c) => c,
        Err(e) => {
            return (
                Finding::unread(CHECK, &e, "cannot list IngressClasses (forbidden)"),
                None,
            );
        }
    };
    if classes.is_empty() {
        return (
            Finding::fail(
                CHECK,
                "the cluster has no IngressClass: an Ingress gets no address",
                INSTALL_NGINX,
            ),
            None,
        );
    }
    let listed = classes
        .iter()
        .map(|c| {
            if c.default {
                format!("{} (default)", c.name)
            } else {
                c.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let wanted = spec.ingress.as_ref().and_then(|i| i.class.as_deref());
    match choose_class(&classes, wanted) {
        ClassChoice::Named(c) => (
            Finding::ok(CHECK, format!("`{}` exists ({listed})", c.name)),
            Some(c),
        ),
        ClassChoice::NamedMissing(w) => (
            Finding::fail(
                CHECK,
                format!("the spec asks for `{w}`, the cluster has {listed}"),
                format!("set `ingress.class` to one of them, or install `{w}`"),
            ),
            None,
        ),
        ClassChoice::Default(d) => (
            Finding::ok(CHECK, format!("default is `{}` ({listed})", d.name)),
            Some(d),
        ),
        ClassChoice::NoneInCluster | ClassChoice::NoDefault => (
            Finding::fail(
                CHECK,
                format!("no default IngressClass ({listed}) and the spec names none"),
                "set `ingress.class` in the spec",
            ),
            classes.first().cloned(),
        ),
    }
}

/// Pods of the controller behind a class, found by the labels its usual install sets.
pub async fn controller(client: &Client, class: &IngressClassInfo) -> Finding {
    const CHECK: &str = "ingress controller";
    let controller = class.controller.clone().unwrap_or_default();
    let selector = match controller.as_str() {
        "k8s.io/ingress-nginx" => "app.kubernetes.io/name=ingress-nginx",
        "traefik.io/ingress-controller" => "app.kubernetes.io/name=traefik",
        "haproxy.org/ingress-controller/haproxy" => "app.kubernetes.io/name=kubernetes-ingress",
        other => {
            return Finding::not_checked(
                CHECK,
                format!("controller `{other}` is not one doctor knows how to find"),
            );
        }
    };
    match Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels(selector))
        .await
    {
        Ok(l) => {
            let ready = l
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            if ready > 0 {
                Finding::ok(CHECK, format!("{ready} `{controller}` pods running"))
            } else {
                Finding::fail(
                    CHECK,
                    format!("no running pods of `{controller}`"),
                    INSTALL_NGINX,
                )
            }
        }
        Err(e) if forbidden(&e) => {
            Finding::not_checked(CHECK, "cannot list pods in all namespaces (forbidden)")
        }
        Err(e) => Finding::fail(CHECK, e.to_string(), "check the cluster"),
    }
}

/// With TLS on: cert-manager's CRDs, and the issuer the spec names.
pub async fn cert_manager(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Finding> {
    const CRDS: &str = "cert-manager CRDs";
    let Some(ingress) = spec.ingress.as_ref().filter(|i| i.tls) else {
        return vec![];
    };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let install = "helm upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io --namespace cert-manager --create-namespace --set crds.enabled=true";
    let mut out = Vec::new();
    for crd in [
        "certificates.cert-manager.io",
        "clusterissuers.cert-manager.io",
    ] {
        out.push(match crds.get_opt(crd).await {
            Ok(Some(_)) => Finding::ok(CRDS, format!("`{crd}` installed")),
            Ok(None) => Finding::fail(
                CRDS,
                format!("`{crd}` is missing: TLS certificates cannot be issued"),
                install,
            ),
            Err(e) if forbidden(&e) => Finding::not_checked(CRDS, "cannot read CRDs (forbidden)"),
            Err(e) => Finding::fail(CRDS, e.to_string(), "check the cluster"),
        });
    }
    if let Some(issuer) = &ingress.issuer {
        let kind = match ingress.issuer_kind {
            IssuerKind::ClusterIssuer => "ClusterIssuer",
            IssuerKind::Issuer => "Issuer",
        };
        let check = format!("{kind} `{issuer}`");
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", kind));
        let api: Api<DynamicObject> = if kind == "Issuer" {
            Api::namespaced_with(client.clone(), ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        out.push(match api.get_opt(issuer).await {
            Ok(Some(_)) => Finding::ok(&check, "exists"),
            Ok(None) => Finding::fail(
                &check,
                "does not exist",
                format!("create the {kind} `{issuer}` (see cert-manager's ACME docs)"),
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Finding::fail(&check, "cert-manager is not installed", install)
            }
            Err(e) if forbidden(&e) => Finding::not_checked(&check, "forbidden"),
            Err(e) => Finding::fail(&check, e.to_string(), "check the cluster"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, default: bool) -> IngressClassInfo {
        IngressClassInfo {
            name: name.into(),
            default,
            controller: None,
        }
    }

    #[test]
    fn the_named_class_else_the_default() {
        let classes = [class("haproxy", true), class("nginx", false)];
        assert_eq!(
            choose_class(&classes, Some("nginx")),
            ClassChoice::Named(class("nginx", false))
        );
        assert_eq!(
            choose_class(&classes, Some("traefik")),
            ClassChoice::NamedMissing("traefik".into())
        );
        assert_eq!(
            choose_class(&classes, None),
            ClassChoice::Default(class("haproxy", true))
        );
        assert_eq!(choose_class(&classes[1..], None), ClassChoice::NoDefault);
        assert_eq!(choose_class(&[], None), ClassChoice::NoneInCluster);
        assert_eq!(
            choose_class(&[], Some("nginx")),
            ClassChoice::NamedMissing("nginx".into())
        );
    }
}
