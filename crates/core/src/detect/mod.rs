//! Detection: what a Rails app folder tells us. One module per source it reads, each a pure
//! parser from text to facts with its own table of cases; [`detect`] only reads the files and
//! hands them over. Choosing what the spec says from these facts is [`crate::propose`]'s job.

pub mod credentials;
pub mod database;
pub mod dockerfile;
pub mod env_reads;
pub mod erb;
pub mod gemfile;
pub mod procfile;
pub mod production;
pub mod puma;
pub mod routes;
pub mod ruby_boot;
pub mod storage;
pub mod uploads;

pub use database::{Database, ProductionDatabase};
pub use dockerfile::{Dockerfile, ImageUser};
pub use gemfile::{Gems, JobBackend};
pub use procfile::ProcfileLine;
pub use production::Production;
pub use puma::Puma;
pub use routes::Health;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dotenv::{self, EnvEntry, EnvLineError};

/// Why a folder could not be read as a Rails app.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("`{}` is not a Rails app: it has no Gemfile that requires `rails`", dir.display())]
    NotRails { dir: PathBuf },
    #[error("no `Dockerfile` in `{}`", dir.display())]
    MissingDockerfile { dir: PathBuf },
    #[error("cannot parse `{}` {source}", file.display())]
    EnvFile {
        file: PathBuf,
        #[source]
        source: EnvLineError,
    },
    #[error("cannot parse Kamal config `{}`: {message}", file.display())]
    Kamal { file: PathBuf, message: String },
    #[error("cannot read `{}`: {source}", file.display())]
    Erb {
        file: PathBuf,
        #[source]
        source: erb::ErbError,
    },
    #[error("cannot parse `{}`: {message}", file.display())]
    Dockerfile { file: PathBuf, message: String },
    #[error("the app has several Dockerfiles and none is named `Dockerfile`: {}", candidates.join(", "))]
    SeveralDockerfiles { candidates: Vec<String> },
    #[error("failed to read `{}`", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DetectError {
    /// What to do next.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::NotRails { .. } => {
                Some("run `kubectl rails init` in the folder that holds the app's Gemfile")
            }
            Self::MissingDockerfile { .. } => Some(
                "the Dockerfile tells the port and user of the image: Rails 7.1+ generates one; `--dockerfile PATH` names one elsewhere, or pass `--port` when the image is built elsewhere",
            ),
            Self::EnvFile { .. } => {
                Some("fix the line or remove it; lines must look like `KEY=value`")
            }
            Self::Kamal { .. } => Some("check the YAML of `config/deploy.yml`"),
            Self::Erb { .. } => Some(
                "Kamal and Rails evaluate this file as ERB; kubectl-rails understands `<%= ENV[...] %>`, `ENV.fetch(KEY, default)` and `require`/`Dotenv` statements: write other values out",
            ),
            Self::Dockerfile { .. } => {
                Some("fix the Dockerfile, or name another with `--dockerfile`")
            }
            Self::SeveralDockerfiles { .. } => {
                Some("pass `--dockerfile PATH` with the one production images are built from")
            }
            Self::Read { .. } => None,
        }
    }
}

pub use crate::kamal::Kamal;

