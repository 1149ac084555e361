//! App secrets and registry credentials, kept in Kubernetes Secrets; and where their values come
//! from on this machine ([`sources`]: `.env`, the master key, `.kamal/secrets`, hand-written
//! manifests; [`docker`]: the Docker config and its credential helpers).
//!
//! It must never print, log or return a secret value to anything that shows it: listings carry
//! key names, change times and short digests only. Values go from the caller to the cluster.

pub mod docker;
pub mod kamal;
pub mod manifests;
mod roll;
pub mod sources;

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use kubectl_rails_core::digest::{DIGEST_KEY, short_hmac};
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::{KubeError, api_err};
use serde::Serialize;

/// Annotation prefix recording when each key last changed.
pub const CHANGED_PREFIX: &str = "secrets.kubectl-rails.dev/";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("`{file}` line {line}: {reason}")]
    BadLine {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("cannot read the Docker config `{}`", path.display())]
    DockerConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Docker config `{}` is invalid: {message}", path.display())]
    DockerConfigInvalid { path: PathBuf, message: String },
    #[error("registry `{server}` is not in the Docker config `{}` (it has: {known})", path.display())]
    RegistryNotInDockerConfig {
        server: String,
        path: PathBuf,
        known: String,
    },
    #[error("the credential helper `{helper}` gave no credentials for `{server}`: {message}")]
    CredentialHelper {
        helper: String,
        server: String,
        message: String,
    },
    /// An env file line that does not parse, named by its number (`reason` says which).
    #[error("cannot parse `{}` {reason}", path.display())]
    EnvFile { path: PathBuf, reason: String },
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the commands of `.kamal/secrets` stopped: {reason}{}", if stderr.is_empty() { String::new() } else { format!("; they said:\n{stderr}") })]
    KamalCommands { reason: String, stderr: String },
    #[error("no randomness from the operating system for the app's digest key: {message}")]
    Random { message: String },
    #[error("Secret `{name}` exists with type `{found}`, not `{wanted}`")]
    WrongType {
        name: String,
        found: String,
        wanted: String,
    },
}

impl SecretsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Kube(e) => e.hint(),
            Self::DockerConfigRead { .. } => Some(
                "log in with `docker login SERVER`, or pass `--username` and `--password-stdin`"
                    .into(),
            ),
            Self::RegistryNotInDockerConfig { server, .. } => Some(format!(
                "run `docker login {server}`, or pass `--username` and `--password-stdin`"
            )),
            Self::CredentialHelper { server, .. } => Some(format!(
                "run `docker login {server}` again, or pass `--username` and `--password-stdin`"
            )),
            Self::WrongType { name, .. } => Some(format!(
                "delete it (`kubectl delete secret {name}`) or pick another name"
            )),
            Self::KamalCommands { .. } => Some("run them by hand in the app folder to see what they need (a password manager signed in, a tool on PATH), or raise `--timeout`; nothing was imported".into()),
            Self::BadLine { .. }
            | Self::EnvFile { .. }
            | Self::DockerConfigInvalid { .. }
            | Self::Read { .. }
            | Self::Random { .. } => None,
        }
    }
}

/// One key as `secrets list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub key: String,
    /// A short digest of the value: it changes when the value changes, and reveals nothing.
    pub digest: Option<String>,
    /// RFC 3339 time of the last change through kubectl-rails.
    pub changed: Option<String>,
    /// Named by the spec but not set in the cluster.
    pub missing: bool,
}

/// The digest `secrets list` shows for a value: an HMAC keyed by the app's digest key, so that
/// it cannot be checked against guesses without reading the Secret itself.
pub fn key_digest(digest_key: &[u8], key: &str, value: &[u8]) -> String {
    let mut message = key.as_bytes().to_vec();
    message.push(0);
    message.extend_from_slice(value);
    short_hmac(digest_key, &message, 4)
}

