//! The first `kubectl rails deploy` of an app folder, typed at a real pseudo-terminal: it asks
//! for what is missing (spec, namespace, secrets, pull secret) and goes on in the same run.

use std::path::Path;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect, Regex};

use crate::support::{Run, cluster, fixture, kubectl, leaks, path_env, rails, words};

/// The secret parts of the fixtures' `.env` values (not their host names or schemes, which the
/// leak check's 8-character slices would find in ordinary output): none may reach the screen.
const DOTENV_VALUES: &[&str] = &[
    "Db-Pass-Dotenv-41",
    "Smtp-Pass-Dotenv-42",
    "sk_live_Dotenv43xyz",
    "B000/Dotenv44",
    "Skb-Dotenv-45",
];
const RAILS71_VALUES: &[&str] = &["pgpassw", "tu_secret_access_key", "tu_access_key"];
const REGISTRY_PASSWORD: &str = "Rtp16-Typed-Qz9";

/// A namespace name of its own that does not exist yet; deleted when dropped.
struct FreshNs(String);

impl FreshNs {
    fn new(prefix: &str) -> Self {
        Self(format!("t-{prefix}-{}", std::process::id()))
    }
}

impl Drop for FreshNs {
    fn drop(&mut self) {
        let _ = kubectl(cluster(), &["delete", "namespace", &self.0, "--wait=false"]);
    }
}

/// The first deploy of `dir` into `ns` at a terminal. It asks the app's own questions
/// (`app_answers`: each question and what a person types, `""` being Enter), then the registry
/// user for `host`, to create the namespace, to import the `.env`, and the registry password,
/// answered as `user`. Returns the screen and how many questions were asked.
fn first_deploy(
    dir: &Path,
    ns: &str,
    app_answers: &[(&str, &str)],
    (user, host): (&str, &str),
) -> (String, usize) {
    let user_question = format!("Registry user for `{host}`");
    let password_question = format!("Password or token for {user}@{host}");
    let mut answers = app_answers.to_vec();
    answers.extend([
        (user_question.as_str(), user),
        ("does not exist. Create it?", ""),
        ("from the app folder into Secret", ""),
        (password_question.as_str(), REGISTRY_PASSWORD),
    ]);
    let (screen, asked, _) =
        deploy_at_terminal(dir, ns, &[], &answers, "Deployed [a-z0-9-]+ as release v1");
    (screen, asked)
}

/// `kubectl rails deploy -n NS` at a terminal with `env`: each question of `answers` is
/// awaited in order and answered (`"y"` as a key, anything else as a line), then `end` (a
/// regex) and the end of output. The screen, the questions asked, and the exit status.
fn deploy_at_terminal(
    dir: &Path,
    ns: &str,
    env: &[(&str, &str)],
    answers: &[(&str, &str)],
    end: &str,
) -> (String, usize, WaitStatus) {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["rails", "deploy", "-n", ns, "--timeout", "120s"])
        .current_dir(dir)
        .env("PATH", path_env())
        .env("KUBECONFIG", cluster())
        .env("TERM", "xterm")
        .envs(env.iter().copied());
    let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    let mut screen = String::new();
    let mut asked = 0;
    // What a retyped hidden answer already brought up: the next question, or `end`.
    let mut seen: Option<expectrl::Captures> = None;
    for (i, &(question, typed)) in answers.iter().enumerate() {
        let found = match seen.take() {
            Some(found) => found,
            None => p
                .expect(question)
                .unwrap_or_else(|e| panic!("no question {question:?} ({e}); so far:\n{screen}")),
        };
        screen.push_str(&String::from_utf8_lossy(found.before()));
        screen.push_str(question);
        asked += 1;
        if question.contains("(hidden;") || question.starts_with("Password or token") {
            // A hidden prompt turns echo off with TCSAFLUSH, which drops a line typed a moment
            // too early; a person types again, and so does the test (as in secrets.rs), until
            // what follows the answer appears.
            let next = answers
                .get(i + 1)
                .map_or_else(|| end.to_string(), |(q, _)| regex_literal(q));
            p.set_expect_timeout(Some(Duration::from_secs(2)));
            seen = Some(
                (0..15)
                    .find_map(|_| {
                        p.send_line(typed).unwrap();
                        p.expect(Regex(&next)).ok()
                    })
                    .unwrap_or_else(|| {
                        panic!("the answer to {question:?} was not taken; so far:\n{screen}")
                    }),
            );
            p.set_expect_timeout(Some(Duration::from_secs(60)));
        } else if typed == "y" {
            p.send("y").unwrap();
        } else {
            p.send_line(typed).unwrap();
        }
    }
    let done = match seen.take() {
        Some(done) => done,
        None => p
            .expect(Regex(end))
            .unwrap_or_else(|e| panic!("no {end:?} ({e}); so far:\n{screen}")),
    };
    screen.push_str(&String::from_utf8_lossy(done.before()));
    screen.push_str(&String::from_utf8_lossy(&done[0]));
    // What came after `end`: expectrl returns it as the match of `Eof`.
    let rest = p.expect(Eof).unwrap();
    screen.push_str(&String::from_utf8_lossy(rest.before()));
    for m in rest.matches() {
        screen.push_str(&String::from_utf8_lossy(m));
    }
    let status = p.get_process().wait().unwrap();
    (screen, asked, status)
}

