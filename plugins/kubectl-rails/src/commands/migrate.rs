//! `kubectl rails migrate`: the migration Job of the current spec, now, as a deploy that only
//! migrates.

use kubectl_rails_deploy::{DeployRequest, MigrateMode};

use crate::cli::MigrateArgs;
use crate::commands::deploy;
use crate::context::Context;

pub(crate) async fn run(args: &MigrateArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let settings = ctx.settings;
    settings.output(&[])?;
    let mut spec = ctx.spec()?.clone();
    deploy::resolve_image(
        &mut spec,
        None,
        args.tag.as_deref(),
        true,
        &settings.global.app_dir,
    )?;
    let target = ctx.target().await?;
    spec.namespace = Some(target.namespace.clone());
    let request = DeployRequest {
        spec,
        namespace: target.namespace.clone(),
        migrate: MigrateMode::Only,
        dry_run: false,
        timeout: args.timeout,
        user: deploy::holder(&target.conn.user),
        git_sha: deploy::commit_of(&settings.global.app_dir),
        note: None,
        server_version: target.version.clone(),
        pull_checked: false,
    };
    deploy::execute(target, request, ctx.printer, None).await?;
    Ok(())
}
