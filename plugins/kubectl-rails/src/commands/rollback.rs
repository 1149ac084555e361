//! `kubectl rails rollback [REVISION]`: deploy an earlier release's spec again, image and config
//! together. Migrations are not reversed.

use kubectl_rails_core::{AppSpec, file};
use kubectl_rails_deploy::release::{self, ReleaseRecord, ReleaseStatus};
use kubectl_rails_deploy::{Commit, DeployOutcome, DeployRequest, MigrateMode};

use crate::cli::{OutputFormat, RollbackArgs};
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Target;

pub(crate) async fn run(args: &RollbackArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let format = ctx
        .settings
        .output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let current_spec = ctx.spec()?;
    let target = ctx.target().await?;
    let history = release::list(&target.conn.client, &target.namespace, &current_spec.name).await?;
    let current = release::current(&history).map(|r| r.revision);
    let wanted = match args.revision {
        Some(r) => history.iter().find(|h| h.revision == r).ok_or_else(|| {
            exit::usage(
                format!(
                    "release v{r} of `{}` is not in the history; {}",
                    current_spec.name,
                    crate::commands::releases::reach(&history, current_spec.history_limit)
                ),
                Some("list them with `kubectl rails releases`".into()),
            )
        })?,
        None => history
            .iter()
            .rev()
            .find(|h| h.status == ReleaseStatus::Deployed && Some(h.revision) != current)
            .ok_or_else(|| {
                exit::failure(
                    "there is no earlier deployed release to roll back to",
                    Some("see `kubectl rails releases`".into()),
                )
            })?,
    };
    if wanted.status == ReleaseStatus::Failed {
        return Err(exit::usage(
            format!(
                "release v{} failed; roll back to one that deployed",
                wanted.revision
            ),
            None,
        ));
    }
    let (spec, outcome) = redeploy(
        target,
        wanted,
        format!("rollback to v{}", wanted.revision),
        args.timeout,
        printer,
    )
    .await?;
    deploy::report(target, &spec, &outcome, format, printer).await
}

/// Deploys an earlier release's spec again (image and config together, no migration): what
/// `rollback` does, and what a failed bake does on its own.
pub(crate) async fn redeploy(
    target: &Target,
    wanted: &ReleaseRecord,
    note: String,
    timeout: std::time::Duration,
    printer: &Printer,
) -> anyhow::Result<(AppSpec, DeployOutcome)> {
    let mut spec = file::parse(
        &wanted.spec,
        std::path::Path::new(&format!("release v{}", wanted.revision)),
    )?
    .spec;
    spec.namespace = Some(target.namespace.clone());
    printer.step(&format!(
        "rolling `{}` back to release v{} ({})",
        spec.name,
        wanted.revision,
        crate::commands::releases::shown(wanted)
    ));
    printer.note(
        "database migrations are not reversed; the old code must cope with the current schema",
    );
    let request = DeployRequest {
        spec: spec.clone(),
        namespace: target.namespace.clone(),
        migrate: MigrateMode::Skip,
        dry_run: false,
        timeout,
        user: deploy::holder(&target.conn.user),
        git_sha: Commit::known(wanted.git_sha.clone()),
        note: Some(note),
        server_version: target.version.clone(),
    };
    let outcome = deploy::execute(target, request, printer, None).await?;
    Ok((spec, outcome))
}
