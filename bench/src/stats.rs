//! Figures over several runs: the median, with the spread beside it.

use serde_json::{Value, json};

/// The median; `None` for no values.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// The value at quantile `q` of `samples` (nearest rank); `None` for no samples.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
    sorted.get(rank.min(sorted.len().saturating_sub(1))).copied()
}

/// One figure measured in several runs.
#[derive(Debug, Clone, Default)]
pub struct Runs(pub Vec<f64>);

impl Runs {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub fn median(&self) -> f64 {
        median(self.0.iter().copied()).unwrap_or(f64::NAN)
    }

    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// `{median, min, max, runs}`.
    pub fn json(&self) -> Value {
        json!({"median": self.median(), "min": self.min(), "max": self.max(), "runs": self.0})
    }

    /// "median (min–max)" with `decimals` places.
    pub fn cell(&self, decimals: usize) -> String {
        format!("{:.d$} ({:.d$}–{:.d$})", self.median(), self.min(), self.max(), d = decimals)
    }
}
