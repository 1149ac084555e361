//! The plugin reaches every cluster kubectl reaches, the way kubectl does: through a kubeconfig
//! `proxy-url` (HTTP CONNECT or SOCKS5) for any address, through `HTTPS_PROXY` except where
//! kubectl goes direct (loopback, `localhost`, `NO_PROXY`), and with kubectl's connection flags
//! after the plugin name. Each case runs kubectl beside the plugin and expects the same outcome.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netfakes::{
    ClusterCreds, FakeApi, Proxy, black_hole, cluster_creds, dead_port, kubeconfig,
};
use crate::support::{Run, TestNs, path_env, rails_full, rails71_initialised, words};

/// Plain kubectl with a kubeconfig and extra environment, as a user's shell would run it.
fn kubectl_env(kubeconfig: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path_env());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An app whose spec names `ns`, for commands that read the cluster (`releases`).
fn app(ns: &TestNs) -> tempfile::TempDir {
    rails71_initialised(&["--no-ingress", "-n", &ns.name])
}

fn admin_user(creds: &ClusterCreds) -> Vec<String> {
    vec![format!("token: {}", creds.token)]
}

fn ca(creds: &ClusterCreds) -> String {
    format!("certificate-authority-data: {}", creds.ca_data)
}

/// `kubectl get ns NS` and `kubectl rails releases` with the same kubeconfig, flags and
/// environment: both succeed, or both fail.
fn both(
    ns: &TestNs,
    dir: &Path,
    kubeconfig: &Path,
    flags: &[&str],
    env: &[(&str, String)],
) -> (Run, Run) {
    let mut k = vec!["get", "namespace", ns.name.as_str()];
    k.extend(flags);
    let kubectl = kubectl_env(kubeconfig, &k, env);
    let mut r = vec!["-n", ns.name.as_str(), "releases"];
    r.extend(flags);
    let plugin = rails_full(dir, Some(kubeconfig), &r, None, env);
    (kubectl, plugin)
}

#[track_caller]
fn both_succeed((kubectl, plugin): (Run, Run)) {
    assert_eq!(kubectl.code, 0, "kubectl works here:\n{}", kubectl.stderr);
    assert_eq!(
        plugin.code, 0,
        "kubectl works here, so must the plugin:\n{}",
        plugin.stderr
    );
}

#[track_caller]
fn both_fail((kubectl, plugin): (Run, Run), plugin_says: &str) {
    assert_ne!(
        kubectl.code, 0,
        "kubectl fails here too:\n{}",
        kubectl.stdout
    );
    assert_eq!(plugin.code, 1, "{}", plugin.stderr);
    plugin.stderr_has(plugin_says);
    assert!(!plugin.stderr.contains("panicked"), "{}", plugin.stderr);
}

#[test]
fn a_kubeconfig_proxy_url_carries_every_request_even_to_loopback() {
    let ns = TestNs::new("proxy-url");
    let app = app(&ns);
    let creds = cluster_creds();
    for proxy in [Proxy::connect(), Proxy::socks5()] {
        let cfg = kubeconfig(
            app.path(),
            "via-proxy",
            &[
                format!("server: {}", creds.server),
                ca(&creds),
                format!("proxy-url: {}", proxy.url()),
            ],
            &admin_user(&creds),
        );
        let kubectl = kubectl_env(&cfg, &["get", "namespace", &ns.name], &[]).success();
        assert!(proxy.tunnels() > 0, "kubectl went through {}", proxy.url());
        drop(kubectl);
        let before = proxy.tunnels();
        rails_full(
            app.path(),
            Some(&cfg),
            &["-n", &ns.name, "releases"],
            None,
            &[],
        )
        .success();
        assert!(
            proxy.tunnels() > before,
            "the plugin went through {} as kubectl does",
            proxy.url()
        );
    }
}

