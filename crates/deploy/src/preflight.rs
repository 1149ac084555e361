//! Before anything changes: what the rollout needs from the namespace. The questions are
//! doctor's ([`kubectl_rails_doctor`]); here their answers become deploy's errors and warnings.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::digest::DIGEST_KEY;
use kubectl_rails_doctor::{self as doctor, ClassChoice};
use kubectl_rails_kube::{KubeError, api_err};

use crate::{DeployError, DeployRequest, Reporter};

/// Adds a random digest key to an app Secret written without one (by `kubectl create secret`).
pub(crate) async fn with_digest_key(
    secrets: &Api<Secret>,
    name: &str,
    mut data: BTreeMap<String, ByteString>,
) -> Result<BTreeMap<String, ByteString>, DeployError> {
    if data.get(DIGEST_KEY).is_some_and(|k| !k.0.is_empty()) {
        return Ok(data);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| DeployError::Preflight {
        message: format!("no randomness from the operating system for the app's digest key: {e}"),
        hint: None,
    })?;
    let value = ByteString(key);
    let patch = serde_json::json!({ "data": { DIGEST_KEY: &value } });
    secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_err(format!("add the digest key to Secret `{name}`")))?;
    data.insert(DIGEST_KEY.into(), value);
    Ok(data)
}

/// Checks what the rollout needs before anything changes: the app Secret (whose data it
/// returns, for the digest), the pull secret, the IngressClass and the volume's storage, read
/// all at once.
pub(crate) async fn preflight(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<Option<BTreeMap<String, ByteString>>, DeployError> {
    let (data, pull, class, ()) = tokio::join!(
        app_secret_data(client, req),
        pull_secret_exists(client, req),
        ingress_class_check(client, req, reporter),
        storage_check(client, req, reporter),
    );
    // Every problem at once, always in the same order.
    let mut problems = Vec::new();
    let data = data.unwrap_or_else(|e| {
        problems.push(e);
        None
    });
    if let Err(e) = pull {
        problems.push(e);
    }
    if let Err(e) = class {
        problems.push(e);
    }
    if problems.len() > 1
        && problems
            .iter()
            .all(|p| matches!(p, DeployError::Preflight { .. }))
    {
        let (mut messages, mut hints) = (Vec::new(), Vec::new());
        for p in problems {
            if let DeployError::Preflight { message, hint } = p {
                messages.push(message);
                hints.extend(hint);
            }
        }
        return Err(DeployError::Preflight {
            message: messages.join("; and "),
            hint: Some(hints.join("; ")),
        });
    }
    match problems.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(data),
    }
}

/// The app Secret's data, after checking it holds every key the spec names.
async fn app_secret_data(
    client: &Client,
    req: &DeployRequest,
) -> Result<Option<BTreeMap<String, ByteString>>, DeployError> {
    let (spec, ns) = (&req.spec, &req.namespace);
    let Some(secret) = doctor::app_secret(client, ns, spec).await? else {
        return Ok(None);
    };
    let name = &secret.name;
    let required: Vec<&str> = spec.secrets.required().map(String::as_str).collect();
    let Some(data) = secret.data else {
        if required.is_empty() {
            // Every key is optional: the pods start without the Secret.
            return Ok(Some(BTreeMap::new()));
        }
        return Err(DeployError::Preflight {
            message: format!(
                "Secret `{name}` does not exist in namespace `{ns}`; the app needs {}",
                required.join(", ")
            ),
            hint: Some(format!(
                "set them with `kubectl rails secrets set {}`, or import a .env with `kubectl rails secrets import`",
                required.join(" ")
            )),
        });
    };
    if !secret.missing.is_empty() {
        return Err(DeployError::Preflight {
            message: format!("Secret `{name}` lacks {}", secret.missing.join(", ")),
            hint: Some(format!(
                "set them with `kubectl rails secrets set {}`",
                secret.missing.join(" ")
            )),
        });
    }
    Ok(Some(data))
}

