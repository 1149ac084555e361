//! The deploy itself, step by step: preflight and the lease, then [`plan`], [`migrate`],
//! [`apply`], [`wait`] and [`record`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use kubectl_rails_core::digest::secret_digest;
use kubectl_rails_core::file;
use kubectl_rails_core::render::{self, Object, Release, RenderInputs, Stage, labels};
use kubectl_rails_kube::{Applier, ApplyOutcome, KubeError, api_err};
use sha2::{Digest, Sha256};

use crate::migrate::JobState;
use crate::preflight::{preflight, with_digest_key};
use crate::progress::{self, ProcessProgress};
use crate::release::{self, ReleaseRecord, ReleaseStatus};
use crate::route;
use crate::{
    Applied, DeployError, DeployOutcome, DeployRequest, MigrateMode, MigrationOutcome, Reporter,
    lease, migrate, volume, wait,
};

/// Runs one deploy; see the crate docs for the steps.
pub async fn deploy(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<DeployOutcome, DeployError> {
    deploy_as(client, req, reporter, None).await
}

/// Deploys the request's release as a canary taking about `percent` of the requests beside the
/// current release, whose web Deployment it leaves as it is: the same preflight, lease and
/// migration as a deploy, then the canary's objects ([`crate::canary`]), no pruning, and no new
/// release recorded (the current release's record gets an event; `promote` records one).
pub async fn deploy_canary(
    client: &Client,
    req: &DeployRequest,
    percent: u8,
    reporter: &dyn Reporter,
) -> Result<DeployOutcome, DeployError> {
    deploy_as(client, req, reporter, Some(percent)).await
}

async fn deploy_as(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
    canary: Option<u8>,
) -> Result<DeployOutcome, DeployError> {
    if req.dry_run {
        let digest = preflight(client, req, reporter)
            .await?
            .and_then(|data| secret_digest(&data));
        return deploy_held(client, req, reporter, digest, None, canary).await;
    }
    // Both only read or take the lease, so they go together; a lease taken for a deploy that
    // fails its preflight is given back at once.
    let holder = lease::holder_identity(&req.user);
    let (digest, lease) = tokio::join!(
        preflight(client, req, reporter),
        lease::acquire(client, &req.namespace, &req.spec.name, &holder, reporter)
    );
    let lease = lease?;
    // Stopped as soon as the lease is lost, even while it only waits (or a hook runs).
    let result = tokio::select! {
        r = with_lease(client, req, reporter, digest, &lease, canary) => r,
        e = lease.lost() => Err(e),
    };
    lease.release().await;
    result
}

/// Once the lease is held: the pre-deploy step, the digest key (written when missing only now
/// that the lease is ours), then the deploy.
async fn with_lease(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
    preflight: Result<Option<BTreeMap<String, ByteString>>, DeployError>,
    lease: &lease::DeployLease,
    canary: Option<u8>,
) -> Result<DeployOutcome, DeployError> {
    let data = preflight?;
    reporter.before_changes().await?;
    let digest = match data {
        Some(data) => {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &req.namespace);
            secret_digest(&with_digest_key(&secrets, &req.spec.secret_name(), data).await?)
        }
        None => None,
    };
    deploy_held(client, req, reporter, digest, Some(lease), canary).await
}

