//! Inside the app's pods: `exec`, `console`, `dbconsole`, `shell`, `migrate`, `run`, `logs`.

use clap::Args;

use super::parse_duration;

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The process whose pod runs the command
    #[arg(long, short = 'p', default_value = "web")]
    pub process: String,
    /// Choose the pod from a list
    #[arg(long)]
    pub pick: bool,
    /// Forward stdin even when it is not a terminal or a pipe
    #[arg(short = 'i', long = "stdin")]
    pub stdin: bool,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    /// Use a running web pod instead of a one-off pod
    #[arg(long)]
    pub reuse: bool,
    /// How long to wait for the one-off pod to start, such as `120s`
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ShellArgs {
    /// The process whose pod to enter
    #[arg(long, short = 'p', default_value = "web")]
    pub process: String,
    /// Choose the pod from a list
    #[arg(long)]
    pub pick: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Override the image tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Overall time limit, such as `300s` or `10m`
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Keep the pod afterwards (it is removed by default)
    #[arg(long)]
    pub keep: bool,
    /// How long to wait for the pod to start, such as `120s`
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Forward stdin even when it is not a terminal or a pipe
    #[arg(short = 'i', long = "stdin")]
    pub stdin: bool,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Only this process
    #[arg(long, short = 'p')]
    pub process: Option<String>,
    /// Keep following, including pods that start later
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines newer than this, such as `10m`
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// The last N lines of each pod
    #[arg(long)]
    pub tail: Option<i64>,
}