async fn pull_secret_exists(client: &Client, req: &DeployRequest) -> Result<(), DeployError> {
    let ns = &req.namespace;
    let Some(pull) = doctor::pull_secret(client, ns, &req.spec).await? else {
        return Ok(());
    };
    if pull.servers.is_none() {
        let registry = &pull.registry;
        return Err(DeployError::Preflight {
            message: format!(
                "the image is private (registry `{}`), but its pull secret `{}` is missing in namespace `{ns}`",
                registry.server, registry.pull_secret
            ),
            hint: Some(format!(
                "create it with `kubectl rails secrets registry --server {}`",
                registry.server
            )),
        });
    }
    Ok(())
}

/// Warns when the Ingress would get no address; only a failed read (not a missing class) stops
/// the deploy.
async fn ingress_class_check(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<(), DeployError> {
    let Some(ingress) = &req.spec.ingress else {
        return Ok(());
    };
    // Behind a Gateway there is no Ingress: deploy waits for the Gateway to accept the route.
    if ingress.gateway.is_some() {
        return Ok(());
    }
    match doctor::ingress_classes(client).await {
        Ok(classes) => {
            match doctor::choose_class(&classes, ingress.class.as_deref()) {
                ClassChoice::NamedMissing(class) => reporter.warn(&format!(
                    "IngressClass `{class}` does not exist: the Ingress will get no address until a controller for it is installed"
                )),
                ClassChoice::NoneInCluster => reporter.warn(
                    "the cluster has no IngressClass: the Ingress will get no address until a controller is installed (for example ingress-nginx: `helm install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx -n ingress-nginx --create-namespace`)",
                ),
                ClassChoice::Named(_) | ClassChoice::Default(_) | ClassChoice::NoDefault => {}
            }
            Ok(())
        }
        Err(e) if e.is_forbidden() => {
            reporter.note("cannot list IngressClasses (forbidden); skipped that check");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Warns when the app's volume has nothing to provision or bind it (doctor's storage check).
/// Only a warning: a PersistentVolume made by hand may still bind the claim, and the wait
/// gives an unbound claim its grace and then names it.
async fn storage_check(client: &Client, req: &DeployRequest, reporter: &dyn Reporter) {
    for finding in doctor::storage(client, &req.namespace, &req.spec).await {
        if finding.severity == doctor::Severity::Fail {
            let fix = finding.fix.map(|f| format!(" ({f})")).unwrap_or_default();
            reporter.warn(&format!("volume: {}{fix}", finding.detail));
        }
    }
}

/// What a deploy needs from the user that the namespace lacks: secret keys and the pull secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MissingInputs {
    /// Keys the spec names that the app Secret lacks (all of them when it does not exist).
    pub secret_keys: Vec<String>,
    /// The pull secret the spec names, when it does not exist.
    pub pull_secret: Option<kubectl_rails_core::model::RegistrySpec>,
}

impl MissingInputs {
    pub fn is_empty(&self) -> bool {
        self.secret_keys.is_empty() && self.pull_secret.is_none()
    }

    /// Everything missing, as in a namespace that does not exist yet.
    pub fn all(spec: &AppSpec) -> Self {
        Self {
            secret_keys: spec
                .secrets
                .required()
                .filter(|k| !spec.accessory_urls().contains_key(k.as_str()))
                .cloned()
                .collect(),
            pull_secret: spec.registry.clone(),
        }
    }
}

/// Reads what the namespace holds of the app Secret's keys and the pull secret (names only).
pub async fn missing_inputs(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<MissingInputs, KubeError> {
    let mut out = MissingInputs::default();
    if let Some(secret) = doctor::app_secret(client, ns, spec).await? {
        out.secret_keys = secret.missing;
    }
    if let Some(pull) = doctor::pull_secret(client, ns, spec).await?
        && pull.servers.is_none()
    {
        out.pull_secret = Some(pull.registry);
    }
    Ok(out)
}
