//! `kubectl rails secrets`: set, import, list and unset app secrets, and write the registry pull
//! secret. Values go from the user to the cluster and are never printed.

mod import;
mod registry;
mod set;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use k8s_openapi::jiff::{Timestamp, Unit};
use kubectl_rails_core::AppSpec;
use kubectl_rails_secrets::AppSecrets;

pub(crate) use import::import_sources;
pub(crate) use registry::write_registry;

use crate::cli::{OutputFormat, SecretsCommand};
use crate::context::Context;
use crate::namespace;
use crate::printer::Printer;

/// The time of a change, as the Secret's annotations record it.
pub(crate) fn now() -> String {
    Timestamp::now()
        .round(Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

pub(crate) async fn run(command: &SecretsCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let formats: &[OutputFormat] = match command {
        SecretsCommand::List => &[OutputFormat::Json, OutputFormat::Yaml],
        _ => &[],
    };
    let format = settings.output(formats)?;
    // Bad input is refused before the cluster is contacted, so nothing is written.
    let values = match command {
        SecretsCommand::Set {
            pairs, from_file, ..
        } => Some(set::values_to_set(pairs, from_file.as_deref(), settings)?),
        SecretsCommand::Unset { keys, .. } => {
            for k in keys {
                set::check_key(k)?;
            }
            None
        }
        _ => None,
    };
    let spec = ctx.spec()?;
    let credentials = match command {
        SecretsCommand::Registry {
            server,
            username,
            password_stdin,
            docker_config,
        } => Some(registry::registry_credentials(
            ctx,
            spec,
            server.as_deref(),
            username.as_deref(),
            *password_stdin,
            docker_config.as_deref(),
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
            Some(dir) => import::import_manifests(ctx, dir, spec)?,
            None => import_sources(
                ctx,
                spec,
                from_env.as_deref(),
                *allow_commands,
                true,
                *timeout,
            )?,
        }),
        _ => None,
    };
    let target = ctx.target().await?;
    let store = AppSecrets::new(&target.conn.client, &target.namespace, &spec.name);
    if !matches!(command, SecretsCommand::List | SecretsCommand::Unset { .. }) {
        // Secrets come before the first deploy, so they may be the first thing in the namespace.
        namespace::ensure(ctx, false).await?;
    }
    match command {
        SecretsCommand::Set { restart, .. } => {
            let values = values.unwrap_or_default();
            for (k, v) in &values {
                printer.mask_secret(k, v.as_bytes());
            }
            let changed = store.set(&values, &now()).await?;
            say_changed(printer, &store.name, &changed, values.len());
            set::move_out_of_env(ctx, spec, values.keys())?;
            after_change(spec, &store, &changed, *restart, printer).await
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
            after_change(spec, &store, &removed, *restart, printer).await
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
            after_change(spec, &store, &changed, *restart, printer).await
        }
        SecretsCommand::Registry { .. } => {
            let creds = credentials.expect("resolved above");
            write_registry(ctx, spec, &store, &creds).await
        }
    }
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
    let checksum = store.pod_checksum(spec).await?;
    for process in spec.process_names() {
        let name = spec.deployment_name(&process);
        if store.roll(&name, &checksum).await? {
            printer.step(&format!("restarting `{name}` with the new values"));
        } else {
            printer.note(&format!("`{name}` is not deployed yet"));
        }
    }
    Ok(())
}
