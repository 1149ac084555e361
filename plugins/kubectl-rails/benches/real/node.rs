//! The test cluster's real node for the benchmark: the facts and requests the real-node tests
//! use too (`tests/common/real_node.rs`), and a database per app.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::real_node::NodeFacts;

pub struct RealNode {
    facts: Arc<NodeFacts>,
}

impl Deref for RealNode {
    type Target = NodeFacts;

    fn deref(&self) -> &NodeFacts {
        &self.facts
    }
}

impl RealNode {
    /// The real node of the cluster whose state folder is `state`.
    pub fn load(state: &Path) -> Self {
        Self {
            facts: Arc::new(NodeFacts::load(state)),
        }
    }

    /// The facts, for a request loop's thread.
    pub fn facts(&self) -> Arc<NodeFacts> {
        self.facts.clone()
    }

    /// A fresh database and role `name`; the `DATABASE_URL` pods use.
    pub fn database(&self, name: &str) -> String {
        let password = format!("Bench-{name}-{}", std::process::id());
        self.facts.database(name, &password)
    }

    /// Waits until the page answers 200 with `version` (the ingress controller learns of new
    /// endpoints a moment after the pods are Ready).
    pub fn wait_for_version(&self, host: &str, version: &str) {
        let start = Instant::now();
        loop {
            let (code, seen) = self.answer(host);
            if code == 200 && seen.as_deref() == Some(version) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "https://{host}/ answers {code} with version {seen:?}, not {version}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
