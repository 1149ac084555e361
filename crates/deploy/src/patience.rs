//! Pods the scheduler cannot place yet. Unlike a crash loop, that can fix itself: a volume binds a
//! moment after its claim is created, a cluster autoscaler adds a node. Such a pod gets a grace
//! period before the deploy gives up on it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// How long a pod may stay unschedulable before the deploy calls it hopeless.
pub(crate) const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(60);

/// Waiting pods by name, each with what to report if it runs out of grace.
pub(crate) struct Unscheduled<T> {
    grace: Duration,
    waiting: BTreeMap<String, (Instant, T)>,
}

impl<T: Clone> Unscheduled<T> {
    pub(crate) fn new(grace: Duration) -> Self {
        Unscheduled {
            grace,
            waiting: BTreeMap::new(),
        }
    }

    /// Records that `pod` cannot be scheduled. True the first time, so the caller says it once.
    pub(crate) fn waiting(&mut self, pod: &str, report: T, now: Instant) -> bool {
        match self.waiting.get_mut(pod) {
            Some((_, latest)) => {
                *latest = report;
                false
            }
            None => {
                self.waiting.insert(pod.to_string(), (now, report));
                true
            }
        }
    }

    /// The pod was placed, or is gone.
    pub(crate) fn settled(&mut self, pod: &str) {
        self.waiting.remove(pod);
    }

    /// When the longest-waiting pod runs out of grace.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.waiting
            .values()
            .map(|(since, _)| *since + self.grace)
            .min()
    }

    /// A pod whose grace is over: its latest report.
    pub(crate) fn expired(&self, now: Instant) -> Option<T> {
        self.waiting
            .values()
            .find(|(since, _)| *since + self.grace <= now)
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
    fn a_pod_is_hopeless_only_after_the_grace() {
        let mut u: Unscheduled<&str> = Unscheduled::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(u.waiting("web-1", "first", start));
        assert!(!u.waiting("web-1", "later", start + Duration::from_secs(30)));
        assert_eq!(u.next_deadline(), Some(start + Duration::from_secs(60)));
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
        let mut u: Unscheduled<&str> = Unscheduled::new(Duration::from_secs(60));
        let start = Instant::now();
        u.waiting("web-1", "x", start);
        u.settled("web-1");
        assert_eq!(u.next_deadline(), None);
        assert_eq!(u.expired(start + Duration::from_secs(600)), None);
    }
}
