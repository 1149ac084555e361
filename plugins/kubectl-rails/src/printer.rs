//! All output goes through here: data to stdout, progress, prompts and logs to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// Writes data and messages; one per process.
pub(crate) struct Printer {
    stderr_tty: bool,
    verbose: u8,
    last_progress: Mutex<String>,
    /// Lines of the live board now on screen, redrawn in place (a terminal only).
    board_height: Mutex<usize>,
}

impl Printer {
    pub(crate) fn new(verbose: u8) -> Self {
        Self {
            stderr_tty: std::io::stderr().is_terminal(),
            verbose,
            last_progress: Mutex::new(String::new()),
            board_height: Mutex::new(0),
        }
    }

    /// Data for scripts. A closed pipe (`| head`) surfaces as an `io::Error` that main treats
    /// as success.
    pub(crate) fn out(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            stdout.write_all(b"\n")?;
        }
        stdout.flush()
    }

    fn err_line(&self, line: &str) {
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
            text.push_str(&format!("\r\x1b[2K{line}\n"));
        }
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
        *height = lines.len();
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
