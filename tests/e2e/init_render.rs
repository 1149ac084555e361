//! `init --no-input` on the fixtures, and `render` of what it wrote.

use crate::support::{fixture, list_kinds, rails, words};

const RAILS71_INIT: &str = "init --no-input --name imagestorage --image docker-registry.example.dev/imagestorage:1.4.2 --host imagestorage.example.dev --replicas 3 --uid 1000 --private";

#[test]
fn rails8_kamal_init_reads_kamal_and_handles_thruster() {
    let app = fixture("rails8-kamal");
    let run = rails(app.path(), None, &["init", "--no-input"]).success();
    run.stderr_has("HTTP_PORT=8080");
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    insta::assert_snapshot!("rails8_spec", spec);
}

#[test]
fn rails71_init_with_flags_reads_example_env_and_procfile() {
    let app = fixture("rails71-sidekiq");
    rails(app.path(), None, &words(RAILS71_INIT)).success();
    let spec = std::fs::read_to_string(app.path().join("config/kubernetes.yml")).unwrap();
    insta::assert_snapshot!("rails71_spec", spec);
}

#[test]
fn render_rails8_yaml() {
    let app = fixture("rails8-kamal");
    let init = words("init --no-input --image ghcr.io/acme/shop:2026.11.27");
    rails(app.path(), None, &init).success();
    let run = rails(app.path(), None, &["render"]).success();
    insta::assert_snapshot!("rails8_render", run.stdout);
}

#[test]
fn render_rails71_yaml_and_json_agree_and_are_deterministic() {
    let app = fixture("rails71-sidekiq");
    rails(app.path(), None, &words(RAILS71_INIT)).success();
    let yaml = rails(app.path(), None, &["render"]).success().stdout;
    insta::assert_snapshot!("rails71_render", yaml);
    assert_eq!(
        yaml,
        rails(app.path(), None, &["render"]).success().stdout,
        "same input, same bytes"
    );

    let json = rails(app.path(), None, &["render", "-o", "json"]).success();
    let list = json.json();
    assert_eq!(list["kind"], "List");
    assert_eq!(
        list_kinds(&list),
        [
            "ConfigMap",
            "NetworkPolicy",
            "NetworkPolicy",
            // The asset server: the Dockerfile precompiles and no CDN serves the assets.
            "ConfigMap",
            "NetworkPolicy",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "Job",
            "Deployment",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "Ingress"
        ]
    );
    let named = |kind: &str, name: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    let web = &named("Deployment", "imagestorage-web");
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(
        web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let pod = &web["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["imagePullSecrets"][0]["name"], "imagestorage-registry");
    let container = &pod["containers"][0];
    for probe in ["startupProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/up", "{probe}");
    }
    assert_eq!(container["livenessProbe"]["tcpSocket"]["port"], "http");
    assert!(
        !json.stdout.contains("tu_secret_access_key"),
        "secret values are never rendered"
    );
    let ingress = &named("Ingress", "imagestorage");
    let paths = &ingress["spec"]["rules"][0]["http"]["paths"];
    assert_eq!(paths[0]["path"], "/assets");
    assert_eq!(
        paths[0]["backend"]["service"]["name"],
        "imagestorage-assets"
    );
    assert_eq!(paths[1]["path"], "/");
    assert_eq!(paths[1]["pathType"], "Prefix");
    assert!(
        ingress["metadata"]["annotations"]
            .get("kubernetes.io/ingress.class")
            .is_none()
    );
}

#[test]
fn render_out_dir_writes_one_file_per_object() {
    let app = fixture("rails71-sidekiq");
    rails(app.path(), None, &words(RAILS71_INIT)).success();
    let out = app.path().join("k8s");
    rails(
        app.path(),
        None,
        &["render", "--out-dir", out.to_str().unwrap()],
    )
    .success();
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 14, "{names:?}");
    assert!(
        names[0].starts_with("01-configmap-imagestorage-env-"),
        "{names:?}"
    );
}

#[test]
fn changing_a_plain_env_value_changes_the_checksum() {
    let app = fixture("rails71-sidekiq");
    rails(app.path(), None, &words(RAILS71_INIT)).success();
    let checksum = |dir: &std::path::Path| {
        let json: serde_json::Value =
            serde_json::from_str(&rails(dir, None, &["render", "-o", "json"]).success().stdout)
                .unwrap();
        let job = json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Job")
            .unwrap();
        job["spec"]["template"]["metadata"]["annotations"]["kubectl-rails.dev/config-checksum"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = checksum(app.path());
    rails(app.path(), None, &["env", "set", "E2_REGION=madrid"]).success();
    assert_ne!(before, checksum(app.path()));
}

#[test]
fn rerunning_init_without_a_terminal_needs_yes_to_overwrite() {
    let app = fixture("rails71-sidekiq");
    rails(app.path(), None, &words(RAILS71_INIT)).success();
    let path = app.path().join("config/kubernetes.yml");
    let first = std::fs::read_to_string(&path).unwrap();
    let same = rails(app.path(), None, &words(RAILS71_INIT)).success();
    same.stderr_has("is up to date");

    let changed = RAILS71_INIT.replace("--replicas 3", "--replicas 4");
    let refused = rails(app.path(), None, &words(&changed)).code(2);
    assert!(
        refused.stderr.contains("-   replicas: 3"),
        "shows the change: {}",
        refused.stderr
    );
    refused.stderr_has("+   replicas: 4");
    refused.stderr_has("pass `--yes`");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "nothing written"
    );

    rails(app.path(), None, &words(&format!("{changed} --yes"))).success();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("replicas: 4")
    );
}

