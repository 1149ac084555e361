//! Every flag and subcommand, as clap derive types: the global flags and the commands here, each
//! command group's arguments in a module of its own. kubectl passes its own flags through to a
//! plugin, so the connection flags mirror kubectl's and are global.

mod app;
mod pods;
mod release;
mod secrets;

pub(crate) use app::*;
pub(crate) use pods::*;
pub(crate) use release::*;
pub(crate) use secrets::*;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kubectl rails",
    bin_name = "kubectl rails",
    version,
    about = "Deploy a Ruby on Rails app to Kubernetes",
    long_about = None,
    // A flag given twice keeps its last value, as kubectl's do (`-n a -n b` is `b`); an alias
    // depends on it, since what is typed after it overrides its line.
    args_override_self = true,
    after_help = "Start in the app folder with `kubectl rails init`, then `kubectl rails deploy`.\n\
                  Exit codes: 0 ok, 1 failure, 2 usage error, 124 timeout, 130 interrupted."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Path to the kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`)
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The address and port of the Kubernetes API server (in `secrets registry`, `--server` is
    /// the registry's)
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Username to impersonate for the operation
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeat for several)
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation
    #[arg(long = "as-uid", global = true, value_name = "UID")]
    pub as_uid: Option<String>,
    /// Path to a cert file for the certificate authority
    #[arg(long, global = true, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
    /// Path to a client certificate file for TLS
    #[arg(long, global = true, value_name = "FILE")]
    pub client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS
    #[arg(long, global = true, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Do not check the server's certificate (insecure)
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// How long one server request may take, such as `30s` or `1m` (`0`: no limit)
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_go_duration)]
    pub request_timeout: Option<std::time::Duration>,
    /// Namespace: this flag, then the spec, then the context's namespace, then `default`
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format
    #[arg(short = 'o', long, global = true, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Never prompt: a missing value is an error that names its flag
    #[arg(long, global = true)]
    pub no_input: bool,
    /// Answer yes to confirmations
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// The Rails app folder
    #[arg(
        short = 'C',
        long = "app-dir",
        global = true,
        value_name = "DIR",
        default_value = "."
    )]
    pub app_dir: PathBuf,
    /// A destination: `config/kubernetes.<DEST>.yml` laid over the spec (maps merge, lists replace)
    #[arg(short = 'd', long = "destination", global = true, value_name = "DEST")]
    pub destination: Option<String>,
    /// The spec file (default: `config/kubernetes.yml` in the app folder)
    #[arg(long = "file", global = true, value_name = "FILE")]
    pub spec_file: Option<PathBuf>,
    /// More detail on stderr (repeat for more)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The flags that reach a cluster (the ids of [`GlobalArgs`]' fields). kubectl may pass them to
/// any plugin command, so every command accepts them; the help of a command that never reaches
/// a cluster leaves them out.
const CLUSTER_FLAGS: &[&str] = &[
    "kubeconfig",
    "context",
    "cluster",
    "user",
    "server",
    "token",
    "as_user",
    "as_group",
    "as_uid",
    "certificate_authority",
    "client_certificate",
    "client_key",
    "insecure_skip_tls_verify",
    "tls_server_name",
    "request_timeout",
];

/// The flags of the app folder and its spec, which `explain` (reading no app) has no use for.
const APP_FLAGS: &[&str] = &[
    "namespace",
    "no_input",
    "yes",
    "app_dir",
    "destination",
    "spec_file",
];

/// The command line as clap parses it: [`Cli`], with the global flags a command does not use
/// hidden from its help (`init --help` lists no `--kubeconfig`). A global flag given to a
/// subcommand that has one of its own (hidden, the same) is parsed just as one it inherits.
pub(crate) fn command() -> clap::Command {
    let root = Cli::command();
    let hidden = |ids: &[&[&str]]| -> Vec<clap::Arg> {
        root.get_arguments()
            .filter(|a| ids.iter().any(|ids| ids.contains(&a.get_id().as_str())))
            .map(|a| a.clone().hide(true))
            .collect()
    };
    // `init` writes the base spec (and Kamal's destinations' overlays): `-d` and `-o` do nothing.
    let init = hidden(&[CLUSTER_FLAGS, &["output", "destination"]]);
    let explain = hidden(&[CLUSTER_FLAGS, APP_FLAGS]);
    root.clone()
        .mut_subcommand("init", |c| c.args(init))
        .mut_subcommand("explain", |c| c.args(explain))
}

/// Parses a command line with [`command`].
pub(crate) fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut matches)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Yaml,
    Json,
    Wide,
    Name,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Read the app folder and write `config/kubernetes.yml`
    Init(InitArgs),
    /// Describe a key of the spec file: its type, default, what it does, the keys under it
    Explain(ExplainArgs),
    /// Print the Kubernetes objects of the app, or write them to a folder
    Render(RenderArgs),
    /// Migrate, apply and wait for the app to be Ready
    Deploy(DeployArgs),
    /// Build the image from the app folder (the spec's `build:`) and push it
    Build(BuildArgs),
    /// Show what a deploy would change on the cluster, changing nothing
    Diff(DiffArgs),
    /// Show processes, pods, ingress, autoscalers and recent warnings
    Status(StatusArgs),
    /// List the recorded releases of the app
    Releases,
    /// Restore the image and config of an earlier release
    Rollback(RollbackArgs),
    /// Run a command in a Ready pod of a process (`-- CMD ...`)
    Exec(ExecArgs),
    /// Open `bin/rails console` in a one-off pod (`--reuse`: in a running web pod)
    Console(ConsoleArgs),
    /// Open `bin/rails dbconsole` in a one-off pod (`--reuse`: in a running web pod)
    Dbconsole(ConsoleArgs),
    /// Open a shell (bash, else sh) in a Ready pod
    Shell(ShellArgs),
    /// Run the migration Job of the current spec now
    Migrate(MigrateArgs),
    /// Run a command in a one-off pod cloned from the web pod template (`-- CMD ...`)
    Run(RunArgs),
    /// Show the merged logs of every pod of the app
    Logs(LogsArgs),
    /// Set replicas: `web=3 jobs=2`, or `3` for web (in the cluster and in the spec)
    Scale(ScaleArgs),
    /// Create (or with `--off`, remove) a CPU autoscaler for a process
    Autoscale(AutoscaleArgs),
    /// Answer every request with a 503 page while the pods keep running: `on [--message TEXT]`, `off`
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// A canary beside the current release (`deploy --canary`): status, promote, abort
    Canary {
        #[command(subcommand)]
        command: CanaryCommand,
    },
    /// Delete every object kubectl-rails created for the app (Secrets are kept)
    Destroy(DestroyArgs),
    /// Check that the cluster is ready for the app: ✓ or ✗ with the fix
    Doctor,
    /// Print the ServiceAccount, Role and RoleBinding a deployer needs, and nothing more
    Rbac,
    /// App secrets and registry credentials, never shown in plain text
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Plain (not secret) env in the spec: set, unset, list
    Env {
        #[command(subcommand)]
        command: EnvCommand,
    },
    /// Scheduled commands (the spec's `cron:`): list, run one now, suspend, resume
    Cron {
        #[command(subcommand)]
        command: CronCommand,
    },
    /// A database or cache in the cluster beside the app: `accessory add postgres|redis`
    Accessory {
        #[command(subcommand)]
        command: AccessoryCommand,
    },
    /// Review apps, one namespace per pull request: up, down, list, prune
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// An alias of the spec's `aliases:` (`kubectl rails dbc` for `dbconsole --reuse`)
    #[command(external_subcommand)]
    Alias(Vec<String>),
}

/// The longest duration a flag takes: a year. Anything longer is a typo, and would overflow
/// the deadlines computed from it.
pub(crate) const MAX_DURATION: std::time::Duration = kubectl_rails_core::duration::MAX;

/// Parses `90`, `90s`, `5m` or `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    kubectl_rails_core::duration::parse(text)
}

