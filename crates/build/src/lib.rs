//! Builds the app's image from its folder and pushes it, by shelling out to the builder at hand
//! as Kamal does: `docker buildx`, `podman`, `buildah` or `nerdctl`. What each runs is a pure
//! function of the spec's `build:` section ([`commands`]); running it streams the builder's
//! lines to the caller and, on failure, names the step that failed with the last lines of its
//! log. Build secrets and registry credentials go through files in a private temporary folder,
//! never through a command line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kubectl_rails_core::model::BuildSpec;
pub use tempfile::TempDir;

/// How many lines of the builder's log a failure shows.
const TAIL: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "no image builder found on PATH (docker buildx with a reachable daemon, podman, buildah, nerdctl)"
    )]
    NoBuilder,
    #[error("unknown builder `{0}`: use docker, podman, buildah, nerdctl or cluster")]
    UnknownBuilder(String),
    #[error("builder `{0}` is not usable here: {1}")]
    Unusable(String, String),
    #[error("build secret `{0}` is not set in the environment")]
    MissingSecret(String),
    #[error("{what}: {reason}")]
    Io { what: String, reason: String },
    /// The `cluster` builder cannot start: why, and what to do.
    #[error("the cluster builder: {what}")]
    Cluster { what: String, fix: String },
    #[error("{builder} failed{}", step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default())]
    Failed {
        builder: String,
        /// The builder's last step line before the failure (`STEP 4/9: RUN bundle install`).
        step: Option<String>,
        /// The last lines it printed.
        tail: Vec<String>,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |e| BuildError::Io {
        what,
        reason: e.to_string(),
    }
}

/// An image builder found on PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    Docker,
    Podman,
    Buildah,
    Nerdctl,
}

impl Builder {
    /// In the order they are tried, as Kamal prefers Docker.
    pub const ALL: [Builder; 4] = [
        Builder::Docker,
        Builder::Podman,
        Builder::Buildah,
        Builder::Nerdctl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builder::Docker => "docker",
            Builder::Podman => "podman",
            Builder::Buildah => "buildah",
            Builder::Nerdctl => "nerdctl",
        }
    }

    pub fn parse(name: &str) -> Result<Self, BuildError> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| BuildError::UnknownBuilder(name.to_string()))
    }

    /// Whether it can build here: on PATH, and for docker, with buildx and a daemon.
    fn usable(self) -> Result<(), String> {
        let probe = |args: &[&str]| {
            Command::new(self.name())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("`{}` cannot run: {e}", self.name()))
                .and_then(|s| {
                    s.success()
                        .then_some(())
                        .ok_or_else(|| format!("`{} {}` failed", self.name(), args.join(" ")))
                })
        };
        match self {
            Builder::Docker => {
                probe(&["buildx", "version"])?;
                probe(&["info", "--format", "{{.ServerVersion}}"])
            }
            _ => probe(&["--version"]),
        }
    }
}

/// The builder `wanted` names, or the first usable one.
pub fn choose(wanted: Option<&str>) -> Result<Builder, BuildError> {
    if let Some(name) = wanted {
        let builder = Builder::parse(name)?;
        builder
            .usable()
            .map_err(|why| BuildError::Unusable(name.to_string(), why))?;
        return Ok(builder);
    }
    Builder::ALL
        .into_iter()
        .find(|b| b.usable().is_ok())
        .ok_or(BuildError::NoBuilder)
}

/// One build: what to build, where, and the files its secrets and credentials are in.
#[derive(Debug, Clone)]
pub struct Job {
    /// `repository:tag` to build and push.
    pub image: String,
    /// The folder the build context is read from.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// Each build secret's id and the file that holds its value.
    pub secret_files: Vec<(String, PathBuf)>,
}

