//! Requests lost during rolling deploys: the answers of the shared request loop
//! (`tests/common/real_node.rs`), counted per deploy.

use std::time::Duration;

use crate::real_node::Answer;

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