/// The deploy once the lease is held (or, for a dry run, without one).
async fn deploy_held(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
    digest: Option<String>,
    lease: Option<&lease::DeployLease>,
    canary: Option<u8>,
) -> Result<DeployOutcome, DeployError> {
    let deadline = tokio::time::Instant::now() + req.timeout;
    let held = Held(lease);
    let plan = plan(client, req, digest.as_deref(), reporter, canary).await?;
    if req.dry_run {
        return Ok(dry_run(req, plan, reporter));
    }
    if !plan.changed
        && let Some(outcome) = up_to_date(client, req, &plan, reporter).await?
    {
        return Ok(outcome);
    }
    let mut recorder = Recorder::new(client, req, &plan.history, digest.as_deref());
    if let Some(m) = &plan.inputs.maintenance {
        recorder.events.push(format!(
            "deployed during {}",
            crate::maintenance::describe(m)
        ));
    }
    let live = Applier::new(client.clone(), &req.namespace, false);
    held.check().await?;
    let mut done = live
        .apply_planned(
            plan.release
                .objects
                .iter()
                .filter(|o| matches!(o.stage, Stage::Config | Stage::Assets))
                .map(|o| &o.value),
            &plan.outcomes,
        )
        .await?;
    let (migration, migrated_on) =
        migrate(client, req, &plan, reporter, deadline, &held, &recorder).await?;
    if req.migrate == MigrateMode::Only {
        return Ok(DeployOutcome {
            applied: applied(&done),
            ..outcome(req, true, None, migration)
        });
    }
    // Every asset pod holds this release's assets and the last ones' before any web pod of
    // this release serves a page that asks for them.
    if let Some(assets_checksum) = &plan.release.assets_checksum {
        let name = req.spec.deployment_name(render::ASSETS);
        reporter.step(&format!(
            "waiting for the asset server (`{name}`): this release's assets and the last releases'"
        ));
        let processes = BTreeMap::from([(name, render::ASSETS.to_string())]);
        // One rollout board per deploy: web's. This wait says only what goes wrong.
        let quiet = Boardless(reporter);
        let waited = wait(client, req, processes, assets_checksum, &quiet, deadline).await;
        if let Err(e) = waited {
            // Web was not touched; the asset pods of the release before keep serving.
            record(&recorder, &held, Err(e)).await?;
        }
    }
    // The pods to wait for carry the checksum of the release as planned.
    let checksum = plan.release.checksum.clone();
    let old_env = plan.old_env.clone();
    if let Some(percent) = canary {
        let migrated_on = None;
        apply(&live, req, plan, migrated_on, reporter, &held, &mut done).await?;
        let name = kubectl_rails_core::render::canary::canary_deployment_name(&req.spec);
        let processes = BTreeMap::from([(name, "web-canary".to_string())]);
        let processes = wait(client, req, processes, &checksum, reporter, deadline).await?;
        held.check().await?;
        let event = format!(
            "canary {} started at {percent}% by {}",
            req.spec.image.reference(),
            req.user
        );
        release::add_event(client, &req.namespace, &req.spec.name, &event).await?;
        return Ok(DeployOutcome {
            applied: applied(&done),
            processes,
            ..outcome(req, true, None, migration)
        });
    }
    let processes = req
        .spec
        .process_names()
        .into_iter()
        .map(|p| (req.spec.deployment_name(&p), p))
        .collect();
    let applied_at = tokio::time::Instant::now();
    let pruned = apply(&live, req, plan, migrated_on, reporter, &held, &mut done).await?;
    let mut result = wait(client, req, processes, &checksum, reporter, deadline).await;
    if result.is_ok() && !old_env.is_empty() {
        held.check().await?;
        live.delete_all(&old_env).await?;
    }
    let mut route = None;
    let mut refused = None;
    if let (Ok(_), Some(gateway)) = (&result, req.spec.gateway()) {
        // An unchanged route had all the time it needed to be reported on.
        let unchanged = done
            .iter()
            .any(|o| o.kind == "HTTPRoute" && o.action == "unchanged");
        let since = if unchanged {
            applied_at
                .checked_sub(route::REPORT_GRACE)
                .unwrap_or(applied_at)
        } else {
            applied_at
        };
        match check_route(client, req, &gateway, since, deadline, reporter).await {
            Ok(r) => route = Some(r),
            // The release's pods serve (the rollout ended): it is recorded as deployed, with
            // the Gateway's refusal, and the deploy still fails.
            Err(e @ DeployError::RouteRefused { .. }) => {
                recorder.events.push(format!("route not accepted: {e}"));
                refused = Some(e);
            }
            Err(e) => result = Err(e),
        }
    }
    let processes = record(&recorder, &held, result).await?;
    if let Some(mut e) = refused {
        if let DeployError::RouteRefused { revision, .. } = &mut e {
            *revision = Some(recorder.revision);
        }
        return Err(e);
    }
    Ok(DeployOutcome {
        applied: applied(&done),
        pruned,
        processes,
        route,
        ..outcome(req, true, Some(recorder.revision), migration)
    })
}

/// Waits for the Gateway to accept the app's HTTPRoute, saying so.
async fn check_route(
    client: &Client,
    req: &DeployRequest,
    gateway: &kubectl_rails_core::model::GatewayRef,
    since: tokio::time::Instant,
    deadline: tokio::time::Instant,
    reporter: &dyn Reporter,
) -> Result<route::RouteOutcome, DeployError> {
    reporter.step(&format!(
        "waiting for the Gateway `{}` to accept HTTPRoute `{}`",
        gateway.display(&req.namespace),
        req.spec.name
    ));
    route::wait_accepted(
        client,
        &req.namespace,
        &req.spec.name,
        gateway,
        since,
        deadline,
        reporter,
    )
    .await
}

