//! `kubectl rails canary status|promote|abort`: the canary `deploy --canary PERCENT` started,
//! beside the current release. `promote` is a deploy of the canary's release (with its bake, if
//! one is set) that also removes the canary; `abort` removes it under the deploy lease and leaves
//! the current release as it is.

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, Table};
use kubectl_rails_core::{AppSpec, file};
use kubectl_rails_deploy::bake::{BakeLimits, BakeVerdict};
use kubectl_rails_deploy::canary::{self, CanaryStatus};
use kubectl_rails_deploy::{Commit, DeployRequest, MigrateMode, release};

use crate::cli::{CanaryCommand, OutputFormat};
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Target;

pub(crate) async fn run(command: &CanaryCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    let format = ctx
        .settings
        .output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let printer = ctx.printer;
    match command {
        CanaryCommand::Status => {
            let status = canary::status(&target.conn.client, &target.namespace, spec).await?;
            match format {
                Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&status)?)?,
                Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&status)?)?,
                _ => match &status {
                    Some(s) => printer.out(&text(s))?,
                    None => printer.out(&format!(
                        "no canary of `{}` is running in namespace `{}`\n",
                        spec.name, target.namespace
                    ))?,
                },
            }
            Ok(())
        }
        CanaryCommand::Promote { timeout, bake } => {
            let limits = deploy::bake_limits(*bake, None, None, spec)?;
            promote(target, spec, *timeout, limits.as_ref(), format, printer).await
        }
        CanaryCommand::Abort { timeout } => {
            let aborted = abort(target, spec, *timeout, "", printer).await?;
            let doc = serde_json::json!({"app": spec.name, "aborted": aborted});
            match format {
                Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&doc)?)?,
                Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&doc)?)?,
                _ => printer.out(&format!(
                    "Aborted the canary {aborted} of {}; the current release serves every request\n",
                    spec.name
                ))?,
            }
            Ok(())
        }
    }
}

/// The two releases and their shares, and how the split is made.
pub(crate) fn table(s: &CanaryStatus) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(
        ["RELEASE", "IMAGE", "VERSION", "READY", "SHARE"]
            .iter()
            .map(Cell::new),
    );
    for r in &s.releases {
        t.add_row(vec![
            r.track.clone(),
            r.image.clone(),
            r.version.clone(),
            format!("{}/{}", r.ready, r.replicas),
            format!("{:.0}%", r.share),
        ]);
    }
    t
}

/// `canary status` as text, which `status` shows too while a canary runs.
pub(crate) fn text(s: &CanaryStatus) -> String {
    format!(
        "Canary of {} in namespace {} ({}% asked)\n\n{}\n{}\n",
        s.app,
        s.namespace,
        s.percent,
        table(s),
        s.split
    )
}

fn no_canary(spec: &AppSpec, ns: &str, what: &str) -> anyhow::Error {
    exit::failure(
        format!(
            "no canary of `{}` is running in namespace `{ns}`: nothing to {what}",
            spec.name
        ),
        Some("start one with `kubectl rails deploy --canary PERCENT`; `kubectl rails status` shows what runs".into()),
    )
}

