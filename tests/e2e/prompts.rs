//! The interactive `init`, typed at a real pseudo-terminal like a person would.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};

use crate::support::{fixture, path_env, words};

/// `kubectl rails ARGS` in `dir` in a pseudo-terminal, with no cluster.
fn at_terminal(dir: &Path, args: &[&str]) -> OsSession {
    at_terminal_with(dir, args, &[])
}

/// [`at_terminal`] with more environment (a `KUBECONFIG`).
fn at_terminal_with(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> OsSession {
    let mut cmd = Command::new("kubectl");
    cmd.arg("rails")
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env())
        .env("TERM", "xterm")
        .envs(env.iter().copied());
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p
}

/// Waits for each question and types its answer.
fn answer(p: &mut OsSession, answers: &[(&str, &str)]) {
    for (question, typed) in answers {
        p.expect(*question).unwrap();
        p.send_line(typed).unwrap();
    }
}

#[test]
fn interactive_init_puts_typed_answers_in_the_spec() {
    let app = fixture("rails71-sidekiq");
    let mut p = at_terminal(app.path(), &["init"]);
    answer(
        &mut p,
        &[
            ("App name", "imagestorage"),
            (
                "Container image",
                "docker-registry.example.dev/imagestorage:2.0.0",
            ),
            ("Public host name", "images.example.dev"),
        ],
    );
    // Nothing in the folder forces SSL: the host's scheme is asked (no, by default).
    p.expect("over HTTPS").unwrap();
    p.send("n").unwrap();
    answer(
        &mut p,
        &[
            // Enter accepts the default: the app name.
            ("Namespace", ""),
            ("Web replicas", "3"),
            // Rails 7.1's Dockerfile runs as the user `rails`, whose number no line gives.
            ("User id the image runs as", "1000"),
        ],
    );
    p.expect("need credentials").unwrap();
    p.send("y").unwrap();
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();

    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    for line in [
        "name: imagestorage\n",
        "namespace: imagestorage\n",
        "repository: docker-registry.example.dev/imagestorage\n",
        "- images.example.dev\n",
        "replicas: 3\n",
        "uid: 1000\n",
        "pull_secret: imagestorage-registry\n",
    ] {
        assert!(spec.contains(line), "{line:?}: {spec}");
    }
    assert!(
        spec.contains("tag: \"2.0.0\"") || spec.contains("tag: 2.0.0"),
        "{spec}"
    );
}

/// A cluster that routes with the Gateway API and has no IngressClass (an API server answering
/// just those two lists): `init` offers its Gateway for the hosts, and asks nothing of TLS.
#[test]
fn interactive_init_offers_the_gateway_of_a_cluster_without_an_ingress_class() {
    let fake = crate::netfakes::FakeApi::answering(
        "v1.33.0",
        vec![
            (
                "/apis/networking.k8s.io/v1/ingressclasses",
                r#"{"kind":"IngressClassList","apiVersion":"networking.k8s.io/v1","metadata":{},"items":[]}"#.into(),
            ),
            (
                "/apis/gateway.networking.k8s.io/v1/gateways",
                r#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{},"items":[{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"public","namespace":"gateway-system"}}]}"#.into(),
            ),
        ],
    );
    let app = fixture("rails71-sidekiq");
    let kubeconfig = crate::netfakes::kubeconfig(
        app.path(),
        "gateways",
        &[format!("server: {}", fake.server())],
        &[],
    );
    let mut p = at_terminal_with(app.path(), &["init"], &[("KUBECONFIG", &kubeconfig)]);
    answer(
        &mut p,
        &[
            ("App name", "imagestorage"),
            (
                "Container image",
                "docker-registry.example.dev/imagestorage:2.0.0",
            ),
            ("Public host name", "images.example.dev"),
        ],
    );
    p.expect("how do requests reach images.example.dev?")
        .unwrap();
    p.expect("gateway-system/public").unwrap();
    // Enter takes the first choice: the Gateway.
    p.send("\r").unwrap();
    answer(
        &mut p,
        &[
            ("Namespace", ""),
            ("Web replicas", "3"),
            ("User id the image runs as", "1000"),
        ],
    );
    p.expect("need credentials").unwrap();
    p.send("y").unwrap();
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("gateway: gateway-system/public\n"), "{spec}");
    assert!(!spec.contains("issuer"), "{spec}");
    let asked = fake.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.contains("/apis/gateway.networking.k8s.io/v1/gateways")),
        "{asked:?}"
    );
}

#[test]
fn interactive_init_rejects_a_bad_name_and_asks_again() {
    let app = fixture("rails71-sidekiq");
    let flags = "init --image ghcr.io/acme/shop:1 --host shop.example.com --replicas 1 --uid 1000 --public -n shop";
    let mut p = at_terminal(app.path(), &words(flags));
    answer(
        &mut p,
        &[
            ("App name", "Image_Storage"),
            ("use `image-storage`", "image-storage"),
        ],
    );
    p.expect("over HTTPS").unwrap();
    p.send("n").unwrap();
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("name: image-storage\n"), "{spec}");
}

/// At a terminal, `init` asks what nothing in the folder says, offering the default: the health
/// path of an app that routes none, and whether to serve its host over HTTPS when the app does
/// not force SSL.
#[test]
fn interactive_init_asks_what_the_folder_does_not_say() {
    let app = fixture("wild/puma-loopback-embedded-sidekiq");
    let flags = "init --name docs --image ghcr.io/acme/docs:1 --host docs.example.com --replicas 1 --public -n docs";
    let mut p = at_terminal(app.path(), &words(flags));
    answer(&mut p, &[("Health check path", "/healthz")]);
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("health_path: /healthz\n"), "{spec}");

    let app = fixture("wild/drawn-routes-parent-user");
    let flags = "init --name shop --image ghcr.io/acme/shop:1 --host shop.example.com --replicas 1 --public -n shop";
    let mut p = at_terminal(app.path(), &words(flags));
    p.expect("over HTTPS").unwrap();
    p.send("y").unwrap();
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("tls: true\n"), "{spec}");
}
