//! `kubectl rails review up|down|list|prune`: review apps, one namespace per pull request, as
//! Heroku and Render give them. `up` copies the app's Secret (with the spec's `review.override`
//! keys set per review app), prepares its database on the first deploy, and prints its URL.

use std::collections::BTreeMap;
use std::time::Duration;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::ReviewSpec;
use kubectl_rails_deploy::{DeployRequest, MigrateMode};
use kubectl_rails_kube::api_err;
use kubectl_rails_secrets::AppSecrets;

use crate::cli::{OutputFormat, ReviewCommand};
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;
use crate::printer::Printer;
use crate::settings::{Settings, Target};

/// Labels and annotations of a review app's namespace.
const REVIEW_OF: &str = "kubectl-rails.dev/review-of";
const REVIEW_NAME: &str = "kubectl-rails.dev/review";
const EXPIRES_AT: &str = "kubectl-rails.dev/expires-at";
const URL: &str = "kubectl-rails.dev/url";

pub(crate) async fn run(command: &ReviewCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let formats: &[OutputFormat] = match command {
        ReviewCommand::Up { .. } | ReviewCommand::List => &[OutputFormat::Json, OutputFormat::Yaml],
        _ => &[],
    };
    let format = settings.output(formats)?;
    let spec = ctx.spec()?.clone();
    let review = spec.review.clone().ok_or_else(|| {
        exit::failure(
            format!("the spec of `{}` has no `review:`", spec.name),
            Some(
                "add `review: {host: \"{name}.review.example.com\"}` to `config/kubernetes.yml`"
                    .into(),
            ),
        )
    })?;
    match command {
        ReviewCommand::Up {
            name,
            ttl,
            tag,
            timeout,
        } => {
            let name = review_name(name.as_deref(), settings)?;
            up(
                &spec,
                &review,
                &name,
                *ttl,
                tag.as_deref(),
                *timeout,
                format,
                settings,
                printer,
            )
            .await
        }
        ReviewCommand::Down { name } => {
            let name = review_name(Some(name), settings)?;
            let target = settings.target(Some(&spec)).await?;
            let ns = namespace_of(&review, &spec, &name);
            down(&target, &spec, &ns, printer).await
        }
        ReviewCommand::List => list(&spec, format, settings, printer).await,
        ReviewCommand::Prune => prune(&spec, settings, printer).await,
    }
}

