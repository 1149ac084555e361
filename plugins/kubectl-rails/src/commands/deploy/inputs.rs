//! What a deploy needs from the user that the cluster lacks: the namespace, the app Secret's
//! keys and the pull secret. At a terminal each is asked for (or imported from the app folder)
//! and the deploy goes on in the same run; without one, a single error names every missing item
//! and the commands that set it (exit 2), before anything changes.

use std::collections::BTreeMap;

use kubectl_rails_core::AppSpec;
use kubectl_rails_deploy::{MissingInputs, missing_inputs};
use kubectl_rails_secrets::{AppSecrets, docker};

use crate::commands::secrets;
use crate::context::Context;
use crate::exit;
use crate::namespace;
use crate::settings::Settings;

/// Makes sure the namespace, the app Secret's keys and the pull secret are there, asking for
/// what is missing at a terminal. `registry_user` is a user name `init` already asked for.
pub(crate) async fn resolve(
    ctx: &Context<'_>,
    spec: &AppSpec,
    registry_user: Option<String>,
) -> anyhow::Result<()> {
    let (settings, target) = (ctx.settings, ctx.target().await?);
    let client = &target.conn.client;
    let ns = &target.namespace;
    let ns_exists = namespace::exists(ctx).await?;
    let missing = if ns_exists {
        missing_inputs(client, ns, spec).await?
    } else {
        MissingInputs::all(spec)
    };
    if !settings.prompter.interactive
        && ((!ns_exists && !settings.global.yes) || !missing.is_empty())
    {
        return Err(nobody_to_ask(spec, ns, ns_exists, &missing, settings));
    }
    if !ns_exists {
        namespace::ensure(ctx, false).await?;
    }
    if !missing.secret_keys.is_empty() {
        fill_secret(ctx, spec, &missing.secret_keys).await?;
    }
    if let Some(registry) = &missing.pull_secret {
        let creds = pull_credentials(ctx, &registry.server, registry_user)?;
        let store = AppSecrets::new(client, ns, &spec.name);
        secrets::write_registry(ctx, spec, &store, &creds).await?;
    }
    Ok(())
}

/// One error for everything missing, with the command that sets each.
fn nobody_to_ask(
    spec: &AppSpec,
    ns: &str,
    ns_exists: bool,
    missing: &MissingInputs,
    settings: &Settings,
) -> anyhow::Error {
    let mut items = Vec::new();
    if !ns_exists {
        items.push(format!(
            "namespace `{ns}` does not exist: pass `--yes` to create it"
        ));
    }
    if !missing.secret_keys.is_empty() {
        items.push(format!(
            "Secret `{}` lacks {}: `kubectl rails secrets import` (from `.env`, `config/master.key`, `.kamal/secrets`) or `kubectl rails secrets set {}`",
            spec.secret_name(),
            missing.secret_keys.join(", "),
            missing.secret_keys.join(" ")
        ));
    }
    if let Some(r) = &missing.pull_secret {
        items.push(format!(
            "pull secret `{}` for `{}` is missing: `kubectl rails secrets registry --server {}`",
            r.pull_secret, r.server, r.server
        ));
    }
    let why = if settings.global.no_input {
        "`--no-input` is set"
    } else {
        "nobody is at a terminal to answer"
    };
    exit::usage(
        format!(
            "the deploy needs what it cannot ask for ({why}):\n  - {}",
            items.join("\n  - ")
        ),
        Some("set them with the commands above, then deploy again; nothing was changed".into()),
    )
}

/// Imports the missing keys the app folder holds (one question, names only), then asks for each
/// key still missing with hidden input. An empty answer stops the deploy.
async fn fill_secret(ctx: &Context<'_>, spec: &AppSpec, missing: &[String]) -> anyhow::Result<()> {
    let (settings, printer, target) = (ctx.settings, ctx.printer, ctx.target().await?);
    let store = AppSecrets::new(&target.conn.client, &target.namespace, &spec.name);
    let found: BTreeMap<String, String> = secrets::import_sources(
        ctx,
        spec,
        None,
        false,
        false,
        std::time::Duration::from_secs(60),
    )?
    .into_iter()
    .filter(|(k, _)| missing.contains(k))
    .collect();
    let mut values = BTreeMap::new();
    if !found.is_empty() {
        let keys: Vec<&str> = found.keys().map(String::as_str).collect();
        if settings.prompter.yes_no(
            &format!(
                "Import {} from the app folder into Secret `{}`?",
                keys.join(", "),
                store.name
            ),
            true,
        )? {
            values.extend(found);
        }
    }
    let still: Vec<&String> = missing
        .iter()
        .filter(|k| !values.contains_key(*k))
        .collect();
    for key in still {
        match settings
            .prompter
            .optional_password(&format!("Value of {key} (hidden; Enter to stop)"))?
        {
            Some(v) => {
                values.insert(key.clone(), v);
            }
            None => {
                return Err(exit::failure(
                    format!("Secret `{}` lacks {key}", store.name),
                    Some(format!(
                        "set it with `kubectl rails secrets set {key}`, then deploy again"
                    )),
                ));
            }
        }
    }
    let changed = store.set(&values, &secrets::now()).await?;
    printer.step(&format!(
        "set {} in Secret `{}`",
        changed.join(", "),
        store.name
    ));
    Ok(())
}

/// Credentials for the pull secret: the Docker config's login for the server (one yes), else a
/// user name (asked unless `init` just did) and a hidden password.
fn pull_credentials(
    ctx: &Context<'_>,
    server: &str,
    registry_user: Option<String>,
) -> anyhow::Result<docker::Credentials> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let server = docker::normalize_server(server);
    let config = docker::config_path(
        std::env::var_os("DOCKER_CONFIG").map(Into::into),
        std::env::home_dir(),
    );
    if registry_user.is_none()
        && let Some(path) = config.filter(|p| p.is_file())
        && let Ok(creds) = docker::lookup(&path, &server)
        && settings.prompter.yes_no(
            &format!(
                "Use your Docker login to `{server}` (user `{}`) for the pods' pull secret?",
                creds.username
            ),
            true,
        )?
    {
        return Ok(creds);
    }
    let username = match registry_user {
        Some(u) => u,
        None => settings.prompter.text(
            &format!("Registry user for `{server}`"),
            None,
            "--username of `kubectl rails secrets registry`",
            |s| {
                if s.is_empty() {
                    Err("a user name is needed".into())
                } else {
                    Ok(())
                }
            },
        )?,
    };
    let password = settings
        .prompter
        .password(&format!("Password or token for {username}@{server}"))?;
    printer.debug(&format!("pull secret for `{server}` as `{username}`"));
    Ok(docker::Credentials {
        server,
        username,
        password,
    })
}