/// Everything `init` learned from the folder.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    pub dir_name: String,
    pub gems: Gems,
    /// `Gemfile.lock` is there.
    pub lockfile: bool,
    pub rails_version: Option<String>,
    pub job_backend: Option<JobBackend>,
    /// The primary database: `config/database.yml`'s production entry, else the Gemfile's
    /// driver; and where that came from.
    pub database: Option<Database>,
    pub database_from: String,
    pub database_yml: ProductionDatabase,
    pub dockerfile: Option<Dockerfile>,
    /// The Dockerfile read, relative to the app folder.
    pub dockerfile_path: Option<String>,
    /// The env file read (`.env`, `example.env`, `.env.example`, `.env.sample`) and its entries.
    pub env_file: Option<(String, Vec<EnvEntry>)>,
    pub procfile: Vec<ProcfileLine>,
    /// The Procfile read (`Procfile`, else `Procfile.production`).
    pub procfile_name: String,
    /// Keys that unlock encrypted credentials: `config/master.key`,
    /// `config/credentials/production.key`.
    pub credential_keys: Vec<String>,
    /// Encrypted credentials files (`config/credentials.yml.enc`,
    /// `config/credentials/<env>.yml.enc`): Rails reads `secret_key_base` from them.
    pub credentials: Vec<String>,
    pub kamal: Option<Kamal>,
    /// ERB lookups in Kamal's files that had no value here (left empty).
    pub kamal_unresolved: Vec<String>,
    /// Keys `.kamal/secrets` defines (values are never read here).
    pub kamal_secret_keys: Vec<String>,
    /// Jobs of `config/schedule.rb` (the whenever gem), and lines that could not be read.
    pub schedule: Option<crate::schedule::Schedule>,
    /// Solid Queue's `config/recurring.yml` is there (Solid Queue runs those tasks itself).
    pub recurring_yml: bool,
    /// Kamal destinations: `config/deploy.<destination>.yml`, each as its own text (ERB
    /// evaluated).
    pub kamal_destinations: Vec<(String, String)>,
    pub health: Health,
    pub production: Production,
    /// Active Storage's production service stores files on disk, under this folder
    /// (`<Rails.root>/storage`).
    pub storage_disk_root: Option<String>,
    pub puma: Puma,
    /// `config/cable.yml` uses the redis adapter in production.
    pub cable_redis: bool,
    /// The cache store is Redis (`:redis_cache_store`).
    pub cache_redis: bool,
    /// The script the image starts (its ENTRYPOINT or CMD, when a file of the app): path, text.
    pub start_scripts: Vec<(String, String)>,
    /// Schema files of databases loaded rather than migrated (`db/queue_schema.rb`).
    pub schema_files: Vec<String>,
    /// What the code that runs at boot reads from the environment.
    pub env_reads: Vec<env_reads::EnvRead>,
    /// Start scripts, one per process (`scripts/start.worker.sh`): (process, path).
    pub script_processes: Vec<(String, String)>,
    /// `command:` lines of a production (or example) compose file: (service, command, file).
    pub compose_processes: Vec<(String, String, String)>,
    /// Sidekiq's config file (`config/sidekiq.yml`), which names its queues.
    pub sidekiq_config: Option<String>,
    /// Mongoid's production client reads these keys: (required, optional).
    pub mongoid_env: Option<(Vec<String>, Vec<String>)>,
    /// Where the image's start drops from root to its user (`bin/docker-entrypoint:4`), or the
    /// app's own boot code does (`config/dotenv.rb:72`).
    pub privilege_drop: Option<String>,
    /// Folders CarrierWave uploaders write files to on the local disk.
    pub upload_dirs: Vec<uploads::UploadDir>,
}

impl Detection {
    /// Whether the app sets `key` to a non-empty value, in Kamal's `env.clear`, the env file or
    /// the image's ENV.
    pub fn sets_env(&self, key: &str) -> bool {
        let kamal = self
            .kamal
            .as_ref()
            .and_then(|k| k.env_clear.get(key))
            .is_some_and(|v| !v.is_empty());
        let env_file = self.env_file.as_ref().is_some_and(|(_, entries)| {
            entries.iter().any(|e| e.key == key && !e.value.is_empty())
        });
        let image = self
            .dockerfile
            .as_ref()
            .is_some_and(|d| d.env.get(key).is_some_and(|v| !v.is_empty()));
        kamal || env_file || image
    }

    /// The value the app sets for `key` (Kamal's `env.clear`, the env file, the image's ENV).
    pub fn env_value(&self, key: &str) -> Option<String> {
        let kamal = self
            .kamal
            .as_ref()
            .and_then(|k| k.env_clear.get(key).cloned());
        let env_file = self.env_file.as_ref().and_then(|(_, entries)| {
            entries
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        });
        let image = self
            .dockerfile
            .as_ref()
            .and_then(|d| d.env.get(key).cloned());
        kamal.or(env_file).or(image).filter(|v| !v.is_empty())
    }

    /// Whether the env file is an example to copy rather than the app's own values.
    pub fn env_file_is_example(&self) -> bool {
        self.env_file
            .as_ref()
            .is_some_and(|(name, _)| name != ".env")
    }
}

/// Where `detect` looks, beyond the folder's own conventions.
#[derive(Debug, Clone, Default)]
pub struct DetectOptions {
    /// Whether a missing Dockerfile is an error (false when the caller knows the port).
    pub need_dockerfile: bool,
    /// The Dockerfile to read (`--dockerfile`), relative to the app folder.
    pub dockerfile: Option<String>,
    /// The Dockerfile stage the image is built from (`--target`).
    pub target: Option<String>,
}

