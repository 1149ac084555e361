//! `kubectl-rails`: the binary kubectl finds on PATH and runs as `kubectl rails`. It parses the
//! command line, asks and prints; the work is the crates' (`crates/README.md`). It never writes
//! to stdout or stderr but through the [`Printer`].

mod cli;
mod commands;
mod context;
mod exit;
mod image;
mod mask;
mod namespace;
mod overlay;
mod pin;
mod printer;
mod prompt;
mod settings;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::printer::Printer;
use crate::settings::Settings;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__complete") {
        return complete(&args[2..]);
    }
    let mut cli = match cli::parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    keep_registry_server_ours(&mut cli);
    let mut printer = Printer::new(cli.global.verbose);
    let mut settings = Settings::new(cli.global.clone());
    // An alias is parsed again as the whole command line it stands for, so the global flags
    // typed before it, inside its line and after it all count (`dbc --context prod`).
    if let Command::Alias(words) = &cli.command {
        let words = words.clone();
        cli = match alias(&args, &words, &settings, &printer) {
            Ok(cli) => cli,
            Err(err) => return report(&err, &printer),
        };
        keep_registry_server_ours(&mut cli);
        printer = Printer::new(cli.global.verbose);
        settings = Settings::new(cli.global.clone());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.info(&format!("error: failed to start the async runtime: {e}"));
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(run(cli.command, &settings, &printer));
    // A blocked read of our stdin (exec forwarding a terminal) must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err, &printer),
    }
}

/// Shell completion runs before clap: its words may be half-typed flags.
fn complete(words: &[String]) -> ExitCode {
    let printer = Printer::new(0);
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::from(exit::FAILURE);
    };
    let result = runtime.block_on(commands::complete::run(words, &printer));
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::SUCCESS,
    }
}

/// `secrets registry --server` names the registry, as it always has; clap hands the same
/// value to kubectl's global `--server`, which must not send our credentials there.
fn keep_registry_server_ours(cli: &mut Cli) {
    if matches!(
        cli.command,
        Command::Secrets {
            command: cli::SecretsCommand::Registry { .. }
        }
    ) {
        cli.global.server = None;
    }
}

async fn run(command: Command, settings: &Settings, printer: &Printer) -> anyhow::Result<()> {
    let ctx = &Context::new(settings, printer);
    match command {
        Command::Init(args) => commands::init::run(&args, ctx),
        Command::Explain(args) => commands::explain::run(&args, ctx),
        Command::Render(args) => commands::render::run(&args, ctx),
        Command::Deploy(args) => commands::deploy::run(&args, ctx).await,
        Command::Build(args) => commands::build::run(&args, ctx).await,
        Command::Diff(args) => commands::diff::run(&args, ctx).await,
        Command::Status(args) => commands::status::run(&args, ctx).await,
        Command::Releases => commands::releases::run(ctx).await,
        Command::Rollback(args) => commands::rollback::run(&args, ctx).await,
        Command::Exec(args) => commands::exec::exec(&args, ctx).await,
        Command::Console(args) => commands::console::run("console", &args, ctx).await,
        Command::Dbconsole(args) => commands::console::run("dbconsole", &args, ctx).await,
        Command::Shell(args) => commands::exec::shell(&args, ctx).await,
        Command::Migrate(args) => commands::migrate::run(&args, ctx).await,
        Command::Run(args) => commands::run::run(&args, ctx).await,
        Command::Logs(args) => commands::logs::run(&args, ctx).await,
        Command::Scale(args) => commands::scale::scale(&args, ctx).await,
        Command::Autoscale(args) => commands::scale::autoscale(&args, ctx).await,
        Command::Destroy(args) => commands::destroy::run(&args, ctx).await,
        Command::Doctor => commands::doctor::run(ctx).await,
        Command::Rbac => commands::rbac::run(ctx),
        Command::Secrets { command } => commands::secrets::run(&command, ctx).await,
        Command::Env { command } => commands::env::run(&command, ctx),
        Command::Maintenance { command } => commands::maintenance::run(&command, ctx).await,
        Command::Canary { command } => commands::canary::run(&command, ctx).await,
        Command::Cron { command } => commands::cron::run(&command, ctx).await,
        Command::Accessory { command } => commands::accessory::run(&command, ctx).await,
        Command::Review { command } => commands::review::run(&command, ctx).await,
        Command::Alias(_) => unreachable!("resolved above"),
    }
}

/// The command line an alias of the spec stands for: the words typed before the alias, its own
/// line, then the words typed after it (`argv` ends with `words`, which start with its name).
/// It reads the spec on its own: the command it names starts afresh, with its own [`Context`].
fn alias(
    argv: &[String],
    words: &[String],
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<Cli> {
    let name = words.first().map(String::as_str).unwrap_or_default();
    let spec = settings.load_spec(printer).ok().map(|l| l.spec);
    let known = spec
        .as_ref()
        .map(|s| s.aliases.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let Some(line) = spec.as_ref().and_then(|s| s.aliases.get(name)) else {
        return Err(exit::usage(
            format!("unrecognized subcommand `{name}`: neither a command nor an alias of the spec"),
            Some(if known.is_empty() {
                "`kubectl rails --help` lists the commands".to_string()
            } else {
                format!("the spec's aliases: {known}; `kubectl rails --help` lists the commands")
            }),
        ));
    };
    let typed_before = &argv[..argv.len().saturating_sub(words.len())];
    let mut argv = typed_before.to_vec();
    argv.extend(kubectl_rails_core::kamal::shell_words(line));
    argv.extend(words[1..].iter().cloned());
    let cli = cli::parse_from(&argv).map_err(|e| {
        exit::usage(
            format!(
                "alias `{name}` (`{line}`) is not a `kubectl rails` command line: {}",
                e.kind()
            ),
            Some("fix it under `aliases:` in the spec".into()),
        )
    })?;
    if matches!(cli.command, Command::Alias(_)) {
        return Err(exit::usage(
            format!("alias `{name}` (`{line}`) names another alias; an alias names a command"),
            None,
        ));
    }
    printer.debug(&format!(
        "alias `{name}`: kubectl rails {}",
        argv[1..].join(" ")
    ));
    Ok(cli)
}

/// Prints `error: ...` and any `hint:`, and picks the exit code.
fn report(err: &anyhow::Error, printer: &Printer) -> ExitCode {
    // `kubectl rails status | head` closes the pipe early: that is not an error.
    if err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    if let Some(exit::Passthrough(code)) = err.downcast_ref::<exit::Passthrough>() {
        return ExitCode::from(*code);
    }
    printer.clear_progress();
    printer.info(&format!("error: {}", exit::describe(err.as_ref())));
    let mut code = exit::FAILURE;
    for cause in err.chain() {
        let hint = if let Some(f) = cause.downcast_ref::<exit::Failure>() {
            code = f.code;
            f.hint.clone()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_core::file::SpecFileError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_core::detect::DetectError>() {
            e.hint().map(str::to_string)
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_kube::KubeError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_deploy::DeployError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_secrets::SecretsError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_exec::ExecError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_scale::ScaleError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<kubectl_rails_review::ReviewError>() {
            e.hint()
        } else {
            None
        };
        if let Some(hint) = hint {
            printer.info(&format!("hint: {hint}"));
        }
    }
    ExitCode::from(code)
}