/// A reporter that draws no rollout board and no step: warnings and notes go through.
struct Boardless<'a>(&'a dyn Reporter);

impl Reporter for Boardless<'_> {
    fn step(&self, _message: &str) {}
    fn progress(&self, _line: &str) {}
    fn log(&self, line: &str) {
        self.0.log(line);
    }
    fn warn(&self, message: &str) {
        self.0.warn(message);
    }
    fn note(&self, message: &str) {
        self.0.note(message);
    }
    fn rollout(&self, _processes: &[crate::progress::ProcessProgress]) {}
}

/// The lease this deploy holds, checked before each write: a deploy that lost it (stopped
/// until it expired and another deploy took it) writes nothing more.
struct Held<'a>(Option<&'a lease::DeployLease>);

impl Held<'_> {
    async fn check(&self) -> Result<(), DeployError> {
        match self.0 {
            Some(l) => l.ensure_held().await,
            None => Ok(()),
        }
    }
}

/// What the deploy would do, found before it writes anything.
struct Plan {
    inputs: RenderInputs,
    release: Release,
    /// The migration Job of this release.
    job: Object,
    /// What applying every object would do, from the server's dry run.
    outcomes: Vec<ApplyOutcome>,
    /// Objects the app owns that the spec no longer renders, but for `old_env`.
    doomed: Vec<(String, String)>,
    /// Earlier releases' env ConfigMaps: removed only once this release's pods are all Ready,
    /// since an old pod that starts again before then reads its own.
    old_env: Vec<(String, String)>,
    job_state: JobState,
    history: release::History,
    /// The node that holds the app's ReadWriteOnce volume now, if a pod holds it.
    volume_node: Option<String>,
    migration_due: bool,
    changed: bool,
}

impl Plan {
    fn would_prune(&self) -> Vec<Applied> {
        self.doomed
            .iter()
            .map(|(kind, name)| Applied {
                kind: kind.clone(),
                name: name.clone(),
                action: "pruned".into(),
            })
            .collect()
    }
}

