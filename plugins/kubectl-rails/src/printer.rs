//! All output goes through here: data to stdout, progress, prompts and logs to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::mask::{Masks, StreamMask};

/// Writes data and messages; one per process. Every line it prints is masked: a value the
/// plugin set or read as a secret, quoted back by the server (an admission webhook's message)
/// or by a pod (a log line), shows as `[secret KEY]`.
pub(crate) struct Printer {
    /// stderr is a terminal that can redraw (not `TERM=dumb`).
    stderr_tty: bool,
    verbose: u8,
    last_progress: Mutex<String>,
    /// The live lines on screen (the board, or one progress line), redrawn in place by
    /// indicatif: it fits each line to the terminal's width as it is at each draw, so a long
    /// line or a resized terminal never leaves copies behind.
    live: Mutex<Option<Live>>,
    masks: Mutex<Masks>,
}

/// Lines drawn in place, and their text (printed for good when they stop being live).
struct Live {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    lines: Vec<String>,
}

/// Whether stderr can show lines redrawn in place.
fn redrawable() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

impl Printer {
    pub(crate) fn new(verbose: u8) -> Self {
        Self {
            stderr_tty: redrawable(),
            verbose,
            last_progress: Mutex::new(String::new()),
            live: Mutex::new(None),
            masks: Mutex::new(Masks::default()),
        }
    }

    /// From now on, `value` in any of its forms (see [`Masks`]) prints as `[secret KEY]`.
    pub(crate) fn mask_secret(&self, key: &str, value: &[u8]) {
        self.masks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(key, value);
    }

    fn masked(&self, text: &str) -> String {
        self.masks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .mask_str(text)
    }

    /// A filter that masks a stream (a remote command's output) with the values known now.
    pub(crate) fn stream_mask(&self) -> Box<dyn kubectl_rails_exec::session::OutputFilter> {
        let masks = self.masks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Box::new(StreamMask::new(masks))
    }

