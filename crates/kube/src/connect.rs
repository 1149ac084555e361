//! Connecting the way kubectl does: the same flags, the same kubeconfig lookup, the same
//! precedence of flag over kubeconfig, and the same proxy rules.

use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use kube::config::{AuthInfo, Cluster, ExecAuthCluster, Kubeconfig};

use crate::KubeError;
use crate::proxy::{ProxyEnv, proxy_for};

/// What the plugin calls itself in requests: `kubectl-rails/0.1.0`.
pub const USER_AGENT: &str = concat!("kubectl-rails/", env!("CARGO_PKG_VERSION"));

/// kubectl's connection flags, as the plugin received them.
#[derive(Debug, Clone, Default)]
pub struct ClusterArgs {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    /// `--server`/`-s`: the API server address instead of the cluster's.
    pub server: Option<String>,
    /// `--token`: a bearer token instead of the user's credentials.
    pub token: Option<String>,
    /// `--certificate-authority`: a CA file instead of the cluster's CA (and its skip-verify).
    pub certificate_authority: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
    /// `--as`, `--as-group`, `--as-uid`: impersonation.
    pub impersonate: Option<String>,
    pub impersonate_groups: Vec<String>,
    pub impersonate_uid: Option<String>,
    /// `--request-timeout`: how long one request may take; `None` or zero waits as long as it takes.
    pub request_timeout: Option<Duration>,
    /// The proxy variables, read once by the caller.
    pub proxy_env: ProxyEnv,
}

/// A client plus what the kubeconfig said about the chosen context.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
    /// The namespace the context names, if it names one.
    pub context_namespace: Option<String>,
    /// Who the requests act as: `--as`, else the kubeconfig user; recorded in release history.
    pub user: String,
    pub server: String,
    /// The proxy requests go through, when one does.
    pub proxy: Option<String>,
}

fn read_kubeconfig(args: &ClusterArgs) -> Result<Kubeconfig, KubeError> {
    if let Some(path) = &args.kubeconfig {
        return Kubeconfig::read_from(path).map_err(|source| KubeError::Kubeconfig {
            path: Some(path.display().to_string()),
            source,
        });
    }
    if let Some(k) =
        Kubeconfig::from_env().map_err(|source| KubeError::Kubeconfig { path: None, source })?
    {
        return Ok(k);
    }
    let home = std::env::home_dir().map(|h| h.join(".kube").join("config"));
    match home.filter(|p| p.exists()) {
        Some(p) => Kubeconfig::read_from(&p).map_err(|source| KubeError::Kubeconfig {
            path: Some(p.display().to_string()),
            source,
        }),
        // kubectl works without a kubeconfig when the flags say where and who.
        None if args.server.is_some() => Ok(Kubeconfig::default()),
        None => Err(KubeError::NoKubeconfig),
    }
}

fn invalid(message: String) -> KubeError {
    KubeError::InvalidConfig { message }
}

/// The cluster and user after kubectl's flags are laid over the kubeconfig (client-go's
/// `DirectClientConfig.getCluster` and `getAuthInfo`), checked the way kubectl checks them.
fn merged(
    args: &ClusterArgs,
    mut cluster: Cluster,
    mut user: AuthInfo,
    user_name: &str,
) -> Result<(Cluster, AuthInfo), KubeError> {
    let path = |p: &PathBuf| p.display().to_string();
    if let Some(server) = &args.server {
        cluster.server = Some(server.clone());
    }
    // A CA flag or `--insecure-skip-tls-verify` replaces the kubeconfig's whole trust setting.
    if args.insecure_skip_tls_verify || args.certificate_authority.is_some() {
        cluster.insecure_skip_tls_verify = Some(args.insecure_skip_tls_verify);
        cluster.certificate_authority = args.certificate_authority.as_ref().map(path);
        cluster.certificate_authority_data = None;
    }
    // `--server` drops the kubeconfig's server name unless `--tls-server-name` gives one.
    if args.tls_server_name.is_some() || args.server.is_some() {
        cluster.tls_server_name = args.tls_server_name.clone();
    }
    if let Some(token) = &args.token {
        user.token = Some(token.clone().into());
    }
    if let Some(cert) = &args.client_certificate {
        user.client_certificate = Some(path(cert));
    }
    if let Some(key) = &args.client_key {
        user.client_key = Some(path(key));
    }
    if let Some(who) = &args.impersonate {
        user.impersonate = Some(who.clone());
    }
    if !args.impersonate_groups.is_empty() {
        user.impersonate_groups = Some(args.impersonate_groups.clone());
    }
    if let Some(uid) = &args.impersonate_uid {
        user.impersonate_uid = Some(uid.clone());
    }

    // The checks of client-go's `validateClusterInfo` and `validateAuthInfo`, in its words.
    let server = cluster.server.clone().unwrap_or_default();
    if server.is_empty() {
        return Err(invalid(
            "no server found for cluster: the kubeconfig's cluster has no `server`".into(),
        ));
    }
    if cluster.insecure_skip_tls_verify == Some(true)
        && (cluster.certificate_authority.is_some() || cluster.certificate_authority_data.is_some())
    {
        return Err(invalid(
            "specifying a root certificates file with the insecure flag is not allowed".into(),
        ));
    }
    if let Some(ca) = &cluster.certificate_authority
        && cluster.certificate_authority_data.is_none()
        && let Err(e) = std::fs::metadata(ca)
    {
        return Err(invalid(format!(
            "unable to read certificate-authority {ca} for cluster due to {e}"
        )));
    }
    let has = |file: &Option<String>, data: bool| file.is_some() || data;
    let has_cert = has(
        &user.client_certificate,
        user.client_certificate_data.is_some(),
    );
    let has_key = has(&user.client_key, user.client_key_data.is_some());
    if user.client_certificate.is_some() && user.client_certificate_data.is_some() {
        return Err(invalid(format!(
            "client-cert-data and client-cert are both specified for {user_name}; client-cert-data will override"
        )));
    }
    if has_cert && !has_key {
        return Err(invalid(format!(
            "client-key-data or client-key must be specified for {user_name} to use the clientCert authentication method"
        )));
    }
    if has_key && !has_cert {
        return Err(invalid(format!(
            "client-cert-data or client-cert must be specified for {user_name} to use the clientCert authentication method"
        )));
    }
    for (file, what) in [
        (&user.client_certificate, "client-cert"),
        (&user.client_key, "client-key"),
    ] {
        if let Some(f) = file
            && let Err(e) = std::fs::metadata(f)
        {
            return Err(invalid(format!(
                "unable to read {what} {f} for {user_name} due to {e}"
            )));
        }
    }
    if user.impersonate.is_none()
        && (user.impersonate_uid.is_some()
            || user
                .impersonate_groups
                .as_ref()
                .is_some_and(|g| !g.is_empty()))
    {
        return Err(invalid(format!(
            "requesting uid, groups or user-extra for {user_name} without impersonating a user"
        )));
    }
    Ok((cluster, user))
}

