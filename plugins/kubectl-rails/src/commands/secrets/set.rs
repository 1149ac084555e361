//! `secrets set`: values from `KEY=VALUE`, a hidden prompt or `--from-file`, checked before the
//! cluster is contacted; a key the spec had as plain env moves to `secrets:`.

use std::collections::BTreeMap;
use std::path::Path;

use kubectl_rails_core::AppSpec;
use kubectl_rails_core::file::{self, edit};
use kubectl_rails_core::validate::is_env_key;
use kubectl_rails_secrets::{SecretsError, sources};

use crate::context::Context;
use crate::exit;
use crate::overlay::OverlayEdit;
use crate::settings::Settings;

pub(super) fn check_key(key: &str) -> anyhow::Result<()> {
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
pub(super) fn values_to_set(
    pairs: &[String],
    from_file: Option<&Path>,
    settings: &Settings,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    // One KEY and a file: the file's whole content is its value (a key file, a JSON
    // credential), as `kubectl create secret --from-file` takes it.
    if let (Some(path), [key]) = (from_file, pairs)
        && !key.contains('=')
    {
        check_key(key)?;
        let bytes = fs_err::read(path).map_err(|e| exit::failure(e.to_string(), None))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            exit::failure(
                format!("`{}` is not UTF-8 text", path.display()),
                Some("store binary files base64-encoded, and decode them in the app".into()),
            )
        })?;
        values.insert(key.clone(), text);
        return Ok(values);
    }
    if let Some(path) = from_file {
        let entries = sources::dotenv_file(path).map_err(|e| match e {
            SecretsError::Read { source, .. } => exit::failure(source.to_string(), None),
            other => exit::failure(other.to_string(), None),
        })?;
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
pub(super) fn move_out_of_env<'a>(
    ctx: &Context<'_>,
    spec: &AppSpec,
    keys: impl Iterator<Item = &'a String>,
) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let moving: Vec<&String> = keys.filter(|k| spec.env.contains_key(*k)).collect();
    if moving.is_empty() {
        return Ok(());
    }
    let _lock = crate::overlay::lock_spec(settings, printer)?;
    if let Some(mut overlay) = OverlayEdit::open(settings)? {
        for key in &moving {
            overlay.remove(&["env", key])?;
            overlay.ensure_gone(&["env", key], !overlay.merged()?.env.contains_key(*key))?;
            overlay.secret(key, true)?;
        }
        overlay.write(printer)?;
        printer.step(&format!(
            "moved {} from plain `env` to `secrets:` in `{}`",
            moving
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            overlay.path.display()
        ));
        return Ok(());
    }
    let mut text = fs_err::read_to_string(&settings.spec_path)?;
    for key in &moving {
        let edited = edit::remove(&text, &["env", key]).and_then(|t| edit::add_secret(&t, key));
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
    file::parse(&text, &settings.spec_path)?;
    file::write_atomic(&settings.spec_path, &text)?;
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
