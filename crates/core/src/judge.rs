//! "Would it boot": a second opinion over a render, from the app's own files. It knows nothing
//! of how the spec was made; it reads the rendered pods and asks of each what would stop it
//! starting or serving: a command a container cannot run, a probe path no route answers, a port
//! the user cannot bind, a volume the user cannot write, a required secret the app never reads,
//! a process that runs twice. `scripts/wild` runs it over real apps.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::detect::{Detection, Health, ImageUser};

/// Secrets Rails or its common gems read without the app naming them.
const READ_BY_RAILS: &[&str] = &[
    "RAILS_MASTER_KEY",
    "SECRET_KEY_BASE",
    "DATABASE_URL",
    "REDIS_URL",
];

/// Env keys the app's own files read (`ENV["X"]`, `ENV.fetch("X"`, `$X` in scripts).
pub fn env_keys_read(dir: &Path) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut stack = vec![
        dir.join("config"),
        dir.join("app"),
        dir.join("lib"),
        dir.join("bin"),
        dir.join("script"),
        dir.join("scripts"),
    ];
    for file in ["Procfile", "Dockerfile", ".kamal/secrets", "config.ru"] {
        stack.push(dir.join(file));
    }
    let mut read = 0usize;
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                stack.push(entry.path());
            }
            continue;
        }
        // Bounded: a judge reads sources, not assets or vendored trees.
        if read > 4000 {
            break;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        read += 1;
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find("ENV").map(|p| p + i) {
            i = at + 3;
            let rest = text[i..]
                .trim_start_matches(".fetch")
                .trim_start_matches(['[', '(', ' ']);
            if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'')
                && let Some(key) = rest[1..].split(q).next()
                && crate::validate::is_env_key(key)
            {
                keys.insert(key.to_string());
            }
        }
        // Config loaders that name env keys in a list (`["MONGODB_URI", "MONGO_URL"]`).
        if path.extension().is_some_and(|e| e == "rb") {
            for quoted in text.split(['"', '\'']).skip(1).step_by(2) {
                if quoted.len() > 2
                    && quoted.contains('_')
                    && quoted
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    keys.insert(quoted.to_string());
                }
            }
        }
        for (p, _) in text.match_indices('$') {
            let key: String = text[p + 1..]
                .trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !key.is_empty() && bytes.get(p + 1) != Some(&b'(') {
                keys.insert(key);
            }
        }
    }
    keys
}

