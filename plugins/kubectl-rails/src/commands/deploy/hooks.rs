//! Deploy hooks, as Kamal runs them: `pre-deploy` before anything changes (a failure stops the
//! deploy) and `post-deploy` after it, on this machine, with Kamal's variables and ours.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

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

/// Why a hook stopped what it was run for.
#[derive(Debug)]
pub(crate) struct HookFailed {
    pub message: String,
    pub hint: Option<String>,
}

impl From<HookFailed> for anyhow::Error {
    fn from(f: HookFailed) -> Self {
        exit::failure(f.message, f.hint)
    }
}

/// Runs `folder/hook` when it exists, stdout and stderr shown line by line as they come (through
/// the printer, so masked). A hook that fails, or runs past `timeout` (then it and everything it
/// started are stopped), is an error; `before` says what that means for the deploy.
pub(crate) async fn run(
    folder: &Path,
    hook: &str,
    env: &HookEnv,
    app_dir: &Path,
    printer: &Printer,
    before: &str,
    timeout: Duration,
) -> Result<(), HookFailed> {
    // Absolute, because the hook starts in `app_dir`: a path relative to ours (`-C apps/shop`)
    // would be looked up under `apps/shop/apps/shop`.
    let path = std::path::absolute(folder.join(hook)).unwrap_or_else(|_| folder.join(hook));
    if !path.is_file() {
        return Ok(());
    }
    printer.step(&format!("running the {hook} hook `{}`", path.display()));
    let mut command = Command::new(&path);
    command
        .current_dir(app_dir)
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(|e| HookFailed {
        message: format!("cannot run the {hook} hook `{}`: {e}", path.display()),
        hint: Some(format!(
            "make it executable (`chmod +x {}`), or pass `--skip-hooks`",
            path.display()
        )),
    })?;
    // Stopped with everything it started if this future is dropped (Ctrl-C) or times out.
    let group = Group(child.id());
    let mut out = child.stdout.take().map(|o| BufReader::new(o).split(b'\n'));
    let mut err = child.stderr.take().map(|e| BufReader::new(e).split(b'\n'));
    let deadline = tokio::time::Instant::now() + timeout;
    let show = |line: Vec<u8>| {
        // Not UTF-8 is shown as far as it is text, and never stops the reading.
        printer.info(&format!("  {hook} | {}", String::from_utf8_lossy(&line)));
    };
    let finished = async {
        while out.is_some() || err.is_some() {
            tokio::select! {
                line = next_line(&mut out) => match line {
                    Some(line) => show(line),
                    None => out = None,
                },
                line = next_line(&mut err) => match line {
                    Some(line) => show(line),
                    None => err = None,
                },
            }
        }
        child.wait().await
    };
    let status = match tokio::time::timeout_at(deadline, finished).await {
        Ok(status) => status.map_err(|e| HookFailed {
            message: format!(
                "the {hook} hook `{}` could not be waited for: {e}",
                path.display()
            ),
            hint: None,
        })?,
        Err(_) => {
            return Err(HookFailed {
                message: format!(
                    "the {hook} hook did not finish within {}s and was stopped; {before}",
                    timeout.as_secs()
                ),
                hint: Some("make the hook finish sooner, pass a longer `--timeout`, or pass `--skip-hooks`".into()),
            });
        }
    };
    group.forget();
    // The hook may have written Secrets with kubectl: what this run read of them is stale.
    kubectl_rails_kube::forget_secret_reads();
    if !status.success() {
        return Err(HookFailed {
            message: format!("the {hook} hook failed ({status}); {before}"),
            hint: Some("fix the hook, or pass `--skip-hooks`".into()),
        });
    }
    Ok(())
}

/// The next line of a stream still open; pending forever once it is closed, so that `select!`
/// waits on the other.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Option<tokio::io::Split<R>>,
) -> Option<Vec<u8>> {
    match lines {
        Some(l) => l.next_segment().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// A hook's process group, killed when dropped unless it finished.
struct Group(Option<u32>);

impl Group {
    fn forget(mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}
