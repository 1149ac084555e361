//! The merged logs of every pod of the app, each line prefixed with its pod; with `follow`, pods
//! that appear during a rollout are followed too.

use std::collections::BTreeSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::api_err;

use crate::ExecError;

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_that_are_not_utf8_are_shown_and_said() {
        assert_eq!(super::lossy(b"ok\n"), ("ok\n".to_string(), false));
        let (text, replaced) = super::lossy(b"caf\xe9 au lait\n");
        assert!(replaced);
        assert_eq!(text, "caf\u{fffd} au lait\n");
    }
}

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

/// One pod's log in the merge: its next line (time, text), read when the last one was shown.
struct Source<R> {
    pod: String,
    reader: futures::io::BufReader<R>,
    head: Option<(String, String)>,
    replaced: bool,
}

impl<R: futures::AsyncRead + Unpin> Source<R> {
    async fn advance(&mut self) {
        let mut line = Vec::new();
        self.head =
            match futures::AsyncBufReadExt::read_until(&mut self.reader, b'\n', &mut line).await {
                Ok(0) | Err(_) => None,
                Ok(_) => {
                    let (text, replaced) = lossy(&line);
                    self.replaced |= replaced;
                    let text = text.trim_end_matches(['\n', '\r']);
                    let (time, rest) = text.split_once(' ').unwrap_or(("", text));
                    Some((time.to_string(), rest.to_string()))
                }
            };
    }
}

/// How often the app's container (else the first) of `pod` restarted.
fn restarts(pod: &Pod) -> i32 {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let app = app_container(pod);
    statuses
        .iter()
        .find(|c| Some(&c.name) == app.as_ref())
        .or(statuses.first())
        .map_or(0, |c| c.restart_count)
}

/// The app's container in a pod: it is named after its process (the pod's component label),
/// so that pods with sidecars (a mesh proxy, a log shipper) show the app's log.
fn app_container(pod: &Pod) -> Option<String> {
    let component = labels::component_of(&pod.metadata);
    (!component.is_empty()).then_some(component)
}

/// Text from log bytes: invalid UTF-8 is shown with U+FFFD, and said so once per pod.
pub fn lossy(bytes: &[u8]) -> (String, bool) {
    match String::from_utf8_lossy(bytes) {
        std::borrow::Cow::Borrowed(s) => (s.to_string(), false),
        std::borrow::Cow::Owned(s) => (s, true),
    }
}

fn params(
    opts: &LogOptions,
    follow: bool,
    timestamps: bool,
    container: Option<String>,
) -> LogParams {
    LogParams {
        container,
        follow,
        since_seconds: opts.since_seconds,
        tail_lines: opts.tail,
        timestamps,
        ..LogParams::default()
    }
}

/// Prints the logs through `sink(pod, line)`, and what could not be shown as it is through
/// `note` (a pod whose log cannot be read, bytes that are not UTF-8).
pub async fn stream(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    opts: &LogOptions,
    sink: &(dyn Fn(&str, &str) + Sync),
    note: &(dyn Fn(&str) + Sync),
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
        // Every pod's log with timestamps, merged in time order a line at a time: only one
        // line per pod is held, however long the logs are.
        let opens = list.items.iter().filter_map(|p| {
            let name = p.metadata.name.clone()?;
            let pods = pods.clone();
            let params = params(opts, false, true, app_container(p));
            Some(async move {
                let stream = pods.log_stream(&name, &params).await;
                (name, stream)
            })
        });
        let mut sources = Vec::new();
        for (pod, stream) in futures::future::join_all(opens).await {
            match stream {
                Ok(stream) => sources.push(Source {
                    pod,
                    reader: futures::io::BufReader::new(stream),
                    head: None,
                    replaced: false,
                }),
                Err(e) => note(&format!("cannot read the log of pod `{pod}`: {e}")),
            }
        }
        futures::future::join_all(sources.iter_mut().map(Source::advance)).await;
        while let Some(next) = sources
            .iter_mut()
            .filter(|s| s.head.is_some())
            .min_by(|a, b| {
                a.head
                    .as_ref()
                    .map(|h| &h.0)
                    .cmp(&b.head.as_ref().map(|h| &h.0))
            })
        {
            if let Some((_, line)) = next.head.take() {
                sink(&next.pod, &line);
            }
            next.advance().await;
        }
        for s in sources.iter().filter(|s| s.replaced) {
            note(&format!(
                "pod `{}` logged bytes that are not UTF-8; they are shown as �",
                s.pod
            ));
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
                // Each run of the container is followed: a restarted one logs anew.
                if started && followed.insert((name.clone(), restarts(&pod))) {
                    let (pods, tx, p) = (pods.clone(), tx.clone(), params(opts, true, false, app_container(&pod)));
                    tokio::spawn(async move {
                        let stream = match pods.log_stream(&name, &p).await {
                            Ok(s) => s,
                            Err(e) => {
                                let _ = tx.send((name.clone(), format!("(cannot read this pod's log: {e})")));
                                return;
                            }
                        };
                        let mut reader = futures::io::BufReader::new(stream);
                        let mut line = Vec::new();
                        loop {
                            line.clear();
                            match futures::AsyncBufReadExt::read_until(&mut reader, b'\n', &mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {
                                    let (text, _) = lossy(&line);
                                    if tx.send((name.clone(), text.trim_end_matches(['\n', '\r']).to_string())).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            }
            else => return Ok(()),
        }
    }
}