/// A review app's name: given, or the current git branch made a DNS label (`feature/login`
/// becomes `feature-login`).
fn review_name(given: Option<&str>, settings: &Settings) -> anyhow::Result<String> {
    let raw = match given {
        Some(n) => n.to_string(),
        None => {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(&settings.global.app_dir)
                .args(["rev-parse", "--abbrev-ref", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            out.filter(|b| b != "HEAD").ok_or_else(|| {
                exit::usage(
                    "which review app? no name was given and no git branch is checked out",
                    Some("pass a name such as `pr-123`".into()),
                )
            })?
        }
    };
    let label = kubectl_rails_core::validate::suggest_label(&raw, 30).ok_or_else(|| {
        exit::usage(
            format!("`{raw}` cannot name a review app"),
            Some("use a name such as `pr-123`".into()),
        )
    })?;
    Ok(label)
}

fn namespace_of(review: &ReviewSpec, spec: &AppSpec, name: &str) -> String {
    ReviewSpec::fill(&review.namespace, &spec.name, name)
}

/// Namespaces the app's destinations deploy to (`namespace:` of each overlay and the base):
/// a review app must never land in one of them.
fn destination_namespaces(spec: &AppSpec, settings: &Settings) -> Vec<String> {
    let mut out: Vec<String> = spec.namespace.iter().cloned().collect();
    let dir = settings
        .spec_path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let stem = settings
        .spec_path
        .file_stem()
        .map(|s| format!("{}.", s.to_string_lossy()))
        .unwrap_or_default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(dest) = file
            .strip_prefix(&stem)
            .and_then(|r| r.strip_suffix(".yml").or_else(|| r.strip_suffix(".yaml")))
        else {
            continue;
        };
        if let Ok(loaded) = kubectl_rails_core::file::load_destination(&settings.spec_path, dest)
            && let Some(ns) = loaded.spec.namespace
        {
            out.push(ns);
        }
    }
    out
}

/// `{name}`, `{db_name}` and `{KEY}` (a value of the base Secret) filled into a template.
fn fill_override(template: &str, name: &str, base: &BTreeMap<String, String>) -> String {
    let mut out = template
        .replace("{name}", name)
        .replace("{db_name}", &name.replace('-', "_"));
    for (key, value) in base {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn up(
    spec: &AppSpec,
    review: &ReviewSpec,
    name: &str,
    ttl: Option<Duration>,
    tag: Option<&str>,
    timeout: Duration,
    format: Option<OutputFormat>,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let review_ns = namespace_of(review, spec, name);
    if destination_namespaces(spec, settings).contains(&review_ns) {
        return Err(exit::usage(
            format!(
                "review app `{name}` would land in namespace `{review_ns}`, which a destination deploys to"
            ),
            Some("pick another name; review apps never share a destination's namespace".into()),
        ));
    }
    let mut spec = spec.clone();
    deploy::resolve_image(&mut spec, None, tag, false, &settings.global.app_dir)?;
    let base = settings.target(Some(&spec)).await?;
    if base.namespace == review_ns {
        return Err(exit::usage(
            format!("review app `{name}` would land in the app's own namespace `{review_ns}`"),
            Some("pick another name, or change `review.namespace`".into()),
        ));
    }
    let client = base.conn.client.clone();
    let host = ReviewSpec::fill(&review.host, &spec.name, name);
    let tls = spec.ingress.as_ref().is_some_and(|i| i.tls);
    let url = format!("{}://{host}", if tls { "https" } else { "http" });
    let expires = ttl
        .map(|t| {
            Timestamp::now()
                .checked_add(SignedDuration::from_secs(
                    i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
                ))
                .map(|t| {
                    t.round(k8s_openapi::jiff::Unit::Second)
                        .unwrap_or(t)
                        .to_string()
                })
        })
        .transpose()
        .map_err(|e| exit::usage(format!("invalid `--ttl`: {e}"), None))?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let first = namespaces
        .get_opt(&review_ns)
        .await
        .map_err(api_err(format!("read namespace `{review_ns}`")))?
        .is_none();
    let mut annotations = BTreeMap::from([(URL.to_string(), url.clone())]);
    if let Some(e) = &expires {
        annotations.insert(EXPIRES_AT.into(), e.clone());
    }
    let ns_object = Namespace {
        metadata: ObjectMeta {
            name: Some(review_ns.clone()),
            labels: Some(BTreeMap::from([
                (
                    "pod-security.kubernetes.io/enforce".to_string(),
                    "restricted".to_string(),
                ),
                (REVIEW_OF.to_string(), spec.name.clone()),
                (REVIEW_NAME.to_string(), name.to_string()),
            ])),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    if first {
        namespaces
            .create(&PostParams::default(), &ns_object)
            .await
            .map_err(api_err(format!("create namespace `{review_ns}`")))?;
        printer.step(&format!(
            "created namespace `{review_ns}` for review app `{name}`"
        ));
    } else {
        namespaces
            .patch(
                &review_ns,
                &PatchParams::default(),
                &Patch::Merge(&ns_object),
            )
            .await
            .map_err(api_err(format!("update namespace `{review_ns}`")))?;
    }

    // The base Secret's values, with the per-review-app overrides.
    let base_store = AppSecrets::new(&client, &base.namespace, &spec.name);
    let base_values: BTreeMap<String, String> = base_store
        .get()
        .await?
        .and_then(|s| s.data)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| spec.secrets.contains(k))
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    let mut values = base_values.clone();
    for (key, template) in &review.overrides {
        let value = fill_override(template, name, &base_values);
        printer.mask_secret(key, value.as_bytes());
        values.insert(key.clone(), value);
    }
    if !values.is_empty() {
        AppSecrets::new(&client, &review_ns, &spec.name)
            .set(&values, &crate::commands::secrets::now())
            .await?;
        printer.step(&format!(
            "copied Secret `{}` from `{}`{}",
            spec.secret_name(),
            base.namespace,
            if review.overrides.is_empty() {
                String::new()
            } else {
                format!(
                    ", with {} set for `{name}`",
                    review
                        .overrides
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    if let Some(registry) = &spec.registry {
        copy_secret(&client, &base.namespace, &review_ns, &registry.pull_secret).await?;
    }

    spec.namespace = Some(review_ns.clone());
    if let Some(ingress) = spec.ingress.as_mut() {
        ingress.hosts = vec![host];
    }
    if first {
        spec.migrate.command = review.prepare.clone();
    }
    let target = Target {
        conn: base.conn.clone(),
        namespace: review_ns.clone(),
        version: base.version.clone(),
    };
    let request = |spec: AppSpec, migrate| DeployRequest {
        spec,
        namespace: review_ns.clone(),
        migrate,
        dry_run: false,
        timeout,
        user: deploy::holder(&target.conn.user),
        git_sha: deploy::commit_of(&settings.global.app_dir),
        note: Some(format!("review app `{name}`")),
        server_version: target.version.clone(),
    };
    printer.step(&format!(
        "deploying review app `{name}` ({}) to namespace `{review_ns}`",
        spec.image.reference()
    ));
    let outcome =
        deploy::execute(&target, request(spec.clone(), MigrateMode::Auto), printer).await?;
    if first && let Some(seed) = &review.seed {
        let mut seeding = spec.clone();
        seeding.migrate.command = seed.clone();
        printer.step(&format!("seeding: `{}`", seed.join(" ")));
        deploy::execute(&target, request(seeding, MigrateMode::Only), printer).await?;
    }
    let info = serde_json::json!({
        "name": name,
        "namespace": review_ns,
        "url": url,
        "expiresAt": expires,
        "revision": outcome.revision,
        "image": outcome.image,
    });
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&info)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&info)?)?,
        _ => printer.out(&format!("Review app {name}: {url}"))?,
    }
    Ok(())
}

/// Copies a Secret (the pull secret) from the app's namespace into the review app's.
async fn copy_secret(
    client: &kube::Client,
    from: &str,
    to: &str,
    name: &str,
) -> anyhow::Result<()> {
    let source = Api::<Secret>::namespaced(client.clone(), from)
        .get_opt(name)
        .await
        .map_err(api_err(format!(
            "read Secret `{name}` in namespace `{from}`"
        )))?
        .ok_or_else(|| {
            exit::failure(
                format!("pull secret `{name}` is missing in namespace `{from}`"),
                Some("write it with `kubectl rails secrets registry`; review apps copy it".into()),
            )
        })?;
    let copy = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: source.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        type_: source.type_.clone(),
        data: source.data.clone(),
        ..Secret::default()
    };
    let mut params = PatchParams::apply("kubectl-rails");
    params.force = true;
    Api::<Secret>::namespaced(client.clone(), to)
        .patch(name, &params, &Patch::Apply(&copy))
        .await
        .map_err(api_err(format!(
            "copy Secret `{name}` into namespace `{to}`"
        )))?;
    Ok(())
}

/// Deletes a review app's namespace (everything in it, Secrets and volumes too) and waits
/// until it is gone.
async fn down(target: &Target, spec: &AppSpec, ns: &str, printer: &Printer) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(target.conn.client.clone());
    let found = api
        .get_opt(ns)
        .await
        .map_err(api_err(format!("read namespace `{ns}`")))?;
    let Some(found) = found else {
        return Err(exit::failure(
            format!("no review app in namespace `{ns}`"),
            Some("`kubectl rails review list` shows them".into()),
        ));
    };
    let of = found
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVIEW_OF))
        .cloned();
    if of.as_deref() != Some(spec.name.as_str()) {
        return Err(exit::failure(
            format!(
                "namespace `{ns}` is not a review app of `{}`; nothing was deleted",
                spec.name
            ),
            None,
        ));
    }
    api.delete(ns, &DeleteParams::foreground())
        .await
        .map_err(api_err(format!("delete namespace `{ns}`")))?;
    printer.step(&format!("deleting namespace `{ns}` and everything in it"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        match api.get_opt(ns).await {
            Ok(None) => break,
            Ok(Some(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Ok(Some(_)) => {
                return Err(exit::failure(
                    format!("namespace `{ns}` is still being deleted after 180 s"),
                    Some(format!(
                        "`kubectl get namespace {ns} -o yaml` shows what holds it"
                    )),
                ));
            }
            Err(e) => return Err(api_err(format!("read namespace `{ns}`"))(e).into()),
        }
    }
    printer.step(&format!("review app in `{ns}` is gone"));
    Ok(())
}

/// The app's review apps: namespace, name, URL, expiry, creation time.
async fn review_apps(client: &kube::Client, app: &str) -> anyhow::Result<Vec<Namespace>> {
    Ok(Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{REVIEW_OF}={app}")))
        .await
        .map_err(api_err("list the review apps' namespaces"))?
        .items)
}

fn annotation(ns: &Namespace, key: &str) -> Option<String> {
    ns.metadata.annotations.as_ref()?.get(key).cloned()
}

async fn list(
    spec: &AppSpec,
    format: Option<OutputFormat>,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let target = settings.target(Some(spec)).await?;
    let client = &target.conn.client;
    let mut rows = Vec::new();
    for ns in review_apps(client, &spec.name).await? {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let image = Api::<Deployment>::namespaced(client.clone(), &name)
            .get_opt(&spec.deployment_name("web"))
            .await
            .ok()
            .flatten()
            .and_then(|d| d.spec?.template.spec?.containers.first()?.image.clone());
        let created = ns.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let age = created.map(|c| {
            let secs = Timestamp::now().duration_since(c).as_secs().max(0);
            match secs {
                s if s < 120 => format!("{s}s"),
                s if s < 7200 => format!("{}m", s / 60),
                s if s < 172_800 => format!("{}h", s / 3600),
                s => format!("{}d", s / 86400),
            }
        });
        rows.push(serde_json::json!({
            "name": ns.metadata.labels.as_ref().and_then(|l| l.get(REVIEW_NAME)).cloned(),
            "namespace": name,
            "age": age,
            "image": image,
            "url": annotation(&ns, URL),
            "expiresAt": annotation(&ns, EXPIRES_AT),
        }));
    }
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&rows)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&rows)?)?,
        _ if rows.is_empty() => printer.info(&format!("`{}` has no review apps", spec.name)),
        _ => {
            let mut t = Table::new();
            t.load_preset(NOTHING).set_header(vec![
                "NAME",
                "NAMESPACE",
                "AGE",
                "IMAGE",
                "URL",
                "EXPIRES",
            ]);
            for r in &rows {
                let cell = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                t.add_row(vec![
                    cell("name"),
                    cell("namespace"),
                    cell("age"),
                    cell("image"),
                    cell("url"),
                    cell("expiresAt"),
                ]);
            }
            printer.out(&t.to_string())?;
        }
    }
    Ok(())
}

