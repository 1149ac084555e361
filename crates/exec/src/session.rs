//! Running a command in a container: stdin, stdout and stderr wired to ours (the output through
//! a filter), a raw terminal that follows resizes when there is one, and the remote exit code
//! kept.

use std::io::IsTerminal;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess, TerminalSize};
use kube::{Api, Client};
use kubectl_rails_kube::api_err;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ExecError;

/// How the local end is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Io {
    /// Forward our stdin (a terminal, or a pipe).
    pub stdin: bool,
    /// Allocate a remote terminal and put ours in raw mode.
    pub tty: bool,
}

impl Io {
    /// `-i` and `-t` as kubectl would pick them: a terminal gets both; piped stdin gets `-i`.
    pub fn detect(force_stdin: bool) -> Self {
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        Self {
            stdin: tty || force_stdin || !std::io::stdin().is_terminal(),
            tty,
        }
    }
}

/// What the remote output goes through before it is shown: the binary masks secret values.
pub trait OutputFilter: Send {
    /// What to show now of everything received so far.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8>;
    /// Everything still held: the stream paused or ended.
    fn flush(&mut self) -> Vec<u8>;
}

/// A new filter for each output stream.
pub type Filters<'a> = &'a (dyn Fn() -> Box<dyn OutputFilter> + Sync);

/// After this long without output, what a filter holds (a prompt, a partial line) is shown.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Copies `from` to `to` through `filter`, flushing what it holds whenever the stream pauses.
async fn relay(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut filter: Box<dyn OutputFilter>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let shown = match tokio::time::timeout(PAUSE, from.read(&mut buf)).await {
            Err(_) => filter.flush(),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => filter.push(&buf[..n]),
        };
        if !shown.is_empty() && (to.write_all(&shown).await.is_err() || to.flush().await.is_err()) {
            return;
        }
    }
    let _ = to.write_all(&filter.flush()).await;
    let _ = to.flush().await;
}

/// Restores the terminal when dropped, even on an error path.
struct RawMode;

impl RawMode {
    fn enter() -> Option<Self> {
        crossterm::terminal::enable_raw_mode().ok().map(|_| Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The exit code of a finished remote command, from its status. A server that closed the
/// stream without one (a proxy cutting the connection, an apiserver restarting) says nothing
/// about how the command ended: that is an error, never a success.
pub fn exit_code(status: Option<&Status>) -> Result<i32, String> {
    let Some(status) = status else {
        return Err(
            "the server closed the connection without the command's exit status; it may still be running, or may have been stopped".into(),
        );
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode")
        && let Some(code) = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref()?.parse().ok())
    {
        return Ok(code);
    }
    // Runtimes that report the code only in text: "... exit status 3", "exit code 3".
    let message = status.message.clone().unwrap_or_default();
    for marker in ["exit status ", "exit code "] {
        if let Some(rest) = message
            .rsplit(marker)
            .next()
            .filter(|_| message.contains(marker))
            && let Ok(code) = rest
                .trim()
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
        {
            return Ok(code);
        }
    }
    Err(message)
}

/// Runs `command` in `pod` and returns its exit code. Its output goes through a filter of
/// `filters` per stream.
pub async fn exec(
    client: &Client,
    ns: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
    io: Io,
    filters: Filters<'_>,
) -> Result<i32, ExecError> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    let params = AttachParams {
        container: container.map(str::to_string),
        stdin: io.stdin,
        stdout: true,
        // A terminal merges stderr into stdout; kube refuses both at once.
        stderr: !io.tty,
        tty: io.tty,
        ..AttachParams::default()
    };
    let mut process = pods
        .exec(pod, command.to_vec(), &params)
        .await
        .map_err(api_err(format!("exec in pod `{pod}` of namespace `{ns}`")))?;
    let raw = if io.tty { RawMode::enter() } else { None };
    let code = pump(&mut process, io, filters).await;
    drop(raw);
    code
}

/// Whether a terminal size read now is worth sending: a size, and not the one last sent.
fn changed(last: Option<(u16, u16)>, now: Option<(u16, u16)>) -> bool {
    now.is_some() && now != last
}

/// Calls `on_resize` when the local terminal may have changed size: on SIGWINCH on Unix.
#[cfg(unix)]
async fn watch_resizes(mut on_resize: impl FnMut()) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    while winch.recv().await.is_some() {
        on_resize();
    }
}

/// Windows has no resize signal: ask every 250 ms, as kubectl does there.
#[cfg(not(unix))]
async fn watch_resizes(mut on_resize: impl FnMut()) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        on_resize();
    }
}

async fn pump(
    process: &mut AttachedProcess,
    io: Io,
    filters: Filters<'_>,
) -> Result<i32, ExecError> {
    let status = process.take_status().expect("status is taken once");
    let mut tasks = Vec::new();
    if let Some(out) = process.stdout() {
        tasks.push(tokio::spawn(relay(out, tokio::io::stdout(), filters())));
    }
    if let Some(err) = process.stderr() {
        tasks.push(tokio::spawn(relay(err, tokio::io::stderr(), filters())));
    }
    let stdin_task = process.stdin().filter(|_| io.stdin).map(|mut remote| {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let _ = tokio::io::copy(&mut stdin, &mut remote).await;
            // End of our input closes the remote stdin, so `cat`-like commands finish.
            let _ = remote.shutdown().await;
        })
    });
    let resize_task = process.terminal_size().filter(|_| io.tty).map(|mut sizes| {
        tokio::spawn(async move {
            let mut last = None;
            let mut send = move || {
                let now = crossterm::terminal::size().ok();
                if changed(last, now)
                    && let Some((width, height)) = now
                {
                    last = now;
                    let _ = sizes.try_send(TerminalSize { width, height });
                }
            };
            send();
            watch_resizes(send).await;
        })
    });
    let status = status.await;
    for t in tasks {
        let _ = t.await;
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    if let Some(t) = resize_task {
        t.abort();
    }
    exit_code(status.as_ref()).map_err(|message| ExecError::Remote { message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> Status {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_size_is_sent_once_until_it_changes() {
        assert!(changed(None, Some((80, 24))));
        assert!(!changed(Some((80, 24)), Some((80, 24))));
        assert!(changed(Some((80, 24)), Some((111, 33))));
        assert!(
            !changed(Some((80, 24)), None),
            "no terminal: nothing to send"
        );
    }

    #[test]
    fn exit_codes_from_status() {
        assert!(
            exit_code(None)
                .unwrap_err()
                .contains("without the command's exit status"),
            "no status is not a success"
        );
        assert_eq!(
            exit_code(Some(&status(serde_json::json!({"status": "Success"})))),
            Ok(0)
        );
        let kubelet = status(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        }));
        assert_eq!(exit_code(Some(&kubelet)), Ok(3));
        let text = status(serde_json::json!({
            "status": "Failure", "reason": "InternalError",
            "message": "Internal error occurred: error executing command in container: cmd wait: sh -c exit 3: exit status 3"
        }));
        assert_eq!(exit_code(Some(&text)), Ok(3));
        let other =
            status(serde_json::json!({"status": "Failure", "message": "container not found"}));
        assert_eq!(exit_code(Some(&other)), Err("container not found".into()));
    }
}
