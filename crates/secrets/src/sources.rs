//! Where secret values come from on this machine: an env file (`.env`), the Rails master key,
//! `.kamal/secrets`, and the plain `env` of hand-written manifests. Each function reads and
//! returns data for the keys the spec names; asking before taking a value, and saying what was
//! read, are the caller's. A line that does not parse is named by its number, never its text.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kubectl_rails_core::AppSpec;
use kubectl_rails_core::dotenv::{self, EnvEntry, looks_secret};

use crate::SecretsError;
use crate::kamal::{self, KamalLine, KamalValue};
use crate::manifests::{self, PlainEnv};

/// Every entry of the env file at `path`, in file order.
pub fn dotenv_file(path: &Path) -> Result<Vec<EnvEntry>, SecretsError> {
    let text = fs_err::read_to_string(path).map_err(|source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    dotenv::parse(&text).map_err(|e| SecretsError::EnvFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// An env file's values, split by what the spec makes of their keys.
#[derive(Debug, Default)]
pub struct EnvSecrets {
    /// Keys the spec names as secrets, with their values.
    pub values: BTreeMap<String, String>,
    /// Keys the spec names neither as secrets nor as plain env, in file order.
    pub not_named: Vec<String>,
}

/// The secrets of the env file at `path` that the spec names.
pub fn env_secrets(path: &Path, spec: &AppSpec) -> Result<EnvSecrets, SecretsError> {
    let mut out = EnvSecrets::default();
    for e in dotenv_file(path)? {
        if spec.secrets.contains(&e.key) {
            out.values.insert(e.key, e.value);
        } else if !spec.env.contains_key(&e.key) {
            out.not_named.push(e.key);
        }
    }
    Ok(out)
}

/// The Rails master key, as the file it was read from names it.
#[derive(Debug)]
pub struct MasterKey {
    /// `config/credentials/<env>.key` with per-environment credentials, else
    /// `config/master.key`.
    pub file: String,
    pub value: String,
}

/// The master key the app reads in the spec's `RAILS_ENV` (production unless a destination's
/// overlay says otherwise), when the spec names `RAILS_MASTER_KEY` and the app folder has it.
/// A staging destination never gets production's key.
pub fn master_key(dir: &Path, spec: &AppSpec) -> Option<MasterKey> {
    if !spec.secrets.iter().any(|k| k == "RAILS_MASTER_KEY") {
        return None;
    }
    let env = spec
        .env
        .get("RAILS_ENV")
        .map(String::as_str)
        .unwrap_or("production");
    // With per-environment credentials, Rails reads `config/credentials/<env>.key`.
    let file = if dir
        .join(format!("config/credentials/{env}.yml.enc"))
        .is_file()
    {
        format!("config/credentials/{env}.key")
    } else {
        "config/master.key".to_string()
    };
    let value = fs_err::read_to_string(dir.join(&file)).ok()?;
    Some(MasterKey {
        file,
        value: value.trim().to_string(),
    })
}

/// `.kamal/secrets`, for the keys the spec names that the caller does not have yet.
#[derive(Debug)]
pub struct KamalSecrets {
    lines: Vec<KamalLine>,
    /// The keys wanted from it.
    pub wanted: Vec<String>,
    /// Its lines that run commands, named by number and key (`line 2: DB_PASSWORD`), never by
    /// their text: it may hold a value.
    pub commands: Vec<String>,
}

/// A `$VAR` line whose variable is not set.
#[derive(Debug, PartialEq, Eq)]
pub struct UnsetReference {
    pub line: usize,
    pub key: String,
    pub var: String,
}

/// Reads the app folder's Kamal secrets as Kamal 2 does: `.kamal/secrets-common`, then
/// `.kamal/secrets.<destination>` (or `.kamal/secrets` without one); `None` when there is none
/// to read. `have` are the values the caller already has.
pub fn kamal_secrets(
    dir: &Path,
    destination: Option<&str>,
    spec: &AppSpec,
    have: &BTreeMap<String, String>,
) -> Result<Option<KamalSecrets>, SecretsError> {
    let own = match destination {
        Some(d) => format!(".kamal/secrets.{d}"),
        None => ".kamal/secrets".to_string(),
    };
    let common = fs_err::read_to_string(dir.join(".kamal/secrets-common")).ok();
    let found = fs_err::read_to_string(dir.join(&own)).ok();
    // Line numbers count from the top of the common file, as Kamal reads them together.
    let text = match (common, found) {
        (Some(c), Some(f)) => format!("{c}\n{f}"),
        (Some(c), None) => c,
        (None, Some(f)) => f,
        (None, None) => return Ok(None),
    };
    let lines = kamal::parse(&text)?;
    let wanted = lines
        .iter()
        .filter(|l| spec.secrets.contains(&l.key) && !have.contains_key(&l.key))
        .map(|l| l.key.clone())
        .collect();
    let commands = lines
        .iter()
        .filter(|l| matches!(l.value, KamalValue::Command(_)))
        .map(|l| format!("line {}: {}", l.line, l.key))
        .collect();
    Ok(Some(KamalSecrets {
        lines,
        wanted,
        commands,
    }))
}

impl KamalSecrets {
    /// Whether only running its commands gives every wanted key.
    pub fn needs_commands(&self) -> bool {
        !self.commands.is_empty() && !self.wanted.is_empty()
    }

    /// Runs the file in one shell in `dir`, as Kamal does, and returns the wanted keys' values.
    pub fn evaluate(
        &self,
        dir: &Path,
        timeout: Duration,
    ) -> Result<BTreeMap<String, String>, SecretsError> {
        kamal::evaluate(dir, &self.lines, &self.wanted, timeout)
    }

    /// The wanted values that need no command: plain values, and `$VAR` references to this
    /// process's environment (those whose variable is unset are returned apart).
    pub fn without_commands(self) -> (BTreeMap<String, String>, Vec<UnsetReference>) {
        let (mut values, mut unset) = (BTreeMap::new(), Vec::new());
        for line in self.lines {
            if !self.wanted.contains(&line.key) {
                continue;
            }
            match line.value {
                KamalValue::Plain(v) => {
                    values.insert(line.key, v);
                }
                KamalValue::Reference(var) => match std::env::var(&var) {
                    Ok(v) => {
                        values.insert(line.key, v);
                    }
                    Err(_) => unset.push(UnsetReference {
                        line: line.line,
                        key: line.key,
                        var,
                    }),
                },
                KamalValue::Command(_) => {}
            }
        }
        (values, unset)
    }
}

/// The plain `env` of hand-written manifests, split into what moves into the Secret and what
/// stays plain.
#[derive(Debug, Default)]
pub struct ManifestSecrets {
    /// Values the spec names as secrets, or whose key looks secret.
    pub values: BTreeMap<String, String>,
    /// Where each of those values stands in the manifests (to delete it there).
    pub lines: Vec<PlainEnv>,
    /// Keys among `values` the spec does not name as secrets yet.
    pub unnamed: Vec<String>,
    /// Keys that are not secret, in the order found.
    pub plain: Vec<String>,
}

/// Reads the `.yml`/`.yaml` files of `dir`.
pub fn manifest_secrets(dir: &Path, spec: &AppSpec) -> Result<ManifestSecrets, SecretsError> {
    let found = manifests::plain_env(dir)?;
    let mut out = ManifestSecrets::default();
    for e in &found {
        if spec.secrets.contains(&e.key) || looks_secret(&e.key) {
            out.values.insert(e.key.clone(), e.value.clone());
        } else {
            out.plain.push(e.key.clone());
        }
    }
    out.unnamed = out
        .values
        .keys()
        .filter(|k| !spec.secrets.contains(k))
        .cloned()
        .collect();
    out.lines = found
        .into_iter()
        .filter(|e| out.values.contains_key(&e.key))
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rails_env: &str) -> AppSpec {
        let text = format!(
            "name: shop\nimage: {{repository: x/shop, tag: '1'}}\nweb: {{port: 3000, replicas: 1}}\nenv: {{RAILS_ENV: {rails_env}}}\nsecrets: [RAILS_MASTER_KEY]\n"
        );
        kubectl_rails_core::file::parse(&text, Path::new("config/kubernetes.yml"))
            .unwrap()
            .spec
    }

    #[test]
    fn the_master_key_is_the_one_of_the_destinations_rails_env() {
        let dir = tempfile::tempdir().unwrap();
        let write = |file: &str, text: &str| {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("config/master.key", "master\n");
        write("config/credentials/production.yml.enc", "x");
        write("config/credentials/production.key", "prod\n");
        let cases = [
            ("production", "config/credentials/production.key", "prod"),
            // Staging has no credentials of its own: never production's key.
            ("staging", "config/master.key", "master"),
        ];
        for (env, file, value) in cases {
            let key = master_key(dir.path(), &spec(env)).unwrap();
            assert_eq!(
                (key.file.as_str(), key.value.as_str()),
                (file, value),
                "{env}"
            );
        }
        write("config/credentials/staging.yml.enc", "x");
        write("config/credentials/staging.key", "stage\n");
        let key = master_key(dir.path(), &spec("staging")).unwrap();
        assert_eq!(
            (key.file.as_str(), key.value.as_str()),
            ("config/credentials/staging.key", "stage")
        );
    }
}
