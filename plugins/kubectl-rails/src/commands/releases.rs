//! `kubectl rails releases`: the release history recorded by every deploy.

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use kubectl_rails_deploy::release::{self, ReleaseRecord, ReleaseStatus};

use crate::cli::OutputFormat;
use crate::context::Context;

/// A release's image as people read it: `repository:tag (0123456789ab)` when it was pinned.
pub(crate) fn shown(r: &ReleaseRecord) -> String {
    let mut image = kubectl_rails_core::ImageSpec::parse(&r.image);
    image.digest = r.digest.clone();
    image.shown()
}

/// The record's note and what happened to it since (maintenance on and off), in one cell.
fn note(r: &ReleaseRecord) -> String {
    r.note
        .iter()
        .chain(r.events.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

/// The history as a table, newest first.
pub(crate) fn table(history: &[ReleaseRecord]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(vec![
        "REVISION", "STATUS", "IMAGE", "CONFIG", "USER", "GIT", "TIME", "NOTE",
    ]);
    let current = release::current(history).map(|r| r.revision);
    for r in history.iter().rev() {
        let status = match r.status {
            ReleaseStatus::Deployed if Some(r.revision) == current => "current",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Failed => "failed",
        };
        t.add_row(vec![
            format!("v{}", r.revision),
            status.to_string(),
            shown(r),
            r.config_hash.clone(),
            r.user.clone(),
            r.git_sha.clone().unwrap_or_else(|| "-".into()),
            r.time.clone(),
            note(r),
        ]);
    }
    t
}

pub(crate) async fn run(ctx: &Context<'_>) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let format = ctx
        .settings
        .output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let history = release::list(&target.conn.client, &target.namespace, &spec.name).await?;
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&history)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&history)?)?,
        _ if history.is_empty() => printer.info(&format!(
            "no releases of `{}` in namespace `{}` yet",
            spec.name, target.namespace
        )),
        _ => {
            printer.out(&table(&history).to_string())?;
            printer.info(&reach(&history, spec.history_limit));
        }
    }
    Ok(())
}

/// How far back the history reaches, and why.
pub(crate) fn reach(history: &[ReleaseRecord], limit: u32) -> String {
    let oldest = history.first().map_or(0, |r| r.revision);
    format!(
        "the history reaches back to v{oldest}: it keeps the last {limit} releases and the current one (`history_limit` in the spec)"
    )
}
