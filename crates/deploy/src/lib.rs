//! `kubectl rails deploy`, in steps: preflight (doctor's questions about the app Secret, the pull
//! secret and the IngressClass) while taking the deploy lease; then plan (render, and a
//! server-side dry run of everything), migrate (the migration Job, before any pod changes),
//! apply (server-side apply, then pruning), wait (a watch that fails fast on hopeless pods) and
//! record (the release history). Beside it: [`diff`] (what a deploy would change) and
//! [`destroy`] (what of the app a namespace holds, and deleting it).
//!
//! It never prompts and never prints: questions are the binary's job, and everything worth
//! saying goes through a [`Reporter`]. It reads the app Secret to check its keys and take a keyed
//! digest of it (so pods roll when a value changes); its one write there adds the random digest
//! key to a Secret written without one (by `kubectl create secret`), once the lease is held. It
//! never reports a value.

pub mod bake;
pub mod canary;
pub mod destroy;
pub mod diagnose;
pub mod diff;
pub mod lease;
pub mod maintenance;
mod migrate;
mod patience;
mod preflight;
pub mod progress;
pub mod release;
pub mod route;
mod run;
mod volume;
mod wait;

use std::time::Duration;

use kubectl_rails_core::AppSpec;
use kubectl_rails_kube::KubeError;
use serde::Serialize;

pub use preflight::{MissingInputs, missing_inputs};
pub use run::{deploy, deploy_canary};
pub use volume::holder_node;

/// Where the deploy says what it is doing.
pub trait Reporter: Sync {
    /// A step of the deploy.
    fn step(&self, message: &str);
    /// A status line that replaces the previous one (`web 2/3 ready`).
    fn progress(&self, line: &str);
    /// A line of the migration's log.
    fn log(&self, line: &str);
    fn warn(&self, message: &str);
    fn note(&self, message: &str);
    /// Where the migration stands (`running`, `done`, `skipped`, ...), for a live display.
    fn migration(&self, _state: &str) {}
    /// Where every process's rollout stands, on each change and every second. A terminal can
    /// redraw one line per process in place; by default it is one status line.
    fn rollout(&self, processes: &[progress::ProcessProgress]) {
        self.progress(&progress::summary(processes));
    }
    /// Runs once the lease is held and the preflight passed, before the deploy writes anything:
    /// the binary's pre-deploy hook, which two deploys must not run at once. An error
    /// ([`DeployError::Refused`]) stops the deploy.
    fn before_changes(&self) -> futures::future::BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrateMode {
    Auto,
    Skip,
    Only,
}

/// One deploy: the spec as it should run (image resolved, namespace chosen) and how.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub spec: AppSpec,
    pub namespace: String,
    pub migrate: MigrateMode,
    pub dry_run: bool,
    pub timeout: Duration,
    /// Who deploys (`user@host` from the kubeconfig), for the lease and the release record.
    pub user: String,
    pub git_sha: Commit,
    /// Recorded with the release (`rollback to v3`).
    pub note: Option<String>,
    /// The server's version, for what renders differently on older servers.
    pub server_version: Option<kubectl_rails_core::version::ServerVersion>,
    /// The registry named the image's digest to this machine just now, with the pull secret's
    /// credentials: a 401 at the kubelet is then its late read of the pull secret (its cache of
    /// a new namespace's Secrets may fill after the first pull), worth a longer wait.
    pub pull_checked: bool,
}

/// The commit a release is built from. Asking git takes a while in a large repository, so the
/// answer may come while the deploy runs; it is awaited only when the release is recorded.
#[derive(Clone)]
pub struct Commit(futures::future::Shared<futures::future::BoxFuture<'static, Option<String>>>);

impl Commit {
    pub fn known(sha: Option<String>) -> Self {
        Self::pending(async move { sha })
    }

    /// `answer` should already be running (a spawned task): it is only polled when needed.
    pub fn pending(
        answer: impl std::future::Future<Output = Option<String>> + Send + 'static,
    ) -> Self {
        use futures::FutureExt;
        Commit(answer.boxed().shared())
    }

    pub async fn get(&self) -> Option<String> {
        self.0.clone().await
    }
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0.peek() {
            Some(Some(sha)) => sha,
            Some(None) => "none",
            None => "pending",
        })
    }
}

