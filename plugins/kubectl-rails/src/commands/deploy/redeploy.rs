//! Deploying an earlier release's spec again: what `rollback` does, and what a failed bake does
//! on its own.

use kubectl_rails_core::{AppSpec, file};
use kubectl_rails_deploy::release::ReleaseRecord;
use kubectl_rails_deploy::{Commit, DeployOutcome, DeployRequest, MigrateMode};

use crate::printer::Printer;
use crate::settings::Target;

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
        user: super::holder(&target.conn.user),
        git_sha: Commit::known(wanted.git_sha.clone()),
        note: Some(note),
        server_version: target.version.clone(),
        pull_checked: false,
    };
    let outcome = super::execute(target, request, printer, None).await?;
    Ok((spec, outcome))
}