/// The command lines `builder` runs for `job`: the build, then the push when the build does
/// not push itself. Pure.
pub fn commands(builder: Builder, spec: &BuildSpec, job: &Job) -> Vec<Vec<String>> {
    let mut build: Vec<String> = match builder {
        Builder::Docker => vec!["docker".into(), "buildx".into(), "build".into()],
        Builder::Podman => vec!["podman".into(), "build".into()],
        // No network of its own here: RUN steps use the host's (apt, bundle install).
        Builder::Buildah => vec![
            "buildah".into(),
            "bud".into(),
            "--layers".into(),
            "--network".into(),
            "host".into(),
        ],
        Builder::Nerdctl => vec!["nerdctl".into(), "build".into()],
    };
    build.extend(["--file".into(), job.dockerfile.display().to_string()]);
    if let Some(target) = &spec.target {
        build.extend(["--target".into(), target.clone()]);
    }
    for (key, value) in &spec.args {
        build.extend(["--build-arg".into(), format!("{key}={value}")]);
    }
    for (id, file) in &job.secret_files {
        build.extend(["--secret".into(), format!("id={id},src={}", file.display())]);
    }
    let one_platform = spec.platforms.len() == 1;
    if !spec.platforms.is_empty() && (builder == Builder::Docker || one_platform) {
        build.extend(["--platform".into(), spec.platforms.join(",")]);
    }
    if let Some(cache) = &spec.cache {
        match builder {
            Builder::Docker | Builder::Nerdctl => build.extend([
                "--cache-from".into(),
                format!("type=registry,ref={cache}"),
                "--cache-to".into(),
                format!("type=registry,ref={cache},mode=max"),
            ]),
            Builder::Podman | Builder::Buildah => build.extend([
                "--cache-from".into(),
                cache.clone(),
                "--cache-to".into(),
                cache.clone(),
            ]),
        }
    }
    build.extend(["--tag".into(), job.image.clone()]);
    if builder == Builder::Docker {
        build.push("--push".into());
    }
    build.push(job.context.display().to_string());
    let mut lines = vec![build];
    if builder != Builder::Docker {
        lines.push(vec![
            builder.name().into(),
            "push".into(),
            job.image.clone(),
        ]);
    }
    lines
}

/// A builder's line that starts a step: `STEP 4/9: RUN ...` (buildah, podman) or
/// `#7 [3/5] RUN ...` (BuildKit: docker buildx, nerdctl).
pub fn step_of(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with("STEP ") && line.contains(": ") {
        return Some(line.to_string());
    }
    let rest = line.strip_prefix('#')?;
    let (_, after) = rest.split_once(' ')?;
    (after.starts_with('[') && after.contains("] "))
        .then(|| after.split_once("] ").map(|(_, s)| s.to_string()))
        .flatten()
}

/// A private folder for the build's secret files and registry credentials, removed when
/// dropped.
pub struct Private {
    dir: tempfile::TempDir,
}

impl Private {
    pub fn new() -> Result<Self, BuildError> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("kubectl-rails-build-")
                .tempdir()
                .map_err(io("create a private folder for the build"))?,
        })
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, BuildError> {
        use std::io::Write;
        let path = self.dir.path().join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(io(format!("write {}", path.display())))?;
        file.write_all(bytes)
            .map_err(io(format!("write {}", path.display())))?;
        Ok(path)
    }

    /// Each secret's value from the environment, in a file of its own.
    pub fn secret_files(
        &self,
        names: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, PathBuf)>, BuildError> {
        names
            .iter()
            .map(|name| {
                let value = env(name).ok_or_else(|| BuildError::MissingSecret(name.clone()))?;
                Ok((
                    name.clone(),
                    self.write(&format!("secret-{name}"), value.as_bytes())?,
                ))
            })
            .collect()
    }

    /// A Docker config (and containers auth file) with `server`'s credentials over the ones
    /// the user's own Docker config holds; the env that points each builder at it.
    pub fn registry_login(
        &self,
        own_config: Option<&str>,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<Vec<(String, String)>, BuildError> {
        let text = docker_config(own_config, server, username, password);
        self.write("config.json", text.as_bytes())?;
        let auth_file = self.write("auth.json", text.as_bytes())?;
        Ok(vec![
            (
                "DOCKER_CONFIG".into(),
                self.dir.path().display().to_string(),
            ),
            ("REGISTRY_AUTH_FILE".into(), auth_file.display().to_string()),
        ])
    }
}

