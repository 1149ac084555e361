//! The ConfigMap: the spec's plain env, read by every pod through `envFrom`.

use k8s_openapi::api::core::v1::ConfigMap;

use super::Renderer;

impl Renderer<'_> {
    pub(super) fn config_map(&self) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(&self.spec.config_map_name(), "config"),
            data: Some(self.spec.env.clone()),
            ..ConfigMap::default()
        }
    }
}
