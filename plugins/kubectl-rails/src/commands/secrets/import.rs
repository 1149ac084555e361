//! Values from the app folder: `.env`, the master key and `.kamal/secrets`, or the plain `env` of
//! hand-written manifests (read by the secrets crate); here, the questions before taking them
//! and what is said about them.

use std::collections::BTreeMap;
use std::path::Path;

use kubectl_rails_core::AppSpec;
use kubectl_rails_secrets::SecretsError;
use kubectl_rails_secrets::sources::{self, ManifestSecrets};

use crate::context::Context;
use crate::exit;

/// Values from `.env`, `config/master.key` and `.kamal/secrets`, for the keys the spec names.
/// `confirm_master_key`: ask before taking the master key (a caller that asks about all the
/// values at once passes false).
pub(crate) fn import_sources(
    ctx: &Context<'_>,
    spec: &AppSpec,
    from_env: Option<&Path>,
    allow_commands: bool,
    confirm_master_key: bool,
    command_timeout: std::time::Duration,
) -> anyhow::Result<BTreeMap<String, String>> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let (prompter, yes) = (&settings.prompter, settings.global.yes);
    let dir = &settings.global.app_dir;
    let env_path = from_env
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(".env"));
    let mut values = match sources::env_secrets(&env_path, spec) {
        Ok(env) => {
            printer.step(&format!("read `{}`", env_path.display()));
            if !env.not_named.is_empty() {
                printer.note(&format!(
                    "not imported, the spec does not name them as secrets: {} (add them under `secrets:` to import, or under `env:` if they are not secret)",
                    env.not_named.join(", ")
                ));
            }
            env.values
        }
        Err(SecretsError::Read { .. }) if from_env.is_none() => {
            printer.note("no `.env` in the app folder");
            BTreeMap::new()
        }
        Err(SecretsError::Read { source, .. }) => {
            return Err(exit::failure(
                source.to_string(),
                Some("check the path given to `--from-env`".into()),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !values.contains_key("RAILS_MASTER_KEY")
        && let Some(key) = sources::master_key(dir, spec)
    {
        let take = !prompter.interactive
            || !confirm_master_key
            || prompter.confirm(&format!("Import {} as RAILS_MASTER_KEY", key.file), yes)?;
        if take {
            values.insert("RAILS_MASTER_KEY".into(), key.value);
            printer.step(&format!("read `{}` as RAILS_MASTER_KEY", key.file));
        }
    }
    let destination = settings.global.destination.as_deref();
    let Some(kamal) = sources::kamal_secrets(dir, destination, spec, &values)? else {
        return Ok(values);
    };
    if kamal.needs_commands() {
        let run = allow_commands
            && prompter.confirm(
                &format!(
                    "Run `.kamal/secrets` in one shell, as Kamal does (it runs commands on {})",
                    kamal.commands.join(", ")
                ),
                yes,
            )?;
        if run {
            printer.step(&format!(
                "running `.kamal/secrets` in one shell (at most {}s)",
                command_timeout.as_secs()
            ));
            values.extend(kamal.evaluate(dir, command_timeout)?);
            return Ok(values);
        }
        printer.note(&format!(
            "skipped `.kamal/secrets` lines that run commands (pass `--allow-commands` to run them): {}",
            kamal.commands.join("; ")
        ));
    }
    let (found, unset) = kamal.without_commands();
    for u in unset {
        printer.note(&format!(
            "`{}` line {}: `{}` refers to `${}`, which is not set",
            u.file, u.line, u.key, u.var
        ));
    }
    values.extend(found);
    Ok(values)
}

/// Plain `env` values of hand-written manifests: secrets move into the Secret.
pub(crate) fn import_manifests(
    ctx: &Context<'_>,
    dir: &Path,
    spec: &AppSpec,
) -> anyhow::Result<BTreeMap<String, String>> {
    let printer = ctx.printer;
    let ManifestSecrets {
        values,
        lines,
        unnamed,
        plain,
    } = sources::manifest_secrets(dir, spec)?;
    if !values.is_empty() {
        printer.info(
            "now delete these plain-text values from the manifests (they live in the Secret):",
        );
        for e in &lines {
            printer.info(&format!("  {}:{}  {}", e.file.display(), e.line, e.key));
        }
        if !unnamed.is_empty() {
            printer.note(&format!(
                "add these to `secrets:` in the spec so that pods get them: {}",
                unnamed.join(", ")
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
