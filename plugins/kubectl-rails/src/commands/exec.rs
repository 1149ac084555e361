//! `kubectl rails exec`, `console`, `dbconsole`, `shell` and `migrate`: commands in the app's
//! pods without copying a pod name. The remote exit code becomes ours.

use dialoguer::Select;
use dialoguer::theme::ColorfulTheme;
use kubectl_rails_deploy::{DeployRequest, MigrateMode};
use kubectl_rails_exec::session::{self, Io};
use kubectl_rails_exec::target;

use crate::cli::{ConsoleArgs, ExecArgs, MigrateArgs, ShellArgs};
use crate::commands::{deploy, run};
use crate::exit;
use crate::printer::Printer;
use crate::settings::{Settings, Target};

/// Exit codes pass through; 0 is success.
pub(crate) fn pass_through(code: i32) -> anyhow::Result<()> {
    match code {
        0 => Ok(()),
        c => Err(exit::Passthrough(u8::try_from(c).unwrap_or(1)).into()),
    }
}

/// The pod to use: the newest Ready one, or the user's pick from a list.
async fn choose_pod(
    target: &Target,
    spec: &kubectl_rails_core::AppSpec,
    process: &str,
    pick: bool,
    settings: &Settings,
) -> anyhow::Result<String> {
    let client = &target.conn.client;
    if !pick {
        return Ok(target::pick(client, &target.namespace, spec, process).await?);
    }
    if !settings.prompter.interactive {
        return Err(exit::usage(
            "`--pick` needs a terminal to show the list",
            Some("drop `--pick`: the newest Ready pod is chosen".into()),
        ));
    }
    let pods = target::pods_of(client, &target.namespace, spec, process).await?;
    if pods.is_empty() {
        target::pick(client, &target.namespace, spec, process).await?;
    }
    let items: Vec<String> = pods
        .iter()
        .map(|p| {
            format!(
                "{}  {}{}",
                p.name,
                p.state,
                if p.newest { "" } else { "  (older revision)" }
            )
        })
        .collect();
    let i = Select::with_theme(&ColorfulTheme::default())
        .with_prompt(format!("Pod of `{process}`"))
        .items(&items)
        .default(0)
        .interact()?;
    Ok(pods[i].name.clone())
}

/// Runs `command` in a pod of `process` (the newest Ready one, or the user's pick) and passes
/// its exit code on. `serves_traffic` says so when the user asked to share a web pod.
async fn in_running_pod(
    process: &str,
    pick: bool,
    command: &[String],
    io: Io,
    serves_traffic: bool,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let spec = settings.load_spec(printer)?.spec;
    let target = settings.target(Some(&spec)).await?;
    let pod = choose_pod(&target, &spec, process, pick, settings).await?;
    if serves_traffic {
        printer.note(&format!("in pod `{pod}`, which serves traffic"));
    } else {
        printer.debug(&format!("exec in pod `{pod}`"));
    }
    let code = session::exec(
        &target.conn.client,
        &target.namespace,
        &pod,
        Some(process),
        command,
        io,
    )
    .await?;
    pass_through(code)
}

pub(crate) async fn exec(
    args: &ExecArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    settings.output(&[])?;
    in_running_pod(
        &args.process,
        args.pick,
        &args.command,
        Io::detect(args.stdin),
        false,
        settings,
        printer,
    )
    .await
}

pub(crate) async fn shell(
    args: &ShellArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    settings.output(&[])?;
    let command: Vec<String> = [
        "/bin/sh",
        "-c",
        "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
    ]
    .map(String::from)
    .to_vec();
    in_running_pod(
        &args.process,
        args.pick,
        &command,
        Io::detect(false),
        false,
        settings,
        printer,
    )
    .await
}

/// `bin/rails console` or `dbconsole`: in a one-off pod unless `--reuse`.
pub(crate) async fn rails_console(
    which: &str,
    args: &ConsoleArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    settings.output(&[])?;
    let command = vec!["bin/rails".to_string(), which.to_string()];
    if !args.reuse {
        return run::one_off(&command, false, args.timeout, false, settings, printer).await;
    }
    in_running_pod(
        "web",
        false,
        &command,
        Io::detect(false),
        true,
        settings,
        printer,
    )
    .await
}

pub(crate) async fn migrate(
    args: &MigrateArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    settings.output(&[])?;
    let mut spec = settings.load_spec(printer)?.spec;
    deploy::resolve_image(
        &mut spec,
        None,
        args.tag.as_deref(),
        true,
        &settings.global.app_dir,
    )?;
    let target = settings.target(Some(&spec)).await?;
    spec.namespace = Some(target.namespace.clone());
    let request = DeployRequest {
        spec,
        namespace: target.namespace.clone(),
        migrate: MigrateMode::Only,
        dry_run: false,
        timeout: args.timeout,
        user: deploy::holder(&target.conn.user),
        git_sha: deploy::commit_of(&settings.global.app_dir),
        note: None,
        server_version: target.version.clone(),
    };
    deploy::execute(&target, request, printer).await?;
    Ok(())
}
