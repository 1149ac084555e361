//! `kubectl rails secrets`: set, import, list and unset app secrets, and write the registry pull
//! secret. Values go from the user to the cluster and are never printed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::{Timestamp, Unit};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::dotenv::{self, looks_secret};
use kubectl_rails_core::render::{self, CHECKSUM_ANNOTATION, RenderInputs};
use kubectl_rails_core::validate::is_env_key;
use kubectl_rails_kube::api_err;
use kubectl_rails_secrets::kamal::{self, KamalValue};
use kubectl_rails_secrets::{AppSecrets, docker, manifests};

use crate::cli::{OutputFormat, SecretsCommand};
use crate::exit;
use crate::printer::Printer;
use crate::settings::{Settings, Target};

pub(crate) fn now() -> String {
    Timestamp::now()
        .round(Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

pub(crate) async fn run(
    command: &SecretsCommand,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let formats: &[OutputFormat] = match command {
        SecretsCommand::List => &[OutputFormat::Json, OutputFormat::Yaml],
        _ => &[],
    };
    let format = settings.output(formats)?;
    // Bad input is refused before the cluster is contacted, so nothing is written.
    let values = match command {
        SecretsCommand::Set {
            pairs, from_file, ..
        } => Some(values_to_set(pairs, from_file.as_deref(), settings)?),
        SecretsCommand::Unset { keys, .. } => {
            for k in keys {
                check_key(k)?;
            }
            None
        }
        _ => None,
    };
    let spec = settings.load_spec(printer)?.spec;
    let credentials = match command {
        SecretsCommand::Registry {
            server,
            username,
            password_stdin,
            docker_config,
        } => Some(registry_credentials(
            &spec,
            server.as_deref(),
            username.as_deref(),
            *password_stdin,
            docker_config.as_deref(),
            settings,
            printer,
        )?),
        _ => None,
    };
    // Local sources are read (and a bad line reported) before the cluster is needed.
    let imported = match command {
        SecretsCommand::Import {
            from_env,
            from_manifests,
            allow_commands,
            timeout,
            ..
        } => Some(match from_manifests {
            Some(dir) => import_manifests(dir, &spec, printer)?,
            None => import_sources(
                from_env.as_deref(),
                *allow_commands,
                true,
                *timeout,
                &spec,
                settings,
                printer,
            )?,
        }),
        _ => None,
    };
    let target = settings.target(Some(&spec)).await?;
    let store = AppSecrets::new(&target.conn.client, &target.namespace, &spec.name);
    if !matches!(command, SecretsCommand::List | SecretsCommand::Unset { .. }) {
        // Secrets come before the first deploy, so they may be the first thing in the namespace.
        crate::commands::deploy::ensure_namespace(&target, settings, printer, false).await?;
    }
    match command {
        SecretsCommand::Set { restart, .. } => {
            let values = values.unwrap_or_default();
            for (k, v) in &values {
                printer.mask_secret(k, v.as_bytes());
            }
            let changed = store.set(&values, &now()).await?;
            say_changed(printer, &store.name, &changed, values.len());
            move_out_of_env(&spec, values.keys(), settings, printer)?;
            after_change(&target, &spec, &store, &changed, *restart, printer).await
        }
        SecretsCommand::Unset { keys, restart } => {
            let removed = store.unset(keys).await?;
            for k in keys.iter().filter(|k| !removed.contains(k)) {
                printer.note(&format!("`{k}` was not set"));
            }
            if !removed.is_empty() {
                printer.step(&format!(
                    "removed {} from Secret `{}`",
                    removed.join(", "),
                    store.name
                ));
            }
            let named: Vec<&String> = removed
                .iter()
                .filter(|k| spec.secrets.contains(k))
                .collect();
            if !named.is_empty() {
                printer.warn(&format!(
                    "the spec still names {}: deploys will stop at preflight until they are set or removed from `secrets:`",
                    named.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            after_change(&target, &spec, &store, &removed, *restart, printer).await
        }
        SecretsCommand::List => {
            let keys = store.list(&spec.secrets).await?;
            match format {
                Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&keys)?)?,
                Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&keys)?)?,
                _ => {
                    let mut t = Table::new();
                    t.load_preset(NOTHING)
                        .set_header(vec!["KEY", "DIGEST", "CHANGED", "STATE"]);
                    for k in &keys {
                        let state = match (k.missing, spec.secrets.contains(&k.key)) {
                            (true, _) => "missing: set it with `kubectl rails secrets set`",
                            (false, true) => "set",
                            (false, false) => "set, not named in the spec",
                        };
                        t.add_row(vec![
                            k.key.clone(),
                            k.digest.clone().unwrap_or_else(|| "-".into()),
                            k.changed.clone().unwrap_or_else(|| "-".into()),
                            state.to_string(),
                        ]);
                    }
                    printer.out(&format!(
                        "Secret {} in namespace {}\n\n{t}",
                        store.name, target.namespace
                    ))?;
                }
            }
            Ok(())
        }
        SecretsCommand::Import { restart, .. } => {
            let values = imported.unwrap_or_default();
            if values.is_empty() {
                printer.info("nothing to import");
                return Ok(());
            }
            for (k, v) in &values {
                printer.mask_secret(k, v.as_bytes());
            }
            let changed = store.set(&values, &now()).await?;
            say_changed(printer, &store.name, &changed, values.len());
            after_change(&target, &spec, &store, &changed, *restart, printer).await
        }
        SecretsCommand::Registry { .. } => {
            let creds = credentials.expect("resolved above");
            write_registry(&spec, &target, &store, &creds, printer).await
        }
    }
}

fn check_key(key: &str) -> anyhow::Result<()> {
    if is_env_key(key) {
        Ok(())
    } else {
        Err(exit::usage(
            format!("`{key}` is not a valid environment variable name"),
            Some(
                "use letters, digits and `_`, not starting with a digit, such as `DATABASE_URL`"
                    .into(),
            ),
        ))
    }
}

/// `KEY=VALUE` pairs, `KEY` asked with hidden input, and `--from-file`.
fn values_to_set(
    pairs: &[String],
    from_file: Option<&Path>,
    settings: &Settings,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    if let Some(path) = from_file {
        let text = fs_err::read_to_string(path).map_err(|e| exit::failure(e.to_string(), None))?;
        let entries = dotenv::parse(&text)
            .map_err(|e| exit::failure(format!("cannot parse `{}` {e}", path.display()), None))?;
        values.extend(entries.into_iter().map(|e| (e.key, e.value)));
    }
    for pair in pairs {
        match pair.split_once('=') {
            Some((key, value)) => {
                check_key(key)?;
                values.insert(key.to_string(), value.to_string());
            }
            None => {
                check_key(pair)?;
                if !settings.prompter.interactive {
                    return Err(exit::usage(
                        format!("no value for `{pair}`, and nobody is at a terminal to type it"),
                        Some(format!("pass `{pair}=VALUE`, or `--from-file FILE`")),
                    ));
                }
                let value = settings.prompter.password(&format!("Value of {pair}"))?;
                values.insert(pair.clone(), value);
            }
        }
    }
    if values.is_empty() {
        return Err(exit::usage(
            "nothing to set",
            Some("pass `KEY=VALUE`, `KEY`, or `--from-file FILE`".into()),
        ));
    }
    Ok(values)
}

/// Keys just set as secrets that the spec had as plain env move to `secrets:`, so the plain
/// value leaves the committed file and the pods read the Secret.
fn move_out_of_env<'a>(
    spec: &AppSpec,
    keys: impl Iterator<Item = &'a String>,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let moving: Vec<&String> = keys.filter(|k| spec.env.contains_key(*k)).collect();
    if moving.is_empty() {
        return Ok(());
    }
    let mut text = fs_err::read_to_string(&settings.spec_path)?;
    for key in &moving {
        let edited = kubectl_rails_core::file::edit::remove(&text, &["env", key])
            .and_then(|t| kubectl_rails_core::file::edit::add_list_item(&t, "secrets", key));
        text = edited.ok_or_else(|| {
            exit::failure(
                format!(
                    "cannot move `{key}` from `env` to `secrets:` in `{}`: the spec is not laid out as `kubectl rails init` writes it",
                    settings.spec_path.display()
                ),
                Some("move it by hand".into()),
            )
        })?;
    }
    kubectl_rails_core::file::parse(&text, &settings.spec_path)?;
    kubectl_rails_core::file::write_atomic(&settings.spec_path, &text)?;
    printer.step(&format!(
        "moved {} from plain `env` to `secrets:` in `{}`",
        moving
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        settings.spec_path.display()
    ));
    Ok(())
}

