//! `kubectl rails env`: the plain (not secret) env in the spec. `env set` moves a key the spec
//! lists as a secret over to plain env; `secrets set` moves one the other way. The spec file is
//! edited in place, comments kept, and the next deploy gives the pods the change.

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use kubectl_rails_core::file::{self, edit};
use kubectl_rails_core::validate::is_env_key;

use crate::cli::{EnvCommand, OutputFormat};
use crate::context::Context;
use crate::exit;
use crate::overlay::OverlayEdit;
use crate::settings::Settings;

pub(crate) fn run(command: &EnvCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let formats: &[OutputFormat] = match command {
        EnvCommand::List => &[OutputFormat::Json, OutputFormat::Yaml],
        _ => &[],
    };
    let format = settings.output(formats)?;
    let pairs = match command {
        EnvCommand::Set { pairs } => pairs
            .iter()
            .map(|p| parse_pair(p))
            .collect::<anyhow::Result<Vec<_>>>()?,
        EnvCommand::Unset { keys } => {
            for k in keys {
                check_key(k)?;
            }
            vec![]
        }
        EnvCommand::List => vec![],
    };
    let _lock = match command {
        EnvCommand::List => None,
        _ => Some(crate::overlay::lock_spec(settings, printer)?),
    };
    let spec = ctx.spec()?;
    match command {
        EnvCommand::List => {
            match format {
                Some(OutputFormat::Json) => {
                    printer.out(&serde_json::to_string_pretty(&spec.env)?)?
                }
                Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&spec.env)?)?,
                _ => {
                    let mut t = Table::new();
                    t.load_preset(NOTHING).set_header(vec!["KEY", "VALUE"]);
                    for (k, v) in &spec.env {
                        t.add_row(vec![k.clone(), v.clone()]);
                    }
                    printer.out(&t.to_string())?;
                    if !spec.secrets.is_empty() {
                        printer.info(&format!(
                            "secrets (values in the cluster, see `kubectl rails secrets list`): {}",
                            spec.secrets.join(", ")
                        ));
                    }
                }
            }
            Ok(())
        }
        EnvCommand::Set { .. } if let Some(mut overlay) = OverlayEdit::open(settings)? => {
            for (key, value) in &pairs {
                if spec.secrets.contains(key) {
                    overlay.secret(key, false)?;
                    printer.note(&format!(
                        "`{key}` moves from the secrets to plain env; its old value stays in Secret `{}` until `kubectl rails secrets unset {key}`",
                        spec.secret_name()
                    ));
                }
                overlay.set(&["env", key], &serde_json::to_string(value)?)?;
            }
            overlay.write(printer)?;
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            printer.step(&format!(
                "set {} in `env` of `{}`; the next `kubectl rails deploy` gives the pods the change",
                keys.join(", "),
                overlay.path.display()
            ));
            Ok(())
        }
        EnvCommand::Unset { keys } if let Some(mut overlay) = OverlayEdit::open(settings)? => {
            for key in keys {
                if !spec.env.contains_key(key) {
                    printer.note(&format!("`{key}` is not in `env`"));
                    continue;
                }
                overlay.remove(&["env", key])?;
                overlay.ensure_gone(&["env", key], !overlay.merged()?.env.contains_key(key))?;
            }
            overlay.write(printer)?;
            printer.step(&format!(
                "removed {} from `env` of `{}`; the next `kubectl rails deploy` gives the pods the change",
                keys.join(", "),
                overlay.path.display()
            ));
            Ok(())
        }
        EnvCommand::Set { .. } => {
            let mut text = read(settings)?;
            for (key, value) in &pairs {
                if spec.secrets.contains(key) {
                    text = edit::remove_secret(&text, key)
                        .ok_or_else(|| layout(settings, "secrets"))?;
                    printer.note(&format!(
                        "`{key}` moves from the secrets to plain env; its old value stays in Secret `{}` until `kubectl rails secrets unset {key}`",
                        spec.secret_name()
                    ));
                }
                let quoted = serde_json::to_string(value)?;
                text = edit::set_in_map(&text, "env", key, &quoted)
                    .ok_or_else(|| layout(settings, "env"))?;
            }
            write(settings, &text)?;
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            printer.step(&format!(
                "set {} in `env` of `{}`; the next `kubectl rails deploy` gives the pods the change",
                keys.join(", "),
                settings.spec_path.display()
            ));
            Ok(())
        }
        EnvCommand::Unset { keys } => {
            let mut text = read(settings)?;
            for key in keys {
                if !spec.env.contains_key(key) {
                    printer.note(&format!("`{key}` is not in `env`"));
                    continue;
                }
                text = edit::remove(&text, &["env", key]).ok_or_else(|| layout(settings, "env"))?;
            }
            write(settings, &text)?;
            printer.step(&format!(
                "removed {} from `env`; the next `kubectl rails deploy` gives the pods the change",
                keys.join(", ")
            ));
            Ok(())
        }
    }
}

fn check_key(key: &str) -> anyhow::Result<()> {
    if is_env_key(key) {
        Ok(())
    } else {
        Err(exit::usage(
            format!("`{key}` is not a valid environment variable name"),
            Some("use letters, digits and `_`, not starting with a digit".into()),
        ))
    }
}

fn parse_pair(pair: &str) -> anyhow::Result<(String, String)> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(exit::usage(
            format!("`{pair}` is not `KEY=VALUE`"),
            Some("plain env is written into the spec, which is committed: a secret belongs in `kubectl rails secrets set`".into()),
        ));
    };
    check_key(key)?;
    Ok((key.to_string(), value.to_string()))
}

fn read(settings: &Settings) -> anyhow::Result<String> {
    Ok(fs_err::read_to_string(&settings.spec_path)?)
}

/// Writes the edited spec once it parses and validates, so a bad edit never lands.
fn write(settings: &Settings, text: &str) -> anyhow::Result<()> {
    file::parse(text, &settings.spec_path)?;
    file::write_atomic(&settings.spec_path, text)?;
    Ok(())
}

fn layout(settings: &Settings, key: &str) -> anyhow::Error {
    exit::failure(
        format!(
            "cannot edit `{}`: `{key}` is not laid out as `kubectl rails init` writes it",
            settings.spec_path.display()
        ),
        Some("edit the spec by hand".into()),
    )
}
