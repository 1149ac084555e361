//! Spec edits under `-d DEST` go to the destination's overlay (`config/kubernetes.<dest>.yml`),
//! never to the base spec that every destination reads: `-d production scale web=6` must not
//! scale staging on its next deploy, and the overlay (which wins) must not undo it.
//!
//! Maps in an overlay merge with the base and lists replace it, so each edit is written as the
//! overlay's own entry and checked as the destination reads it (the base with the overlay laid
//! over it) before anything is written.

use std::path::PathBuf;

use anyhow::Context as _;
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::file::{self, edit};

use crate::exit;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) struct OverlayEdit {
    /// The overlay file, which the edits go to.
    pub path: PathBuf,
    base_path: PathBuf,
    base_text: String,
    destination: String,
    text: String,
    rewritten: bool,
    notes: Vec<String>,
}

impl OverlayEdit {
    /// The overlay of `-d`, read; `None` without `-d`.
    pub(crate) fn open(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let Some(destination) = &settings.global.destination else {
            return Ok(None);
        };
        let path = file::overlay_path(&settings.spec_path, destination);
        let text = fs_err::read_to_string(&path)?;
        let base_text = fs_err::read_to_string(&settings.spec_path)?;
        Ok(Some(Self {
            path,
            base_path: settings.spec_path.clone(),
            base_text,
            destination: destination.clone(),
            text,
            rewritten: false,
            notes: Vec::new(),
        }))
    }

    fn cannot(&self, keys: &[&str]) -> anyhow::Error {
        exit::failure(
            format!(
                "cannot set `{}` in `{}`: something on the way is not a mapping",
                keys.join("."),
                self.path.display()
            ),
            Some("edit the overlay by hand".into()),
        )
    }

    fn apply(&mut self, keys: &[&str], done: Option<(String, edit::Made)>) -> anyhow::Result<()> {
        let (text, made) = done.ok_or_else(|| self.cannot(keys))?;
        self.rewritten |= made == edit::Made::Rewritten;
        self.text = text;
        Ok(())
    }

    /// Sets `keys` to `value` (YAML text) in the overlay.
    pub(crate) fn set(&mut self, keys: &[&str], value: &str) -> anyhow::Result<()> {
        let done = edit::set_value(&self.text, keys, value);
        self.apply(keys, done)
    }

    /// Removes the overlay's own entry at `keys`; the base's, if any, shows through again.
    pub(crate) fn remove(&mut self, keys: &[&str]) -> anyhow::Result<()> {
        let done = edit::remove_value(&self.text, keys);
        self.apply(keys, done)
    }

    /// Whether the overlay itself has an entry at `keys`.
    fn has(&self, keys: &[&str]) -> bool {
        let value: Option<serde_json::Value> = serde_saphyr::from_str(&self.text).ok();
        keys.iter()
            .try_fold(value.as_ref(), |v, k| v.map(|v| v.get(*k)))
            .flatten()
            .is_some()
    }

    /// The spec the destination reads with the edits so far: checked, as deploy reads it.
    pub(crate) fn merged(&self) -> anyhow::Result<AppSpec> {
        Ok(file::merge_destination(
            &self.base_path,
            &self.base_text,
            &self.path,
            &self.text,
            &self.destination,
        )?
        .spec)
    }

    /// Adds (`true`) or removes a key of `secrets:`. The overlay's own list is edited; a list
    /// in an overlay replaces the base's, so without one the destination's whole list is
    /// copied into the overlay first, and that is said.
    pub(crate) fn secret(&mut self, key: &str, add: bool) -> anyhow::Result<()> {
        if !self.has(&["secrets"]) {
            let keys: Vec<String> = self.merged()?.secrets.iter().cloned().collect();
            let mut list = keys.clone();
            list.retain(|k| k != key);
            if add {
                list.push(key.to_string());
            }
            self.set(&["secrets"], &serde_json::to_string(&list)?)?;
            self.notes.push(format!(
                "`{}` had no `secrets:` of its own: it now lists all of destination `{}`'s secret keys, since a list in an overlay replaces the base's",
                self.path.display(),
                self.destination
            ));
            return Ok(());
        }
        let edited = if add {
            edit::add_secret(&self.text, key)
        } else {
            edit::remove_secret(&self.text, key).or_else(|| Some(self.text.clone()))
        };
        match edited {
            Some(text)
                if file::merge_destination(
                    &self.base_path,
                    &self.base_text,
                    &self.path,
                    &text,
                    &self.destination,
                )
                .is_ok() =>
            {
                self.text = text;
                Ok(())
            }
            _ => Err(exit::failure(
                format!(
                    "cannot edit `secrets:` in `{}`: it is not laid out as `kubectl rails init` writes it",
                    self.path.display()
                ),
                Some("edit the overlay by hand".into()),
            )),
        }
    }

    /// Fails when the base spec still gives `keys` a value after the overlay's own is removed:
    /// an overlay can override a base entry but not delete it.
    pub(crate) fn ensure_gone(&self, keys: &[&str], gone: bool) -> anyhow::Result<()> {
        if gone {
            return Ok(());
        }
        Err(exit::failure(
            format!(
                "`{}` is set in the base spec `{}`, which every destination reads; an overlay cannot remove it",
                keys.join("."),
                self.base_path.display()
            ),
            Some(format!(
                "remove it from `{}` (without `-d`), or override its value in `{}`",
                self.base_path.display(),
                self.path.display()
            )),
        ))
    }

    /// Checks the destination's spec, then writes the overlay.
    pub(crate) fn write(&self, printer: &Printer) -> anyhow::Result<()> {
        self.merged()?;
        file::write_atomic(&self.path, &self.text)
            .with_context(|| format!("failed to write `{}`", self.path.display()))?;
        for note in &self.notes {
            printer.note(note);
        }
        if self.rewritten {
            printer.note(&format!(
                "`{}` was written anew from its data (it is not in the block style `kubectl rails init` writes): its comments are gone",
                self.path.display()
            ));
        }
        Ok(())
    }
}

/// Takes the spec's edit lock before a command reads what it edits; when another command holds
/// it, says so and waits for it to end.
pub(crate) fn lock_spec(settings: &Settings, printer: &Printer) -> anyhow::Result<file::EditLock> {
    if let Some(lock) = file::EditLock::try_take(&settings.spec_path)? {
        return Ok(lock);
    }
    printer.note(&format!(
        "another kubectl rails command is editing the spec beside `{}`: waiting for it to end",
        settings.spec_path.display()
    ));
    Ok(file::EditLock::take(&settings.spec_path)?)
}

/// A spec edit ready to write: into the base spec, or (with `-d`) into the overlay.
pub(crate) enum Edited {
    Base { path: PathBuf, text: String },
    Overlay(OverlayEdit),
}

impl Edited {
    /// The file the edit goes to.
    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            Self::Base { path, .. } => path,
            Self::Overlay(o) => &o.path,
        }
    }

    /// Writes the edit (already checked).
    pub(crate) fn write(&self, printer: &Printer) -> anyhow::Result<()> {
        match self {
            Self::Base { path, text } => Ok(file::write_atomic(path, text)?),
            Self::Overlay(o) => o.write(printer),
        }
    }
}

/// The keys of a process's `key`: `web.replicas`, `workers.jobs.replicas`.
pub(crate) fn process_keys<'a>(process: &'a str, key: &'a str) -> Vec<&'a str> {
    if process == "web" {
        vec!["web", key]
    } else {
        vec!["workers", process, key]
    }
}
