//! `kubectl rails deploy`: resolve the image, make sure the namespace exists, then hand over to
//! the deploy crate and report what it did.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kubectl_rails_core::file::SpecFileError;
use kubectl_rails_core::{AppSpec, ImageSpec};
use kubectl_rails_deploy::progress::ProcessProgress;
use kubectl_rails_deploy::{
    Commit, DeployError, DeployOutcome, DeployRequest, MigrateMode, Reporter, lease,
};
use kubectl_rails_kube::api_err;

mod hooks;
mod inputs;

use crate::cli::{DeployArgs, OutputFormat};
use crate::commands::{init, status};
use crate::exit;
use crate::printer::Printer;
use crate::settings::{Settings, Target};

/// The deploy crate reports through the printer; on a terminal the rollout is a live board.
pub(crate) struct PrinterReporter<'a> {
    printer: &'a Printer,
    started: std::time::Instant,
    migration: std::sync::Mutex<String>,
}

impl<'a> PrinterReporter<'a> {
    pub(crate) fn new(printer: &'a Printer) -> Self {
        Self {
            printer,
            started: std::time::Instant::now(),
            migration: std::sync::Mutex::new("not needed".into()),
        }
    }
}

impl Reporter for PrinterReporter<'_> {
    fn step(&self, message: &str) {
        self.printer.step(message);
    }
    fn progress(&self, line: &str) {
        self.printer.progress(line);
    }
    fn log(&self, line: &str) {
        self.printer.info(&format!("  | {line}"));
    }
    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }
    fn note(&self, message: &str) {
        self.printer.note(message);
    }
    fn migration(&self, state: &str) {
        *self.migration.lock().unwrap_or_else(|p| p.into_inner()) = state.to_string();
    }
    fn rollout(&self, processes: &[ProcessProgress]) {
        if !self.printer.can_redraw() {
            self.printer
                .progress(&kubectl_rails_deploy::progress::summary(processes));
            return;
        }
        let migration = self
            .migration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.printer
            .board(&board(processes, &migration, self.started.elapsed()));
    }
}

/// The live display of a rollout: elapsed time, the migration, one line per process.
pub(crate) fn board(
    processes: &[ProcessProgress],
    migration: &str,
    elapsed: std::time::Duration,
) -> Vec<String> {
    let width = processes
        .iter()
        .map(|p| p.process.len())
        .chain(std::iter::once("migration".len()))
        .max()
        .unwrap_or(0);
    let mut lines = vec![format!("  rollout, {}s elapsed", elapsed.as_secs())];
    lines.push(format!("  {:<width$}  {migration}", "migration"));
    for p in processes {
        let mark = if p.done { "✓" } else { "…" };
        let mut state = format!("{}/{} ready", p.ready.min(p.desired), p.desired);
        if p.updated < p.desired {
            state.push_str(&format!(", {}/{} updated", p.updated, p.desired));
        }
        if p.old > 0 {
            state.push_str(&format!(", {} old still running", p.old));
        }
        lines.push(format!("{mark} {:<width$}  {state}", p.process));
    }
    lines
}

/// How the image's tag was chosen, for the deploy's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagSource {
    /// The spec, `--image` or `--tag`.
    Given,
    /// The app folder's git commit, as Kamal tags the images it builds.
    GitCommit,
}

/// Applies `--image` and `--tag`, tags an untagged image with the app folder's git commit (the
/// full SHA, Kamal's convention), and refuses what cannot be rolled back.
pub(crate) fn resolve_image(
    spec: &mut AppSpec,
    image: Option<&str>,
    tag: Option<&str>,
    allow_latest: bool,
    app_dir: &std::path::Path,
) -> anyhow::Result<TagSource> {
    if let Some(image) = image {
        spec.image = ImageSpec::parse(image);
    }
    if let Some(tag) = tag {
        spec.image.tag = Some(tag.to_string());
    }
    let mut source = TagSource::Given;
    if spec.image.tag.is_none()
        && let Some(sha) = git_commit(app_dir)
    {
        spec.image.tag = Some(sha);
        source = TagSource::GitCommit;
    }
    match spec.image.tag.as_deref() {
        None => Err(exit::usage(
            format!("image `{}` has no tag, and `{}` is not in a git repository whose commit could name it", spec.image.repository, app_dir.display()),
            Some("pass `--tag` (for example the git SHA the image was built from), or set `image.tag` in the spec".into()),
        )),
        Some("latest") if !allow_latest => Err(exit::usage(
            format!("refusing to deploy `{}`", spec.image.reference()),
            Some("`latest` moves: pods started later may run other code, and a rollback cannot bring the old image back; pass an immutable `--tag`, or `--allow-latest`".into()),
        )),
        Some(_) => Ok(source),
    }
}

