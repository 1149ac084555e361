//! `diff`: what a deploy would change, from the server's own dry run of every object.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::digest::secret_digest;
use kubectl_rails_core::render::{self, RenderInputs};
use kubectl_rails_core::version::ServerVersion;
use kubectl_rails_kube::{FIELD_MANAGER, KubeError, api_err, api_resource, comparable, kind_err};
use serde_json::Value;

/// One object of the release: as it is in the cluster and as a deploy would leave it, both
/// without the fields the server manages (comparable).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub kind: String,
    pub name: String,
    /// `None` when the object does not exist yet.
    pub live: Option<Value>,
    pub after: Value,
}

/// Every object a deploy of `spec` would apply, live and after a server-side dry run.
/// `migrate_deadline` is the migration Job's deadline a deploy would give (its `--timeout`).
pub async fn plan(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    server_version: Option<ServerVersion>,
    migrate_deadline: i64,
) -> Result<Vec<Planned>, KubeError> {
    let digest = match spec.secrets.is_empty() {
        true => None,
        false => Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt(&spec.secret_name())
            .await
            .map_err(api_err(format!("read Secret `{}`", spec.secret_name())))?
            .and_then(|s| s.data)
            .and_then(|d| secret_digest(&d)),
    };
    let mut inputs = RenderInputs {
        secret_digest: digest,
        volume_node: crate::holder_node(client, ns, spec).await?,
        server_version,
        migrate_deadline_seconds: Some(migrate_deadline),
        maintenance: crate::maintenance::current(client, ns, spec).await?,
        earlier_images: match spec.assets {
            Some(_) => crate::release::earlier_images(
                &crate::release::history(client, ns, &spec.name)
                    .await?
                    .records,
            ),
            None => Vec::new(),
        },
    };
    // The migration Job's deadline is the `--timeout` of the deploy that wrote it, which diff
    // does not know: the live Job's own deadline is no change.
    let job_name = render::render(spec, &inputs)
        .objects
        .iter()
        .find(|o| o.kind == "Job")
        .map(|o| o.name.clone());
    if let Some(name) = job_name
        && let Ok(Some(live)) = Api::<Job>::namespaced(client.clone(), ns)
            .get_opt(&name)
            .await
        && let Some(deadline) = live.spec.and_then(|s| s.active_deadline_seconds)
    {
        inputs.migrate_deadline_seconds = Some(deadline);
    }
    let release = render::render(spec, &inputs);
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = true;
    let mut out = Vec::new();
    for object in &release.objects {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &api_resource(object.kind)?);
        let live = api.get_opt(&object.name).await.map_err(kind_err(
            object.kind,
            format!("read {} `{}`", object.kind, object.name),
        ))?;
        let after = api
            .patch(&object.name, &params, &Patch::Apply(&object.value))
            .await
            .map_err(kind_err(
                object.kind,
                format!("dry-run {} `{}`", object.kind, object.name),
            ))?;
        out.push(Planned {
            kind: object.kind.to_string(),
            name: object.name.clone(),
            live: live.map(|l| comparable(&l)),
            after: comparable(&after),
        });
    }
    Ok(out)
}
