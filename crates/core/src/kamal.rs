//! Kamal's `config/deploy.yml`: what maps to Kubernetes, and a report of what became of every
//! key, so that moving from Kamal drops nothing silently.

use std::collections::BTreeMap;

use serde_json::Value;

/// The parts of a Kamal `config/deploy.yml` that map to Kubernetes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kamal {
    pub service: Option<String>,
    pub image: Option<String>,
    pub registry_server: Option<String>,
    pub registry_username: Option<String>,
    /// Roles other than `web`.
    pub roles: BTreeMap<String, Role>,
    /// The `web` role, when it says more than its hosts.
    pub web: Role,
    pub hosts: Vec<String>,
    pub ssl: bool,
    pub app_port: Option<u16>,
    pub health_path: Option<String>,
    pub response_timeout: Option<u64>,
    pub drain_timeout: Option<u64>,
    pub env_clear: BTreeMap<String, String>,
    pub env_secret: Vec<String>,
    pub volumes: Vec<String>,
    pub accessories: BTreeMap<String, Accessory>,
    /// Kamal aliases that map to a `kubectl rails` command line.
    pub aliases: BTreeMap<String, String>,
    /// `builder.arch`, which the nodes must have.
    pub arch: Option<String>,
    /// What `builder` says of the build itself.
    pub builder: KamalBuilder,
    pub hooks_path: Option<String>,
    /// `asset_path`: where the image holds its fingerprinted assets.
    pub asset_path: Option<String>,
    /// What became of every key.
    pub report: Vec<ImportLine>,
}

/// Kamal's `builder` keys that say how the image is built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KamalBuilder {
    pub dockerfile: Option<String>,
    pub context: Option<String>,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    /// `cache.image` of a `registry` cache.
    pub cache_image: Option<String>,
}

/// A Kamal role (`servers.<role>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Role {
    pub cmd: Option<String>,
    pub env_clear: BTreeMap<String, String>,
    pub env_secret: Vec<String>,
    /// `options.memory` as a Kubernetes quantity (`2g` -> `2Gi`).
    pub memory: Option<String>,
    /// `options.cpus`, as a Kubernetes CPU quantity.
    pub cpus: Option<String>,
}

/// A Docker memory size (`512m`, `2g`, `1024`) as a Kubernetes quantity (`512Mi`, `2Gi`).
pub fn docker_memory(size: &str) -> Option<String> {
    let s = size.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if number.is_empty() {
        return None;
    }
    let unit = match unit {
        "" => "",
        "k" => "Ki",
        "m" => "Mi",
        "g" => "Gi",
        _ => return None,
    };
    Some(format!("{number}{unit}"))
}

/// A Kamal accessory (a database, a cache) and the image it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accessory {
    pub image: Option<String>,
}

/// One key of `deploy.yml` and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    /// The key's path, such as `proxy.healthcheck.path` or `servers.job.cmd`.
    pub key: String,
    pub fate: Fate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Imported into the named spec field.
    Imported(String),
    /// Kubernetes does this itself, or needs nothing for it: why.
    NotNeeded(String),
    /// No counterpart here: what to do instead.
    Unsupported(String),
}

