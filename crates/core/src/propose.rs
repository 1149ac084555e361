//! Turning a [`Detection`] into a spec: everything the folder decides, and defaults for what
//! only the user can answer (name, image, host, namespace, replicas).

use std::collections::BTreeMap;

use crate::detect::{Database, Detection, ImageUser, JobBackend};
use crate::dotenv::is_known_plain;
use crate::model::{
    AccessMode, AppSpec, CronSpec, ImageSpec, IngressSpec, IssuerKind, MigrateSpec, Placement,
    RegistrySpec, Resources, VolumeSpec, WebSpec, WorkerSpec,
};
use crate::validate::{MAX_APP_NAME, suggest_label};

/// The port Thruster is moved to: a non-root container cannot bind :80.
pub const THRUSTER_PORT: u16 = 8080;

/// What the folder says, before the user's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub name: Option<String>,
    pub image: Option<String>,
    pub hosts: Vec<String>,
    pub tls: bool,
    pub port: u16,
    pub web_command: Option<Vec<String>>,
    pub health_path: String,
    /// Who the image runs as, when a Dockerfile says (`None`: no Dockerfile was read).
    pub user: Option<ImageUser>,
    /// The registry Kamal logs in to (`registry.server`, Docker Hub when only a user is given).
    pub kamal_registry: Option<String>,
    pub workers: BTreeMap<String, WorkerSpec>,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub migrate: MigrateSpec,
    pub volume: Option<VolumeSpec>,
    /// Web replicas to propose: 1 for an app whose data lives on a ReadWriteOnce volume.
    pub replicas: i32,
    /// Kamal's `proxy.response_timeout`, for the ingress.
    pub response_timeout: Option<u32>,
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
}

fn split_cmd(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_string).collect()
}

impl Proposal {
    /// Whether Kamal logs in to the registry `image` comes from.
    pub fn kamal_logs_in_to(&self, image: &ImageSpec) -> bool {
        let host = image.registry_host().unwrap_or("docker.io");
        self.kamal_registry.as_deref() == Some(host)
    }
}

