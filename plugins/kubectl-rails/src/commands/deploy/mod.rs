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
    crate::pin::pin(target, &mut spec, args.no_pin, printer).await?;
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
    };
    // Run inside the lease, so that two deploys never run it at once, and after the app
    // Secret's values are masked.
    let pre_deploy = hooks.as_ref().map(|folder| PreDeploy {
        folder: folder.clone(),
        env: hook_env(),
        app_dir: app_dir.clone(),
        timeout: args.timeout,
    });
    let bake_limits = bake::limits(args, &spec)?;
    let outcome = execute(target, request, printer, pre_deploy.as_ref()).await?;
    let verdict = match &bake_limits {
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
    if let Some(folder) = &hooks {
        let env = hook_env()
            .with("KAMAL_RUNTIME", started.elapsed().as_secs().to_string())
            .with(
                "KUBECTL_RAILS_REVISION",
                outcome.revision.map(|r| r.to_string()).unwrap_or_default(),
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
    let client = &target.conn.client;
    printer
        .mask_app_secret(client, &request.namespace, &request.spec.secret_name())
        .await;
    let reporter = PrinterReporter::new(printer, pre_deploy);
    let result = tokio::select! {
        r = kubectl_rails_deploy::deploy(client, &request, &reporter) => r,
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
    let data = kubectl_rails_status::collect(&target.conn.client, &target.namespace, spec).await?;
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