/// Removes the review apps whose `--ttl` has passed (meant for a CI cron).
async fn prune(spec: &AppSpec, settings: &Settings, printer: &Printer) -> anyhow::Result<()> {
    let target = settings.target(Some(spec)).await?;
    let now = Timestamp::now();
    let mut removed = 0;
    for ns in review_apps(&target.conn.client, &spec.name).await? {
        let expired = annotation(&ns, EXPIRES_AT)
            .and_then(|e| e.parse::<Timestamp>().ok())
            .is_some_and(|e| e <= now);
        if expired {
            let name = ns.metadata.name.clone().unwrap_or_default();
            down(&target, spec, &name, printer).await?;
            removed += 1;
        }
    }
    printer.step(&format!(
        "pruned {removed} expired review app{}",
        if removed == 1 { "" } else { "s" }
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_fill_the_name_and_base_values() {
        let base = BTreeMap::from([(
            "DATABASE_URL".to_string(),
            "postgres://u:p@db/shop".to_string(),
        )]);
        assert_eq!(
            fill_override("{DATABASE_URL}_{db_name}", "pr-7", &base),
            "postgres://u:p@db/shop_pr_7"
        );
        assert_eq!(
            fill_override("redis://cache/{name}", "pr-7", &base),
            "redis://cache/pr-7"
        );
    }
}
