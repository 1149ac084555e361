//! `kubectl rails cron`: the app's scheduled commands (the spec's `cron:`, deployed as CronJobs).
//! `run` starts a Job from a CronJob and waits for it; `suspend` and `resume` change the cluster
//! and the spec, so a deploy keeps the choice. The cluster side is the cron crate's.

use std::time::Duration;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use kubectl_rails_core::file::{self, edit};
use kubectl_rails_core::render::cron_job_name;
use kubectl_rails_cron::{self as cron, CronRow, JobEnd};

use crate::cli::{CronCommand, OutputFormat};
use crate::context::Context;
use crate::exit;
use crate::overlay::{Edited, OverlayEdit};
use crate::printer::Printer;

pub(crate) async fn run(command: &CronCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let formats: &[OutputFormat] = match command {
        CronCommand::List => &[OutputFormat::Json, OutputFormat::Yaml],
        _ => &[],
    };
    let format = settings.output(formats)?;
    let spec = ctx.spec()?;
    if let CronCommand::Run { name, .. }
    | CronCommand::Suspend { name }
    | CronCommand::Resume { name } = command
        && !spec.cron.contains_key(name)
    {
        return Err(exit::usage(
            format!(
                "`{name}` is not a `cron:` entry of the spec (it has {})",
                if spec.cron.is_empty() {
                    "none".to_string()
                } else {
                    spec.cron.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
            Some("add it under `cron:` in the spec and deploy".into()),
        ));
    }
    let target = ctx.target().await?;
    let (client, ns) = (&target.conn.client, target.namespace.as_str());
    match command {
        CronCommand::List => {
            let rows = cron::list(client, ns, spec).await?;
            show(&rows, format, printer)
        }
        CronCommand::Run { name, timeout } => run_now(ctx, name, *timeout).await,
        CronCommand::Suspend { name } => suspend(ctx, name, true).await,
        CronCommand::Resume { name } => suspend(ctx, name, false).await,
    }
}

/// The entries as data, or as a table.
fn show(rows: &[CronRow], format: Option<OutputFormat>, printer: &Printer) -> anyhow::Result<()> {
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(rows)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&rows)?)?,
        _ if rows.is_empty() => printer.info("the spec has no `cron:` entries"),
        _ => printer.out(&table(rows).to_string())?,
    }
    Ok(())
}

fn table(rows: &[CronRow]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(vec![
        "NAME",
        "SCHEDULE",
        "TIME ZONE",
        "STATE",
        "LAST RUN",
        "RUNNING",
        "COMMAND",
    ]);
    for r in rows {
        let state = match (r.deployed, r.suspended) {
            (false, _) => "not deployed",
            (_, true) => "suspended",
            _ => "scheduled",
        };
        t.add_row(vec![
            r.name.clone(),
            r.schedule.clone(),
            r.time_zone.clone().unwrap_or_else(|| "cluster's".into()),
            state.to_string(),
            r.last_schedule.clone().unwrap_or_else(|| "-".into()),
            r.active.to_string(),
            r.command.join(" "),
        ]);
    }
    t
}

/// A Job from the CronJob's template, then its pod followed to the end.
async fn run_now(ctx: &Context<'_>, name: &str, timeout: Duration) -> anyhow::Result<()> {
    let (printer, spec, target) = (ctx.printer, ctx.spec()?, ctx.target().await?);
    let Some(job) = cron::start(&target.conn.client, &target.namespace, spec, name).await? else {
        return Err(exit::failure(
            format!(
                "CronJob `{}` is not deployed",
                cron_job_name(&spec.name, name)
            ),
            Some("deploy first with `kubectl rails deploy`".into()),
        ));
    };
    let job_name = &job.name;
    printer.step(&format!(
        "started Job `{job_name}` from CronJob `{}`",
        job.cronjob
    ));
    let show_log = |log: &[String]| {
        for line in log {
            printer.info(&format!("  | {line}"));
        }
    };
    match job.wait(timeout).await {
        JobEnd::Succeeded(log) => {
            show_log(&log);
            printer.step(&format!("Job `{job_name}` succeeded"));
            Ok(())
        }
        JobEnd::Failed(log) => {
            show_log(&log);
            Err(exit::failure(
                format!("Job `{job_name}` failed"),
                Some(format!("its log: `kubectl logs job/{job_name}`")),
            ))
        }
        JobEnd::TimedOut(watch_error) => Err(exit::with_code(
            exit::TIMEOUT,
            match watch_error {
                Some(e) => format!(
                    "Job `{job_name}` did not finish within {timeout:?} (the watch on its pod failed: {e})"
                ),
                None => format!("Job `{job_name}` did not finish within {timeout:?}"),
            },
            Some(format!(
                "it goes on; follow it with `kubectl logs -f job/{job_name}`"
            )),
        )),
    }
}

/// Suspends (`on`) or resumes an entry in the cluster and in the spec file, which is checked
/// before the cluster changes and written after.
async fn suspend(ctx: &Context<'_>, name: &str, on: bool) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let _lock = crate::overlay::lock_spec(settings, printer)?;
    let spec = ctx.spec()?;
    let cj_name = cron_job_name(&spec.name, name);
    let keys = ["cron", name, "suspend"];
    let edited = match OverlayEdit::open(settings)? {
        Some(mut overlay) => {
            if on {
                overlay.set(&keys, "true")?;
            } else {
                overlay.remove(&keys)?;
                // The base's `suspend: true` shows through unless the overlay says otherwise.
                if overlay.merged()?.cron.get(name).is_some_and(|c| c.suspend) {
                    overlay.set(&keys, "false")?;
                }
            }
            overlay.merged()?;
            Edited::Overlay(overlay)
        }
        None => {
            let text = fs_err::read_to_string(&settings.spec_path)?;
            let edited = if on {
                edit::set_child(&text, &["cron", name], "suspend", "true")
            } else {
                edit::remove(&text, &keys).or(Some(text.clone()))
            }
            .ok_or_else(|| {
                exit::failure(
                    format!(
                        "cannot edit `cron.{name}` in `{}`",
                        settings.spec_path.display()
                    ),
                    Some("edit the spec by hand".into()),
                )
            })?;
            file::parse(&edited, &settings.spec_path)?;
            Edited::Base {
                path: settings.spec_path.clone(),
                text: edited,
            }
        }
    };
    let target = ctx.target().await?;
    if !cron::suspend(&target.conn.client, &target.namespace, spec, name, on).await? {
        printer.note(&format!(
            "CronJob `{cj_name}` is not deployed yet; the spec says it for the next deploy"
        ));
    }
    edited.write(printer)?;
    printer.step(&format!(
        "`{name}` {} (CronJob `{cj_name}` and `{}`)",
        if on { "suspended" } else { "scheduled again" },
        edited.path().display()
    ));
    Ok(())
}
