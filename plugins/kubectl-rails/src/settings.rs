//! Flags, kubeconfig and spec file resolved once, before any work.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use kubectl_rails_kube::{ClusterArgs, Connection};
use kubectl_rails_spec::AppSpec;
use kubectl_rails_spec::file::{self, Loaded};
use kubectl_rails_spec::validate::check_namespace;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::exit;
use crate::printer::Printer;
use crate::prompt::Prompter;

pub(crate) struct Settings {
    pub global: GlobalArgs,
    pub spec_path: PathBuf,
    pub prompter: Prompter,
}

/// A connection and the namespace every command of this run works in.
pub(crate) struct Target {
    pub conn: Connection,
    pub namespace: String,
}

impl Settings {
    pub(crate) fn new(global: GlobalArgs) -> Self {
        let spec_path = global
            .spec_file
            .clone()
            .unwrap_or_else(|| global.app_dir.join(kubectl_rails_spec::SPEC_PATH));
        let interactive =
            !global.no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        Self {
            global,
            spec_path,
            prompter: Prompter { interactive },
        }
    }

    /// Rejects an `-o` value the command does not support (exit 2).
    pub(crate) fn output(
        &self,
        supported: &[OutputFormat],
    ) -> anyhow::Result<Option<OutputFormat>> {
        match self.global.output {
            Some(o) if !supported.contains(&o) => Err(exit::usage(
                format!(
                    "this command does not support `-o {}`",
                    format!("{o:?}").to_lowercase()
                ),
                Some(format!(
                    "supported: {}",
                    supported
                        .iter()
                        .map(|s| format!("{s:?}").to_lowercase())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )),
            o => Ok(o),
        }
    }

    /// Reads the spec. Its warnings are said by `init`, `render` and `deploy`
    /// ([`Settings::load_spec_and_warn`]), not by every command that reads it.
    pub(crate) fn load_spec(&self, _printer: &Printer) -> anyhow::Result<Loaded> {
        Ok(file::load(&self.spec_path)?)
    }

    /// Reads the spec and says its warnings, once.
    pub(crate) fn load_spec_and_warn(&self, printer: &Printer) -> anyhow::Result<Loaded> {
        let loaded = file::load(&self.spec_path)?;
        for w in &loaded.warnings {
            printer.warn(w);
        }
        Ok(loaded)
    }

    /// The namespace: `-n`, then the spec, then the context's, then `default`.
    pub(crate) fn namespace(
        &self,
        spec: Option<&AppSpec>,
        conn: Option<&Connection>,
    ) -> anyhow::Result<String> {
        let ns = self
            .global
            .namespace
            .clone()
            .or_else(|| spec.and_then(|s| s.namespace.clone()))
            .or_else(|| conn.and_then(|c| c.context_namespace.clone()))
            .unwrap_or_else(|| "default".into());
        if let Err(e) = check_namespace(&ns) {
            return Err(exit::usage(
                format!("invalid namespace `{ns}`: {}", e.reason),
                e.suggestion.map(|s| format!("use `{s}`")),
            ));
        }
        Ok(ns)
    }

    /// Connects to the cluster the flags and kubeconfig name, and checks that it answers.
    pub(crate) async fn target(&self, spec: Option<&AppSpec>) -> anyhow::Result<Target> {
        let args = ClusterArgs {
            kubeconfig: self.global.kubeconfig.clone(),
            context: self.global.context.clone(),
            cluster: self.global.cluster.clone(),
            user: self.global.user.clone(),
        };
        let conn = kubectl_rails_kube::connect(&args).await?;
        conn.check_reachable().await.context("preflight")?;
        let namespace = self.namespace(spec, Some(&conn))?;
        Ok(Target { conn, namespace })
    }
}
