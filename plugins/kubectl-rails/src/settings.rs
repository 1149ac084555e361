//! Flags, kubeconfig and spec file resolved once, before any work.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::file::{self, Loaded};
use kubectl_rails_core::validate::check_namespace;
use kubectl_rails_core::version::ServerVersion;
use kubectl_rails_kube::proxy::ProxyEnv;
use kubectl_rails_kube::{ClusterArgs, Connection, Resolved};

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
    /// The server's version, as `/version` reported it (`None` when it could not be read).
    pub version: Option<ServerVersion>,
}

impl Settings {
    pub(crate) fn new(global: GlobalArgs) -> Self {
        let spec_path = global
            .spec_file
            .clone()
            .unwrap_or_else(|| global.app_dir.join(kubectl_rails_core::SPEC_PATH));
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
        self.read_spec()
    }

    /// The spec, with the destination's overlay laid over it when `-d` names one.
    fn read_spec(&self) -> anyhow::Result<Loaded> {
        Ok(match &self.global.destination {
            Some(d) => file::load_destination(&self.spec_path, d)?,
            None => file::load(&self.spec_path)?,
        })
    }

    /// Reads the spec and says its warnings, once.
    pub(crate) fn load_spec_and_warn(&self, printer: &Printer) -> anyhow::Result<Loaded> {
        let loaded = self.read_spec()?;
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

    /// Connects to the cluster the flags and kubeconfig name, checks that it answers, and refuses
    /// a server older than the oldest supported version before anything is read or written.
    pub(crate) async fn target(&self, spec: Option<&AppSpec>) -> anyhow::Result<Target> {
        let target = self.target_any_version(spec).await?;
        if let Some(why) = target.version.as_ref().and_then(ServerVersion::unsupported) {
            return Err(exit::failure(
                why,
                Some("upgrade the cluster, or use a kubectl-rails release that supports it; `kubectl rails doctor` lists what else to check".into()),
            ));
        }
        Ok(target)
    }

    /// A spec pinned to a context or a server (a destination's, usually) is refused on any
    /// other cluster, before a single request: the current context is global state, and a
    /// production deploy into staging is the classic accident.
    fn check_pinned(&self, spec: &AppSpec, conn: &Resolved) -> anyhow::Result<()> {
        let which = match &self.global.destination {
            Some(d) => format!("destination `{d}`"),
            None => "the spec".to_string(),
        };
        let here = format!("context `{}` (server {})", conn.context, conn.server);
        if let Some(pinned) = &spec.context
            && pinned != &conn.context
        {
            return Err(exit::failure(
                format!(
                    "{which} is pinned to context `{pinned}`, but this command would run on {here}; nothing was changed"
                ),
                Some(format!(
                    "pass `--context {pinned}` to use it, or pick the destination of this cluster with `-d`"
                )),
            ));
        }
        if let Some(pinned) = &spec.server
            && pinned.trim_end_matches('/') != conn.server.trim_end_matches('/')
        {
            return Err(exit::failure(
                format!(
                    "{which} is pinned to server {pinned}, but this command would run on {here}; nothing was changed"
                ),
                Some("choose the kubeconfig context of that server with `--context`".into()),
            ));
        }
        Ok(())
    }

    /// The cluster the flags (kubectl's, which every command accepts) and the kubeconfig name.
    pub(crate) fn cluster_args(&self) -> ClusterArgs {
        let g = &self.global;
        ClusterArgs {
            kubeconfig: g.kubeconfig.clone(),
            context: g.context.clone(),
            cluster: g.cluster.clone(),
            user: g.user.clone(),
            server: g.server.clone(),
            token: g.token.clone(),
            certificate_authority: g.certificate_authority.clone(),
            client_certificate: g.client_certificate.clone(),
            client_key: g.client_key.clone(),
            insecure_skip_tls_verify: g.insecure_skip_tls_verify,
            tls_server_name: g.tls_server_name.clone(),
            impersonate: g.as_user.clone(),
            impersonate_groups: g.as_group.clone(),
            impersonate_uid: g.as_uid.clone(),
            request_timeout: g.request_timeout,
            proxy_env: ProxyEnv::from_env(),
        }
    }

    /// [`Settings::target`] without the version check, for `doctor`, which reports it.
    pub(crate) async fn target_any_version(
        &self,
        spec: Option<&AppSpec>,
    ) -> anyhow::Result<Target> {
        let args = self.cluster_args();
        // The pin is checked before the client exists: building it runs the context's exec
        // credential plugin (an SSO login, an MFA prompt), which a refused cluster never needs.
        let resolved = kubectl_rails_kube::resolve(&args)?;
        if let Some(spec) = spec {
            self.check_pinned(spec, &resolved)?;
        }
        let conn = resolved.connect().await?;
        let info = conn.check_reachable().await.context("preflight")?;
        let version = ServerVersion::parse(&info.major, &info.minor, &info.git_version);
        let namespace = self.namespace(spec, Some(&conn))?;
        Ok(Target {
            conn,
            namespace,
            version,
        })
    }
}
