//! `kubectl rails maintenance on [--message TEXT]` and `maintenance off`: the app's hosts get a
//! 503 page (with `Retry-After`) from a small server in the app's own image while the app's
//! pods keep running, then get the app back. It holds the deploy lease while it switches, so a
//! deploy never renders the Ingress from a half-made switch.

use kubectl_rails_core::render::{self, Maintenance};
use kubectl_rails_core::{AppSpec, ImageSpec};
use kubectl_rails_deploy::{maintenance, release};

use crate::cli::{MaintenanceCommand, OutputFormat};
use crate::commands::deploy;
use crate::context::Context;
use crate::exit;
use crate::settings::Target;

/// A ConfigMap holds at most 1 MiB, the server script included.
const MAX_PAGE_BYTES: usize = 900 * 1024;

pub(crate) async fn run(command: &MaintenanceCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    let format = ctx
        .settings
        .output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let reporter = deploy::PrinterReporter::new(ctx.printer, None);
    let held = deploy::hold_lease(
        target,
        &spec.name,
        &reporter,
        "maintenance was not changed",
        "maintenance",
    )
    .await?;
    let result = tokio::select! {
        r = switch(command, ctx, target, spec, &reporter, format) => r,
        e = held.lost() => Err(e.into()),
    };
    held.release().await;
    result
}

async fn switch(
    command: &MaintenanceCommand,
    ctx: &Context<'_>,
    target: &Target,
    spec: &AppSpec,
    reporter: &deploy::PrinterReporter<'_>,
    format: Option<OutputFormat>,
) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let (client, ns) = (&target.conn.client, &target.namespace);
    let now = now();
    let user = deploy::holder(&target.conn.user);
    let was = maintenance::current(client, ns, spec).await?;
    let (on, switched) = match command {
        MaintenanceCommand::On { message, timeout } => {
            if maintenance::live_front(client, ns, spec).await?.is_none() {
                return Err(exit::failure(
                    format!(
                        "`{}` has no {} in namespace `{ns}`: maintenance sends the app's hosts to a page, and no host reaches this app",
                        spec.name,
                        maintenance::front_kind(spec)
                    ),
                    Some("add `ingress:` with the hosts to the spec and deploy, or scale web to 0 to stop it".into()),
                ));
            }
            let Some(image) = maintenance::live_web_image(client, ns, spec).await? else {
                return Err(exit::failure(
                    format!("`{}` is not deployed in namespace `{ns}`", spec.name),
                    Some("deploy it first with `kubectl rails deploy`".into()),
                ));
            };
            let app_page = read_app_page(ctx)?;
            let m = Maintenance {
                page: render::maintenance_page(&spec.name, message.as_deref(), app_page.as_deref()),
                // Turning it on again (a new message, or finishing a half-made switch) keeps
                // when it began.
                since: was
                    .as_ref()
                    .map_or_else(|| now.clone(), |w| w.since.clone()),
                message: message.clone(),
            };
            let mut running = spec.clone();
            running.image = ImageSpec::parse(&image);
            let switched = maintenance::on(
                client,
                ns,
                &running,
                &m,
                target.version.clone(),
                *timeout,
                reporter,
            )
            .await?;
            let what = match message {
                Some(text) => format!("maintenance on by {user} at {now} ({text})"),
                None => format!("maintenance on by {user} at {now}"),
            };
            release::add_event(client, ns, &spec.name, &what).await?;
            (Some(m), Some(switched))
        }
        MaintenanceCommand::Off => {
            if was.is_none()
                && maintenance::live_web_image(client, ns, spec)
                    .await?
                    .is_none()
            {
                return Err(exit::failure(
                    format!("`{}` is not deployed in namespace `{ns}`", spec.name),
                    None,
                ));
            }
            let switched = maintenance::off(client, ns, spec, reporter).await?;
            if was.is_some() {
                release::add_event(
                    client,
                    ns,
                    &spec.name,
                    &format!("maintenance off by {user} at {now}"),
                )
                .await?;
            }
            (None, switched)
        }
    };
    printer.clear_progress();
    let hosts = switched
        .as_ref()
        .map(|s| s.hosts.clone())
        .unwrap_or_default();
    match format {
        Some(f) => {
            let doc = serde_json::json!({
                "app": spec.name,
                "namespace": ns,
                "maintenance": on.is_some(),
                "since": on.as_ref().map(|m| m.since.clone()),
                "message": on.as_ref().and_then(|m| m.message.clone()),
                "ingress": switched.as_ref().map(|s| s.ingress.clone()),
                "route_kind": switched.as_ref().map(|s| s.kind),
                "hosts": hosts,
            });
            printer.out(&match f {
                OutputFormat::Json => serde_json::to_string_pretty(&doc)?,
                _ => serde_saphyr::to_string(&doc)?,
            })?;
        }
        None => {
            let hosts = if hosts.is_empty() {
                "the app's hosts".to_string()
            } else {
                hosts.join(", ")
            };
            match (&on, &was) {
                (Some(m), _) => printer.info(&format!(
                    "maintenance is on since {}: {hosts} answer 503 with the maintenance page (Retry-After {}s); the app's pods keep running, deploys keep the page; `kubectl rails maintenance off` brings traffic back",
                    m.since,
                    render::RETRY_AFTER_SECONDS
                )),
                (None, Some(_)) => {
                    printer.info(&format!("maintenance is off: {hosts} go to the app again"));
                    warn_if_web_is_down(ctx, target, spec).await?;
                }
                (None, None) => printer.info(&format!(
                    "maintenance was not on for `{}`: {hosts} go to the app",
                    spec.name
                )),
            }
        }
    }
    Ok(())
}

/// `public/503.html` of the app folder, when it has one.
fn read_app_page(ctx: &Context<'_>) -> anyhow::Result<Option<String>> {
    let path = ctx.settings.global.app_dir.join("public/503.html");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() > MAX_PAGE_BYTES => Err(exit::usage(
            format!(
                "`{}` is {} KiB; a maintenance page fits in {} KiB (a ConfigMap holds it)",
                path.display(),
                bytes.len() / 1024,
                MAX_PAGE_BYTES / 1024
            ),
            Some("make the page smaller (link images instead of inlining them), or give `--message TEXT`".into()),
        )),
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(exit::failure(
            format!("cannot read `{}`: {e}", path.display()),
            Some("fix its permissions, or give `--message TEXT`".into()),
        )),
    }
}

/// Traffic is back, but it lands nowhere if web has no Ready pod (scaled to 0 during the work).
async fn warn_if_web_is_down(
    ctx: &Context<'_>,
    target: &Target,
    spec: &AppSpec,
) -> anyhow::Result<()> {
    let name = spec.deployment_name("web");
    let live = kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
        target.conn.client.clone(),
        &target.namespace,
    )
    .get_opt(&name)
    .await?;
    let ready = live
        .and_then(|d| d.status)
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready == 0 {
        ctx.printer.warn(&format!(
            "`{name}` has no Ready pod: requests fail until it has one (`kubectl rails status`, `kubectl rails scale web=N`)"
        ));
    }
    Ok(())
}

fn now() -> String {
    let t = k8s_openapi::jiff::Timestamp::now();
    t.round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or(t)
        .to_string()
}