/// The names in `folder`, sorted; none when it does not exist or cannot be read.
fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Dockerfiles in the folder other than `Dockerfile`: `Dockerfile.production`,
/// `docker/<name>/Dockerfile`, `docker/*.dockerfile`; development ones set aside.
fn dockerfile_candidates(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut look = |rel: &str| {
        let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
        let is_dockerfile = name == "dockerfile"
            || name.starts_with("dockerfile.")
            || name.ends_with(".dockerfile");
        let dev = ["dev", "test", "ci", "local"].iter().any(|w| {
            rel.to_ascii_lowercase()
                .split(['/', '.', '-', '_'])
                .any(|part| part == *w || part == "development")
        });
        if is_dockerfile && !dev && dir.join(rel).is_file() {
            found.push(rel.to_string());
        }
    };
    for name in names_in(dir) {
        if name != "Dockerfile" {
            look(&name);
        }
    }
    for folder in ["docker", ".docker", "deploy", "ops/docker"] {
        for name in names_in(&dir.join(folder)) {
            let rel = format!("{folder}/{name}");
            if dir.join(&rel).is_dir() {
                for inner in names_in(&dir.join(&rel)) {
                    look(&format!("{rel}/{inner}"));
                }
            } else {
                look(&rel);
            }
        }
    }
    // A `base` or `build` image is what the others build FROM, not what runs: last.
    found.sort_by_key(|f| {
        let name = f.rsplit('/').next().unwrap_or(f);
        (name.contains("base") || name.contains("build"), f.clone())
    });
    found
}

