//! `deploy --bake`: the new release is watched after it is Ready, and rolled back at once to
//! the release before it when it breaks its limits.

use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::RolloutSpec;
use kubectl_rails_deploy::bake::{self, BakeLimits, BakeVerdict};
use kubectl_rails_deploy::release::{self, ReleaseStatus};
use kubectl_rails_deploy::{DeployOutcome, MigrationOutcome};

use super::PrinterReporter;
use crate::cli::DeployArgs;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Target;

/// The bake asked for: the flags over the spec's `rollout:`, if either asks for one.
pub(crate) fn limits(args: &DeployArgs, spec: &AppSpec) -> anyhow::Result<Option<BakeLimits>> {
    limits_from(args.bake, args.max_error_rate, args.max_restarts, spec)
}

/// [`limits`] from the flags' values.
pub(crate) fn limits_from(
    bake: Option<std::time::Duration>,
    max_error_rate: Option<f64>,
    max_restarts: Option<u32>,
    spec: &AppSpec,
) -> anyhow::Result<Option<BakeLimits>> {
    let rollout = spec.rollout.clone().unwrap_or(RolloutSpec {
        bake: None,
        max_error_rate: None,
        max_restarts: None,
        canary: None,
    });
    let duration = match (bake, &rollout.bake) {
        (Some(d), _) => d,
        (None, Some(text)) => kubectl_rails_core::duration::parse(text)
            .map_err(|e| exit::usage(format!("rollout.bake: {e}"), None))?,
        (None, None) => return Ok(None),
    };
    Ok(Some(BakeLimits {
        duration,
        max_error_rate: max_error_rate.or(rollout.max_error_rate).unwrap_or(5.0),
        max_restarts: max_restarts.or(rollout.max_restarts).unwrap_or(0),
        min_requests: 10,
    }))
}

/// Watches the release `outcome` recorded; `None` when the deploy recorded none (nothing
/// changed, a dry run).
pub(crate) async fn watch(
    target: &Target,
    spec: &AppSpec,
    outcome: &DeployOutcome,
    limits: &BakeLimits,
    printer: &Printer,
) -> anyhow::Result<Option<BakeVerdict>> {
    let Some(revision) = outcome
        .revision
        .filter(|_| outcome.changed && !outcome.dry_run)
    else {
        printer.note("no new release, so nothing to bake");
        return Ok(None);
    };
    printer.step(&format!(
        "baking release v{revision} for {}s: rolled back at once if more than {}% of its requests answer 5xx or its pods restart more than {} time(s)",
        limits.duration.as_secs(),
        limits.max_error_rate,
        limits.max_restarts
    ));
    let reporter = PrinterReporter::new(printer, None);
    let verdict = bake::bake(
        &target.conn.client,
        &target.namespace,
        spec,
        limits,
        &reporter,
    )
    .await?;
    printer.clear_progress();
    if let BakeVerdict::Held { tally } = &verdict {
        printer.step(&format!(
            "release v{revision} held for {}s: {} requests, {} errors, {} restarts",
            tally.watched_seconds, tally.requests, tally.errors, tally.restarts
        ));
    }
    Ok(Some(verdict))
}

/// A failed bake: the release before goes back at once, the history says why, and the deploy
/// fails with exit 3.
pub(crate) async fn roll_back(
    target: &Target,
    spec: &AppSpec,
    outcome: &DeployOutcome,
    reason: &str,
    evidence: &[String],
    timeout: std::time::Duration,
    printer: &Printer,
) -> anyhow::Error {
    let failed = outcome.revision.unwrap_or_default();
    printer.warn(&format!("release v{failed} failed its bake: {reason}"));
    for line in evidence {
        printer.info(&format!("  | {line}"));
    }
    if matches!(outcome.migration, MigrationOutcome::Ran { .. }) {
        printer.note(&format!(
            "release v{failed}'s migration Job ran; a bake never runs migrations down, so whatever it changed in the schema stays, and the release before runs on it"
        ));
    }
    let (client, ns) = (&target.conn.client, &target.namespace);
    let history = match release::list(client, ns, &spec.name).await {
        Ok(h) => h,
        Err(e) => return e.into(),
    };
    let Some(previous) = history
        .iter()
        .rev()
        .find(|r| r.status == ReleaseStatus::Deployed && r.revision < failed)
        .cloned()
    else {
        return exit::with_code(
            exit::BAKE_FAILED,
            format!(
                "release v{failed} failed its bake ({reason}) and there is no earlier release to roll back to: it keeps running"
            ),
            Some("fix it and deploy again, or `kubectl rails scale web=0` to stop it".into()),
        );
    };
    let why = format!("bake failed: {reason}");
    let _ = release::amend(client, ns, &spec.name, Some(failed), |r| {
        r.status = ReleaseStatus::Failed;
        r.events.push(format!(
            "{why}; rolled back automatically to v{}",
            previous.revision
        ));
    })
    .await;
    let note = format!(
        "automatic rollback of v{failed} to v{} ({why})",
        previous.revision
    );
    match super::redeploy(target, &previous, note, timeout, printer).await {
        Ok((_, back)) => exit::with_code(
            exit::BAKE_FAILED,
            format!(
                "release v{failed} failed its bake ({reason}); rolled back to v{} (recorded as v{})",
                previous.revision,
                back.revision.map_or("-".into(), |r| r.to_string())
            ),
            Some(
                "the lines above are the release's own; fix it, build a new image, and deploy again"
                    .into(),
            ),
        ),
        Err(e) => exit::with_code(
            exit::BAKE_FAILED,
            format!(
                "release v{failed} failed its bake ({reason}), and rolling back to v{} failed too: {e:#}",
                previous.revision
            ),
            Some("run `kubectl rails rollback` and see `kubectl rails status`".into()),
        ),
    }
}
