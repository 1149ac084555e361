//! The deploy itself, step by step.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use kubectl_rails_core::digest::{DIGEST_KEY, short_hmac};
use kubectl_rails_core::file;
use kubectl_rails_core::render::{self, RenderInputs, Stage};
use kubectl_rails_kube::{Applier, ApplyOutcome, KubeError, api_err};
use sha2::{Digest, Sha256};

use crate::progress::{self, ProcessProgress};
use crate::release::{self, ReleaseRecord, ReleaseStatus};
use crate::{
    Applied, DeployError, DeployOutcome, DeployRequest, MigrateMode, MigrationOutcome, Reporter,
    lease, migrate, volume, wait,
};

/// A digest of a Secret's data: it changes when any value changes, and reveals none. It is an
/// HMAC keyed by the app's digest key (see [`DIGEST_KEY`]), so that a pod template's checksum
/// cannot be checked against guesses of a weak value by anyone who can read Deployments.
pub fn secret_digest(data: &BTreeMap<String, ByteString>) -> String {
    let key = data
        .get(DIGEST_KEY)
        .map(|k| k.0.as_slice())
        .unwrap_or_default();
    let mut message = Vec::new();
    for (k, v) in data.iter().filter(|(k, _)| k.as_str() != DIGEST_KEY) {
        message.extend_from_slice(k.as_bytes());
        message.push(0);
        message.extend_from_slice(&v.0);
        message.push(0);
    }
    short_hmac(key, &message, 8)
}

/// Adds a random digest key to an app Secret written without one (by `kubectl create secret`).
async fn with_digest_key(
    secrets: &Api<Secret>,
    name: &str,
    mut data: BTreeMap<String, ByteString>,
) -> Result<BTreeMap<String, ByteString>, DeployError> {
    if data.contains_key(DIGEST_KEY) {
        return Ok(data);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| DeployError::Preflight {
        message: format!("no randomness from the operating system for the app's digest key: {e}"),
        hint: None,
    })?;
    let value = ByteString(key);
    let patch = serde_json::json!({ "data": { DIGEST_KEY: &value } });
    secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_err(format!("add the digest key to Secret `{name}`")))?;
    data.insert(DIGEST_KEY.into(), value);
    Ok(data)
}

/// Runs one deploy; see the crate docs for the steps.
pub async fn deploy(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<DeployOutcome, DeployError> {
    if req.dry_run {
        let digest = preflight(client, req, reporter)
            .await?
            .map(|data| secret_digest(&data));
        return deploy_held(client, req, reporter, digest, None).await;
    }
    // Both only read or take the lease, so they go together; a lease taken for a deploy that
    // fails its preflight is given back at once.
    let holder = lease::holder_identity(&req.user);
    let (digest, lease) = tokio::join!(
        preflight(client, req, reporter),
        lease::acquire(client, &req.namespace, &req.spec.name, &holder)
    );
    let lease = lease?;
    // The digest key is written (when missing) only once the lease is ours.
    let digest = match digest {
        Ok(Some(data)) => {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &req.namespace);
            match with_digest_key(&secrets, &req.spec.secret_name(), data).await {
                Ok(data) => Some(secret_digest(&data)),
                Err(e) => {
                    lease.release().await;
                    return Err(e);
                }
            }
        }
        Ok(None) => None,
        Err(e) => {
            lease.release().await;
            return Err(e);
        }
    };
    let result = deploy_held(client, req, reporter, digest, Some(&lease)).await;
    lease.release().await;
    result
}

/// Checks what the rollout needs before anything changes: the app Secret (and its digest), the
/// pull secret, and the IngressClass, read all at once.
async fn preflight(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<Option<BTreeMap<String, ByteString>>, DeployError> {
    let (digest, pull, class) = tokio::join!(
        app_secret_digest(client, req),
        pull_secret_exists(client, req),
        ingress_class_check(client, req, reporter),
    );
    // Every problem at once, always in the same order.
    let mut problems = Vec::new();
    let digest = digest.unwrap_or_else(|e| {
        problems.push(e);
        None
    });
    if let Err(e) = pull {
        problems.push(e);
    }
    if let Err(e) = class {
        problems.push(e);
    }
    if problems.len() > 1
        && problems
            .iter()
            .all(|p| matches!(p, DeployError::Preflight { .. }))
    {
        let (mut messages, mut hints) = (Vec::new(), Vec::new());
        for p in problems {
            if let DeployError::Preflight { message, hint } = p {
                messages.push(message);
                hints.extend(hint);
            }
        }
        return Err(DeployError::Preflight {
            message: messages.join("; and "),
            hint: Some(hints.join("; ")),
        });
    }
    match problems.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(digest),
    }
}

