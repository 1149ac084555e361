//! The app's scheduled commands (the spec's `cron:`, deployed as CronJobs) in the cluster: what
//! each is doing ([`list`]), a run started now as `kubectl create job --from=cronjob/...` does
//! and followed to its end ([`start`], [`StartedJob::wait`]), and [`suspend`] and resume.
//!
//! It never edits the spec file and never prints: keeping the spec in step with a suspend, and
//! saying what happened, are the caller's.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::{cron_job_name, labels};
use kubectl_rails_kube::{KubeError, api_err};
use serde::Serialize;

/// One `cron:` entry of the spec and its CronJob. `-o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronRow {
    /// Running Jobs.
    pub active: usize,
    pub command: Vec<String>,
    pub deployed: bool,
    /// When it last started a Job (RFC 3339).
    pub last_schedule: Option<String>,
    pub name: String,
    pub schedule: String,
    pub suspended: bool,
    pub time_zone: Option<String>,
}

/// Every `cron:` entry of the spec, with its CronJob's state when it is deployed.
pub async fn list(client: &Client, ns: &str, spec: &AppSpec) -> Result<Vec<CronRow>, KubeError> {
    let live = Api::<CronJob>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&labels::made_for(&spec.name)))
        .await
        .map_err(api_err("list the app's CronJobs"))?;
    let mut rows = Vec::new();
    for (name, entry) in &spec.cron {
        let found = live
            .items
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(&cron_job_name(&spec.name, name)));
        let status = found.and_then(|c| c.status.as_ref());
        rows.push(CronRow {
            active: status.and_then(|s| s.active.as_ref()).map_or(0, Vec::len),
            command: entry.command.clone(),
            deployed: found.is_some(),
            last_schedule: status
                .and_then(|s| s.last_schedule_time.as_ref())
                .map(|t| t.0.to_string()),
            name: name.clone(),
            schedule: entry.schedule.clone(),
            suspended: found
                .and_then(|c| c.spec.as_ref()?.suspend)
                .unwrap_or(entry.suspend),
            time_zone: entry.time_zone.clone(),
        });
    }
    Ok(rows)
}

/// A Job started from a CronJob.
pub struct StartedJob {
    pub name: String,
    pub cronjob: String,
    pods: Api<Pod>,
}

/// How a started Job ended.
#[derive(Debug)]
pub enum JobEnd {
    /// Its pod succeeded; the last lines of its log.
    Succeeded(Vec<String>),
    /// Its pod failed; the last lines of its log.
    Failed(Vec<String>),
    /// It did not end within the time given; it goes on. The last error of the watch on its
    /// pod, when the watch failed meanwhile (it is resumed after one).
    TimedOut(Option<String>),
}

/// Starts a Job from the CronJob of `cron:` entry `name`, owned by it, as
/// `kubectl create job --from=cronjob/...` does; `None` when that CronJob is not deployed.
pub async fn start(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    name: &str,
) -> Result<Option<StartedJob>, KubeError> {
    let cj_name = cron_job_name(&spec.name, name);
    let Some(cronjob) = Api::<CronJob>::namespaced(client.clone(), ns)
        .get_opt(&cj_name)
        .await
        .map_err(api_err(format!("read CronJob `{cj_name}`")))?
    else {
        return Ok(None);
    };
    let template = cronjob
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let stamp = k8s_openapi::jiff::Timestamp::now().as_second();
    let job_name = format!("{cj_name}-manual-{}", stamp % 100_000_000);
    let mut meta = template.metadata.unwrap_or_default();
    meta.name = Some(job_name.clone());
    meta.labels = cronjob.metadata.labels.clone();
    meta.annotations = Some(
        [(
            "cronjob.kubernetes.io/instantiate".to_string(),
            "manual".to_string(),
        )]
        .into(),
    );
    meta.owner_references = Some(vec![OwnerReference {
        api_version: CronJob::api_version(&()).to_string(),
        kind: CronJob::kind(&()).to_string(),
        name: cj_name.clone(),
        uid: cronjob.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    let job = Job {
        metadata: meta,
        spec: template.spec,
        ..Job::default()
    };
    Api::<Job>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &job)
        .await
        .map_err(api_err(format!("create Job `{job_name}`")))?;
    Ok(Some(StartedJob {
        name: job_name,
        cronjob: cj_name,
        pods: Api::namespaced(client.clone(), ns),
    }))
}

impl StartedJob {
    /// Follows the Job's pod until it succeeds, fails, or `timeout` passes.
    pub async fn wait(&self, timeout: Duration) -> JobEnd {
        let events = watcher(
            self.pods.clone(),
            watcher::Config::default().labels(&format!("job-name={}", self.name)),
        )
        .default_backoff()
        .applied_objects();
        futures::pin_mut!(events);
        // A watch error says nothing about the Job: the watch is resumed (with backoff) until
        // the pod ends or `timeout` passes, which then names the last error.
        let mut last_error = None;
        let ended = tokio::time::timeout(timeout, async {
            while let Some(event) = events.next().await {
                let pod = match event {
                    Ok(pod) => pod,
                    Err(e) => {
                        last_error = Some(e.to_string());
                        continue;
                    }
                };
                match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                    Some("Succeeded") => return Some(Ok(pod)),
                    Some("Failed") => return Some(Err(pod)),
                    _ => {}
                }
            }
            None
        })
        .await;
        match ended {
            Ok(Some(Ok(pod))) => JobEnd::Succeeded(self.log_tail(&pod).await),
            Ok(Some(Err(pod))) => JobEnd::Failed(self.log_tail(&pod).await),
            Ok(None) | Err(_) => JobEnd::TimedOut(last_error),
        }
    }

    /// The last 20 lines of a pod's log, or none when it cannot be read.
    async fn log_tail(&self, pod: &Pod) -> Vec<String> {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let params = LogParams {
            tail_lines: Some(20),
            ..LogParams::default()
        };
        match self.pods.logs(&pod_name, &params).await {
            Ok(log) => log.lines().map(str::to_string).collect(),
            Err(_) => vec![],
        }
    }
}

/// Suspends (`on`) or resumes the CronJob of `cron:` entry `name`; `false` when it is not
/// deployed.
pub async fn suspend(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    name: &str,
    on: bool,
) -> Result<bool, KubeError> {
    let cj_name = cron_job_name(&spec.name, name);
    match Api::<CronJob>::namespaced(client.clone(), ns)
        .patch(
            &cj_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"suspend": on}})),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(api_err(format!("patch CronJob `{cj_name}`"))(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_row_prints_as_the_json_of_cron_list() {
        let row = super::CronRow {
            active: 0,
            command: vec!["bin/rails".into(), "cleanup".into()],
            deployed: true,
            last_schedule: None,
            name: "cleanup".into(),
            schedule: "30 4 * * *".into(),
            suspended: false,
            time_zone: Some("Europe/Madrid".into()),
        };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"active":0,"command":["bin/rails","cleanup"],"deployed":true,"lastSchedule":null,"name":"cleanup","schedule":"30 4 * * *","suspended":false,"timeZone":"Europe/Madrid"}"#
        );
    }
}
