//! All output goes through here: data to stdout, progress, prompts and logs to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use crate::mask::{Masks, StreamMask};

/// Writes data and messages; one per process. Every line it prints is masked: a value the
/// plugin set or read as a secret, quoted back by the server (an admission webhook's message)
/// or by a pod (a log line), shows as `[secret KEY]`.
pub(crate) struct Printer {
    stderr_tty: bool,
    verbose: u8,
    last_progress: Mutex<String>,
    /// Lines of the live board now on screen, redrawn in place (a terminal only).
    board_height: Mutex<usize>,
    masks: Mutex<Masks>,
}

impl Printer {
    pub(crate) fn new(verbose: u8) -> Self {
        Self {
            stderr_tty: std::io::stderr().is_terminal(),
            verbose,
            last_progress: Mutex::new(String::new()),
            board_height: Mutex::new(0),
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
        let mut err = std::io::stderr().lock();
        if self.stderr_tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        *last = line.to_string();
    }

    /// Whether a live board can be drawn (stderr is a terminal).
    pub(crate) fn can_redraw(&self) -> bool {
        self.stderr_tty
    }

    /// A block of lines redrawn in place on a terminal: the rows of a live display. Messages
    /// printed meanwhile go below it, and the next board starts under them.
    pub(crate) fn board(&self, lines: &[String]) {
        let mut height = self.board_height.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        let mut text = String::new();
        if *height > 0 {
            text.push_str(&format!("\x1b[{}A", *height));
        }
        for line in lines {
            text.push_str(&format!("\r\x1b[2K{}\n", self.masked(line)));
        }
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
        *height = lines.len();
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

    /// Ends a progress line so that the next message starts on its own line.
    pub(crate) fn clear_progress(&self) {
        let mut last = self.last_progress.lock().unwrap_or_else(|p| p.into_inner());
        if self.stderr_tty && !last.is_empty() {
            let _ = writeln!(std::io::stderr().lock());
        }
        last.clear();
        // A message after a board leaves the board where it is.
        *self.board_height.lock().unwrap_or_else(|p| p.into_inner()) = 0;
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
