//! `kubectl rails doctor`: is this cluster ready for this app? A checklist, each line ✓ or ✗ with
//! the command that fixes a ✗, or – when it could not be checked. Exits 1 when any line is ✗.

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::IssuerKind;
use kubectl_rails_core::rbac::PERMISSIONS;
use kubectl_rails_core::version::{MIN_SUPPORTED, ServerVersion};
use kubectl_rails_secrets::docker::normalize_server;
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Outcome {
    Ok,
    Fail,
    NotChecked,
}

#[derive(Debug, Clone, Serialize)]
struct Check {
    check: String,
    outcome: Outcome,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn ok(check: &str, detail: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        outcome: Outcome::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        outcome: Outcome::Fail,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn skipped(check: &str, detail: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        outcome: Outcome::NotChecked,
        detail: detail.into(),
        fix: None,
    }
}

fn forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
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

async fn server_version(client: &Client) -> Check {
    let server = match client.apiserver_version().await {
        Ok(v) => v,
        Err(e) => {
            return fail(
                "server version",
                format!("the server did not answer: {e}"),
                "check `--context` and `kubectl get --raw /version`",
            );
        }
    };
    if let Some(why) = ServerVersion::parse(&server.major, &server.minor, &server.git_version)
        .as_ref()
        .and_then(ServerVersion::unsupported)
    {
        return fail(
            "server version",
            why,
            format!(
                "upgrade the cluster to Kubernetes {}.{} or newer",
                MIN_SUPPORTED.0, MIN_SUPPORTED.1
            ),
        );
    }
    let client_version = std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| {
            v["clientVersion"]["gitVersion"]
                .as_str()
                .map(str::to_string)
        });
    match (client_version, minor(&server.git_version)) {
        (Some(c), Some(s)) => match minor(&c) {
            Some(cm) if cm.abs_diff(s) <= 1 => ok(
                "server version",
                format!(
                    "{} (kubectl {c}, within one minor version)",
                    server.git_version
                ),
            ),
            Some(_) => fail(
                "server version",
                format!(
                    "{} is more than one minor version from kubectl {c}",
                    server.git_version
                ),
                format!("install kubectl 1.{s}"),
            ),
            None => ok("server version", server.git_version.clone()),
        },
        _ => ok(
            "server version",
            format!("{} (kubectl's version unknown)", server.git_version),
        ),
    }
}

async fn nodes(client: &Client) -> Check {
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
                ok("nodes Ready", format!("{ready}/{} Ready", list.items.len()))
            } else {
                fail(
                    "nodes Ready",
                    format!("0/{} Ready", list.items.len()),
                    "check the nodes with `kubectl describe nodes`",
                )
            }
        }
        Err(e) if forbidden(&e) => skipped("nodes Ready", "cannot list nodes (forbidden)"),
        Err(e) => fail("nodes Ready", e.to_string(), "check the cluster"),
    }
}

const INSTALL_NGINX: &str = "helm upgrade --install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx --namespace ingress-nginx --create-namespace";

