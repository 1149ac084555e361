//! Prompts for a person at a terminal; without one, a missing value is an error naming its flag.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Password, Select};

use crate::exit;

/// Asks questions only when stdin and stderr are terminals and `--no-input` is absent.
pub(crate) struct Prompter {
    pub interactive: bool,
}

impl Prompter {
    fn missing(what: &str, flag: &str) -> anyhow::Error {
        exit::usage(
            format!("{what} is required, and nobody is at a terminal to ask"),
            Some(format!("pass `{flag}`")),
        )
    }

    /// Free text with an optional default; `check` explains what is wrong with an answer.
    pub(crate) fn text(
        &self,
        question: &str,
        default: Option<&str>,
        flag: &str,
        check: impl Fn(&str) -> Result<(), String> + Clone,
    ) -> anyhow::Result<String> {
        if !self.interactive {
            return Err(Self::missing(question, flag));
        }
        let theme = ColorfulTheme::default();
        let mut input = Input::<String>::with_theme(&theme).with_prompt(question);
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        let answer = input
            .validate_with(move |s: &String| check(s.trim()))
            .interact_text()?;
        Ok(answer.trim().to_string())
    }

    /// Optional free text: an empty answer is `None`.
    pub(crate) fn optional_text(
        &self,
        question: &str,
        flag: &str,
    ) -> anyhow::Result<Option<String>> {
        if !self.interactive {
            return Err(Self::missing(question, flag));
        }
        let theme = ColorfulTheme::default();
        let answer: String = Input::with_theme(&theme)
            .with_prompt(question)
            .allow_empty(true)
            .interact_text()?;
        Ok(Some(answer.trim().to_string()).filter(|a| !a.is_empty()))
    }

    /// A yes/no question; `--yes` answers it before it is asked.
    /// One of `items`, the first by default; returns its index.
    pub(crate) fn select(
        &self,
        question: &str,
        items: &[String],
        flag: &str,
    ) -> anyhow::Result<usize> {
        if !self.interactive {
            return Err(Self::missing(question, flag));
        }
        Ok(Select::with_theme(&ColorfulTheme::default())
            .with_prompt(question)
            .items(items)
            .default(0)
            .interact()?)
    }

    pub(crate) fn confirm(&self, question: &str, yes: bool) -> anyhow::Result<bool> {
        if yes {
            return Ok(true);
        }
        if !self.interactive {
            return Err(exit::usage(
                format!("{question}: confirmation needed, and nobody is at a terminal to answer"),
                Some("pass `--yes`".into()),
            ));
        }
        Ok(Confirm::with_theme(&ColorfulTheme::default())
            .with_prompt(question)
            .default(false)
            .interact()?)
    }

    /// A yes/no question with a default that Enter accepts; without a terminal, the default.
    pub(crate) fn yes_no(&self, question: &str, default: bool) -> anyhow::Result<bool> {
        if !self.interactive {
            return Ok(default);
        }
        Ok(Confirm::with_theme(&ColorfulTheme::default())
            .with_prompt(question)
            .default(default)
            .interact()?)
    }

    /// Hidden input that may be left empty (`None`): to stop a series of questions.
    pub(crate) fn optional_password(&self, question: &str) -> anyhow::Result<Option<String>> {
        let value = Password::with_theme(&ColorfulTheme::default())
            .with_prompt(question)
            .allow_empty_password(true)
            .interact()?;
        Ok(Some(value).filter(|v| !v.is_empty()))
    }

    /// Hidden input, for secret values; the caller checked that someone is at the terminal.
    pub(crate) fn password(&self, question: &str) -> anyhow::Result<String> {
        let value = Password::with_theme(&ColorfulTheme::default())
            .with_prompt(question)
            .interact()?;
        if value.is_empty() {
            return Err(exit::usage("the value is empty", None));
        }
        Ok(value)
    }
}
