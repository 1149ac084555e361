//! Working inside the app without hunting for pod names: `exec` picks a Ready pod of the newest
//! revision, `run` clones the web pod template into a one-off pod, `logs` merges every pod's log.
//!
//! It prints nothing of its own: command output goes to our stdout/stderr through a filter the
//! caller provides (the binary masks secret values), log lines to a sink the caller provides.

pub mod logs;
pub mod oneoff;
pub mod session;
pub mod target;

use k8s_openapi::api::core::v1::Pod;
use kubectl_rails_kube::KubeError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("process `{process}` does not exist (the app has {known})")]
    UnknownProcess { process: String, known: String },
    #[error("no Ready pod of `{process}` in namespace `{namespace}`: {pods}")]
    NoReadyPod {
        process: String,
        namespace: String,
        pods: String,
    },
    #[error("`{app}` has no pods in namespace `{namespace}`")]
    NoPods { app: String, namespace: String },
    #[error("`{app}` is not deployed in namespace `{namespace}`")]
    NotDeployed { app: String, namespace: String },
    #[error("the one-off pod `{pod}` failed: {problem}")]
    PodFailed { pod: String, problem: String },
    #[error("the command could not run: {message}")]
    Remote { message: String },
}

impl ExecError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Kube(e) => e.hint(),
            Self::UnknownProcess { .. } => Some("pick one with `--process`".into()),
            Self::NoReadyPod { .. } => Some(
                "see why with `kubectl rails status` and `kubectl rails logs`; `kubectl rails run -- CMD` starts a one-off pod instead".into(),
            ),
            Self::NoPods { .. } | Self::NotDeployed { .. } => Some("deploy it first with `kubectl rails deploy`".into()),
            Self::PodFailed { .. } => Some("check the image and secrets with `kubectl rails status`".into()),
            Self::Remote { .. } => None,
        }
    }
}

/// A hopeless state of a pod (image pull, config error), as text.
pub(crate) fn problem(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.as_deref()?;
            matches!(
                reason,
                "ImagePullBackOff"
                    | "ErrImagePull"
                    | "CreateContainerConfigError"
                    | "InvalidImageName"
            )
            .then(|| format!("{reason}: {}", w.message.clone().unwrap_or_default()))
        })
}
