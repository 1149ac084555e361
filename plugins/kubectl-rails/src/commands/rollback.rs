//! `kubectl rails rollback [REVISION]`: deploy an earlier release's spec again, image and config
//! together. Migrations are not reversed.

use kubectl_rails_deploy::release::{self, ReleaseStatus};

use crate::cli::{OutputFormat, RollbackArgs};
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;

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
    let (spec, outcome) = deploy::redeploy(
        target,
        wanted,
        format!("rollback to v{}", wanted.revision),
        args.timeout,
        printer,
    )
    .await?;
    deploy::report(target, &spec, &outcome, format, printer).await
}