/// A new random digest key, for an app Secret that has none.
pub fn new_digest_key() -> Result<Vec<u8>, SecretsError> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| SecretsError::Random {
        message: e.to_string(),
    })?;
    Ok(key)
}

/// A password for a service the plugin runs (an accessory): 24 random bytes as hex.
pub fn new_password() -> Result<String, SecretsError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| SecretsError::Random {
        message: e.to_string(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The app Secret (`<app>-secrets`) in one namespace.
pub struct AppSecrets {
    api: Api<Secret>,
    pub name: String,
    app: String,
    namespace: String,
}

impl AppSecrets {
    pub fn new(client: &Client, namespace: &str, app: &str) -> Self {
        Self {
            api: Api::namespaced(client.clone(), namespace),
            name: format!("{app}-secrets"),
            app: app.to_string(),
            namespace: namespace.to_string(),
        }
    }

    pub async fn get(&self) -> Result<Option<Secret>, SecretsError> {
        Ok(self.api.get_opt(&self.name).await.map_err(api_err(format!(
            "read Secret `{}` in namespace `{}`",
            self.name, self.namespace
        )))?)
    }

    /// Sets values; returns the keys whose value changed. Unchanged values are not written.
    pub async fn set(
        &self,
        values: &BTreeMap<String, String>,
        now: &str,
    ) -> Result<Vec<String>, SecretsError> {
        let existing = self.get().await?;
        let data = existing
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default();
        let changed: Vec<String> = values
            .iter()
            .filter(|(k, v)| data.get(*k).is_none_or(|old| old.0 != v.as_bytes()))
            .map(|(k, _)| k.clone())
            .collect();
        if changed.is_empty() {
            return Ok(changed);
        }
        let annotations: BTreeMap<String, String> = changed
            .iter()
            .map(|k| (format!("{CHANGED_PREFIX}{k}"), now.to_string()))
            .collect();
        let mut new_data: BTreeMap<String, ByteString> = changed
            .iter()
            .map(|k| (k.clone(), ByteString(values[k].as_bytes().to_vec())))
            .collect();
        if data.get(DIGEST_KEY).is_none_or(|k| k.0.is_empty()) {
            new_data.insert(DIGEST_KEY.into(), ByteString(new_digest_key()?));
        }
        match existing {
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        labels: Some(self.labels()),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    },
                    type_: Some("Opaque".into()),
                    data: Some(new_data),
                    ..Secret::default()
                };
                self.api
                    .create(&PostParams::default(), &secret)
                    .await
                    .map_err(api_err(format!(
                        "create Secret `{}` in namespace `{}`",
                        self.name, self.namespace
                    )))?;
            }
            Some(_) => {
                let patch = serde_json::json!({ "metadata": { "annotations": annotations }, "data": new_data });
                self.api
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api_err(format!(
                        "update Secret `{}` in namespace `{}`",
                        self.name, self.namespace
                    )))?;
            }
        }
        Ok(changed)
    }

    /// Removes keys; returns those that were there.
    pub async fn unset(&self, keys: &[String]) -> Result<Vec<String>, SecretsError> {
        let Some(existing) = self.get().await? else {
            return Ok(vec![]);
        };
        let data = existing.data.unwrap_or_default();
        let removed: Vec<String> = keys
            .iter()
            .filter(|k| data.contains_key(*k))
            .cloned()
            .collect();
        if removed.is_empty() {
            return Ok(removed);
        }
        let mut data_patch = serde_json::Map::new();
        let mut ann_patch = serde_json::Map::new();
        for k in &removed {
            data_patch.insert(k.clone(), serde_json::Value::Null);
            ann_patch.insert(format!("{CHANGED_PREFIX}{k}"), serde_json::Value::Null);
        }
        let patch =
            serde_json::json!({ "metadata": { "annotations": ann_patch }, "data": data_patch });
        self.api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(format!(
                "update Secret `{}` in namespace `{}`",
                self.name, self.namespace
            )))?;
        Ok(removed)
    }

    /// Key names, digests and change times, plus the keys `wanted` names that are not set.
    pub async fn list(&self, wanted: &[String]) -> Result<Vec<KeyInfo>, SecretsError> {
        let secret = self.get().await?;
        let data = secret
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default();
        let annotations = secret
            .and_then(|s| s.metadata.annotations)
            .unwrap_or_default();
        let digest_key = data
            .get(DIGEST_KEY)
            .filter(|k| !k.0.is_empty())
            .map(|k| k.0.clone());
        let mut out: Vec<KeyInfo> = data
            .iter()
            .filter(|(k, _)| k.as_str() != DIGEST_KEY)
            .map(|(k, v)| KeyInfo {
                key: k.clone(),
                // A Secret written by other means has no key until the next set or deploy.
                digest: digest_key.as_ref().map(|dk| key_digest(dk, k, &v.0)),
                changed: annotations.get(&format!("{CHANGED_PREFIX}{k}")).cloned(),
                missing: false,
            })
            .collect();
        for k in wanted.iter().filter(|k| !data.contains_key(*k)) {
            out.push(KeyInfo {
                key: k.clone(),
                digest: None,
                changed: None,
                missing: true,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        [
            (labels::NAME, self.app.as_str()),
            (labels::INSTANCE, self.app.as_str()),
            (labels::COMPONENT, "secrets"),
            (labels::MANAGED_BY, labels::MANAGER),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The password of an accessory's Secret (`name`), made and stored the first time: an
    /// accessory keeps its password when it is added again.
    pub async fn accessory_password(&self, name: &str) -> Result<String, SecretsError> {
        let existing = self
            .api
            .get_opt(name)
            .await
            .map_err(api_err(format!("read Secret `{name}`")))?;
        if let Some(password) = existing
            .and_then(|s| s.data)
            .and_then(|d| d.get("PASSWORD").cloned())
        {
            return Ok(String::from_utf8_lossy(&password.0).into_owned());
        }
        let password = new_password()?;
        let mut labels = self.labels();
        labels.insert(labels::COMPONENT.into(), "accessory".into());
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "PASSWORD".to_string(),
                ByteString(password.clone().into_bytes()),
            )])),
            ..Secret::default()
        };
        self.api
            .create(&kube::api::PostParams::default(), &secret)
            .await
            .map_err(api_err(format!("create Secret `{name}`")))?;
        Ok(password)
    }

    /// Writes a `kubernetes.io/dockerconfigjson` Secret for one registry.
    pub async fn write_pull_secret(
        &self,
        name: &str,
        config_json: Vec<u8>,
    ) -> Result<(), SecretsError> {
        const TYPE: &str = "kubernetes.io/dockerconfigjson";
        let existing = self
            .api
            .get_opt(name)
            .await
            .map_err(api_err(format!("read Secret `{name}`")))?;
        let mut labels = self.labels();
        labels.insert(labels::COMPONENT.into(), "registry".into());
        let mut secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            type_: Some(TYPE.into()),
            data: Some(BTreeMap::from([(
                ".dockerconfigjson".to_string(),
                ByteString(config_json),
            )])),
            ..Secret::default()
        };
        match existing {
            Some(old) if old.type_.as_deref() != Some(TYPE) => {
                return Err(SecretsError::WrongType {
                    name: name.into(),
                    found: old.type_.unwrap_or_default(),
                    wanted: TYPE.into(),
                });
            }
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version;
                self.api
                    .replace(name, &PostParams::default(), &secret)
                    .await
                    .map_err(api_err(format!("update Secret `{name}`")))?;
            }
            None => {
                self.api
                    .create(&PostParams::default(), &secret)
                    .await
                    .map_err(api_err(format!("create Secret `{name}`")))?;
            }
        }
        Ok(())
    }
}
