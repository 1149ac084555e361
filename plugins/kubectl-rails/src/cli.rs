//! Every flag and subcommand, as clap derive types. kubectl passes its own flags through to a
//! plugin, so the connection flags mirror kubectl's and are global.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kubectl rails",
    bin_name = "kubectl rails",
    version,
    about = "Deploy a Ruby on Rails app to Kubernetes",
    long_about = None,
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
    /// Print the Kubernetes objects of the app, or write them to a folder
    Render(RenderArgs),
    /// Migrate, apply and wait for the app to be Ready
    Deploy(DeployArgs),
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

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// Deploy a review app into its own namespace and print its URL
    Up {
        /// Its name, such as `pr-123` (default: the current git branch)
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// Remove it with `review prune` after this long, such as `72h`
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<std::time::Duration>,
        /// The image tag (default: the spec's, else the git commit)
        #[arg(long)]
        tag: Option<String>,
        /// Overall time limit of its deploy
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Remove a review app: its namespace and everything in it, Secrets and volumes too
    Down {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// The review apps, their age, image, URL and expiry
    List,
    /// Remove the review apps whose `--ttl` has passed (for a CI cron)
    Prune,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccessoryCommand {
    /// Run PostgreSQL or Redis in the cluster, with a volume, a password Secret, and the app's
    /// `DATABASE_URL`/`REDIS_URL` pointing at it
    Add(AccessoryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AccessoryArgs {
    /// `postgres` or `redis`
    pub kind: String,
    /// Its name in the spec and its objects' suffix (default: the kind)
    #[arg(long)]
    pub name: Option<String>,
    /// The image (default: `postgres:16` or `redis:7`)
    #[arg(long)]
    pub image: Option<String>,
    /// The size of its data volume
    #[arg(long, default_value = "10Gi")]
    pub size: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// The CronJobs of the app: schedule, time zone, last run, whether suspended
    List,
    /// Start a Job from a CronJob now and wait for it
    Run {
        /// The `cron:` entry
        name: String,
        /// How long to wait for it, such as `10m`
        #[arg(long, default_value = "30m", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Stop scheduling new runs (in the cluster and the spec)
    Suspend { name: String },
    /// Schedule runs again (in the cluster and the spec)
    Resume { name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
    /// Set `KEY=VALUE` pairs in the spec's `env` (a key listed as a secret moves over)
    Set {
        #[arg(value_name = "KEY=VALUE", required = true)]
        pairs: Vec<String>,
    },
    /// Remove keys from the spec's `env`
    Unset {
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// List the plain env, and the names of the secrets
    List,
}

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

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    /// `PROCESS=REPLICAS` pairs, or one number for web
    #[arg(
        required = true,
        allow_negative_numbers = true,
        value_name = "PROCESS=N"
    )]
    pub targets: Vec<String>,
    /// Scale web past one replica even when the app's volume is ReadWriteOnce
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AutoscaleArgs {
    /// The process to autoscale
    #[arg(default_value = "web")]
    pub process: String,
    /// Fewest replicas
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub min: i32,
    /// Most replicas
    #[arg(long, required_unless_present = "off", allow_negative_numbers = true)]
    pub max: Option<i32>,
    /// Target average CPU, in percent of the request
    #[arg(long, default_value_t = 70, allow_negative_numbers = true)]
    pub cpu: i32,
    /// Remove the autoscaler
    #[arg(long, conflicts_with_all = ["max"])]
    pub off: bool,
    /// Autoscale web past one replica even when the app's volume is ReadWriteOnce
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Delete the app Secret and the pull secret too
    #[arg(long)]
    pub include_secrets: bool,
    /// Delete volume claims too (their data is lost)
    #[arg(long)]
    pub include_volumes: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Set values: `KEY=VALUE`, or `KEY` alone to type it with hidden input
    Set {
        #[arg(value_name = "KEY[=VALUE]")]
        pairs: Vec<String>,
        /// Read `KEY=value` lines from a file
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        /// Roll the pods now instead of on the next deploy
        #[arg(long)]
        restart: bool,
    },
    /// Import the spec's keys from `.env`, `config/master.key` and `.kamal/secrets`
    Import {
        /// The env file to read (default: `.env` in the app folder)
        #[arg(long, value_name = "FILE")]
        from_env: Option<PathBuf>,
        /// Move plain-text `env` values out of hand-written manifests in this folder
        #[arg(long, value_name = "DIR", conflicts_with = "from_env")]
        from_manifests: Option<PathBuf>,
        /// Run the `$(...)` commands of `.kamal/secrets` (after asking), in one shell as Kamal does
        #[arg(long)]
        allow_commands: bool,
        /// Roll the pods now instead of on the next deploy
        #[arg(long)]
        restart: bool,
        /// How long the `.kamal/secrets` commands may run, such as `60s`
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// List key names, change times and digests (never values)
    List,
    /// Remove keys
    Unset {
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
        /// Roll the pods now instead of on the next deploy
        #[arg(long)]
        restart: bool,
    },
    /// Write the image pull secret for a private registry
    Registry {
        /// Registry host (default: the spec's registry, else the image's host)
        #[arg(long)]
        server: Option<String>,
        /// Registry user (default: from the Docker config)
        #[arg(long)]
        username: Option<String>,
        /// Read the password or token from stdin
        #[arg(long)]
        password_stdin: bool,
        /// The Docker config to read (default: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`)
        #[arg(long, value_name = "FILE")]
        docker_config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// App name, used as the prefix of every object name
    #[arg(long)]
    pub name: Option<String>,
    /// Container image, `repository:tag`
    #[arg(long)]
    pub image: Option<String>,
    /// Public host name for the ingress (repeat for several)
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Do not render an ingress
    #[arg(long, conflicts_with = "hosts")]
    pub no_ingress: bool,
    /// Web replicas
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: Option<i32>,
    /// Container port of the web process (default: from the Dockerfile and Kamal)
    #[arg(long)]
    pub port: Option<u16>,
    /// Run every pod on nodes with this label, `KEY=VALUE` (repeat for several)
    #[arg(long = "node-selector", value_name = "KEY=VALUE")]
    pub node_selectors: Vec<String>,
    /// Tolerate a node taint, in kubectl's taint syntax `KEY[=VALUE][:EFFECT]` (repeat for several)
    #[arg(long = "toleration", value_name = "KEY[=VALUE][:EFFECT]")]
    pub tolerations: Vec<String>,
    /// The numeric user the image runs as (default: from the Dockerfile's `USER` or `useradd --uid`)
    #[arg(long, allow_negative_numbers = true)]
    pub uid: Option<i64>,
    /// The numeric group, which also owns the volume (default: from the Dockerfile)
    #[arg(long, allow_negative_numbers = true)]
    pub gid: Option<i64>,
    /// Pulling the image needs credentials: render a pull secret (default: when Kamal or the Docker config logs in to the registry)
    #[arg(long, conflicts_with = "public")]
    pub private: bool,
    /// Pulling the image needs no credentials: no pull secret
    #[arg(long)]
    pub public: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Write one file per object into this folder instead of printing
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MigrateMode {
    /// Run the migration Job, then roll out
    Auto,
    /// Roll out without migrating
    Skip,
    /// Run the migration Job and stop
    Only,
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Override the spec's image (`repository[:tag]`)
    #[arg(long)]
    pub image: Option<String>,
    /// Override the image tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Allow the `latest` tag (it cannot be rolled back)
    #[arg(long)]
    pub allow_latest: bool,
    /// Run migrations before the rollout
    #[arg(long, value_enum, default_value = "auto")]
    pub migrate: MigrateMode,
    /// Ask the server to validate everything, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Overall time limit, such as `300s` or `10m`
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Do not run the `pre-deploy` and `post-deploy` hooks
    #[arg(long)]
    pub skip_hooks: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// Override the spec's image (`repository[:tag]`)
    #[arg(long)]
    pub image: Option<String>,
    /// Override the image tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Exit 1 when there are changes, like `git diff --exit-code`
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Keep the screen updated from watches
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The release to restore (default: the one before the current)
    pub revision: Option<u32>,
    /// Overall time limit, such as `300s` or `10m`
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `deploy --timeout`'s default, in seconds (it is also the migration Job's deadline).
pub(crate) const DEFAULT_DEPLOY_TIMEOUT_SECS: i64 = 600;

/// Parses `90`, `90s`, `5m` or `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `90s` or `10m`"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{text}` is not a duration such as `90s` or `10m`")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// kubectl's `--request-timeout`: a bare integer is seconds, otherwise a Go duration such as
/// `1m30s` or `500ms`.
pub(crate) fn parse_go_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || {
        format!(
            "invalid argument \"{text}\" for \"--request-timeout\": a duration such as `30s`, `1m30s` or `500ms` (a bare number is seconds)"
        )
    };
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
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
    Ok(std::time::Duration::from_secs_f64(total))
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

    #[test]
    fn flags_do_not_clash_in_any_subcommand() {
        super::Cli::command().debug_assert();
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
