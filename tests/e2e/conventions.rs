//! kubectl plugin conventions: krew install, completion through kubectl, connection flags, and
//! honest exit codes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::deploy::{deployed_rails71, rails71_app};
use crate::support::{Run, TestNs, fixture, path_env, rails, root, words};

fn run(cmd: &mut Command) -> Run {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The krew and validator binaries, built once from the Go module proxy (cached).
fn krew_bin() -> PathBuf {
    let out = run(&mut Command::new(root().join("tests/krew/tools")));
    assert_eq!(out.code, 0, "tests/krew/tools failed:\n{}", out.stderr);
    PathBuf::from(out.stdout.lines().last().unwrap().trim())
}

/// Packs the freshly built binary the way a release does; returns (archive, manifest).
fn release(out: &Path) -> (PathBuf, PathBuf) {
    let r = run(Command::new(root().join("scripts/release")).args([
        "--binary",
        env!("CARGO_BIN_EXE_kubectl-rails"),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 0, "scripts/release failed:\n{}", r.stderr);
    (PathBuf::from(r.stdout.trim()), out.join("rails.yaml"))
}

/// Serves one file over HTTP on loopback for as long as the test runs: the validator downloads
/// the archive from the manifest's `uri`, and nothing outside this machine is reachable.
fn serve(file: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = std::fs::read(&file).unwrap();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    port
}

/// A placeholder sha256 (all zeros) would let krew install whatever the URI serves: no manifest
/// that is installed may carry one.
fn placeholders(manifest: &str) -> usize {
    manifest
        .lines()
        .filter(|l| l.contains(&"0".repeat(64)))
        .count()
}

#[track_caller]
fn refuse_placeholders(manifest: &str) {
    assert_eq!(
        placeholders(manifest),
        0,
        "an all-zero sha256 in a manifest about to be installed:\n{manifest}"
    );
}

/// The committed manifest is the template the release workflow fills: it is refused as it is,
/// and says so.
#[test]
fn the_committed_manifest_is_a_template_the_install_check_refuses() {
    let text = std::fs::read_to_string(root().join("krew-manifest.yaml")).unwrap();
    assert!(placeholders(&text) > 0, "the template has placeholders");
    assert!(
        std::panic::catch_unwind(|| refuse_placeholders(&text)).is_err(),
        "the install check refuses it"
    );
    assert!(
        text.starts_with("# The template"),
        "its first line says it is a template:\n{}",
        text.lines().next().unwrap_or_default()
    );
}

/// A release publishes the schemas the spec's first line points at, the same as `schema/`.
#[test]
fn the_release_publishes_the_spec_schemas() {
    let dist = tempfile::tempdir().unwrap();
    release(dist.path());
    for file in ["kubernetes.schema.json", "kubernetes.overlay.schema.json"] {
        let published = std::fs::read_to_string(dist.path().join(file))
            .unwrap_or_else(|e| panic!("scripts/release wrote no `{file}`: {e}"));
        let committed = std::fs::read_to_string(root().join("schema").join(file)).unwrap();
        assert!(
            published == committed,
            "`{file}` differs from `schema/{file}`"
        );
    }
}

#[test]
fn krew_validates_installs_and_uninstalls_the_plugin() {
    let bin = krew_bin();
    let dist = tempfile::tempdir().unwrap();
    let (archive, manifest) = release(dist.path());
    let port = serve(archive.clone());
    let text = std::fs::read_to_string(&manifest).unwrap();
    let uri = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("uri: "))
        .unwrap()
        .to_string();
    std::fs::write(
        &manifest,
        text.replace(
            &uri,
            &format!(
                "http://127.0.0.1:{port}/{}",
                archive.file_name().unwrap().to_string_lossy()
            ),
        ),
    )
    .unwrap();

    // No plugin of ours on this PATH: kubectl must find the one krew installs.
    let krew_root = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}/bin:{}",
        bin.display(),
        krew_root.path().display(),
        std::env::var("PATH").unwrap()
    );
    let with_env = |cmd: &mut Command| -> Run {
        run(cmd.env("PATH", &path).env("KREW_ROOT", krew_root.path()))
    };

    let v = with_env(
        Command::new(bin.join("validate-krew-manifest"))
            .args(["-manifest", manifest.to_str().unwrap()]),
    );
    assert_eq!(v.code, 0, "validate-krew-manifest:\n{}", v.stderr);
    v.stderr_has("structural validation OK");

    // krew wants a local index to exist; an empty one stands in for `krew update`, which
    // would clone the public index over the network.
    let index = krew_root.path().join("index/default");
    std::fs::create_dir_all(index.join("plugins")).unwrap();
    assert_eq!(
        with_env(Command::new("git").args(["-C", index.to_str().unwrap(), "init", "-q"])).code,
        0
    );

    refuse_placeholders(&std::fs::read_to_string(&manifest).unwrap());
    let install = with_env(Command::new("kubectl").args([
        "krew",
        "install",
        &format!("--manifest={}", manifest.display()),
        &format!("--archive={}", archive.display()),
    ]));
    assert_eq!(install.code, 0, "krew install:\n{}", install.stderr);
    let version = with_env(Command::new("kubectl").args(["rails", "--version"]));
    assert_eq!(
        version.stdout.trim(),
        format!("kubectl rails {}", env!("CARGO_PKG_VERSION")),
        "{}",
        version.stderr
    );
    assert!(krew_root.path().join("store/rails/v0.1.0/LICENSE").exists());
    let uninstall = with_env(Command::new("kubectl").args(["krew", "uninstall", "rails"]));
    assert_eq!(uninstall.code, 0, "krew uninstall:\n{}", uninstall.stderr);
    let gone = with_env(Command::new("kubectl").args(["rails", "--version"]));
    assert_ne!(gone.code, 0, "the plugin is gone after uninstall");
}