fn say_changed(printer: &Printer, secret: &str, changed: &[String], asked: usize) {
    if changed.is_empty() {
        printer.step(&format!(
            "Secret `{secret}` already holds these values; nothing changed"
        ));
    } else {
        printer.step(&format!(
            "set {} in Secret `{secret}` ({} unchanged)",
            changed.join(", "),
            asked - changed.len()
        ));
    }
}

/// Says what is still missing, and rolls the pods at once with `--restart`.
async fn after_change(
    target: &Target,
    spec: &AppSpec,
    store: &AppSecrets,
    changed: &[String],
    restart: bool,
    printer: &Printer,
) -> anyhow::Result<()> {
    let missing: Vec<String> = store
        .list(&spec.secrets)
        .await?
        .into_iter()
        .filter(|k| k.missing)
        .map(|k| k.key)
        .collect();
    if !missing.is_empty() {
        printer.note(&format!("still missing: {}", missing.join(", ")));
    }
    if changed.is_empty() {
        return Ok(());
    }
    if !restart {
        printer.info(
            "pods pick up the change on the next `kubectl rails deploy` (or now, with `--restart`)",
        );
        return Ok(());
    }
    let data = store.get().await?.and_then(|s| s.data).unwrap_or_default();
    let digest = kubectl_rails_core::digest::secret_digest(&data);
    let checksum = render::config_checksum(
        spec,
        &RenderInputs {
            secret_digest: Some(digest),
            ..RenderInputs::default()
        },
    );
    let api: Api<Deployment> = Api::namespaced(target.conn.client.clone(), &target.namespace);
    let patch = serde_json::json!({ "spec": { "template": { "metadata": { "annotations": { CHECKSUM_ANNOTATION: checksum } } } } });
    for process in spec.process_names() {
        let name = spec.deployment_name(&process);
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => printer.step(&format!("restarting `{name}` with the new values")),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                printer.note(&format!("`{name}` is not deployed yet"))
            }
            Err(e) => return Err(api_err(format!("restart Deployment `{name}`"))(e).into()),
        }
    }
    Ok(())
}