impl Fate {
    /// A word for the report's middle column.
    pub fn label(&self) -> &'static str {
        match self {
            Fate::Imported(_) => "imported",
            Fate::NotNeeded(_) => "not needed",
            Fate::Unsupported(_) => "not supported",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Fate::Imported(s) | Fate::NotNeeded(s) | Fate::Unsupported(s) => s,
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `env:` as Kamal writes it: `clear`/`secret`, or a flat map of clear values.
fn env_of(v: Option<&Value>) -> (BTreeMap<String, String>, Vec<String>) {
    let clear_map = |m: &serde_json::Map<String, Value>| {
        m.iter()
            .filter_map(|(k, v)| Some((k.clone(), text_of(v)?)))
            .collect()
    };
    match v {
        Some(Value::Object(env)) if env.contains_key("clear") || env.contains_key("secret") => {
            let clear = match env.get("clear") {
                Some(Value::Object(c)) => clear_map(c),
                _ => BTreeMap::new(),
            };
            let secret = match env.get("secret") {
                Some(Value::Array(s)) => s.iter().filter_map(text_of).collect(),
                _ => vec![],
            };
            (clear, secret)
        }
        Some(Value::Object(flat)) => (clear_map(flat), vec![]),
        _ => (BTreeMap::new(), vec![]),
    }
}

/// Splits a command line the way a shell splits words (quotes group, nothing expands).
pub fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

/// The `kubectl rails` command line a Kamal alias means, or why there is none.
pub fn alias_to_command(kamal: &str) -> Result<String, String> {
    let words = shell_words(kamal);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["app", "exec", rest @ ..] => {
            let reuse = rest.contains(&"--reuse");
            let command: Vec<&str> = rest
                .iter()
                .copied()
                .filter(|a| !a.starts_with('-'))
                .collect();
            let [command] = command.as_slice() else {
                return Err(format!(
                    "`{kamal}`: one quoted command after `app exec` is expected"
                ));
            };
            let inner = shell_words(command);
            let inner: Vec<&str> = inner.iter().map(String::as_str).collect();
            let reuse_flag = if reuse { " --reuse" } else { "" };
            Ok(match inner.as_slice() {
                ["bin/rails", "console"] => format!("console{reuse_flag}"),
                ["bin/rails", "dbconsole", ..] => format!("dbconsole{reuse_flag}"),
                ["bash" | "sh" | "/bin/bash" | "/bin/sh"] => "shell".to_string(),
                _ if reuse => format!("exec -- {command}"),
                _ => format!("run -- {command}"),
            })
        }
        ["app", "logs", rest @ ..] => {
            let mut out = "logs".to_string();
            let mut i = 0;
            while i < rest.len() {
                match rest[i] {
                    "-f" | "--follow" => out.push_str(" -f"),
                    "-n" | "--lines" if i + 1 < rest.len() => {
                        out.push_str(&format!(" --tail {}", rest[i + 1]));
                        i += 1;
                    }
                    "-r" | "--roles" if i + 1 < rest.len() => {
                        out.push_str(&format!(" -p {}", rest[i + 1]));
                        i += 1;
                    }
                    other => {
                        return Err(format!(
                            "`{kamal}`: `{other}` has no counterpart in `kubectl rails logs`"
                        ));
                    }
                }
                i += 1;
            }
            Ok(out)
        }
        _ => Err(format!("`{kamal}`: no `kubectl rails` command does this")),
    }
}

/// Kamal's hooks, and whether a deploy here runs them.
const HOOKS_NOTE: &str = "pre-deploy and post-deploy run around `kubectl rails deploy` with Kamal's variables; the other hooks (docker-setup, pre-connect, pre-build, pre-app-boot, post-app-boot, pre-proxy-reboot, post-proxy-reboot) have no step here";

/// Reads a Kamal `config/deploy.yml` and reports every key.
pub fn parse(text: &str) -> Result<Kamal, String> {
    let root: Value = serde_saphyr::from_str(text).map_err(|e| {
        let e = e.without_snippet();
        match e.location() {
            Some(l) => format!(
                "line {} column {}: {}",
                l.line(),
                l.column(),
                e.to_string().lines().next().unwrap_or("")
            ),
            None => e.to_string(),
        }
    })?;
    let Value::Object(top) = &root else {
        return Err("the top level must be a mapping with `service` and `image`".into());
    };
    let at = |path: &[&str]| path.iter().try_fold(&root, |v, k| v.get(k));
    let mut k = Kamal {
        service: at(&["service"]).and_then(text_of),
        image: at(&["image"]).and_then(text_of),
        registry_server: at(&["registry", "server"]).and_then(text_of),
        registry_username: at(&["registry", "username"]).and_then(text_of),
        ssl: at(&["proxy", "ssl"])
            .and_then(Value::as_bool)
            .unwrap_or(false),
        app_port: at(&["proxy", "app_port"])
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        health_path: at(&["proxy", "healthcheck", "path"]).and_then(text_of),
        response_timeout: at(&["proxy", "response_timeout"]).and_then(Value::as_u64),
        drain_timeout: at(&["drain_timeout"]).and_then(Value::as_u64),
        arch: match at(&["builder", "arch"]) {
            Some(Value::Array(a)) if a.len() == 1 => a.first().and_then(text_of),
            Some(v) => text_of(v),
            None => None,
        },
        hooks_path: at(&["hooks_path"]).and_then(text_of),
        asset_path: at(&["asset_path"]).and_then(text_of),
        builder: KamalBuilder {
            dockerfile: at(&["builder", "dockerfile"]).and_then(text_of),
            context: at(&["builder", "context"]).and_then(text_of),
            target: at(&["builder", "target"]).and_then(text_of),
            args: match at(&["builder", "args"]) {
                Some(Value::Object(m)) => m
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), text_of(v)?)))
                    .collect(),
                _ => BTreeMap::new(),
            },
            secrets: match at(&["builder", "secrets"]) {
                Some(Value::Array(a)) => a.iter().filter_map(text_of).collect(),
                _ => Vec::new(),
            },
            cache_image: (at(&["builder", "cache", "type"])
                .and_then(text_of)
                .as_deref()
                == Some("registry"))
            .then(|| at(&["builder", "cache", "image"]).and_then(text_of))
            .flatten(),
        },
        ..Kamal::default()
    };
    if let Some(host) = at(&["proxy", "host"]).and_then(text_of) {
        k.hosts.push(host);
    }
    if let Some(Value::Array(hosts)) = at(&["proxy", "hosts"]) {
        k.hosts.extend(hosts.iter().filter_map(text_of));
    }
    let (clear, secret) = env_of(at(&["env"]));
    k.env_clear = clear;
    k.env_secret = secret;
    if let Some(Value::Array(volumes)) = at(&["volumes"]) {
        k.volumes = volumes.iter().filter_map(text_of).collect();
    }
    let mut report = Vec::new();
    let mut line = |key: String, fate: Fate| report.push(ImportLine { key, fate });

    for (key, value) in top {
        let imported = |to: &str| Fate::Imported(to.to_string());
        let not_needed = |why: &str| Fate::NotNeeded(why.to_string());
        let unsupported = |what: &str| Fate::Unsupported(what.to_string());
        match key.as_str() {
            "service" => line(key.clone(), imported("name")),
            "image" => line(key.clone(), imported("image.repository")),
            "servers" => {
                let roles: Vec<(String, &Value)> = match value {
                    Value::Object(m) => m.iter().map(|(r, v)| (r.clone(), v)).collect(),
                    // `servers: [hosts]` is the web role alone.
                    _ => vec![("web".to_string(), value)],
                };
                for (role, body) in roles {
                    let (cmd, env_clear, env_secret, memory, cpus) = match body {
                        Value::Object(b) => {
                            for rk in b.keys() {
                                let path = format!("servers.{role}.{rk}");
                                match rk.as_str() {
                                    "hosts" => line(
                                        path,
                                        not_needed(
                                            "Kubernetes places pods on its nodes; `placement` chooses which",
                                        ),
                                    ),
                                    "cmd" => line(
                                        path,
                                        imported(&if role == "web" {
                                            "web.command".to_string()
                                        } else {
                                            format!("workers.{role}.command")
                                        }),
                                    ),
                                    "env" => line(
                                        path,
                                        imported(&if role == "web" {
                                            "web.env".to_string()
                                        } else {
                                            format!(
                                                "workers.{role}.env (secret keys join `secrets`)"
                                            )
                                        }),
                                    ),
                                    "options" => {
                                        let target = if role == "web" {
                                            "web.resources".to_string()
                                        } else {
                                            format!("workers.{role}.resources")
                                        };
                                        let options = b.get("options").and_then(Value::as_object);
                                        for ok in options
                                            .map(|o| o.keys().cloned().collect::<Vec<_>>())
                                            .unwrap_or_default()
                                        {
                                            let path = format!("servers.{role}.options.{ok}");
                                            match ok.as_str() {
                                                "memory" => line(
                                                    path,
                                                    imported(&format!("{target}.memory_limit")),
                                                ),
                                                "cpus" => line(
                                                    path,
                                                    imported(&format!(
                                                        "{target}.cpu (a request: CPU is not capped, so Ruby is not throttled)"
                                                    )),
                                                ),
                                                _ => line(
                                                    path,
                                                    unsupported(
                                                        "a docker run option with no counterpart: set it in the pod by hand",
                                                    ),
                                                ),
                                            }
                                        }
                                    }
                                    "labels" | "logging" => line(
                                        path,
                                        not_needed(
                                            "container labels and log drivers are the cluster's",
                                        ),
                                    ),
                                    "proxy" => line(
                                        path,
                                        unsupported(
                                            "one ingress serves the web process; other roles get no proxy",
                                        ),
                                    ),
                                    _ => line(
                                        path,
                                        unsupported("a role key kubectl-rails does not know"),
                                    ),
                                }
                            }
                            let (c, s) = env_of(b.get("env"));
                            let option =
                                |k: &str| b.get("options").and_then(|o| o.get(k)).and_then(text_of);
                            (
                                b.get("cmd").and_then(text_of),
                                c,
                                s,
                                option("memory").and_then(|m| docker_memory(&m)),
                                option("cpus"),
                            )
                        }
                        _ => {
                            line(
                                format!("servers.{role}"),
                                not_needed("a list of hosts: Kubernetes places pods on its nodes"),
                            );
                            (None, BTreeMap::new(), vec![], None, None)
                        }
                    };
                    let role_spec = Role {
                        cmd,
                        env_clear,
                        env_secret,
                        memory,
                        cpus,
                    };
                    if role == "web" {
                        k.web = role_spec;
                    } else {
                        line(
                            format!("servers.{role}"),
                            imported(&format!("workers.{role}")),
                        );
                        k.roles.insert(role, role_spec);
                    }
                }
            }
            "env" => {
                if let Value::Object(env) = value {
                    for ek in env.keys() {
                        let path = format!("env.{ek}");
                        match ek.as_str() {
                            "clear" => line(path, imported("env")),
                            "secret" => line(
                                path,
                                imported(
                                    "secrets (names; values from `.kamal/secrets` by `kubectl rails secrets import`)",
                                ),
                            ),
                            "tags" => line(
                                path,
                                unsupported(
                                    "tags give env to some hosts: give a process its own `env` under `workers.<name>.env`",
                                ),
                            ),
                            _ => line(path, imported("env")),
                        }
                    }
                }
            }
            "registry" => {
                if let Value::Object(r) = value {
                    for rk in r.keys() {
                        let path = format!("registry.{rk}");
                        match rk.as_str() {
                            "server" => line(path, imported("registry.server")),
                            "username" => line(
                                path,
                                imported("the pull secret (`kubectl rails secrets registry`)"),
                            ),
                            "password" => line(
                                path,
                                not_needed(
                                    "`kubectl rails secrets registry` stores it in the pull secret",
                                ),
                            ),
                            _ => line(
                                path,
                                unsupported("a registry key kubectl-rails does not know"),
                            ),
                        }
                    }
                }
            }
            "proxy" => {
                if let Value::Object(p) = value {
                    for pk in p.keys() {
                        let path = format!("proxy.{pk}");
                        match pk.as_str() {
                            "host" | "hosts" => line(path, imported("ingress.hosts")),
                            "ssl" => line(
                                path,
                                imported("ingress.tls (cert-manager issues the certificate)"),
                            ),
                            "app_port" => line(path, imported("web.port")),
                            "healthcheck" => {
                                let hc = p.get("healthcheck").and_then(Value::as_object);
                                for hk in hc
                                    .map(|h| h.keys().cloned().collect::<Vec<_>>())
                                    .unwrap_or_default()
                                {
                                    let path = format!("proxy.healthcheck.{hk}");
                                    match hk.as_str() {
                                        "path" => line(path, imported("web.health_path")),
                                        "interval" | "timeout" => line(
                                            path,
                                            not_needed(
                                                "the probes' periods and timeouts are the plugin's (startup, readiness, liveness)",
                                            ),
                                        ),
                                        _ => line(
                                            path,
                                            unsupported(
                                                "a health check key kubectl-rails does not know",
                                            ),
                                        ),
                                    }
                                }
                            }
                            "response_timeout" => line(path, imported("ingress.timeout")),
                            "forward_headers" => line(
                                path,
                                not_needed("the ingress controller sets the X-Forwarded-* headers"),
                            ),
                            "buffering" | "logging" => {
                                line(path, not_needed("the ingress controller's settings"))
                            }
                            _ => line(
                                path,
                                unsupported(
                                    "a proxy key kubectl-rails does not know: set it as an ingress annotation by hand",
                                ),
                            ),
                        }
                    }
                }
            }
            "volumes" => line(key.clone(), imported("volume (the first one)")),
            "asset_path" => line(
                key.clone(),
                imported(
                    "assets.dir: `<app>-assets` pods serve this release's and the last releases' assets, so a page of either release finds its own during a rollout",
                ),
            ),
            "aliases" => {
                if let Value::Object(aliases) = value {
                    for (name, v) in aliases {
                        let path = format!("aliases.{name}");
                        // Kamal allows `seed_all`; a `kubectl rails` command is a lowercase
                        // name, so it becomes `seed-all`, and the report says so.
                        let Some(valid) = crate::validate::suggest_label(name, 63) else {
                            line(path, unsupported("the alias name has no letters to keep"));
                            continue;
                        };
                        match text_of(v).map(|t| alias_to_command(&t)) {
                            Some(Ok(command)) => {
                                let renamed = if &valid == name {
                                    String::new()
                                } else {
                                    format!(" (renamed from `{name}`)")
                                };
                                line(
                                    path,
                                    imported(&format!(
                                        "aliases.{valid}: `kubectl rails {command}`{renamed}"
                                    )),
                                );
                                k.aliases.insert(valid, command);
                            }
                            Some(Err(why)) => line(path, unsupported(&why)),
                            None => line(path, unsupported("an alias is a command line")),
                        }
                    }
                }
            }
            "accessories" => {
                if let Value::Object(acc) = value {
                    for (name, body) in acc {
                        let image = body.get("image").and_then(text_of);
                        line(
                            format!("accessories.{name}"),
                            unsupported(&format!(
                                "not deployed ({}): give the app a managed service's URL as a secret, or run `kubectl rails accessory add postgres|redis` for one in the cluster",
                                image.as_deref().unwrap_or("no image")
                            )),
                        );
                        k.accessories.insert(name.clone(), Accessory { image });
                    }
                }
            }
            "builder" => {
                let Value::Object(keys) = value else {
                    line(key.clone(), imported("build"));
                    continue;
                };
                for sub in keys.keys() {
                    let name = format!("builder.{sub}");
                    let fate = match sub.as_str() {
                        "arch" => imported(
                            "build.platforms and placement.node_selector (kubernetes.io/arch)",
                        ),
                        "dockerfile" => imported("build.dockerfile"),
                        "context" => imported("build.context"),
                        "target" => imported("build.target"),
                        "args" => imported("build.args"),
                        "secrets" => {
                            imported("build.secrets (their values stay in the environment)")
                        }
                        "cache" if k.builder.cache_image.is_some() => imported("build.cache"),
                        "cache" => unsupported(
                            "only a `registry` cache with an `image` carries over: set `build.cache` to an image reference",
                        ),
                        "remote" => not_needed(
                            "a remote builder is the cluster's: `build.builder: cluster` builds in a BuildKit pod, as does a machine without a builder",
                        ),
                        "local" | "driver" => not_needed(
                            "the build runs with a builder on this machine, or in the cluster (`build.builder`, `--builder`)",
                        ),
                        _ => unsupported("set it in the builder's own configuration"),
                    };
                    line(name, fate);
                }
            }
            "boot" => line(
                key.clone(),
                not_needed(
                    "a rolling update never takes a ready pod away first (maxUnavailable 0)",
                ),
            ),
            "readiness_delay" => line(
                key.clone(),
                not_needed(
                    "the readiness probe on the health path decides when a pod gets traffic",
                ),
            ),
            "deploy_timeout" => line(
                key.clone(),
                unsupported(&format!(
                    "pass `kubectl rails deploy --timeout {}s`",
                    value.as_u64().unwrap_or(0)
                )),
            ),
            "drain_timeout" => line(
                key.clone(),
                imported("web.drain_timeout (the pods' termination grace)"),
            ),
            "retain_containers" => line(
                key.clone(),
                not_needed(
                    "`history_limit` keeps the release records; the registry keeps the images",
                ),
            ),
            "hooks_path" => line(key.clone(), imported("hooks_path")),
            "primary_role" => line(
                key.clone(),
                not_needed("`web` is the process the ingress and the migration follow"),
            ),
            "allow_empty_roles" => line(
                key.clone(),
                not_needed("a process with 0 replicas is allowed"),
            ),
            "ssh" | "sshkit" | "minimum_version" | "run_directory" | "error_pages_path"
            | "labels" | "logging" => line(
                key.clone(),
                not_needed("about Kamal's own servers, not the app"),
            ),
            _ => line(
                key.clone(),
                unsupported("a key kubectl-rails does not know"),
            ),
        }
    }
    k.report = report;
    Ok(k)
}