#[test]
fn committed_manifest_lists_five_platforms() {
    let text = std::fs::read_to_string(root().join("krew-manifest.yaml")).unwrap();
    let m: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "rails");
    assert_eq!(
        m["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(m["spec"]["shortDescription"].as_str().unwrap().len() <= 50);
    for line in m["spec"]["description"]
        .as_str()
        .unwrap()
        .lines()
        .chain(m["spec"]["caveats"].as_str().unwrap().lines())
    {
        assert!(line.len() <= 80, "wrapped at 80 columns: {line:?}");
    }
    let mut platforms: Vec<String> = m["spec"]["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let sha = p["sha256"].as_str().unwrap();
            assert!(
                sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{sha}"
            );
            assert!(p["uri"].as_str().unwrap().starts_with("https://"), "{p}");
            assert!(
                p["bin"].as_str().unwrap().starts_with("kubectl-rails"),
                "{p}"
            );
            format!(
                "{}/{}",
                p["selector"]["matchLabels"]["os"].as_str().unwrap(),
                p["selector"]["matchLabels"]["arch"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(
        platforms,
        [
            "darwin/amd64",
            "darwin/arm64",
            "linux/amd64",
            "linux/arm64",
            "windows/amd64"
        ]
    );
}

/// `kubectl __complete rails WORDS...` in `dir`: kubectl's own completion, through the plugin.
fn complete(dir: &Path, kubeconfig: &Path, words: &[&str]) -> Run {
    let mut cmd = Command::new("kubectl");
    cmd.args(["__complete", "rails"])
        .args(words)
        .current_dir(dir)
        .env("PATH", path_env())
        .env("KUBECONFIG", kubeconfig);
    run(&mut cmd)
}

#[test]
fn completion_through_kubectl() {
    let app = fixture("rails71-sidekiq");
    let init = words("init --no-input --image x/imagestorage:1 --no-ingress --uid 1000");
    rails(app.path(), None, &init).success();
    let complete =
        |words: &[&str]| complete(app.path(), Path::new("/nonexistent/kubeconfig"), words);
    let out = complete(&["de"]);
    assert!(out.stdout.lines().any(|l| l == "deploy"), "{out:?}");
    assert!(!out.stdout.lines().any(|l| l == "status"), "{out:?}");
    let out = complete(&["scale", ""]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["web=", "worker=", ":6"], "{out:?}");
    let out = complete(&["exec", "--process", ""]);
    assert!(out.stdout.starts_with("web\nworker\n"), "{out:?}");
    let out = complete(&["deploy", "--mig"]);
    assert!(out.stdout.starts_with("--migrate\n"), "{out:?}");
    let out = complete(&["secrets", "un"]);
    assert!(out.stdout.starts_with("unset\n"), "{out:?}");
}

#[test]
fn completion_of_namespaces_and_revisions_asks_the_cluster() {
    let (ns, app) = deployed_rails71("complete", "1");
    let complete = |words: &[&str]| complete(app.path(), &ns.kubeconfig, words);
    let out = complete(&["status", "-n", "t-complete"]);
    assert!(out.stdout.lines().any(|l| l == ns.name), "{out:?}");
    let out = complete(&["rollback", ""]);
    assert!(out.stdout.starts_with("1\n"), "{out:?}");
}

/// A kubeconfig with two contexts on the test cluster, each with its own namespace.
fn two_contexts(dir: &Path, kubeconfig: &Path, a: &str, b: &str) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let ctx = config["contexts"][0]["context"].clone();
    let named = |name: &str, ns: &str| {
        let mut c = ctx.clone();
        c["namespace"] = ns.into();
        serde_json::json!({"name": name, "context": c})
    };
    config["contexts"] = serde_json::json!([named("ctx-a", a), named("ctx-b", b)]);
    config["current-context"] = "ctx-a".into();
    let path = dir.join("two-contexts.kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

#[test]
fn namespace_context_and_kubeconfig_flags_are_honoured() {
    let ns_a = TestNs::restricted("ctx-a");
    let ns_b = TestNs::restricted("ctx-b");
    let app = rails71_app(&ns_a, "1");
    // The spec names no namespace here, so the context's applies.
    let spec_path = app.path().join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(&spec_path, kubectl_rails_core_without_namespace(&text)).unwrap();
    let config = two_contexts(app.path(), &ns_a.kubeconfig, &ns_a.name, &ns_b.name);
    let cfg = config.to_str().unwrap();
    // KUBECONFIG points nowhere: only `--kubeconfig` can make these work.
    let rails_k = |args: &[&str]| rails(app.path(), None, args);
    let in_context = |context: &str, args: &str| {
        let mut all = vec!["--kubeconfig", cfg, "--context", context];
        all.extend(words(args));
        rails_k(&all).success()
    };
    in_context("ctx-a", "deploy --no-input");
    let a = in_context("ctx-a", "status -o json").json();
    assert_eq!(a["namespace"], ns_a.name.as_str());
    assert_eq!(a["processes"][0]["ready"], 1);
    let b = in_context("ctx-b", "status -o json").json();
    assert_eq!(b["namespace"], ns_b.name.as_str());
    assert_eq!(
        b["processes"].as_array().unwrap().len(),
        0,
        "nothing deployed in ctx-b's namespace"
    );

    let flag = in_context("ctx-b", &format!("-n {} status -o json", ns_a.name)).json();
    assert_eq!(
        flag["namespace"],
        ns_a.name.as_str(),
        "-n beats the context"
    );

    // Without `--context`, the current context (ctx-a).
    let current = rails_k(&["--kubeconfig", cfg, "status", "-o", "name"]).success();
    current.stdout_has("deployment.apps/imagestorage-web");

    let wrong = rails_k(&["--kubeconfig", cfg, "--context", "nope", "status"]).code(1);
    wrong.stderr_has("context `nope` is not in the kubeconfig (known: ctx-a, ctx-b)");
    let missing = rails_k(&["--kubeconfig", "/nonexistent/kubeconfig", "status"]).code(1);
    missing.stderr_has("failed to load the kubeconfig `/nonexistent/kubeconfig`");
}

fn kubectl_rails_core_without_namespace(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("namespace:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let (ns, app) = deployed_rails71("pipe", "2");
    let script = format!(
        "set -o pipefail; kubectl rails -n {} status | head -1",
        ns.name
    );
    let out = run(Command::new("bash")
        .args(["-c", &script])
        .current_dir(app.path())
        .env("PATH", path_env())
        .env("KUBECONFIG", &ns.kubeconfig));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "", "no error message");
    assert_eq!(out.stdout.lines().count(), 1);
}

/// The apiserver's audit log names the plugin, as it names kubectl: cluster admins can tell
/// who made a request.
#[test]
fn requests_name_the_plugin_as_their_user_agent() {
    let ns = TestNs::new("agent");
    let app = rails71_app(&ns, "1");
    ns.rails(app.path(), &["secrets", "list"]).success();
    let audit = ns.kubeconfig.parent().unwrap().join("logs/audit.log");
    let log = std::fs::read_to_string(&audit).unwrap();
    let agents: std::collections::BTreeSet<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["objectRef"]["namespace"] == ns.name.as_str())
        .map(|e| e["userAgent"].as_str().unwrap_or_default().to_string())
        .collect();
    let expected = format!("kubectl-rails/{}", env!("CARGO_PKG_VERSION"));
    assert!(agents.contains(&expected), "{agents:?} in {}", ns.name);
    assert!(
        !agents.contains(""),
        "a request without a user agent: {agents:?}"
    );
}

/// The exec crate builds on Windows by itself: crossterm refuses to compile there without its
/// `windows` feature, which the crate must ask for rather than get through comfy-table (#27 L6).
#[test]
fn the_exec_crate_asks_for_crossterms_windows_feature() {
    let tree = run(Command::new(env!("CARGO")).current_dir(root()).args([
        "tree",
        "--offline",
        "--locked",
        "-p",
        "kubectl-rails-exec",
        "--target",
        "x86_64-pc-windows-msvc",
        "-e",
        "features",
        "-i",
        "crossterm",
    ]));
    assert_eq!(tree.code, 0, "{}", tree.stderr);
    assert!(
        tree.stdout.contains("crossterm feature \"windows\""),
        "{}",
        tree.stdout
    );
}

/// A kubeconfig whose only user gets its token from an exec plugin that takes `delay` seconds
/// and leaves `marker` behind when it runs at all; its server is never reached.
fn slow_exec_kubeconfig(dir: &Path, delay: u32, marker: &Path) -> PathBuf {
    let plugin = dir.join("slow-login");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\n# An SSO login that waits for a browser.\ntouch '{}'\nsleep {delay}\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"t\"}}}}'\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    crate::netfakes::kubeconfig(
        dir,
        "sso",
        &["server: https://127.0.0.1:1".into()],
        &[
            "exec:".into(),
            "  apiVersion: client.authentication.k8s.io/v1".into(),
            format!("  command: {}", plugin.display()),
            "  interactiveMode: Never".into(),
        ],
    )
}

#[test]
fn a_pinned_spec_refuses_another_context_before_its_credential_plugin_runs() {
    let app = fixture("rails71-sidekiq");
    let init = words("init --no-input --image x/imagestorage:1 --no-ingress --uid 1000");
    rails(app.path(), None, &init).success();
    let spec = app.path().join("config/kubernetes.yml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text}context: production\n")).unwrap();
    let marker = app.path().join("login-ran");
    let cfg = slow_exec_kubeconfig(app.path(), 0, &marker);
    let out = rails(app.path(), Some(&cfg), &["status"]).code(1);
    out.stderr_has("pinned to context `production`");
    assert!(
        !marker.exists(),
        "the credential plugin ran before the pin refused the context"
    );
}

#[test]
fn completion_gives_up_on_a_credential_plugin_that_waits() {
    let app = fixture("rails71-sidekiq");
    let init = words("init --no-input --image x/imagestorage:1 --no-ingress --uid 1000");
    rails(app.path(), None, &init).success();
    let marker = app.path().join("login-ran");
    let cfg = slow_exec_kubeconfig(app.path(), 60, &marker);
    // The plugin's completion as kubectl calls it. Not through `kubectl __complete`: kubectl
    // runs the credential plugin itself there before it asks ours, and waits the whole minute
    // (kubectl's own behaviour, the same for every plugin).
    let mut cmd = Command::new("kubectl_complete-rails");
    cmd.args(["status", "-n", ""])
        .current_dir(app.path())
        .env("PATH", path_env())
        .env("KUBECONFIG", &cfg);
    let started = std::time::Instant::now();
    let out = run(&mut cmd);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(marker.exists(), "the lookup never asked the plugin");
    // Not a speed claim: the lookup's own limit is 2 s, and a TAB that waits for a
    // minute-long login is the defect (it waited the whole minute).
    assert!(
        took < std::time::Duration::from_secs(30),
        "completion waited {took:?} for the credential plugin"
    );
}
