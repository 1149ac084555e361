//! `kubectl rails diff`: what a deploy would change, from the server's own dry run.

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use kubectl_rails_core::render::{self, RenderInputs};
use kubectl_rails_kube::{FIELD_MANAGER, api_err, api_resource, comparable};

use crate::cli::DiffArgs;
use crate::commands::deploy::resolve_image;
use crate::commands::render::to_yaml;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) async fn run(
    args: &DiffArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    settings.output(&[])?;
    let mut spec = settings.load_spec(printer)?.spec;
    resolve_image(
        &mut spec,
        args.image.as_deref(),
        args.tag.as_deref(),
        true,
        &settings.global.app_dir,
    )?;
    let target = settings.target(Some(&spec)).await?;
    spec.namespace = Some(target.namespace.clone());
    let client = &target.conn.client;
    let ns = &target.namespace;
    let digest = match spec.secrets.is_empty() {
        true => None,
        false => Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
            .get_opt(&spec.secret_name())
            .await
            .map_err(api_err(format!("read Secret `{}`", spec.secret_name())))?
            .and_then(|s| s.data)
            .map(|d| kubectl_rails_core::digest::secret_digest(&d)),
    };
    let mut inputs = RenderInputs {
        secret_digest: digest,
        volume_node: kubectl_rails_deploy::holder_node(client, ns, &spec).await?,
        server_version: target.version.clone(),
        migrate_deadline_seconds: Some(crate::cli::DEFAULT_DEPLOY_TIMEOUT_SECS),
    };
    // The migration Job's deadline is the `--timeout` of the deploy that wrote it, which diff
    // does not know: the live Job's own deadline is no change.
    let job_name = render::render(&spec, &inputs)
        .objects
        .iter()
        .find(|o| o.kind == "Job")
        .map(|o| o.name.clone());
    if let Some(name) = job_name
        && let Ok(Some(live)) =
            Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), ns)
                .get_opt(&name)
                .await
        && let Some(deadline) = live.spec.and_then(|s| s.active_deadline_seconds)
    {
        inputs.migrate_deadline_seconds = Some(deadline);
    }
    let release = render::render(&spec, &inputs);
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = true;
    let mut text = String::new();
    for object in &release.objects {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &api_resource(object.kind)?);
        let live = api
            .get_opt(&object.name)
            .await
            .map_err(api_err(format!("read {} `{}`", object.kind, object.name)))?;
        let after = api
            .patch(&object.name, &params, &Patch::Apply(&object.value))
            .await
            .map_err(api_err(format!(
                "dry-run {} `{}`",
                object.kind, object.name
            )))?;
        let before = live.map(|l| to_yaml(&comparable(&l))).unwrap_or_default();
        let after = to_yaml(&comparable(&after));
        if before != after {
            let diff = similar::TextDiff::from_lines(&before, &after);
            let label = format!("{}/{}", object.kind, object.name);
            text.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("live {label}"), &format!("new {label}"))
                    .to_string(),
            );
        }
    }
    if text.is_empty() {
        printer.step("no changes");
        return Ok(());
    }
    printer.out(&text)?;
    if args.exit_code {
        return Err(exit::with_code(exit::FAILURE, "there are changes", None));
    }
    Ok(())
}