/// `text` as a regex that matches it literally.
fn regex_literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn no_secret_on(screen: &str, values: &[&str]) {
    for v in values.iter().chain([&REGISTRY_PASSWORD]) {
        assert!(!screen.contains(v), "`{v}` reached the screen:\n{screen}");
    }
}

#[test]
fn a_first_deploy_at_a_terminal_asks_at_most_six_questions_and_reaches_ready() {
    for v in DOTENV_VALUES
        .iter()
        .chain(RAILS71_VALUES)
        .chain([&REGISTRY_PASSWORD])
    {
        leaks::register(v);
    }
    // A `.env` with secrets under ordinary names; an image on GitHub's registry.
    let ns = FreshNs::new("first-dotenv");
    let app = fixture("dotenv-secrets");
    let image = ("Container image", "ghcr.io/acme/dotenv:1.0.0");
    let (screen, asked) = first_deploy(app.path(), &ns.0, &[image], ("acme", "ghcr.io"));
    assert!(asked <= 6, "{asked} questions");
    no_secret_on(&screen, DOTENV_VALUES);

    // Rails 7.1 with its `.env` filled in, a named USER and a private registry of its own.
    let ns = FreshNs::new("first-rails71");
    let app = fixture("rails71-sidekiq");
    std::fs::rename(app.path().join("example.env"), app.path().join(".env")).unwrap();
    let own = [
        (
            "Container image",
            "docker-registry.example.dev/imagestorage:1.4.2",
        ),
        ("User id the image runs as", "1000"),
    ];
    let registry = ("deploy", "docker-registry.example.dev");
    let (screen, asked) = first_deploy(app.path(), &ns.0, &own, registry);
    assert!(asked <= 6, "{asked} questions");
    no_secret_on(&screen, RAILS71_VALUES);
    // The live display drew one line per process, in place: drawn several times, it shows
    // once on the terminal (an 80-column emulator reads the output back).
    assert!(
        screen.matches("rollout, ").count() > 1,
        "drawn more than once: {screen:?}"
    );
    let mut terminal = vt100::Parser::new(2000, 80, 0);
    terminal.process(screen.as_bytes());
    let shown = terminal.screen().contents();
    assert_eq!(
        shown
            .lines()
            .filter(|l| l.starts_with("  rollout, "))
            .count(),
        1,
        "redrawn in place:\n{shown}"
    );
}

