//! Connecting the way kubectl does: the same flags, the same kubeconfig lookup.

use std::path::PathBuf;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::KubeError;

/// What the plugin calls itself in requests: `kubectl-rails/0.1.0`.
pub const USER_AGENT: &str = concat!("kubectl-rails/", env!("CARGO_PKG_VERSION"));

/// kubectl's connection flags, as the plugin received them.
#[derive(Debug, Clone, Default)]
pub struct ClusterArgs {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
}

/// A client plus what the kubeconfig said about the chosen context.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
    /// The namespace the context names, if it names one.
    pub context_namespace: Option<String>,
    /// The kubeconfig user, recorded in release history.
    pub user: String,
    pub server: String,
}

/// Loads the kubeconfig (flag, then `KUBECONFIG`, then `~/.kube/config`) and builds a client.
/// It does not contact the server; [`Connection::check_reachable`] does.
pub async fn connect(args: &ClusterArgs) -> Result<Connection, KubeError> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(|source| KubeError::Kubeconfig {
            path: Some(path.display().to_string()),
            source,
        })?,
        None => match Kubeconfig::from_env()
            .map_err(|source| KubeError::Kubeconfig { path: None, source })?
        {
            Some(k) => k,
            None => {
                let home = std::env::home_dir().map(|h| h.join(".kube/config"));
                match home.filter(|p| p.exists()) {
                    Some(p) => {
                        Kubeconfig::read_from(&p).map_err(|source| KubeError::Kubeconfig {
                            path: Some(p.display().to_string()),
                            source,
                        })?
                    }
                    None => return Err(KubeError::NoKubeconfig),
                }
            }
        },
    };
    let context_name = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let named = kubeconfig.contexts.iter().find(|c| c.name == context_name);
    if named.is_none() && args.context.is_some() {
        return Err(KubeError::UnknownContext {
            context: context_name,
            known: kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let context = named.and_then(|c| c.context.clone());
    let context_namespace = context.as_ref().and_then(|c| c.namespace.clone());
    let user = args
        .user
        .clone()
        .or_else(|| context.as_ref().and_then(|c| c.user.clone()))
        .unwrap_or_else(|| "unknown".into());
    let options = KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| KubeError::Kubeconfig {
            path: args.kubeconfig.as_ref().map(|p| p.display().to_string()),
            source,
        })?;
    let server = config.cluster_url.to_string();
    // Names us in the apiserver's audit log, as kubectl names itself.
    let mut config = config;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let client = Client::try_from(config).map_err(|source| KubeError::Client {
        server: server.clone(),
        source,
    })?;
    Ok(Connection {
        client,
        context: context_name,
        context_namespace,
        user,
        server,
    })
}

impl Connection {
    /// Asks the server for its version: the cheapest proof that it answers and accepts us.
    pub async fn check_reachable(
        &self,
    ) -> Result<k8s_openapi::apimachinery::pkg::version::Info, KubeError> {
        self.client
            .apiserver_version()
            .await
            .map_err(|source| match source {
                kube::Error::Api(_) => KubeError::Api {
                    action: "read the server version".into(),
                    source,
                },
                other => KubeError::Unreachable {
                    server: self.server.clone(),
                    source: other,
                },
            })
    }
}
