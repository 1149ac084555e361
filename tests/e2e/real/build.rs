//! From source to running (#28), on the real node: `deploy` builds the app folder's committed
//! tree with the builder at hand (buildah here, no Docker engine), pushes it to the private
//! registry, migrates and serves it; the same commit again is not built again; a build secret
//! reaches `RUN --mount=type=secret` and its value never shows; a Dockerfile that fails at a
//! `RUN` step ends the deploy naming that step, with the release unchanged.

use std::path::Path;

use super::{RealNode, blog_app, deploy, deploy_with};
use crate::support::{TestNs, git, leaks};

fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

fn releases(ns: &TestNs, dir: &Path) -> usize {
    ns.rails(dir, &["releases", "-o", "json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn deploy_builds_the_committed_tree_with_buildah_and_serves_it() {
    let (node, _alone) = RealNode::take();
    let ns = TestNs::restricted("real-build");
    let host = &format!("build-{}.example.com", std::process::id());
    let url = node.database("build");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    let repository = format!("{}/blog-built-{}", node.get("REGISTRY"), std::process::id());
    // A repository of its own, and no tag: the git commit names each build, as Kamal's do.
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let spec = spec.replace(
        &format!(
            "repository: {}",
            node.image("1.0.0").rsplit_once(':').unwrap().0
        ),
        &format!("repository: {repository}"),
    );
    let spec: String = spec
        .lines()
        .filter(|l| !l.trim_start().starts_with("tag:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        spec.contains(&repository) && spec.contains("build:"),
        "{spec}"
    );
    std::fs::write(&spec_path, spec).unwrap();
    std::fs::write(dir.join("VERSION"), "7.0.0\n").unwrap();
    // An uncommitted change stays out of the build.
    git(dir, &["init", "-q"]);
    git(dir, &["config", "user.email", "dev@example.com"]);
    git(dir, &["config", "user.name", "Dev"]);
    let sha = commit(dir, "the blog at 7.0.0");
    std::fs::write(dir.join("VERSION"), "7.0.0-uncommitted\n").unwrap();

    let run = deploy(&ns, dir, &[]).success();
    run.stderr_has(&format!(
        "building `{repository}:{sha}` with buildah from the committed tree of HEAD"
    ));
    run.stderr_has("uncommitted changes, which the build leaves out");
    run.stderr_has("STEP 1/");
    run.stderr_has(&format!("built and pushed `{repository}:{sha}`"));
    assert!(
        run.stdout.starts_with("Deployed blog as release v1"),
        "{}",
        run.stdout
    );
    node.shows_version(host, "7.0.0");

    // The same commit again: the registry has it, nothing is built.
    let again = deploy(&ns, dir, &[]).success();
    again.stderr_has(&format!(
        "`{repository}:{sha}` is in the registry already: not building it again"
    ));
    assert!(!again.stderr.contains("building `"), "{}", again.stderr);

    // A build secret: the build reads it (and prints it); the output shows only its name.
    // No 8-character slice of it is in a namespace name (`t-...-<pid>-N`): the leak check
    // looks for slices.
    let token = format!("Zq8vX2bt{}", std::process::id());
    leaks::register(&token);
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        spec.replace("build:\n", "build:\n  secrets: [BUILD_TOKEN]\n"),
    )
    .unwrap();
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile.replace(
            "COPY . /rails\n",
            // A line of this run's own: the builder's layer cache cannot answer it.
            &format!(
                "RUN --mount=type=secret,id=BUILD_TOKEN echo \"token {}: $(cat /run/secrets/BUILD_TOKEN)\"\nCOPY . /rails\n",
                std::process::id()
            ),
        ),
    )
    .unwrap();
    std::fs::write(dir.join("VERSION"), "7.1.0\n").unwrap();
    commit(dir, "7.1.0, with a build secret");
    let run = deploy_with(&ns, dir, &[], &[("BUILD_TOKEN", token.clone())]).success();
    run.stderr_has(&format!(
        "token {}: [secret BUILD_TOKEN]",
        std::process::id()
    ));
    node.shows_version(host, "7.1.0");
    assert_eq!(releases(&ns, dir), 2);

    // A step that fails: the deploy stops before the cluster changes, naming the step.
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile.replace(
            "COPY . /rails\n",
            "COPY . /rails\nRUN echo compiling-assets && exit 3\n",
        ),
    )
    .unwrap();
    std::fs::write(dir.join("VERSION"), "7.2.0\n").unwrap();
    commit(dir, "7.2.0, which does not build");
    let image_before = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.spec.containers[0].image}",
    );
    let failed = deploy_with(&ns, dir, &[], &[("BUILD_TOKEN", token.clone())]).code(1);
    failed.stderr_has("the image build failed at `");
    failed.stderr_has("RUN echo compiling-assets && exit 3");
    failed.stderr_has("nothing was changed in the cluster");
    assert_eq!(releases(&ns, dir), 2, "no release was recorded");
    assert_eq!(
        ns.jsonpath(
            "deployment",
            "blog-web",
            "{.spec.template.spec.containers[0].image}",
        ),
        image_before
    );
    node.shows_version(host, "7.1.0");
}