/// The IngressClass check, and the class whose controller to look for.
async fn ingress_class(client: &Client, spec: &AppSpec) -> (Check, Option<IngressClass>) {
    let classes = match Api::<IngressClass>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(l) => l.items,
        Err(e) if forbidden(&e) => {
            return (
                skipped("IngressClass", "cannot list IngressClasses (forbidden)"),
                None,
            );
        }
        Err(e) => {
            return (
                fail("IngressClass", e.to_string(), "check the cluster"),
                None,
            );
        }
    };
    let is_default = |c: &IngressClass| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("ingressclass.kubernetes.io/is-default-class"))
            .is_some_and(|v| v == "true")
    };
    let name = |c: &IngressClass| c.metadata.name.clone().unwrap_or_default();
    if classes.is_empty() {
        return (
            fail(
                "IngressClass",
                "the cluster has no IngressClass: an Ingress gets no address",
                INSTALL_NGINX,
            ),
            None,
        );
    }
    let wanted = spec.ingress.as_ref().and_then(|i| i.class.clone());
    let default = classes.iter().find(|c| is_default(c)).cloned();
    let listed = classes
        .iter()
        .map(|c| {
            if is_default(c) {
                format!("{} (default)", name(c))
            } else {
                name(c)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    match wanted {
        Some(w) => match classes.iter().find(|c| name(c) == w) {
            Some(c) => (
                ok("IngressClass", format!("`{w}` exists ({listed})")),
                Some(c.clone()),
            ),
            None => (
                fail(
                    "IngressClass",
                    format!("the spec asks for `{w}`, the cluster has {listed}"),
                    format!("set `ingress.class` to one of them, or install `{w}`"),
                ),
                None,
            ),
        },
        None => match default {
            Some(d) => (
                ok(
                    "IngressClass",
                    format!("default is `{}` ({listed})", name(&d)),
                ),
                Some(d),
            ),
            None => (
                fail(
                    "IngressClass",
                    format!("no default IngressClass ({listed}) and the spec names none"),
                    "set `ingress.class` in the spec",
                ),
                classes.first().cloned(),
            ),
        },
    }
}

/// Pods of the controller behind a class, found by the labels its usual install sets.
async fn controller(client: &Client, class: &IngressClass) -> Check {
    let controller = class
        .spec
        .as_ref()
        .and_then(|s| s.controller.clone())
        .unwrap_or_default();
    let selector = match controller.as_str() {
        "k8s.io/ingress-nginx" => "app.kubernetes.io/name=ingress-nginx",
        "traefik.io/ingress-controller" => "app.kubernetes.io/name=traefik",
        "haproxy.org/ingress-controller/haproxy" => "app.kubernetes.io/name=kubernetes-ingress",
        other => {
            return skipped(
                "ingress controller",
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
                ok(
                    "ingress controller",
                    format!("{ready} `{controller}` pods running"),
                )
            } else {
                fail(
                    "ingress controller",
                    format!("no running pods of `{controller}`"),
                    INSTALL_NGINX,
                )
            }
        }
        Err(e) if forbidden(&e) => skipped(
            "ingress controller",
            "cannot list pods in all namespaces (forbidden)",
        ),
        Err(e) => fail("ingress controller", e.to_string(), "check the cluster"),
    }
}

async fn cert_manager(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Check> {
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
            Ok(Some(_)) => ok("cert-manager CRDs", format!("`{crd}` installed")),
            Ok(None) => fail(
                "cert-manager CRDs",
                format!("`{crd}` is missing: TLS certificates cannot be issued"),
                install,
            ),
            Err(e) if forbidden(&e) => skipped("cert-manager CRDs", "cannot read CRDs (forbidden)"),
            Err(e) => fail("cert-manager CRDs", e.to_string(), "check the cluster"),
        });
    }
    if let Some(issuer) = &ingress.issuer {
        let kind = match ingress.issuer_kind {
            IssuerKind::ClusterIssuer => "ClusterIssuer",
            IssuerKind::Issuer => "Issuer",
        };
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", kind));
        let api: Api<DynamicObject> = if kind == "Issuer" {
            Api::namespaced_with(client.clone(), ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        out.push(match api.get_opt(issuer).await {
            Ok(Some(_)) => ok(&format!("{kind} `{issuer}`"), "exists"),
            Ok(None) => fail(
                &format!("{kind} `{issuer}`"),
                "does not exist",
                format!("create the {kind} `{issuer}` (see cert-manager's ACME docs)"),
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => fail(
                &format!("{kind} `{issuer}`"),
                "cert-manager is not installed",
                install,
            ),
            Err(e) if forbidden(&e) => skipped(&format!("{kind} `{issuer}`"), "forbidden"),
            Err(e) => fail(
                &format!("{kind} `{issuer}`"),
                e.to_string(),
                "check the cluster",
            ),
        });
    }
    out
}

async fn pull_secret(client: &Client, ns: &str, spec: &AppSpec) -> Option<Check> {
    let registry = spec.registry.as_ref()?;
    let name = &registry.pull_secret;
    let fix = format!(
        "kubectl rails secrets registry --server {}",
        registry.server
    );
    let image_host = spec.image.registry_host().map(normalize_server);
    Some(
        match Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
        {
            Ok(Some(s)) => {
                let config = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get(".dockerconfigjson"))
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b.0).ok());
                let servers: Vec<String> = config
                    .as_ref()
                    .and_then(|c| c["auths"].as_object())
                    .map(|a| a.keys().map(|k| normalize_server(k)).collect())
                    .unwrap_or_default();
                let wanted = image_host.unwrap_or_else(|| normalize_server(&registry.server));
                if servers.contains(&wanted) {
                    ok(
                        "pull secret",
                        format!("`{name}` has credentials for `{wanted}`"),
                    )
                } else {
                    fail(
                        "pull secret",
                        format!(
                            "`{name}` has credentials for {servers:?}, not for the image's registry `{wanted}`"
                        ),
                        fix,
                    )
                }
            }
            Ok(None) => fail(
                "pull secret",
                format!("`{name}` does not exist in namespace `{ns}`"),
                fix,
            ),
            Err(e) if forbidden(&e) => skipped("pull secret", "cannot read Secrets (forbidden)"),
            Err(e) => fail("pull secret", e.to_string(), "check the cluster"),
        },
    )
}