/// Where the flags and kubeconfig point, before any credential is fetched: a context's exec
/// plugin (an SSO login, an MFA prompt) runs only in [`Resolved::connect`], so a caller can
/// refuse the wrong cluster first.
pub struct Resolved {
    config: kube::Config,
    pub context: String,
    pub context_namespace: Option<String>,
    pub user: String,
    pub server: String,
    pub proxy: Option<String>,
}

/// Loads the kubeconfig (flag, then `KUBECONFIG`, then `~/.kube/config`), lays kubectl's flags
/// over it and builds a client. It does not contact the server; [`Connection::check_reachable`]
/// does.
pub async fn connect(args: &ClusterArgs) -> Result<Connection, KubeError> {
    resolve(args)?.connect().await
}

impl Resolved {
    /// Builds the client, which runs the user's exec credential plugin. kube runs it
    /// synchronously, so it runs on a blocking thread: a caller's timeout (completion's) can
    /// give up on a plugin that waits for a browser or a prompt.
    pub async fn connect(self) -> Result<Connection, KubeError> {
        let Resolved {
            config,
            context,
            context_namespace,
            user,
            server,
            proxy,
        } = self;
        let for_error = server.clone();
        let client = tokio::task::spawn_blocking(move || {
            kube::client::ClientBuilder::try_from(config)
                .map(|b| b.with_layer(&crate::reads::SecretReads::default()).build())
        })
        .await
        .map_err(|e| invalid(format!("building the client failed: {e}")))?
        .map_err(|source| KubeError::Client {
            server: for_error,
            source,
        })?;
        Ok(Connection {
            client,
            context,
            context_namespace,
            user,
            server,
            proxy,
        })
    }
}

