//! `kubectl rails status`: one screen for the app. The tables are pure functions of
//! [`StatusData`], so deploy's summary and `status` print the same thing.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, Table};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::labels;
use kubectl_rails_deploy::progress;
use kubectl_rails_deploy::release;
use kubectl_rails_kube::api_err;
use serde::Serialize;

use crate::cli::{OutputFormat, StatusArgs};
use crate::printer::Printer;
use crate::settings::Settings;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusData {
    pub app: String,
    pub namespace: String,
    pub revision: Option<u32>,
    pub processes: Vec<ProcessRow>,
    pub pods: Vec<PodRow>,
    pub ingress: Option<IngressRow>,
    pub autoscalers: Vec<AutoscalerRow>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProcessRow {
    pub process: String,
    pub ready: i32,
    pub desired: i32,
    pub image: String,
    pub rolled_out: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PodRow {
    pub name: String,
    pub process: String,
    pub node: String,
    pub ready: String,
    pub status: String,
    pub restarts: i32,
    /// Seconds since the pod was created.
    pub age_seconds: i64,
    pub ip: Option<String>,
    /// The image of the pod's main container: during a rollout, which release a pod runs.
    pub image: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct IngressRow {
    pub hosts: Vec<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AutoscalerRow {
    pub process: String,
    pub min: i32,
    pub max: i32,
    pub current: i32,
    pub cpu_target: Option<i32>,
}

/// Reads everything `status` shows, in a handful of list calls.
pub(crate) async fn collect(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
) -> anyhow::Result<StatusData> {
    let selector = format!("{}={}", labels::INSTANCE, spec.name);
    let params = ListParams::default().labels(&selector);
    // Every read at once: the screen waits on the slowest call, not on their sum.
    let deployment_api = Api::<Deployment>::namespaced(client.clone(), ns);
    let pod_api = Api::<Pod>::namespaced(client.clone(), ns);
    let ingress_api = Api::<Ingress>::namespaced(client.clone(), ns);
    let hpa_api = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns);
    let (deployments, pods, ingress, autoscalers, warnings, history) = tokio::join!(
        deployment_api.list(&params),
        pod_api.list(&params),
        async {
            match &spec.ingress {
                Some(_) => ingress_api.get_opt(&spec.name).await,
                None => Ok(None),
            }
        },
        hpa_api.list(&params),
        recent_warnings(client, ns, &spec.name),
        release::list(client, ns, &spec.name),
    );
    let deployments = deployments.map_err(api_err(format!(
        "list the Deployments of `{}` in namespace `{ns}`",
        spec.name
    )))?;
    let mut processes = Vec::new();
    for process in spec.process_names() {
        let name = spec.deployment_name(&process);
        if let Some(d) = deployments
            .items
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name.as_str()))
        {
            let p = progress::progress(&process, d);
            let image = d
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            processes.push(ProcessRow {
                process,
                ready: p.ready,
                desired: p.desired,
                image,
                rolled_out: p.done,
            });
        }
    }
    let now = Timestamp::now();
    let pods = pods.map_err(api_err(format!(
        "list the pods of `{}` in namespace `{ns}`",
        spec.name
    )))?;
    let mut pod_rows: Vec<PodRow> = pods.items.iter().map(|p| pod_row(p, now)).collect();
    pod_rows.sort_by(|a, b| (&a.process, &a.name).cmp(&(&b.process, &b.name)));
    let ingress = ingress
        .map_err(api_err(format!("read Ingress `{}`", spec.name)))?
        .map(|i| ingress_row(&i));
    let autoscalers = autoscalers
        .map(|l| l.items.iter().map(autoscaler_row).collect())
        .unwrap_or_default();
    let revision = history
        .ok()
        .and_then(|h| release::current(&h).map(|r| r.revision));
    Ok(StatusData {
        app: spec.name.clone(),
        namespace: ns.to_string(),
        revision,
        processes,
        pods: pod_rows,
        ingress,
        autoscalers,
        warnings,
    })
}

fn pod_row(p: &Pod, now: Timestamp) -> PodRow {
    let status = p.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    let ready = containers.iter().filter(|c| c.ready).count();
    let waiting = containers
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let phase = if p.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        waiting.unwrap_or_else(|| status.phase.clone().unwrap_or_else(|| "Pending".into()))
    };
    PodRow {
        name: p.metadata.name.clone().unwrap_or_default(),
        process: labels::component_of(&p.metadata),
        node: p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "<none>".into()),
        ready: format!(
            "{ready}/{}",
            p.spec.as_ref().map_or(0, |s| s.containers.len())
        ),
        status: phase,
        restarts: containers.iter().map(|c| c.restart_count).sum(),
        age_seconds: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| now.as_second() - t.0.as_second()),
        ip: status.pod_ip.clone(),
        image: p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
    }
}

