//! `kubectl rails deploy`: resolve the image, make sure the namespace exists, then hand over to
//! the deploy crate and report what it did.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kubectl_rails_deploy::{
    Commit, DeployError, DeployOutcome, DeployRequest, MigrateMode, Reporter, lease,
};
use kubectl_rails_kube::api_err;
use kubectl_rails_spec::file::SpecFileError;
use kubectl_rails_spec::{AppSpec, ImageSpec};

use crate::cli::{DeployArgs, InitArgs, OutputFormat};
use crate::commands::{init, status};
use crate::exit;
use crate::printer::Printer;
use crate::settings::{Settings, Target};

/// The deploy crate reports through the printer.
pub(crate) struct PrinterReporter<'a>(pub &'a Printer);

impl Reporter for PrinterReporter<'_> {
    fn step(&self, message: &str) {
        self.0.step(message);
    }
    fn progress(&self, line: &str) {
        self.0.progress(line);
    }
    fn log(&self, line: &str) {
        self.0.info(&format!("  | {line}"));
    }
    fn warn(&self, message: &str) {
        self.0.warn(message);
    }
    fn note(&self, message: &str) {
        self.0.note(message);
    }
}

/// Applies `--image` and `--tag`, and refuses what cannot be rolled back.
pub(crate) fn resolve_image(
    spec: &mut AppSpec,
    image: Option<&str>,
    tag: Option<&str>,
    allow_latest: bool,
) -> anyhow::Result<()> {
    if let Some(image) = image {
        spec.image = ImageSpec::parse(image);
    }
    if let Some(tag) = tag {
        spec.image.tag = Some(tag.to_string());
    }
    match spec.image.tag.as_deref() {
        None => Err(exit::usage(
            format!("image `{}` has no tag", spec.image.repository),
            Some("pass `--tag` (for example the git SHA the image was built from), or set `image.tag` in the spec".into()),
        )),
        Some("latest") if !allow_latest => Err(exit::usage(
            format!("refusing to deploy `{}`", spec.image.reference()),
            Some("`latest` moves: pods started later may run other code, and a rollback cannot bring the old image back; pass an immutable `--tag`, or `--allow-latest`".into()),
        )),
        Some(_) => Ok(()),
    }
}

/// The spec, or `init`'s questions first when there is none yet.
pub(crate) fn spec_or_init(settings: &Settings, printer: &Printer) -> anyhow::Result<AppSpec> {
    match settings.load_spec(printer) {
        Ok(loaded) => Ok(loaded.spec),
        Err(e)
            if matches!(
                e.downcast_ref::<SpecFileError>(),
                Some(SpecFileError::Missing { .. })
            ) =>
        {
            printer.step(&format!(
                "no spec at `{}` yet: asking init's questions first",
                settings.spec_path.display()
            ));
            let args = InitArgs {
                name: None,
                image: None,
                hosts: vec![],
                no_ingress: false,
                replicas: None,
                port: None,
                node_selectors: vec![],
                tolerations: vec![],
            };
            init::run(&args, settings, printer)?;
            Ok(settings.load_spec(printer)?.spec)
        }
        Err(e) => Err(e),
    }
}

/// Creates the namespace when it is missing, after asking (or with `--yes`).
pub(crate) async fn ensure_namespace(
    target: &Target,
    settings: &Settings,
    printer: &Printer,
    dry_run: bool,
) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(target.conn.client.clone());
    let ns = &target.namespace;
    match api.get_opt(ns).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        // A deployer bound to a namespaced Role cannot read namespaces: its namespace exists.
        Err(kube::Error::Api(s)) if s.code == 403 => {
            printer.debug(&format!(
                "cannot read namespace `{ns}` (forbidden); assuming it exists"
            ));
            return Ok(());
        }
        Err(e) => return Err(api_err(format!("read namespace `{ns}`"))(e).into()),
    }
    if dry_run {
        return Err(exit::failure(
            format!("namespace `{ns}` does not exist, so the server cannot dry-run objects in it"),
            Some("a real deploy creates it (after asking, or with `--yes`)".into()),
        ));
    }
    if !settings.prompter.confirm(
        &format!("Namespace `{ns}` does not exist. Create it"),
        settings.global.yes,
    )? {
        return Err(exit::failure(
            format!("namespace `{ns}` does not exist"),
            Some("create it, or pick another with `-n`".into()),
        ));
    }
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            // The app's pods pass the restricted standard, so the namespace can enforce it.
            labels: Some(
                [(
                    "pod-security.kubernetes.io/enforce".to_string(),
                    "restricted".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &namespace)
        .await
        .map_err(api_err(format!("create namespace `{ns}`")))?;
    printer.step(&format!(
        "created namespace `{ns}` (enforcing the restricted Pod Security Standard)"
    ));
    Ok(())
}

/// `git rev-parse` of the app folder, with `-dirty` when it has uncommitted changes.
pub(crate) fn git_sha(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{sha}-dirty") } else { sha })
}

/// [`git_sha`], asked on a blocking thread while the deploy goes on.
pub(crate) fn commit_of(dir: &std::path::Path) -> Commit {
    let dir = dir.to_path_buf();
    let asking = tokio::task::spawn_blocking(move || git_sha(&dir));
    Commit::pending(async move { asking.await.ok().flatten() })
}

/// `user@host`: who deploys, for the release record and (with a run id) the lease.
pub(crate) fn holder(user: &str) -> String {
    format!("{user}@{}", lease::host_name())
}

pub(crate) async fn run(
    args: &DeployArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let format = settings.output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let commit = commit_of(&settings.global.app_dir);
    let mut spec = spec_or_init(settings, printer)?;
    resolve_image(
        &mut spec,
        args.image.as_deref(),
        args.tag.as_deref(),
        args.allow_latest,
    )?;
    let migrate = match args.migrate {
        crate::cli::MigrateMode::Auto => MigrateMode::Auto,
        crate::cli::MigrateMode::Skip => MigrateMode::Skip,
        crate::cli::MigrateMode::Only => MigrateMode::Only,
    };
    let request = |target: &Target, spec: AppSpec| DeployRequest {
        spec,
        namespace: target.namespace.clone(),
        migrate,
        dry_run: args.dry_run,
        timeout: args.timeout,
        user: holder(&target.conn.user),
        git_sha: commit.clone(),
        note: None,
        server_version: target.version.clone(),
    };
    let target = settings.target(Some(&spec)).await?;
    printer.debug(&format!(
        "server {} as user `{}`",
        target.conn.server, target.conn.user
    ));
    spec.namespace = Some(target.namespace.clone());
    printer.step(&format!(
        "deploying `{}` ({}) to namespace `{}` on context `{}`",
        spec.name,
        spec.image.reference(),
        target.namespace,
        target.conn.context
    ));
    ensure_namespace(&target, settings, printer, args.dry_run).await?;
    let outcome = execute(&target, request(&target, spec.clone()), printer).await?;
    report(&target, &spec, &outcome, format, printer).await
}

/// Runs a deploy request, turning Ctrl-C and failures into messages and exit codes.
pub(crate) async fn execute(
    target: &Target,
    request: DeployRequest,
    printer: &Printer,
) -> anyhow::Result<DeployOutcome> {
    let client = &target.conn.client;
    printer
        .mask_app_secret(client, &request.namespace, &request.spec.secret_name())
        .await;
    let reporter = PrinterReporter(printer);
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
    let data = status::collect(&target.conn.client, &target.namespace, spec).await?;
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
