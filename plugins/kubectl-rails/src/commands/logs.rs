//! `kubectl rails logs`: every pod of the app in one stream, each line prefixed with its pod.

use std::io::ErrorKind;

use kubectl_rails_exec::logs::{self, LogOptions};

use crate::cli::LogsArgs;
use crate::context::Context;

pub(crate) async fn run(args: &LogsArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let printer = ctx.printer;
    ctx.settings.output(&[])?;
    let spec = ctx.spec()?;
    // Connecting masked the app's Secrets' values in what the logs show.
    let target = ctx.target().await?;
    let opts = LogOptions {
        process: args.process.clone(),
        follow: args.follow,
        since_seconds: args.since.map(|d| d.as_secs() as i64),
        tail: args.tail,
    };
    let sink = |pod: &str, line: &str| {
        if let Err(e) = printer.out(&format!("[{pod}] {line}"))
            && e.kind() == ErrorKind::BrokenPipe
        {
            // `logs | head`: the reader is gone, which is not an error.
            std::process::exit(0);
        }
    };
    let note = |message: &str| printer.note(message);
    logs::stream(
        &target.conn.client,
        &target.namespace,
        spec,
        &opts,
        &sink,
        &note,
    )
    .await?;
    Ok(())
}
