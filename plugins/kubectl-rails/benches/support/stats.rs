//! Figures and the Markdown tables they print as: every figure keeps its samples, so min, median
//! and max come from the same rounds, and a ratio is always taken within one run.

use std::time::Duration;

/// The samples of one measurement, in the order they were taken.
#[derive(Default, Clone)]
pub struct Figure {
    pub samples: Vec<Duration>,
}

impl Figure {
    pub fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut s = self.samples.clone();
        s.sort();
        s
    }

    pub fn min(&self) -> Duration {
        self.sorted()[0]
    }

    pub fn max(&self) -> Duration {
        *self.sorted().last().unwrap()
    }

    /// The middle sample; with an even count, the mean of the two middle ones.
    pub fn median(&self) -> Duration {
        let s = self.sorted();
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2
        }
    }

    /// Round by round `a - b` (for example the plugin's time over the floor of the same deploy).
    pub fn minus(&self, b: &Figure) -> Figure {
        Figure {
            samples: self
                .samples
                .iter()
                .zip(&b.samples)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }
}

/// Milliseconds below ten seconds, seconds above.
pub fn fmt(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A table's header and its separator line.
pub fn header(columns: &[&str]) {
    println!("| {} |", columns.join(" | "));
    println!("|{}", " --- |".repeat(columns.len()));
}

/// `| name | rounds | min | median | max |`
pub fn row(name: &str, f: &Figure) {
    if f.samples.is_empty() {
        println!("| {name} | 0 | - | - | - |");
        return;
    }
    println!(
        "| {name} | {} | {} | {} | {} |",
        f.samples.len(),
        fmt(f.min()),
        fmt(f.median()),
        fmt(f.max())
    );
}

/// `a / b` of the medians and of the minimums, two decimals.
pub fn ratio(a: &Figure, b: &Figure) -> String {
    if a.samples.is_empty() || b.samples.is_empty() {
        return "-".into();
    }
    format!(
        "{:.2} (min {:.2})",
        a.median().as_secs_f64() / b.median().as_secs_f64(),
        a.min().as_secs_f64() / b.min().as_secs_f64()
    )
}