/// Values from `.env`, `config/master.key` and `.kamal/secrets`, for the keys the spec names.
/// `confirm_master_key`: ask before taking the master key (a caller that asks about all the
/// values at once passes false).
pub(crate) fn import_sources(
    from_env: Option<&Path>,
    allow_commands: bool,
    confirm_master_key: bool,
    command_timeout: std::time::Duration,
    spec: &AppSpec,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<BTreeMap<String, String>> {
    let dir = &settings.global.app_dir;
    let mut values = BTreeMap::new();
    let mut not_named = Vec::new();
    let env_path = from_env
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(".env"));
    match fs_err::read_to_string(&env_path) {
        Ok(text) => {
            let entries = dotenv::parse(&text).map_err(|e| {
                exit::failure(format!("cannot parse `{}` {e}", env_path.display()), None)
            })?;
            for e in entries {
                if spec.secrets.contains(&e.key) {
                    values.insert(e.key, e.value);
                } else if !spec.env.contains_key(&e.key) {
                    not_named.push(e.key);
                }
            }
            printer.step(&format!("read `{}`", env_path.display()));
        }
        Err(_) if from_env.is_none() => printer.note("no `.env` in the app folder"),
        Err(e) => {
            return Err(exit::failure(
                e.to_string(),
                Some("check the path given to `--from-env`".into()),
            ));
        }
    }
    if !not_named.is_empty() {
        printer.note(&format!(
            "not imported, the spec does not name them as secrets: {} (add them under `secrets:` to import, or under `env:` if they are not secret)",
            not_named.join(", ")
        ));
    }
    // With per-environment credentials, production reads `config/credentials/production.key`.
    let key_file = if dir.join("config/credentials/production.yml.enc").is_file() {
        "config/credentials/production.key"
    } else {
        "config/master.key"
    };
    if !values.contains_key("RAILS_MASTER_KEY")
        && spec.secrets.iter().any(|k| k == "RAILS_MASTER_KEY")
        && let Ok(key) = fs_err::read_to_string(dir.join(key_file))
    {
        let take = !settings.prompter.interactive
            || !confirm_master_key
            || settings.prompter.confirm(
                &format!("Import {key_file} as RAILS_MASTER_KEY"),
                settings.global.yes,
            )?;
        if take {
            values.insert("RAILS_MASTER_KEY".into(), key.trim().to_string());
            printer.step(&format!("read `{key_file}` as RAILS_MASTER_KEY"));
        }
    }
    if let Ok(text) = fs_err::read_to_string(dir.join(".kamal/secrets")) {
        let lines = kamal::parse(&text)?;
        let wanted: Vec<String> = lines
            .iter()
            .filter(|l| spec.secrets.contains(&l.key) && !values.contains_key(&l.key))
            .map(|l| l.key.clone())
            .collect();
        // Lines are named by number and key, never by their text: it may hold a value.
        let commands: Vec<String> = lines
            .iter()
            .filter(|l| matches!(l.value, KamalValue::Command(_)))
            .map(|l| format!("line {}: {}", l.line, l.key))
            .collect();
        if !commands.is_empty() && !wanted.is_empty() {
            let run = allow_commands
                && settings.prompter.confirm(
                    &format!(
                        "Run `.kamal/secrets` in one shell, as Kamal does (it runs commands on {})",
                        commands.join(", ")
                    ),
                    settings.global.yes,
                )?;
            if run {
                printer.step(&format!(
                    "running `.kamal/secrets` in one shell (at most {}s)",
                    command_timeout.as_secs()
                ));
                values.extend(kamal::evaluate(dir, &lines, &wanted, command_timeout)?);
                return Ok(values);
            }
            printer.note(&format!(
                "skipped `.kamal/secrets` lines that run commands (pass `--allow-commands` to run them): {}",
                commands.join("; ")
            ));
        }
        for line in lines {
            if !wanted.contains(&line.key) {
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
                    Err(_) => printer.note(&format!(
                        "`.kamal/secrets` line {}: `{}` refers to `${var}`, which is not set",
                        line.line, line.key
                    )),
                },
                KamalValue::Command(_) => {}
            }
        }
    }
    Ok(values)
}

