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

/// The spec with a repository of the test's own and no tag: the git commit names each build,
/// as Kamal's do.
fn own_repository(node: &RealNode, spec_path: &Path, repository: &str) -> String {
    let spec = std::fs::read_to_string(spec_path).unwrap();
    let spec = spec.replace(
        &format!(
            "repository: {}",
            node.image("1.0.0").rsplit_once(':').unwrap().0
        ),
        &format!("repository: {repository}"),
    );
    spec.lines()
        .filter(|l| !l.trim_start().starts_with("tag:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A build secret in the spec, and a Dockerfile step that prints it (a line of this run's own:
/// no layer cache can answer it).
fn add_secret_step(dir: &Path, spec_path: &Path) {
    let spec = std::fs::read_to_string(spec_path).unwrap();
    std::fs::write(
        spec_path,
        spec.replace("build:\n", "build:\n  secrets: [BUILD_TOKEN]\n"),
    )
    .unwrap();
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile.replace(
            "COPY . /rails\n",
            &format!(
                "RUN --mount=type=secret,id=BUILD_TOKEN echo \"token {}: $(cat /run/secrets/BUILD_TOKEN)\"\nCOPY . /rails\n",
                std::process::id()
            ),
        ),
    )
    .unwrap();
}

/// A Dockerfile step that fails.
fn add_failing_step(dir: &Path) {
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile.replace(
            "COPY . /rails\n",
            "COPY . /rails\nRUN echo compiling-assets && exit 3\n",
        ),
    )
    .unwrap();
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
    let spec = own_repository(node, &spec_path, &repository);
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
    add_secret_step(dir, &spec_path);
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
    add_failing_step(dir);
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

/// A `PATH` with no image builder on it: only what the plugin needs (kubectl, git, tar).
fn path_without_builders() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("bin-").tempdir().unwrap();
    for tool in ["kubectl", "git", "tar"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is on PATH"));
        std::os::unix::fs::symlink(found, dir.path().join(tool)).unwrap();
    }
    dir
}

/// #28's `cluster` builder on the real node: with no builder on PATH, `deploy` builds the
/// committed tree in a rootless BuildKit pod fed over the API, which pushes to the private
/// registry; the page shows the new version; the same commit is not built again; a build
/// secret never shows (that build runs privileged, the other mode); a RUN step that fails is
/// named and the release is unchanged; a namespace that refuses the pod is named before
/// anything is written, and an image without RootlessKit is named with what to do.
#[test]
fn deploy_builds_in_a_buildkit_pod_when_no_builder_is_on_path() {
    let (node, _alone) = RealNode::take();
    let ns = TestNs::restricted("real-bk");
    let builds = TestNs::new("real-bk-builds");
    builds
        .kubectl(&[
            "label",
            "namespace",
            &builds.name,
            "pod-security.kubernetes.io/enforce=privileged",
        ])
        .success();
    let host = &format!("bk-{}.example.com", std::process::id());
    let url = node.database("bk");
    let app = blog_app(node, &ns, host, "1", &url);
    let dir = app.path();
    // The builder image is in the private registry: the app's pull secret, by its name.
    builds.create_pull_secret(
        "blog-registry",
        node.get("REGISTRY"),
        node.get("REGISTRY_USER"),
        node.get("REGISTRY_PASSWORD"),
    );
    let repository = format!("{}/blog-bk-{}", node.get("REGISTRY"), std::process::id());
    let spec_path = dir.join("config/kubernetes.yml");
    let spec = own_repository(node, &spec_path, &repository);
    assert!(spec.contains("build:\n"), "{spec}");
    std::fs::write(&spec_path, &spec).unwrap();
    std::fs::write(dir.join("VERSION"), "8.0.0\n").unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["config", "user.email", "dev@example.com"]);
    git(dir, &["config", "user.name", "Dev"]);
    commit(dir, "the blog at 8.0.0");
    let bin = path_without_builders();
    let only_path = ("ONLY_PATH", bin.path().display().to_string());

    // The app's own namespace enforces `restricted`: refused before anything is written.
    let refused = deploy_with(&ns, dir, &[], std::slice::from_ref(&only_path)).code(1);
    refused.stderr_has("no image builder on PATH");
    refused.stderr_has(&format!(
        "namespace `{}` enforces Pod Security `restricted`, and BuildKit runs rootless (as uid 1000) but needs seccomp and AppArmor `Unconfined`",
        ns.name
    ));
    refused.stderr_has("build.cluster.namespace");
    assert_eq!(
        ns.kubectl(&["get", "pods", "-o", "name"]).stdout.trim(),
        "",
        "nothing was started"
    );

    // A namespace for builds, the BuildKit image and the docker.io mirror, as a team sets them.
    let with_builder = |image: &str| {
        spec.replace(
            "build:\n",
            &format!(
                "build:\n  cluster:\n    namespace: {}\n    image: {image}\n    mirrors: [\"{}\"]\n",
                builds.name,
                node.get("REGISTRY"),
            ),
        )
    };
    // An image that is not BuildKit's rootless one: said, with what to do, and nothing left.
    let debian = format!("{}/library/debian:bookworm-slim", node.get("REGISTRY"));
    std::fs::write(&spec_path, with_builder(&debian)).unwrap();
    // A step that shows whose root its RUN steps have: rootless, uid 0 is the node's uid 1000.
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile.replace(
            "COPY . /rails\n",
            "RUN echo \"uid map: $(awk 'NR==1 {print $1, $2, $3}' /proc/self/uid_map)\"\nCOPY . /rails\n",
        ),
    )
    .unwrap();
    let sha = commit(dir, "build in the cluster");
    let no_kit = deploy_with(&ns, dir, &[], std::slice::from_ref(&only_path)).code(1);
    no_kit.stderr_has("buildkitd did not start in pod `");
    no_kit.stderr_has("rootlesskit: not found");
    no_kit.stderr_has("the builder image has no RootlessKit");
    no_kit.stderr_has("nothing was changed in the cluster");
    assert_eq!(
        builds.kubectl(&["get", "pods", "-o", "name"]).stdout.trim(),
        "",
        "the BuildKit pod is gone"
    );

    std::fs::write(&spec_path, with_builder(node.get("BUILDKIT_IMAGE"))).unwrap();
    let run = deploy_with(&ns, dir, &[], std::slice::from_ref(&only_path)).success();
    run.stderr_has(&format!(
        "building `{repository}:{sha}` in the cluster (rootless BuildKit in namespace `{}`) from the committed tree of HEAD",
        builds.name
    ));
    run.stderr_has("the BuildKit pod uses the node's network");
    run.stderr_has("uid map: 0 1000 1");
    run.stderr_has("] RUN apt-get update");
    run.stderr_has(&format!("built and pushed `{repository}:{sha}`"));
    node.shows_version(host, "8.0.0");
    assert_eq!(
        builds.kubectl(&["get", "pods", "-o", "name"]).stdout.trim(),
        "",
        "the BuildKit pod is gone"
    );

    // The same commit again: the registry has it, nothing is built.
    let again = deploy_with(&ns, dir, &[], std::slice::from_ref(&only_path)).success();
    again.stderr_has("is in the registry already: not building it again");
    assert!(!again.stderr.contains("building `"), "{}", again.stderr);

    // A build secret reaches RUN --mount=type=secret; the output shows only its name. This
    // build runs BuildKit privileged, as root: the mode for nodes without user namespaces.
    let token = format!("Kw3pY7cd{}", std::process::id());
    leaks::register(&token);
    let rootless_spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        rootless_spec.replace("  cluster:\n", "  cluster:\n    privileged: true\n"),
    )
    .unwrap();
    add_secret_step(dir, &spec_path);
    std::fs::write(dir.join("VERSION"), "8.1.0\n").unwrap();
    commit(dir, "8.1.0, with a build secret");
    let with_secret = [only_path.clone(), ("BUILD_TOKEN", token.clone())];
    let run = deploy_with(&ns, dir, &[], &with_secret).success();
    run.stderr_has("in the cluster (privileged BuildKit in namespace");
    run.stderr_has(&format!(
        "token {}: [secret BUILD_TOKEN]",
        std::process::id()
    ));
    node.shows_version(host, "8.1.0");
    assert_eq!(releases(&ns, dir), 2);

    // A step that fails (rootless again): named, and the cluster's release is unchanged.
    let privileged_spec = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::write(
        &spec_path,
        privileged_spec.replace("    privileged: true\n", ""),
    )
    .unwrap();
    add_failing_step(dir);
    std::fs::write(dir.join("VERSION"), "8.2.0\n").unwrap();
    commit(dir, "8.2.0, which does not build");
    let image_before = ns.jsonpath(
        "deployment",
        "blog-web",
        "{.spec.template.spec.containers[0].image}",
    );
    let failed = deploy_with(&ns, dir, &[], &with_secret).code(1);
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
    node.shows_version(host, "8.1.0");
    assert_eq!(
        builds.kubectl(&["get", "pods", "-o", "name"]).stdout.trim(),
        "",
        "the failed build's pod is gone too"
    );
}
