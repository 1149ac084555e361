//! The CronJob of each `cron:` entry.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};

use super::{CRON_LABEL, Renderer, cron_job_name};
use crate::model::CronSpec;

impl Renderer<'_> {
    /// A scheduled command: the web pod with the entry's command, one run at a time.
    pub(super) fn cron_job(&self, name: &str, cron: &CronSpec) -> CronJob {
        let container =
            self.container("cron", Some(cron.command.clone()), &self.spec.web.resources);
        let mut pod = self.pod_spec("web", vec![container], Some("Never"));
        self.local_disk("cron", &self.spec.web.resources, &mut pod);
        pod.termination_grace_period_seconds = Some(30);
        let mut template = self.template("cron", pod);
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(CRON_LABEL.into(), name.to_string());
        }
        let mut meta = self.meta(&cron_job_name(&self.spec.name, name), "cron");
        if let Some(labels) = meta.labels.as_mut() {
            labels.insert(CRON_LABEL.into(), name.to_string());
        }
        CronJob {
            metadata: meta,
            spec: Some(CronJobSpec {
                schedule: cron.schedule.clone(),
                time_zone: cron.time_zone.clone(),
                suspend: Some(cron.suspend),
                // A run still going when the next is due is not doubled.
                concurrency_policy: Some("Forbid".into()),
                starting_deadline_seconds: Some(300),
                successful_jobs_history_limit: Some(3),
                failed_jobs_history_limit: Some(3),
                job_template: JobTemplateSpec {
                    metadata: None,
                    spec: Some(JobSpec {
                        backoff_limit: Some(0),
                        ttl_seconds_after_finished: Some(24 * 3600),
                        template,
                        ..JobSpec::default()
                    }),
                },
            }),
            ..CronJob::default()
        }
    }
}