/// What a deploy needs from the user that the namespace lacks: secret keys and the pull secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MissingInputs {
    /// Keys the spec names that the app Secret lacks (all of them when it does not exist).
    pub secret_keys: Vec<String>,
    /// The pull secret the spec names, when it does not exist.
    pub pull_secret: Option<kubectl_rails_core::model::RegistrySpec>,
}

impl MissingInputs {
    pub fn is_empty(&self) -> bool {
        self.secret_keys.is_empty() && self.pull_secret.is_none()
    }

    /// Everything missing, as in a namespace that does not exist yet.
    pub fn all(spec: &kubectl_rails_core::AppSpec) -> Self {
        Self {
            secret_keys: spec.secrets.clone(),
            pull_secret: spec.registry.clone(),
        }
    }
}

/// Reads what the namespace holds of the app Secret's keys and the pull secret (names only).
pub async fn missing_inputs(
    client: &Client,
    ns: &str,
    spec: &kubectl_rails_core::AppSpec,
) -> Result<MissingInputs, KubeError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = MissingInputs::default();
    if !spec.secrets.is_empty() {
        let name = spec.secret_name();
        let data = secrets
            .get_opt(&name)
            .await
            .map_err(api_err(format!("read Secret `{name}` in namespace `{ns}`")))?
            .and_then(|s| s.data)
            .unwrap_or_default();
        out.secret_keys = spec
            .missing_secrets(&data)
            .into_iter()
            .map(str::to_string)
            .collect();
    }
    if let Some(registry) = &spec.registry {
        let exists = secrets
            .get_metadata_opt(&registry.pull_secret)
            .await
            .map_err(api_err(format!(
                "read Secret `{}` in namespace `{ns}`",
                registry.pull_secret
            )))?
            .is_some();
        if !exists {
            out.pull_secret = Some(registry.clone());
        }
    }
    Ok(out)
}