/// Renders the release and asks the server what applying it would change, where the migration
/// stands and what the history holds, all at once.
async fn plan(
    client: &Client,
    req: &DeployRequest,
    digest: Option<&str>,
    reporter: &dyn Reporter,
    canary: Option<u8>,
) -> Result<Plan, DeployError> {
    let (spec, ns) = (&req.spec, &req.namespace);
    // The history comes first: the asset server serves the assets of its releases' images.
    // One listing of the app's ConfigMaps holds it, the maintenance switch, and the ConfigMaps
    // pruning compares with the release.
    let configmaps = async {
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("{}={}", labels::INSTANCE, spec.name)))
            .await
            .map(|l| l.items)
            .map_err(api_err(format!(
                "list the ConfigMaps of `{}` in namespace `{ns}`",
                spec.name
            )))
    };
    let (volume_node, configmaps) =
        tokio::try_join!(volume::holder_node(client, ns, spec), configmaps)?;
    let history = release::history_in(&spec.name, &configmaps);
    let maintenance = crate::maintenance::current_in(spec, &configmaps);
    // As pruning lists them: the plugin's, release records aside.
    let owned_configmaps: Vec<DynamicObject> = configmaps
        .iter()
        .filter(|cm| {
            let l = cm.metadata.labels.clone().unwrap_or_default();
            l.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER)
                && l.get(labels::COMPONENT).map(String::as_str) != Some("release")
        })
        .filter_map(|cm| serde_json::to_value(cm).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    if let Some(m) = &maintenance {
        reporter.note(&format!(
            "maintenance is on (since {}): the app's hosts keep getting the maintenance page after this deploy, until `kubectl rails maintenance off`",
            m.since
        ));
    }
    let inputs = RenderInputs {
        secret_digest: digest.map(str::to_string),
        volume_node: volume_node.clone(),
        server_version: req.server_version.clone(),
        // The migration Job gives up when the deploy does, not 30 minutes later.
        migrate_deadline_seconds: Some(
            i64::try_from(req.timeout.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
        ),
        maintenance,
        earlier_images: release::earlier_images(&history.records),
    };
    let release = match canary {
        None => render::render(spec, &inputs),
        Some(percent) => crate::canary::plan(client, ns, spec, percent, &inputs, reporter).await?,
    };
    let job = release
        .by_stage(Stage::Migrate)
        .next()
        .expect("render always renders a migration Job")
        .clone();
    reporter.step(&format!(
        "validating {} objects with a server-side dry run",
        release.objects.len()
    ));
    let dry = Applier::new(client.clone(), ns, true);
    let keep: Vec<(String, String)> = release
        .objects
        .iter()
        .map(|o| (o.kind.to_string(), o.name.clone()))
        .collect();
    // Every kind: an interrupted deploy, a canary or `autoscale` may have made objects that no
    // release record names. An optional API's (HTTPRoute) may be refused to a user of an app
    // that does not render one, who then cannot have made one.
    let rendered: Vec<&'static str> = release.objects.iter().map(|o| o.kind).collect();
    let (outcomes, owned) = dry
        .dry_run_with_owned(
            release.objects.iter().map(|o| &o.value),
            &spec.name,
            &rendered,
            BTreeMap::from([("ConfigMap", owned_configmaps)]),
        )
        .await?;
    // The dry run of the Job returns it as the server holds it, status included.
    let existing_job = outcomes
        .iter()
        .find(|o| o.kind == "Job" && o.name == job.name && o.action != "created")
        .and_then(|o| serde_json::to_value(&o.object).ok())
        .and_then(|v| serde_json::from_value::<k8s_openapi::api::batch::v1::Job>(v).ok());
    let job_state = migrate::state(client, ns, &job.name, existing_job.as_ref()).await?;
    // The lease keeps other deploys out, so this listing is still true when pruning.
    // A canary prunes nothing: the current release keeps running beside it.
    let (old_env, doomed): (Vec<_>, Vec<_>) = if canary.is_some() {
        (Vec::new(), Vec::new())
    } else {
        Applier::unkept(&owned, &keep)
            .into_iter()
            .partition(|(kind, name)| kind == "ConfigMap" && spec.is_env_config_map(name))
    };
    let migration_due = req.migrate != MigrateMode::Skip && job_state != JobState::Succeeded;
    let changed = outcomes
        .iter()
        .any(|o| o.kind != "Job" && o.action != "unchanged")
        || !doomed.is_empty()
        || !old_env.is_empty()
        || migration_due
        || canary.is_some();
    Ok(Plan {
        inputs,
        release,
        job,
        outcomes,
        doomed,
        old_env,
        job_state,
        history,
        volume_node,
        migration_due,
        changed,
    })
}

/// A dry run ends with the plan: what would change, and nothing written.
fn dry_run(req: &DeployRequest, plan: Plan, reporter: &dyn Reporter) -> DeployOutcome {
    let would_prune = plan.would_prune();
    for o in plan.outcomes.iter().filter(|o| o.action != "unchanged") {
        reporter.note(&format!(
            "{} `{}` would be {} (server dry run)",
            o.kind, o.name, o.action
        ));
    }
    for p in &would_prune {
        reporter.note(&format!(
            "{} `{}` would be pruned (server dry run)",
            p.kind, p.name
        ));
    }
    let migration = if plan.migration_due {
        MigrationOutcome::Skipped
    } else {
        MigrationOutcome::AlreadyRan { job: plan.job.name }
    };
    DeployOutcome {
        applied: applied(&plan.outcomes),
        pruned: would_prune,
        ..outcome(req, plan.changed, None, migration)
    }
}

/// Nothing to change and every process Ready: the deploy is done before it writes.
async fn up_to_date(
    client: &Client,
    req: &DeployRequest,
    plan: &Plan,
    reporter: &dyn Reporter,
) -> Result<Option<DeployOutcome>, DeployError> {
    let processes = current_progress(client, &req.namespace, &req.spec).await?;
    if !processes.iter().all(|p| p.done) {
        return Ok(None);
    }
    let current = release::current(&plan.history.records).map(|r| r.revision);
    reporter.step(&match current {
        Some(rev) => format!("no changes: release v{rev} is current and Ready"),
        None => "no changes: the app is current and Ready".into(),
    });
    let migration = match plan.job_state {
        JobState::Succeeded => MigrationOutcome::AlreadyRan {
            job: plan.job.name.clone(),
        },
        _ => MigrationOutcome::Skipped,
    };
    // Nothing changed, but the Gateway may have been fixed (or broken) since: ask it again.
    let route = match req.spec.gateway() {
        Some(gateway) => {
            let now = tokio::time::Instant::now();
            let since = now.checked_sub(route::REPORT_GRACE).unwrap_or(now);
            Some(check_route(client, req, &gateway, since, now + req.timeout, reporter).await?)
        }
        None => None,
    };
    Ok(Some(DeployOutcome {
        applied: applied(&plan.outcomes),
        processes,
        route,
        ..outcome(req, false, current, migration)
    }))
}

/// Runs the migration Job before any pod changes (unless skipped or already run for this
/// release); a failed migration is recorded as a failed release. Returns the node it ran on.
async fn migrate(
    client: &Client,
    req: &DeployRequest,
    plan: &Plan,
    reporter: &dyn Reporter,
    deadline: tokio::time::Instant,
    held: &Held<'_>,
    recorder: &Recorder<'_>,
) -> Result<(MigrationOutcome, Option<String>), DeployError> {
    if req.migrate == MigrateMode::Skip {
        reporter.note("migrations skipped (--migrate=skip)");
        reporter.migration("skipped (--migrate=skip)");
        return Ok((MigrationOutcome::Skipped, None));
    }
    if plan.job_state == JobState::Succeeded {
        reporter.step(&format!(
            "migrations already ran for this release (Job `{}`)",
            plan.job.name
        ));
        reporter.migration("already ran for this release");
        let job = plan.job.name.clone();
        return Ok((MigrationOutcome::AlreadyRan { job }, None));
    }
    held.check().await?;
    match migrate::run(
        client,
        &req.namespace,
        &plan.job,
        plan.job_state,
        reporter,
        deadline,
        req.pull_checked,
    )
    .await
    {
        Ok(ran) => Ok(ran),
        Err(mut e) => {
            if let DeployError::MigrationFailed { serving, .. } = &mut e {
                held.check().await?;
                *serving = release::current(&plan.history.records).map(|r| r.revision);
                let note = format!("migration failed: {e}");
                recorder.record(ReleaseStatus::Failed, Some(note)).await?;
            }
            Err(e)
        }
    }
}

/// Server-side applies the workloads and prunes what the spec no longer renders; returns what
/// was pruned. `done` gains what was applied.
async fn apply(
    live: &Applier,
    req: &DeployRequest,
    plan: Plan,
    migrated_on: Option<String>,
    reporter: &dyn Reporter,
    held: &Held<'_>,
    done: &mut Vec<ApplyOutcome>,
) -> Result<Vec<Applied>, DeployError> {
    let spec = &req.spec;
    let would_prune = plan.would_prune();
    // No pod held the volume yet: the app's pods prefer the node the migration just wrote it
    // on. What that changes is applied afresh rather than as the plan said.
    let (workload, outcomes) = match migrated_on.filter(|_| plan.volume_node.is_none()) {
        Some(node) if spec.single_node_volume().is_some() => {
            let placed = render::render(
                spec,
                &RenderInputs {
                    volume_node: Some(node),
                    ..plan.inputs.clone()
                },
            );
            let moved: Vec<&Object> = placed
                .objects
                .iter()
                .filter(|o| !plan.release.objects.contains(o))
                .collect();
            let outcomes: Vec<ApplyOutcome> = plan
                .outcomes
                .into_iter()
                .filter(|p| !moved.iter().any(|o| o.kind == p.kind && o.name == p.name))
                .collect();
            (placed, outcomes)
        }
        _ => (plan.release, plan.outcomes),
    };
    held.check().await?;
    reporter.step("applying (server-side apply, field manager `kubectl-rails`)");
    for o in live
        .apply_planned(
            workload.by_stage(Stage::Workload).map(|o| &o.value),
            &outcomes,
        )
        .await?
    {
        if o.action != "unchanged" {
            reporter.note(&format!("{} `{}` {}", o.kind, o.name, o.action));
        }
        done.push(o);
    }
    held.check().await?;
    live.delete_all(&plan.doomed).await?;
    for p in &would_prune {
        reporter.note(&format!(
            "{} `{}` pruned: the spec no longer renders it",
            p.kind, p.name
        ));
    }
    Ok(would_prune)
}

/// Watches the rollout until every process is Ready, a pod is hopeless, or the deadline.
async fn wait(
    client: &Client,
    req: &DeployRequest,
    processes: BTreeMap<String, String>,
    checksum: &str,
    reporter: &dyn Reporter,
    deadline: tokio::time::Instant,
) -> Result<Vec<ProcessProgress>, DeployError> {
    reporter.step("waiting for the rollout");
    wait::rollout(
        client,
        &req.namespace,
        &req.spec,
        processes,
        checksum,
        reporter,
        deadline,
        req.timeout,
        req.pull_checked,
    )
    .await
}

/// Records the release as deployed or failed, as the wait ended; a failure names the release.
async fn record(
    recorder: &Recorder<'_>,
    held: &Held<'_>,
    waited: Result<Vec<ProcessProgress>, DeployError>,
) -> Result<Vec<ProcessProgress>, DeployError> {
    match waited {
        Ok(processes) => {
            held.check().await?;
            recorder.record(ReleaseStatus::Deployed, None).await?;
            Ok(processes)
        }
        Err(mut e) => {
            let note = format!("rollout failed: {e}");
            held.check().await?;
            recorder.record(ReleaseStatus::Failed, Some(note)).await?;
            if let DeployError::Hopeless { revision: r, .. }
            | DeployError::Timeout { revision: r, .. }
            | DeployError::RouteRefused { revision: r, .. } = &mut e
            {
                *r = Some(recorder.revision);
            }
            Err(e)
        }
    }
}

/// Writes this deploy's entry in the release history.
struct Recorder<'a> {
    client: &'a Client,
    req: &'a DeployRequest,
    revision: u32,
    /// The spec as deployed, and a hash of it with the secrets' digest.
    spec_text: String,
    config_hash: String,
    /// What else the history should know of this release (deployed during maintenance).
    events: Vec<String>,
    /// The history as the plan read it, under the lease.
    earlier: Vec<ReleaseRecord>,
}