/// Deploys the canary's release to the web Deployment (the deploy prunes the canary and renders
/// the Ingress without the split), bakes it when asked, then makes sure the canary is gone.
pub(crate) async fn promote(
    target: &Target,
    spec: &AppSpec,
    timeout: std::time::Duration,
    limits: Option<&BakeLimits>,
    format: Option<OutputFormat>,
    printer: &Printer,
) -> anyhow::Result<()> {
    let (client, ns) = (&target.conn.client, &target.namespace);
    let Some(running) = canary::current(client, ns, spec).await? else {
        return Err(no_canary(spec, ns, "promote"));
    };
    let text = canary::spec_text(&running).ok_or_else(|| {
        exit::failure(
            format!("the canary Deployment of `{}` in namespace `{ns}` does not say which release it runs", spec.name),
            Some("abort it with `kubectl rails canary abort` and deploy again".into()),
        )
    })?;
    let mut new_spec = file::parse(&text, std::path::Path::new("canary"))?.spec;
    new_spec.namespace = Some(ns.clone());
    let image = new_spec.image.reference();
    printer.step(&format!(
        "promoting the canary {image}: the web Deployment of `{}` rolls to it, then the canary is removed",
        spec.name
    ));
    let request = DeployRequest {
        spec: new_spec.clone(),
        namespace: ns.clone(),
        // The canary ran its migration Job; the deploy finds it done.
        migrate: MigrateMode::Auto,
        dry_run: false,
        timeout,
        user: deploy::holder(&target.conn.user),
        git_sha: Commit::known(None),
        note: Some(format!("promoted canary {image}")),
        server_version: target.version.clone(),
        pull_checked: false,
    };
    let outcome = deploy::execute(target, request, printer, None).await?;
    let verdict = match limits {
        Some(l) => deploy::bake_watch(target, &new_spec, &outcome, l, printer).await?,
        None => None,
    };
    let reporter = deploy::PrinterReporter::new(printer, None);
    let held = deploy::hold_lease(
        target,
        &spec.name,
        &reporter,
        "the canary's Deployment may still be there",
        "canary abort",
    )
    .await?;
    let ended = tokio::select! {
        r = canary::end(client, ns, spec, timeout) => r.map_err(anyhow::Error::from),
        e = held.lost() => Err(e.into()),
    };
    held.release().await;
    ended?;
    if let Some(BakeVerdict::Failed { reason, tally }) = &verdict {
        return Err(deploy::bake_roll_back(
            target,
            &new_spec,
            &outcome,
            reason,
            &tally.evidence,
            timeout,
            printer,
        )
        .await);
    }
    if let Some(v) = outcome.revision {
        let _ = release::amend(client, ns, &spec.name, Some(v), |r| {
            r.events.push(format!("promoted from the canary {image}"));
        })
        .await;
    }
    deploy::report(target, &new_spec, &outcome, format, printer).await
}

/// Removes the canary under the deploy lease and records it on the current release; returns the
/// canary's image.
pub(crate) async fn abort(
    target: &Target,
    spec: &AppSpec,
    timeout: std::time::Duration,
    why: &str,
    printer: &Printer,
) -> anyhow::Result<String> {
    let (client, ns) = (&target.conn.client, &target.namespace);
    let Some(status) = canary::status(client, ns, spec).await? else {
        return Err(no_canary(spec, ns, "abort"));
    };
    let image = status
        .releases
        .iter()
        .find(|r| r.track == "canary")
        .map(|r| r.image.clone())
        .unwrap_or_default();
    let reporter = deploy::PrinterReporter::new(printer, None);
    let held = deploy::hold_lease(
        target,
        &spec.name,
        &reporter,
        "the canary was not aborted",
        "canary abort",
    )
    .await?;
    printer.step(&format!(
        "aborting the canary {image}: its pods stop, the current release keeps serving"
    ));
    let ended = tokio::select! {
        r = canary::end(client, ns, spec, timeout) => r.map_err(anyhow::Error::from),
        e = held.lost() => Err(e.into()),
    };
    if ended.is_ok() {
        let event = format!(
            "canary {image} aborted by {}{why}",
            deploy::holder(&target.conn.user)
        );
        let _ = release::add_event(client, ns, &spec.name, &event).await;
    }
    held.release().await;
    ended?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use kubectl_rails_core::render::canary::CanaryRouting;
    use kubectl_rails_deploy::canary::TrackStatus;

    use super::*;

    #[test]
    fn status_shows_both_releases_and_their_shares() {
        let track = |track: &str, version: &str, share| TrackStatus {
            track: track.into(),
            deployment: format!("blog-{track}"),
            image: format!("registry/blog:{version}"),
            version: version.into(),
            replicas: 1,
            ready: 1,
            share,
        };
        let s = CanaryStatus {
            app: "blog".into(),
            namespace: "blog".into(),
            percent: 20,
            routing: CanaryRouting::HaproxyWeights,
            sticky: true,
            split: CanaryRouting::HaproxyWeights.describe(),
            releases: vec![
                track("stable", "1.0.0", 80.0),
                track("canary", "2.0.0", 20.0),
            ],
        };
        insta::assert_snapshot!(text(&s));
    }
}