/// The app Secret's data, after checking it holds every key the spec names.
async fn app_secret_digest(
    client: &Client,
    req: &DeployRequest,
) -> Result<Option<BTreeMap<String, ByteString>>, DeployError> {
    let (spec, ns) = (&req.spec, &req.namespace);
    if spec.secrets.is_empty() {
        return Ok(None);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let name = spec.secret_name();
    let secret = secrets
        .get_opt(&name)
        .await
        .map_err(api_err(format!("read Secret `{name}` in namespace `{ns}`")))?;
    let Some(secret) = secret else {
        return Err(DeployError::Preflight {
            message: format!(
                "Secret `{name}` does not exist in namespace `{ns}`; the app needs {}",
                spec.secrets.join(", ")
            ),
            hint: Some(format!(
                "set them with `kubectl rails secrets set {}`, or import a .env with `kubectl rails secrets import`",
                spec.secrets.join(" ")
            )),
        });
    };
    let data = secret.data.unwrap_or_default();
    let missing = spec.missing_secrets(&data);
    if !missing.is_empty() {
        return Err(DeployError::Preflight {
            message: format!("Secret `{name}` lacks {}", missing.join(", ")),
            hint: Some(format!(
                "set them with `kubectl rails secrets set {}`",
                missing.join(" ")
            )),
        });
    }
    Ok(Some(data))
}

async fn pull_secret_exists(client: &Client, req: &DeployRequest) -> Result<(), DeployError> {
    let (spec, ns) = (&req.spec, &req.namespace);
    let Some(registry) = &spec.registry else {
        return Ok(());
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let pull = secrets
        .get_opt(&registry.pull_secret)
        .await
        .map_err(api_err(format!(
            "read Secret `{}` in namespace `{ns}`",
            registry.pull_secret
        )))?;
    if pull.is_none() {
        return Err(DeployError::Preflight {
            message: format!(
                "the image is private (registry `{}`), but its pull secret `{}` is missing in namespace `{ns}`",
                registry.server, registry.pull_secret
            ),
            hint: Some(format!(
                "create it with `kubectl rails secrets registry --server {}`",
                registry.server
            )),
        });
    }
    Ok(())
}

/// Warns when the Ingress would get no address; only a failed read (not a missing class) stops
/// the deploy.
async fn ingress_class_check(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
) -> Result<(), DeployError> {
    let Some(ingress) = &req.spec.ingress else {
        return Ok(());
    };
    let classes: Api<IngressClass> = Api::all(client.clone());
    match classes.list_metadata(&ListParams::default()).await {
        Ok(list) => {
            let names: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|c| c.metadata.name)
                .collect();
            match &ingress.class {
                Some(class) if !names.contains(class) => reporter.warn(&format!(
                    "IngressClass `{class}` does not exist: the Ingress will get no address until a controller for it is installed"
                )),
                None if names.is_empty() => reporter.warn(
                    "the cluster has no IngressClass: the Ingress will get no address until a controller is installed (for example ingress-nginx: `helm install ingress-nginx ingress-nginx --repo https://kubernetes.github.io/ingress-nginx -n ingress-nginx --create-namespace`)",
                ),
                _ => {}
            }
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            reporter.note("cannot list IngressClasses (forbidden); skipped that check");
            Ok(())
        }
        Err(e) => Err(api_err("list IngressClasses")(e).into()),
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

async fn deploy_held(
    client: &Client,
    req: &DeployRequest,
    reporter: &dyn Reporter,
    digest: Option<String>,
    lease: Option<&lease::DeployLease>,
) -> Result<DeployOutcome, DeployError> {
    // Before each write: a deploy that lost its lease (stopped until it expired and another
    // deploy took it) writes nothing more.
    let still_held = || async {
        match lease {
            Some(l) => l.ensure_held().await,
            None => Ok(()),
        }
    };
    let spec = &req.spec;
    let ns = &req.namespace;
    let deadline = tokio::time::Instant::now() + req.timeout;
    let volume_node = volume::holder_node(client, ns, spec).await?;
    let inputs = RenderInputs {
        secret_digest: digest.clone(),
        volume_node: volume_node.clone(),
        server_version: req.server_version.clone(),
        // The migration Job gives up when the deploy does, not 30 minutes later.
        migrate_deadline_seconds: Some(
            i64::try_from(req.timeout.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
        ),
    };
    let release = render::render(spec, &inputs);
    let job = release
        .by_stage(Stage::Migrate)
        .next()
        .expect("render always renders a migration Job");

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
    let (plan, owned, job_state, history) = tokio::try_join!(
        dry.apply_all(release.objects.iter().map(|o| &o.value)),
        dry.owned(&spec.name),
        migrate::state(client, ns, &job.name),
        release::list(client, ns, &spec.name),
    )?;
    // The lease keeps other deploys out, so this listing is still true when pruning.
    let doomed = Applier::unkept(&owned, &keep);
    let would_prune: Vec<Applied> = doomed
        .iter()
        .map(|(kind, name)| Applied {
            kind: kind.clone(),
            name: name.clone(),
            action: "pruned".into(),
        })
        .collect();
    let migration_due =
        req.migrate != MigrateMode::Skip && job_state != migrate::JobState::Succeeded;
    let changed = plan
        .iter()
        .any(|o| o.kind != "Job" && o.action != "unchanged")
        || !would_prune.is_empty()
        || migration_due;
    let image = spec.image.reference();
    let outcome = |changed, revision, migration, applied, pruned, processes| DeployOutcome {
        app: spec.name.clone(),
        namespace: ns.clone(),
        image: image.clone(),
        revision,
        changed,
        dry_run: req.dry_run,
        migration,
        applied,
        pruned,
        processes,
    };

    if req.dry_run {
        for o in plan.iter().filter(|o| o.action != "unchanged") {
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
        let migration = if migration_due {
            MigrationOutcome::Skipped
        } else {
            MigrationOutcome::AlreadyRan {
                job: job.name.clone(),
            }
        };
        return Ok(outcome(
            changed,
            None,
            migration,
            applied(&plan),
            would_prune,
            vec![],
        ));
    }

    if !changed {
        let processes = current_progress(client, ns, spec).await?;
        if processes.iter().all(|p| p.done) {
            let current = release::current(&history).map(|r| r.revision);
            reporter.step(&match current {
                Some(rev) => format!("no changes: release v{rev} is current and Ready"),
                None => "no changes: the app is current and Ready".into(),
            });
            let migration = match job_state {
                migrate::JobState::Succeeded => MigrationOutcome::AlreadyRan {
                    job: job.name.clone(),
                },
                _ => MigrationOutcome::Skipped,
            };
            return Ok(outcome(
                false,
                current,
                migration,
                applied(&plan),
                vec![],
                processes,
            ));
        }
    }

    let revision = release::next_revision(&history);
    let spec_text = file::to_yaml(spec);
    let record = |status, note: Option<String>, git_sha| ReleaseRecord {
        revision,
        status,
        image: image.clone(),
        config_hash: config_hash(&spec_text, digest.as_deref()),
        time: k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
            .to_string(),
        user: req.user.clone(),
        git_sha,
        note: note.or_else(|| req.note.clone()),
        spec: spec_text.clone(),
    };

    let live = Applier::new(client.clone(), ns, false);
    still_held().await?;
    let mut done = live
        .apply_planned(release.by_stage(Stage::Config).map(|o| &o.value), &plan)
        .await?;
    let mut migrated_on = None;
    let migration = if req.migrate == MigrateMode::Skip {
        reporter.note("migrations skipped (--migrate=skip)");
        reporter.migration("skipped (--migrate=skip)");
        MigrationOutcome::Skipped
    } else if job_state == migrate::JobState::Succeeded {
        reporter.step(&format!(
            "migrations already ran for this release (Job `{}`)",
            job.name
        ));
        reporter.migration("already ran for this release");
        MigrationOutcome::AlreadyRan {
            job: job.name.clone(),
        }
    } else {
        still_held().await?;
        match migrate::run(client, ns, job, job_state, reporter, deadline).await {
            Ok((m, node)) => {
                migrated_on = node;
                m
            }
            Err(mut e) => {
                if let DeployError::MigrationFailed { serving, .. } = &mut e {
                    still_held().await?;
                    *serving = release::current(&history).map(|r| r.revision);
                    release::record(
                        client,
                        ns,
                        &spec.name,
                        spec.history_limit,
                        &record(
                            ReleaseStatus::Failed,
                            Some(format!("migration failed: {e}")),
                            req.git_sha.get().await,
                        ),
                    )
                    .await?;
                }
                return Err(e);
            }
        }
    };
    if req.migrate == MigrateMode::Only {
        return Ok(outcome(
            true,
            None,
            migration,
            applied(&done),
            vec![],
            vec![],
        ));
    }

    // No pod held the volume yet: the app's pods prefer the node the migration just wrote it
    // on. What that changes is applied afresh rather than as the plan said.
    let (workload, plan) = match migrated_on.filter(|_| volume_node.is_none()) {
        Some(node) if spec.single_node_volume().is_some() => {
            let placed = render::render(
                spec,
                &RenderInputs {
                    volume_node: Some(node),
                    ..inputs.clone()
                },
            );
            let moved: Vec<&render::Object> = placed
                .objects
                .iter()
                .filter(|o| !release.objects.contains(o))
                .collect();
            let plan: Vec<ApplyOutcome> = plan
                .into_iter()
                .filter(|p| !moved.iter().any(|o| o.kind == p.kind && o.name == p.name))
                .collect();
            (placed, plan)
        }
        _ => (release.clone(), plan),
    };
    still_held().await?;
    reporter.step("applying (server-side apply, field manager `kubectl-rails`)");
    for o in live
        .apply_planned(workload.by_stage(Stage::Workload).map(|o| &o.value), &plan)
        .await?
    {
        if o.action != "unchanged" {
            reporter.note(&format!("{} `{}` {}", o.kind, o.name, o.action));
        }
        done.push(o);
    }
    still_held().await?;
    live.delete_all(&doomed).await?;
    let pruned = would_prune;
    for p in &pruned {
        reporter.note(&format!(
            "{} `{}` pruned: the spec no longer renders it",
            p.kind, p.name
        ));
    }

    reporter.step("waiting for the rollout");
    match wait::rollout(
        client,
        ns,
        spec,
        &release.checksum,
        reporter,
        deadline,
        req.timeout,
    )
    .await
    {
        Ok(processes) => {
            still_held().await?;
            release::record(
                client,
                ns,
                &spec.name,
                spec.history_limit,
                &record(ReleaseStatus::Deployed, None, req.git_sha.get().await),
            )
            .await?;
            Ok(outcome(
                true,
                Some(revision),
                migration,
                applied(&done),
                pruned,
                processes,
            ))
        }
        Err(mut e) => {
            let note = format!("rollout failed: {e}");
            still_held().await?;
            release::record(
                client,
                ns,
                &spec.name,
                spec.history_limit,
                &record(ReleaseStatus::Failed, Some(note), req.git_sha.get().await),
            )
            .await?;
            if let DeployError::Hopeless { revision: r, .. }
            | DeployError::Timeout { revision: r, .. } = &mut e
            {
                *r = Some(revision);
            }
            Err(e)
        }
    }
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
