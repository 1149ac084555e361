//! The bake: after a rollout is Ready, the new release is watched for a while before it is
//! trusted. Ready only means `/up` answers; a release whose pages raise is Ready too. The bake
//! reads what every Rails app already writes (`Completed 500 ...` in its request log) and what
//! the kubelet reports (restarts, readiness lost), with nothing installed in the cluster, and
//! says when the release fails its limits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::render::{CHECKSUM_ANNOTATION, labels};
use kubectl_rails_kube::api_err;
use serde::Serialize;

use crate::{DeployError, Reporter};

/// How long to watch, and what fails the release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BakeLimits {
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Percent of requests answered 5xx, above which the release fails.
    pub max_error_rate: f64,
    /// Container restarts of the new pods (and, counted apart, times a new pod stopped being
    /// Ready), above which the release fails.
    pub max_restarts: u32,
    /// Requests needed before an error rate counts: one 500 out of one is no rate.
    pub min_requests: u64,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// What the bake saw of the new release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BakeTally {
    pub requests: u64,
    /// Requests answered 5xx.
    pub errors: u64,
    pub restarts: u32,
    /// Times a new pod stopped being Ready.
    pub readiness_lost: u32,
    /// The first lines about errors (a 5xx request and the lines of the exception around it).
    pub evidence: Vec<String>,
    pub watched_seconds: u64,
}

/// How the bake ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum BakeVerdict {
    /// The release kept within its limits for the whole bake.
    Held { tally: BakeTally },
    /// It did not: why, and what was seen.
    Failed { reason: String, tally: BakeTally },
}

/// The status of a request line of a Rails log (`Completed 500 Internal Server Error in 12ms`,
/// with or without tags before it), or `None` for any other line.
pub fn request_status(line: &str) -> Option<u16> {
    let rest = &line[line.find("Completed ")? + "Completed ".len()..];
    let code = rest.get(..3)?;
    let tail = rest.get(3..)?;
    if !tail.is_empty() && !tail.starts_with(' ') {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// Why the release fails its limits, if it does.
pub fn judge(tally: &BakeTally, limits: &BakeLimits) -> Option<String> {
    if tally.restarts > limits.max_restarts {
        return Some(format!(
            "its pods restarted {} time(s) (the limit is {})",
            tally.restarts, limits.max_restarts
        ));
    }
    if tally.readiness_lost > limits.max_restarts {
        return Some(format!(
            "its pods stopped being Ready {} time(s) (the limit is {})",
            tally.readiness_lost, limits.max_restarts
        ));
    }
    if tally.requests >= limits.min_requests.max(1) {
        let rate = 100.0 * tally.errors as f64 / tally.requests as f64;
        if rate > limits.max_error_rate {
            return Some(format!(
                "{} of {} requests answered 5xx ({rate:.1}%, the limit is {}%)",
                tally.errors, tally.requests, limits.max_error_rate
            ));
        }
    }
    None
}

/// The live line of a bake.
pub fn progress_line(tally: &BakeTally, limits: &BakeLimits) -> String {
    format!(
        "bake {}s/{}s: {} requests, {} errors, {} restarts",
        tally.watched_seconds,
        limits.duration.as_secs(),
        tally.requests,
        tally.errors,
        tally.restarts
    )
}

/// How many lines of evidence are kept.
const EVIDENCE_LINES: usize = 8;

/// Watches the pods of the release web runs now for `limits.duration`, and judges them every
/// second: the first breach ends the bake at once.
pub async fn bake(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    limits: &BakeLimits,
    reporter: &dyn Reporter,
) -> Result<BakeVerdict, DeployError> {
    let web = spec.deployment_name("web");
    let selector = format!("{}={}", labels::INSTANCE, spec.name);
    bake_pods(client, ns, spec, &web, &selector, limits, reporter).await
}

/// The bake of a canary: only its own pods are watched, not the release beside it.
pub async fn bake_canary(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    limits: &BakeLimits,
    reporter: &dyn Reporter,
) -> Result<BakeVerdict, DeployError> {
    use kubectl_rails_core::render::canary::{TRACK_LABEL, canary_deployment_name};
    let selector = format!("{}={},{TRACK_LABEL}=canary", labels::INSTANCE, spec.name);
    let name = canary_deployment_name(spec);
    bake_pods(client, ns, spec, &name, &selector, limits, reporter).await
}

/// Watches the pods `selector` selects that carry the checksum of Deployment `web`'s template.
async fn bake_pods(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    web: &str,
    selector: &str,
    limits: &BakeLimits,
    reporter: &dyn Reporter,
) -> Result<BakeVerdict, DeployError> {
    let checksum = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(web)
        .await
        .map_err(api_err(format!(
            "read Deployment `{web}` in namespace `{ns}`"
        )))?
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(CHECKSUM_ANNOTATION).cloned())
        .unwrap_or_default();
    let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
    let tally = Arc::new(Mutex::new(BakeTally::default()));
    // Restarts counted from here, per pod and container; readiness as last seen.
    let mut baseline: BTreeMap<String, i32> = BTreeMap::new();
    let mut ready: BTreeMap<String, bool> = BTreeMap::new();
    let mut followed: BTreeSet<String> = BTreeSet::new();
    let mut readers = Vec::new();
    let started = tokio::time::Instant::now();
    let verdict = loop {
        let pods = pods_api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(api_err(format!("list the pods of `{}`", spec.name)))?;
        let ours = pods.items.iter().filter(|p| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CHECKSUM_ANNOTATION))
                == Some(&checksum)
                && p.metadata.deletion_timestamp.is_none()
        });
        let mut restarts = 0;
        let mut lost = 0;
        for pod in ours {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let status = pod.status.clone().unwrap_or_default();
            let count: i32 = status
                .container_statuses
                .iter()
                .flatten()
                .map(|c| c.restart_count)
                .sum();
            let base = *baseline.entry(name.clone()).or_insert(count);
            restarts += u32::try_from(count - base).unwrap_or(0);
            let is_ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready.insert(name.clone(), is_ready) == Some(true) && !is_ready {
                lost += 1;
            }
            let is_web = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::COMPONENT))
                .is_some_and(|c| c == "web");
            if is_web && followed.insert(name.clone()) {
                readers.push(tokio::spawn(read_requests(
                    pods_api.clone(),
                    name,
                    tally.clone(),
                )));
            }
        }
        let snapshot = {
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            t.restarts = restarts;
            t.readiness_lost += lost;
            t.watched_seconds = started.elapsed().as_secs();
            t.clone()
        };
        reporter.progress(&progress_line(&snapshot, limits));
        if let Some(reason) = judge(&snapshot, limits) {
            break BakeVerdict::Failed {
                reason,
                tally: snapshot,
            };
        }
        if started.elapsed() >= limits.duration {
            break BakeVerdict::Held { tally: snapshot };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for r in readers {
        r.abort();
    }
    Ok(verdict)
}

