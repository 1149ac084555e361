//! `secrets`: set, import, list, unset, registry.

use std::path::PathBuf;

use clap::Subcommand;

use super::parse_duration;

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Set values: `KEY=VALUE`, or `KEY` alone to type it with hidden input
    Set {
        #[arg(value_name = "KEY[=VALUE]")]
        pairs: Vec<String>,
        /// Read `KEY=value` lines from a file; with one KEY, the file's whole content is its value (mount it with `secrets: {KEY: {file: PATH}}`)
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
