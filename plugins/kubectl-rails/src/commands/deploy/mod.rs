//! `kubectl rails deploy`: resolve the image, make sure the namespace and what the app needs are
//! there, then hand over to the deploy crate and report what it did.

use kubectl_rails_core::file::SpecFileError;
use kubectl_rails_core::{AppSpec, ImageSpec};
use kubectl_rails_deploy::{DeployError, DeployOutcome, DeployRequest, MigrateMode, lease};

mod bake;
mod board;
mod hooks;
mod inputs;
mod redeploy;
pub(crate) use crate::pin::pin;
pub(crate) use bake::limits_from as bake_limits;
pub(crate) use bake::{roll_back as bake_roll_back, watch as bake_watch};
pub(crate) use redeploy::redeploy;

pub(crate) use crate::image::{commit_of, holder, resolve_image};
pub(crate) use board::{PreDeploy, PrinterReporter};

use crate::cli::{DeployArgs, OutputFormat};
use crate::commands::{init, status};
use crate::context::Context;
use crate::exit;
use crate::image;
use crate::namespace;
use crate::printer::Printer;
use crate::settings::Target;

/// The spec, or `init`'s questions first when there is none yet (with the registry user name
/// they asked for, if they did).
fn spec_or_init(args: &DeployArgs, ctx: &Context<'_>) -> anyhow::Result<(AppSpec, Option<String>)> {
    match ctx.spec_and_warn() {
        Ok(spec) => Ok((spec.clone(), None)),
        Err(e)
            if matches!(
                e.downcast_ref::<SpecFileError>(),
                Some(SpecFileError::Missing { .. })
            ) =>
        {
            ctx.printer.step(&format!(
                "no spec at `{}` yet: reading the app folder first (`kubectl rails init`)",
                ctx.settings.spec_path.display()
            ));
            // `--image`, `--tag` and `--host` answer init's questions too.
            let image = args.image.as_ref().map(|image| match &args.tag {
                Some(tag) => format!("{}:{tag}", ImageSpec::parse(image).repository),
                None => image.clone(),
            });
            let registry = init::run_for_first_deploy(ctx, image, args.hosts.clone())?;
            Ok((ctx.spec()?.clone(), registry.username))
        }
        Err(e) => Err(e),
    }
}

/// Asks for the tag when the spec has none and the app folder is not a git repository to name
/// it.
fn ask_tag(ctx: &Context<'_>, spec: &mut AppSpec) -> anyhow::Result<()> {
    let prompter = &ctx.settings.prompter;
    let tag = prompter.text(
        &format!(
            "Tag of `{}` to deploy (the folder is not a git repository to name it)",
            spec.image.repository
        ),
        None,
        "--tag",
        |s| {
            if s.is_empty() || s.contains(char::is_whitespace) {
                Err("a tag such as `1.4.2` or a git SHA".into())
            } else {
                Ok(())
            }
        },
    )?;
    spec.image.tag = Some(tag);
    Ok(())
}