/// The kubeconfig and flags, resolved as kubectl resolves them; nothing is run or sent.
pub fn resolve(args: &ClusterArgs) -> Result<Resolved, KubeError> {
    let kubeconfig = read_kubeconfig(args)?;
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
    let cluster_name = args
        .cluster
        .clone()
        .or_else(|| context.as_ref().map(|c| c.cluster.clone()));
    let cluster = match &cluster_name {
        Some(name) => match kubeconfig.clusters.iter().find(|c| &c.name == name) {
            Some(c) => c.cluster.clone().unwrap_or_default(),
            None if args.cluster.is_some() => {
                return Err(invalid(format!("cluster \"{name}\" does not exist")));
            }
            None => Cluster::default(),
        },
        None => Cluster::default(),
    };
    if cluster_name.is_none() && args.server.is_none() {
        return Err(KubeError::NoContext);
    }
    let user_name = args
        .user
        .clone()
        .or_else(|| context.as_ref().and_then(|c| c.user.clone()))
        .unwrap_or_default();
    let user = match kubeconfig.auth_infos.iter().find(|u| u.name == user_name) {
        Some(u) => u.auth_info.clone().unwrap_or_default(),
        None if args.user.is_some() => {
            return Err(invalid(format!("auth info \"{user_name}\" does not exist")));
        }
        None => AuthInfo::default(),
    };
    let (cluster, mut user) = merged(args, cluster, user, &user_name)?;
    let kubeconfig_path = args.kubeconfig.as_ref().map(|p| p.display().to_string());
    let load_err = |source| KubeError::Kubeconfig {
        path: kubeconfig_path.clone(),
        source,
    };
    let mut server_text = cluster.server.clone().unwrap_or_default();
    // client-go's `DefaultServerURL`: an address without a scheme is https when anything about
    // TLS is configured, else http.
    if !server_text.contains("://") {
        let tls = cluster.certificate_authority.is_some()
            || cluster.certificate_authority_data.is_some()
            || cluster.insecure_skip_tls_verify == Some(true)
            || user.client_certificate.is_some()
            || user.client_certificate_data.is_some();
        server_text = format!("{}://{server_text}", if tls { "https" } else { "http" });
    }
    let server_uri: http::Uri = server_text.parse().map_err(|e| {
        invalid(format!(
            "the server address `{server_text}` is invalid: {e}"
        ))
    })?;
    if server_uri.host().is_none() {
        return Err(invalid(format!(
            "the server address `{server_text}` has no host"
        )));
    }
    // The CA as kube loads it (data, else file), and the cluster as exec plugins are told of it.
    let exec_cluster = ExecAuthCluster::try_from(&cluster).map_err(load_err)?;
    if let Some(exec) = &mut user.exec
        && exec.provide_cluster_info
    {
        exec.cluster = Some(exec_cluster.clone());
    }
    let root_cert = match &exec_cluster.certificate_authority_data {
        Some(pem_bytes) => Some(
            pem::parse_many(pem_bytes)
                .map_err(|e| invalid(format!("the certificate authority is not PEM: {e}")))?
                .into_iter()
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(pem::Pem::into_contents)
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let proxy = proxy_for(&server_uri, cluster.proxy_url.as_deref(), &args.proxy_env)
        .map_err(KubeError::Proxy)?;

    let mut config = kube::Config::new(server_uri);
    config.default_namespace = context_namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    config.root_cert = root_cert;
    config.accept_invalid_certs = cluster.insecure_skip_tls_verify.unwrap_or(false);
    config.disable_compression = cluster.disable_compression.unwrap_or(false);
    config.tls_server_name = cluster.tls_server_name.clone();
    config.proxy_url = proxy.clone();
    if let Some(t) = args.request_timeout.filter(|t| !t.is_zero()) {
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
        config.connect_timeout = config.connect_timeout.map(|c| c.min(t));
    }
    let acting_as = user.impersonate.clone();
    config.auth_info = user;
    let server = config.cluster_url.to_string();
    // Names us in the apiserver's audit log, as kubectl names itself.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    Ok(Resolved {
        config,
        context: context_name,
        context_namespace,
        user: acting_as
            .or_else(|| (!user_name.is_empty()).then(|| user_name.clone()))
            .unwrap_or_else(|| "unknown".into()),
        server,
        proxy: proxy.map(|p| p.to_string()),
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
                    proxy: self.proxy.clone(),
                    source: other,
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        Cluster {
            server: Some("https://10.0.0.1:6443".into()),
            certificate_authority_data: Some("Y2E=".into()),
            tls_server_name: Some("api.internal".into()),
            ..Cluster::default()
        }
    }

    #[test]
    fn flags_override_the_kubeconfig_as_in_kubectl() {
        let args = ClusterArgs {
            server: Some("https://10.9.9.9:443".into()),
            insecure_skip_tls_verify: true,
            token: Some("t".into()),
            impersonate: Some("alice".into()),
            impersonate_groups: vec!["devs".into()],
            ..ClusterArgs::default()
        };
        let (c, u) = merged(&args, cluster(), AuthInfo::default(), "me").unwrap();
        assert_eq!(c.server.as_deref(), Some("https://10.9.9.9:443"));
        assert_eq!(c.certificate_authority_data, None, "insecure drops the CA");
        assert_eq!(c.tls_server_name, None, "--server drops the server name");
        assert_eq!(u.impersonate.as_deref(), Some("alice"));
        assert_eq!(u.impersonate_groups, Some(vec!["devs".to_string()]));
        assert!(u.token.is_some());
    }

    #[test]
    fn kubectl_refuses_what_we_refuse() {
        let both = ClusterArgs {
            insecure_skip_tls_verify: true,
            certificate_authority: Some("/etc/hosts".into()),
            ..ClusterArgs::default()
        };
        let e = merged(&both, cluster(), AuthInfo::default(), "me").unwrap_err();
        assert!(e.to_string().contains("with the insecure flag"), "{e}");
        let group_alone = ClusterArgs {
            impersonate_groups: vec!["devs".into()],
            ..ClusterArgs::default()
        };
        let e = merged(&group_alone, cluster(), AuthInfo::default(), "me").unwrap_err();
        assert!(
            e.to_string().contains("without impersonating a user"),
            "{e}"
        );
        let cert_alone = ClusterArgs {
            client_certificate: Some("/etc/hosts".into()),
            ..ClusterArgs::default()
        };
        let e = merged(&cert_alone, cluster(), AuthInfo::default(), "me").unwrap_err();
        assert!(
            e.to_string().contains("client-key-data or client-key"),
            "{e}"
        );
    }
}
