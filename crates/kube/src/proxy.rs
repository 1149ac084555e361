//! Which proxy a request to the cluster goes through, by kubectl's rules. kubectl takes a
//! kubeconfig cluster's `proxy-url` for any address; otherwise Go's `httpproxy` reads
//! `HTTPS_PROXY` (for an `https` server) or `HTTP_PROXY` (for `http`), upper case first, never
//! for `localhost` or a loopback address, and not for a host `NO_PROXY` names (IP addresses,
//! CIDRs, domain suffixes, `*`, each with an optional port).

use std::net::IpAddr;

/// The proxy variables of the environment, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https_proxy: Option<String>,
    pub http_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// `HTTPS_PROXY` before `https_proxy`, and so on, as Go does; empty counts as unset.
    pub fn from_env() -> Self {
        let get = |upper: &str, lower: &str| {
            [upper, lower]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        };
        Self {
            https_proxy: get("HTTPS_PROXY", "https_proxy"),
            http_proxy: get("HTTP_PROXY", "http_proxy"),
            no_proxy: get("NO_PROXY", "no_proxy"),
        }
    }
}

/// A proxy setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid proxy `{value}` in {source_name}: {reason}")]
pub struct ProxyError {
    pub value: String,
    /// `HTTPS_PROXY`, or the kubeconfig's `proxy-url`.
    pub source_name: String,
    pub reason: String,
}

/// Schemes kube's client can speak to a proxy (kubectl also takes these).
const SCHEMES: &[&str] = &["http", "https", "socks5"];

fn parse_proxy(
    value: &str,
    source_name: &str,
    prepend_http: bool,
) -> Result<http::Uri, ProxyError> {
    let err = |reason: String| ProxyError {
        value: value.to_string(),
        source_name: source_name.to_string(),
        reason,
    };
    // Go's httpproxy takes `proxy.corp:3128` as `http://proxy.corp:3128`.
    let text = if prepend_http && !value.contains("://") {
        format!("http://{value}")
    } else {
        value.to_string()
    };
    let uri: http::Uri = text.parse().map_err(|e| err(format!("{e}")))?;
    match uri.scheme_str() {
        Some(s) if SCHEMES.contains(&s) => {}
        Some(s) => {
            return Err(err(format!(
                "unsupported scheme `{s}`, must be http, https, or socks5"
            )));
        }
        None => return Err(err("no scheme".into())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(err("no host".into()));
    }
    Ok(uri)
}

/// The proxy for requests to `server`, if any.
pub fn proxy_for(
    server: &http::Uri,
    kubeconfig_proxy: Option<&str>,
    env: &ProxyEnv,
) -> Result<Option<http::Uri>, ProxyError> {
    if let Some(p) = kubeconfig_proxy.filter(|p| !p.is_empty()) {
        return parse_proxy(p, "the kubeconfig's `proxy-url`", false).map(Some);
    }
    let (value, name) = match server.scheme_str() {
        Some("http") => (env.http_proxy.as_deref(), "HTTP_PROXY"),
        _ => (env.https_proxy.as_deref(), "HTTPS_PROXY"),
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let host = server
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = server
        .port_u16()
        .unwrap_or(if server.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    if !uses_proxy(&host, port, env.no_proxy.as_deref().unwrap_or("")) {
        return Ok(None);
    }
    parse_proxy(value, name, true).map(Some)
}

/// Go's `httpproxy.(*config).useProxy`: loopback and `localhost` never, then `NO_PROXY`.
fn uses_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    if host == "localhost" {
        return false;
    }
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some((net, bits)) = entry.split_once('/')
            && let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u8>())
        {
            if ip.is_some_and(|ip| in_cidr(ip, net, bits)) {
                return false;
            }
            continue;
        }
        let (entry_host, entry_port) = split_host_port(&entry);
        if entry_host.is_empty() {
            continue;
        }
        let port_matches = entry_port.is_none_or(|p| p == port);
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) && port_matches {
                return false;
            }
            continue;
        }
        let suffix = entry_host.strip_prefix('*').unwrap_or(entry_host);
        // `example.com` matches the host and its subdomains; `.example.com` only subdomains.
        let (suffix, exact_too) = match suffix.strip_prefix('.') {
            Some(_) => (suffix.to_string(), false),
            None => (format!(".{suffix}"), true),
        };
        let matches = host.ends_with(&suffix) || (exact_too && host == &suffix[1..]);
        if matches && port_matches {
            return false;
        }
    }
    true
}