/// Follows the web container's log of one pod, from its start, counting request lines.
async fn read_requests(pods: Api<Pod>, pod: String, tally: Arc<Mutex<BakeTally>>) {
    let params = LogParams {
        follow: true,
        container: Some("web".into()),
        ..LogParams::default()
    };
    let Ok(stream) = pods.log_stream(&pod, &params).await else {
        return;
    };
    let mut lines = stream.lines();
    // The lines just before a 5xx (the exception's) are evidence too.
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    while let Some(Ok(line)) = lines.next().await {
        let status = request_status(&line);
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(code) = status {
            t.requests += 1;
            if code >= 500 {
                t.errors += 1;
                if t.evidence.len() < EVIDENCE_LINES {
                    let room = EVIDENCE_LINES - t.evidence.len();
                    let keep: Vec<String> = recent
                        .iter()
                        .filter(|l| l.contains("Error") || l.contains("error"))
                        .take(room.saturating_sub(1))
                        .map(|l| format!("{pod}: {l}"))
                        .collect();
                    t.evidence.extend(keep);
                    t.evidence.push(format!("{pod}: {line}"));
                }
            }
            recent.clear();
        } else {
            recent.push_back(line);
            if recent.len() > 20 {
                recent.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_read_from_rails_logs_and_nothing_else() {
        let cases: &[(&str, Option<u16>)] = &[
            (
                "I, [2026-12-05T07:00:00.1 #1]  INFO -- : [9f0c] Completed 500 Internal Server Error in 12ms (ActiveRecord: 0.0ms)",
                Some(500),
            ),
            ("[9f0c] Completed 200 OK in 5ms (Views: 1.2ms)", Some(200)),
            ("Completed 404 Not Found in 1ms", Some(404)),
            ("Completed 503", Some(503)),
            ("[9f0c] Started GET \"/\" for 10.88.0.1", None),
            ("Migration Completed 5000 rows", None),
            ("Completed abc", None),
            ("Completed", None),
        ];
        for (line, expected) in cases {
            assert_eq!(request_status(line), *expected, "{line}");
        }
    }

    #[test]
    fn a_release_fails_on_restarts_or_an_error_rate_over_enough_requests() {
        let limits = BakeLimits {
            duration: Duration::from_secs(60),
            max_error_rate: 5.0,
            max_restarts: 0,
            min_requests: 10,
        };
        let tally = |requests, errors, restarts| BakeTally {
            requests,
            errors,
            restarts,
            ..BakeTally::default()
        };
        let cases: &[(BakeTally, Option<&str>)] = &[
            (tally(0, 0, 0), None),
            (tally(100, 5, 0), None),
            (
                tally(100, 6, 0),
                Some("6 of 100 requests answered 5xx (6.0%"),
            ),
            // Too few requests to call it a rate.
            (tally(3, 3, 0), None),
            (tally(10, 10, 0), Some("10 of 10 requests")),
            (tally(0, 0, 1), Some("restarted 1 time(s)")),
            (
                BakeTally {
                    readiness_lost: 1,
                    ..BakeTally::default()
                },
                Some("stopped being Ready 1 time(s)"),
            ),
        ];
        for (t, expected) in cases {
            match (judge(t, &limits), expected) {
                (None, None) => {}
                (Some(reason), Some(e)) => assert!(reason.contains(e), "{reason}"),
                (got, want) => panic!("{t:?}: {got:?}, expected {want:?}"),
            }
        }
    }
}
