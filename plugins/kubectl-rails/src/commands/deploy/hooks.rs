//! Deploy hooks, as Kamal runs them: `pre-deploy` before anything changes (a failure stops the
//! deploy) and `post-deploy` after it, on this machine, with Kamal's variables and ours.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kubectl_rails_core::AppSpec;

use crate::exit;
use crate::printer::Printer;

/// The hooks folder: the spec's `hooks_path`, else `config/kubernetes/hooks`, else Kamal's
/// `.kamal/hooks`.
pub(crate) fn folder(spec: &AppSpec, app_dir: &Path) -> Option<PathBuf> {
    let candidates = match &spec.hooks_path {
        Some(p) => vec![app_dir.join(p)],
        None => vec![
            app_dir.join("config/kubernetes/hooks"),
            app_dir.join(".kamal/hooks"),
        ],
    };
    candidates.into_iter().find(|d| d.is_dir())
}

/// What a hook learns about the deploy.
pub(crate) struct HookEnv {
    pub vars: Vec<(String, String)>,
}

impl HookEnv {
    /// `destination` is `-d`'s, empty without one, as Kamal sets `KAMAL_DESTINATION`.
    pub(crate) fn new(
        spec: &AppSpec,
        destination: &str,
        namespace: &str,
        context: &str,
        user: &str,
    ) -> Self {
        let recorded_at = k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let version = spec.image.tag.clone().unwrap_or_default();
        let hosts = spec
            .ingress
            .as_ref()
            .map(|i| i.hosts.join(","))
            .unwrap_or_default();
        let vars = [
            ("KAMAL_RECORDED_AT", recorded_at),
            ("KAMAL_PERFORMER", user.to_string()),
            ("KAMAL_VERSION", version.clone()),
            ("KAMAL_SERVICE", spec.name.clone()),
            ("KAMAL_SERVICE_VERSION", format!("{}@{version}", spec.name)),
            ("KAMAL_HOSTS", hosts),
            ("KAMAL_COMMAND", "deploy".to_string()),
            ("KAMAL_DESTINATION", destination.to_string()),
            ("KUBECTL_RAILS_APP", spec.name.clone()),
            ("KUBECTL_RAILS_NAMESPACE", namespace.to_string()),
            ("KUBECTL_RAILS_CONTEXT", context.to_string()),
            ("KUBECTL_RAILS_IMAGE", spec.image.reference()),
        ];
        Self {
            vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    pub(crate) fn with(mut self, key: &str, value: String) -> Self {
        self.vars.push((key.to_string(), value));
        self
    }
}

/// Runs `folder/hook` when it exists, its output shown as it comes. A hook that fails is an
/// error; `before` says what that means for the deploy.
pub(crate) fn run(
    folder: &Path,
    hook: &str,
    env: &HookEnv,
    app_dir: &Path,
    printer: &Printer,
    before: &str,
) -> anyhow::Result<()> {
    let path = folder.join(hook);
    if !path.is_file() {
        return Ok(());
    }
    printer.step(&format!("running the {hook} hook `{}`", path.display()));
    let mut child = Command::new(&path)
        .current_dir(app_dir)
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            exit::failure(
                format!("cannot run the {hook} hook `{}`: {e}", path.display()),
                Some(format!(
                    "make it executable (`chmod +x {}`), or pass `--skip-hooks`",
                    path.display()
                )),
            )
        })?;
    let stderr = child.stderr.take().expect("piped");
    let relay = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            printer.info(&format!("  {hook} | {line}"));
        }
    }
    for line in relay.join().unwrap_or_default() {
        printer.info(&format!("  {hook} | {line}"));
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(exit::failure(
            format!("the {hook} hook failed ({status}); {before}",),
            Some("fix the hook, or pass `--skip-hooks`".into()),
        ));
    }
    Ok(())
}
