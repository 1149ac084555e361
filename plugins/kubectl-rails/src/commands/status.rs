//! `kubectl rails status`: one screen for the app. The status crate reads it from the cluster as
//! one [`StatusData`] value; the tables here are pure functions of it, so deploy's summary and
//! `status` print the same thing.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, Table};
use futures::StreamExt;
use kubectl_rails_core::AppSpec;
use kubectl_rails_status::{IngressRow, StatusData, changes, collect};

use crate::cli::{OutputFormat, StatusArgs};
use crate::context::Context;

/// `5s`, `3m`, `2h`, `4d`, like kubectl.
pub(crate) fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_header(header.iter().map(Cell::new));
    t
}

/// Processes: ready/desired, image, revision.
pub(crate) fn processes_table(d: &StatusData) -> Table {
    let mut t = table(&["PROCESS", "READY", "IMAGE", "REVISION"]);
    for p in &d.processes {
        let ready = if p.rolled_out {
            format!("{}/{}", p.ready, p.desired)
        } else {
            format!("{}/{} (rolling out)", p.ready, p.desired)
        };
        t.add_row(vec![
            p.process.clone(),
            ready,
            p.image.clone(),
            d.revision.map_or("-".into(), |r| format!("v{r}")),
        ]);
    }
    t
}

/// Pods: name, process, ready, status, restarts, age; node too (`-o wide`, or always in status).
pub(crate) fn pods_table(d: &StatusData, wide: bool) -> Table {
    let mut header = vec![
        "POD", "PROCESS", "READY", "STATUS", "RESTARTS", "AGE", "NODE",
    ];
    if wide {
        header.extend(["IP", "IMAGE"]);
    }
    let mut t = table(&header);
    for p in &d.pods {
        let mut row = vec![
            p.name.clone(),
            p.process.clone(),
            p.ready.clone(),
            p.status.clone(),
            p.restarts.to_string(),
            age(p.age_seconds),
            p.node.clone(),
        ];
        if wide {
            row.push(p.ip.clone().unwrap_or_else(|| "<none>".into()));
            row.push(p.image.clone());
        }
        t.add_row(row);
    }
    t
}

/// The one-screen text of `status`.
pub(crate) fn render_text(d: &StatusData, wide: bool) -> String {
    let mut out = format!(
        "App {} in namespace {}\n\n{}\n",
        d.app,
        d.namespace,
        processes_table(d)
    );
    out.push_str(&ingress_line(d));
    if let Some(m) = &d.maintenance {
        out.push_str(&format!(
            "Maintenance: on since {}{}: every request gets the 503 page; `kubectl rails maintenance off` ends it\n",
            m.since,
            m.message
                .as_ref()
                .map_or(String::new(), |t| format!(" ({t})"))
        ));
    }
    if !d.autoscalers.is_empty() {
        out.push('\n');
        for a in &d.autoscalers {
            out.push_str(&format!(
                "Autoscaler {}: {}-{} replicas, now {}{}\n",
                a.process,
                a.min,
                a.max,
                a.current,
                a.cpu_target
                    .map_or(String::new(), |c| format!(", target CPU {c}%"))
            ));
        }
    }
    out.push('\n');
    if d.pods.is_empty() {
        out.push_str("No pods.\n");
    } else {
        out.push_str(&format!("{}\n", pods_table(d, wide)));
    }
    if !d.warnings.is_empty() {
        out.push_str("\nRecent warnings:\n");
        for w in &d.warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out
}

/// `-o name`: the objects of the app, as kubectl names them, for scripts.
fn names(d: &StatusData, spec: &AppSpec) -> String {
    let mut out: Vec<String> = d
        .processes
        .iter()
        .map(|p| format!("deployment.apps/{}", spec.deployment_name(&p.process)))
        .collect();
    out.extend(d.pods.iter().map(|p| format!("pod/{}", p.name)));
    out.join("\n")
}

/// Where the app is reachable, or what to check when it is not yet.
pub(crate) fn ingress_line(d: &StatusData) -> String {
    match &d.ingress {
        None => "Ingress: none (the app is reachable inside the cluster only)\n".into(),
        Some(IngressRow {
            kind: "HTTPRoute",
            url,
            address,
            gateway,
            route,
            ..
        }) => format!(
            "Route: {} through Gateway `{}` (HTTPRoute {}){}\n",
            url.as_deref().unwrap_or("no host"),
            gateway.as_deref().unwrap_or_default(),
            route.as_deref().unwrap_or("not reported"),
            match address {
                Some(a) => format!(" -> {a}"),
                None =>
                    "; the Gateway reports no address (`kubectl rails doctor` checks it)".into(),
            }
        ),
        Some(IngressRow {
            url: Some(url),
            address: Some(address),
            ..
        }) => format!("Ingress: {url} -> {address}\n"),
        Some(i) => format!(
            "Ingress: {} has no address yet: check that an ingress controller runs (`kubectl get ingressclass`) and that DNS points at it\n",
            i.hosts.join(", ")
        ),
    }
}

pub(crate) async fn run(args: &StatusArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let format = ctx.settings.output(&[
        OutputFormat::Wide,
        OutputFormat::Json,
        OutputFormat::Yaml,
        OutputFormat::Name,
    ])?;
    let spec = ctx.spec()?;
    let target = ctx.target().await?;
    let client = &target.conn.client;
    let ns = &target.namespace;
    let show = |d: &StatusData| -> anyhow::Result<String> {
        Ok(match format {
            Some(OutputFormat::Json) => serde_json::to_string_pretty(d)?,
            Some(OutputFormat::Yaml) => serde_saphyr::to_string(d)?,
            Some(OutputFormat::Name) => names(d, spec),
            Some(OutputFormat::Wide) => render_text(d, true),
            _ => render_text(d, false),
        })
    };
    let (data, canary) = tokio::try_join!(
        async { Ok::<_, anyhow::Error>(collect(client, ns, spec).await?) },
        async { Ok(kubectl_rails_deploy::canary::status(client, ns, spec).await?) },
    )?;
    match (format, &canary) {
        (Some(f @ (OutputFormat::Json | OutputFormat::Yaml)), Some(c)) => {
            let mut doc = serde_json::to_value(&data)?;
            doc["canary"] = serde_json::to_value(c)?;
            printer.out(&match f {
                OutputFormat::Json => serde_json::to_string_pretty(&doc)?,
                _ => serde_saphyr::to_string(&doc)?,
            })?;
        }
        (None | Some(OutputFormat::Wide), Some(c)) => {
            printer.out(&format!(
                "{}
{}",
                show(&data)?,
                crate::commands::canary::text(c)
            ))?;
        }
        _ => printer.out(&show(&data)?)?,
    }
    if !args.watch {
        return Ok(());
    }
    // A person at a terminal sees one screen redrawn in place; a pipe gets every update in turn.
    let redraw =
        matches!(format, None | Some(OutputFormat::Wide)) && std::io::stdout().is_terminal();
    let mut events = changes(client, ns, spec);
    while events.next().await.is_some() {
        // Coalesce a burst of events (a rollout touches many pods) into one refresh.
        let _ = tokio::time::timeout(Duration::from_millis(250), async {
            while events.next().await.is_some() {}
        })
        .await;
        let screen = show(&collect(client, ns, spec).await?)?;
        printer.out(&format!("{}{screen}", refresh_prefix(redraw)))?;
    }
    Ok(())
}

/// What goes before each refreshed screen of `status -w`.
fn refresh_prefix(redraw: bool) -> &'static str {
    if redraw {
        // Cursor home, clear the screen.
        "\x1b[H\x1b[2J"
    } else {
        "\n"
    }
}