/// The full SHA of the app folder's `HEAD`, when it is in a git repository.
pub(crate) fn git_commit(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .output()
        .ok()?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && sha.len() == 40).then_some(sha)
}

/// The spec, or `init`'s questions first when there is none yet (with the registry user name
/// they asked for, if they did).
pub(crate) fn spec_or_init(
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<(AppSpec, Option<String>)> {
    match settings.load_spec_and_warn(printer) {
        Ok(loaded) => Ok((loaded.spec, None)),
        Err(e)
            if matches!(
                e.downcast_ref::<SpecFileError>(),
                Some(SpecFileError::Missing { .. })
            ) =>
        {
            printer.step(&format!(
                "no spec at `{}` yet: reading the app folder first (`kubectl rails init`)",
                settings.spec_path.display()
            ));
            let registry = init::run_for_first_deploy(settings, printer)?;
            Ok((settings.load_spec(printer)?.spec, registry.username))
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
    let create = settings.global.yes
        || (settings.prompter.interactive
            && settings.prompter.yes_no(
                &format!("Namespace `{ns}` does not exist. Create it?"),
                true,
            )?);
    if !settings.prompter.interactive && !create {
        return Err(exit::usage(
            format!(
                "namespace `{ns}` does not exist, and nobody is at a terminal to confirm creating it"
            ),
            Some("pass `--yes`".into()),
        ));
    }
    if !create {
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
    let (mut spec, registry_user) = spec_or_init(settings, printer)?;
    if spec.image.tag.is_none()
        && args.tag.is_none()
        && args.image.is_none()
        && git_commit(&settings.global.app_dir).is_none()
        && settings.prompter.interactive
    {
        let tag = settings.prompter.text(
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
    }
    let tag_source = resolve_image(
        &mut spec,
        args.image.as_deref(),
        args.tag.as_deref(),
        args.allow_latest,
        &settings.global.app_dir,
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
    let tagged_by = match tag_source {
        TagSource::GitCommit => ", tagged with the app's git commit as Kamal tags its builds",
        TagSource::Given => "",
    };
    printer.step(&format!(
        "deploying `{}` ({}{tagged_by}) to namespace `{}` on context `{}`",
        spec.name,
        spec.image.reference(),
        target.namespace,
        target.conn.context
    ));
    let app_dir = &settings.global.app_dir;
    let hooks = (!args.skip_hooks && !args.dry_run)
        .then(|| hooks::folder(&spec, app_dir))
        .flatten();
    let hook_env = || {
        hooks::HookEnv::new(
            &spec,
            &target.namespace,
            &target.conn.context,
            &std::env::var("USER").unwrap_or_else(|_| target.conn.user.clone()),
        )
    };
    if let Some(folder) = &hooks {
        hooks::run(
            folder,
            "pre-deploy",
            &hook_env(),
            app_dir,
            printer,
            "nothing was changed",
        )?;
    }
    let started = std::time::Instant::now();
    if args.dry_run {
        ensure_namespace(&target, settings, printer, true).await?;
    } else {
        inputs::resolve(&target, &spec, registry_user, settings, printer).await?;
    }
    let outcome = execute(&target, request(&target, spec.clone()), printer).await?;
    report(&target, &spec, &outcome, format, printer).await?;
    if let Some(folder) = &hooks {
        let env = hook_env()
            .with("KAMAL_RUNTIME", started.elapsed().as_secs().to_string())
            .with(
                "KUBECTL_RAILS_REVISION",
                outcome.revision.map(|r| r.to_string()).unwrap_or_default(),
            );
        hooks::run(
            folder,
            "post-deploy",
            &env,
            app_dir,
            printer,
            "the deploy itself is done",
        )?;
    }
    Ok(())
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
    let reporter = PrinterReporter::new(printer);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, desired: i32, updated: i32, ready: i32, old: i32) -> ProcessProgress {
        ProcessProgress {
            process: name.into(),
            desired,
            updated,
            ready,
            old,
            done: updated == desired && ready == desired && old == 0,
        }
    }

    #[test]
    fn the_board_has_a_line_per_process_the_migration_and_the_time() {
        let lines = board(
            &[process("web", 3, 2, 2, 1), process("sidekiq", 1, 1, 1, 0)],
            "done",
            std::time::Duration::from_secs(12),
        );
        assert_eq!(
            lines,
            [
                "  rollout, 12s elapsed",
                "  migration  done",
                "… web        2/3 ready, 2/3 updated, 1 old still running",
                "✓ sidekiq    1/1 ready",
            ]
        );
    }
}
