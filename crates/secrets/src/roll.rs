//! Rolling the app's pods after a change of its secrets, without a deploy: each Deployment's pod
//! template gets the checksum the next deploy would give it.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::digest::secret_digest;
use kubectl_rails_core::render::{self, CHECKSUM_ANNOTATION, RenderInputs};
use kubectl_rails_kube::api_err;

use crate::{AppSecrets, SecretsError};

impl AppSecrets {
    /// The pod-template checksum of the app with the Secret's values as they are now.
    pub async fn pod_checksum(&self, spec: &AppSpec) -> Result<String, SecretsError> {
        let data = self.get().await?.and_then(|s| s.data).unwrap_or_default();
        Ok(render::config_checksum(
            spec,
            &RenderInputs {
                secret_digest: secret_digest(&data),
                ..RenderInputs::default()
            },
        ))
    }

    /// Gives Deployment `name` the pod-template `checksum`, which rolls its pods; `false` when
    /// it is not deployed.
    pub async fn roll(&self, name: &str, checksum: &str) -> Result<bool, SecretsError> {
        let api: Api<Deployment> = Api::namespaced(self.api.clone().into_client(), &self.namespace);
        let patch = serde_json::json!({ "spec": { "template": { "metadata": { "annotations": { CHECKSUM_ANNOTATION: checksum } } } } });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(api_err(format!("restart Deployment `{name}`"))(e).into()),
        }
    }
}
