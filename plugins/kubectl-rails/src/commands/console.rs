//! `kubectl rails console` and `dbconsole`: `bin/rails console` (or `dbconsole`) in a one-off
//! pod, or with `--reuse` in a running web pod.

use kubectl_rails_exec::session::Io;

use crate::cli::ConsoleArgs;
use crate::commands::{exec, run};
use crate::context::Context;

/// `which` is `console` or `dbconsole`.
pub(crate) async fn run(which: &str, args: &ConsoleArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    let command = vec!["bin/rails".to_string(), which.to_string()];
    if !args.reuse {
        return run::one_off(ctx, &command, false, args.timeout, false).await;
    }
    exec::in_running_pod(ctx, "web", false, &command, Io::detect(false), true).await
}
