//! The migration Job: run to completion, with its log streamed, before any workload changes.

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, LogParams, PropagationPolicy};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_core::render::Object;
use kubectl_rails_kube::{Applier, KubeError, api_err};

use crate::diagnose::{PodProblem, pod_problem, rails_hint};
use crate::patience::{self, Unscheduled};
use crate::{DeployError, MigrationOutcome, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    Absent,
    /// Its pod has not started the command (or there is no pod yet): starting afresh is safe.
    Pending,
    /// Its pod runs the command: a migration half done must not be killed.
    Running,
    Succeeded,
    Failed,
}

fn job_state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is = |t: &str| {
        conditions
            .iter()
            .any(|c| c.type_ == t && c.status == "True")
    };
    if is("Complete") {
        JobState::Succeeded
    } else if is("Failed") {
        JobState::Failed
    } else {
        JobState::Running
    }
}

/// The state of the release's migration Job, if it exists. The Job controller marks a Job
/// Complete up to a second after its pod ends (it batches pod updates), and a deploy does not wait
/// for that: a Job still running by its own status is asked about its pod.
/// `job` is the Job as the server has it (from the deploy's dry run), if it exists.
pub(crate) async fn state(
    client: &Client,
    ns: &str,
    name: &str,
    job: Option<&Job>,
) -> Result<JobState, KubeError> {
    let state = job.map_or(JobState::Absent, job_state);
    if state != JobState::Running {
        return Ok(state);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&kube::api::ListParams::default().labels(&format!("job-name={name}")))
        .await
        .map_err(api_err(format!("list the pods of Job `{name}`")))?;
    let phases: Vec<&str> = list
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.phase.as_deref())
        .collect();
    Ok(if phases.contains(&"Succeeded") {
        JobState::Succeeded
    } else if phases.contains(&"Failed") {
        JobState::Failed
    } else if phases.contains(&"Running") {
        JobState::Running
    } else {
        JobState::Pending
    })
}

/// How many log lines a failure shows.
const TAIL: i64 = 20;

/// Runs the Job and waits for it, streaming its log to the reporter. Returns the node its pod
/// ran on, when seen.
pub(crate) async fn run(
    client: &Client,
    ns: &str,
    job: &Object,
    previous: JobState,
    reporter: &dyn Reporter,
    deadline: tokio::time::Instant,
    pull_checked: bool,
) -> Result<(MigrationOutcome, Option<String>), DeployError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let name = job.name.clone();
    if previous == JobState::Running {
        // An interrupted deploy's run of this release, still migrating: killing it could leave a
        // half-applied schema (a DDL without a transaction, a concurrent index), so it is
        // followed to its end instead.
        reporter.step(&format!(
            "the migrations of this release are still running (Job `{name}`, started by an interrupted deploy): following them"
        ));
    } else if previous != JobState::Absent {
        // A failed run of the same release, or one whose pod never started: start it afresh.
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        let deleting = jobs
            .delete(&name, &params)
            .await
            .map_err(api_err(format!("delete the earlier run of Job `{name}`")))?;
        // Foreground deletion keeps the Job until its pods are gone. Applying before that would
        // write into the dying Job, and the new run would vanish with it.
        if let Some(uid) = deleting.left().and_then(|job| job.metadata.uid) {
            let gone = kube::runtime::wait::await_condition(
                jobs.clone(),
                &name,
                kube::runtime::conditions::is_deleted(&uid),
            );
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                return Err(DeployError::MigrationFailed {
                    serving: None,
                    job: name,
                    reason: "its earlier run was still being deleted when `--timeout` passed"
                        .into(),
                    logs: vec![],
                    hint: Some("run the deploy again in a moment".into()),
                });
            }
        }
    }
    reporter.migration(&format!("running (Job `{name}`)"));
    if previous != JobState::Running {
        reporter.step(&format!("running migrations: Job `{name}`"));
        Applier::new(client.clone(), ns, false)
            .write(&job.value)
            .await?;
    }

    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut streaming: Option<tokio::task::JoinHandle<()>> = None;
    let job_events = watcher(
        jobs.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .applied_objects();
    let pod_events = watcher(
        pods.clone(),
        watcher::Config::default().labels(&format!("job-name={name}")),
    )
    .default_backoff()
    .applied_objects();
    futures::pin_mut!(job_events, pod_events);
    let mut unscheduled = Unscheduled::new();
    // Lines shown so far, whether the container has ended, and the pod last seen.
    let (mut printed, mut ended, mut last_pod) = (0usize, false, None::<String>);
    let mut node = None::<String>;
    let result = loop {
        tokio::select! {
            Some(line) = lines.recv() => {
                reporter.log(&line);
                printed += 1;
            }
            Some(event) = job_events.next() => {
                let Ok(current) = event else { continue };
                match job_state(&current) {
                    JobState::Succeeded => {
                        ended = true;
                        break Ok(MigrationOutcome::Ran { job: name.clone() });
                    }
                    JobState::Failed => {
                        ended = true;
                        let reason = current
                            .status
                            .and_then(|s| s.conditions)
                            .and_then(|c| c.into_iter().find(|c| c.type_ == "Failed"))
                            .and_then(|c| c.reason)
                            .unwrap_or_else(|| "BackoffLimitExceeded".into());
                        break Err(failed(&pods, &name, reason).await);
                    }
                    _ => {}
                }
            }
            Some(event) = pod_events.next() => {
                let Ok(pod) = event else { continue };
                match pod_problem(&pod) {
                    Some(problem) if let Some(grace) = problem.patience(pull_checked) => {
                        let (pod_name, message, what) = (problem.pod.clone(), problem.message.clone(), problem.waiting_for(pull_checked));
                        if unscheduled.waiting(&pod_name, problem, tokio::time::Instant::now() + grace) {
                            reporter.warn(&format!(
                                "the migration pod {what} ({message}); waiting up to {}s",
                                grace.as_secs()
                            ));
                        }
                    }
                    Some(problem) => break Err(unplaceable_or_stuck(&name, problem)),
                    None => unscheduled.settled(pod.metadata.name.as_deref().unwrap_or_default()),
                }
                let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
                last_pod = pod.metadata.name.clone();
                if let Some(n) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    node = Some(n);
                }
                if phase == "Running" && streaming.is_none() {
                    streaming = Some(tokio::spawn(stream_logs(pods.clone(), pod.metadata.name.clone().unwrap_or_default(), lines_tx.clone())));
                }
                // With one completion and no retries (backoffLimit 0) the pod's end is the Job's:
                // no need to wait for the Job controller, which batches pod updates for a second.
                match phase.as_str() {
                    "Succeeded" => {
                        ended = true;
                        break Ok(MigrationOutcome::Ran { job: name.clone() });
                    }
                    "Failed" => {
                        ended = true;
                        break Err(failed(&pods, &name, exit_reason(&pod)).await);
                    }
                    _ => {}
                }
            }
            _ = patience::sleep_until(unscheduled.next_deadline()) => {
                if let Some(problem) = unscheduled.expired(tokio::time::Instant::now()) {
                    break Err(unplaceable_or_stuck(&name, problem));
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                break Err(DeployError::MigrationFailed {
                    serving: None,
                    job: name.clone(),
                    reason: "it did not finish before `--timeout`".into(),
                    logs: tail(&pods, &name).await,
                    hint: None,
                });
            }
        }
    };
    // Stop following, and show what already arrived.
    if let Some(task) = streaming {
        task.abort();
    }
    drop(lines_tx);
    while let Ok(line) = lines.try_recv() {
        reporter.log(&line);
        printed += 1;
    }
    // An ended container's log is whole: one read shows the lines the stream had not delivered,
    // rather than waiting for a followed log to close (kwok's never does).
    if ended && let Some(pod) = last_pod {
        let params = LogParams {
            container: Some("migrate".into()),
            ..LogParams::default()
        };
        if let Ok(all) = pods.logs(&pod, &params).await {
            for line in all.lines().skip(printed) {
                reporter.log(line);
            }
        }
    }
    match &result {
        Ok(_) => {
            reporter.step("migrations done");
            reporter.migration("done");
        }
        Err(_) => reporter.migration("failed"),
    }
    result.map(|outcome| (outcome, node))
}

