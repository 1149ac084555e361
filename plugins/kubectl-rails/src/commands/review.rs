//! `kubectl rails review up|down|list|prune`: review apps, one namespace per pull request, as
//! Heroku and Render give them. `up` copies the app's Secret (with the spec's `review.override`
//! keys set per review app), prepares its database on the first deploy, and prints its URL.
//! The namespaces, Secrets and listing are `kubectl-rails-review`'s; this module asks and prints.

use std::time::Duration;

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use k8s_openapi::jiff::Timestamp;
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::ReviewSpec;
use kubectl_rails_deploy::{DeployRequest, MigrateMode};
use kubectl_rails_review::{self as review_apps, namespace_of};
use kubectl_rails_secrets::AppSecrets;

use crate::cli::{OutputFormat, ReviewCommand};
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;
use crate::printer::Printer;
use crate::settings::{Settings, Target};

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
    let label = kubectl_rails_core::validate::review_label(&raw, 30).ok_or_else(|| {
        exit::usage(
            format!("`{raw}` cannot name a review app"),
            Some("use a name such as `pr-123`".into()),
        )
    })?;
    // A name given is used as it is, or refused: converting it could make it another's.
    if given.is_some() && label != raw {
        return Err(exit::usage(
            format!(
                "`{raw}` cannot name a review app: a name is a DNS label of at most 30 characters"
            ),
            Some(format!("did you mean `{label}`?")),
        ));
    }
    Ok(label)
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
    if kubectl_rails_core::validate::review_label(&review_ns, 63).as_deref()
        != Some(review_ns.as_str())
    {
        return Err(exit::usage(
            format!(
                "review app `{name}` would need namespace `{review_ns}`, which is not a DNS label of at most 63 characters"
            ),
            Some("use a shorter name, or a shorter `review.namespace` pattern".into()),
        ));
    }
    if review_apps::destination_namespaces(spec, &settings.spec_path).contains(&review_ns) {
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
    let expires = match ttl {
        Some(t) => Some(
            review_apps::expiry(Timestamp::now(), t)
                .ok_or_else(|| exit::usage("invalid `--ttl`: too far in the future", None))?,
        ),
        None => None,
    };

    // Read before anything is written: no base Secret (or a key an override needs) stops here.
    let values = review_apps::secret_values(&client, &base.namespace, &spec, review, name).await?;
    let found = review_apps::ensure_namespace(
        &client,
        &spec.name,
        &base.namespace,
        name,
        &review_ns,
        &url,
        expires.as_deref(),
    )
    .await?;
    // Until a first deploy succeeded, every `up` prepares and seeds (a failed first one too).
    let first = !found.prepared;
    if found.created {
        printer.step(&format!(
            "created namespace `{review_ns}` for review app `{name}`"
        ));
    }

    for key in review.overrides.keys() {
        if let Some(value) = values.get(key) {
            printer.mask_secret(key, value.as_bytes());
        }
    }
    if !values.is_empty() {
        AppSecrets::new(&client, &review_ns, &spec.name)
            .set(&values, &crate::commands::secrets::now())
            .await?;
        let overridden = if review.overrides.is_empty() {
            String::new()
        } else {
            let keys: Vec<&str> = review.overrides.keys().map(String::as_str).collect();
            format!(", with {} set for `{name}`", keys.join(", "))
        };
        printer.step(&format!(
            "copied Secret `{}` from `{}`{overridden}",
            spec.secret_name(),
            base.namespace,
        ));
    }
    if let Some(registry) = &spec.registry {
        review_apps::copy_secret(&client, &base.namespace, &review_ns, &registry.pull_secret)
            .await?;
    }
    // An accessory of a review app is a database of its own: its password Secret is made there
    // (the base's password is not copied into a namespace made for a branch).
    let store = AppSecrets::new(&client, &review_ns, &spec.name);
    for accessory in spec.accessories.keys() {
        let password = store
            .accessory_password(&spec.accessory_name(accessory))
            .await?;
        printer.mask_secret(&spec.accessory_name(accessory), password.as_bytes());
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
        pull_checked: false,
    };
    printer.step(&format!(
        "deploying review app `{name}` ({}) to namespace `{review_ns}`",
        spec.image.reference()
    ));
    let outcome = deploy::execute(
        &target,
        request(spec.clone(), MigrateMode::Auto),
        printer,
        None,
    )
    .await?;
    if first && let Some(seed) = &review.seed {
        let mut seeding = spec.clone();
        seeding.migrate.command = seed.clone();
        printer.step(&format!("seeding: `{}`", seed.join(" ")));
        deploy::execute(&target, request(seeding, MigrateMode::Only), printer, None).await?;
    }
    if first {
        review_apps::mark_prepared(&client, &review_ns).await?;
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

/// Deletes a review app's namespace (everything in it, Secrets and volumes too) and waits
/// until it is gone.
async fn down(target: &Target, spec: &AppSpec, ns: &str, printer: &Printer) -> anyhow::Result<()> {
    let client = &target.conn.client;
    review_apps::delete(client, &spec.name, &target.namespace, ns).await?;
    printer.step(&format!("deleting namespace `{ns}` and everything in it"));
    review_apps::wait_gone(client, ns).await?;
    printer.step(&format!("review app in `{ns}` is gone"));
    Ok(())
}

async fn list(
    spec: &AppSpec,
    format: Option<OutputFormat>,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let target = settings.target(Some(spec)).await?;
    let apps = review_apps::list(
        &target.conn.client,
        spec,
        &target.namespace,
        Timestamp::now(),
    )
    .await?;
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&apps)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&apps)?)?,
        _ if apps.is_empty() => printer.info(&format!("`{}` has no review apps", spec.name)),
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
            let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            for a in &apps {
                t.add_row(vec![
                    cell(&a.name),
                    a.namespace.clone(),
                    cell(&a.age),
                    cell(&a.image),
                    cell(&a.url),
                    cell(&a.expires_at),
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
    let mut failed = Vec::new();
    for app in review_apps::list(&target.conn.client, spec, &target.namespace, now).await? {
        if app.expired(now) {
            // One namespace stuck terminating does not keep the others.
            match down(&target, spec, &app.namespace, printer).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    printer.warn(&format!("{e:#}"));
                    failed.push(app.namespace.clone());
                }
            }
        }
    }
    printer.step(&format!(
        "pruned {removed} expired review app{}",
        if removed == 1 { "" } else { "s" }
    ));
    if !failed.is_empty() {
        return Err(exit::failure(
            format!("could not remove {}", failed.join(", ")),
            Some("run `kubectl rails review prune` again".into()),
        ));
    }
    Ok(())
}