pub(crate) async fn run(args: &DeployArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let format = settings.output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let app_dir = &settings.global.app_dir;
    let commit = commit_of(app_dir);
    let (mut spec, registry_user) = spec_or_init(args, ctx)?;
    if spec.image.tag.is_none()
        && args.tag.is_none()
        && args.image.is_none()
        && image::git_commit(app_dir).is_none()
        && settings.prompter.interactive
    {
        ask_tag(ctx, &mut spec)?;
    }
    let tag_source = resolve_image(
        &mut spec,
        args.image.as_deref(),
        args.tag.as_deref(),
        args.allow_latest,
        app_dir,
    )?;
    let bake_limits = bake::limits(args, &spec)?;
    let canary_percent = args
        .canary
        .or_else(|| spec.rollout.as_ref().and_then(|r| r.canary));
    if args.promote && canary_percent.is_none() {
        return Err(exit::usage(
            "`--promote` promotes a canary, and this deploy is none",
            Some("add `--canary PERCENT` (or set `rollout.canary` in the spec)".into()),
        ));
    }
    if args.promote && bake_limits.is_none() {
        return Err(exit::usage(
            "`--promote` promotes the canary when its bake holds, and no bake was asked for",
            Some("add `--bake DURATION` (or set `rollout.bake` in the spec), or promote by hand with `kubectl rails canary promote`".into()),
        ));
    }
    let migrate = match args.migrate {
        crate::cli::MigrateMode::Auto => MigrateMode::Auto,
        crate::cli::MigrateMode::Skip => MigrateMode::Skip,
        crate::cli::MigrateMode::Only => MigrateMode::Only,
    };
    let target = ctx.target().await?;
    printer.debug(&format!(
        "server {} as user `{}`",
        target.conn.server, target.conn.user
    ));
    spec.namespace = Some(target.namespace.clone());
    let tagged_by = match tag_source {
        image::TagSource::GitCommit => {
            ", tagged with the app's git commit as Kamal tags its builds"
        }
        image::TagSource::Given => "",
    };
    printer.step(&format!(
        "deploying `{}` ({}{tagged_by}) to namespace `{}` on context `{}`",
        spec.name,
        spec.image.reference(),
        target.namespace,
        target.conn.context
    ));
    // The image from the app folder, before anything changes in the cluster (as Kamal builds
    // before its pre-deploy hook).
    if spec.build.is_some() && !args.build.skip_build {
        if args.dry_run {
            printer.note("dry run: the image is not built");
        } else if args.build.build || crate::commands::build::needed(target, &spec, printer).await {
            crate::commands::build::build_and_push(
                &spec,
                &args.build.how,
                Some(target),
                app_dir,
                printer,
            )
            .await?;
        }
    }
    let hooks = (!args.skip_hooks && !args.dry_run)
        .then(|| hooks::folder(&spec, app_dir))
        .flatten();
    let hook_spec = spec.clone();
    let hook_env = || {
        hooks::HookEnv::new(
            &hook_spec,
            ctx.settings
                .global
                .destination
                .as_deref()
                .unwrap_or_default(),
            &target.namespace,
            &target.conn.context,
            &std::env::var("USER").unwrap_or_else(|_| target.conn.user.clone()),
        )
    };
    let started = std::time::Instant::now();
    if args.dry_run {
        namespace::ensure(ctx, true).await?;
    } else {
        inputs::resolve(ctx, &spec, registry_user).await?;
    }
    let pull_checked = crate::pin::pin(target, &mut spec, args.no_pin, printer).await?;
    let request = DeployRequest {
        spec: spec.clone(),
        namespace: target.namespace.clone(),
        migrate,
        dry_run: args.dry_run,
        timeout: args.timeout,
        user: holder(&target.conn.user),
        git_sha: commit,
        note: None,
        server_version: target.version.clone(),
        pull_checked,
    };
    // Run inside the lease, so that two deploys never run it at once, and after the app
    // Secret's values are masked.
    let pre_deploy = hooks.as_ref().map(|folder| PreDeploy {
        folder: folder.clone(),
        env: hook_env(),
        app_dir: app_dir.clone(),
        timeout: args.timeout,
    });
    // The release recorded, for the post-deploy hook (a canary records none).
    let revision = if let Some(percent) = canary_percent {
        let run = CanaryRun {
            percent,
            promote: args.promote,
            bake: bake_limits.as_ref(),
            timeout: args.timeout,
            format,
        };
        canary_deploy(target, &spec, request, &run, pre_deploy.as_ref(), printer).await?
    } else {
        refuse_beside_canary(target, &spec).await?;
        deploy_replacing(
            args,
            target,
            &spec,
            request,
            bake_limits.as_ref(),
            format,
            pre_deploy.as_ref(),
            printer,
        )
        .await?
    };
    if let Some(folder) = &hooks {
        let env = hook_env()
            .with("KAMAL_RUNTIME", started.elapsed().as_secs().to_string())
            .with(
                "KUBECTL_RAILS_REVISION",
                revision.map(|r| r.to_string()).unwrap_or_default(),
            );
        let before = "the deploy itself is done";
        hooks::run(
            folder,
            "post-deploy",
            &env,
            app_dir,
            printer,
            before,
            args.timeout,
        )
        .await?;
    }
    Ok(())
}

