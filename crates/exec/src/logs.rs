//! The merged logs of every pod of the app, each line prefixed with its pod; with `follow`, pods
//! that appear during a rollout are followed too.

use std::collections::BTreeSet;

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_kube::api_err;
use kubectl_rails_spec::AppSpec;
use kubectl_rails_spec::render::labels;

use crate::ExecError;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub process: Option<String>,
    pub follow: bool,
    pub since_seconds: Option<i64>,
    pub tail: Option<i64>,
}

fn selector(spec: &AppSpec, process: Option<&str>) -> Result<String, ExecError> {
    let processes = match process {
        Some(p) if spec.replicas_of(p).is_none() => {
            return Err(ExecError::UnknownProcess {
                process: p.into(),
                known: spec.process_names().join(", "),
            });
        }
        Some(p) => p.to_string(),
        None => spec.process_names().join(","),
    };
    Ok(format!(
        "{}={},{} in ({processes})",
        labels::INSTANCE,
        spec.name,
        labels::COMPONENT
    ))
}

fn params(opts: &LogOptions, follow: bool, timestamps: bool) -> LogParams {
    LogParams {
        follow,
        since_seconds: opts.since_seconds,
        tail_lines: opts.tail,
        timestamps,
        ..LogParams::default()
    }
}

/// Prints the logs through `sink(pod, line)`.
pub async fn stream(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    opts: &LogOptions,
    sink: &(dyn Fn(&str, &str) + Sync),
) -> Result<(), ExecError> {
    let selector = selector(spec, opts.process.as_deref())?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    if !opts.follow {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(api_err(format!(
                "list the pods of `{}` in namespace `{ns}`",
                spec.name
            )))?;
        if list.items.is_empty() {
            return Err(ExecError::NoPods {
                app: spec.name.clone(),
                namespace: ns.into(),
            });
        }
        // Fetch every pod's lines with timestamps, then merge them in time order.
        let fetches = list
            .items
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .map(|name| {
                let pods = pods.clone();
                let p = params(opts, false, true);
                async move { (name.clone(), pods.logs(&name, &p).await) }
            });
        let mut lines: Vec<(String, String, String)> = Vec::new();
        for (pod, result) in futures::future::join_all(fetches).await {
            let Ok(text) = result else { continue };
            for line in text.lines() {
                let (time, rest) = line.split_once(' ').unwrap_or(("", line));
                lines.push((time.to_string(), pod.clone(), rest.to_string()));
            }
        }
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, pod, line) in lines {
            sink(&pod, &line);
        }
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let mut followed = BTreeSet::new();
    let events = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(events);
    loop {
        tokio::select! {
            Some((pod, line)) = rx.recv() => sink(&pod, &line),
            Some(event) = events.next() => {
                let Ok(pod) = event else { continue };
                let name = pod.metadata.name.clone().unwrap_or_default();
                let started = pod.status.as_ref().and_then(|s| s.phase.as_deref()).is_some_and(|p| p != "Pending");
                if started && followed.insert(name.clone()) {
                    let (pods, tx, p) = (pods.clone(), tx.clone(), params(opts, true, false));
                    tokio::spawn(async move {
                        let Ok(stream) = pods.log_stream(&name, &p).await else { return };
                        let mut lines = stream.lines();
                        while let Ok(Some(line)) = lines.try_next().await {
                            if tx.send((name.clone(), line)).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
            else => return Ok(()),
        }
    }
}