async fn app_secret(client: &Client, ns: &str, spec: &AppSpec) -> Option<Check> {
    if spec.secrets.is_empty() {
        return None;
    }
    let name = spec.secret_name();
    Some(
        match Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt(&name)
            .await
        {
            Ok(found) => {
                let data = found.and_then(|s| s.data).unwrap_or_default();
                let missing = spec.missing_secrets(&data);
                if missing.is_empty() {
                    ok(
                        "app Secret",
                        format!("`{name}` has all {} keys", spec.secrets.len()),
                    )
                } else {
                    fail(
                        "app Secret",
                        format!("`{name}` lacks {}", missing.join(", ")),
                        format!("kubectl rails secrets set {}", missing.join(" ")),
                    )
                }
            }
            Err(e) if forbidden(&e) => skipped("app Secret", "cannot read Secrets (forbidden)"),
            Err(e) => fail("app Secret", e.to_string(), "check the cluster"),
        },
    )
}

async fn dns(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Check> {
    let Some(ingress) = &spec.ingress else {
        return vec![];
    };
    let address = match Api::<Ingress>::namespaced(client.clone(), ns)
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
    };
    let mut out = Vec::new();
    for host in &ingress.hosts {
        let check = format!("DNS {host}");
        let Some(address) = &address else {
            out.push(skipped(
                &check,
                "not checked: the Ingress has no address yet",
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
                    ok(&check, format!("resolves to {}", ips.join(", ")))
                } else {
                    fail(
                        &check,
                        format!(
                            "resolves to {}, not the Ingress address {address}",
                            ips.join(", ")
                        ),
                        format!("point an A record for {host} at {address}"),
                    )
                }
            }
            Ok(Err(e)) => skipped(&check, format!("not checked: no DNS answer ({e})")),
            Err(_) => skipped(
                &check,
                "not checked: DNS did not answer in time (no network?)",
            ),
        });
    }
    out
}

async fn rbac(client: &Client, ns: &str) -> Check {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for p in PERMISSIONS {
        let (resource, subresource) = match p.resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (p.resource, None),
        };
        for verb in p.verbs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(ns.to_string()),
                        verb: Some(verb.to_string()),
                        group: Some(p.group.to_string()),
                        resource: Some(resource.to_string()),
                        subresource: subresource.clone(),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            match api.create(&PostParams::default(), &review).await {
                Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
                Ok(_) => missing.push(format!("{verb} {}", p.resource_name())),
                Err(e) => {
                    return fail(
                        "RBAC",
                        format!("cannot ask the server: {e}"),
                        "check the cluster",
                    );
                }
            }
        }
    }
    if missing.is_empty() {
        ok(
            "RBAC",
            format!("every permission deploy, exec and scale use is granted in `{ns}`"),
        )
    } else {
        fail(
            "RBAC",
            format!("missing in `{ns}`: {}", missing.join(", ")),
            format!(
                "ask an admin to run `kubectl rails rbac -n {ns} | kubectl apply -f -` and bind it to you"
            ),
        )
    }
}