/// A deploy that replaces the current release (every deploy but a canary's), with its bake.
#[allow(
    clippy::too_many_arguments,
    reason = "the pieces run() resolved, passed on once"
)]
async fn deploy_replacing(
    args: &DeployArgs,
    target: &Target,
    spec: &AppSpec,
    request: DeployRequest,
    bake_limits: Option<&kubectl_rails_deploy::bake::BakeLimits>,
    format: Option<OutputFormat>,
    pre_deploy: Option<&PreDeploy>,
    printer: &Printer,
) -> anyhow::Result<Option<u32>> {
    let spec = spec.clone();
    let outcome = execute(target, request, printer, pre_deploy).await?;
    let verdict = match bake_limits {
        Some(limits) if !args.dry_run => {
            bake::watch(target, &spec, &outcome, limits, printer).await?
        }
        _ => None,
    };
    match (&verdict, format) {
        (Some(v), Some(f @ (OutputFormat::Json | OutputFormat::Yaml))) => {
            let mut doc = serde_json::to_value(&outcome)?;
            doc["bake"] = serde_json::to_value(v)?;
            printer.out(&match f {
                OutputFormat::Json => serde_json::to_string_pretty(&doc)?,
                _ => serde_saphyr::to_string(&doc)?,
            })?;
        }
        _ => report(target, &spec, &outcome, format, printer).await?,
    }
    if let Some(kubectl_rails_deploy::bake::BakeVerdict::Failed { reason, tally }) = &verdict {
        return Err(bake::roll_back(
            target,
            &spec,
            &outcome,
            reason,
            &tally.evidence,
            args.timeout,
            printer,
        )
        .await);
    }
    Ok(outcome.revision)
}

/// What `deploy --canary` was asked for.
struct CanaryRun<'a> {
    percent: u8,
    promote: bool,
    bake: Option<&'a kubectl_rails_deploy::bake::BakeLimits>,
    timeout: std::time::Duration,
    format: Option<OutputFormat>,
}

/// A deploy of anything but a canary would replace the web Deployment under a running canary
/// and leave the split pointing at a release that no longer runs: it is refused.
async fn refuse_beside_canary(target: &Target, spec: &AppSpec) -> anyhow::Result<()> {
    let (client, ns) = (&target.conn.client, &target.namespace);
    if let Some(running) = kubectl_rails_deploy::canary::current(client, ns, spec).await? {
        let image = running
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.containers.into_iter().next())
            .and_then(|c| c.image)
            .unwrap_or_default();
        return Err(exit::failure(
            format!(
                "a canary of `{}` is running in namespace `{ns}` ({image}); nothing was deployed",
                spec.name
            ),
            Some("end it first with `kubectl rails canary promote` or `kubectl rails canary abort`, or deploy with `--canary PERCENT` after that".into()),
        ));
    }
    Ok(())
}

