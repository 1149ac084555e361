//! `kubectl rails cron`: the app's scheduled commands (the spec's `cron:`, deployed as CronJobs).
//! `run` starts a Job from a CronJob as `kubectl create job --from=cronjob/...` does and waits
//! for it; `suspend` and `resume` change the cluster and the spec, so a deploy keeps the choice.

use std::time::Duration;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::file::{self, edit};
use kubectl_rails_core::render::{cron_job_name, labels};
use kubectl_rails_kube::api_err;

use crate::cli::{CronCommand, OutputFormat};
use crate::exit;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) async fn run(
    command: &CronCommand,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let formats: &[OutputFormat] = match command {
        CronCommand::List => &[OutputFormat::Json, OutputFormat::Yaml],
        _ => &[],
    };
    let format = settings.output(formats)?;
    let spec = settings.load_spec(printer)?.spec;
    if let CronCommand::Run { name, .. }
    | CronCommand::Suspend { name }
    | CronCommand::Resume { name } = command
        && !spec.cron.contains_key(name)
    {
        return Err(exit::usage(
            format!(
                "`{name}` is not a `cron:` entry of the spec (it has {})",
                if spec.cron.is_empty() {
                    "none".to_string()
                } else {
                    spec.cron.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
            Some("add it under `cron:` in the spec and deploy".into()),
        ));
    }
    let target = settings.target(Some(&spec)).await?;
    let api: Api<CronJob> = Api::namespaced(target.conn.client.clone(), &target.namespace);
    match command {
        CronCommand::List => list(&api, &spec, format, printer).await,
        CronCommand::Run { name, timeout } => {
            let jobs: Api<Job> = Api::namespaced(target.conn.client.clone(), &target.namespace);
            let pods: Api<Pod> = Api::namespaced(target.conn.client.clone(), &target.namespace);
            run_now(&api, &jobs, &pods, &spec, name, *timeout, printer).await
        }
        CronCommand::Suspend { name } => suspend(&api, &spec, name, true, settings, printer).await,
        CronCommand::Resume { name } => suspend(&api, &spec, name, false, settings, printer).await,
    }
}

async fn list(
    api: &Api<CronJob>,
    spec: &AppSpec,
    format: Option<OutputFormat>,
    printer: &Printer,
) -> anyhow::Result<()> {
    let live = api
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
        rows.push(serde_json::json!({
            "name": name,
            "schedule": entry.schedule,
            "timeZone": entry.time_zone,
            "command": entry.command,
            "deployed": found.is_some(),
            "suspended": found.and_then(|c| c.spec.as_ref()?.suspend).unwrap_or(entry.suspend),
            "lastSchedule": status.and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0.to_string()),
            "active": status.and_then(|s| s.active.as_ref()).map_or(0, Vec::len),
        }));
    }
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&rows)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&rows)?)?,
        _ if rows.is_empty() => printer.info("the spec has no `cron:` entries"),
        _ => {
            let mut t = Table::new();
            t.load_preset(NOTHING).set_header(vec![
                "NAME",
                "SCHEDULE",
                "TIME ZONE",
                "STATE",
                "LAST RUN",
                "RUNNING",
                "COMMAND",
            ]);
            for r in &rows {
                let state = match (r["deployed"].as_bool(), r["suspended"].as_bool()) {
                    (Some(false), _) => "not deployed",
                    (_, Some(true)) => "suspended",
                    _ => "scheduled",
                };
                t.add_row(vec![
                    r["name"].as_str().unwrap_or_default().to_string(),
                    r["schedule"].as_str().unwrap_or_default().to_string(),
                    r["timeZone"].as_str().unwrap_or("cluster's").to_string(),
                    state.to_string(),
                    r["lastSchedule"].as_str().unwrap_or("-").to_string(),
                    r["active"].to_string(),
                    r["command"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .filter_map(|w| w.as_str())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default(),
                ]);
            }
            printer.out(&t.to_string())?;
        }
    }
    Ok(())
}