#[test]
fn https_proxy_is_used_exactly_where_kubectl_uses_it() {
    let ns = TestNs::new("https-proxy");
    let app = app(&ns);
    let dir = app.path();
    let creds = cluster_creds();
    let direct = kubeconfig(
        dir,
        "direct",
        &[format!("server: {}", creds.server), ca(&creds)],
        &admin_user(&creds),
    );
    // A proxy that is down: kubectl never sends a loopback server through it, nor `localhost`.
    let dead = format!("http://127.0.0.1:{}", dead_port());
    for var in ["HTTPS_PROXY", "https_proxy"] {
        both_succeed(both(&ns, dir, &direct, &[], &[(var, dead.clone())]));
        both_succeed(both(
            &ns,
            dir,
            &direct,
            &["--server", &format!("https://localhost:{}", creds.port())],
            &[(var, dead.clone())],
        ));
    }

    // A name that is neither loopback nor `localhost` goes through the proxy (names under
    // `.test` reach this machine through the test proxy only).
    let proxy = Proxy::connect();
    let named = [
        "--server",
        &format!("https://api.cluster.test:{}", creds.port()),
        "--tls-server-name",
        "kubernetes",
    ];
    let (kubectl, plugin) = both(&ns, dir, &direct, &named, &[("HTTPS_PROXY", proxy.url())]);
    let through = proxy.tunnels();
    both_succeed((kubectl, plugin));
    assert!(
        through >= 2,
        "kubectl and the plugin each opened a tunnel: {through}"
    );
    // Lower case, and a proxy given without a scheme, as Go takes them.
    let bare = proxy.addr.to_string();
    both_succeed(both(&ns, dir, &direct, &named, &[("https_proxy", bare)]));
    assert!(proxy.tunnels() > through);

    // `NO_PROXY` by domain suffix, by the name itself, by wildcard: both go direct, where the
    // name does not resolve, and neither opens a tunnel.
    for no_proxy in [
        ".cluster.test",
        "cluster.test",
        "api.cluster.test",
        "*.test",
        "*",
    ] {
        let before = proxy.tunnels();
        for var in ["NO_PROXY", "no_proxy"] {
            both_fail(
                both(
                    &ns,
                    dir,
                    &direct,
                    &named,
                    &[("HTTPS_PROXY", proxy.url()), (var, no_proxy.into())],
                ),
                "cannot reach the cluster at `https://api.cluster.test",
            );
        }
        assert_eq!(proxy.tunnels(), before, "NO_PROXY={no_proxy} goes direct");
    }
    // A port in `NO_PROXY` must match: another port still goes through.
    let before = proxy.tunnels();
    both_succeed(both(
        &ns,
        dir,
        &direct,
        &named,
        &[
            ("HTTPS_PROXY", proxy.url()),
            ("NO_PROXY", "api.cluster.test:1".into()),
        ],
    ));
    assert!(proxy.tunnels() > before);

    // Through a proxy that is down, both fail; the plugin says which proxy.
    let (kubectl, plugin) = both(&ns, dir, &direct, &named, &[("HTTPS_PROXY", dead.clone())]);
    both_fail((kubectl, plugin), &format!("through the proxy `{dead}"));
}

#[test]
fn kubectls_connection_flags_after_the_plugin_name() {
    let ns = TestNs::new("flags");
    let app = app(&ns);
    let dir = app.path();
    let creds = cluster_creds();
    let ca_file = creds.ca_file(dir);
    let ca_file = ca_file.to_str().unwrap();
    let port = creds.port();
    // A kubeconfig whose server is down and whose user has no credentials: the flags do it all.
    let bare = kubeconfig(
        dir,
        "bare",
        &[
            format!("server: https://127.0.0.1:{}", dead_port()),
            ca(&creds),
        ],
        &[],
    );
    let server = creds.server.as_str();
    let token = creds.token.as_str();
    // Both `kubectl get namespace` and the plugin, with these flags after the command.
    let flags = |cfg: &Path, flags: &str| both(&ns, dir, cfg, &words(flags), &[]);
    both_succeed(flags(&bare, &format!("--server {server} --token {token}")));
    both_succeed(flags(&bare, &format!("-s {server} --token {token}")));
    both_succeed(flags(
        &bare,
        &format!("-s {server} --token {token} --insecure-skip-tls-verify"),
    ));
    let no_ca = kubeconfig(dir, "no-ca", &[format!("server: {server}")], &[]);
    both_succeed(flags(
        &no_ca,
        &format!("--token {token} --certificate-authority {ca_file}"),
    ));
    let localhost = format!("https://localhost:{port}");
    both_succeed(flags(
        &bare,
        &format!("-s {localhost} --token {token} --tls-server-name kubernetes"),
    ));
    both_succeed(flags(
        &bare,
        &format!("-s {server} --token {token} --request-timeout 30s"),
    ));
    // What kubectl refuses, the plugin refuses.
    both_fail(
        flags(
            &bare,
            &format!("-s {server} --token {token} --tls-server-name wrong.example"),
        ),
        "cannot reach the cluster",
    );
    both_fail(
        flags(&bare, &format!("-s {server} --token not-a-valid-token")),
        "Unauthorized",
    );
    both_fail(
        flags(&no_ca, &format!("--token {token}")),
        "cannot reach the cluster",
    );
    both_fail(
        flags(
            &bare,
            &format!("-s {server} --token {token} --as-group devs"),
        ),
        "without impersonating a user",
    );
    // `--request-timeout` bounds a request to a server that never answers.
    let hole = format!("https://{}", black_hole());
    let started = Instant::now();
    both_fail(
        flags(
            &bare,
            &format!("-s {hole} --token {token} --request-timeout 2s"),
        ),
        "cannot reach the cluster",
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "both gave up after about 2 s each: {:?}",
        started.elapsed()
    );
}

/// A server below the oldest supported version is refused before anything is written, with
/// both versions named; `doctor` says the same as a failed check.
#[test]
fn an_old_server_is_refused_before_anything_changes() {
    let app = rails71_initialised(&["--no-ingress", "-n", "old-server"]);
    let fake = FakeApi::start("v1.28.15");
    let cfg = kubeconfig(
        app.path(),
        "old",
        &[format!("server: {}", fake.server())],
        &["token: x".to_string()],
    );
    let run = rails_full(
        app.path(),
        Some(&cfg),
        &["deploy", "--no-input", "--yes"],
        None,
        &[],
    )
    .code(1);
    run.stderr_has("Kubernetes v1.28.15");
    run.stderr_has("1.29 or newer");
    let requests = fake.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET /version")),
        "only the version was asked: {requests:?}"
    );
    let doctor = rails_full(app.path(), Some(&cfg), &["doctor"], None, &[]).code(1);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("✗ server version") && l.contains("1.29")),
        "{}",
        doctor.stdout
    );
}
