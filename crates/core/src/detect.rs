//! Detection: what a Rails app folder tells us. Each file has a pure parser over its text;
//! [`detect`] only reads the files and hands them over.

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
                "the Dockerfile tells the port and user of the image: Rails 7.1+ generates one, or pass `--port` when the image is built elsewhere",
            ),
            Self::EnvFile { .. } => {
                Some("fix the line or remove it; lines must look like `KEY=value`")
            }
            Self::Kamal { .. } => Some("check the YAML of `config/deploy.yml`"),
            Self::Read { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobBackend {
    SolidQueue,
    Sidekiq,
    GoodJob,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Postgres,
    Mysql,
    Sqlite,
}

/// Facts from the final stage of a Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub expose: Option<u16>,
    pub user: Option<String>,
    pub cmd: Option<Vec<String>>,
    /// Users the stage creates (`useradd`/`adduser` with a numeric uid): name -> (uid, gid).
    pub created_users: BTreeMap<String, (i64, Option<i64>)>,
    /// Groups the stage creates with a numeric gid (`groupadd --gid N name`): name -> gid.
    pub created_groups: BTreeMap<String, i64>,
}

/// The user a container runs as, as far as the Dockerfile tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageUser {
    /// `USER` is missing or root: the image runs as root.
    Root,
    /// A numeric uid (from `USER 1000` or the line that created the named user), and the gid
    /// when known.
    Numeric { uid: i64, gid: Option<i64> },
    /// A named user whose uid no line of the Dockerfile gives.
    Unknown,
}

impl Dockerfile {
    /// Rails 8 images run Thruster in front of Puma.
    pub fn runs_thruster(&self) -> bool {
        self.cmd
            .as_ref()
            .is_some_and(|c| c.iter().any(|a| a.ends_with("thrust")))
    }

    /// The numeric user, when `USER` names one (`1000` or `1000:1000`).
    pub fn uid(&self) -> Option<i64> {
        match self.image_user() {
            ImageUser::Numeric { uid, .. } => Some(uid),
            _ => None,
        }
    }

    /// Who the image runs as: a kubelet refuses `runAsNonRoot` for a named user unless the pod
    /// gives the number, and a wrong number breaks file permissions, so a name is resolved only
    /// through the line that created it, never guessed.
    pub fn image_user(&self) -> ImageUser {
        let Some(user) = self.user.as_deref() else {
            return ImageUser::Root;
        };
        let (name, group) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let gid_of = |group: Option<&str>, fallback: Option<i64>| match group {
            Some(g) => g
                .parse::<i64>()
                .ok()
                .or_else(|| self.created_groups.get(g).copied()),
            None => fallback,
        };
        if let Ok(uid) = name.parse::<i64>() {
            return match uid {
                0 => ImageUser::Root,
                uid => ImageUser::Numeric {
                    uid,
                    gid: gid_of(group, None),
                },
            };
        }
        if name == "root" {
            return ImageUser::Root;
        }
        match self.created_users.get(name) {
            Some(&(uid, gid)) => ImageUser::Numeric {
                uid,
                gid: gid_of(group, gid).or(gid),
            },
            None => ImageUser::Unknown,
        }
    }
}

/// `useradd`/`adduser`/`groupadd` commands in a `RUN` line, with their numeric ids.
fn record_accounts(run: &str, out: &mut Dockerfile) {
    for command in run.split(['&', ';', '|']) {
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some(tool) = words.first().copied() else {
            continue;
        };
        let value_of = |long: &str, short: &str| {
            words.iter().enumerate().find_map(|(i, w)| {
                if let Some(v) = w.strip_prefix(&format!("{long}=")) {
                    Some(v.to_string())
                } else if *w == long || *w == short {
                    words.get(i + 1).map(|v| v.to_string())
                } else {
                    None
                }
            })
        };
        // The account name: the last word that is neither an option nor an option's value.
        let takes_value = [
            "--uid",
            "-u",
            "--gid",
            "-g",
            "--shell",
            "-s",
            "--home",
            "--home-dir",
            "-d",
            "-G",
            "--groups",
            "-c",
            "--comment",
            "--gecos",
            "-k",
            "--skel",
            "-K",
            "--key",
            "-h",
            "-e",
            "--expiredate",
            "-f",
            "--inactive",
            "--ingroup",
            "-p",
            "--password",
        ];
        let mut name = None;
        let mut skip = false;
        for w in &words[1..] {
            if skip {
                skip = false;
                continue;
            }
            if w.starts_with('-') {
                skip = takes_value.contains(w);
                continue;
            }
            name = Some(w.to_string());
        }
        let Some(name) = name else { continue };
        match tool {
            "useradd" | "adduser" => {
                let Some(uid) = value_of("--uid", "-u").and_then(|v| v.parse().ok()) else {
                    continue;
                };
                let gid = value_of("--gid", "-g").and_then(|g| {
                    g.parse::<i64>()
                        .ok()
                        .or_else(|| out.created_groups.get(&g).copied())
                });
                out.created_users.insert(name, (uid, gid));
            }
            "groupadd" | "addgroup" => {
                if let Some(gid) = value_of("--gid", "-g").and_then(|v| v.parse().ok()) {
                    out.created_groups.insert(name, gid);
                }
            }
            _ => {}
        }
    }
}

