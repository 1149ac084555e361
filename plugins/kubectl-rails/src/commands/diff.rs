//! `kubectl rails diff`: what a deploy would change, from the server's own dry run (the deploy
//! crate's), as a unified diff of YAML.

use kubectl_rails_deploy::diff;

use crate::cli::{DEFAULT_DEPLOY_TIMEOUT_SECS, DiffArgs};
use crate::commands::deploy::resolve_image;
use crate::commands::render::to_yaml;
use crate::context::Context;
use crate::exit;

pub(crate) async fn run(args: &DiffArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    settings.output(&[])?;
    let mut spec = ctx.spec()?.clone();
    resolve_image(
        &mut spec,
        args.image.as_deref(),
        args.tag.as_deref(),
        true,
        &settings.global.app_dir,
    )?;
    let target = ctx.target().await?;
    spec.namespace = Some(target.namespace.clone());
    // The image a deploy would run: the digest the tag names now.
    crate::commands::deploy::pin(target, &mut spec, args.no_pin, printer).await?;
    let planned = diff::plan(
        &target.conn.client,
        &target.namespace,
        &spec,
        target.version.clone(),
        DEFAULT_DEPLOY_TIMEOUT_SECS,
    )
    .await?;
    let mut text = String::new();
    for object in &planned {
        let before = object.live.as_ref().map(to_yaml).unwrap_or_default();
        let after = to_yaml(&object.after);
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
