//! `kubectl rails destroy`: delete every object kubectl-rails created for the app, after asking.
//! Secrets and volume claims stay unless asked for, since they cannot be recreated from the spec.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::{api_err, api_resource};

use crate::cli::DestroyArgs;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Settings;

const KINDS: &[&str] = &[
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Service",
    "Deployment",
    "Job",
    "ConfigMap",
];

pub(crate) async fn run(
    args: &DestroyArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    settings.output(&[])?;
    let spec = settings.load_spec(printer)?.spec;
    let target = settings.target(Some(&spec)).await?;
    let client = &target.conn.client;
    let ns = &target.namespace;
    let selector = labels::made_for(&spec.name);
    let params = ListParams::default().labels(&selector);
    let mut doomed: Vec<(String, String)> = Vec::new();
    for kind in KINDS {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &api_resource(kind)?);
        for o in api
            .list_metadata(&params)
            .await
            .map_err(api_err(format!("list {kind}s of `{}`", spec.name)))?
            .items
        {
            doomed.push((kind.to_string(), o.metadata.name.unwrap_or_default()));
        }
    }
    let claims: Vec<String> = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .list_metadata(&params)
        .await
        .map_err(api_err("list volume claims"))?
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    if args.include_volumes {
        doomed.extend(
            claims
                .iter()
                .map(|c| ("PersistentVolumeClaim".to_string(), c.clone())),
        );
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut secret_names = vec![spec.secret_name()];
    secret_names.extend(spec.registry.as_ref().map(|r| r.pull_secret.clone()));
    let mut kept_secrets = Vec::new();
    for name in secret_names {
        if secrets
            .get_opt(&name)
            .await
            .map_err(api_err(format!("read Secret `{name}`")))?
            .is_some()
        {
            if args.include_secrets {
                doomed.push(("Secret".into(), name));
            } else {
                kept_secrets.push(name);
            }
        }
    }
    if doomed.is_empty() {
        printer.info(&format!(
            "nothing of `{}` to delete in namespace `{ns}`",
            spec.name
        ));
        return Ok(());
    }
    printer.info(&format!("This deletes from namespace `{ns}`:"));
    for (kind, name) in &doomed {
        printer.info(&format!("  {kind} {name}"));
    }
    if !settings.prompter.confirm(
        &format!("Delete {} objects of `{}`", doomed.len(), spec.name),
        settings.global.yes,
    )? {
        return Err(exit::failure("nothing was deleted", None));
    }
    let delete = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for (kind, name) in &doomed {
        let api: Api<DynamicObject> = match kind.as_str() {
            "Secret" => Api::namespaced_with(
                client.clone(),
                ns,
                &kube::core::ApiResource::erase::<Secret>(&()),
            ),
            "PersistentVolumeClaim" => Api::namespaced_with(
                client.clone(),
                ns,
                &kube::core::ApiResource::erase::<PersistentVolumeClaim>(&()),
            ),
            k => Api::namespaced_with(client.clone(), ns, &api_resource(k)?),
        };
        match api.delete(name, &delete).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(api_err(format!("delete {kind} `{name}` (objects listed before it are deleted, the rest are not)"))(e).into());
            }
        }
    }
    let _ = Api::<Lease>::namespaced(client.clone(), ns)
        .delete(&format!("{}-deploy", spec.name), &DeleteParams::default())
        .await;
    printer.step(&format!(
        "deleted {} objects of `{}`",
        doomed.len(),
        spec.name
    ));
    if !kept_secrets.is_empty() {
        printer.note(&format!(
            "kept {} (pass `--include-secrets` to delete them)",
            kept_secrets.join(", ")
        ));
    }
    if !claims.is_empty() && !args.include_volumes {
        printer.note(&format!(
            "kept volume claims {} and their data (pass `--include-volumes` to delete them)",
            claims.join(", ")
        ));
    }
    Ok(())
}