pub use crate::kamal::Kamal;

/// Everything `init` learned from the folder.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    pub dir_name: String,
    pub rails_version: Option<String>,
    pub job_backend: Option<JobBackend>,
    pub database: Option<Database>,
    pub dockerfile: Option<Dockerfile>,
    /// The env file read (`.env`, `example.env` or `.env.example`) and its entries.
    pub env_file: Option<(String, Vec<EnvEntry>)>,
    pub procfile: Vec<(String, String)>,
    /// `ENV[...]` keys the production database config reads.
    pub database_env_keys: Vec<String>,
    pub master_key: bool,
    /// Encrypted credentials (`config/credentials.yml.enc` or
    /// `config/credentials/production.yml.enc`): Rails reads `secret_key_base` from them.
    pub credentials: bool,
    pub kamal: Option<Kamal>,
    /// Keys `.kamal/secrets` defines (values are never read here).
    pub kamal_secret_keys: Vec<String>,
    /// Jobs of `config/schedule.rb` (the whenever gem), and lines that could not be read.
    pub schedule: Option<crate::schedule::Schedule>,
    /// Solid Queue's `config/recurring.yml` is there (Solid Queue runs those tasks itself).
    pub recurring_yml: bool,
    /// Kamal destinations: `config/deploy.<destination>.yml`, each as its own text.
    pub kamal_destinations: Vec<(String, String)>,
}

impl Detection {
    /// Whether the app sets `key` to a non-empty value, in Kamal's `env.clear` or the env file.
    pub fn sets_env(&self, key: &str) -> bool {
        let kamal = self
            .kamal
            .as_ref()
            .and_then(|k| k.env_clear.get(key))
            .is_some_and(|v| !v.is_empty());
        let env_file = self.env_file.as_ref().is_some_and(|(_, entries)| {
            entries.iter().any(|e| e.key == key && !e.value.is_empty())
        });
        kamal || env_file
    }
}

