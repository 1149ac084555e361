//! What a deploy shows while it runs: the deploy crate reports through the printer, and on a
//! terminal the rollout is a live board, one line per process.

use futures::future::BoxFuture;
use kubectl_rails_deploy::progress::ProcessProgress;
use kubectl_rails_deploy::{DeployError, Reporter};

use super::hooks;
use crate::printer::Printer;

/// The deploy crate reports through the printer; on a terminal the rollout is a live board.
pub(crate) struct PrinterReporter<'a> {
    printer: &'a Printer,
    started: std::time::Instant,
    migration: std::sync::Mutex<String>,
    pre_deploy: Option<&'a PreDeploy>,
}

/// The pre-deploy hook, run once the deploy holds the lease.
pub(crate) struct PreDeploy {
    pub folder: std::path::PathBuf,
    pub env: hooks::HookEnv,
    pub app_dir: std::path::PathBuf,
    pub timeout: std::time::Duration,
}

impl<'a> PrinterReporter<'a> {
    pub(crate) fn new(printer: &'a Printer, pre_deploy: Option<&'a PreDeploy>) -> Self {
        Self {
            printer,
            started: std::time::Instant::now(),
            migration: std::sync::Mutex::new("not needed".into()),
            pre_deploy,
        }
    }
}

impl Reporter for PrinterReporter<'_> {
    fn step(&self, message: &str) {
        self.printer.step(message);
    }
    fn progress(&self, line: &str) {
        self.printer.progress(line);
    }
    fn log(&self, line: &str) {
        self.printer.info(&format!("  | {line}"));
    }
    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }
    fn note(&self, message: &str) {
        self.printer.note(message);
    }
    fn migration(&self, state: &str) {
        *self.migration.lock().unwrap_or_else(|p| p.into_inner()) = state.to_string();
    }
    fn rollout(&self, processes: &[ProcessProgress]) {
        if !self.printer.can_redraw() {
            self.printer
                .progress(&kubectl_rails_deploy::progress::summary(processes));
            return;
        }
        let migration = self
            .migration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.printer
            .board(&board(processes, &migration, self.started.elapsed()));
    }
    fn before_changes(&self) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(async {
            let Some(hook) = self.pre_deploy else {
                return Ok(());
            };
            let before = "nothing was deployed";
            hooks::run(
                &hook.folder,
                "pre-deploy",
                &hook.env,
                &hook.app_dir,
                self.printer,
                before,
                hook.timeout,
            )
            .await
            .map_err(|f| DeployError::Refused {
                message: f.message,
                hint: f.hint,
            })
        })
    }
}

/// The live display of a rollout: elapsed time, the migration, one line per process.
pub(crate) fn board(
    processes: &[ProcessProgress],
    migration: &str,
    elapsed: std::time::Duration,
) -> Vec<String> {
    let width = processes
        .iter()
        .map(|p| p.process.len())
        .chain(std::iter::once("migration".len()))
        .max()
        .unwrap_or(0);
    let mut lines = vec![format!("  rollout, {}s elapsed", elapsed.as_secs())];
    lines.push(format!("  {:<width$}  {migration}", "migration"));
    for p in processes {
        let mark = if p.done { "✓" } else { "…" };
        let mut state = format!("{}/{} ready", p.ready.min(p.desired), p.desired);
        if p.updated < p.desired {
            state.push_str(&format!(", {}/{} updated", p.updated, p.desired));
        }
        if p.old > 0 {
            state.push_str(&format!(", {} old still running", p.old));
        }
        lines.push(format!("{mark} {:<width$}  {state}", p.process));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, desired: i32, updated: i32, ready: i32, old: i32) -> ProcessProgress {
        ProcessProgress {
            process: name.into(),
            desired,
            updated,
            ready,
            old,
            done: updated == desired && ready == desired && old == 0,
        }
    }

    #[test]
    fn the_board_has_a_line_per_process_the_migration_and_the_time() {
        let lines = board(
            &[process("web", 3, 2, 2, 1), process("sidekiq", 1, 1, 1, 0)],
            "done",
            std::time::Duration::from_secs(12),
        );
        assert_eq!(
            lines,
            [
                "  rollout, 12s elapsed",
                "  migration  done",
                "… web        2/3 ready, 2/3 updated, 1 old still running",
                "✓ sidekiq    1/1 ready",
            ]
        );
    }
}