/// Reads the app folder.
pub fn detect(dir: &Path, options: &DetectOptions) -> Result<Detection, DetectError> {
    let read_bytes = |name: &str| -> Result<Option<Vec<u8>>, DetectError> {
        let file = dir.join(name);
        match fs_err::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(DetectError::Read { file, source }),
        }
    };
    let read = |name: &str| -> Result<Option<String>, DetectError> {
        Ok(read_bytes(name)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    };
    let gemfile = read("Gemfile")?.unwrap_or_default();
    let lock = read("Gemfile.lock")?.unwrap_or_default();
    let gems = gemfile::read(&gemfile, &lock);
    if !gems.rails {
        return Err(DetectError::NotRails {
            dir: dir.to_path_buf(),
        });
    }
    let existing = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| dir.join(n).is_file())
            .map(|n| n.to_string())
            .collect()
    };
    // The files that can hold credentials or their keys, named relative to the app folder.
    let mut credential_files = existing(&["config/credentials.yml.enc", "config/master.key"]);
    credential_files.extend(
        names_in(&dir.join("config/credentials"))
            .into_iter()
            .map(|n| format!("config/credentials/{n}")),
    );
    let (credentials, credential_keys) = credentials::classify(&credential_files);
    let mut d = Detection {
        dir_name: dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
        rails_version: gems.rails_version.clone(),
        lockfile: !lock.is_empty(),
        job_backend: gems.job_backend,
        credentials,
        credential_keys,
        gems,
        ..Detection::default()
    };

    // The Dockerfile: the one named, else `Dockerfile`, else the only production candidate.
    let kamal_text = read("config/deploy.yml")?;
    let dockerfile_path = match &options.dockerfile {
        Some(path) => Some(path.clone()),
        None if dir.join("Dockerfile").is_file() => Some("Dockerfile".to_string()),
        None => {
            let candidates = dockerfile_candidates(dir);
            match candidates.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                _ => return Err(DetectError::SeveralDockerfiles { candidates }),
            }
        }
    };
    if let Some(path) = &dockerfile_path {
        let text = read(path)?.ok_or_else(|| DetectError::Read {
            file: dir.join(path),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        })?;
        // `INCLUDE` paths are the build context's (the app folder), else the Dockerfile's folder.
        let folder = Path::new(path).parent().unwrap_or(Path::new(""));
        let include = |p: &str| {
            fs_err::read_to_string(dir.join(p))
                .or_else(|_| fs_err::read_to_string(dir.join(folder).join(p)))
                .ok()
        };
        let text = dockerfile::inline_includes(&text, &include);
        let parsed = dockerfile::parse(&text, options.target.as_deref()).map_err(|message| {
            DetectError::Dockerfile {
                file: dir.join(path),
                message,
            }
        })?;
        d.dockerfile = Some(parsed);
        d.dockerfile_path = Some(path.clone());
    }
    if d.dockerfile.is_none() && options.need_dockerfile {
        return Err(DetectError::MissingDockerfile {
            dir: dir.to_path_buf(),
        });
    }
    // Scripts the image starts, when they are files of the app (`bin/boot`,
    // `bin/docker-entrypoint`).
    if let Some(f) = &d.dockerfile {
        let workdir = f.workdir.clone().unwrap_or_default();
        for word in f.start_command() {
            let rel = word
                .strip_prefix(&format!("{}/", workdir.trim_end_matches('/')))
                .unwrap_or(&word)
                .trim_start_matches("./")
                .to_string();
            if rel.contains('/')
                && !rel.starts_with('/')
                && let Some(text) = read(&rel)?
            {
                d.start_scripts.push((rel, text));
            }
        }
    }

    // s6-overlay's `/init` starts the services the image copies in: their `run` scripts are
    // what the image runs (`s6-rc.d/<service>/run`).
    if d.dockerfile
        .as_ref()
        .is_some_and(|f| f.start_command().first().is_some_and(|w| w == "/init"))
    {
        let mut stack = vec![(dir.to_path_buf(), 0)];
        while let Some((folder, depth)) = stack.pop() {
            for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir()
                    && depth < 5
                    && !name.starts_with('.')
                    && name != "node_modules"
                    && name != "vendor"
                {
                    stack.push((path, depth + 1));
                } else if name == "run" && path.to_string_lossy().contains("s6-") {
                    let rel = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .into_owned();
                    if let Some(text) = read(&rel)? {
                        d.start_scripts.push((rel, text));
                    }
                }
            }
        }
        d.start_scripts.sort();
    }
    if let Some(f) = &d.dockerfile {
        d.privilege_drop = dockerfile::privilege_drop(&f.start_command(), &d.start_scripts);
    }
    // Ruby that runs at boot: what Puma and Rails load before the app serves.
    if d.privilege_drop.is_none() {
        let mut boot = Vec::new();
        for folder in ["config", "config/initializers"] {
            for name in names_in(&dir.join(folder)) {
                let rel = format!("{folder}/{name}");
                if (rel.ends_with(".rb") || rel.ends_with(".ru"))
                    && let Some(text) = read(&rel)?
                {
                    boot.push((rel, text));
                }
            }
        }
        if let Some(text) = read("config.ru")? {
            boot.push(("config.ru".into(), text));
        }
        d.privilege_drop = ruby_boot::privilege_drop(&boot);
    }
    let mut uploaders = Vec::new();
    for name in names_in(&dir.join("app/uploaders")) {
        let rel = format!("app/uploaders/{name}");
        if rel.ends_with(".rb")
            && let Some(text) = read(&rel)?
        {
            uploaders.push((rel, text));
        }
    }
    d.upload_dirs = uploads::carrierwave_dirs(
        &uploaders,
        read("config/initializers/carrierwave.rb")?.as_deref(),
    );

    for name in [".env", "example.env", ".env.example", ".env.sample"] {
        let file = dir.join(name);
        if let Some(bytes) = read_bytes(name)? {
            // Values are copied into the spec: a lossy decode would corrupt them silently.
            let text = String::from_utf8(bytes).map_err(|e| {
                let valid = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..valid]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                DetectError::EnvFile {
                    file: file.clone(),
                    source: EnvLineError {
                        line,
                        reason: "the line is not valid UTF-8".into(),
                    },
                }
            })?;
            let entries = dotenv::parse(&text).map_err(|source| DetectError::EnvFile {
                file: dir.join(name),
                source,
            })?;
            d.env_file = Some((name.to_string(), entries));
            break;
        }
    }
    for name in ["Procfile", "Procfile.production", "Procfile.prod"] {
        if let Some(text) = read(name)? {
            d.procfile = procfile::parse(&text);
            d.procfile_name = name.to_string();
            break;
        }
    }

    // Processes declared outside a Procfile: start scripts, and compose files made for
    // production.
    for folder in ["scripts", "script", "bin"] {
        for name in names_in(&dir.join(folder)) {
            let process = name
                .strip_prefix("start.")
                .or_else(|| name.strip_prefix("start-"))
                .or_else(|| name.strip_prefix("start_"))
                .map(|rest| rest.trim_end_matches(".sh"))
                .filter(|p| !p.is_empty() && !p.contains('.'));
            if let Some(process) = process {
                d.script_processes
                    .push((process.to_string(), format!("{folder}/{name}")));
            }
        }
    }
    let compose_files: Vec<String> = names_in(dir)
        .into_iter()
        .filter(|n| {
            n.contains("compose")
                && (n.ends_with(".yml") || n.ends_with(".yaml"))
                && (n.contains("prod") || n.contains("example"))
        })
        .collect();
    if let Some(file) = compose_files.first()
        && let Some(text) = read(file)?
        && let Ok(root) = serde_saphyr::from_str::<serde_json::Value>(&text)
        && let Some(services) = root.get("services").and_then(serde_json::Value::as_object)
    {
        for (name, service) in services {
            // The app's own services: built from the folder, or from the same image as `web`.
            let own = service.get("build").is_some()
                || service
                    .get("image")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|i| {
                        ![
                            "postgres",
                            "mysql",
                            "mariadb",
                            "redis",
                            "valkey",
                            "memcached",
                            "elasticsearch",
                            "opensearch",
                            "mongo",
                            "nginx",
                            "caddy",
                            "traefik",
                        ]
                        .iter()
                        .any(|known| i.split('/').next_back().unwrap_or(i).starts_with(known))
                    });
            let command = match service.get("command") {
                Some(serde_json::Value::String(c)) => Some(c.clone()),
                Some(serde_json::Value::Array(words)) => Some(
                    words
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            };
            if own && let Some(command) = command {
                d.compose_processes
                    .push((name.clone(), command, file.clone()));
            }
        }
    }
    if d.gems.mongoid
        && let Some(text) = read("config/mongoid.yml")?
    {
        d.mongoid_env = Some(database::mongoid_env(&text));
    }
    d.sidekiq_config = ["config/sidekiq.yml", "config/sidekiq/production.yml"]
        .iter()
        .find(|f| dir.join(f).is_file())
        .map(|f| f.to_string());

    // The database: database.yml's production entry decides; the Gemfile only when it is silent.
    if let Some(text) = read("config/database.yml")? {
        d.database_yml = database::parse(&text);
    }
    d.schema_files = ["cache", "queue", "cable"]
        .iter()
        .map(|n| format!("db/{n}_schema.rb"))
        .filter(|f| dir.join(f).is_file())
        .collect();
    (d.database, d.database_from) = match d.database_yml.adapter {
        Some(db) => (Some(db), d.database_yml.adapter_from.clone()),
        None if d.gems.mongoid => (None, "Mongoid (config/mongoid.yml)".into()),
        None => match d.gems.drivers.first() {
            Some(driver) => (
                Database::from_driver(driver),
                format!("the `{driver}` gem in the Gemfile"),
            ),
            None => (None, String::new()),
        },
    };

    let production_rb = read("config/environments/production.rb")?.unwrap_or_default();
    let application_rb = read("config/application.rb")?.unwrap_or_default();
    let good_job_rb = read("config/initializers/good_job.rb")?.unwrap_or_default();
    let assets_rb = read("config/initializers/assets.rb")?.unwrap_or_default();
    d.production = production::parse(&[&production_rb, &application_rb, &good_job_rb, &assets_rb]);
    if let Some(service) = &d.production.active_storage_service
        && let Some(yml) = read("config/storage.yml")?
        && let Some(root) = storage::disk_root(&yml, service)
    {
        let workdir = d
            .dockerfile
            .as_ref()
            .and_then(|f| f.workdir.clone())
            .unwrap_or_else(|| "/rails".into());
        d.storage_disk_root = Some(root.replace(erb::RAILS_ROOT, workdir.trim_end_matches('/')));
    }
    d.cache_redis = production_rb.lines().any(|l| {
        !l.trim_start().starts_with('#') && l.contains("cache_store") && l.contains(":redis")
    });
    if let Some(cable) = read("config/cable.yml")?
        && let Ok(evaluated) = erb::evaluate(&cable, &BTreeMap::new())
        && let Ok(root) = serde_saphyr::from_str::<serde_json::Value>(&evaluated.text)
    {
        d.cable_redis = root
            .get("production")
            .and_then(|p| p.get("adapter"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|a| a.starts_with("redis"));
    }
    // What the code run at boot reads: application.rb, production.rb, the initializers.
    let mut boot_files = vec![
        "config/application.rb".to_string(),
        "config/environments/production.rb".to_string(),
    ];
    boot_files.extend(
        names_in(&dir.join("config/initializers"))
            .into_iter()
            .filter(|n| n.ends_with(".rb"))
            .map(|n| format!("config/initializers/{n}")),
    );
    for file in &boot_files {
        if let Some(text) = read(file)? {
            for r in env_reads::reads(file, &text) {
                match d.env_reads.iter_mut().find(|e| e.key == r.key) {
                    Some(e) if r.read == env_reads::Read::Required => *e = r,
                    Some(_) => {}
                    None => d.env_reads.push(r),
                }
            }
        }
    }
    d.puma = read("config/puma.rb")?
        .map(|t| puma::parse(&t))
        .unwrap_or_default();

    // Routes: config/routes.rb and the files it draws; middleware that answers a health path.
    let mut routes = Vec::new();
    if let Some(text) = read("config/routes.rb")? {
        routes.push(("config/routes.rb".to_string(), text));
    }
    for name in names_in(&dir.join("config/routes"))
        .into_iter()
        .filter(|n| n.ends_with(".rb"))
    {
        let rel = format!("config/routes/{name}");
        if let Some(text) = read(&rel)? {
            routes.push((rel, text));
        }
    }
    let mut middleware = Vec::new();
    for folder in ["lib", "app/middleware", "app/middlewares"] {
        for name in names_in(&dir.join(folder)) {
            let rel = format!("{folder}/{name}");
            if name.ends_with(".rb")
                && let Some(text) = read(&rel)?
            {
                middleware.push((rel, text));
            }
        }
    }
    middleware.sort();
    d.health = routes::health(&routes, &middleware);

    // Kamal: evaluated as ERB first, as Kamal does.
    let no_env = BTreeMap::new();
    if let Some(text) = kamal_text {
        let file = dir.join("config/deploy.yml");
        let evaluated = erb::evaluate(&text, &no_env).map_err(|source| DetectError::Erb {
            file: file.clone(),
            source,
        })?;
        d.kamal_unresolved = evaluated
            .unresolved
            .iter()
            .map(|u| format!("config/deploy.yml {u}"))
            .collect();
        d.kamal = Some(
            crate::kamal::parse(&evaluated.text)
                .map_err(|message| DetectError::Kamal { file, message })?,
        );
    }
    if let Some(text) = read(".kamal/secrets")? {
        d.kamal_secret_keys = kamal_secret_keys(&text);
    }
    d.schedule = read("config/schedule.rb")?.map(|t| crate::schedule::parse(&t));
    d.recurring_yml = dir.join("config/recurring.yml").is_file();
    let mut destinations: Vec<(String, String)> = Vec::new();
    for file in names_in(&dir.join("config")) {
        if let Some(dest) = file
            .strip_prefix("deploy.")
            .and_then(|r| r.strip_suffix(".yml"))
            .filter(|d| !d.is_empty() && !d.contains('.'))
            && let Some(text) = read(&format!("config/{file}"))?
        {
            let path = dir.join("config").join(&file);
            let evaluated = erb::evaluate(&text, &no_env)
                .map_err(|source| DetectError::Erb { file: path, source })?;
            destinations.push((dest.to_string(), evaluated.text));
        }
    }
    destinations.sort();
    d.kamal_destinations = destinations;
    Ok(d)
}