/// Reads the app folder. `need_dockerfile` is false when the caller knows the port already.
pub fn detect(dir: &Path, need_dockerfile: bool) -> Result<Detection, DetectError> {
    let read_bytes = |name: &str| -> Result<Option<Vec<u8>>, DetectError> {
        let file = dir.join(name);
        match fs_err::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DetectError::Read { file, source }),
        }
    };
    let read = |name: &str| -> Result<Option<String>, DetectError> {
        Ok(read_bytes(name)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    };
    let gemfile = read("Gemfile")?.unwrap_or_default();
    let lock = read("Gemfile.lock")?.unwrap_or_default();
    let gems = gem_names(&gemfile);
    if !gems.iter().any(|g| g == "rails" || g == "railties")
        && lock_version(&lock, "rails").is_none()
    {
        return Err(DetectError::NotRails {
            dir: dir.to_path_buf(),
        });
    }
    let has = |gem: &str| gems.iter().any(|g| g == gem) || lock_version(&lock, gem).is_some();
    let mut d = Detection {
        dir_name: dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
        rails_version: lock_version(&lock, "rails"),
        job_backend: [
            ("sidekiq", JobBackend::Sidekiq),
            ("solid_queue", JobBackend::SolidQueue),
            ("good_job", JobBackend::GoodJob),
        ]
        .into_iter()
        .find(|(gem, _)| has(gem))
        .map(|(_, b)| b),
        database: [
            ("pg", Database::Postgres),
            ("mysql2", Database::Mysql),
            ("trilogy", Database::Mysql),
            ("sqlite3", Database::Sqlite),
        ]
        .into_iter()
        .find(|(gem, _)| has(gem))
        .map(|(_, db)| db),
        master_key: dir.join("config/master.key").is_file()
            || dir.join("config/credentials/production.key").is_file(),
        credentials: dir.join("config/credentials.yml.enc").is_file()
            || dir.join("config/credentials/production.yml.enc").is_file(),
        ..Detection::default()
    };
    d.dockerfile = read("Dockerfile")?.map(|t| parse_dockerfile(&t));
    if d.dockerfile.is_none() && need_dockerfile {
        return Err(DetectError::MissingDockerfile {
            dir: dir.to_path_buf(),
        });
    }
    for name in [".env", "example.env", ".env.example"] {
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
    d.procfile = read("Procfile")?
        .map(|t| parse_procfile(&t))
        .unwrap_or_default();
    d.database_env_keys = read("config/database.yml")?
        .map(|t| production_env_keys(&t))
        .unwrap_or_default();
    if let Some(text) = read("config/deploy.yml")? {
        let file = dir.join("config/deploy.yml");
        d.kamal = Some(parse_kamal(&text).map_err(|message| DetectError::Kamal { file, message })?);
    }
    if let Some(text) = read(".kamal/secrets")? {
        d.kamal_secret_keys = kamal_secret_keys(&text);
    }
    d.schedule = read("config/schedule.rb")?.map(|t| crate::schedule::parse(&t));
    d.recurring_yml = dir.join("config/recurring.yml").is_file();
    let mut destinations: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(dir.join("config"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(dest) = file
            .strip_prefix("deploy.")
            .and_then(|r| r.strip_suffix(".yml"))
            .filter(|d| !d.is_empty() && !d.contains('.'))
            && let Some(text) = read(&format!("config/{file}"))?
        {
            destinations.push((dest.to_string(), text));
        }
    }
    destinations.sort();
    d.kamal_destinations = destinations;
    Ok(d)
}

/// Gem names a Gemfile requires.
pub fn gem_names(gemfile: &str) -> Vec<String> {
    gemfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("gem "))
        .filter_map(|rest| {
            let rest = rest.trim_start();
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            rest[1..].split(quote).next().map(str::to_string)
        })
        .collect()
}

/// The locked version of a gem: `    rails (8.0.2)` under `specs:`.
pub fn lock_version(lock: &str, gem: &str) -> Option<String> {
    let prefix = format!("    {gem} (");
    lock.lines()
        .find(|l| l.starts_with(&prefix) && !l.starts_with("     "))
        .and_then(|l| l[prefix.len()..].split(')').next())
        .map(str::to_string)
}

/// The final stage's EXPOSE, USER and CMD.
pub fn parse_dockerfile(text: &str) -> Dockerfile {
    let mut out = Dockerfile::default();
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "FROM" => out = Dockerfile::default(),
            "EXPOSE" => {
                out.expose = rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.split('/').next()?.parse().ok())
            }
            "USER" => out.user = Some(rest.to_string()),
            "RUN" => record_accounts(rest, &mut out),
            "CMD" => {
                out.cmd = Some(match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(exec_form) => exec_form,
                    Err(_) => rest.split_whitespace().map(str::to_string).collect(),
                })
            }
            _ => {}
        }
    }
    out
}

/// `name: command` lines of a Procfile.
pub fn parse_procfile(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(name, cmd)| (name.trim().to_string(), cmd.trim().to_string()))
        .filter(|(name, cmd)| !name.is_empty() && !cmd.is_empty() && !name.contains(' '))
        .collect()
}

/// `ENV["X"]` and `ENV.fetch("X")` keys in the `production:` section of database.yml.
pub fn production_env_keys(text: &str) -> Vec<String> {
    let mut in_production = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_production = line.starts_with("production:");
            continue;
        }
        if !in_production {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("ENV") {
            rest = &rest[i + 3..];
            let after = rest
                .trim_start_matches(".fetch")
                .trim_start_matches(['[', '(']);
            if let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'')
                && let Some(key) = after[1..].split(quote).next()
                && crate::validate::is_env_key(key)
                && !keys.iter().any(|k| k == key)
            {
                keys.push(key.to_string());
            }
        }
    }
    keys
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