/// A Job from the CronJob's template, owned by it, then its pod followed to the end.
async fn run_now(
    cronjobs: &Api<CronJob>,
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    spec: &AppSpec,
    name: &str,
    timeout: Duration,
    printer: &Printer,
) -> anyhow::Result<()> {
    let cj_name = cron_job_name(&spec.name, name);
    let cronjob = cronjobs
        .get_opt(&cj_name)
        .await
        .map_err(api_err(format!("read CronJob `{cj_name}`")))?
        .ok_or_else(|| {
            exit::failure(
                format!("CronJob `{cj_name}` is not deployed"),
                Some("deploy first with `kubectl rails deploy`".into()),
            )
        })?;
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
        metadata: ObjectMeta { ..meta },
        spec: template.spec,
        ..Job::default()
    };
    jobs.create(&PostParams::default(), &job)
        .await
        .map_err(api_err(format!("create Job `{job_name}`")))?;
    printer.step(&format!(
        "started Job `{job_name}` from CronJob `{cj_name}`"
    ));
    let events = watcher(
        pods.clone(),
        watcher::Config::default().labels(&format!("job-name={job_name}")),
    )
    .default_backoff()
    .applied_objects();
    futures::pin_mut!(events);
    let ended = tokio::time::timeout(timeout, async {
        while let Some(Ok(pod)) = events.next().await {
            match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Succeeded") => return Ok(pod),
                Some("Failed") => return Err(pod),
                _ => {}
            }
        }
        Err(Pod::default())
    })
    .await;
    let show_log = |pod: &Pod| {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        async move {
            if let Ok(log) = pods
                .logs(
                    &pod_name,
                    &LogParams {
                        tail_lines: Some(20),
                        ..LogParams::default()
                    },
                )
                .await
            {
                for line in log.lines() {
                    printer.info(&format!("  | {line}"));
                }
            }
        }
    };
    match ended {
        Ok(Ok(pod)) => {
            show_log(&pod).await;
            printer.step(&format!("Job `{job_name}` succeeded"));
            Ok(())
        }
        Ok(Err(pod)) => {
            show_log(&pod).await;
            Err(exit::failure(
                format!("Job `{job_name}` failed"),
                Some(format!("its log: `kubectl logs job/{job_name}`")),
            ))
        }
        Err(_) => Err(exit::with_code(
            exit::TIMEOUT,
            format!("Job `{job_name}` did not finish within {timeout:?}"),
            Some(format!(
                "it goes on; follow it with `kubectl logs -f job/{job_name}`"
            )),
        )),
    }
}

async fn suspend(
    api: &Api<CronJob>,
    spec: &AppSpec,
    name: &str,
    on: bool,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let cj_name = cron_job_name(&spec.name, name);
    let text = fs_err::read_to_string(&settings.spec_path)?;
    let edited = if on {
        edit::set_child(&text, &["cron", name], "suspend", "true")
    } else {
        edit::remove(&text, &["cron", name, "suspend"]).or(Some(text.clone()))
    }
    .ok_or_else(|| {
        exit::failure(
            format!(
                "cannot edit `cron.{name}` in `{}`",
                settings.spec_path.display()
            ),
            Some("edit the spec by hand".into()),
        )
    })?;
    file::parse(&edited, &settings.spec_path)?;
    match api
        .patch(
            &cj_name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"suspend": on}})),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => printer.note(&format!(
            "CronJob `{cj_name}` is not deployed yet; the spec says it for the next deploy"
        )),
        Err(e) => return Err(api_err(format!("patch CronJob `{cj_name}`"))(e).into()),
    }
    file::write_atomic(&settings.spec_path, &edited)?;
    printer.step(&format!(
        "`{name}` {} (CronJob `{cj_name}` and `{}`)",
        if on { "suspended" } else { "scheduled again" },
        settings.spec_path.display()
    ));
    Ok(())
}