fn ingress_row(i: &Ingress) -> IngressRow {
    let spec = i.spec.clone().unwrap_or_default();
    let hosts: Vec<String> = spec
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.host)
        .collect();
    let address = i
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|list| list.first())
        .and_then(|a| a.hostname.clone().or_else(|| a.ip.clone()));
    let scheme = if spec.tls.is_some_and(|t| !t.is_empty()) {
        "https"
    } else {
        "http"
    };
    let url = address
        .as_ref()
        .and(hosts.first())
        .map(|h| format!("{scheme}://{h}"));
    IngressRow {
        hosts,
        address,
        url,
    }
}

fn autoscaler_row(h: &HorizontalPodAutoscaler) -> AutoscalerRow {
    let spec = h.spec.clone().unwrap_or_default();
    AutoscalerRow {
        process: labels::component_of(&h.metadata),
        min: spec.min_replicas.unwrap_or(1),
        max: spec.max_replicas,
        current: h
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0),
        cpu_target: spec.metrics.unwrap_or_default().iter().find_map(|m| {
            m.resource
                .as_ref()
                .filter(|r| r.name == "cpu")?
                .target
                .average_utilization
        }),
    }
}

async fn recent_warnings(client: &Client, ns: &str, app: &str) -> Vec<String> {
    let Ok(events) = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("type=Warning"))
        .await
    else {
        return vec![];
    };
    let mut items: Vec<&Event> = events
        .items
        .iter()
        .filter(|e| {
            e.involved_object
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&format!("{app}-")) || n == app)
        })
        .collect();
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(0)
    });
    items
        .iter()
        .rev()
        .take(5)
        .map(|e| {
            format!(
                "{} {}: {}",
                e.involved_object.name.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default().trim()
            )
        })
        .collect()
}

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

pub(crate) async fn run(
    args: &StatusArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<()> {
    let format = settings.output(&[
        OutputFormat::Wide,
        OutputFormat::Json,
        OutputFormat::Yaml,
        OutputFormat::Name,
    ])?;
    let spec = settings.load_spec(printer)?.spec;
    let target = settings.target(Some(&spec)).await?;
    let client = &target.conn.client;
    let ns = &target.namespace;
    let show = |d: &StatusData| -> anyhow::Result<String> {
        Ok(match format {
            Some(OutputFormat::Json) => serde_json::to_string_pretty(d)?,
            Some(OutputFormat::Yaml) => serde_saphyr::to_string(d)?,
            Some(OutputFormat::Name) => names(d, &spec),
            Some(OutputFormat::Wide) => render_text(d, true),
            _ => render_text(d, false),
        })
    };
    printer.out(&show(&collect(client, ns, &spec).await?)?)?;
    if !args.watch {
        return Ok(());
    }
    let selector = format!("{}={}", labels::INSTANCE, spec.name);
    let pods = watcher(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    let deps = watcher(
        Api::<Deployment>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    // A person at a terminal sees one screen redrawn in place; a pipe gets every update in turn.
    let redraw =
        matches!(format, None | Some(OutputFormat::Wide)) && std::io::stdout().is_terminal();
    let mut events = futures::stream::select(pods.map(|_| ()).boxed(), deps.map(|_| ()).boxed());
    while events.next().await.is_some() {
        // Coalesce a burst of events (a rollout touches many pods) into one refresh.
        let _ = tokio::time::timeout(Duration::from_millis(250), async {
            while events.next().await.is_some() {}
        })
        .await;
        let screen = show(&collect(client, ns, &spec).await?)?;
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