impl<'a> Recorder<'a> {
    fn new(
        client: &'a Client,
        req: &'a DeployRequest,
        history: &release::History,
        digest: Option<&str>,
    ) -> Self {
        let spec_text = file::to_yaml(&req.spec);
        Self {
            client,
            req,
            revision: release::next_revision(history),
            config_hash: config_hash(&spec_text, digest),
            spec_text,
            events: Vec::new(),
            earlier: history.records.clone(),
        }
    }

    async fn record(&self, status: ReleaseStatus, note: Option<String>) -> Result<(), KubeError> {
        let (req, spec) = (self.req, &self.req.spec);
        let git_sha = req.git_sha.get().await;
        let entry = ReleaseRecord {
            revision: self.revision,
            status,
            image: spec.image.tagged(),
            digest: spec.image.digest.clone(),
            config_hash: self.config_hash.clone(),
            time: k8s_openapi::jiff::Timestamp::now()
                .round(k8s_openapi::jiff::Unit::Second)
                .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
                .to_string(),
            user: req.user.clone(),
            git_sha,
            note: note.or_else(|| req.note.clone()),
            events: self.events.clone(),
            spec: self.spec_text.clone(),
        };
        release::record_over(
            self.client,
            &req.namespace,
            &spec.name,
            spec.history_limit,
            &entry,
            Some(&self.earlier),
        )
        .await
    }
}

