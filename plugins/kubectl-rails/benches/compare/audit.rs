//! API requests per side, from the apiserver's audit log (every request of the admin user, at
//! the Metadata level). A side's requests are those in its own namespace, from its own start,
//! sent by its own user agent: the plugin sends `kubectl-rails/...`, kubectl `kubectl/...`,
//! Helm `Helm/...`. The scheduler, the controllers and kwok, which share the admin user here, are
//! left out by their agents; cluster-wide requests (discovery) by the namespace.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;

/// Whose requests to count: the namespace, the side's start and end, and its agent's prefix.
pub struct Window {
    pub ns: String,
    pub since: Timestamp,
    pub until: Timestamp,
    pub agent: &'static str,
}

/// Requests by verb, one map per window, in one pass over the log.
pub fn counts(log: &Path, windows: &[&Window]) -> Vec<BTreeMap<String, usize>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts = vec![BTreeMap::new(); windows.len()];
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let verb = e["verb"].as_str().unwrap_or("");
        // A watch is logged when its response starts; everything else when it completes.
        let counted = if verb == "watch" {
            e["stage"] == "ResponseStarted"
        } else {
            e["stage"] == "ResponseComplete"
        };
        if !counted {
            continue;
        }
        let (Some(ns), Some(agent), Some(at)) = (
            e["objectRef"]["namespace"].as_str(),
            e["userAgent"].as_str(),
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok()),
        ) else {
            continue;
        };
        for (w, c) in windows.iter().zip(&mut counts) {
            if w.ns == ns && agent.starts_with(w.agent) && w.since <= at && at <= w.until {
                *c.entry(verb.to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}