/// Reads a Kamal `config/deploy.yml` (see [`crate::kamal`]).
pub fn parse_kamal(text: &str) -> Result<Kamal, String> {
    crate::kamal::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_final_stage_wins() {
        let d = parse_dockerfile(
            "FROM ruby AS build\nEXPOSE 9999\nUSER root\nFROM base\nUSER 1000:1000\nEXPOSE 80\nCMD [\"./bin/thrust\", \"./bin/rails\", \"server\"]\n",
        );
        assert_eq!(d.expose, Some(80));
        assert_eq!(d.uid(), Some(1000));
        assert!(d.runs_thruster());
        let d = parse_dockerfile("FROM ruby\nEXPOSE 3000/tcp\nCMD ./bin/rails server\n");
        assert_eq!(d.expose, Some(3000));
        assert!(!d.runs_thruster());
        assert_eq!(d.cmd.unwrap(), ["./bin/rails", "server"]);
    }

    #[test]
    fn the_image_user_comes_from_user_or_the_line_that_created_it() {
        use ImageUser::*;
        let cases = [
            (
                "USER 1000:1000",
                Numeric {
                    uid: 1000,
                    gid: Some(1000),
                },
            ),
            (
                "USER 1001",
                Numeric {
                    uid: 1001,
                    gid: None,
                },
            ),
            ("", Root),
            ("USER root", Root),
            ("USER 0", Root),
            (
                "RUN groupadd --system --gid 1000 rails && useradd rails --uid 1000 --gid 1000 --create-home\nUSER rails:rails",
                Numeric {
                    uid: 1000,
                    gid: Some(1000),
                },
            ),
            (
                "RUN useradd --create-home -u 1001 -g 1001 app\nUSER app",
                Numeric {
                    uid: 1001,
                    gid: Some(1001),
                },
            ),
            (
                "RUN addgroup -g 2000 -S web && adduser -S -D -u 2001 -G web web\nUSER web:web",
                Numeric {
                    uid: 2001,
                    gid: Some(2000),
                },
            ),
            (
                "RUN useradd rails --create-home --shell /bin/bash\nUSER rails:rails",
                Unknown,
            ),
            (
                "RUN useradd --uid=1500 deploy\nUSER deploy",
                Numeric {
                    uid: 1500,
                    gid: None,
                },
            ),
        ];
        for (text, expected) in cases {
            let d = parse_dockerfile(&format!("FROM ruby\n{text}\n"));
            assert_eq!(d.image_user(), expected, "{text}");
        }
        // The final stage only: a build stage's user does not count.
        let d = parse_dockerfile("FROM ruby AS build\nRUN useradd -u 5 x\nFROM ruby\nUSER x\n");
        assert_eq!(d.image_user(), Unknown);
    }

    #[test]
    fn gemfile_and_lock() {
        let gems = gem_names(
            "source 'https://rubygems.org'\ngem \"rails\", \"~> 8.0\"\n  gem 'pg'\n# gem 'x'\n",
        );
        assert_eq!(gems, ["rails", "pg"]);
        let lock =
            "GEM\n  specs:\n    rails (8.0.2)\n      actioncable (= 8.0.2)\n    sidekiq (7.3.0)\n";
        assert_eq!(lock_version(lock, "rails").as_deref(), Some("8.0.2"));
        assert_eq!(lock_version(lock, "actioncable"), None);
    }

    #[test]
    fn database_yml_production_keys() {
        let yml = "default: &default\n  adapter: postgresql\n  password: <%= ENV[\"DEV_PW\"] %>\nproduction:\n  <<: *default\n  url: <%= ENV['DATABASE_URL'] %>\n  password: <%= ENV.fetch(\"SHOP_DATABASE_PASSWORD\") { nil } %>\n";
        assert_eq!(
            production_env_keys(yml),
            ["DATABASE_URL", "SHOP_DATABASE_PASSWORD"]
        );
    }

    #[test]
    fn kamal_secrets_keys_only() {
        let keys = kamal_secret_keys(
            "# comment\nKAMAL_REGISTRY_PASSWORD=$KAMAL_REGISTRY_PASSWORD\nRAILS_MASTER_KEY=$(cat config/master.key)\n",
        );
        assert_eq!(keys, ["KAMAL_REGISTRY_PASSWORD", "RAILS_MASTER_KEY"]);
    }
}
