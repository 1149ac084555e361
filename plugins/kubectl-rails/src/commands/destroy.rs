//! `kubectl rails destroy`: delete every object kubectl-rails created for the app, after asking.
//! Secrets and volume claims stay unless asked for, since they cannot be recreated from the spec.
//! It holds the app's deploy lease while it works: a deploy running meanwhile would recreate
//! what is being deleted, so a live deploy's lease stops it before anything is deleted.

use kube::Client;
use kubectl_rails_core::AppSpec;
use kubectl_rails_deploy::{destroy, lease};

use crate::cli::DestroyArgs;
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;

pub(crate) async fn run(args: &DestroyArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let (client, ns) = (&target.conn.client, &target.namespace);
    if destroy::inventory(client, ns, spec).await? == destroy::Inventory::default() {
        ctx.printer.info(&format!(
            "nothing of `{}` to delete in namespace `{ns}`",
            spec.name
        ));
        return Ok(());
    }
    // A crashed deploy's expired lease is taken here, and goes with the rest.
    let reporter = deploy::PrinterReporter::new(ctx.printer, None);
    let held = deploy::hold_lease(
        target,
        &spec.name,
        &reporter,
        "nothing was deleted",
        "destroy",
    )
    .await?;
    let result = tokio::select! {
        r = destroy_holding_the_lease(args, ctx, client, ns, spec, &held) => r,
        e = held.lost() => Err(e.into()),
    };
    held.release().await;
    result
}

async fn destroy_holding_the_lease(
    args: &DestroyArgs,
    ctx: &Context<'_>,
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    held: &lease::DeployLease,
) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    // Listed again now that no deploy can add to it.
    let found = destroy::inventory(client, ns, spec).await?;
    let mut doomed = found.objects;
    if args.include_volumes {
        doomed.extend(
            found
                .claims
                .iter()
                .map(|c| ("PersistentVolumeClaim".to_string(), c.clone())),
        );
    }
    let mut kept_secrets = Vec::new();
    for name in found.secrets {
        if args.include_secrets {
            doomed.push(("Secret".into(), name));
        } else {
            kept_secrets.push(name);
        }
    }
    if doomed.is_empty() {
        printer.info(&format!(
            "nothing of `{}` to delete in namespace `{ns}`",
            spec.name
        ));
    } else {
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
        held.ensure_held().await?;
        destroy::delete(client, ns, &doomed).await?;
        printer.step(&format!(
            "deleted {} objects of `{}`",
            doomed.len(),
            spec.name
        ));
    }
    if !kept_secrets.is_empty() {
        printer.note(&format!(
            "kept {} (pass `--include-secrets` to delete them)",
            kept_secrets.join(", ")
        ));
    }
    if !found.claims.is_empty() && !args.include_volumes {
        printer.note(&format!(
            "kept volume claims {} and their data (pass `--include-volumes` to delete them)",
            found.claims.join(", ")
        ));
    }
    Ok(())
}