/// Plain `env` values of hand-written manifests: secrets move into the Secret.
fn import_manifests(
    dir: &Path,
    spec: &AppSpec,
    printer: &Printer,
) -> anyhow::Result<BTreeMap<String, String>> {
    let found = manifests::plain_env(dir)?;
    let mut values = BTreeMap::new();
    let mut plain = Vec::new();
    for e in &found {
        if spec.secrets.contains(&e.key) || looks_secret(&e.key) {
            values.insert(e.key.clone(), e.value.clone());
        } else {
            plain.push(e.key.as_str());
        }
    }
    if !values.is_empty() {
        printer.info(
            "now delete these plain-text values from the manifests (they live in the Secret):",
        );
        for e in found.iter().filter(|e| values.contains_key(&e.key)) {
            printer.info(&format!("  {}:{}  {}", e.file.display(), e.line, e.key));
        }
        let unnamed: Vec<&String> = values
            .keys()
            .filter(|k| !spec.secrets.contains(k))
            .collect();
        if !unnamed.is_empty() {
            printer.note(&format!(
                "add these to `secrets:` in the spec so that pods get them: {}",
                unnamed
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !plain.is_empty() {
        printer.note(&format!(
            "not secret, keep them under `env:` in the spec: {}",
            plain.join(", ")
        ));
    }
    Ok(values)
}

/// Registry credentials from flags, stdin, a prompt or the Docker config: all before the
/// cluster is contacted, so a bad source writes nothing.
fn registry_credentials(
    spec: &AppSpec,
    server: Option<&str>,
    username: Option<&str>,
    password_stdin: bool,
    docker_config: Option<&Path>,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<docker::Credentials> {
    let image_host = spec.image.registry_host().map(docker::normalize_server);
    let server = server
        .map(str::to_string)
        .or_else(|| spec.registry.as_ref().map(|r| r.server.clone()))
        .or_else(|| image_host.clone())
        .ok_or_else(|| {
            exit::usage(
                "which registry? the image names none",
                Some("pass `--server`, such as `--server ghcr.io`".into()),
            )
        })?;
    let server = docker::normalize_server(&server);
    let wanted_image_host = image_host.unwrap_or_else(|| docker::DOCKER_HUB.to_string());
    if wanted_image_host != server {
        printer.warn(&format!(
            "registry `{server}` is not the host of the image `{}` (`{wanted_image_host}`): pods will not use these credentials for it",
            spec.image.reference()
        ));
    }
    let creds = match (username, password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                return Err(exit::usage("the password read from stdin is empty", Some("pipe the token in: `echo \"$TOKEN\" | kubectl rails secrets registry --username USER --password-stdin`".into())));
            }
            docker::Credentials {
                server: server.clone(),
                username: user.to_string(),
                password,
            }
        }
        (None, true) => return Err(exit::usage("`--password-stdin` needs `--username`", None)),
        (Some(user), false) => {
            if !settings.prompter.interactive {
                return Err(exit::usage(
                    "no password, and nobody is at a terminal to type it",
                    Some("pass `--password-stdin`".into()),
                ));
            }
            let password = settings
                .prompter
                .password(&format!("Password or token for {user}@{server}"))?;
            docker::Credentials {
                server: server.clone(),
                username: user.to_string(),
                password,
            }
        }
        (None, false) => {
            let path = docker_config
                .map(Path::to_path_buf)
                .or_else(|| {
                    docker::config_path(
                        std::env::var_os("DOCKER_CONFIG").map(Into::into),
                        std::env::home_dir(),
                    )
                })
                .ok_or_else(|| {
                    exit::usage(
                        "no Docker config to read",
                        Some("pass `--docker-config` or `--username`".into()),
                    )
                })?;
            printer.step(&format!(
                "reading credentials for `{server}` from `{}`",
                path.display()
            ));
            docker::lookup(&path, &server)?
        }
    };
    Ok(creds)
}

pub(crate) async fn write_registry(
    spec: &AppSpec,
    target: &Target,
    store: &AppSecrets,
    creds: &docker::Credentials,
    printer: &Printer,
) -> anyhow::Result<()> {
    let server = &creds.server;
    let name = spec
        .registry
        .as_ref()
        .map(|r| r.pull_secret.clone())
        .unwrap_or_else(|| format!("{}-registry", spec.name));
    store
        .write_pull_secret(&name, docker::dockerconfigjson(creds))
        .await?;
    printer.step(&format!(
        "wrote pull secret `{name}` for `{server}` (user `{}`) in namespace `{}`",
        creds.username, target.namespace
    ));
    if spec.registry.is_none() {
        printer.note(&format!(
            "the spec has no `registry:`; add `registry: {{server: {server}, pull_secret: {name}}}` so pods pull with it"
        ));
    }
    Ok(())
}
