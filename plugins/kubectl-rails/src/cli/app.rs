//! The app and its spec: `init`, `render`, `scale`, `autoscale`, `env`, `cron`, `accessory`,
//! `destroy`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::parse_duration;

#[derive(Debug, Args)]
#[command(
    after_help = "Keys: `kubectl rails explain`, or `kubectl rails explain KEY` for one \
                        (`web.health_path`, `workers.NAME.command`); `-o json` prints its schema."
)]
pub(crate) struct ExplainArgs {
    /// A key of the spec, dotted (`web`, `ingress.tls`, `workers.jobs.command`: an entry of a
    /// map, such as a worker, by any name); none: the top-level keys
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
    /// Print the JSON Schema of the spec file, as published with each release
    #[arg(long, conflicts_with = "key")]
    pub schema: bool,
    /// With `--schema`: the schema of a destination overlay (`config/kubernetes.<DEST>.yml`),
    /// where every key is optional
    #[arg(long, requires = "schema")]
    pub overlay: bool,
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
    /// Route the hosts through this Gateway of the Gateway API (an HTTPRoute instead of an Ingress; TLS is the Gateway listener's)
    #[arg(long, value_name = "NAMESPACE/NAME", conflicts_with_all = ["no_ingress", "tls", "issuer"])]
    pub gateway: Option<String>,
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
    /// The path the readiness probe asks, or `tcp` for a TCP check (default: the app's routes)
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// The command that starts the web server, as a Procfile line (default: the image's CMD or the Procfile)
    #[arg(long, value_name = "COMMAND")]
    pub web_command: Option<String>,
    /// Serve the hosts over HTTPS (default: when the app forces SSL or Kamal's proxy has `ssl`)
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Serve the hosts over plain HTTP
    #[arg(long)]
    pub no_tls: bool,
    /// The cert-manager ClusterIssuer that signs the certificates (default: `letsencrypt`)
    #[arg(long, value_name = "NAME")]
    pub issuer: Option<String>,
    /// The Dockerfile the image is built from, relative to the app folder (default: `Dockerfile`, else the only production one)
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<String>,
    /// The Dockerfile stage the image is built from (default: the last)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Write one file per object into this folder instead of printing
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Override the spec's image (`repository[:tag]`), as `deploy --image` does
    #[arg(long)]
    pub image: Option<String>,
    /// Override the image tag, as `deploy --tag` does (default: the spec's, else the app's git commit, as deploy tags it)
    #[arg(long)]
    pub tag: Option<String>,
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

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Delete the app Secret and the pull secret too
    #[arg(long)]
    pub include_secrets: bool,
    /// Delete volume claims too (their data is lost)
    #[arg(long)]
    pub include_volumes: bool,
}