/// The outcome of this deploy with nothing applied, pruned or waited for yet.
fn outcome(
    req: &DeployRequest,
    changed: bool,
    revision: Option<u32>,
    migration: MigrationOutcome,
) -> DeployOutcome {
    DeployOutcome {
        app: req.spec.name.clone(),
        namespace: req.namespace.clone(),
        image: req.spec.image.reference(),
        revision,
        changed,
        dry_run: req.dry_run,
        migration,
        applied: vec![],
        pruned: vec![],
        processes: vec![],
        route: None,
    }
}

fn applied(outcomes: &[ApplyOutcome]) -> Vec<Applied> {
    outcomes
        .iter()
        .map(|o| Applied {
            kind: o.kind.clone(),
            name: o.name.clone(),
            action: o.action.to_string(),
        })
        .collect()
}

fn config_hash(spec_text: &str, digest: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(spec_text);
    h.update(digest.unwrap_or(""));
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The progress of every process as the cluster reports it now.
pub(crate) async fn current_progress(
    client: &Client,
    ns: &str,
    spec: &kubectl_rails_core::AppSpec,
) -> Result<Vec<ProcessProgress>, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for process in spec.process_names() {
        let name = spec.deployment_name(&process);
        match api
            .get_opt(&name)
            .await
            .map_err(api_err(format!("read Deployment `{name}`")))?
        {
            Some(d) => out.push(progress::progress(&process, &d)),
            None => out.push(ProcessProgress {
                process,
                desired: 0,
                updated: 0,
                ready: 0,
                old: 0,
                done: false,
            }),
        }
    }
    Ok(out)
}
