//! The client edge of kubectl-rails: connecting the way kubectl does (the kubeconfig, kubectl's
//! connection flags with kubectl's precedence and checks, and kubectl's proxy rules),
//! server-side apply of rendered objects, pruning, and the app's namespace.
//!
//! It holds no Rails knowledge and no rendering: it moves objects to and from the cluster.

mod apply;
mod connect;
mod namespace;
pub mod proxy;
mod reads;
pub use reads::forget_secret_reads;

pub use apply::{
    Applier, ApplyOutcome, PRUNABLE_KINDS, api_resource, comparable, gateway_api_resource,
    is_missing_api, is_optional_api, kind_err, prune_selector,
};
pub use connect::{ClusterArgs, Connection, Resolved, connect, resolve};
pub use namespace::{create_app_namespace, create_restricted_namespace, namespace_exists};

/// The field manager of every server-side apply the plugin makes.
pub const FIELD_MANAGER: &str = "kubectl-rails";

/// What went wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("failed to load the kubeconfig{}", path.as_ref().map(|p| format!(" `{p}`")).unwrap_or_default())]
    Kubeconfig {
        path: Option<String>,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig found: `KUBECONFIG` is unset and `~/.kube/config` does not exist")]
    NoKubeconfig,
    #[error("context `{context}` is not in the kubeconfig (known: {known})")]
    UnknownContext { context: String, known: String },
    #[error("the kubeconfig names no current context, and no `--server` was given")]
    NoContext,
    /// What kubectl itself would refuse, in kubectl's words.
    #[error("invalid configuration: {message}")]
    InvalidConfig { message: String },
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
    #[error("failed to create a client for `{server}`")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot reach the cluster at `{server}`{}", proxy.as_ref().map(|p| format!(" through the proxy `{p}`")).unwrap_or_default())]
    Unreachable {
        server: String,
        proxy: Option<String>,
        #[source]
        source: kube::Error,
    },
    #[error("failed to {action}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// A kind whose API is a CRD the cluster does not have (the Gateway API's HTTPRoute).
    #[error("failed to {action}: the cluster does not serve the `{kind}` API")]
    MissingApi { action: String, kind: String },
    #[error("cannot apply a `{kind}`: kubectl-rails does not manage that kind")]
    UnsupportedKind { kind: String },
}

impl KubeError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoKubeconfig => Some("pass `--kubeconfig FILE` or set `KUBECONFIG`".into()),
            Self::UnknownContext { .. } => Some("list contexts with `kubectl config get-contexts`".into()),
            Self::NoContext => Some("pick one with `--context`, or set it with `kubectl config use-context`".into()),
            Self::InvalidConfig { .. } => Some("fix the flag or the kubeconfig; `kubectl get ns` with the same flags says the same".into()),
            Self::Proxy(_) => Some("fix or unset the proxy (`HTTPS_PROXY`, `HTTP_PROXY`, or the cluster's `proxy-url`); `NO_PROXY` lists hosts that go direct".into()),
            Self::Unreachable { proxy: Some(_), .. } => Some(
                "check that the proxy is running and lets you through, or add the server to `NO_PROXY`; `kubectl get ns` goes the same way".into(),
            ),
            Self::Unreachable { .. } => Some(
                "check that the cluster is running and that `kubectl --context ... get nodes` works; `--context` picks another cluster".into(),
            ),
            Self::MissingApi { .. } => Some(
                "install the Gateway API's CRDs and a Gateway controller (`kubectl rails doctor` checks them), or remove `ingress.gateway` to route with an Ingress".into(),
            ),
            Self::Api { source: kube::Error::Api(status), .. } if status.code == 403 => {
                Some("your user lacks this permission: ask an admin, or run `kubectl rails rbac` to see what the plugin needs".into())
            }
            _ => None,
        }
    }

    /// A denied request (HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Api { source: kube::Error::Api(s), .. } if s.code == 403)
    }
}

/// Wraps a kube error with the action that failed.
pub fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let action = action.into();
    move |source| KubeError::Api { action, source }
}
