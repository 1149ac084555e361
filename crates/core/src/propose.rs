//! Turning a [`Detection`] into a spec: everything the folder decides, and defaults for what
//! only the user can answer (name, image, host, namespace, replicas).

use std::collections::BTreeMap;

use crate::detect::{Database, Detection, Health, ImageUser, JobBackend, procfile};
use crate::dotenv::is_known_plain;
use crate::model::{
    AccessMode, AppSpec, CronSpec, ImageSpec, IngressSpec, IssuerKind, MigrateSpec, Placement,
    RegistrySpec, Resources, SecretKeys, VolumeSpec, WebSpec, WorkerSpec,
};
use crate::validate::{MAX_APP_NAME, suggest_label};

/// The port Thruster is moved to: a non-root container cannot bind :80.
pub const THRUSTER_PORT: u16 = 8080;

/// What the folder says, before the user's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub name: Option<String>,
    /// The asset server, when the app fingerprints assets and serves them itself (no CDN).
    pub assets: Option<crate::model::AssetsSpec>,
    pub image: Option<String>,
    pub hosts: Vec<String>,
    pub tls: bool,
    pub port: u16,
    pub web_command: Option<Vec<String>>,
    pub health_path: String,
    /// Who the image runs as, when a Dockerfile says (`None`: no Dockerfile was read).
    pub user: Option<ImageUser>,
    /// The image starts as root and drops to its user here (`bin/docker-entrypoint:4`): its
    /// pods run as uid 0, as Docker runs it.
    pub starts_as_root: Option<String>,
    /// The registry Kamal logs in to (`registry.server`, Docker Hub when only a user is given).
    pub kamal_registry: Option<String>,
    pub workers: BTreeMap<String, WorkerSpec>,
    pub env: BTreeMap<String, String>,
    pub secrets: SecretKeys,
    pub migrate: MigrateSpec,
    pub volume: Option<VolumeSpec>,
    /// The image's WORKDIR, when a Dockerfile says it.
    pub workdir: Option<String>,
    /// Folders the app writes besides `tmp/` (`log` when it logs to files).
    pub writable: Vec<String>,
    /// How the image is built from the folder: its Dockerfile, and what Kamal's `builder` says.
    pub build: Option<crate::model::BuildSpec>,
    /// Web replicas to propose: 1 for an app whose data lives on a ReadWriteOnce volume.
    pub replicas: i32,
    /// Kamal's `proxy.response_timeout`, for the ingress.
    pub response_timeout: Option<u32>,
    /// The web process's requests and limits (Kamal's `options`, else the defaults).
    pub web_resources: Resources,
    /// The web role's own plain env.
    pub web_env: BTreeMap<String, String>,
    pub drain_timeout: Option<u32>,
    pub cron: BTreeMap<String, CronSpec>,
    pub aliases: BTreeMap<String, String>,
    /// Kamal's `builder.arch`: the nodes must have it.
    pub arch: Option<String>,
    pub hooks_path: Option<String>,
    /// What `init` should tell the user about choices it made.
    pub notes: Vec<String>,
    /// Where each decided value came from, by field (`port`, `health`, `web`, `database`,
    /// `volume`, `tls`), for the summary.
    pub sources: BTreeMap<&'static str, String>,
    /// What the folder cannot tell and a person (or a flag) must: asked at a terminal, listed
    /// all at once without one.
    pub questions: Vec<Question>,
    /// Fields whose value is a default nothing in the folder said (`port`, `health`, `tls`): a
    /// terminal run asks for them, with the default offered.
    pub guessed: Vec<&'static str>,
}

/// A value nobody can determine from the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// What is needed, and why it is not known.
    pub what: String,
    /// The flag that gives it.
    pub flag: &'static str,
}

/// The answers only a person (or a flag) can give.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub name: String,
    pub image: ImageSpec,
    pub hosts: Vec<String>,
    pub namespace: Option<String>,
    pub replicas: i32,
    /// Where every pod runs (`--node-selector`, `--toleration`).
    pub placement: Placement,
    /// The user and group the pods run as (from the Dockerfile, `--uid`/`--gid` or a question).
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    /// Whether pulling the image needs credentials (a pull secret).
    pub private_registry: bool,
    /// The Gateway the app's HTTPRoute attaches to (`--gateway`, or the cluster's only
    /// Gateway where it has no IngressClass): TLS is then its listener's.
    pub gateway: Option<String>,
}

impl Proposal {
    /// Whether Kamal logs in to the registry `image` comes from.
    pub fn kamal_logs_in_to(&self, image: &ImageSpec) -> bool {
        let host = image.registry_host().unwrap_or("docker.io");
        self.kamal_registry.as_deref() == Some(host)
    }
}

/// What the caller already knows, from flags.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub port: Option<u16>,
    pub health_path: Option<String>,
    /// `--web-command`: a shell line, split as a Procfile's.
    pub web_command: Option<String>,
    /// `--tls` / `--no-tls`.
    pub tls: Option<bool>,
}

/// Whether `command` (words or one shell line) starts a web server.
fn serves(words: &[String]) -> bool {
    let line = words.join(" ");
    procfile::server_of(&line).is_some()
        || line
            .split("&&")
            .chain(line.split(';'))
            .any(|part| procfile::server_of(part.trim()).is_some())
}

