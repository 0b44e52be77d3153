//! Latency percentiles and per-outcome counts of one benchmark phase.

use std::collections::BTreeMap;
use std::time::Duration;

/// Outcome of one request: `OK` for HTTP 200, the Alibaba error `Code` otherwise, or a
/// client-side failure such as `io` or `timeout`.
pub type Outcome = String;

/// Latency summary in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles (no interpolation: every figure is a latency that was seen).
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let idx = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[idx.clamp(1, v.len()) - 1]
        };
        Some(Self {
            count: v.len(),
            mean_ms: v.iter().sum::<f64>() / v.len() as f64,
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            p999_ms: rank(99.9),
            max_ms: v[v.len() - 1],
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        serde_json::json!({
            "count": self.count, "mean_ms": r(self.mean_ms), "p50_ms": r(self.p50_ms),
            "p90_ms": r(self.p90_ms), "p99_ms": r(self.p99_ms), "p999_ms": r(self.p999_ms),
            "max_ms": r(self.max_ms),
        })
    }
}

/// Counts per (command, outcome).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcomes(pub BTreeMap<String, BTreeMap<Outcome, u64>>);

impl Outcomes {
    pub fn add(&mut self, command: &str, outcome: &str) {
        *self
            .0
            .entry(command.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Requests whose outcome is not `OK`.
    pub fn failures(&self) -> u64 {
        self.0
            .values()
            .flat_map(|m| m.iter())
            .filter(|(k, _)| k.as_str() != "OK")
            .map(|(_, n)| n)
            .sum()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// The outcome name of a response: `OK` for 200, else the body's `Code` (or `HTTP <status>`).
pub fn outcome_of(status: u16, body: &[u8]) -> Outcome {
    if status == 200 {
        return "OK".to_owned();
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("Code").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        let one = Summary::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!(one.p50_ms, 7.0);
        assert_eq!(one.p999_ms, 7.0);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn outcome_reads_the_alibaba_code() {
        assert_eq!(outcome_of(200, b"{}"), "OK");
        assert_eq!(
            outcome_of(409, br#"{"Code":"TaskAlreadyStarted","Message":"x"}"#),
            "TaskAlreadyStarted"
        );
        assert_eq!(outcome_of(502, b"<html>"), "HTTP 502");
    }

    #[test]
    fn failures_exclude_ok() {
        let mut o = Outcomes::default();
        o.add("start", "OK");
        o.add("start", "TaskAlreadyStarted");
        o.add("stop", "OK");
        assert_eq!(o.failures(), 1);
    }
}
