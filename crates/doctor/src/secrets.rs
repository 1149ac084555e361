//! What the app's pods need from Secrets: every key the spec names in the app Secret, and a pull
//! secret with credentials for the image's registry.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::RegistrySpec;
use kubectl_rails_kube::{KubeError, api_err};
use kubectl_rails_secrets::docker::normalize_server;

use crate::Finding;

/// The app Secret, measured against the keys the spec names.
#[derive(Debug, Clone)]
pub struct AppSecret {
    pub name: String,
    /// Its data, for deploy's digest; `None` when the Secret does not exist. Never shown.
    pub data: Option<BTreeMap<String, ByteString>>,
    /// Keys the spec names that it lacks (all of them when it does not exist).
    pub missing: Vec<String>,
}

/// Reads the app Secret; `None` when the spec names no secret keys.
pub async fn app_secret(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<AppSecret>, KubeError> {
    if spec.secrets.is_empty() {
        return Ok(None);
    }
    let name = spec.secret_name();
    let data = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&name)
        .await
        .map_err(api_err(format!("read Secret `{name}` in namespace `{ns}`")))?
        .map(|s| s.data.unwrap_or_default());
    let missing = spec
        .missing_secrets(data.as_ref().unwrap_or(&BTreeMap::new()))
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(Some(AppSecret {
        name,
        data,
        missing,
    }))
}

/// The app Secret holds every key the spec names.
pub async fn app_secret_check(client: &Client, ns: &str, spec: &AppSpec) -> Option<Finding> {
    const CHECK: &str = "app Secret";
    Some(match app_secret(client, ns, spec).await {
        Ok(None) => return None,
        Ok(Some(AppSecret { name, missing, .. })) if missing.is_empty() => Finding::ok(
            CHECK,
            format!("`{name}` has all {} keys", spec.secrets.len()),
        ),
        Ok(Some(AppSecret { name, missing, .. })) => Finding::fail(
            CHECK,
            format!("`{name}` lacks {}", missing.join(", ")),
            format!("kubectl rails secrets set {}", missing.join(" ")),
        ),
        Err(e) => Finding::unread(CHECK, &e, "cannot read Secrets (forbidden)"),
    })
}

/// The pull secret the spec names.
#[derive(Debug, Clone)]
pub struct PullSecret {
    /// The registry and the Secret's name, as the spec gives them.
    pub registry: RegistrySpec,
    /// The registries it has credentials for (normalized hosts); `None` when it does not exist.
    pub servers: Option<Vec<String>>,
}

/// Reads the pull secret; `None` when the spec names no registry (the image is public).
pub async fn pull_secret(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> Result<Option<PullSecret>, KubeError> {
    let Some(registry) = &spec.registry else {
        return Ok(None);
    };
    let name = &registry.pull_secret;
    let found = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(api_err(format!("read Secret `{name}` in namespace `{ns}`")))?;
    let servers = found.map(|s| {
        s.data
            .as_ref()
            .and_then(|d| d.get(".dockerconfigjson"))
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b.0).ok())
            .and_then(|c| {
                c["auths"]
                    .as_object()
                    .map(|a| a.keys().map(|k| normalize_server(k)).collect())
            })
            .unwrap_or_default()
    });
    Ok(Some(PullSecret {
        registry: registry.clone(),
        servers,
    }))
}

/// The pull secret exists and has credentials for the image's registry.
pub async fn pull_secret_check(client: &Client, ns: &str, spec: &AppSpec) -> Option<Finding> {
    const CHECK: &str = "pull secret";
    let found = match pull_secret(client, ns, spec).await {
        Ok(found) => found?,
        Err(e) => {
            return Some(Finding::unread(
                CHECK,
                &e,
                "cannot read Secrets (forbidden)",
            ));
        }
    };
    let registry = &found.registry;
    let name = &registry.pull_secret;
    let fix = format!(
        "kubectl rails secrets registry --server {}",
        registry.server
    );
    let Some(servers) = found.servers else {
        return Some(Finding::fail(
            CHECK,
            format!("`{name}` does not exist in namespace `{ns}`"),
            fix,
        ));
    };
    let wanted = spec
        .image
        .registry_host()
        .map(normalize_server)
        .unwrap_or_else(|| normalize_server(&registry.server));
    Some(if servers.contains(&wanted) {
        Finding::ok(CHECK, format!("`{name}` has credentials for `{wanted}`"))
    } else {
        Finding::fail(
            CHECK,
            format!(
                "`{name}` has credentials for {servers:?}, not for the image's registry `{wanted}`"
            ),
            fix,
        )
    })
}