/// `host:port`, `[v6]:port` or a bare host; a port that is not a number leaves the entry whole.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: &str, no_proxy: &str) -> ProxyEnv {
        ProxyEnv {
            https_proxy: Some(https.to_string()),
            http_proxy: None,
            no_proxy: (!no_proxy.is_empty()).then(|| no_proxy.to_string()),
        }
    }

    fn via(server: &str, env: &ProxyEnv) -> Option<String> {
        proxy_for(&server.parse().unwrap(), None, env)
            .unwrap()
            .map(|u| u.to_string())
    }

    #[test]
    fn loopback_and_localhost_never_use_the_environment_proxy() {
        let e = env("http://proxy.corp:3128", "");
        for server in [
            "https://127.0.0.1:6443",
            "https://127.9.9.9",
            "https://localhost:6443",
            "https://[::1]:6443",
        ] {
            assert_eq!(via(server, &e), None, "{server}");
        }
        assert_eq!(
            via("https://10.0.0.5:6443", &e).as_deref(),
            Some("http://proxy.corp:3128/")
        );
    }

    #[test]
    fn a_kubeconfig_proxy_url_is_used_for_any_address() {
        let e = env("http://ignored:1", "*");
        let p = proxy_for(
            &"https://127.0.0.1:6443".parse().unwrap(),
            Some("http://127.0.0.1:3128"),
            &e,
        )
        .unwrap();
        assert_eq!(p.unwrap().to_string(), "http://127.0.0.1:3128/");
        let socks = proxy_for(
            &"https://k8s.corp".parse().unwrap(),
            Some("socks5://127.0.0.1:1080"),
            &ProxyEnv::default(),
        )
        .unwrap();
        assert_eq!(socks.unwrap().scheme_str(), Some("socks5"));
    }

    #[test]
    fn no_proxy_ips_cidrs_domains_and_ports() {
        let e = env(
            "proxy.corp:3128",
            " 10.0.0.0/8 ,192.168.1.7,.internal, example.com,*.wild.org,k8s.io:8443,,fd00::/8",
        );
        for (server, proxied) in [
            ("https://10.1.2.3:6443", false),
            ("https://11.1.2.3:6443", true),
            ("https://192.168.1.7", false),
            ("https://192.168.1.8", true),
            ("https://api.internal", false),
            ("https://internal", true),
            ("https://example.com", false),
            ("https://api.example.com", false),
            ("https://notexample.com", true),
            ("https://a.wild.org", false),
            ("https://wild.org", true),
            ("https://k8s.io:8443", false),
            ("https://k8s.io:6443", true),
            ("https://[fd00::1]:6443", false),
            ("https://API.EXAMPLE.COM", false),
        ] {
            assert_eq!(via(server, &e).is_some(), proxied, "{server}");
        }
        assert_eq!(
            via("https://11.1.2.3", &e).as_deref(),
            Some("http://proxy.corp:3128/"),
            "a proxy without a scheme is http, as in Go"
        );
        assert_eq!(via("https://anything", &env("http://p:1", "*")), None);
    }

    #[test]
    fn the_server_scheme_picks_the_variable() {
        let e = ProxyEnv {
            https_proxy: None,
            http_proxy: Some("http://plain:8080".into()),
            no_proxy: None,
        };
        assert_eq!(via("https://10.0.0.1", &e), None);
        assert_eq!(
            via("http://10.0.0.1", &e).as_deref(),
            Some("http://plain:8080/")
        );
    }

    #[test]
    fn a_bad_proxy_names_its_source() {
        let e = env("ftp://proxy:21", "");
        let err = proxy_for(&"https://10.0.0.1".parse().unwrap(), None, &e).unwrap_err();
        assert_eq!(err.source_name, "HTTPS_PROXY");
        assert!(err.reason.contains("unsupported scheme `ftp`"), "{err}");
        let err = proxy_for(
            &"https://10.0.0.1".parse().unwrap(),
            Some("127.0.0.1:3128"),
            &ProxyEnv::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("proxy-url"), "{err}");
    }
}
