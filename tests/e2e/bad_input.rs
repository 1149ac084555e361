//! Bad input: each case gets a specific message and exit code, no panic, and no file written.

use std::path::Path;

use crate::support::{fixture, rails};

struct Case {
    name: &'static str,
    fixture: &'static str,
    /// Prepares the app folder (writes a broken file, removes one, ...).
    setup: fn(&Path),
    args: &'static [&'static str],
    code: i32,
    /// Every one of these must appear in stderr.
    expect: &'static [&'static str],
}

const SPEC: &str = "config/kubernetes.yml";
const GOOD_SPEC: &str = "name: shop\nimage:\n  repository: ghcr.io/acme/shop\n  tag: v1\nweb:\n  port: 3000\n  replicas: 2\n";

fn write_spec(text: &'static str) -> impl Fn(&Path) {
    move |dir: &Path| std::fs::write(dir.join(SPEC), text).unwrap()
}

fn nothing(_: &Path) {}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "invalid app name suggests a valid one",
            fixture: "rails71-sidekiq",
            setup: nothing,
            args: &[
                "init",
                "--no-input",
                "--name",
                "Image_Storage",
                "--image",
                "ghcr.io/acme/shop:1",
            ],
            code: 2,
            expect: &["invalid `--name`", "`Image_Storage`", "use `image-storage`"],
        },
        Case {
            name: "malformed YAML has line and column",
            fixture: "rails71-sidekiq",
            setup: |d| write_spec("name: shop\nimage: [unclosed\nweb:\n  port: 3000\n")(d),
            args: &["render"],
            code: 1,
            expect: &["config/kubernetes.yml:2:"],
        },
        Case {
            name: "unknown key names the closest valid key",
            fixture: "rails71-sidekiq",
            setup: |d| {
                write_spec(
                    "name: shop\nimage:\n  repository: ghcr.io/acme/shop\n  tag: v1\nweb:\n  port: 3000\n  replica: 2\n",
                )(d)
            },
            args: &["render"],
            code: 1,
            expect: &[
                "config/kubernetes.yml:7:3: unknown key `replica`",
                "did you mean `replicas`?",
            ],
        },
        Case {
            name: "missing Dockerfile",
            fixture: "rails71-sidekiq",
            setup: |d| std::fs::remove_file(d.join("Dockerfile")).unwrap(),
            args: &["init", "--no-input", "--image", "ghcr.io/acme/shop:1"],
            code: 1,
            expect: &["no `Dockerfile` in", "pass `--port`"],
        },
        Case {
            name: "negative replicas flag",
            fixture: "rails71-sidekiq",
            setup: nothing,
            args: &[
                "init",
                "--no-input",
                "--image",
                "ghcr.io/acme/shop:1",
                "--replicas",
                "-1",
            ],
            code: 2,
            expect: &["invalid `--replicas`: -1 is negative"],
        },
        Case {
            name: "negative replicas in the spec",
            fixture: "rails71-sidekiq",
            setup: |d| {
                write_spec(
                    "name: shop\nimage:\n  repository: ghcr.io/acme/shop\n  tag: v1\nweb:\n  port: 3000\n  replicas: -2\n",
                )(d)
            },
            args: &["render"],
            code: 1,
            expect: &["config/kubernetes.yml:7:13: replicas must be 0 or more, not -2"],
        },
        Case {
            name: "unparsable .env line",
            fixture: "rails71-sidekiq",
            setup: |d| {
                std::fs::write(
                    d.join(".env"),
                    "DATABASE_URL=postgres://x\nthis line is not env\n",
                )
                .unwrap()
            },
            args: &["init", "--no-input", "--image", "ghcr.io/acme/shop:1"],
            code: 1,
            expect: &["cannot parse", ".env", "line 2: expected `KEY=value`"],
        },
        Case {
            name: "not a Rails app",
            fixture: "not-rails",
            setup: nothing,
            args: &["init", "--no-input"],
            code: 1,
            expect: &["is not a Rails app", "Gemfile"],
        },
        Case {
            name: "missing image without a terminal names the flag",
            fixture: "rails71-sidekiq",
            setup: nothing,
            args: &["init", "--no-input"],
            code: 2,
            expect: &["Container image", "pass `--image`"],
        },
        Case {
            name: "unsupported output format",
            fixture: "rails71-sidekiq",
            setup: |d| write_spec(GOOD_SPEC)(d),
            args: &["render", "-o", "wide"],
            code: 2,
            expect: &["does not support `-o wide`", "supported: yaml, json"],
        },
        Case {
            name: "missing spec points to init",
            fixture: "rails71-sidekiq",
            setup: nothing,
            args: &["render"],
            code: 1,
            expect: &["no spec at", "kubectl rails init"],
        },
        Case {
            name: "invalid host flag",
            fixture: "rails71-sidekiq",
            setup: nothing,
            args: &[
                "init",
                "--no-input",
                "--image",
                "ghcr.io/acme/shop:1",
                "--host",
                "Shop Example",
            ],
            code: 2,
            expect: &["invalid `--host`"],
        },
    ]
}

#[test]
fn bad_inputs_get_specific_errors_and_write_nothing() {
    for case in cases() {
        let app = fixture(case.fixture);
        (case.setup)(app.path());
        let spec_before = std::fs::read(app.path().join(SPEC)).ok();
        let run = rails(app.path(), None, case.args);
        assert_eq!(
            run.code, case.code,
            "{}: exit code\nstderr:\n{}",
            case.name, run.stderr
        );
        for needle in case.expect {
            assert!(
                run.stderr.contains(needle),
                "{}: stderr lacks {needle:?}:\n{}",
                case.name,
                run.stderr
            );
        }
        assert!(
            !run.stderr.contains("panicked"),
            "{}: panic\n{}",
            case.name,
            run.stderr
        );
        assert_eq!(
            std::fs::read(app.path().join(SPEC)).ok(),
            spec_before,
            "{}: the spec file changed",
            case.name
        );
        assert!(!app.path().join("k8s").exists(), "{}", case.name);
    }
}

#[test]
fn an_image_without_a_tag_is_a_warning() {
    let app = fixture("rails71-sidekiq");
    let run = rails(
        app.path(),
        None,
        &["init", "--no-input", "--image", "ghcr.io/acme/shop"],
    )
    .success();
    assert!(
        run.stderr
            .contains("warning: image `ghcr.io/acme/shop` has no tag"),
        "{}",
        run.stderr
    );
}
