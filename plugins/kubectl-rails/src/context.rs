//! The prologue every command shares: the settings, the spec read once, and the cluster
//! connected on first use. A command asks for what it needs, when it needs it, so that bad
//! input is still refused before the spec is read or the cluster is contacted.

use std::cell::OnceCell;

use kubectl_rails_core::AppSpec;

use crate::printer::Printer;
use crate::settings::{Settings, Target};

pub(crate) struct Context<'a> {
    pub settings: &'a Settings,
    pub printer: &'a Printer,
    spec: OnceCell<AppSpec>,
    target: OnceCell<Target>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(settings: &'a Settings, printer: &'a Printer) -> Self {
        Self {
            settings,
            printer,
            spec: OnceCell::new(),
            target: OnceCell::new(),
        }
    }

    /// The spec, read once through [`Settings::load_spec`]; its warnings are not said.
    pub(crate) fn spec(&self) -> anyhow::Result<&AppSpec> {
        if let Some(spec) = self.spec.get() {
            return Ok(spec);
        }
        let loaded = self.settings.load_spec(self.printer)?;
        Ok(self.spec.get_or_init(|| loaded.spec))
    }

    /// The spec, read once through [`Settings::load_spec_and_warn`]: for the commands that say
    /// its warnings (`init`, `render`, `deploy`). A failed read can be tried again.
    pub(crate) fn spec_and_warn(&self) -> anyhow::Result<&AppSpec> {
        if let Some(spec) = self.spec.get() {
            return Ok(spec);
        }
        let loaded = self.settings.load_spec_and_warn(self.printer)?;
        Ok(self.spec.get_or_init(|| loaded.spec))
    }

    /// The namespace without asking the cluster: `-n`, then the spec, then `default`.
    pub(crate) fn namespace(&self) -> anyhow::Result<String> {
        self.settings.namespace(Some(self.spec()?), None)
    }

    /// The cluster, connected on first use (see [`Settings::target`]), in the namespace of `-n`,
    /// the spec or the context. From then on the printer masks the values of the app's Secrets
    /// (those it can read), whatever the command prints: server messages, events, logs, a remote
    /// command's output.
    pub(crate) async fn target(&self) -> anyhow::Result<&Target> {
        if let Some(target) = self.target.get() {
            return Ok(target);
        }
        let spec = self.spec()?;
        let target = self.settings.target(Some(spec)).await?;
        self.mask_secrets_of(spec, &target).await;
        Ok(self.target.get_or_init(|| target))
    }

    async fn mask_secrets_of(&self, spec: &AppSpec, target: &Target) {
        self.printer
            .mask_secrets(
                &target.conn.client,
                &target.namespace,
                &spec.own_secret_names(),
            )
            .await;
    }

    /// [`Context::target`] without refusing an unsupported server: for `doctor`, which reports
    /// it.
    pub(crate) async fn target_any_version(&self) -> anyhow::Result<&Target> {
        if let Some(target) = self.target.get() {
            return Ok(target);
        }
        let spec = self.spec()?;
        let target = self.settings.target_any_version(Some(spec)).await?;
        self.mask_secrets_of(spec, &target).await;
        Ok(self.target.get_or_init(|| target))
    }
}
