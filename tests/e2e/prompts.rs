//! The interactive `init`, typed at a real pseudo-terminal like a person would.

use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Expect, Session};

use crate::support::{fixture, path_env};

#[test]
fn interactive_init_puts_typed_answers_in_the_spec() {
    let app = fixture("rails71-sidekiq");
    let mut cmd = Command::new("kubectl");
    cmd.args(["rails", "init"])
        .current_dir(app.path())
        .env("PATH", path_env())
        .env("TERM", "xterm");
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));

    p.expect("App name").unwrap();
    p.send_line("imagestorage").unwrap();
    p.expect("Container image").unwrap();
    p.send_line("docker-registry.example.dev/imagestorage:2.0.0")
        .unwrap();
    p.expect("Public host name").unwrap();
    p.send_line("images.example.dev").unwrap();
    p.expect("Namespace").unwrap();
    p.send_line("").unwrap(); // accept the default: the app name
    p.expect("Web replicas").unwrap();
    p.send_line("3").unwrap();
    // Rails 7.1's Dockerfile runs as the user `rails`, whose number no line gives.
    p.expect("User id the image runs as").unwrap();
    p.send_line("1000").unwrap();
    p.expect("need credentials").unwrap();
    p.send("y").unwrap();
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();

    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("name: imagestorage\n"), "{spec}");
    assert!(spec.contains("namespace: imagestorage\n"), "{spec}");
    assert!(
        spec.contains("repository: docker-registry.example.dev/imagestorage\n"),
        "{spec}"
    );
    assert!(
        spec.contains("tag: \"2.0.0\"") || spec.contains("tag: 2.0.0"),
        "{spec}"
    );
    assert!(spec.contains("- images.example.dev\n"), "{spec}");
    assert!(spec.contains("replicas: 3\n"), "{spec}");
    assert!(spec.contains("uid: 1000\n"), "{spec}");
    assert!(
        spec.contains("pull_secret: imagestorage-registry\n"),
        "{spec}"
    );
}

#[test]
fn interactive_init_rejects_a_bad_name_and_asks_again() {
    let app = fixture("rails71-sidekiq");
    let mut cmd = Command::new("kubectl");
    cmd.args([
        "rails",
        "init",
        "--image",
        "ghcr.io/acme/shop:1",
        "--host",
        "shop.example.com",
        "--replicas",
        "1",
        "--uid",
        "1000",
        "--public",
        "-n",
        "shop",
    ])
    .current_dir(app.path())
    .env("PATH", path_env())
    .env("TERM", "xterm");
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p.expect("App name").unwrap();
    p.send_line("Image_Storage").unwrap();
    p.expect("use `image-storage`").unwrap();
    p.send_line("image-storage").unwrap();
    p.expect("wrote").unwrap();
    p.expect(Eof).unwrap();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    assert!(spec.contains("name: image-storage\n"), "{spec}");
}