/// `deploy --canary PERCENT`: the canary starts beside the current release; with a bake it is
/// watched, aborted when it fails (exit 3), and with `--promote` promoted when it holds.
async fn canary_deploy(
    target: &Target,
    spec: &AppSpec,
    request: DeployRequest,
    run: &CanaryRun<'_>,
    pre_deploy: Option<&PreDeploy>,
    printer: &Printer,
) -> anyhow::Result<Option<u32>> {
    let dry_run = request.dry_run;
    printer.step(&format!(
        "deploying {} as a canary taking about {}% of the requests; the current release keeps running",
        spec.image.reference(),
        run.percent
    ));
    let (client, ns) = (&target.conn.client, &target.namespace);
    let outcome = match execute_as(target, request, printer, pre_deploy, Some(run.percent)).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // A canary that failed to start is left for a look; say how to remove it.
            if !dry_run
                && let Ok(Some(_)) = kubectl_rails_deploy::canary::current(client, ns, spec).await
            {
                printer.note("the current release keeps serving; `kubectl rails canary abort` removes the canary");
            }
            return Err(e);
        }
    };
    if dry_run {
        return report(target, spec, &outcome, run.format, printer)
            .await
            .map(|()| None);
    }
    let verdict = match run.bake {
        Some(limits) => {
            printer.step(&format!(
                "baking the canary for {}s: aborted at once if more than {}% of its requests answer 5xx or its pods restart more than {} time(s)",
                limits.duration.as_secs(),
                limits.max_error_rate,
                limits.max_restarts
            ));
            let reporter = PrinterReporter::new(printer, None);
            let v = kubectl_rails_deploy::bake::bake_canary(client, ns, spec, limits, &reporter)
                .await?;
            printer.clear_progress();
            Some(v)
        }
        None => None,
    };
    if let Some(kubectl_rails_deploy::bake::BakeVerdict::Failed { reason, tally }) = &verdict {
        printer.warn(&format!("the canary failed its bake: {reason}"));
        for line in &tally.evidence {
            printer.info(&format!("  | {line}"));
        }
        let why = format!(" (bake failed: {reason})");
        crate::commands::canary::abort(target, spec, run.timeout, &why, printer).await?;
        return Err(exit::with_code(
            exit::BAKE_FAILED,
            format!(
                "the canary {} failed its bake ({reason}) and was aborted; the current release serves every request",
                spec.image.reference()
            ),
            Some("the lines above are the release's own; fix it, build a new image, and deploy again".into()),
        ));
    }
    if let Some(kubectl_rails_deploy::bake::BakeVerdict::Held { tally }) = &verdict {
        printer.step(&format!(
            "the canary held for {}s: {} requests, {} errors, {} restarts",
            tally.watched_seconds, tally.requests, tally.errors, tally.restarts
        ));
    }
    if run.promote {
        crate::commands::canary::promote(target, spec, run.timeout, None, run.format, printer)
            .await?;
        return Ok(None);
    }
    let status = kubectl_rails_deploy::canary::status(client, ns, spec).await?;
    match run.format {
        Some(f @ (OutputFormat::Json | OutputFormat::Yaml)) => {
            let mut doc = serde_json::to_value(&outcome)?;
            doc["canary"] = serde_json::to_value(&status)?;
            if let Some(v) = &verdict {
                doc["bake"] = serde_json::to_value(v)?;
            }
            printer.out(&match f {
                OutputFormat::Json => serde_json::to_string_pretty(&doc)?,
                _ => serde_saphyr::to_string(&doc)?,
            })?;
        }
        _ => {
            if let Some(s) = &status {
                printer.out(&crate::commands::canary::text(s))?;
            }
            printer.note("`kubectl rails canary promote` rolls the rest forward; `kubectl rails canary abort` removes the canary");
        }
    }
    Ok(None)
}

