//! What each stream's recorder is doing now, for the dashboard and `liverec status`: the
//! drivers post their state when it changes (rare events, never per frame), readers take a
//! snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use liverec_hub::StreamKey;

use crate::machine::{PauseCause, State};

/// A recorder's state as readers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordState {
    /// No recording open (not recorded, or waiting for a `start`).
    Idle,
    Recording,
    /// Interrupted or stopped; the recording's files are generated at `until` unless the
    /// publisher comes back (not after a `stop`) or a `start` resumes it first.
    Paused {
        by_stop: bool,
        until: SystemTime,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecorderStatus {
    pub state: RecordState,
    /// The open recording's number (per stream, from 1), while one is open.
    pub recording: Option<u64>,
}

/// Shared by the recorders and their readers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<HashMap<StreamKey, Posted>>>,
}

#[derive(Clone, Copy, Debug)]
struct Posted {
    /// The recorder task that posted it: a stream's next recorder may start before the last
    /// one has finished leaving, and the leaving one must not take the newcomer's entry away.
    owner: u64,
    status: RecorderStatus,
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A new recorder's name on the board.
pub(crate) fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

impl StatusBoard {
    fn lock(&self) -> MutexGuard<'_, HashMap<StreamKey, Posted>> {
        // The map holds no invariant a panicking holder could break.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn post(&self, key: &StreamKey, owner: u64, status: RecorderStatus) {
        self.lock().insert(key.clone(), Posted { owner, status });
    }

    /// Removes `owner`'s entry for `key`, if the entry is still its own.
    pub(crate) fn remove(&self, key: &StreamKey, owner: u64) {
        let mut board = self.lock();
        if board.get(key).is_some_and(|p| p.owner == owner) {
            board.remove(key);
        }
    }

    /// Every stream with a recorder, and its status.
    pub fn snapshot(&self) -> Vec<(StreamKey, RecorderStatus)> {
        let mut all: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.status))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The board's view of a machine state; `now` and `wall_now` map the machine's deadline to
/// wall-clock time.
pub(crate) fn status_of(
    state: State,
    recording: Option<u64>,
    now: Instant,
    wall_now: SystemTime,
) -> RecorderStatus {
    let state = match state {
        State::Idle => RecordState::Idle,
        State::Recording => RecordState::Recording,
        State::Paused { cause, deadline } => RecordState::Paused {
            by_stop: cause == PauseCause::Stopped,
            until: wall_now + deadline.saturating_duration_since(now),
        },
    };
    RecorderStatus { state, recording }
}

impl RecordState {
    /// Seconds until a paused recording's files are generated.
    pub fn remaining(&self, wall_now: SystemTime) -> Option<Duration> {
        match self {
            RecordState::Paused { until, .. } => {
                Some(until.duration_since(wall_now).unwrap_or_default())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> StreamKey {
        StreamKey {
            domain: "d".into(),
            app: "a".into(),
            stream: s.into(),
        }
    }

    #[test]
    fn a_pause_deadline_becomes_wall_clock_time() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let status = status_of(
            State::Paused {
                cause: PauseCause::Stopped,
                deadline: now + Duration::from_secs(30),
            },
            Some(2),
            now,
            wall,
        );
        assert_eq!(
            status.state,
            RecordState::Paused {
                by_stop: true,
                until: wall + Duration::from_secs(30)
            }
        );
        assert_eq!(
            status.state.remaining(wall + Duration::from_secs(10)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            status.state.remaining(wall + Duration::from_secs(40)),
            Some(Duration::ZERO)
        );
        assert_eq!(RecordState::Recording.remaining(wall), None);
    }

    #[test]
    fn the_board_keeps_the_last_post_per_stream() {
        let board = StatusBoard::default();
        let idle = RecorderStatus {
            state: RecordState::Idle,
            recording: None,
        };
        let recording = RecorderStatus {
            state: RecordState::Recording,
            recording: Some(1),
        };
        let (first, second) = (new_owner(), new_owner());
        board.post(&key("b"), first, idle);
        board.post(&key("a"), first, idle);
        board.post(&key("a"), first, recording);
        assert_eq!(
            board.snapshot(),
            vec![(key("a"), recording), (key("b"), idle)]
        );
        board.remove(&key("a"), first);
        assert_eq!(board.snapshot(), vec![(key("b"), idle)]);
        // A stream's next recorder posted before the last one left: its entry stays.
        board.post(&key("b"), second, recording);
        board.remove(&key("b"), first);
        assert_eq!(board.snapshot(), vec![(key("b"), recording)]);
    }
}
