//! Progress of long work before the server listens — recovering a large spool after a crash:
//! a bar on a terminal (indicatif; hidden when stderr is not one), and for logs a line when the
//! work is found and every few seconds while it goes on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use liverec_recorder::recovery::RecoveryProgress;

/// How often a progress line is logged while recovery goes on.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct RecoveryBar {
    bar: ProgressBar,
    found: AtomicU64,
    done: AtomicU64,
    last_log: Mutex<Instant>,
}

impl RecoveryBar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "recovering the spool {bar:40} {pos}/{len} recordings, {elapsed} (eta {eta})",
        ) {
            bar.set_style(style);
        }
        Self {
            bar,
            found: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl RecoveryProgress for RecoveryBar {
    fn found(&self, n: u64) {
        let found = self.found.fetch_add(n, Ordering::Relaxed) + n;
        self.bar.set_length(found);
        self.bar.suspend(|| {
            tracing::info!(
                found,
                "recovering unfinished recordings left by the previous run"
            );
        });
    }

    fn finished(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.inc(1);
        let now = Instant::now();
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(*last) >= LOG_EVERY {
            *last = now;
            let found = self.found.load(Ordering::Relaxed);
            self.bar
                .suspend(|| tracing::info!(done, found, "recovery in progress"));
        }
    }
}