/// What a finished deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployOutcome {
    pub app: String,
    pub namespace: String,
    pub image: String,
    /// The release recorded, `None` when nothing changed or nothing was recorded (dry run).
    pub revision: Option<u32>,
    pub changed: bool,
    pub dry_run: bool,
    pub migration: MigrationOutcome,
    pub applied: Vec<Applied>,
    pub pruned: Vec<Applied>,
    pub processes: Vec<progress::ProcessProgress>,
    /// The app's HTTPRoute as its Gateway reported it, when it routes through one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<route::RouteOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationOutcome {
    Ran { job: String },
    AlreadyRan { job: String },
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub kind: String,
    pub name: String,
    pub action: String,
}

/// Why a deploy stopped. Each variant says what state the app was left in.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{message}")]
    Preflight {
        message: String,
        hint: Option<String>,
    },
    /// What runs before the deploy's changes (the pre-deploy hook) said no.
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    #[error("another deploy of `{app}` is running (held by {holder} since {since})")]
    Locked {
        app: String,
        holder: String,
        since: String,
    },
    #[error(
        "the deploy lease of `{app}` was taken over by {holder} while this deploy was stopped; this deploy wrote nothing more"
    )]
    LeaseLost { app: String, holder: String },
    #[error(
        "the deploy lease of `{app}` could not be renewed for {}s, so another deploy may take it; this deploy stopped",
        failing.as_secs()
    )]
    LeaseUnrenewed { app: String, failing: Duration },
    #[error(
        "the migration Job `{job}` failed ({reason}); nothing was rolled out{}",
        keeps_serving(.serving)
    )]
    MigrationFailed {
        job: String,
        reason: String,
        logs: Vec<String>,
        /// The release still running, if there is one.
        serving: Option<u32>,
        /// What to do, when the failure is not the migration's own (a pod that cannot be placed).
        hint: Option<String>,
    },
    #[error("pod `{pod}` of `{process}` is stuck in {reason}: {message}")]
    Hopeless {
        process: String,
        pod: String,
        reason: String,
        message: String,
        events: Vec<String>,
        logs: Vec<String>,
        hint: Option<String>,
        revision: Option<u32>,
    },
    #[error(
        "the Gateway `{gateway}` did not accept HTTPRoute `{route}`: `{condition}` is false ({reason}: {message}); {}",
        released(.revision)
    )]
    RouteRefused {
        route: String,
        gateway: String,
        condition: String,
        reason: String,
        message: String,
        revision: Option<u32>,
    },
    #[error("timed out after {waited:?} waiting for the rollout ({progress})")]
    Timeout {
        waited: Duration,
        progress: String,
        revision: Option<u32>,
    },
}

fn released(revision: &Option<u32>) -> String {
    match revision {
        Some(v) => format!(
            "release v{v} is deployed (its pods run), but requests through the Gateway may not reach it"
        ),
        None => {
            "the release's pods run, but requests through the Gateway may not reach them".into()
        }
    }
}

fn keeps_serving(serving: &Option<u32>) -> String {
    serving.map_or(String::new(), |v| {
        format!(" and release v{v} keeps serving")
    })
}

impl DeployError {
    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Kube(e) => e.hint(),
            Self::Preflight { hint, .. } | Self::Refused { hint, .. } => hint.clone(),
            Self::Locked { .. } => Some("wait for it to finish, then run `kubectl rails deploy` again".into()),
            Self::LeaseUnrenewed { .. } => Some("the cluster could not be reached for a while: see where the deploy stands with `kubectl rails status`, then deploy again".into()),
            Self::LeaseLost { .. } => Some("another deploy went ahead: see where it stands with `kubectl rails status` and `kubectl rails releases` before deploying again".into()),
            Self::MigrationFailed { hint: Some(h), .. } => Some(h.clone()),
            Self::MigrationFailed { hint: None, .. } => Some("fix the migration, build a new image, and deploy again".into()),
            Self::Hopeless { hint, .. } => Some(match hint {
                Some(h) => format!("{h}; pods of the previous release keep serving (maxUnavailable 0), or run `kubectl rails rollback`"),
                None => "pods of the previous release keep serving (maxUnavailable 0); fix and deploy again, or run `kubectl rails rollback`".into(),
            }),
            Self::RouteRefused { .. } => Some(
                "fix what the Gateway says (`kubectl rails doctor` checks the Gateway, its listeners and the route), then run `kubectl rails deploy` again: it asks the Gateway again".into(),
            ),
            Self::Timeout { .. } => Some(
                "the new pods are still starting: watch with `kubectl rails status -w`, or run `kubectl rails rollback`".into(),
            ),
        }
    }
}
