//! Releases: `deploy`, `diff`, `status`, `rollback`, review apps.

use clap::{Args, Subcommand, ValueEnum};

use super::parse_duration;

/// `deploy --timeout`'s default, in seconds (it is also the migration Job's deadline).
pub(crate) const DEFAULT_DEPLOY_TIMEOUT_SECS: i64 = 600;

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
    /// Deploy by tag: do not ask the registry for the digest the tag names now
    #[arg(long)]
    pub no_pin: bool,
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
    /// Public host name for the ingress, when the first deploy writes the spec (repeat for several)
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// After the rollout, watch the new release this long (`60s`, `5m`): its 5xx responses
    /// (from the Rails request log), restarts and readiness; past a limit it is rolled back at
    /// once and the deploy exits 3. Migrations are never run down. Default: the spec's
    /// `rollout.bake`, else no bake
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub bake: Option<std::time::Duration>,
    /// With a bake: the percent of requests answered 5xx that fails the release [default: the
    /// spec's `rollout.max_error_rate`, else 5]
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub max_error_rate: Option<f64>,
    /// With a bake: the container restarts of the new pods (or times one stops being Ready)
    /// that fail the release [default: the spec's `rollout.max_restarts`, else 0]
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// Run the new release as a canary beside the current one, taking about PERCENT (1 to 99)
    /// of the requests, until `kubectl rails canary promote` or `abort`; the current web
    /// Deployment is left as it is. Default: the spec's `rollout.canary`, else no canary
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub canary: Option<u8>,
    /// With a canary and a bake: promote the canary when its bake holds (it is aborted, and the
    /// deploy exits 3, when it does not)
    #[arg(long)]
    pub promote: bool,
    #[command(flatten)]
    pub build: BuildChoice,
}

/// A percent between 0 and 100.
fn parse_percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{text}` is not a number of percent, such as `5` or `0.5`"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{text}` is not between 0 and 100"))
    }
}

/// Whether and how `deploy` builds the image (the spec's `build:` section).
#[derive(Debug, Args)]
pub(crate) struct BuildChoice {
    /// Build and push the image even when the registry has its tag already
    #[arg(long, conflicts_with = "skip_build")]
    pub build: bool,
    /// Never build: deploy an image built elsewhere
    #[arg(long)]
    pub skip_build: bool,
    #[command(flatten)]
    pub how: BuildHow,
}

/// Where the build context comes from, and which builder runs it.
#[derive(Debug, Args)]
pub(crate) struct BuildHow {
    /// Build this folder as it is (uncommitted changes included) instead of the committed tree
    /// (`--context` is kubectl's: the kubeconfig context)
    #[arg(long = "build-context", value_name = "DIR")]
    pub build_context: Option<std::path::PathBuf>,
    /// The builder: docker, podman, buildah, nerdctl, or cluster (a BuildKit pod in the
    /// cluster) (default: `build.builder`, else the first found on PATH, else cluster)
    #[arg(long)]
    pub builder: Option<String>,
    /// The BuildKit image of the cluster builder, pinned to a version (default:
    /// `build.cluster.image`, else moby/buildkit:v0.26.3-rootless, or moby/buildkit:v0.26.3
    /// with `build.cluster.privileged`)
    #[arg(long, value_name = "IMAGE")]
    pub builder_image: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Override the spec's image (`repository[:tag]`)
    #[arg(long)]
    pub image: Option<String>,
    /// Override the image tag (default: the git commit)
    #[arg(long)]
    pub tag: Option<String>,
    #[command(flatten)]
    pub how: BuildHow,
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
    /// Compare by tag: do not ask the registry for the digest the tag names now
    #[arg(long)]
    pub no_pin: bool,
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

#[derive(Debug, Subcommand)]
pub(crate) enum MaintenanceCommand {
    /// Answer every request to the app's hosts with 503 and the app's `public/503.html` (or a
    /// page with `--message`); the pods keep running, and deploys keep the page until `off`
    On {
        /// The page says this instead of `public/503.html`
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
        /// How long the page's pod may take to be Ready, such as `60s` or `5m`
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Send the app's hosts back to the app and remove the page
    Off,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CanaryCommand {
    /// Show the current release and the canary beside it, with their shares of the requests
    Status,
    /// Roll the web Deployment forward to the canary's release (a deploy, with its bake if one
    /// is set), then remove the canary
    Promote {
        /// Overall time limit, such as `300s` or `10m`
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// After the rollout, watch the promoted release this long, as `deploy --bake` does
        /// [default: the spec's `rollout.bake`, else no bake]
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        bake: Option<std::time::Duration>,
    },
    /// Remove the canary; the current release keeps running as it is
    Abort {
        /// How long the canary's pods may take to stop, such as `60s`
        #[arg(long, default_value = "2m", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
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
