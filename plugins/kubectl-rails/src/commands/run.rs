//! `kubectl rails run -- CMD`: a one-off pod cloned from the web pod template (same image, env
//! and secrets) that serves no traffic, removed afterwards.

use std::time::Duration;

use kubectl_rails_exec::oneoff;
use kubectl_rails_exec::session::{self, Io};

use crate::cli::RunArgs;
use crate::context::Context;
use crate::exit;

pub(crate) async fn run(args: &RunArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    one_off(ctx, &args.command, args.keep, args.timeout, args.stdin).await
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{:05x}", (nanos ^ std::process::id()) & 0xfffff)
}

/// Starts the pod, runs `command` in it, removes it (unless `keep`), and passes the code on.
pub(crate) async fn one_off(
    ctx: &Context<'_>,
    command: &[String],
    keep: bool,
    timeout: Duration,
    force_stdin: bool,
) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let client = &target.conn.client;
    // Listening from before the pod exists: a Ctrl-C while it is created or starts removes it,
    // rather than leaving it to its 12-hour deadline.
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let _ = futures::poll!(interrupt.as_mut());
    printer.step("starting a one-off pod from the web pod template");
    let pod = oneoff::create(client, &target.namespace, spec, &suffix()).await?;
    printer.debug(&format!("one-off pod `{}`", pod.name));
    let interrupted = |pod: &oneoff::OneOff| {
        exit::with_code(
            exit::INTERRUPTED,
            "interrupted",
            Some(format!("the one-off pod `{}` was removed", pod.name)),
        )
    };
    tokio::select! {
        r = pod.running(timeout) => r?,
        _ = interrupt.as_mut() => {
            pod.remove().await;
            return Err(interrupted(&pod));
        }
    }
    let masked = || printer.stream_mask();
    let result = tokio::select! {
        r = session::exec(client, &target.namespace, &pod.name, Some(&pod.container), command, Io::detect(force_stdin), &masked) => r,
        _ = interrupt.as_mut() => {
            pod.remove().await;
            return Err(interrupted(&pod));
        }
    };
    if keep {
        printer.note(&format!(
            "kept pod `{}`; delete it with `kubectl delete pod {} -n {}`",
            pod.name, pod.name, target.namespace
        ));
    } else {
        pod.remove().await;
    }
    exit::pass_through(result?)
}