/// What a destination file (`config/deploy.<destination>.yml`) says: only the keys it holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    pub image: Option<String>,
    pub registry_server: Option<String>,
    /// How many web servers it lists: one replica each.
    pub web_hosts: Option<usize>,
    pub hosts: Vec<String>,
    pub ssl: Option<bool>,
    pub env_clear: BTreeMap<String, String>,
    pub env_secret: Vec<String>,
    /// `builder.arch`: the destination's nodes must have it.
    pub arch: Option<String>,
    /// Roles other than `web` that the destination changes (`cmd`, `env`).
    pub roles: BTreeMap<String, Role>,
}

/// Reads a Kamal destination file, which overrides only some keys of `deploy.yml`.
pub fn parse_partial(text: &str) -> Result<Partial, String> {
    let root: Value = serde_saphyr::from_str(text).map_err(|e| e.without_snippet().to_string())?;
    let at = |path: &[&str]| path.iter().try_fold(&root, |v, k| v.get(k));
    let web_hosts =
        match at(&["servers", "web"]).or_else(|| at(&["servers"]).filter(|v| v.is_array())) {
            Some(Value::Array(hosts)) => Some(hosts.len()),
            Some(Value::Object(web)) => match web.get("hosts") {
                Some(Value::Array(hosts)) => Some(hosts.len()),
                _ => None,
            },
            _ => None,
        };
    let (env_clear, env_secret) = env_of(at(&["env"]));
    let mut hosts: Vec<String> = at(&["proxy", "host"])
        .and_then(text_of)
        .into_iter()
        .collect();
    if let Some(Value::Array(h)) = at(&["proxy", "hosts"]) {
        hosts.extend(h.iter().filter_map(text_of));
    }
    let mut roles = BTreeMap::new();
    if let Some(Value::Object(servers)) = at(&["servers"]) {
        for (role, body) in servers {
            if role == "web" {
                continue;
            }
            if let Value::Object(b) = body {
                let (env_clear, env_secret) = env_of(b.get("env"));
                let cmd = b.get("cmd").and_then(text_of);
                if cmd.is_some() || !env_clear.is_empty() || !env_secret.is_empty() {
                    roles.insert(
                        role.clone(),
                        Role {
                            cmd,
                            env_clear,
                            env_secret,
                            ..Role::default()
                        },
                    );
                }
            }
        }
    }
    Ok(Partial {
        arch: match at(&["builder", "arch"]) {
            Some(Value::Array(a)) if a.len() == 1 => a.first().and_then(text_of),
            Some(v) => text_of(v),
            None => None,
        },
        roles,
        image: at(&["image"]).and_then(text_of),
        registry_server: at(&["registry", "server"]).and_then(text_of),
        web_hosts,
        hosts,
        ssl: at(&["proxy", "ssl"]).and_then(Value::as_bool),
        env_clear,
        env_secret,
    })
}