fn too_long(text: &str) -> String {
    format!("`{text}` is longer than a year: a duration is at most `8760h`")
}

/// kubectl's `--request-timeout`: a bare integer is seconds, otherwise a Go duration such as
/// `1m30s` or `500ms`.
pub(crate) fn parse_go_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || {
        format!(
            "invalid argument \"{text}\" for \"--request-timeout\": a duration such as `30s`, `1m30s` or `500ms` (a bare number is seconds)"
        )
    };
    let capped = |d: std::time::Duration| {
        if d <= MAX_DURATION {
            Ok(d)
        } else {
            Err(format!(
                "invalid argument \"{text}\" for \"--request-timeout\": {}",
                too_long(text)
            ))
        }
    };
    if let Ok(secs) = text.parse::<u64>() {
        return capped(std::time::Duration::from_secs(secs));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        // Digits alone, too many for a u64.
        return capped(std::time::Duration::MAX);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if text.is_empty() {
        return Err(bad());
    }
    // `try_from_secs_f64` fails on what no Duration holds (infinite, too big) rather than panic.
    capped(std::time::Duration::try_from_secs_f64(total).unwrap_or(std::time::Duration::MAX))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn request_timeouts_as_kubectl_reads_them() {
        let d = |t| super::parse_go_duration(t).map(|d| d.as_millis());
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("5"), Ok(5000));
        assert_eq!(d("1m30s"), Ok(90_000));
        assert_eq!(d("500ms"), Ok(500));
        assert_eq!(d("1.5h"), Ok(5_400_000));
        for bad in ["", "soon", "5d", "m", "-1s"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    /// As kubectl: a repeated flag keeps its last value, `-v` still counts, and a list flag
    /// still collects every value.
    #[test]
    fn repeated_flags_keep_the_last_value() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "kubectl rails",
            "-n",
            "first",
            "-vv",
            "status",
            "-n",
            "last",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("last"));
        assert_eq!(cli.global.verbose, 2);
        let cli = super::Cli::try_parse_from([
            "kubectl rails",
            "--as-group",
            "a",
            "--as-group",
            "b",
            "status",
        ])
        .unwrap();
        assert_eq!(cli.global.as_group, ["a", "b"]);
    }

    #[test]
    fn flags_do_not_clash_in_any_subcommand() {
        super::Cli::command().debug_assert();
        super::command().debug_assert();
    }

    /// `init` and `explain` reach no cluster: their help leaves the cluster flags out, yet they
    /// still take them (kubectl may pass them), as every other command does.
    #[test]
    fn cluster_flags_are_hidden_only_where_unused() {
        let help = |name: &str| {
            let mut root = super::command();
            root.build();
            root.find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string()
        };
        for name in ["init", "explain"] {
            let text = help(name);
            for flag in ["--kubeconfig", "--context", "--token", "--as-group"] {
                assert!(!text.contains(flag), "{name} --help shows {flag}:\n{text}");
            }
        }
        assert!(help("init").contains("--namespace"), "init writes it");
        assert!(
            !help("init").contains("--destination"),
            "init reads no overlay"
        );
        assert!(!help("explain").contains("--app-dir"));
        for flag in ["--kubeconfig", "--context", "--token"] {
            assert!(help("deploy").contains(flag), "deploy --help lacks {flag}");
        }
        let cli = super::parse_from([
            "kubectl rails",
            "init",
            "--context",
            "prod",
            "--token",
            "t",
            "-n",
            "shop",
        ])
        .unwrap();
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
        assert_eq!(cli.global.token.as_deref(), Some("t"));
        assert_eq!(cli.global.namespace.as_deref(), Some("shop"));
        let cli = super::parse_from(["kubectl rails", "--context", "prod", "explain"]).unwrap();
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
    }

    /// Durations past a year are refused as usage errors: never a panic (an `Instant` past the
    /// end of time, a float too big for a `Duration`) nor a product that wraps to a small value.
    #[test]
    fn absurd_durations_are_refused() {
        let longest = "8760h";
        assert_eq!(super::parse_duration(longest).unwrap(), super::MAX_DURATION);
        assert_eq!(
            super::parse_go_duration(longest).unwrap(),
            super::MAX_DURATION
        );
        for (text, go) in [
            ("18446744073709551615", false),
            ("18446744073709551615", true),
            ("5124095576030432h", false),
            ("5124095576030432h", true),
            ("31536001", false),
            ("8761h", true),
            ("99999999999999999999h", true),
            ("99999999999999999999", false),
            ("1e400h", true),
        ] {
            let parsed = if go {
                super::parse_go_duration(text)
            } else {
                super::parse_duration(text)
            };
            let err = parsed.expect_err(text);
            assert!(err.contains(text), "{text}: {err}");
        }
        let err = super::parse_duration("18446744073709551615").unwrap_err();
        assert!(err.contains("at most `8760h`"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(super::parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(super::parse_duration("2h").unwrap().as_secs(), 7200);
        assert!(super::parse_duration("soon").is_err());
        assert!(super::parse_duration("5d").is_err());
    }
}