/// A key that no file holds is asked for hidden (Enter stops the deploy and writes nothing);
/// the Docker login is offered for the pull secret with one yes.
#[test]
fn a_missing_key_is_asked_hidden_and_the_docker_login_is_offered() {
    const TYPED: &str = "sk_live_Typed46zz";
    for v in DOTENV_VALUES.iter().chain([&TYPED, &REGISTRY_PASSWORD]) {
        leaks::register(v);
    }
    let ns = FreshNs::new("first-askkey");
    let app = fixture("dotenv-secrets");
    let dir = app.path();
    let init = format!(
        "init --no-input --name dotenv --image ghcr.io/acme/dotenv:1.0.0 --private -n {}",
        ns.0
    );
    rails(dir, None, &words(&init)).success();
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    let without: String = env
        .lines()
        .filter(|l| !l.starts_with("STRIPE_SK="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join(".env"), without).unwrap();
    let docker = dir.join("docker-config");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("acme:{REGISTRY_PASSWORD}"),
    );
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let docker_env = [("DOCKER_CONFIG", docker.to_str().unwrap())];
    let secret = || {
        kubectl(
            cluster(),
            &["-n", &ns.0, "get", "secret", "dotenv-secrets", "-o", "name"],
        )
    };

    // Enter at the hidden question stops the deploy; the import was not written.
    let (screen, _, status) = deploy_at_terminal(
        dir,
        &ns.0,
        &docker_env,
        &[
            ("does not exist. Create it?", ""),
            ("from the app folder into Secret", ""),
            ("Value of STRIPE_SK (hidden; Enter to stop)", ""),
        ],
        "Secret `dotenv-secrets` lacks STRIPE_SK",
    );
    assert!(
        matches!(status, WaitStatus::Exited(_, 1)),
        "{status:?}\n{screen}"
    );
    assert!(
        screen.contains("kubectl rails secrets set STRIPE_SK"),
        "{screen}"
    );
    assert_ne!(secret().code, 0, "nothing was written:\n{screen}");

    // The typed value goes into the Secret; the Docker login becomes the pull secret.
    let (screen, asked, status) = deploy_at_terminal(
        dir,
        &ns.0,
        &docker_env,
        &[
            ("from the app folder into Secret", ""),
            ("Value of STRIPE_SK (hidden; Enter to stop)", TYPED),
            (
                "Use your Docker login to `ghcr.io` (user `acme`) for the pods' pull secret?",
                "",
            ),
        ],
        "Deployed [a-z0-9-]+ as release v1",
    );
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}\n{screen}"
    );
    assert_eq!(asked, 3);
    no_secret_on(&screen, DOTENV_VALUES);
    assert!(!screen.contains(TYPED), "{screen}");
    assert_eq!(
        secret_data(&ns.0, "dotenv-secrets", "STRIPE_SK"),
        TYPED.as_bytes()
    );
    let pull = secret_data(&ns.0, "dotenv-registry", ".dockerconfigjson");
    let pull = String::from_utf8(pull).unwrap();
    assert!(
        pull.contains("\"ghcr.io\"") && pull.contains(&auth),
        "{pull}"
    );
}

/// One key of a Secret, decoded.
fn secret_data(ns: &str, secret: &str, key: &str) -> Vec<u8> {
    let path = format!("jsonpath={{.data.{}}}", key.replace('.', "\\."));
    let encoded = kubectl(cluster(), &["-n", ns, "get", "secret", secret, "-o", &path])
        .success()
        .stdout;
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim()).unwrap()
}

#[test]
fn without_a_terminal_the_first_deploy_names_everything_missing_and_changes_nothing() {
    let ns = FreshNs::new("first-noinput");
    let app = fixture("dotenv-secrets");
    let init = format!(
        "init --no-input --name dotenv --image ghcr.io/acme/dotenv:1 --private -n {}",
        ns.0
    );
    rails(app.path(), None, &words(&init)).success();
    let run: Run = rails(app.path(), Some(cluster()), &["deploy", "--no-input"]).code(2);
    run.stderr_has("the deploy needs what it cannot ask for (`--no-input` is set)");
    run.stderr_has(&format!(
        "namespace `{}` does not exist: pass `--yes` to create it",
        ns.0
    ));
    run.stderr_has("Secret `dotenv-secrets` lacks DATABASE_URL, SMTP_PASS, STRIPE_SK, SLACK_WEBHOOK, MAILER_FROM, SECRET_KEY_BASE");
    run.stderr_has("pull secret `dotenv-registry` for `ghcr.io` is missing: `kubectl rails secrets registry --server ghcr.io`");
    let left = kubectl(cluster(), &["get", "namespace", &ns.0]);
    assert_ne!(left.code, 0, "nothing was created");
    // Without a spec, the first missing answer is named by its flag.
    let bare = fixture("rails71-sidekiq");
    let run = rails(bare.path(), Some(cluster()), &["deploy", "--no-input"]).code(2);
    run.stderr_has("pass `--image`, `--uid`");
    // `deploy --image --tag --host` answer init's questions; what is left is listed at once.
    let args = [
        "deploy",
        "--no-input",
        "--image",
        "ghcr.io/acme/shop",
        "--tag",
        "7",
        "--host",
        "shop.example.com",
    ];
    let run = rails(bare.path(), Some(cluster()), &args).code(2);
    assert!(!run.stderr.contains("`--image`"), "{}", run.stderr);
    run.stderr_has("pass `--uid`");
    assert!(
        !bare.path().join("config/kubernetes.yml").exists(),
        "nothing was written"
    );
}