#[test]
fn an_image_without_a_tag_is_a_warning() {
    let app = fixture("rails71-sidekiq");
    let init = words("init --no-input --image ghcr.io/acme/shop --uid 1000");
    let run = rails(app.path(), None, &init).success();
    run.stderr_has("warning: image `ghcr.io/acme/shop` has no tag");
}

/// `render` shows the image deploy would run: `--tag`/`--image` over the spec, and an untagged
/// image as the app folder's git commit.
#[test]
fn render_uses_the_tag_deploy_would() {
    let app = fixture("rails71-sidekiq");
    let init = words("init --no-input --image ghcr.io/acme/shop --uid 1000 --no-ingress");
    rails(app.path(), None, &init).success();
    let image_of = |args: &[&str]| -> String {
        let mut all = vec!["render", "-o", "json"];
        all.extend(args);
        let out = rails(app.path(), None, &all).success().stdout;
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .map(|o| o["spec"]["template"]["spec"]["containers"][0]["image"].to_string())
            .unwrap()
    };
    assert_eq!(image_of(&["--tag", "9.9"]), "\"ghcr.io/acme/shop:9.9\"");
    assert_eq!(
        image_of(&["--image", "registry.example.com/other:2"]),
        "\"registry.example.com/other:2\""
    );
    crate::support::git(app.path(), &["init", "-q"]);
    crate::support::git(app.path(), &["add", "-A"]);
    crate::support::git(app.path(), &["commit", "-qm", "first"]);
    let sha = crate::support::git(app.path(), &["rev-parse", "HEAD"]);
    assert_eq!(image_of(&[]), format!("\"ghcr.io/acme/shop:{sha}\""));
}

/// Global flags count wherever kubectl users put them: before an alias, after it, or inside
/// the alias's own line (#27 H2). Each render says the namespace it would deploy to.
#[test]
fn global_flags_around_and_inside_an_alias_are_kept() {
    let app = fixture("rails71-sidekiq");
    let dir = app.path();
    rails(dir, None, &words(RAILS71_INIT)).success();
    let spec_path = dir.join("config/kubernetes.yml");
    let mut spec = std::fs::read_to_string(&spec_path).unwrap();
    spec.push_str("aliases:\n  show: render -o json\n  show-there: render -o json -n inside\n");
    std::fs::write(&spec_path, spec).unwrap();
    std::fs::write(
        dir.join("config/kubernetes.staging.yml"),
        "namespace: staged\n",
    )
    .unwrap();
    let namespace_of = |args: &[&str]| {
        let list = rails(dir, None, args).success().json();
        let items = list["items"].as_array().unwrap().clone();
        let web = items
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("a Deployment");
        web["metadata"]["namespace"].as_str().unwrap().to_string()
    };
    let base = namespace_of(&["show"]);
    assert_ne!(base, "after");
    let cases: &[(&[&str], &str)] = &[
        (&["-n", "before", "show"], "before"),
        (&["show", "-n", "after"], "after"),
        (&["show", "--namespace=after"], "after"),
        (&["show", "-d", "staging"], "staged"),
        (&["show-there"], "inside"),
        // What is typed after the alias wins over its own line, as a later flag does.
        (&["show-there", "-n", "typed"], "typed"),
    ];
    for (args, want) in cases {
        assert_eq!(
            &namespace_of(args),
            want,
            "kubectl rails {}",
            args.join(" ")
        );
    }
    // `--context` after an alias is kubectl's, not dropped: an unknown one is an error,
    // where dropping it would try the current context's (unreachable) server.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: here\nclusters:\n- name: here\n  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: here\n  context: {cluster: here, user: me}\nusers:\n- name: me\n  user: {token: t}\n",
    )
    .unwrap();
    let mut spec = std::fs::read_to_string(&spec_path).unwrap();
    spec.push_str("  st: status\n");
    std::fs::write(&spec_path, spec).unwrap();
    let run = rails(
        dir,
        Some(&kubeconfig),
        &["st", "--context", "no-such-context"],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    run.stderr_has("no-such-context");
}

/// Spec edits run at the same time (a script setting several keys in parallel, two terminals)
/// take turns on the spec: none is lost to another's write (#27 L4). Before the lock, each read
/// the spec, edited its copy and renamed it over the file, so the last writer undid the others.
#[test]
fn spec_edits_at_the_same_time_all_land() {
    let app = fixture("rails71-sidekiq");
    rails(app.path(), None, &words(RAILS71_INIT)).success();
    let (writers, each) = (4, 12);
    std::thread::scope(|s| {
        for w in 0..writers {
            let dir = app.path();
            s.spawn(move || {
                for i in 0..each {
                    rails(dir, None, &["env", "set", &format!("PARALLEL_{w}_{i}=set")]).success();
                }
            });
        }
    });
    let run = rails(app.path(), None, &["env", "list", "-o", "json"]).success();
    let env = run.json();
    let missing: Vec<String> = (0..writers)
        .flat_map(|w| (0..each).map(move |i| format!("PARALLEL_{w}_{i}")))
        .filter(|k| env.get(k).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} keys were lost: {missing:?}",
        missing.len(),
        writers * each
    );
}