/// A Docker config's text with `server`'s credentials over the ones the user's own Docker
/// config holds (their other registries stay, for base images kept there). Pure.
pub fn docker_config(
    own_config: Option<&str>,
    server: &str,
    username: &str,
    password: &str,
) -> String {
    let mut auths: BTreeMap<String, serde_json::Value> = own_config
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("auths").cloned())
        .and_then(|a| serde_json::from_value(a).ok())
        .unwrap_or_default();
    auths.insert(
        server.to_string(),
        serde_json::json!({"auth": STANDARD.encode(format!("{username}:{password}"))}),
    );
    serde_json::json!({ "auths": auths }).to_string()
}

/// The app folder's committed tree (`git archive HEAD`) in a folder of its own, as Kamal builds
/// it; and whether the working tree has changes the build leaves out.
pub fn committed_tree(app_dir: &Path) -> Result<(tempfile::TempDir, bool), BuildError> {
    let dir = tempfile::Builder::new()
        .prefix("kubectl-rails-context-")
        .tempdir()
        .map_err(io("create a folder for the build context"))?;
    let archive = dir.path().join(".kubectl-rails-context.tar");
    let out = Command::new("git")
        .arg("-C")
        .arg(app_dir)
        .args(["archive", "--format=tar", "-o"])
        .arg(&archive)
        .arg("HEAD")
        .output()
        .map_err(io("run `git archive`"))?;
    if !out.status.success() {
        return Err(BuildError::Io {
            what: format!("`git archive HEAD` in {}", app_dir.display()),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .output()
        .map_err(io("run `tar`"))?;
    if !out.status.success() {
        return Err(BuildError::Io {
            what: "unpack the committed tree".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    std::fs::remove_file(&archive).map_err(io("remove the archive"))?;
    let status = Command::new("git")
        .arg("-C")
        .arg(app_dir)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map_err(io("run `git status`"))?;
    let dirty = !String::from_utf8_lossy(&status.stdout).trim().is_empty();
    Ok((dir, dirty))
}

/// Runs the builder's commands, each line of their output (stdout and stderr, as they come)
/// handed to `on_line`. A failure names the last step and keeps the last lines. The builder
/// does not inherit the build secrets' variables (`unset`): their values are in files, and
/// buildah 1.28 mounts an empty secret when a variable of the secret's name is set.
pub fn run(
    lines: &[Vec<String>],
    env: &[(String, String)],
    unset: &[String],
    on_line: &mut dyn FnMut(&str),
) -> Result<Duration, BuildError> {
    let started = std::time::Instant::now();
    for argv in lines {
        let mut command = Command::new(&argv[0]);
        for name in unset {
            command.env_remove(name);
        }
        let mut child = command
            .args(&argv[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("run `{}`", argv[0])))?;
        // Both streams into one channel, so lines show as the builder prints them.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let relays: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                    buf.clear();
                }
            })
        })
        .collect();
        drop(tx);
        let mut step = None;
        let mut tail: Vec<String> = Vec::new();
        for line in rx {
            if let Some(s) = step_of(&line) {
                step = Some(s);
            }
            on_line(&line);
            tail.push(line);
            if tail.len() > TAIL {
                tail.remove(0);
            }
        }
        for relay in relays {
            let _ = relay.join();
        }
        let status = child
            .wait()
            .map_err(io(format!("wait for `{}`", argv[0])))?;
        if !status.success() {
            return Err(BuildError::Failed {
                builder: format!("`{} {}`", argv[0], argv.get(1).cloned().unwrap_or_default()),
                step: if argv.get(1).map(String::as_str) == Some("push") {
                    Some(format!("push {}", argv.last().cloned().unwrap_or_default()))
                } else {
                    step
                },
                tail,
            });
        }
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_args: &[(&str, &str)]) -> BuildSpec {
        BuildSpec {
            dockerfile: "Dockerfile".into(),
            context: ".".into(),
            target: Some("app".into()),
            args: yaml_args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: vec!["GITHUB_TOKEN".into()],
            platforms: vec!["linux/amd64".into()],
            cache: Some("r.example/shop:cache".into()),
            builder: None,
            cluster: None,
        }
    }

    fn job() -> Job {
        Job {
            image: "r.example/shop:abc".into(),
            context: "/ctx".into(),
            dockerfile: "/ctx/Dockerfile".into(),
            secret_files: vec![("GITHUB_TOKEN".into(), "/private/secret-GITHUB_TOKEN".into())],
        }
    }

    /// What each builder runs: flags it understands, the push where the build does not push.
    #[test]
    fn each_builder_gets_its_own_command_lines() {
        let s = spec(&[("RUBY_VERSION", "3.3.6")]);
        let common = "--file /ctx/Dockerfile --target app --build-arg RUBY_VERSION=3.3.6 --secret id=GITHUB_TOKEN,src=/private/secret-GITHUB_TOKEN --platform linux/amd64";
        let cases = [
            (
                Builder::Docker,
                vec![format!(
                    "docker buildx build {common} --cache-from type=registry,ref=r.example/shop:cache --cache-to type=registry,ref=r.example/shop:cache,mode=max --tag r.example/shop:abc --push /ctx"
                )],
            ),
            (
                Builder::Buildah,
                vec![
                    format!(
                        "buildah bud --layers --network host {common} --cache-from r.example/shop:cache --cache-to r.example/shop:cache --tag r.example/shop:abc /ctx"
                    ),
                    "buildah push r.example/shop:abc".to_string(),
                ],
            ),
            (
                Builder::Podman,
                vec![
                    format!(
                        "podman build {common} --cache-from r.example/shop:cache --cache-to r.example/shop:cache --tag r.example/shop:abc /ctx"
                    ),
                    "podman push r.example/shop:abc".to_string(),
                ],
            ),
            (
                Builder::Nerdctl,
                vec![
                    format!(
                        "nerdctl build {common} --cache-from type=registry,ref=r.example/shop:cache --cache-to type=registry,ref=r.example/shop:cache,mode=max --tag r.example/shop:abc /ctx"
                    ),
                    "nerdctl push r.example/shop:abc".to_string(),
                ],
            ),
        ];
        for (builder, want) in cases {
            let got: Vec<String> = commands(builder, &s, &job())
                .iter()
                .map(|argv| argv.join(" "))
                .collect();
            assert_eq!(got, want, "{builder:?}");
        }
    }

    #[test]
    fn steps_as_builders_print_them() {
        let cases = [
            (
                "STEP 4/9: RUN bundle install",
                Some("STEP 4/9: RUN bundle install"),
            ),
            (
                "#7 [3/5] RUN apt-get install -y ruby",
                Some("RUN apt-get install -y ruby"),
            ),
            ("#7 0.532 Reading package lists...", None),
            ("Get:1 http://deb.debian.org bookworm InRelease", None),
        ];
        for (line, want) in cases {
            assert_eq!(step_of(line).as_deref(), want, "{line}");
        }
    }

    #[test]
    fn secrets_and_credentials_go_to_private_files() {
        let private = Private::new().unwrap();
        let files = private
            .secret_files(&["TOKEN".into()], |k| {
                (k == "TOKEN").then(|| "s3cr3t-value".into())
            })
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&files[0].1).unwrap(),
            "s3cr3t-value"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files[0].1).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            private.secret_files(&["NOPE".into()], |_| None),
            Err(BuildError::MissingSecret(n)) if n == "NOPE"
        ));
        let env = private
            .registry_login(
                Some(r#"{"auths": {"ghcr.io": {"auth": "b3duOnRva2Vu"}}}"#),
                "r.example",
                "me",
                "pw",
            )
            .unwrap();
        let auth_file = &env
            .iter()
            .find(|(k, _)| k == "REGISTRY_AUTH_FILE")
            .unwrap()
            .1;
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(auth_file).unwrap()).unwrap();
        assert_eq!(
            config["auths"]["ghcr.io"]["auth"], "b3duOnRva2Vu",
            "the user's own stay"
        );
        assert_eq!(
            config["auths"]["r.example"]["auth"],
            STANDARD.encode("me:pw")
        );
    }
}
