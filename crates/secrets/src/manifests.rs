//! Hand-written manifests like the how-to's, whose Deployments carry secrets as plain `env`
//! values: find them, so they can move into the Secret and out of the files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::SecretsError;

/// One plain `env` value in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainEnv {
    pub key: String,
    pub value: String,
    pub file: PathBuf,
    /// The line of `- name: KEY`, for telling the user what to delete.
    pub line: usize,
}

/// Plain `env` values of every workload in the `.yml`/`.yaml` files of `dir`.
pub fn plain_env(dir: &Path) -> Result<Vec<PlainEnv>, SecretsError> {
    let read_err = |path: &Path, source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| read_err(&file, e))?;
        for doc in text.split("\n---") {
            if doc.trim().is_empty() {
                continue;
            }
            let value: Value = serde_saphyr::from_str(doc).map_err(|e| SecretsError::BadLine {
                file: file.display().to_string(),
                line: e.location().map_or(0, |l| l.line() as usize),
                reason: "not valid YAML".into(),
            })?;
            let containers = value
                .pointer("/spec/template/spec/containers")
                .or_else(|| value.pointer("/spec/jobTemplate/spec/template/spec/containers"))
                .and_then(Value::as_array);
            for container in containers.into_iter().flatten() {
                for env in container
                    .get("env")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (Some(key), Some(v)) =
                        (env.get("name").and_then(Value::as_str), env.get("value"))
                    else {
                        continue;
                    };
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.push(PlainEnv {
                        key: key.into(),
                        value,
                        line: line_of(&text, key),
                        file: file.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim().trim_start_matches("- ").trim();
            l.strip_prefix("name:")
                .is_some_and(|rest| rest.trim().trim_matches(['"', '\'']) == key)
        })
        .map_or(0, |i| i + 1)
}