/// Builds a proposal; `port` overrides what the Dockerfile and Kamal say.
pub fn propose(d: &Detection, port: Option<u16>) -> Proposal {
    let kamal = d.kamal.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let thruster = d.dockerfile.as_ref().is_some_and(|f| f.runs_thruster());
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("RAILS_ENV".into(), "production".into());

    let detected_port = kamal
        .app_port
        .or(d.dockerfile.as_ref().and_then(|f| f.expose))
        .unwrap_or(3000);
    let port = match port {
        Some(p) => p,
        None if thruster && detected_port < 1024 => {
            env.insert("HTTP_PORT".into(), THRUSTER_PORT.to_string());
            notes.push(format!(
                "the image runs Thruster on port {detected_port} as a non-root user, which cannot bind it on Kubernetes: set HTTP_PORT={THRUSTER_PORT} and containerPort {THRUSTER_PORT}"
            ));
            THRUSTER_PORT
        }
        None => detected_port,
    };

    let image = kamal
        .image
        .as_ref()
        .map(|image| match &kamal.registry_server {
            Some(server) if !image.starts_with(&format!("{server}/")) => {
                format!("{server}/{image}")
            }
            _ => image.clone(),
        });
    let kamal_registry = kamal.registry_username.as_ref().map(|_| {
        kamal
            .registry_server
            .clone()
            .unwrap_or_else(|| "docker.io".to_string())
    });

    let mut workers = BTreeMap::new();
    for (role, r) in &kamal.roles {
        let command = r
            .cmd
            .as_deref()
            .map(crate::kamal::shell_words)
            .unwrap_or_else(|| default_worker_command(d.job_backend));
        workers.insert(
            role.clone(),
            WorkerSpec {
                autoscale: None,
                command,
                replicas: 1,
                resources: Resources::worker_default(),
                placement: Placement::default(),
                env: r.env_clear.clone(),
            },
        );
    }
    let mut migrate = MigrateSpec::default();
    for (name, cmd) in &d.procfile {
        match name.as_str() {
            "web" => {}
            "release" => {
                migrate.command = split_cmd(cmd);
                notes.push(format!(
                    "migration command from the Procfile's `release`: {cmd}"
                ));
            }
            _ if !workers.contains_key(name) => {
                workers.insert(
                    name.clone(),
                    WorkerSpec {
                        autoscale: None,
                        command: split_cmd(cmd),
                        replicas: 1,
                        resources: Resources::worker_default(),
                        placement: Placement::default(),
                        env: BTreeMap::new(),
                    },
                );
            }
            _ => {}
        }
    }
    let solid_queue_in_puma = d.sets_env("SOLID_QUEUE_IN_PUMA");
    if solid_queue_in_puma && d.job_backend == Some(JobBackend::SolidQueue) && workers.is_empty() {
        notes.push(
            "SOLID_QUEUE_IN_PUMA is set: Solid Queue runs inside Puma, so there is no separate jobs Deployment (remove it from the env and add a `jobs` worker to run it apart)".into(),
        );
    } else if workers.is_empty()
        && let Some(backend) = d.job_backend
    {
        let name = match backend {
            JobBackend::SolidQueue => "jobs",
            JobBackend::Sidekiq => "sidekiq",
            JobBackend::GoodJob => "good-job",
        };
        workers.insert(
            name.into(),
            WorkerSpec {
                autoscale: None,
                command: default_worker_command(Some(backend)),
                replicas: 1,
                resources: Resources::worker_default(),
                placement: Placement::default(),
                env: BTreeMap::new(),
            },
        );
        notes.push(format!(
            "added a `{name}` worker for the job backend in the Gemfile"
        ));
    }

    let mut secrets: Vec<String> = Vec::new();
    let mut add_secret = |key: &str| {
        if !secrets.iter().any(|s| s == key) {
            secrets.push(key.to_string());
        }
    };
    for (key, value) in &kamal.env_clear {
        env.insert(key.clone(), value.clone());
    }
    for key in kamal
        .env_secret
        .iter()
        .chain(kamal.web.env_secret.iter())
        .chain(kamal.roles.values().flat_map(|r| r.env_secret.iter()))
    {
        add_secret(key);
    }
    if let Some((file, entries)) = &d.env_file {
        // A value from `.env` is a secret unless its name is a known plain setting: the spec is
        // committed, and `SMTP_PASS` or `STRIPE_SK` must never land in it.
        let (mut plain, mut secret) = (Vec::new(), Vec::new());
        for e in entries {
            if is_known_plain(&e.key) {
                env.entry(e.key.clone()).or_insert_with(|| e.value.clone());
                plain.push(e.key.as_str());
            } else {
                add_secret(&e.key);
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
            notes.push(format!(
                "from `{file}`, secrets (names only in the spec; `kubectl rails secrets import` stores the values): {}; move a plain setting with `kubectl rails env set KEY=VALUE`",
                secret.join(", ")
            ));
        }
    }
    // Keys the production database config reads: plain ones the app already sets stay plain.
    for key in d.database_env_keys.iter().filter(|k| !env.contains_key(*k)) {
        add_secret(key);
    }
    if matches!(d.database, Some(Database::Postgres | Database::Mysql))
        && d.database_env_keys.is_empty()
    {
        add_secret("DATABASE_URL");
    }
    // With encrypted credentials, Rails reads `secret_key_base` from them: a SECRET_KEY_BASE in
    // the env would override it and invalidate every session, cookie and signed id.
    if d.master_key || d.credentials || kamal.env_secret.iter().any(|k| k == "RAILS_MASTER_KEY") {
        add_secret("RAILS_MASTER_KEY");
    } else {
        add_secret("SECRET_KEY_BASE");
    }
    // `.kamal/secrets` also feeds the registry password, which belongs in the pull secret.
    let registry_keys = ["KAMAL_REGISTRY_PASSWORD"];
    for key in &d.kamal_secret_keys {
        if kamal.env_secret.contains(key) && !registry_keys.contains(&key.as_str()) {
            add_secret(key);
        }
    }
    for key in &secrets {
        env.remove(key);
    }

    let volume = kamal
        .volumes
        .iter()
        .find_map(|v| {
            v.split_once(':')
                .map(|(_, path)| path.split(':').next().unwrap_or(path).to_string())
        })
        .or_else(|| (d.database == Some(Database::Sqlite)).then(|| "/rails/storage".to_string()))
        .map(|mount_path| VolumeSpec {
            name: mount_path
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("data")
                .to_string(),
            mount_path,
            size: "1Gi".into(),
            access_mode: AccessMode::ReadWriteOnce,
            storage_class: None,
        });
    let replicas = if volume.is_some() {
        notes.push(format!(
            "the app keeps data on a volume at `{}` (ReadWriteOnce: one node at a time), so it runs 1 web replica and every pod that mounts it runs on the same node; to scale out, name a ReadWriteMany StorageClass in `volume` or move files to object storage",
            volume.as_ref().map_or("", |v| v.mount_path.as_str())
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

    let name = kamal
        .service
        .clone()
        .or_else(|| (!d.dir_name.is_empty()).then(|| d.dir_name.clone()))
        .and_then(|n| suggest_label(&n, MAX_APP_NAME));

    Proposal {
        name,
        image,
        hosts: kamal.hosts.clone(),
        tls: kamal.ssl,
        port,
        web_command: kamal.web.cmd.as_deref().map(crate::kamal::shell_words),
        web_env: kamal.web.env_clear.clone(),
        drain_timeout: kamal.drain_timeout.and_then(|t| u32::try_from(t).ok()),
        cron,
        aliases: kamal.aliases.clone(),
        arch: kamal.arch.clone(),
        hooks_path: kamal.hooks_path.clone(),
        health_path: kamal.health_path.clone().unwrap_or_else(|| "/up".into()),
        user: d.dockerfile.as_ref().map(|f| f.image_user()),
        kamal_registry,
        workers,
        env,
        secrets,
        migrate,
        volume,
        replicas,
        response_timeout: kamal.response_timeout.and_then(|t| u32::try_from(t).ok()),
        notes,
    }
}

fn default_worker_command(backend: Option<JobBackend>) -> Vec<String> {
    match backend {
        Some(JobBackend::Sidekiq) => split_cmd("bundle exec sidekiq"),
        Some(JobBackend::GoodJob) => split_cmd("bundle exec good_job start"),
        Some(JobBackend::SolidQueue) | None => split_cmd("bin/jobs"),
    }
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
        let ingress = (!answers.hosts.is_empty()).then(|| IngressSpec {
            hosts: answers.hosts.clone(),
            class: None,
            tls: self.tls,
            issuer: self.tls.then(|| "letsencrypt".to_string()),
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
                resources: Resources::web_default(),
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
    let body =
        serde_saphyr::to_string(&serde_json::Value::Object(overlay)).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Destination `{destination}`, from Kamal's config/deploy.{destination}.yml: laid over config/kubernetes.yml\n\
         # by `kubectl rails -d {destination} ...` (maps merge, lists replace). Pin it to its cluster with\n\
         # `context: <kubeconfig context>` (or `server: <API server URL>`), so no other cluster takes it.\n{body}"
    ))
}
