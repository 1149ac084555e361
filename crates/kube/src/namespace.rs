//! The namespace an app lives in: whether it exists, and making one that enforces the
//! `restricted` Pod Security Standard.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::{KubeError, api_err};

/// Whether namespace `name` exists; `None` when the caller may not ask (a deployer bound to a
/// namespaced Role cannot read namespaces).
pub async fn namespace_exists(client: &Client, name: &str) -> Result<Option<bool>, KubeError> {
    match Api::<Namespace>::all(client.clone())
        .get_metadata_opt(name)
        .await
    {
        Ok(found) => Ok(Some(found.is_some())),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => Err(api_err(format!("read namespace `{name}`"))(e)),
    }
}

/// Creates namespace `name`, enforcing the `restricted` Pod Security Standard: the app's pods
/// pass it, so the namespace can enforce it.
pub async fn create_restricted_namespace(client: &Client, name: &str) -> Result<(), KubeError> {
    create_app_namespace(client, name, "restricted").await
}

/// Creates namespace `name`, enforcing the Pod Security Standard `level` the app's pods pass:
/// `restricted`, or `baseline` for an image that must start as root.
pub async fn create_app_namespace(
    client: &Client,
    name: &str,
    level: &str,
) -> Result<(), KubeError> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                [(
                    "pod-security.kubernetes.io/enforce".to_string(),
                    level.to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(api_err(format!("create namespace `{name}`")))?;
    Ok(())
}