/// Key names that `.kamal/secrets` defines; values (often shell) are never evaluated here.
pub fn kamal_secret_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .filter(|k| crate::validate::is_env_key(k))
        .collect()
}

/// Reads a Kamal `config/deploy.yml` (see [`crate::kamal`]), ERB first.
pub fn parse_kamal(text: &str) -> Result<Kamal, String> {
    let evaluated = erb::evaluate(text, &BTreeMap::new()).map_err(|e| e.to_string())?;
    crate::kamal::parse(&evaluated.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamal_secrets_keys_only() {
        let keys = kamal_secret_keys(
            "# comment\nKAMAL_REGISTRY_PASSWORD=$KAMAL_REGISTRY_PASSWORD\nRAILS_MASTER_KEY=$(cat config/master.key)\n",
        );
        assert_eq!(keys, ["KAMAL_REGISTRY_PASSWORD", "RAILS_MASTER_KEY"]);
    }

    #[test]
    fn kamal_files_are_erb_first() {
        let k = parse_kamal(
            "<% require \"dotenv\"; Dotenv.load(\".env\") %>\n\nservice: <%= ENV.fetch(\"APP\", \"shop\") %>\nimage: acme/shop\n",
        )
        .unwrap();
        assert_eq!(k.service.as_deref(), Some("shop"));
    }
}