/// The report as text: one line per key, `key  fate  detail`.
pub fn report_text(lines: &[ImportLine]) -> String {
    let width = lines.iter().map(|l| l.key.len()).max().unwrap_or(0);
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!(
            "  {:<width$}  {:<13}  {}\n",
            l.key,
            l.fate.label(),
            l.fate.detail()
        ));
    }
    out.push_str(&format!(
        "  hooks{}  {HOOKS_NOTE}\n",
        " ".repeat(width.saturating_sub(3))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_commands_or_say_why_not() {
        let cases = [
            (
                "app exec --interactive --reuse \"bin/rails console\"",
                Ok("console --reuse"),
            ),
            (
                "app exec -i --reuse \"bin/rails dbconsole --include-password\"",
                Ok("dbconsole --reuse"),
            ),
            ("app exec --interactive --reuse \"bash\"", Ok("shell")),
            ("app logs -f", Ok("logs -f")),
            ("app logs --lines 50 -r job", Ok("logs --tail 50 -p job")),
            (
                "app exec --reuse \"bin/rails runner 'puts 1'\"",
                Ok("exec -- bin/rails runner 'puts 1'"),
            ),
            ("app exec \"bin/rails about\"", Ok("run -- bin/rails about")),
        ];
        for (kamal, want) in cases {
            assert_eq!(alias_to_command(kamal).as_deref(), want, "{kamal}");
        }
        assert!(alias_to_command("accessory reboot db").is_err());
        assert!(
            alias_to_command("app logs --since 1h")
                .unwrap_err()
                .contains("--since")
        );
    }

    #[test]
    fn role_options_become_resources() {
        let k = parse("service: s\nimage: i\nservers:\n  web:\n    hosts: [a]\n    options:\n      memory: 2g\n      cpus: 2\n      ulimit: nofile=1024\n  job:\n    cmd: bin/jobs\n    options:\n      memory: 512m\n").unwrap();
        assert_eq!(
            (k.web.memory.as_deref(), k.web.cpus.as_deref()),
            (Some("2Gi"), Some("2"))
        );
        assert_eq!(k.roles["job"].memory.as_deref(), Some("512Mi"));
        let fate = |key: &str| {
            k.report
                .iter()
                .find(|l| l.key == key)
                .map(|l| l.fate.label())
        };
        assert_eq!(fate("servers.web.options.memory"), Some("imported"));
        assert_eq!(fate("servers.web.options.ulimit"), Some("not supported"));
        for (docker, kube) in [
            ("512m", Some("512Mi")),
            ("2G", Some("2Gi")),
            ("1024", Some("1024")),
            ("x", None),
        ] {
            assert_eq!(docker_memory(docker).as_deref(), kube, "{docker}");
        }
    }

    #[test]
    fn shell_words_group_quotes() {
        assert_eq!(
            shell_words("app exec -i \"bin/rails console\" 'a b' c"),
            ["app", "exec", "-i", "bin/rails console", "a b", "c"]
        );
        assert_eq!(shell_words("x ''"), ["x", ""]);
    }

    #[test]
    fn roles_proxy_env() {
        let k = parse(
            "service: shop\nimage: acme/shop\nservers:\n  web:\n    - 10.0.0.1\n  job:\n    hosts: [10.0.0.1]\n    cmd: bin/jobs\n    env:\n      clear: {JOB_CONCURRENCY: 3}\nproxy:\n  ssl: true\n  host: shop.example.com\n  app_port: 80\nenv:\n  clear:\n    DB_HOST: db\n  secret:\n    - RAILS_MASTER_KEY\nvolumes:\n  - \"shop_storage:/rails/storage\"\ndrain_timeout: 45\n",
        )
        .unwrap();
        assert_eq!(k.service.as_deref(), Some("shop"));
        assert_eq!(k.roles["job"].cmd.as_deref(), Some("bin/jobs"));
        assert_eq!(k.roles["job"].env_clear["JOB_CONCURRENCY"], "3");
        assert_eq!(k.hosts, ["shop.example.com"]);
        assert!(k.ssl);
        assert_eq!(k.env_secret, ["RAILS_MASTER_KEY"]);
        assert_eq!(k.volumes, ["shop_storage:/rails/storage"]);
        assert_eq!(k.drain_timeout, Some(45));
        let fate = |key: &str| {
            k.report
                .iter()
                .find(|l| l.key == key)
                .map(|l| l.fate.label())
        };
        assert_eq!(fate("servers.job.cmd"), Some("imported"));
        assert_eq!(fate("servers.web"), Some("not needed"));
        assert_eq!(fate("drain_timeout"), Some("imported"));
    }

    #[test]
    fn an_unknown_key_is_reported_not_dropped() {
        let k = parse("service: a\nimage: b\nfrobnicate: true\n").unwrap();
        assert_eq!(
            k.report.iter().find(|l| l.key == "frobnicate").unwrap(),
            &ImportLine {
                key: "frobnicate".into(),
                fate: Fate::Unsupported("a key kubectl-rails does not know".into())
            }
        );
    }
}
