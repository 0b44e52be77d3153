//! Timestamp normalisation: RTMP's 32-bit millisecond timestamps → a monotonic 64-bit timeline.
//!
//! One [`Normalizer`] per publish session. It unwraps the 32-bit counter, bridges jumps (an
//! encoder restart, a clock reset, a wrap that was not a wrap) with one stream-wide offset so
//! audio and video stay in sync, and keeps each track's DTS monotonic. Pure: no clock reads.

use crate::TrackKind;

/// A forward step larger than this between consecutive messages is a discontinuity, not media
/// time: live encoders send frames every few tens of milliseconds.
pub const MAX_FORWARD_JUMP_MS: i64 = 5_000;
/// A backward step larger than this is a discontinuity; smaller ones are interleaving jitter
/// between the audio and video tracks.
pub const MAX_BACKWARD_JUMP_MS: i64 = 1_000;
/// Step used to bridge a discontinuity when a track has no frame duration to go by yet.
const DEFAULT_BRIDGE_MS: i64 = 20;

#[derive(Clone, Copy, Debug, Default)]
struct TrackState {
    last_dts: Option<i64>,
    last_step: i64,
}

/// Unwraps and bridges one stream's timestamps. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Normalizer {
    /// Raw timestamp and its unwrapped value of the previous message (any track).
    last_raw: Option<(u32, i64)>,
    /// Added to unwrapped timestamps; changes only at a discontinuity.
    offset: i64,
    /// Largest output so far, any track.
    stream_last: i64,
    video: TrackState,
    audio: TrackState,
    discontinuities: u64,
}

impl Normalizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many discontinuities were bridged so far.
    pub fn discontinuities(&self) -> u64 {
        self.discontinuities
    }

    /// Maps a raw RTMP timestamp of `track` to the normalised timeline (milliseconds).
    pub fn normalize(&mut self, track: TrackKind, raw: u32) -> i64 {
        let unwrapped = match self.last_raw {
            None => i64::from(raw),
            // Interpreting the difference as signed 32-bit unwraps the counter and lets small
            // backward steps (interleaving) through.
            Some((last_raw, last_unwrapped)) => {
                last_unwrapped + i64::from(raw.wrapping_sub(last_raw) as i32)
            }
        };
        let first = self.last_raw.is_none();
        self.last_raw = Some((raw, unwrapped));

        let state = match track {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        };
        let mut dts = unwrapped + self.offset;
        if !first {
            let step = dts - self.stream_last;
            if !(-MAX_BACKWARD_JUMP_MS..=MAX_FORWARD_JUMP_MS).contains(&step) {
                // Continue right after the latest frame, one typical frame duration later.
                let bridge = if state.last_step > 0 {
                    state.last_step
                } else {
                    DEFAULT_BRIDGE_MS
                };
                let target = self.stream_last + bridge;
                self.offset += target - dts;
                dts = target;
                self.discontinuities += 1;
            }
        }
        if let Some(prev) = state.last_dts {
            // Strictly increasing per track: containers refuse two samples at one DTS.
            if dts <= prev {
                dts = prev + 1;
            }
            let step = dts - prev;
            if step > 0 && step <= MAX_FORWARD_JUMP_MS {
                state.last_step = step;
            }
        }
        state.last_dts = Some(dts);
        self.stream_last = self.stream_last.max(dts);
        if first {
            self.stream_last = dts;
        }
        dts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(input: &[(TrackKind, u32)]) -> Vec<i64> {
        let mut n = Normalizer::new();
        input.iter().map(|&(t, ts)| n.normalize(t, ts)).collect()
    }

    #[test]
    fn plain_timestamps_pass_through() {
        use TrackKind::*;
        let out = run(&[
            (Video, 0),
            (Audio, 10),
            (Video, 40),
            (Audio, 33),
            (Video, 80),
        ]);
        assert_eq!(out, vec![0, 10, 40, 33, 80]);
    }

    #[test]
    fn wraps_32_bit_counter() {
        let start = u32::MAX - 50;
        let raw: Vec<_> = (0..5u32)
            .map(|i| (TrackKind::Video, start.wrapping_add(i * 40)))
            .collect();
        let out = run(&raw);
        let base = i64::from(start);
        assert_eq!(
            out,
            vec![base, base + 40, base + 80, base + 120, base + 160]
        );
    }

    #[test]
    fn bridges_forward_jump_keeping_frame_step() {
        use TrackKind::*;
        let out = run(&[
            (Video, 0),
            (Video, 40),
            (Video, 80),
            (Video, 1_000_000),
            (Video, 1_000_040),
        ]);
        assert_eq!(out, vec![0, 40, 80, 120, 160]);
    }

    #[test]
    fn bridges_backward_jump_from_encoder_restart() {
        use TrackKind::*;
        let out = run(&[
            (Video, 50_000),
            (Audio, 50_010),
            (Video, 50_040),
            (Video, 0),
            (Audio, 5),
            (Video, 40),
        ]);
        assert_eq!(out, vec![50_000, 50_010, 50_040, 50_080, 50_085, 50_120]);
    }

    #[test]
    fn small_backward_step_is_clamped_per_track() {
        use TrackKind::*;
        let out = run(&[(Audio, 100), (Audio, 90), (Audio, 120)]);
        assert_eq!(out, vec![100, 101, 120]);
    }

    proptest! {
        #[test]
        fn dts_is_monotonic_per_track_and_steps_are_bounded(
            start in any::<u32>(),
            steps in proptest::collection::vec((any::<bool>(), any::<i32>()), 1..300),
        ) {
            let mut n = Normalizer::new();
            let mut raw = start;
            let mut last = [None::<i64>; 2];
            let mut stream_last = None::<i64>;
            for (is_video, step) in steps {
                raw = raw.wrapping_add(step as u32);
                let track = if is_video { TrackKind::Video } else { TrackKind::Audio };
                let dts = n.normalize(track, raw);
                let idx = usize::from(is_video);
                if let Some(prev) = last[idx] {
                    prop_assert!(dts > prev);
                }
                if let Some(s) = stream_last {
                    prop_assert!(dts - s <= MAX_FORWARD_JUMP_MS);
                }
                last[idx] = Some(dts);
                stream_last = Some(stream_last.map_or(dts, |s: i64| s.max(dts)));
            }
        }
    }
}
