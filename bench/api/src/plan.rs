//! Which stream gets which command next.
//!
//! Live streams each cycle through `start → stop → cancel_delay`, so every command is valid and
//! does real work (a recording opens with pre-roll, pauses, and is finalized into a file). A
//! share of the requests are `stop` on streams that are not publishing (idempotent: 200, no
//! change), as a backend polling "make sure it is stopped" would send.

/// The commands a live stream cycles through.
pub const CYCLE: [&str; 3] = ["start", "stop", "cancel_delay"];

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub stream: String,
    pub command: &'static str,
    /// `live` or `idle`, for the report.
    pub kind: &'static str,
}

/// A deterministic command plan.
#[derive(Debug, Clone)]
pub struct Plan {
    live: Vec<String>,
    idle: Vec<String>,
    idle_share: f64,
    steps: Vec<usize>,
    next_live: usize,
    next_idle: usize,
    issued: u64,
}

impl Plan {
    /// `live` streams are named `{live_prefix}{i}`, idle ones `{idle_prefix}{i}`. `idle_share`
    /// (0–1) is the fraction of requests that go to idle streams.
    pub fn new(
        live_prefix: &str,
        live: usize,
        idle_prefix: &str,
        idle: usize,
        idle_share: f64,
    ) -> Self {
        let share = if live == 0 {
            1.0
        } else if idle == 0 {
            0.0
        } else {
            idle_share.clamp(0.0, 1.0)
        };
        Self {
            live: (0..live).map(|i| format!("{live_prefix}{i}")).collect(),
            idle: (0..idle).map(|i| format!("{idle_prefix}{i}")).collect(),
            idle_share: share,
            steps: vec![0; live],
            next_live: 0,
            next_idle: 0,
            issued: 0,
        }
    }

    /// The next request, or `None` when there are no streams at all.
    pub fn next_request(&mut self) -> Option<Planned> {
        let k = self.issued as f64;
        self.issued += 1;
        // Spread idle requests evenly: request k is idle when the running share crosses an integer.
        let idle_turn = ((k + 1.0) * self.idle_share).floor() > (k * self.idle_share).floor();
        if idle_turn && !self.idle.is_empty() {
            let stream = self.idle[self.next_idle % self.idle.len()].clone();
            self.next_idle += 1;
            return Some(Planned {
                stream,
                command: "stop",
                kind: "idle",
            });
        }
        if self.live.is_empty() {
            return None;
        }
        let i = self.next_live % self.live.len();
        self.next_live += 1;
        let command = CYCLE[self.steps[i] % CYCLE.len()];
        self.steps[i] += 1;
        Some(Planned {
            stream: self.live[i].clone(),
            command,
            kind: "live",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_streams_cycle_in_order() {
        let mut p = Plan::new("s", 2, "idle", 0, 0.5);
        let got: Vec<(String, &str)> = (0..6)
            .map(|_| p.next_request().map(|r| (r.stream, r.command)).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                ("s0".into(), "start"),
                ("s1".into(), "start"),
                ("s0".into(), "stop"),
                ("s1".into(), "stop"),
                ("s0".into(), "cancel_delay"),
                ("s1".into(), "cancel_delay"),
            ]
        );
    }

    #[test]
    fn idle_share_is_respected() {
        let mut p = Plan::new("s", 100, "idle", 100, 0.2);
        let idle = (0..1000)
            .filter(|_| p.next_request().unwrap().kind == "idle")
            .count();
        assert_eq!(idle, 200);
    }

    #[test]
    fn only_idle_streams_get_stops() {
        let mut p = Plan::new("s", 0, "idle", 3, 0.0);
        for _ in 0..10 {
            let r = p.next_request().unwrap();
            assert_eq!((r.kind, r.command), ("idle", "stop"));
        }
        assert!(Plan::new("s", 0, "i", 0, 0.5).next_request().is_none());
    }
}
