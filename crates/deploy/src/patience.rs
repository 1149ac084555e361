//! Pods the scheduler cannot place yet. Unlike a crash loop, that can fix itself: a volume binds a
//! moment after its claim is created (a cloud disk takes tens of seconds to provision), a node
//! comes back. Such a pod gets a short grace before the deploy gives up on it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// How long a pod may stay unschedulable, from the scheduler's message: waiting for a volume to
/// bind gets a minute, anything else (too little CPU or memory, taints) a few scheduling rounds.
pub fn grace_for(message: &str) -> Duration {
    if message.contains("PersistentVolumeClaim") || message.contains("volume") {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(20)
    }
}

/// How long a pull that failed for no reason the registry gave may be retried by the kubelet
/// (its back-off starts at 10 s and doubles) before the deploy gives up on it.
pub const PULL_RETRIES: Duration = Duration::from_secs(30);

/// How long a pull the registry refused (401, 403) may be retried once by the kubelet (its
/// back-off starts at 10 s) before the deploy says the credentials are wrong.
pub const PULL_AUTH_RETRY: Duration = Duration::from_secs(15);

/// How long a refused pull may be retried when the registry gave the image to this machine with
/// the same pull secret moments before: two of the kubelet's retries (10 s, then 20 s).
pub const PULL_CHECKED_RETRIES: Duration = Duration::from_secs(45);

/// Waiting pods by name, each with the time its grace ends and what to report then.
pub(crate) struct Unscheduled<T> {
    waiting: BTreeMap<String, (Instant, T)>,
}

impl<T: Clone> Unscheduled<T> {
    pub(crate) fn new() -> Self {
        Unscheduled {
            waiting: BTreeMap::new(),
        }
    }

    /// Records that `pod` cannot be scheduled, its grace ending at `until` (kept from the first
    /// time). True the first time, so the caller says it once.
    pub(crate) fn waiting(&mut self, pod: &str, report: T, until: Instant) -> bool {
        match self.waiting.get_mut(pod) {
            Some((_, latest)) => {
                *latest = report;
                false
            }
            None => {
                self.waiting.insert(pod.to_string(), (until, report));
                true
            }
        }
    }

    /// The pod was placed, or is gone.
    pub(crate) fn settled(&mut self, pod: &str) {
        self.waiting.remove(pod);
    }

    /// When the first waiting pod runs out of grace.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|(until, _)| *until).min()
    }

    /// A pod whose grace is over: its latest report.
    pub(crate) fn expired(&self, now: Instant) -> Option<T> {
        self.waiting
            .values()
            .find(|(until, _)| *until <= now)
            .map(|(_, problem)| problem.clone())
    }
}

/// Sleeps until `deadline`, or forever when there is none (for a `select!` branch).
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_hopeless_only_after_its_grace() {
        let mut u: Unscheduled<&str> = Unscheduled::new();
        let start = Instant::now();
        let until = start + Duration::from_secs(60);
        assert!(u.waiting("web-1", "first", until));
        assert!(!u.waiting("web-1", "later", start + Duration::from_secs(90)));
        assert_eq!(u.next_deadline(), Some(until), "the first grace holds");
        assert_eq!(u.expired(start + Duration::from_secs(59)), None);
        let expired = u.expired(start + Duration::from_secs(60));
        assert_eq!(
            expired,
            Some("later"),
            "the latest reason is the one reported"
        );
    }

    #[test]
    fn a_placed_pod_is_forgotten() {
        let mut u: Unscheduled<&str> = Unscheduled::new();
        let start = Instant::now();
        u.waiting("web-1", "x", start + Duration::from_secs(20));
        u.settled("web-1");
        assert_eq!(u.next_deadline(), None);
        assert_eq!(u.expired(start + Duration::from_secs(600)), None);
    }

    #[test]
    fn a_volume_gets_longer_than_a_lack_of_cpu() {
        let volume =
            grace_for("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.");
        let cpu = grace_for("0/3 nodes are available: 3 Insufficient cpu.");
        assert_eq!(volume, Duration::from_secs(60));
        assert_eq!(cpu, Duration::from_secs(20));
    }
}
