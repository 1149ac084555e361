//! `kubectl rails exec` and `shell`: a command in a Ready pod of the app without copying a pod
//! name. The remote exit code becomes ours.

use dialoguer::Select;
use dialoguer::theme::ColorfulTheme;
use kubectl_rails_exec::session::{self, Io};
use kubectl_rails_exec::target;

use crate::cli::{ExecArgs, ShellArgs};
use crate::context::Context;
use crate::exit;

/// The pod to use: the newest Ready one, or the user's pick from a list.
async fn choose_pod(ctx: &Context<'_>, process: &str, pick: bool) -> anyhow::Result<String> {
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let client = &target.conn.client;
    if !pick {
        return Ok(target::pick(client, &target.namespace, spec, process).await?);
    }
    if !ctx.settings.prompter.interactive {
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
pub(crate) async fn in_running_pod(
    ctx: &Context<'_>,
    process: &str,
    pick: bool,
    command: &[String],
    io: Io,
    serves_traffic: bool,
) -> anyhow::Result<()> {
    let pod = choose_pod(ctx, process, pick).await?;
    if serves_traffic {
        ctx.printer
            .note(&format!("in pod `{pod}`, which serves traffic"));
    } else {
        ctx.printer.debug(&format!("exec in pod `{pod}`"));
    }
    let target = ctx.target().await?;
    let code = session::exec(
        &target.conn.client,
        &target.namespace,
        &pod,
        Some(process),
        command,
        io,
        &|| ctx.printer.stream_mask(),
    )
    .await?;
    exit::pass_through(code)
}

pub(crate) async fn exec(args: &ExecArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    let io = Io::detect(args.stdin);
    in_running_pod(ctx, &args.process, args.pick, &args.command, io, false).await
}

pub(crate) async fn shell(args: &ShellArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    let command: Vec<String> = [
        "/bin/sh",
        "-c",
        "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
    ]
    .map(String::from)
    .to_vec();
    in_running_pod(
        ctx,
        &args.process,
        args.pick,
        &command,
        Io::detect(false),
        false,
    )
    .await
}
