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
    /// The file the line is in, and its number there.
    pub file: String,
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
    // Kamal reads the two together; each keeps its own name and line numbers here.
    let mut lines = Vec::new();
    let mut found_any = false;
    for file in [".kamal/secrets-common".to_string(), own] {
        if let Ok(text) = fs_err::read_to_string(dir.join(&file)) {
            found_any = true;
            lines.extend(kamal::parse_file(&text, &file)?);
        }
    }
    if !found_any {
        return Ok(None);
    }
    let wanted = lines
        .iter()
        .filter(|l| spec.secrets.contains(&l.key) && !have.contains_key(&l.key))
        .map(|l| l.key.clone())
        .collect();
    let commands = lines
        .iter()
        .filter(|l| matches!(l.value, KamalValue::Command(_)))
        // The messages name `.kamal/secrets`; another file is named with its lines.
        .map(|l| match l.file.as_str() {
            ".kamal/secrets" => format!("line {}: {}", l.line, l.key),
            file => format!("`{file}` line {}: {}", l.line, l.key),
        })
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

    /// The wanted values that need no command: plain values, and `$VAR` references, to a key
    /// an earlier line set (as Kamal's dotenv reads them), else to this process's environment
    /// (those whose variable is set nowhere are returned apart).
    pub fn without_commands(self) -> (BTreeMap<String, String>, Vec<UnsetReference>) {
        self.without_commands_in(|var| std::env::var(var).ok())
    }

    fn without_commands_in(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> (BTreeMap<String, String>, Vec<UnsetReference>) {
        let (mut values, mut unset) = (BTreeMap::new(), Vec::new());
        // Every line's value so far, wanted or not: a later line may refer to it. A command's
        // value is unknown without running it (`None`): a later reference to it must not read
        // the environment's.
        let mut set: BTreeMap<String, Option<String>> = BTreeMap::new();
        for line in self.lines {
            let value = match line.value {
                KamalValue::Plain(v) => Some(v),
                KamalValue::Reference(var) => {
                    let value = match set.get(&var) {
                        Some(known) => known.clone(),
                        None => env(&var),
                    };
                    if value.is_none() && self.wanted.contains(&line.key) {
                        unset.push(UnsetReference {
                            file: line.file.clone(),
                            line: line.line,
                            key: line.key.clone(),
                            var,
                        });
                    }
                    value
                }
                KamalValue::Command(_) => None,
            };
            if let Some(v) = &value
                && self.wanted.contains(&line.key)
            {
                values.insert(line.key.clone(), v.clone());
            }
            set.insert(line.key, value);
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

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A bad line of the destination's file is named by that file and its own line number, not
    /// a number counted from the top of `secrets-common` (#27 L5).
    #[test]
    fn a_bad_line_names_its_own_file_and_number() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".kamal/secrets-common", "A=1\nB=2\nC=3\n");
        write(dir.path(), ".kamal/secrets.production", "D=4\nnot a line\n");
        let have = BTreeMap::new();
        let cases = [
            (Some("production"), Some((".kamal/secrets.production", 2))),
            (None, None),
        ];
        for (destination, bad) in cases {
            let result = kamal_secrets(dir.path(), destination, &spec("production"), &have);
            match (result, bad) {
                (Err(SecretsError::BadLine { file, line, .. }), Some((f, l))) => {
                    assert_eq!((file.as_str(), line), (f, l), "{destination:?}");
                }
                (Ok(_), None) => {}
                (other, _) => panic!("{destination:?}: {other:?}"),
            }
        }
    }

    /// `$VAR` is what an earlier line set, else the environment, as Kamal's dotenv reads it
    /// (#27 L5).
    #[test]
    fn a_reference_reads_earlier_lines_first() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            ".kamal/secrets",
            "KUBECTL_RAILS_L5_BASE=from-the-file\nRAILS_MASTER_KEY=$KUBECTL_RAILS_L5_BASE\n",
        );
        let found = kamal_secrets(dir.path(), None, &spec("production"), &BTreeMap::new())
            .unwrap()
            .unwrap();
        let (values, unset) = found.without_commands();
        assert_eq!(values["RAILS_MASTER_KEY"], "from-the-file");
        assert!(unset.is_empty());
    }

    /// A key an earlier line sets by a command is unknown without running it: a reference to it
    /// never reads the environment's value of that name.
    #[test]
    fn a_reference_to_a_command_is_not_the_environments() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            ".kamal/secrets",
            "BASE=$(pass show base)\nRAILS_MASTER_KEY=$BASE\n",
        );
        let env = |var: &str| (var == "BASE").then(|| "from-the-environment".to_string());
        let found = kamal_secrets(dir.path(), None, &spec("production"), &BTreeMap::new())
            .unwrap()
            .unwrap();
        let (values, unset) = found.without_commands_in(env);
        assert!(values.is_empty(), "{values:?}");
        assert_eq!(unset.len(), 1);
    }
}