async fn stream_logs(pods: Api<Pod>, pod: String, tx: tokio::sync::mpsc::UnboundedSender<String>) {
    let params = LogParams {
        follow: true,
        container: Some("migrate".into()),
        ..LogParams::default()
    };
    let Ok(stream) = pods.log_stream(&pod, &params).await else {
        return;
    };
    let mut lines = stream.lines();
    while let Ok(Some(line)) = lines.try_next().await {
        if tx.send(line).is_err() {
            return;
        }
    }
}

async fn tail(pods: &Api<Pod>, job: &str) -> Vec<String> {
    let Ok(list) = pods
        .list(&kube::api::ListParams::default().labels(&format!("job-name={job}")))
        .await
    else {
        return vec![];
    };
    let Some(pod) = list.items.into_iter().last().and_then(|p| p.metadata.name) else {
        return vec![];
    };
    let params = LogParams {
        tail_lines: Some(TAIL),
        container: Some("migrate".into()),
        ..LogParams::default()
    };
    pods.logs(&pod, &params)
        .await
        .map(|l| l.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

async fn failed(pods: &Api<Pod>, job: &str, reason: String) -> DeployError {
    DeployError::MigrationFailed {
        serving: None,
        job: job.to_string(),
        reason,
        logs: tail(pods, job).await,
        hint: None,
    }
}

/// How the migration container ended, from a pod that Failed.
fn exit_reason(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "migrate"))
        .and_then(|c| c.state.as_ref()?.terminated.as_ref())
        .map_or_else(
            || "the migration pod failed".into(),
            |t| format!("the migration exited with code {}", t.exit_code),
        )
}

/// The migration pod never ran its command: the fix is in the cluster or the spec, not the migration.
fn unplaceable_or_stuck(job: &str, problem: PodProblem) -> DeployError {
    let hint = rails_hint(&problem.reason, &problem.message, &[], "");
    DeployError::MigrationFailed {
        serving: None,
        job: job.to_string(),
        reason: format!("{}: {}", problem.reason, problem.message),
        logs: vec![],
        hint,
    }
}