/// Takes the app's deploy lease for a command that must not run beside a deploy (`destroy`,
/// `maintenance`). Another holder is refused with what did not happen (`untouched`) and how to
/// run `command` again.
pub(crate) async fn hold_lease(
    target: &Target,
    app: &str,
    reporter: &PrinterReporter<'_>,
    untouched: &str,
    command: &str,
) -> anyhow::Result<lease::DeployLease> {
    let holder = lease::holder_identity(&holder(&target.conn.user));
    match lease::acquire(
        &target.conn.client,
        &target.namespace,
        app,
        &holder,
        reporter,
    )
    .await
    {
        Ok(held) => Ok(held),
        Err(e @ DeployError::Locked { .. }) => Err(exit::failure(
            format!("{e}; {untouched}"),
            Some(format!(
                "wait for it to finish, then run `kubectl rails {command}` again"
            )),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Runs a deploy request, turning Ctrl-C and failures into messages and exit codes.
pub(crate) async fn execute(
    target: &Target,
    request: DeployRequest,
    printer: &Printer,
    pre_deploy: Option<&PreDeploy>,
) -> anyhow::Result<DeployOutcome> {
    execute_as(target, request, printer, pre_deploy, None).await
}

/// [`execute`], or with `canary` the deploy of a canary taking that percent.
async fn execute_as(
    target: &Target,
    request: DeployRequest,
    printer: &Printer,
    pre_deploy: Option<&PreDeploy>,
    canary: Option<u8>,
) -> anyhow::Result<DeployOutcome> {
    let client = &target.conn.client;
    printer
        .mask_app_secret(client, &request.namespace, &request.spec.secret_name())
        .await;
    let reporter = PrinterReporter::new(printer, pre_deploy);
    let result = tokio::select! {
        r = async {
            match canary {
                Some(percent) => kubectl_rails_deploy::deploy_canary(client, &request, percent, &reporter).await,
                None => kubectl_rails_deploy::deploy(client, &request, &reporter).await,
            }
        } => r,
        _ = tokio::signal::ctrl_c() => {
            let holder = lease::holder_identity(&request.user);
            lease::release_if_held(client, &request.namespace, &request.spec.name, &holder).await;
            return Err(exit::with_code(
                exit::INTERRUPTED,
                "interrupted: the rollout goes on in the cluster without us, and no release was recorded",
                Some("`kubectl rails status` shows where it stands; `kubectl rails deploy` resumes it; `kubectl rails rollback` goes back".into()),
            ));
        }
    };
    printer.clear_progress();
    result.map_err(|e| explain(e, printer))
}

/// Prints a failure's details (log tail, events) and picks its exit code.
fn explain(e: DeployError, printer: &Printer) -> anyhow::Error {
    let hint = e.hint();
    match &e {
        DeployError::MigrationFailed { logs, .. } if !logs.is_empty() => {
            printer.info("last lines of the migration log:");
            for l in logs {
                printer.info(&format!("  | {l}"));
            }
        }
        DeployError::Hopeless {
            events,
            logs,
            revision,
            ..
        } => {
            if !events.is_empty() {
                printer.info("events:");
                for ev in events {
                    printer.info(&format!("  {ev}"));
                }
            }
            if !logs.is_empty() {
                printer.info("last log lines:");
                for l in logs {
                    printer.info(&format!("  | {l}"));
                }
            }
            if let Some(r) = revision {
                printer.note(&format!("recorded release v{r} as failed"));
            }
        }
        _ => {}
    }
    let code = if matches!(e, DeployError::Timeout { .. }) {
        exit::TIMEOUT
    } else {
        exit::FAILURE
    };
    exit::with_code(code, format!("deploy failed: {}", exit::describe(&e)), hint)
}

/// The summary table, or the outcome as data.
pub(crate) async fn report(
    target: &Target,
    spec: &AppSpec,
    outcome: &DeployOutcome,
    format: Option<OutputFormat>,
    printer: &Printer,
) -> anyhow::Result<()> {
    match format {
        Some(OutputFormat::Json) => {
            return Ok(printer.out(&serde_json::to_string_pretty(outcome)?)?);
        }
        Some(OutputFormat::Yaml) => return Ok(printer.out(&serde_saphyr::to_string(outcome)?)?),
        _ => {}
    }
    if outcome.dry_run {
        printer.step("dry run: the server accepted every object; nothing was changed");
        return Ok(());
    }
    // The rollout just watched says where every process stands; only a canary's (which shows
    // the web it runs beside) or a migration alone (which watched none) reads it all again.
    let watched = !outcome.processes.is_empty()
        && outcome
            .processes
            .iter()
            .all(|p| spec.process_names().contains(&p.process));
    let (client, ns) = (&target.conn.client, &target.namespace);
    let data = if watched {
        kubectl_rails_status::after_deploy(client, ns, spec, outcome.revision, &outcome.processes)
            .await?
    } else {
        kubectl_rails_status::collect(client, ns, spec).await?
    };
    let headline = match outcome.revision {
        Some(r) if outcome.changed => format!("Deployed {} as release v{r}", spec.name),
        _ => format!("{} is up to date", spec.name),
    };
    printer.out(&format!(
        "{headline}\n\n{}\n{}",
        status::processes_table(&data),
        status::ingress_line(&data)
    ))?;
    Ok(())
}