    /// Data for scripts. A closed pipe (`| head`) surfaces as an `io::Error` that main treats
    /// as success.
    pub(crate) fn out(&self, text: &str) -> std::io::Result<()> {
        let text = &self.masked(text);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            stdout.write_all(b"\n")?;
        }
        stdout.flush()
    }

    fn err_line(&self, line: &str) {
        let line = &self.masked(line);
        self.clear_progress();
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// A step of a long operation.
    pub(crate) fn step(&self, message: &str) {
        self.err_line(&format!("==> {message}"));
    }

    pub(crate) fn info(&self, message: &str) {
        self.err_line(message);
    }

    pub(crate) fn warn(&self, message: &str) {
        self.err_line(&format!("warning: {message}"));
    }

    pub(crate) fn note(&self, message: &str) {
        self.err_line(&format!("note: {message}"));
    }

    /// Detail shown with `-v`.
    pub(crate) fn debug(&self, message: &str) {
        if self.verbose > 0 {
            self.err_line(&format!("debug: {message}"));
        }
    }

    /// A status line that replaces itself on a terminal; elsewhere it is printed when it changes.
    pub(crate) fn progress(&self, line: &str) {
        let masked = self.masked(line);
        let line = masked.as_str();
        let mut last = self.last_progress.lock().unwrap_or_else(|p| p.into_inner());
        if *last == line {
            return;
        }
        *last = line.to_string();
        drop(last);
        if self.stderr_tty {
            self.draw(vec![line.to_string()]);
        } else {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// Whether a live board can be drawn (stderr is a terminal that redraws).
    pub(crate) fn can_redraw(&self) -> bool {
        self.stderr_tty
    }

    /// A block of lines redrawn in place on a terminal: the rows of a live display. A message
    /// printed meanwhile leaves the board as it was last drawn, and the next board starts
    /// under the message.
    pub(crate) fn board(&self, lines: &[String]) {
        if !self.stderr_tty {
            return;
        }
        self.draw(lines.iter().map(|l| self.masked(l)).collect());
    }

    fn draw(&self, lines: Vec<String>) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let live = live.get_or_insert_with(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Vec::new(),
            lines: Vec::new(),
        });
        while live.bars.len() < lines.len() {
            let bar = live.multi.add(ProgressBar::new_spinner());
            // Cut at the terminal's width: a wrapped line would break the redraw.
            bar.set_style(
                ProgressStyle::with_template("{wide_msg}").expect("a valid indicatif template"),
            );
            live.bars.push(bar);
        }
        while live.bars.len() > lines.len() {
            if let Some(bar) = live.bars.pop() {
                bar.finish_and_clear();
                live.multi.remove(&bar);
            }
        }
        for (bar, line) in live.bars.iter().zip(&lines) {
            bar.set_message(line.clone());
        }
        live.lines = lines;
    }

    /// Masks the values of the app Secret, when it can be read: before a command prints what
    /// the server or the app's pods say.
    pub(crate) async fn mask_app_secret(&self, client: &kube::Client, namespace: &str, name: &str) {
        self.mask_secrets(client, namespace, &[name.to_string()])
            .await;
    }

    /// Masks the values of every Secret in `names` that can be read (the app's own, its pull
    /// secret's registry passwords, its accessories' passwords).
    pub(crate) async fn mask_secrets(
        &self,
        client: &kube::Client,
        namespace: &str,
        names: &[String],
    ) {
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client.clone(), namespace);
        let secrets = futures::future::join_all(names.iter().map(|n| api.get_opt(n))).await;
        for secret in secrets.into_iter().flatten().flatten() {
            for (key, value) in secret.data.unwrap_or_default() {
                match key.as_str() {
                    kubectl_rails_core::digest::DIGEST_KEY => {}
                    ".dockerconfigjson" => self.mask_docker_config(&value.0),
                    _ => self.mask_secret(&key, &value.0),
                }
            }
        }
    }

    /// Masks the passwords and tokens of a Docker config (`.dockerconfigjson`).
    pub(crate) fn mask_docker_config(&self, json: &[u8]) {
        let Ok(config) = serde_json::from_slice::<serde_json::Value>(json) else {
            return;
        };
        let auths = config.get("auths").and_then(|a| a.as_object());
        for auth in auths.into_iter().flat_map(|a| a.values()) {
            for field in ["password", "auth", "identitytoken", "registrytoken"] {
                if let Some(v) = auth.get(field).and_then(|v| v.as_str()) {
                    self.mask_secret("registry password", v.as_bytes());
                }
            }
        }
    }

    /// Ends the live lines: they are printed for good as last drawn (whole, as the terminal
    /// wraps them), and the next message starts under them.
    pub(crate) fn clear_progress(&self) {
        self.last_progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let Some(live) = self.live.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        for bar in &live.bars {
            bar.finish_and_clear();
        }
        let _ = live.multi.clear();
        let mut err = std::io::stderr().lock();
        for line in &live.lines {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

impl Drop for Printer {
    /// Live lines still drawn at exit are printed for good, so the shell's prompt starts on a
    /// line of its own.
    fn drop(&mut self) {
        self.clear_progress();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_values_are_masked_in_every_line() {
        let p = super::Printer::new(0);
        p.mask_secret("DATABASE_URL", b"postgres://u:Pw-123456@db/app");
        p.mask_secret("SHORT", b"1");
        p.mask_docker_config(br#"{"auths":{"r.dev":{"username":"u","password":"Reg-Pass-77","auth":"dTpSZWctUGFzcy03Nw=="}}}"#);
        assert_eq!(
            p.masked("login u:Reg-Pass-77 dTpSZWctUGFzcy03Nw=="),
            "login u:[secret registry password] [secret registry password]"
        );
        assert_eq!(
            p.masked("denied: value postgres://u:Pw-123456@db/app is not allowed (1)"),
            "denied: value [secret DATABASE_URL] is not allowed (1)"
        );
        assert_eq!(
            p.masked("data: cG9zdGdyZXM6Ly91OlB3LTEyMzQ1NkBkYi9hcHA="),
            "data: [secret DATABASE_URL]"
        );
    }
}