/// Builds a proposal: for each spec field, the first fact that exists wins, and where it came
/// from is kept for the summary.
pub fn propose(d: &Detection, given: &Given) -> Proposal {
    let kamal = d.kamal.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let mut sources = BTreeMap::new();
    let mut questions = Vec::new();
    let mut guessed = Vec::new();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("RAILS_ENV".into(), "production".into());
    let mut web_env = kamal.web.env_clear.clone();
    let image_cmd: Vec<String> = d
        .dockerfile
        .as_ref()
        .map(|f| f.start_command())
        .unwrap_or_default();
    let script_text: String = d
        .start_scripts
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");

    // The app's processes: its Procfile, else its start scripts (`scripts/start.worker.sh`),
    // else the `command:` lines of a production compose file. Line numbers count from 1 in
    // a Procfile; `src` says where each came from.
    let (lines, from_scripts): (Vec<procfile::ProcfileLine>, bool) = if !d.procfile.is_empty() {
        (d.procfile.clone(), false)
    } else if !d.script_processes.is_empty() {
        let lines = d
            .script_processes
            .iter()
            .enumerate()
            .map(|(i, (name, path))| procfile::ProcfileLine {
                line: i + 1,
                name: name.clone(),
                command: path.clone(),
            })
            .collect();
        (lines, true)
    } else {
        let lines = d
            .compose_processes
            .iter()
            .enumerate()
            .map(|(i, (name, command, _))| procfile::ProcfileLine {
                line: i + 1,
                name: name.clone(),
                command: command.clone(),
            })
            .collect();
        (lines, true)
    };
    let src = |line: &procfile::ProcfileLine| -> String {
        if !d.procfile.is_empty() {
            format!("{}:{}", d.procfile_name, line.line)
        } else if !d.script_processes.is_empty() {
            line.command.clone()
        } else {
            format!(
                "{} service `{}`",
                d.compose_processes
                    .first()
                    .map_or("", |(_, _, f)| f.as_str()),
                line.name
            )
        }
    };

    // Which model runs the processes: the image's CMD runs the whole Procfile itself (foreman,
    // overmind), or each Procfile line is a Deployment of its own.
    // A start script that names the Procfile runs it (campfire's `bin/boot` is its own monitor).
    let image_runs_procfile = !d.procfile.is_empty()
        && (procfile::runs_a_procfile(&image_cmd.join(" "))
            || procfile::runs_a_procfile(&script_text)
            || d.start_scripts
                .iter()
                .any(|(_, t)| t.contains(&format!("\"{}\"", d.procfile_name))));
    if image_runs_procfile {
        notes.push(format!(
            "the image's start command ({}) runs every line of the `{}` itself, so each web pod runs them all and no process gets a Deployment of its own; to scale them apart, give the image a server CMD and let `workers:` run the rest",
            d.start_scripts.first().map_or_else(|| image_cmd.join(" "), |(f, _)| format!("`{f}`")),
            d.procfile_name
        ));
    }

    // The web process: Kamal's web role, `--web-command`, the image's own server, else the
    // Procfile line that runs one (whatever its name).
    // A start script or a compose service named `web` serves, whatever it runs.
    let server_line = lines
        .iter()
        .filter(|l| procfile::server_of(&l.command).is_some() || (from_scripts && l.name == "web"))
        .min_by_key(|l| (l.name != "web", l.line));
    let image_only_cmd = d
        .dockerfile
        .as_ref()
        .and_then(|f| f.cmd.clone())
        .unwrap_or_default();
    let image_serves = serves(&image_cmd)
        || serves(&image_only_cmd)
        || procfile::server_of(&script_text.replace('\n', " ")).is_some()
        || d.start_scripts
            .iter()
            .any(|(_, t)| t.lines().any(|l| procfile::server_of(l.trim()).is_some()));
    let mut web_command = None;
    let mut web_line_text: Option<String> = None;
    if let Some(cmd) = &given.web_command {
        let c = procfile::command_of(cmd);
        web_env.extend(c.env);
        web_command = Some(c.command);
        web_line_text = Some(cmd.clone());
        sources.insert("web", "--web-command".to_string());
    } else if let Some(cmd) = &kamal.web.cmd {
        web_command = Some(crate::kamal::shell_words(cmd));
        web_line_text = Some(cmd.clone());
        sources.insert("web", "Kamal's servers.web.cmd".to_string());
    } else if image_runs_procfile || (image_serves && !image_cmd.is_empty()) {
        sources.insert(
            "web",
            format!(
                "{}: `{}`",
                d.dockerfile_path.as_deref().unwrap_or("Dockerfile"),
                image_cmd.join(" ")
            ),
        );
        web_line_text = Some(image_cmd.join(" "));
    } else if let Some(line) = server_line {
        let c = procfile::command_of(&line.command);
        web_env.extend(c.env);
        web_command = Some(c.command);
        web_line_text = Some(line.command.clone());
        sources.insert("web", format!("{} (`{}`)", src(line), line.name));
    } else if !image_cmd.is_empty() {
        questions.push(Question {
            what: format!(
                "the command that starts the web server: the image starts `{}`, which runs no server kubectl-rails knows (puma, rails server, unicorn, passenger, thrust, falcon), and no Procfile line does",
                image_cmd.join(" ")
            ),
            flag: "--web-command",
        });
    } else {
        sources.insert("web", "the image's own CMD".to_string());
    }
    let thruster = web_line_text
        .as_deref()
        .is_some_and(|t| t.contains("thrust"))
        || (web_command.is_none() && d.dockerfile.as_ref().is_some_and(|f| f.runs_thruster()))
        || (image_runs_procfile && server_line.is_some_and(|l| l.command.contains("thrust")));

    // The port, from the truest source.
    let web_flag_port = web_line_text.as_deref().and_then(procfile::port_of);
    let image_env_port = d
        .dockerfile
        .as_ref()
        .and_then(|f| f.env.get("PORT"))
        .and_then(|p| p.parse::<u16>().ok());
    let port = if let Some(p) = given.port {
        sources.insert("port", "--port".into());
        p
    } else if thruster {
        let http_port = kamal
            .app_port
            .or_else(|| {
                d.dockerfile
                    .as_ref()
                    .and_then(|f| f.env.get("HTTP_PORT"))
                    .and_then(|p| p.parse::<u16>().ok())
            })
            .unwrap_or(80);
        if http_port < 1024 {
            env.insert("HTTP_PORT".into(), THRUSTER_PORT.to_string());
            notes.push(format!(
                "the image runs Thruster on port {http_port} as a non-root user, which cannot bind it on Kubernetes: set HTTP_PORT={THRUSTER_PORT} and containerPort {THRUSTER_PORT}"
            ));
            sources.insert("port", format!("Thruster, moved off :{http_port}"));
            THRUSTER_PORT
        } else {
            sources.insert("port", "Thruster's HTTP_PORT".into());
            http_port
        }
    } else if let Some(p) = kamal.app_port {
        sources.insert("port", "Kamal's proxy.app_port".into());
        p
    } else if let Some((Some(p), _)) = web_flag_port {
        sources.insert("port", "the web command".into());
        p
    } else if let Some((p, line)) = d.puma.port {
        sources.insert("port", format!("config/puma.rb:{line}"));
        p
    } else if let Some(p) = image_env_port {
        sources.insert("port", "the image's ENV PORT".into());
        p
    } else if let Some(p) = d.dockerfile.as_ref().and_then(|f| f.expose) {
        sources.insert("port", "the Dockerfile's EXPOSE".into());
        p
    } else {
        sources.insert("port", "Rails' default".into());
        guessed.push("port");
        3000
    };
    if !thruster {
        // Puma, `rails server` and most Procfile lines read PORT.
        env.insert("PORT".into(), port.to_string());
    }
    if let Some((key, line)) = &d.puma.loopback_bind {
        match key {
            Some(key) => {
                env.insert(key.clone(), "0.0.0.0".into());
                notes.push(format!(
                    "config/puma.rb:{line} binds a loopback address unless {key} is set, which the Service cannot reach: set {key}=0.0.0.0"
                ));
            }
            None => notes.push(format!(
                "warning: config/puma.rb:{line} binds a loopback address only: the Service cannot reach it; bind `tcp://0.0.0.0:{port}` in production"
            )),
        }
    }

    // Health: Kamal's healthcheck path, `--health-path`, the routes, `/` when routed, else TCP.
    let health_path = if let Some(p) = &given.health_path {
        sources.insert("health", "--health-path".into());
        p.clone()
    } else if let Some(p) = &kamal.health_path {
        sources.insert("health", "Kamal's proxy.healthcheck.path".into());
        p.clone()
    } else {
        match &d.health {
            Health::Path { path, at } => {
                sources.insert("health", at.clone());
                path.clone()
            }
            Health::Root { at } => {
                sources.insert(
                    "health",
                    format!("no health route; `root` is routed at {at}"),
                );
                "/".into()
            }
            Health::None => {
                guessed.push("health");
                sources.insert(
                    "health",
                    "no health route and no `root`: a TCP check on the port".into(),
                );
                crate::model::TCP_PROBE.into()
            }
        }
    };

    let local_registry = kamal.registry_server.as_deref().is_some_and(|s| {
        let host = s.split(':').next().unwrap_or(s);
        host == "localhost" || host.starts_with("127.")
    });
    let image = if local_registry {
        notes.push(format!(
            "Kamal pushes to a registry on its own machine (`{}`), which no node can pull from: give an image in a registry the cluster reaches (`--image`)",
            kamal.registry_server.as_deref().unwrap_or("")
        ));
        None
    } else {
        kamal
            .image
            .as_ref()
            .map(|image| match &kamal.registry_server {
                Some(server) if !image.starts_with(&format!("{server}/")) => {
                    format!("{server}/{image}")
                }
                _ => image.clone(),
            })
    };
    let kamal_registry = kamal.registry_username.as_ref().map(|_| {
        kamal
            .registry_server
            .clone()
            .unwrap_or_else(|| "docker.io".to_string())
    });

    // Processes.
    let mut workers = BTreeMap::new();
    for (role, r) in &kamal.roles {
        let command = r
            .cmd
            .as_deref()
            .map(crate::kamal::shell_words)
            .unwrap_or_else(|| default_worker_command(d.job_backend));
        let name = procfile::process_name(role).unwrap_or_else(|| role.clone());
        workers.insert(
            name,
            WorkerSpec {
                autoscale: None,
                command,
                replicas: 1,
                resources: kamal_resources(r, Resources::worker_default()),
                placement: Placement::default(),
                env: r.env_clear.clone(),
            },
        );
    }
    let mut migrate = MigrateSpec::default();
    let mut helpers = Vec::new();
    let mut renamed = Vec::new();
    for line in &lines {
        if server_line.is_some_and(|s| s.line == line.line)
            && (web_command.is_some() || !image_runs_procfile)
        {
            continue;
        }
        if line.name == "release" {
            migrate.command = procfile::command_of(&line.command).command;
            notes.push(format!(
                "migration command from {} (`release`): {}",
                src(line),
                line.command
            ));
            continue;
        }
        if let Some(helper) = procfile::helper_of(&line.command) {
            helpers.push((line, helper));
            continue;
        }
        if image_runs_procfile || line.name == "web" {
            continue;
        }
        let Some(name) = procfile::process_name(&line.name) else {
            notes.push(format!(
                "{}: `{}` cannot be a process name: skipped",
                src(line),
                line.name
            ));
            continue;
        };
        if name != line.name {
            renamed.push(format!("`{}` -> `{name}`", line.name));
        }
        if workers.contains_key(&name) {
            continue;
        }
        let c = procfile::command_of(&line.command);
        workers.insert(
            name,
            WorkerSpec {
                autoscale: None,
                command: c.command,
                replicas: 1,
                resources: Resources::worker_default(),
                placement: Placement::default(),
                env: c.env,
            },
        );
    }
    if !renamed.is_empty() {
        notes.push(format!(
            "Procfile names made valid process names (lowercase, `-`): {}",
            renamed.join(", ")
        ));
    }
    let mut needs_redis = None;
    for (line, helper) in &helpers {
        match helper {
            procfile::Helper::Redis if !image_runs_procfile => {
                needs_redis = Some(format!(
                    "{} (`{}`) runs Redis beside the app; in a cluster the app reaches it by URL, so it",
                    src(line),
                    line.name
                ));
            }
            procfile::Helper::Memcached if !image_runs_procfile => notes.push(format!(
                "{} (`{}`) runs memcached beside the app: give the app a memcached service's address as a secret",
                src(line),
                line.name
            )),
            _ => {}
        }
    }

    // Jobs: a runner of their own, unless they already run inside the web process.
    let embedded = match d.job_backend {
        Some(JobBackend::SolidQueue) if d.sets_env("SOLID_QUEUE_IN_PUMA") => Some(
            "SOLID_QUEUE_IN_PUMA is set: Solid Queue runs inside Puma, so there is no separate jobs Deployment (remove it from the env and add a `jobs` worker to run it apart)".to_string(),
        ),
        Some(JobBackend::Sidekiq) if d.puma.sidekiq_embedded => Some(
            "Sidekiq runs embedded in Puma (`Sidekiq.configure_embed` in config/puma.rb): no separate Sidekiq Deployment".to_string(),
        ),
        Some(JobBackend::GoodJob)
            if d.production.good_job_async
                || d.sets_env("GOOD_JOB_EXECUTION_MODE")
                    && d.env_value("GOOD_JOB_EXECUTION_MODE").as_deref() == Some("async") =>
        {
            Some("good_job runs in the web process (`execution_mode: :async`): no separate good_job Deployment".to_string())
        }
        _ => None,
    };
    if let Some(why) = embedded {
        notes.push(why);
    } else if image_runs_procfile {
        // The image's process manager runs the job runner too.
    } else if workers.is_empty()
        && let Some(backend) = d.job_backend
    {
        let (name, command) = backend.worker();
        let mut command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        // Sidekiq's config names the queues; the bare command works the default queue only.
        if backend == JobBackend::Sidekiq
            && let Some(config) = &d.sidekiq_config
        {
            command.extend(["-C".to_string(), config.clone()]);
        }
        workers.insert(
            name.into(),
            WorkerSpec {
                autoscale: None,
                command,
                replicas: 1,
                resources: Resources::worker_default(),
                placement: Placement::default(),
                env: BTreeMap::new(),
            },
        );
        notes.push(format!(
            "added a `{name}` worker for {} (in the Gemfile)",
            backend.label()
        ));
    }

    // Secrets and env.
    let mut secrets = SecretKeys::default();
    for (key, value) in &kamal.env_clear {
        env.insert(key.clone(), value.clone());
    }
    for key in kamal
        .env_secret
        .iter()
        .chain(kamal.web.env_secret.iter())
        .chain(kamal.roles.values().flat_map(|r| r.env_secret.iter()))
    {
        secrets.add(key, false);
    }
    if let Some((file, entries)) = &d.env_file {
        // A value from `.env` is a secret unless its name is a known plain setting: the spec is
        // committed, and `SMTP_PASS` or `STRIPE_SK` must never land in it. An example file
        // (`.env.example`) shows what may be set: its keys are optional.
        let example = d.env_file_is_example();
        let (mut plain, mut secret) = (Vec::new(), Vec::new());
        for e in entries {
            if is_known_plain(&e.key) {
                if !e.value.is_empty() {
                    env.entry(e.key.clone()).or_insert_with(|| e.value.clone());
                    plain.push(e.key.as_str());
                }
            } else if !secrets.contains(&e.key) {
                secrets.add(&e.key, example);
                secret.push(e.key.as_str());
            }
        }
        if !plain.is_empty() {
            notes.push(format!(
                "from `{file}`, plain env in the spec: {}",
                plain.join(", ")
            ));
        }
        if !secret.is_empty() {
            notes.push(if example {
                format!(
                    "from `{file}` (an example), optional secrets: {}; the app starts without them (set one with `kubectl rails secrets set KEY`)",
                    secret.join(", ")
                )
            } else {
                format!(
                    "from `{file}`, secrets (names only in the spec; `kubectl rails secrets import` stores the values): {}; move a plain setting with `kubectl rails env set KEY=VALUE`",
                    secret.join(", ")
                )
            });
        }
    }
    // What the production database config reads: without a default the app needs it; with a
    // default only a connection setting may be worth setting.
    let db = &d.database_yml;
    for key in db.required_env.iter().filter(|k| !env.contains_key(*k)) {
        secrets.add(key, false);
    }
    for (key, _) in db.optional_env.iter().filter(|(k, _)| !env.contains_key(k)) {
        let connection = ["URL", "HOST", "PASSWORD", "USER", "USERNAME"]
            .iter()
            .any(|m| key.ends_with(m));
        if connection && !secrets.contains(key) {
            secrets.add(key, true);
        }
    }
    if matches!(d.database, Some(Database::Postgres | Database::Mysql))
        && db.required_env.is_empty()
        && db.optional_env.iter().all(|(k, _)| k != "DATABASE_URL")
        && !secrets.contains(&"DATABASE_URL".to_string())
    {
        secrets.add("DATABASE_URL", false);
    }
    // Mongoid: its URI is the database's; its indexes are what there is to migrate.
    if d.gems.mongoid && d.database.is_none() {
        let (required, _) = d.mongoid_env.clone().unwrap_or_default();
        let key = required
            .first()
            .cloned()
            .unwrap_or_else(|| "MONGODB_URI".into());
        secrets.add(&key, false);
        if migrate.command == MigrateSpec::default().command {
            migrate.command = vec!["bin/rails".into(), "db:mongoid:create_indexes".into()];
        }
        notes.push(format!(
            "Mongoid, not Active Record: {key} is a secret (config/mongoid.yml), and the migration creates the indexes (`db:mongoid:create_indexes`)"
        ));
    }
    for (gem, what, key) in &d.gems.services {
        if !env.contains_key(*key) && !secrets.contains(&key.to_string()) {
            secrets.add(key, true);
        }
        notes.push(format!(
            "the `{gem}` gem talks to {what}: give the app its address as {key} (an optional secret; the gem's own default is localhost, which no pod serves)"
        ));
    }
    // What the code run at boot cannot start without.
    let mut required_reads = Vec::new();
    for r in d
        .env_reads
        .iter()
        .filter(|r| r.read == crate::detect::env_reads::Read::Required)
    {
        let handled = ["RAILS_MASTER_KEY", "SECRET_KEY_BASE", "RAILS_ENV"];
        let image_sets = d
            .dockerfile
            .as_ref()
            .is_some_and(|f| f.env.contains_key(&r.key));
        if env.contains_key(&r.key) || handled.contains(&r.key.as_str()) || image_sets {
            continue;
        }
        secrets.add(&r.key, false);
        required_reads.push(format!("{} ({})", r.key, r.at));
    }
    if !required_reads.is_empty() {
        notes.push(format!(
            "the app cannot boot without these, so they are required secrets: {}",
            required_reads.join(", ")
        ));
    }
    // Redis: the job backend, Action Cable or the cache store needs a server.
    // A start script of the image (an s6 service, say) that runs redis-server serves it inside.
    let image_runs_redis = d.start_scripts.iter().any(|(_, t)| {
        t.lines()
            .any(|l| procfile::helper_of(l.trim()) == Some(procfile::Helper::Redis))
    });
    let redis_why = needs_redis.or_else(|| {
        if image_runs_redis
            || (image_runs_procfile && helpers.iter().any(|(_, h)| *h == procfile::Helper::Redis))
        {
            None
        } else if let Some(gem) = &d.gems.redis_gem {
            Some(format!("the `{gem}` gem"))
        } else if d.cable_redis {
            Some("config/cable.yml's redis adapter".into())
        } else if d.cache_redis {
            Some("the Redis cache store".into())
        } else {
            None
        }
    });
    if let Some(why) = redis_why
        && !env.contains_key("REDIS_URL")
        && (!secrets.contains(&"REDIS_URL".to_string()) || secrets.is_optional("REDIS_URL"))
    {
        secrets.add("REDIS_URL", false);
        notes.push(format!(
            "{why} needs Redis: REDIS_URL is a secret (a managed Redis's URL, or `kubectl rails accessory add redis` for one in the cluster)"
        ));
    }
    // Encrypted credentials need their key; Rails reads `secret_key_base` from them, and a
    // SECRET_KEY_BASE in the env would invalidate every session, cookie and signed id.
    let kamal_master = kamal.env_secret.iter().any(|k| k == "RAILS_MASTER_KEY")
        || d.kamal_secret_keys.iter().any(|k| k == "RAILS_MASTER_KEY");
    let key_found = crate::detect::credentials::production_key(&d.credential_keys);
    if key_found.is_some() || kamal_master {
        secrets.add("RAILS_MASTER_KEY", false);
    } else if !d.credentials.is_empty() {
        secrets.add("RAILS_MASTER_KEY", true);
        secrets.add("SECRET_KEY_BASE", true);
        notes.push(format!(
            "{} is here but no key for it (`config/master.key`, `config/credentials/production.key`): RAILS_MASTER_KEY and SECRET_KEY_BASE are optional secrets, and the app needs one of them (`kubectl rails secrets set RAILS_MASTER_KEY`)",
            d.credentials.join(", ")
        ));
    } else {
        secrets.add("SECRET_KEY_BASE", false);
    }
    // `.kamal/secrets` also feeds the registry password, which belongs in the pull secret.
    let registry_keys = ["KAMAL_REGISTRY_PASSWORD"];
    for key in &d.kamal_secret_keys {
        if kamal.env_secret.contains(key) && !registry_keys.contains(&key.as_str()) {
            secrets.add(key, false);
        }
    }
    for key in secrets.iter() {
        env.remove(key);
    }
    if d.production.log_to_stdout_env
        && !env.contains_key("RAILS_LOG_TO_STDOUT")
        && !d.sets_env("RAILS_LOG_TO_STDOUT")
    {
        env.insert("RAILS_LOG_TO_STDOUT".into(), "1".into());
        notes.push("config/environments/production.rb logs to STDOUT only when RAILS_LOG_TO_STDOUT is set: set it, so that `kubectl rails logs` shows the app's log".into());
    }
    if d.production.serve_static_env
        && !thruster
        && !env.contains_key("RAILS_SERVE_STATIC_FILES")
        && !d.sets_env("RAILS_SERVE_STATIC_FILES")
    {
        env.insert("RAILS_SERVE_STATIC_FILES".into(), "1".into());
        notes.push("config/environments/production.rb serves public/ only when RAILS_SERVE_STATIC_FILES is set, and no proxy in the image serves it: set it, so that assets answer".into());
    }

    // The migration: schema-file databases (Solid Cache/Queue/Cable) are loaded by
    // `db:prepare`; `db:migrate` would leave them empty.
    let prepares_on_boot = d
        .start_scripts
        .iter()
        .any(|(_, t)| t.contains("db:prepare"));
    if migrate.command == MigrateSpec::default().command
        && (!db.schema_loaded.is_empty() || !d.schema_files.is_empty() || prepares_on_boot)
    {
        migrate.command = vec!["bin/rails".into(), "db:prepare".into()];
        notes.push(format!(
            "the migration runs `bin/rails db:prepare`: {}",
            if db.schema_loaded.is_empty() && d.schema_files.is_empty() {
                "the image's entrypoint prepares the database the same way".to_string()
            } else {
                format!(
                    "it loads the schema of {} (which `db:migrate` would leave empty) and migrates the rest",
                    if db.schema_loaded.is_empty() {
                        d.schema_files.join(", ")
                    } else {
                        db.schema_loaded.join(", ")
                    }
                )
            }
        ));
    }
    sources.insert("database", d.database_from.clone());

    // Boot that migrates: an entrypoint that prepares the database on every start would run it in
    // every web pod at once, beside the migration Job. Rails' own `bin/docker-entrypoint` does
    // it only when the last two arguments are `./bin/rails server`: web started as
    // `bin/rails server` boots without it, and the Job prepares once per release.
    if let Some((script, text)) = d
        .start_scripts
        .iter()
        .find(|(_, t)| t.lines().any(migrates))
    {
        let starts = web_command
            .clone()
            .unwrap_or_else(|| image_only_cmd.clone());
        let n = starts.len();
        if prepares_only_for_rails_server(text)
            && n >= 2
            && starts[n - 2] == "./bin/rails"
            && starts[n - 1] == "server"
        {
            let mut web = starts;
            web[n - 2] = "bin/rails".into();
            notes.push(format!(
                "{script} prepares the database whenever web starts as `./bin/rails server`, in every web pod at once: the migration Job prepares it once per release, and web starts as `{}`, which the entrypoint boots without it",
                web.join(" ")
            ));
            sources.insert(
                "web",
                format!("{script}: the image's command without its boot-time db:prepare"),
            );
            web_command = Some(web);
        } else {
            notes.push(format!(
                "{script} migrates the database on every start, in every web pod at once beside the migration Job (`{}`): make it skip that outside the Job (an env or argument it checks), or expect each pod's boot to wait on the database's migration lock",
                migrate.command.join(" ")
            ));
        }
    }

    // Data on a volume: Kamal's, SQLite's folder, Active Storage's disk, the image's VOLUME.
    let workdir = d
        .dockerfile
        .as_ref()
        .and_then(|f| f.workdir.clone())
        .unwrap_or_else(|| "/rails".into());
    let in_workdir = |rel: &str| {
        if rel.starts_with('/') {
            rel.to_string()
        } else {
            format!("{}/{rel}", workdir.trim_end_matches('/'))
        }
    };
    // SQLite's files live under the app's `storage/` (Rails' convention): the volume is that
    // folder, which Active Storage's disk service shares.
    let sqlite_dir = (d.database == Some(Database::Sqlite)).then(|| {
        db.sqlite_files
            .first()
            .and_then(|f| {
                let f = f
                    .strip_prefix(&format!("{}/", workdir.trim_end_matches('/')))
                    .unwrap_or(f);
                f.split_once('/').map(|(top, _)| in_workdir(top))
            })
            .unwrap_or_else(|| in_workdir("storage"))
    });
    // Folders the app writes data to, by a documented env default (`UPLOADS_DIR`,
    // `DATA_PATH`), not scratch space.
    let data_dirs: Vec<(&crate::detect::env_reads::EnvRead, String)> = d
        .env_reads
        .iter()
        .filter(|r| {
            ["_DIR", "_PATH", "_ROOT", "_FOLDER"]
                .iter()
                .any(|suffix| r.key.ends_with(suffix))
                && !env.contains_key(&r.key)
        })
        .filter_map(|r| {
            let path = r.default.as_deref()?.trim_end_matches('/');
            let scratch = ["tmp", "log", "cache", "pids", "sockets"]
                .iter()
                .any(|s| path.split('/').any(|part| part == *s));
            (path.contains('/') && !scratch && !path.contains("..")).then(|| (r, path.to_string()))
        })
        .collect();
    let (volume_path, volume_why) = if let Some(path) = kamal.volumes.iter().find_map(|v| {
        v.split_once(':')
            .map(|(_, path)| path.split(':').next().unwrap_or(path).to_string())
    }) {
        (Some(path), "Kamal's volumes".to_string())
    } else if let Some(dir) = sqlite_dir {
        (Some(dir), "SQLite's database files".to_string())
    } else if let Some(root) = &d.storage_disk_root {
        (
            Some(root.clone()),
            "Active Storage's Disk service in production".to_string(),
        )
    } else if let Some(v) = d.dockerfile.as_ref().and_then(|f| f.volumes.first()) {
        (Some(v.clone()), "the image's VOLUME".to_string())
    } else if let Some((r, path)) = data_dirs.first() {
        (
            Some(in_workdir(path)),
            format!("{}'s default at {}", r.key, r.at),
        )
    } else if let Some(u) = d.upload_dirs.first() {
        (
            Some(in_workdir(&u.path)),
            format!("CarrierWave's store_dir at {}", u.at),
        )
    } else {
        (None, String::new())
    };
    // Data folders beyond the volume: said, since what a pod writes there is lost on restart.
    for (r, path) in &data_dirs {
        let path = in_workdir(path);
        if volume_path
            .as_ref()
            .is_some_and(|v| !path.starts_with(v.as_str()))
        {
            notes.push(format!(
                "the app also writes to `{path}` ({}'s default at {}), which no volume keeps: set {} to a folder under the volume, or move those files to object storage",
                r.key, r.at, r.key
            ));
        }
    }
    for u in &d.upload_dirs {
        let path = in_workdir(&u.path);
        if volume_path
            .as_ref()
            .is_some_and(|v| !path.starts_with(v.as_str()))
        {
            notes.push(format!(
                "CarrierWave writes uploads to `{path}` ({}), which no volume keeps: point the uploader's `store_dir` under the volume, or store them in object storage (`storage :fog`)",
                u.at
            ));
        }
    }
    let volume = volume_path.map(|mount_path| VolumeSpec {
        name: suggest_label(mount_path.rsplit('/').next().unwrap_or(""), 40)
            .unwrap_or_else(|| "data".to_string()),
        mount_path,
        size: "1Gi".into(),
        access_mode: AccessMode::ReadWriteOnce,
        storage_class: None,
    });
    let replicas = if let Some(v) = &volume {
        sources.insert("volume", volume_why.clone());
        notes.push(format!(
            "the app keeps data on a volume at `{}` ({volume_why}; ReadWriteOnce: one node at a time), so it runs 1 web replica and every pod that mounts it runs on the same node; to scale out, name a ReadWriteMany StorageClass in `volume` or move files to object storage",
            v.mount_path
        ));
        1
    } else {
        2
    };
    for (name, accessory) in &kamal.accessories {
        notes.push(format!(
            "Kamal accessory `{name}` ({}) is not deployed: give the app a managed service's URL as a secret, or run `kubectl rails accessory add postgres|redis` to run one in the cluster",
            accessory.image.as_deref().unwrap_or("no image")
        ));
    }
    for u in &d.kamal_unresolved {
        notes.push(format!(
            "{u} has no value here (ERB left it empty): check the spec"
        ));
    }
    let mut cron = BTreeMap::new();
    if let Some(schedule) = &d.schedule {
        for job in &schedule.jobs {
            cron.insert(
                job.name.clone(),
                CronSpec {
                    schedule: job.schedule.clone(),
                    command: job.command.clone(),
                    time_zone: None,
                    suspend: false,
                },
            );
        }
        if !schedule.jobs.is_empty() {
            notes.push(format!(
                "`config/schedule.rb` (whenever): {} scheduled as CronJobs, in the cluster's time zone (UTC unless `time_zone` is set)",
                schedule.jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if !schedule.skipped.is_empty() {
            notes.push(format!(
                "`config/schedule.rb` lines not imported (add them under `cron:` by hand): {}",
                schedule.skipped.join("; ")
            ));
        }
    }
    if d.recurring_yml {
        notes.push(
            "`config/recurring.yml` stays with Solid Queue, which runs those tasks itself: a CronJob as well would run each one twice".into(),
        );
    }

    // Puma's workers must fit the memory limit: a worker per core of the node would not.
    let web_resources = kamal_resources(&kamal.web, Resources::web_default());
    let limit = web_resources
        .memory_limit
        .as_deref()
        .map(crate::validate::quantity_bytes)
        .unwrap_or(0);
    let per_worker = 300 * 1024 * 1024;
    let fit = (limit / per_worker).max(1);
    match env
        .get("WEB_CONCURRENCY")
        .or(web_env.get("WEB_CONCURRENCY"))
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) if limit > 0 && n > fit => notes.push(format!(
            "warning: WEB_CONCURRENCY={n} Puma workers at about 300Mi each do not fit the web memory limit of {}: raise `web.resources.memory_limit` or lower WEB_CONCURRENCY",
            web_resources.memory_limit.as_deref().unwrap_or("")
        )),
        None if d.puma.workers_per_core && limit > 0 => {
            env.insert("WEB_CONCURRENCY".into(), fit.to_string());
            notes.push(format!(
                "config/puma.rb starts a Puma worker per core of the node, which the web memory limit of {} cannot hold on a large node: set WEB_CONCURRENCY={fit}",
                web_resources.memory_limit.as_deref().unwrap_or("")
            ));
        }
        _ => {}
    }

    // An image that starts as root and drops to its user itself (after a chown) runs as Docker
    // runs it: as root, with only the capabilities that need.
    let starts_as_root = match (
        d.dockerfile.as_ref().map(|f| f.image_user()),
        &d.privilege_drop,
    ) {
        (Some(ImageUser::Root), Some(at)) => {
            notes.push(format!(
                "the image starts as root and drops to its user at {at}: its pods run as uid 0 with only CHOWN, DAC_OVERRIDE, FOWNER, SETGID and SETUID, which the baseline Pod Security Standard allows and restricted does not"
            ));
            sources.insert("user", at.clone());
            Some(at.clone())
        }
        _ => None,
    };

    let tls = match given.tls {
        Some(tls) => tls,
        None => kamal.ssl || d.production.force_ssl,
    };
    if given.tls.is_none() && !tls {
        guessed.push("tls");
    }
    if given.tls.is_none() && !kamal.ssl && d.production.force_ssl {
        sources.insert(
            "tls",
            "config.force_ssl in config/environments/production.rb".into(),
        );
    }
    let name = kamal
        .service
        .clone()
        .or_else(|| (!d.dir_name.is_empty()).then(|| d.dir_name.clone()))
        .and_then(|n| suggest_label(&n, MAX_APP_NAME));

    // What a read-only root filesystem must leave writable.
    let mut writable = Vec::new();
    if !d.production.logs_to_stdout {
        writable.push("log".to_string());
        sources.insert(
            "writable",
            "no logger writes to STDOUT in config/environments/production.rb: Rails writes log/production.log".into(),
        );
    }
    let dumps_schema = migrate
        .command
        .iter()
        .any(|w| ["db:migrate", "db:prepare", "db:setup"].contains(&w.as_str()));
    if dumps_schema && !d.production.schema_dump_off {
        migrate.read_only_root = false;
        notes.push("config/environments/production.rb leaves `dump_schema_after_migration` on, so `db:migrate` writes db/schema.rb: the migration Job keeps a writable root filesystem (`migrate.read_only_root`)".into());
    }
    let workdir = d.dockerfile.as_ref().and_then(|f| f.workdir.clone());
    // The image is built from the Dockerfile read, as Kamal builds it.
    let b = &kamal.builder;
    let build = d
        .dockerfile_path
        .clone()
        .or_else(|| b.dockerfile.clone())
        .map(|dockerfile| crate::model::BuildSpec {
            dockerfile,
            context: b.context.clone().unwrap_or_else(|| ".".into()),
            target: b.target.clone(),
            args: b.args.clone(),
            secrets: b.secrets.clone(),
            platforms: kamal
                .arch
                .iter()
                .map(|a| {
                    if a.contains('/') {
                        a.clone()
                    } else {
                        format!("linux/{a}")
                    }
                })
                .collect(),
            cache: b.cache_image.clone(),
            builder: None,
            cluster: None,
        });

    // Fingerprinted assets that the app serves itself need both releases' files during a
    // rollout; with a CDN (`asset_host`) the CDN holds them and nothing is needed.
    let precompiles = d.dockerfile.as_ref().is_some_and(|f| f.precompiles_assets);
    let assets = if d.production.asset_host {
        if precompiles || kamal.asset_path.is_some() {
            notes.push(
                "config.asset_host is set: a CDN serves the assets, so no asset server is rendered"
                    .into(),
            );
        }
        None
    } else if precompiles || kamal.asset_path.is_some() {
        let mut assets = crate::model::AssetsSpec::default();
        if let Some(dir) = &kamal.asset_path {
            assets.dir = dir.clone();
            sources.insert("assets", "asset_path in config/deploy.yml".into());
        } else {
            let pipeline = d
                .gems
                .asset_pipeline
                .as_ref()
                .map(|g| format!(" ({g})"))
                .unwrap_or_default();
            sources.insert(
                "assets",
                format!("the Dockerfile runs assets:precompile{pipeline} and no asset_host is set"),
            );
        }
        if let Some(prefix) = &d.production.assets_prefix {
            assets.path = prefix.clone();
        }
        Some(assets)
    } else {
        None
    };

    Proposal {
        assets,
        name,
        image,
        workdir,
        writable,
        build,
        hosts: kamal.hosts.clone(),
        tls,
        port,
        web_command,
        web_env,
        drain_timeout: kamal.drain_timeout.and_then(|t| u32::try_from(t).ok()),
        cron,
        aliases: kamal.aliases.clone(),
        arch: kamal.arch.clone(),
        hooks_path: kamal.hooks_path.clone(),
        health_path,
        user: d.dockerfile.as_ref().map(|f| f.image_user()),
        starts_as_root,
        kamal_registry,
        workers,
        env,
        secrets,
        migrate,
        volume,
        replicas,
        response_timeout: kamal.response_timeout.and_then(|t| u32::try_from(t).ok()),
        web_resources,
        notes,
        sources,
        questions,
        guessed,
    }
}

/// A shell line that migrates or prepares the database (not a comment).
fn migrates(line: &str) -> bool {
    let line = line.trim_start();
    !line.starts_with('#')
        && ["db:prepare", "db:migrate", "db:setup"]
            .iter()
            .any(|task| line.contains(task))
}

/// Rails' generated entrypoint: it prepares the database only when its last two arguments are
/// `./bin/rails server` (`"${@: -2:1}" == "./bin/rails"` and `"${@: -1:1}" == "server"`).
fn prepares_only_for_rails_server(script: &str) -> bool {
    script.contains("${@: -2:1}")
        && script.contains("\"./bin/rails\"")
        && script.contains("${@: -1:1}")
        && script.contains("\"server\"")
}

/// Kamal's `options.memory` and `options.cpus` over the defaults: memory is the limit (and the
/// request when the default asks for more), cpus the request.
fn kamal_resources(role: &crate::kamal::Role, default: Resources) -> Resources {
    let mut r = default;
    if let Some(memory) = &role.memory {
        r.memory_limit = Some(memory.clone());
        if crate::validate::quantity_bytes(memory) < crate::validate::quantity_bytes(&r.memory) {
            r.memory = memory.clone();
        }
    }
    if let Some(cpus) = &role.cpus {
        r.cpu = cpus.clone();
    }
    r
}

fn default_worker_command(backend: Option<JobBackend>) -> Vec<String> {
    backend
        .unwrap_or(JobBackend::SolidQueue)
        .worker()
        .1
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Proposal {
    /// The spec, once the user's answers are in.
    pub fn into_spec(self, answers: Answers) -> AppSpec {
        let mut placement = answers.placement;
        if let Some(arch) = &self.arch {
            placement
                .node_selector
                .entry("kubernetes.io/arch".into())
                .or_insert_with(|| arch.clone());
        }
        // The pull secret is for the registry the image really comes from, whatever Kamal said.
        let registry = answers.private_registry.then(|| RegistrySpec {
            server: answers
                .image
                .registry_host()
                .unwrap_or("docker.io")
                .to_string(),
            pull_secret: format!("{}-registry", answers.name),
        });
        // Behind a Gateway, TLS is its listener's: the route carries none.
        let tls = self.tls && answers.gateway.is_none();
        let ingress = (!answers.hosts.is_empty()).then(|| IngressSpec {
            hosts: answers.hosts.clone(),
            gateway: answers.gateway.clone(),
            class: None,
            tls,
            issuer: tls.then(|| "letsencrypt".to_string()),
            issuer_kind: IssuerKind::ClusterIssuer,
            www_redirect: false,
            body_size: None,
            timeout: self.response_timeout,
        });
        AppSpec {
            name: answers.name,
            namespace: answers.namespace,
            image: answers.image,
            uid: answers.uid,
            gid: answers.gid,
            registry,
            web: WebSpec {
                command: self.web_command,
                port: self.port,
                replicas: answers.replicas,
                autoscale: None,
                health_path: self.health_path,
                resources: self.web_resources,
                placement: Placement::default(),
                env: self.web_env,
                drain_timeout: self.drain_timeout,
            },
            workers: self.workers,
            ingress,
            env: self.env,
            secrets: self.secrets,
            migrate: self.migrate,
            volume: self.volume,
            placement,
            history_limit: crate::model::DEFAULT_HISTORY_LIMIT,
            cron: self.cron,
            aliases: self.aliases,
            accessories: BTreeMap::new(),
            hooks_path: self.hooks_path,
            context: None,
            server: None,
            review: None,
            workdir: self.workdir,
            build: self.build,
            rollout: None,
            read_only_root: true,
            writable: self.writable,
            network_policy: true,
            assets: self.assets,
        }
    }
}

/// The overlay of a Kamal destination (`config/deploy.<destination>.yml`): its own namespace,
/// and what the destination file says of hosts, web servers (as replicas), env and image.
pub fn destination_overlay(
    app: &str,
    destination: &str,
    kamal_text: &str,
) -> Result<String, String> {
    let k = crate::kamal::parse_partial(kamal_text)?;
    let mut overlay = serde_json::Map::new();
    overlay.insert("namespace".into(), format!("{app}-{destination}").into());
    if let Some(image) = &k.image {
        overlay.insert(
            "image".into(),
            serde_json::json!({"repository": match &k.registry_server {
                Some(server) if !image.starts_with(&format!("{server}/")) => format!("{server}/{image}"),
                _ => image.clone(),
            }}),
        );
    }
    if let Some(n) = k.web_hosts {
        overlay.insert("web".into(), serde_json::json!({"replicas": n}));
    }
    if !k.hosts.is_empty() {
        let mut ingress = serde_json::json!({"hosts": k.hosts});
        if let Some(ssl) = k.ssl {
            ingress["tls"] = ssl.into();
        }
        overlay.insert("ingress".into(), ingress);
    }
    if !k.env_clear.is_empty() {
        overlay.insert(
            "env".into(),
            serde_json::to_value(&k.env_clear).unwrap_or_default(),
        );
    }
    if !k.env_secret.is_empty() {
        overlay.insert(
            "secrets".into(),
            serde_json::to_value(&k.env_secret).unwrap_or_default(),
        );
    }
    // The destination's own architecture and role commands: without them it would keep the
    // base's (production's arm64 node selector, its job command).
    if let Some(arch) = &k.arch {
        overlay.insert(
            "placement".into(),
            serde_json::json!({"node_selector": {"kubernetes.io/arch": arch}}),
        );
    }
    let mut workers = serde_json::Map::new();
    for (role, r) in &k.roles {
        let name = procfile::process_name(role).unwrap_or_else(|| role.clone());
        let mut w = serde_json::Map::new();
        if let Some(cmd) = &r.cmd {
            w.insert(
                "command".into(),
                serde_json::json!(crate::kamal::shell_words(cmd)),
            );
        }
        if !r.env_clear.is_empty() {
            w.insert(
                "env".into(),
                serde_json::to_value(&r.env_clear).unwrap_or_default(),
            );
        }
        if !w.is_empty() {
            workers.insert(name, serde_json::Value::Object(w));
        }
    }
    if !workers.is_empty() {
        overlay.insert("workers".into(), serde_json::Value::Object(workers));
    }
    let body =
        serde_saphyr::to_string(&serde_json::Value::Object(overlay)).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}\n\
         # Destination `{destination}`, from Kamal's config/deploy.{destination}.yml: laid over config/kubernetes.yml\n\
         # by `kubectl rails -d {destination} ...` (maps merge, lists replace). Pin it to its cluster with\n\
         # `context: <kubeconfig context>` (or `server: <API server URL>`), so no other cluster takes it.\n{body}",
        crate::schema::modeline(true)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entrypoints that migrate on boot, and the one Rails generates, which does it only for
    /// `./bin/rails server`.
    #[test]
    fn entrypoints_that_migrate_on_boot() {
        let rails = "#!/bin/bash -e\nif [ \"${@: -2:1}\" == \"./bin/rails\" ] && [ \"${@: -1:1}\" == \"server\" ]; then\n  ./bin/rails db:prepare\nfi\nexec \"${@}\"\n";
        let always = "#!/bin/sh\nbundle exec rails db:migrate\nexec \"$@\"\n";
        let commented = "#!/bin/sh\n# bin/rails db:migrate\nexec \"$@\"\n";
        // (script, migrates on some line, only for `./bin/rails server`)
        let cases = [
            (rails, true, true),
            (always, true, false),
            (commented, false, false),
        ];
        for (script, migrating, guarded) in cases {
            assert_eq!(script.lines().any(migrates), migrating, "{script}");
            assert_eq!(prepares_only_for_rails_server(script), guarded, "{script}");
        }
    }

    #[test]
    fn a_destination_overlay_takes_its_arch_and_role_commands() {
        let text = "servers:\n  web:\n    - 10.0.0.1\n  job:\n    hosts: [10.0.0.2]\n    cmd: bin/jobs --staging\n    env:\n      clear:\n        QUEUES: \"*\"\nbuilder:\n  arch: amd64\n";
        let overlay = destination_overlay("shop", "staging", text).unwrap();
        let body: serde_json::Value =
            serde_saphyr::from_str(&overlay).expect("the overlay is YAML");
        assert_eq!(
            body["placement"]["node_selector"]["kubernetes.io/arch"],
            "amd64"
        );
        assert_eq!(
            body["workers"]["job"]["command"],
            serde_json::json!(["bin/jobs", "--staging"])
        );
        assert_eq!(body["workers"]["job"]["env"]["QUEUES"], "*");
        assert_eq!(body["namespace"], "shop-staging");
        assert_eq!(
            overlay.lines().next(),
            Some(crate::schema::modeline(true).as_str()),
            "editors check an overlay with the overlay schema"
        );
    }
}