/// The app's volume: a StorageClass to provision it (the named one, else the default), or a
/// claim already bound; and the access mode it needs.
async fn storage(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Check> {
    let Some(volume) = &spec.volume else {
        return vec![];
    };
    let need = format!(
        "the app needs {} of {} at `{}`{}",
        volume.size,
        volume.access_mode.as_str(),
        volume.mount_path,
        if spec.single_node_volume().is_some() {
            " (one node at a time: its pods share a node)"
        } else {
            ""
        }
    );
    let claim = format!("{}-{}", spec.name, volume.name);
    if let Ok(Some(pvc)) = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(&claim)
        .await
        && pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    {
        return vec![ok("storage", format!("claim `{claim}` is bound; {need}"))];
    }
    let classes = match Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(l) => l.items,
        Err(e) if forbidden(&e) => {
            return vec![skipped(
                "storage",
                format!("cannot list StorageClasses (forbidden); {need}"),
            )];
        }
        Err(e) => return vec![fail("storage", e.to_string(), "check the cluster")],
    };
    let name = |c: &StorageClass| c.metadata.name.clone().unwrap_or_default();
    let is_default = |c: &StorageClass| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
            .is_some_and(|v| v == "true")
    };
    let listed = classes.iter().map(name).collect::<Vec<_>>().join(", ");
    let check = match &volume.storage_class {
        Some(wanted) if classes.iter().any(|c| &name(c) == wanted) => {
            ok("storage", format!("StorageClass `{wanted}` exists; {need}"))
        }
        Some(wanted) => fail(
            "storage",
            format!(
                "the spec asks for StorageClass `{wanted}`, the cluster has {}; {need}",
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed
                }
            ),
            "set `volume.storage_class` to one the cluster has, or install a provisioner for it",
        ),
        None => match classes.iter().find(|c| is_default(c)) {
            Some(d) => ok(
                "storage",
                format!("default StorageClass `{}`; {need}", name(d)),
            ),
            None => fail(
                "storage",
                format!(
                    "no default StorageClass, so claim `{claim}` stays Pending unless a PersistentVolume matches it; {need}"
                ),
                "name one in `volume.storage_class`, mark one default (`storageclass.kubernetes.io/is-default-class`), or create a matching PersistentVolume",
            ),
        },
    };
    vec![check]
}

pub(crate) async fn run(settings: &Settings, printer: &Printer) -> anyhow::Result<()> {
    let format = settings.output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let spec = settings.load_spec(printer)?.spec;
    let target = settings.target_any_version(Some(&spec)).await?;
    let client = &target.conn.client;
    let ns = &target.namespace;
    let mut checks = vec![server_version(client).await, nodes(client).await];
    let (class_check, class) = ingress_class(client, &spec).await;
    checks.push(class_check);
    if let Some(class) = class {
        checks.push(controller(client, &class).await);
    }
    checks.extend(cert_manager(client, ns, &spec).await);
    checks.extend(pull_secret(client, ns, &spec).await);
    checks.extend(app_secret(client, ns, &spec).await);
    checks.extend(storage(client, ns, &spec).await);
    checks.extend(dns(client, ns, &spec).await);
    checks.push(rbac(client, ns).await);

    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&checks)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&checks)?)?,
        _ => {
            let mut text = format!(
                "Checking `{}` in namespace `{ns}` on context `{}`\n\n",
                spec.name, target.conn.context
            );
            for c in &checks {
                let mark = match c.outcome {
                    Outcome::Ok => "✓",
                    Outcome::Fail => "✗",
                    Outcome::NotChecked => "–",
                };
                text.push_str(&format!("{mark} {}: {}\n", c.check, c.detail));
                if let Some(fix) = &c.fix {
                    text.push_str(&format!("    fix: {fix}\n"));
                }
            }
            printer.out(&text)?;
        }
    }
    let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
    if failed > 0 {
        return Err(exit::failure(
            format!("{failed} of {} checks failed", checks.len()),
            Some("run the `fix:` commands above, then `kubectl rails doctor` again".into()),
        ));
    }
    Ok(())
}
