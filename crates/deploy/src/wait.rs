//! Waiting for the rollout from watches (no polling loop), failing fast on hopeless pods.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::{CHECKSUM_ANNOTATION, labels};

use crate::diagnose::{PodProblem, log_excerpt, pod_problem, rails_hint};

/// Log lines read from a crashed container (the hint looks at all of them), and shown.
const LOG_READ: i64 = 300;
const LOG_SHOWN: usize = 20;
use crate::patience::{self, Unscheduled};
use crate::progress::{self, ProcessProgress};
use crate::{DeployError, Reporter};

/// Waits until every Deployment of `processes` (name -> process) is rolled out, a pod is hopeless, or the deadline passes.
#[allow(
    clippy::too_many_arguments,
    reason = "a deploy and a canary wait on different Deployments of one release"
)]
pub(crate) async fn rollout(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    processes: BTreeMap<String, String>,
    checksum: &str,
    reporter: &dyn Reporter,
    deadline: tokio::time::Instant,
    timeout: Duration,
    pull_checked: bool,
) -> Result<Vec<ProcessProgress>, DeployError> {
    let selector = labels::made_for(&spec.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dep_events =
        watcher(deployments, watcher::Config::default().labels(&selector)).default_backoff();
    let pod_events =
        watcher(pods.clone(), watcher::Config::default().labels(&selector)).default_backoff();
    futures::pin_mut!(dep_events, pod_events);

    let mut state: BTreeMap<String, ProcessProgress> = processes
        .values()
        .map(|p| {
            (
                p.clone(),
                ProcessProgress {
                    process: p.clone(),
                    desired: 0,
                    updated: 0,
                    ready: 0,
                    old: 0,
                    done: false,
                },
            )
        })
        .collect();
    let image = spec.image.reference();
    let mut interrupted = false;
    let mut unscheduled = Unscheduled::new();
    // A live display shows the time going by even when nothing changes.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let current: Vec<ProcessProgress> = state.values().cloned().collect();
        reporter.rollout(&current);
        if current.iter().all(|p| p.done) {
            return Ok(current);
        }
        tokio::select! {
            Some(event) = dep_events.next() => match event {
                Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                    interrupted = false;
                    let name = d.metadata.name.clone().unwrap_or_default();
                    if let Some(process) = processes.get(&name) {
                        if let Some(problem) = deadline_exceeded(&d) {
                            return Err(hopeless(&pods, ns, process, problem, client).await);
                        }
                        state.insert(process.clone(), progress::progress(process, &d));
                    }
                }
                Ok(_) => {}
                Err(e) => watch_trouble(reporter, &mut interrupted, &e),
            },
            Some(event) = pod_events.next() => match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    interrupted = false;
                    let problem = if is_new(&pod, checksum, &image) { pod_problem(&pod) } else { None };
                    match problem {
                        Some(problem) if let Some(grace) = problem.patience(pull_checked) => {
                            let (pod_name, message, what) = (problem.pod.clone(), problem.message.clone(), problem.waiting_for(pull_checked));
                            if unscheduled.waiting(&pod_name, (labels::component_of(&pod.metadata), problem), tokio::time::Instant::now() + grace) {
                                reporter.warn(&format!(
                                    "pod `{pod_name}` {what} ({message}); waiting up to {}s",
                                    grace.as_secs()
                                ));
                            }
                        }
                        Some(problem) => {
                            return Err(hopeless(&pods, ns, &labels::component_of(&pod.metadata), problem, client).await);
                        }
                        None => unscheduled.settled(pod.metadata.name.as_deref().unwrap_or_default()),
                    }
                }
                Ok(watcher::Event::Delete(pod)) => {
                    unscheduled.settled(pod.metadata.name.as_deref().unwrap_or_default());
                }
                Ok(_) => {}
                Err(e) => watch_trouble(reporter, &mut interrupted, &e),
            },
            _ = patience::sleep_until(unscheduled.next_deadline()) => {
                if let Some((process, problem)) = unscheduled.expired(tokio::time::Instant::now()) {
                    return Err(hopeless(&pods, ns, &process, problem, client).await);
                }
            }
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(deadline) => {
                return Err(DeployError::Timeout { waited: timeout, progress: progress::summary(&current), revision: None });
            }
        }
    }
}

/// Says once per outage that the watch is reconnecting (the apiserver restarted, say).
fn watch_trouble(reporter: &dyn Reporter, interrupted: &mut bool, e: &watcher::Error) {
    if !*interrupted {
        reporter.warn(&format!(
            "lost the watch on the cluster ({e}); reconnecting"
        ));
        *interrupted = true;
    }
}

/// A pod of the release being rolled out, not of the one before it.
fn is_new(pod: &Pod, checksum: &str, image: &str) -> bool {
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHECKSUM_ANNOTATION))
        .is_some_and(|c| c == checksum);
    let same_image = pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .any(|c| c.image.as_deref() == Some(image))
    });
    annotated && same_image && pod.metadata.deletion_timestamp.is_none()
}

fn deadline_exceeded(d: &Deployment) -> Option<PodProblem> {
    let c = d.status.as_ref()?.conditions.as_ref()?.iter().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    })?;
    Some(PodProblem {
        pod: d.metadata.name.clone().unwrap_or_default(),
        container: String::new(),
        reason: "ProgressDeadlineExceeded".into(),
        message: c.message.clone().unwrap_or_default(),
    })
}

/// Gathers the pod's events and last log lines, and a hint.
async fn hopeless(
    pods: &Api<Pod>,
    ns: &str,
    process: &str,
    problem: PodProblem,
    client: &Client,
) -> DeployError {
    let events_api: Api<Event> = Api::namespaced(client.clone(), ns);
    let events: Vec<String> = events_api
        .list(&ListParams::default().fields(&format!("involvedObject.name={}", problem.pod)))
        .await
        .map(|l| {
            l.items
                .into_iter()
                .rev()
                .take(5)
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default().trim()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let logs = if problem.reason == "CrashLoopBackOff" && !problem.container.is_empty() {
        let params = |previous| LogParams {
            container: Some(problem.container.clone()),
            tail_lines: Some(LOG_READ),
            previous,
            ..LogParams::default()
        };
        match pods.logs(&problem.pod, &params(true)).await {
            Ok(l) => l,
            Err(_) => pods
                .logs(&problem.pod, &params(false))
                .await
                .unwrap_or_default(),
        }
    } else {
        String::new()
    };
    let hint = rails_hint(&problem.reason, &problem.message, &events, &logs);
    DeployError::Hopeless {
        process: process.to_string(),
        pod: problem.pod,
        reason: problem.reason,
        message: problem.message,
        events,
        logs: log_excerpt(&logs, LOG_SHOWN),
        hint,
        revision: None,
    }
}