#[test]
fn spec_warnings_are_said_by_init_render_and_deploy_not_by_every_command() {
    let ns = crate::support::TestNs::restricted("warnonce");
    let app = fixture("rails71-sidekiq");
    let warning = "image `ghcr.io/acme/shop` has no tag";
    let init = format!(
        "init --no-input --image ghcr.io/acme/shop --uid 1000 -n {}",
        ns.name
    );
    let init = rails(app.path(), None, &words(&init)).success();
    assert_eq!(init.stderr.matches(warning).count(), 1, "{}", init.stderr);
    rails(app.path(), None, &["render"])
        .success()
        .stderr_has(warning);
    for args in [&["releases"][..], &["status"], &["logs"], &["env", "list"]] {
        let run = ns.rails(app.path(), args);
        assert!(
            !run.stderr.contains(warning),
            "{args:?} repeated the warning:\n{}",
            run.stderr
        );
    }
}

#[test]
fn init_ends_with_what_it_found_and_decided() {
    let app = fixture("rails8-sqlite");
    let init = words("init --no-input --image ghcr.io/acme/notes:1");
    let run = rails(app.path(), None, &init).success();
    for row in [
        "  Rails      8.1.1\n",
        "  web        port 8080 (Thruster, moved off :80), 1 replica, health check `/up` (config/routes.rb:4)\n",
        // Rails' entrypoint prepares the database for `./bin/rails server` in every pod: web
        // starts as `bin/rails server`, and the migration Job prepares once.
        "  starts     `./bin/thrust bin/rails server` (bin/docker-entrypoint: the image's command without its boot-time db:prepare)\n",
        "  processes  web only\n",
        "  database   SQLite (config/database.yml), on the app's volume\n",
        "  volume     `storage` at /rails/storage (1Gi, ReadWriteOnce) (Kamal's volumes)\n",
        "  registry   ghcr.io with pull secret `notes-registry`\n",
        "  runs as    uid 1000, gid 1000\n",
        "next: `kubectl rails secrets import` (or `secrets set KEY`), then `kubectl rails secrets registry`, then `kubectl rails deploy`",
    ] {
        run.stderr_has(row);
    }
}

/// Local input is checked before the cluster is needed: each mistake is reported as itself
/// even where no kubeconfig exists.
#[test]
fn local_mistakes_are_reported_before_the_missing_kubeconfig() {
    let app = fixture("dotenv-secrets");
    let init = words("init --no-input --name dotenv --image ghcr.io/acme/dotenv:1");
    rails(app.path(), None, &init).success();
    std::fs::write(
        app.path().join(".env"),
        "RAILS_ENV=production\nnot a line of env\n",
    )
    .unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["secrets", "import", "--yes"], "cannot parse"),
        (&["deploy", "--timeout", "soon"], "`soon` is not a duration"),
    ];
    for (args, said) in cases {
        let run = rails(app.path(), None, args);
        assert_ne!(run.code, 0, "{args:?}");
        run.stderr_has(said);
        assert!(
            !run.stderr.contains("kubeconfig"),
            "{args:?}: {}",
            run.stderr
        );
    }
    std::fs::write(app.path().join("config/kubernetes.yml"), "name: [broken\n").unwrap();
    let run = rails(app.path(), None, &["deploy", "--no-input"]);
    run.stderr_has("config/kubernetes.yml:");
    assert!(!run.stderr.contains("kubeconfig"), "{}", run.stderr);
}
