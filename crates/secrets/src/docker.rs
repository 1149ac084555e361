//! Registry credentials from a Docker config, through `auths`, `credHelpers` and `credsStore`
//! the way Docker itself resolves them, and the `kubernetes.io/dockerconfigjson` they become.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::SecretsError;

/// Docker Hub's key in a Docker config.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A username and password for one registry. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The registry host as Docker keys it: `docker.io` and friends become Docker Hub's URL.
pub fn normalize_server(server: &str) -> String {
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

/// Where the Docker config lives: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path(docker_config_env: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    docker_config_env
        .map(|d| d.join("config.json"))
        .or_else(|| home.map(|h| h.join(".docker/config.json")))
}

/// Where a registry's credentials are: in the file, or behind a credential helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Plain(Credentials),
    /// `docker-credential-<helper> get`, asked for `key`.
    Helper {
        helper: String,
        key: String,
    },
}

/// Resolves `server` in Docker config text, as Docker does: `credHelpers`, then `auths`, then
/// `credsStore`. Pure: helpers are named, not run.
pub fn resolve(text: &str, path: &Path, server: &str) -> Result<Source, SecretsError> {
    let config: ConfigFile =
        serde_json::from_str(text).map_err(|e| SecretsError::DockerConfigInvalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let wanted = normalize_server(server);
    let entry_key = |map_keys: Vec<&String>| {
        map_keys
            .into_iter()
            .find(|k| normalize_server(k) == wanted)
            .cloned()
    };

    if let Some(key) = entry_key(config.cred_helpers.keys().collect()) {
        return Ok(Source::Helper {
            helper: config.cred_helpers[&key].clone(),
            key,
        });
    }
    if let Some(key) = entry_key(config.auths.keys().collect()) {
        let entry = &config.auths[&key];
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = STANDARD
                .decode(auth)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SecretsError::DockerConfigInvalid {
                    path: path.to_path_buf(),
                    message: format!("the `auth` of `{key}` is not base64 of `user:password`"),
                })?;
            let (username, password) =
                decoded
                    .split_once(':')
                    .ok_or_else(|| SecretsError::DockerConfigInvalid {
                        path: path.to_path_buf(),
                        message: format!("the `auth` of `{key}` is not `user:password`"),
                    })?;
            return Ok(Source::Plain(Credentials {
                server: wanted,
                username: username.into(),
                password: password.into(),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Source::Plain(Credentials {
                server: wanted,
                username: u.clone(),
                password: p.clone(),
            }));
        }
    }
    match &config.creds_store {
        Some(store) => Ok(Source::Helper {
            helper: store.clone(),
            key: server.to_string(),
        }),
        None => Err(SecretsError::RegistryNotInDockerConfig {
            server: wanted,
            path: path.to_path_buf(),
            known: config
                .auths
                .keys()
                .chain(config.cred_helpers.keys())
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether Docker config text logs in to `server`: an `auths` entry (even an empty one, which
/// means the credentials are in `credsStore`) or a `credHelpers` entry. Helpers are not run.
pub fn names_registry(text: &str, server: &str) -> bool {
    let Ok(config) = serde_json::from_str::<ConfigFile>(text) else {
        return false;
    };
    let wanted = normalize_server(server);
    config
        .auths
        .keys()
        .chain(config.cred_helpers.keys())
        .any(|k| normalize_server(k) == wanted)
}

/// [`resolve`] for config text with no file behind it (fuzzing, tests).
pub fn parse_config(text: &str, server: &str) -> Result<Source, SecretsError> {
    resolve(text, Path::new("config.json"), server)
}

/// Finds the credentials for `server` in the Docker config at `path`. Credential helpers are
/// run as `docker-credential-<name> get`, found on PATH.
pub fn lookup(path: &Path, server: &str) -> Result<Credentials, SecretsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretsError::DockerConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    match resolve(&text, path, server)? {
        Source::Plain(c) => Ok(c),
        Source::Helper { helper, key } => run_helper(&helper, &key, &normalize_server(server)),
    }
}

fn run_helper(helper: &str, key: &str, server: &str) -> Result<Credentials, SecretsError> {
    let program = format!("docker-credential-{helper}");
    let failed = |message: String| SecretsError::CredentialHelper {
        helper: program.clone(),
        server: server.to_string(),
        message,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(key.as_bytes())
        .map_err(|e| failed(e.to_string()))?;
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        // Helpers print "credentials not found in native keychain" and the like, never a secret.
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Err(failed(if said.is_empty() {
            format!("it exited with {}", out.status)
        } else {
            said
        }));
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| failed("its answer is not the JSON credential helpers print".into()))?;
    Ok(Credentials {
        server: server.to_string(),
        username: answer.username,
        password: answer.secret,
    })
}

/// A `.dockerconfigjson` scoped to one registry.
pub fn dockerconfigjson(c: &Credentials) -> Vec<u8> {
    let auth = STANDARD.encode(format!("{}:{}", c.username, c.password));
    serde_json::to_vec(&serde_json::json!({
        "auths": { c.server.clone(): { "username": c.username, "password": c.password, "auth": auth } }
    }))
    .expect("JSON always serializes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_login_is_an_auths_or_cred_helpers_entry() {
        let text = r#"{"auths": {"ghcr.io": {}, "https://index.docker.io/v1/": {"auth": "dTpw"}},
                      "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
                      "credsStore": "desktop"}"#;
        for (host, logged_in) in [
            ("ghcr.io", true),
            ("docker.io", true),
            ("123.dkr.ecr.us-east-1.amazonaws.com", true),
            ("registry.gitlab.com", false),
        ] {
            assert_eq!(super::names_registry(text, host), logged_in, "{host}");
        }
        assert!(!super::names_registry("not json", "ghcr.io"));
    }

    use super::*;

    fn write(text: &str) -> (tempfile_like::Dir, PathBuf) {
        let dir = tempfile_like::Dir::new();
        let path = dir.0.join("config.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// A throwaway folder without a dev-dependency.
    mod tempfile_like {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "krs-docker-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn plain_auths() {
        let auth = STANDARD.encode("deploy:hunter2");
        let (_d, path) = write(&format!(
            r#"{{"auths":{{"https://ghcr.io":{{"auth":"{auth}"}}}}}}"#
        ));
        let c = lookup(&path, "ghcr.io").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str(), c.server.as_str()),
            ("deploy", "hunter2", "ghcr.io")
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn docker_hub_aliases() {
        assert_eq!(normalize_server("docker.io"), DOCKER_HUB);
        assert_eq!(normalize_server("https://index.docker.io/v1/"), DOCKER_HUB);
        assert_eq!(
            normalize_server("registry.example.com:5000"),
            "registry.example.com:5000"
        );
    }

    #[test]
    fn absent_registry_lists_known_ones() {
        let (_d, path) = write(r#"{"auths":{"quay.io":{"auth":""}}}"#);
        let e = lookup(&path, "ghcr.io").unwrap_err();
        assert!(e.to_string().contains("`ghcr.io`"), "{e}");
        assert!(
            matches!(e, SecretsError::RegistryNotInDockerConfig { ref known, .. } if known == "quay.io")
        );
    }

    #[test]
    fn config_json_round_trip() {
        let c = Credentials {
            server: "ghcr.io".into(),
            username: "u".into(),
            password: "p".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&dockerconfigjson(&c)).unwrap();
        assert_eq!(v["auths"]["ghcr.io"]["auth"], STANDARD.encode("u:p"));
    }
}
