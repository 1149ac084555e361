//! The `cluster` builder's needs: a namespace whose Pod Security level admits the BuildKit pod
//! (rootless, with seccomp and AppArmor `Unconfined`, or privileged). Said only when the spec
//! builds in the cluster.

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;

use crate::{Finding, forbidden};

const CHECK: &str = "cluster builder";

/// Whether the spec builds in the cluster: `build.builder: cluster`, or a `build.cluster`
/// section (which a team writes for the builder it falls back to).
fn builds_in_cluster(spec: &AppSpec) -> bool {
    spec.build
        .as_ref()
        .is_some_and(|b| b.builder.as_deref() == Some("cluster") || b.cluster.is_some())
}

pub async fn cluster_builder(client: &Client, ns: &str, spec: &AppSpec) -> Option<Finding> {
    if !builds_in_cluster(spec) {
        return None;
    }
    let cluster = spec.build.as_ref()?.cluster.clone().unwrap_or_default();
    let namespace = cluster.namespace.clone().unwrap_or_else(|| ns.to_string());
    let image = match kubectl_rails_buildkit::builder_image(cluster.image.as_deref(), &cluster) {
        Ok(image) => image,
        Err(kubectl_rails_build::BuildError::Cluster { what, fix }) => {
            return Some(Finding::fail(CHECK, what, fix));
        }
        Err(other) => return Some(Finding::fail(CHECK, other.to_string(), "check the spec")),
    };
    let mode = if cluster.privileged {
        "privileged"
    } else {
        "rootless"
    };
    Some(
        match Api::<Namespace>::all(client.clone())
            .get_opt(&namespace)
            .await
        {
            Ok(Some(found)) => match kubectl_rails_buildkit::refusal(
                &namespace,
                &found.metadata.labels.unwrap_or_default(),
                &cluster,
            ) {
                Some(kubectl_rails_build::BuildError::Cluster { what, fix }) => {
                    Finding::fail(CHECK, what, fix)
                }
                _ => Finding::ok(
                    CHECK,
                    format!("namespace `{namespace}` admits the {mode} BuildKit pod ({image})"),
                ),
            },
            Ok(None) => match kubectl_rails_buildkit::missing(&namespace) {
                kubectl_rails_build::BuildError::Cluster { what, fix } => {
                    Finding::fail(CHECK, what, fix)
                }
                other => Finding::fail(CHECK, other.to_string(), "check the cluster"),
            },
            Err(e) if forbidden(&e) => Finding::not_checked(
                CHECK,
                format!(
                    "cannot read namespace `{namespace}` (forbidden): {}, which a `restricted` or `baseline` namespace refuses",
                    kubectl_rails_buildkit::needs(&cluster)
                ),
            ),
            Err(e) => Finding::fail(CHECK, e.to_string(), "check the cluster"),
        },
    )
}
