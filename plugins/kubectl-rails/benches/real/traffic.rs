//! Requests through the ingress during rolling deploys: one request after another, paced at a
//! fixed rate (a request that takes longer delays the next), each answer kept in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::node::RealNode;

/// One answer: the HTTP status (0: no answer within 10 s) and the version on the page.
pub type Answer = (u16, Option<String>);

pub struct RequestLoop {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    worker: std::thread::JoinHandle<()>,
    started: Instant,
}

impl RequestLoop {
    pub fn start(node: Arc<RealNode>, host: &str, per_second: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (flag, sink, host) = (stop.clone(), answers.clone(), host.to_string());
        let worker = std::thread::spawn(move || {
            let gap = Duration::from_secs(1) / per_second;
            let mut next = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                let answer = node.get_page(&host);
                sink.lock().unwrap().push(answer);
                next += gap;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Self {
            stop,
            answers,
            worker,
            started: Instant::now(),
        }
    }

    /// How many answers so far.
    pub fn len(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Waits until the last `n` answers are all 200 with `version`, for at most `limit`: the
    /// ingress controller stops routing to old pods a moment after a rollout ends.
    pub fn settle_on(&self, version: &str, n: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            {
                let answers = self.answers.lock().unwrap();
                if answers.len() >= n
                    && answers[answers.len() - n..]
                        .iter()
                        .all(|(code, v)| *code == 200 && v.as_deref() == Some(version))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Stops the loop: every answer, and how long it ran.
    pub fn stop(self) -> (Vec<Answer>, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.worker.join().unwrap();
        let took = self.started.elapsed();
        (std::mem::take(&mut *self.answers.lock().unwrap()), took)
    }
}

/// The answers of one side's rolling deploys, counted.
#[derive(Default)]
pub struct Lost {
    pub requests: usize,
    /// No HTTP answer (connection refused or reset, or 10 s without one).
    pub failed: usize,
    pub server_errors: usize,
    /// Any other status but 200 (a 404 while the controller has no backend, for example).
    pub other: usize,
    /// Deploys during which at least one request failed or got a 5xx.
    pub deploys_with_loss: usize,
    pub deploys: usize,
    pub seconds: f64,
    /// Every status seen, with its count.
    pub statuses: std::collections::BTreeMap<u16, usize>,
}

impl Lost {
    /// Counts `answers`; `bounds` are the answer counts at the start of each deploy.
    pub fn count(answers: &[Answer], bounds: &[usize], took: Duration) -> Self {
        let mut lost = Lost {
            requests: answers.len(),
            deploys: bounds.len(),
            seconds: took.as_secs_f64(),
            ..Lost::default()
        };
        for (code, _) in answers {
            *lost.statuses.entry(*code).or_insert(0) += 1;
            match code {
                0 => lost.failed += 1,
                500..=599 => lost.server_errors += 1,
                200 => {}
                _ => lost.other += 1,
            }
        }
        let ends = bounds.iter().skip(1).copied().chain([answers.len()]);
        lost.deploys_with_loss = bounds
            .iter()
            .zip(ends)
            .filter(|(start, end)| {
                answers[**start..*end]
                    .iter()
                    .any(|(code, _)| *code == 0 || *code >= 500)
            })
            .count();
        lost
    }
}
