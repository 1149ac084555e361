//! The migration Job: the release's `db:migrate`, run once before any workload changes.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use sha2::{Digest, Sha256};

use super::{DEFAULT_MIGRATE_DEADLINE_SECONDS, Renderer, hex};

impl Renderer<'_> {
    /// The Job's name is a digest of its pod template. A Job's template cannot be changed, so a
    /// release whose migration pod differs in anything (image, config, command, resources) gets
    /// a Job of its own, and migrates once.
    fn migrate_job_name(&self, template: &PodTemplateSpec) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(template).unwrap_or_default());
        format!("{}-migrate-{}", self.spec.name, &hex(&h.finalize())[..8])
    }

    pub(super) fn migrate_job(&self) -> Job {
        let spec = self.spec;
        let container = self.container(
            "migrate",
            Some(spec.migrate.command.clone()),
            &spec.web.resources,
        );
        // The migration runs where web runs: same nodes, same volume.
        let mut pod = self.pod_spec("web", vec![container], Some("Never"));
        pod.termination_grace_period_seconds = Some(30);
        self.local_disk("migrate", &spec.web.resources, &mut pod);
        let template = self.template("migrate", pod);
        Job {
            metadata: self.meta(&self.migrate_job_name(&template), "migrate"),
            spec: Some(JobSpec {
                // A failed migration is reported, not retried: retries hide the first error.
                backoff_limit: Some(0),
                active_deadline_seconds: Some(
                    self.inputs
                        .migrate_deadline_seconds
                        .unwrap_or(DEFAULT_MIGRATE_DEADLINE_SECONDS),
                ),
                ttl_seconds_after_finished: Some(7 * 24 * 3600),
                template,
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::render::test_support::{object, spec};
    use crate::render::{RenderInputs, render};

    #[test]
    fn the_migration_deadline_follows_the_callers_timeout() {
        let s = spec("");
        let deadline = |inputs: &RenderInputs| {
            object(&render(&s, inputs), "Job")["spec"]["activeDeadlineSeconds"].clone()
        };
        assert_eq!(deadline(&RenderInputs::default()), 1800);
        let long = RenderInputs {
            migrate_deadline_seconds: Some(7200),
            ..RenderInputs::default()
        };
        assert_eq!(deadline(&long), 7200);
        assert_eq!(
            object(&render(&s, &long), "Job")["metadata"]["name"],
            object(&render(&s, &RenderInputs::default()), "Job")["metadata"]["name"],
            "the deadline is not part of the pod template, so the Job keeps its name"
        );
    }
}