fn words(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a container's words run through a shell.
fn through_a_shell(words: &[String]) -> bool {
    matches!(
        (
            words.first().map(String::as_str),
            words.get(1).map(String::as_str)
        ),
        (
            Some("sh" | "bash" | "/bin/sh" | "/bin/bash"),
            Some("-c" | "-lc" | "-ec")
        )
    )
}

/// What would stop the rendered pods starting or serving; empty when it would boot.
pub fn judge(d: &Detection, app_reads: &BTreeSet<String>, objects: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let image_user = d.dockerfile.as_ref().map(|f| f.image_user());
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or("");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let pod = match kind {
            "Deployment" | "Job" | "StatefulSet" => &object["spec"]["template"]["spec"],
            "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        if kind == "StatefulSet" {
            continue;
        }
        let security = &pod["securityContext"];
        let run_as = security["runAsUser"].as_i64();
        for c in pod["containers"].as_array().into_iter().flatten() {
            let cname = c["name"].as_str().unwrap_or("");
            let command: Vec<String> = words(&c["command"])
                .into_iter()
                .chain(words(&c["args"]))
                .collect();
            let at = format!("{kind}/{name} container {cname}");
            if let Some(first) = command.first()
                && first.contains('=')
                && !first.starts_with('-')
            {
                out.push(format!(
                    "{at}: `{first}` is an env assignment run as a program"
                ));
            }
            if !through_a_shell(&command)
                && command.iter().any(|w| {
                    ["&&", "||", "|", ";"].contains(&w.as_str())
                        || w.contains('$')
                        || w.contains('`')
                })
            {
                out.push(format!(
                    "{at}: `{}` needs a shell to run, and runs without one",
                    command.join(" ")
                ));
            }
            // A server told to bind loopback on its command line cannot be reached by the Service.
            if cname == "web"
                && command.windows(2).any(|w| {
                    ["-b", "--bind", "--binding"].contains(&w[0].as_str())
                        && (w[1].contains("127.0.0.1") || w[1].contains("localhost"))
                })
            {
                out.push(format!(
                    "{at}: `{}` binds a loopback address, which the Service cannot reach",
                    command.join(" ")
                ));
            }
            for port in c["ports"].as_array().into_iter().flatten() {
                let number = port["containerPort"].as_i64().unwrap_or(0);
                let root = run_as == Some(0)
                    || (run_as.is_none() && matches!(image_user, Some(ImageUser::Root)));
                if number < 1024 && !root {
                    out.push(format!(
                        "{at}: port {number} is below 1024, which a non-root user cannot bind"
                    ));
                }
            }
            if cname == "web"
                && let Some(path) = c["readinessProbe"]["httpGet"]["path"].as_str()
            {
                let routed = match &d.health {
                    Health::Path { path: p, .. } => p == path,
                    Health::Root { .. } => path == "/",
                    Health::None => false,
                };
                let kamal = d
                    .kamal
                    .as_ref()
                    .and_then(|k| k.health_path.as_deref())
                    .is_some_and(|p| p == path);
                if !routed && !kamal {
                    out.push(format!(
                        "{at}: the probe asks `{path}`, which no route of the app answers"
                    ));
                }
            }
            for env in c["env"].as_array().into_iter().flatten() {
                let Some(key) = env["valueFrom"]["secretKeyRef"]["key"].as_str() else {
                    continue;
                };
                let optional = env["valueFrom"]["secretKeyRef"]["optional"].as_bool() == Some(true);
                if !optional && !READ_BY_RAILS.contains(&key) && !app_reads.contains(key) {
                    out.push(format!(
                        "{at}: requires the secret `{key}`, which the app's files never read"
                    ));
                }
            }
            if c["volumeMounts"].as_array().is_some_and(|m| !m.is_empty())
                && security["fsGroup"].is_null()
                && run_as != Some(0)
            {
                out.push(format!(
                    "{at}: mounts a volume with no fsGroup, so its user may not write it"
                ));
            }
        }
        if let Some(at) = &d.privilege_drop
            && matches!(image_user, Some(ImageUser::Root))
            && run_as != Some(0)
        {
            out.push(format!(
                "{kind}/{name}: the image starts as root and drops to its user at {at}, but the pod runs as uid {}",
                run_as.map_or("of the image".to_string(), |u| u.to_string())
            ));
        }
        if kind == "Deployment"
            && pod["securityContext"]["runAsNonRoot"] == Value::Bool(true)
            && matches!(image_user, Some(ImageUser::Root))
            && run_as.is_none()
        {
            out.push(format!(
                "{kind}/{name}: the image runs as root and the pod refuses root (runAsNonRoot) without a uid"
            ));
        }
    }
    if let Some((key, line)) = &d.puma.loopback_bind {
        let fixed = key.as_ref().is_some_and(|k| {
            objects.iter().any(|o| {
                o["kind"] == "ConfigMap" && o["data"][k.as_str()].as_str() == Some("0.0.0.0")
            })
        });
        if !fixed {
            out.push(format!(
                "config/puma.rb:{line} binds a loopback address: the Service cannot reach the web pods"
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value, security: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "app-web"},
               "spec": {"template": {"spec": {"securityContext": security, "containers": [container]}}}})
    }

    #[test]
    fn what_would_stop_a_pod() {
        let d = Detection {
            health: Health::Path {
                path: "/up".into(),
                at: "config/routes.rb:2".into(),
            },
            ..Detection::default()
        };
        let reads = BTreeSet::from(["STRIPE_KEY".to_string()]);
        let nonroot = json!({"runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 1000});
        let cases = [
            (
                json!({"name": "web", "args": ["bin/rails", "server"], "ports": [{"containerPort": 3000}],
                    "readinessProbe": {"httpGet": {"path": "/up"}}}),
                None,
            ),
            (
                json!({"name": "jobs", "args": ["FORK_PER_JOB=false", "bundle", "exec", "resque-pool"]}),
                Some("is an env assignment run as a program"),
            ),
            (
                json!({"name": "web", "args": ["bundle", "exec", "rails", "s", "-p", "${PORT:-3000}"]}),
                Some("needs a shell"),
            ),
            (
                json!({"name": "web", "args": ["sh", "-c", "bin/rails db:migrate && bin/rails s"]}),
                None,
            ),
            (
                json!({"name": "web", "ports": [{"containerPort": 80}]}),
                Some("below 1024"),
            ),
            (
                json!({"name": "web", "readinessProbe": {"httpGet": {"path": "/health"}}}),
                Some("no route of the app answers"),
            ),
            (
                json!({"name": "web", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"key": "SMTP_PASS", "optional": false}}}]}),
                Some("never read"),
            ),
            (
                json!({"name": "web", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"key": "STRIPE_KEY", "optional": false}}}]}),
                None,
            ),
            (
                json!({"name": "web", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"key": "SMTP_PASS", "optional": true}}}]}),
                None,
            ),
        ];
        for (container, expected) in cases {
            let got = judge(
                &d,
                &reads,
                &[deployment(container.clone(), nonroot.clone())],
            );
            match expected {
                None => assert!(got.is_empty(), "{container}: {got:?}"),
                Some(e) => assert!(got.iter().any(|g| g.contains(e)), "{container}: {got:?}"),
            }
        }
        let no_fs_group = deployment(
            json!({"name": "web", "volumeMounts": [{"name": "storage", "mountPath": "/rails/storage"}]}),
            json!({"runAsNonRoot": true, "runAsUser": 1000}),
        );
        assert!(judge(&d, &reads, &[no_fs_group])[0].contains("no fsGroup"));
    }
}
