//! One track of the muxer: its buffered samples and its timeline.
//!
//! Frame times are milliseconds; a track's timescale is finer (90 kHz video, the sample rate for
//! audio). Every tick value is converted from the absolute millisecond time (relative to the
//! file's origin) and rounded, and a sample's duration is the difference of two converted
//! times, so rounding never accumulates: the track cannot drift from the frame clock.

use bytes::Bytes;
use liverec_media::{Frame, TrackKind};

use super::error::Fmp4Error;

/// Frame timestamps beyond ±2^46 ms (2 230 years) are refused, so tick arithmetic never
/// overflows. Normalised timelines start near 0.
pub const MAX_ABS_DTS_MS: i64 = 1 << 46;
/// Largest DTS step between two frames of a track. The lead bridges gaps; a bigger step is a
/// bug, and it keeps every sample duration within 32 bits at any accepted timescale.
pub const MAX_DTS_STEP_MS: i64 = 3_600_000;
/// Largest |pts - dts| accepted; keeps composition offsets within 32 bits.
pub const MAX_COMPOSITION_OFFSET_MS: i32 = 60_000;
/// Duration given to a track's very last sample when it has no previous sample to copy:
/// one 25 fps video frame, one 1024-sample AAC frame.
const FALLBACK_VIDEO_DURATION_MS: i64 = 40;
const AAC_FRAME_SAMPLES: u32 = 1024;

/// `sample_flags` (§8.8.3.1): a sync sample depends on no other sample.
pub(crate) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// A non-sync sample: depends on others, `sample_is_non_sync_sample` set.
pub(crate) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One buffered access unit. Holds a clone of the frame's `Bytes`: the payload is not copied
/// until it is written into an `mdat`.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) data: Bytes,
    pub(crate) dts_ms: i64,
    pub(crate) cts_ms: i32,
    pub(crate) keyframe: bool,
}

/// A sample as a `trun` entry describes it, in track ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrunEntry {
    pub(crate) dts: u64,
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) composition_offset: i32,
}

/// An `mfra`/`tfra` entry: where a fragment holding a random access point of this track starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Presentation time of the random access sample, track ticks.
    pub(crate) time: u64,
    pub(crate) moof_offset: u64,
    /// 1-based position of this track's `traf` in the `moof`.
    pub(crate) traf_number: u8,
    /// 1-based position of the sample in the `trun`.
    pub(crate) sample_number: u32,
}

/// State of one track.
#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) kind: TrackKind,
    pub(crate) id: u32,
    pub(crate) timescale: u32,
    /// Samples not written yet. The last one is held back by a non-final flush: its duration is
    /// the next frame's DTS minus its own, unknown until that frame arrives.
    pub(crate) samples: Vec<Sample>,
    /// DTS of the last frame pushed (ms, as pushed), to refuse DTS going backwards.
    pub(crate) last_pushed_dts: Option<i64>,
    /// Duration of the last sample written, ticks: the estimate for the final sample.
    pub(crate) last_duration: Option<u32>,
    /// End of the last sample written (decode time + duration), ticks from the origin.
    pub(crate) end: u64,
    /// One entry per fragment that holds a random access point of this track.
    pub(crate) index: Vec<IndexEntry>,
    /// File offsets of the `tkhd` and `mdhd` duration fields.
    pub(crate) duration_fields: Option<(u64, u64)>,
}

impl Track {
    pub(crate) fn new(kind: TrackKind, id: u32, timescale: u32) -> Self {
        Self {
            kind,
            id,
            timescale,
            samples: Vec::new(),
            last_pushed_dts: None,
            last_duration: None,
            end: 0,
            index: Vec::new(),
            duration_fields: None,
        }
    }

    /// Checks a frame's timing against this track, without buffering it.
    pub(crate) fn check(&self, frame: &Frame) -> Result<(), Fmp4Error> {
        let track = self.kind;
        if !(-MAX_ABS_DTS_MS..=MAX_ABS_DTS_MS).contains(&frame.dts) {
            return Err(Fmp4Error::TimestampOutOfRange {
                track,
                dts: frame.dts,
                max: MAX_ABS_DTS_MS,
            });
        }
        if !(-MAX_COMPOSITION_OFFSET_MS..=MAX_COMPOSITION_OFFSET_MS).contains(&frame.cts) {
            return Err(Fmp4Error::CompositionOffsetOutOfRange {
                track,
                cts: frame.cts,
                max: MAX_COMPOSITION_OFFSET_MS,
            });
        }
        if let Some(last) = self.last_pushed_dts {
            // Both within ±MAX_ABS_DTS_MS: no overflow.
            let step = frame.dts - last;
            if step < 0 {
                return Err(Fmp4Error::DtsBackwards {
                    track,
                    last,
                    dts: frame.dts,
                });
            }
            if step > MAX_DTS_STEP_MS {
                return Err(Fmp4Error::DtsJump {
                    track,
                    step,
                    max: MAX_DTS_STEP_MS,
                });
            }
        }
        Ok(())
    }

    /// Buffers a frame already [checked](Self::check).
    pub(crate) fn push(&mut self, frame: &Frame) {
        self.last_pushed_dts = Some(frame.dts);
        self.samples.push(Sample {
            data: frame.data.clone(),
            dts_ms: frame.dts,
            cts_ms: frame.cts,
            keyframe: frame.keyframe || self.kind == TrackKind::Audio,
        });
    }

    /// Milliseconds relative to `origin` → ticks, rounded half up. Times before the origin
    /// (a frame of one track slightly older than the other track's first) clamp to it.
    pub(crate) fn ticks(&self, ms: i64, origin: i64) -> u64 {
        let ticks = ms_to_ticks(ms.saturating_sub(origin).max(0), self.timescale);
        u64::try_from(ticks).unwrap_or(0)
    }

    /// Ticks → milliseconds, rounded half up.
    pub(crate) fn ms(&self, ticks: u64) -> u64 {
        let ms = (u128::from(ticks) * 1000 + u128::from(self.timescale / 2))
            / u128::from(self.timescale.max(1));
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// How many buffered samples a flush writes: all of them when `last` (finishing), else all
    /// but the last, whose duration is not known yet.
    pub(crate) fn writable(&self, last: bool) -> usize {
        if last {
            self.samples.len()
        } else {
            self.samples.len().saturating_sub(1)
        }
    }

    /// The `trun` entry of buffered sample `i`. A sample without a successor (only when
    /// finishing) repeats the previous sample's duration.
    pub(crate) fn entry(&self, i: usize, origin: i64) -> Option<TrunEntry> {
        let sample = self.samples.get(i)?;
        let dts = self.ticks(sample.dts_ms, origin);
        let duration = match self.samples.get(i + 1) {
            Some(next) => clamp_u32(self.ticks(next.dts_ms, origin).saturating_sub(dts)),
            None => self.final_duration(i, origin),
        };
        // Composition from the absolute presentation time, so it rounds like the DTS does.
        let pts_ms = sample.dts_ms.max(origin).saturating_sub(origin) + i64::from(sample.cts_ms);
        let pts = ms_to_ticks(pts_ms, self.timescale);
        let composition_offset =
            i32::try_from(pts - i128::from(dts)).unwrap_or(if sample.cts_ms < 0 {
                i32::MIN
            } else {
                i32::MAX
            });
        Some(TrunEntry {
            dts,
            duration,
            size: u32::try_from(sample.data.len()).unwrap_or(u32::MAX),
            flags: if sample.keyframe {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            },
            composition_offset,
        })
    }

    /// Duration of the last sample of the track, which no later frame delimits.
    fn final_duration(&self, i: usize, origin: i64) -> u32 {
        // The previous buffered sample, else the last written one, else a codec default.
        let previous = i.checked_sub(1).and_then(|p| self.samples.get(p));
        if let (Some(prev), Some(sample)) = (previous, self.samples.get(i)) {
            let dts = self.ticks(sample.dts_ms, origin);
            return clamp_u32(dts.saturating_sub(self.ticks(prev.dts_ms, origin)));
        }
        if let Some(duration) = self.last_duration {
            return duration;
        }
        match self.kind {
            TrackKind::Audio => AAC_FRAME_SAMPLES,
            TrackKind::Video => clamp_u32(
                u64::try_from(ms_to_ticks(FALLBACK_VIDEO_DURATION_MS, self.timescale)).unwrap_or(0),
            ),
        }
    }

    /// Duration of the written part of the track, milliseconds.
    pub(crate) fn duration_ms(&self) -> u64 {
        self.ms(self.end)
    }
}

/// `ms * timescale / 1000`, rounded half up (floor division, so negatives round the same way).
pub(crate) fn ms_to_ticks(ms: i64, timescale: u32) -> i128 {
    (i128::from(ms) * i128::from(timescale) + 500).div_euclid(1000)
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dts: i64, cts: i32, keyframe: bool) -> Frame {
        Frame {
            track: TrackKind::Video,
            dts,
            cts,
            keyframe,
            data: Bytes::from_static(b"abc"),
        }
    }

    #[test]
    fn ticks_round_from_the_absolute_time() {
        let audio = Track::new(TrackKind::Audio, 2, 44_100);
        // 23 ms = 1014.3 ticks, 46 ms = 2028.6 ticks: durations 1014 then 1015, never drifting.
        assert_eq!(audio.ticks(1023, 1000), 1014);
        assert_eq!(audio.ticks(1046, 1000), 2029);
        assert_eq!(audio.ticks(1000 + 3_600_000, 1000), 158_760_000);
        // Before the origin clamps to it.
        assert_eq!(audio.ticks(990, 1000), 0);
        assert_eq!(ms_to_ticks(-1, 44_100), -44);
        assert_eq!(ms_to_ticks(1, 44_100), 44);
    }

    #[test]
    fn entries_use_neighbour_dts_and_signed_composition() {
        let mut video = Track::new(TrackKind::Video, 1, 90_000);
        for f in [
            frame(100, 80, true),
            frame(140, -40, false),
            frame(180, 0, false),
        ] {
            assert_eq!(video.check(&f), Ok(()));
            video.push(&f);
        }
        assert_eq!(video.writable(false), 2);
        assert_eq!(video.writable(true), 3);
        assert_eq!(
            video.entry(0, 100),
            Some(TrunEntry {
                dts: 0,
                duration: 3600,
                size: 3,
                flags: SYNC_SAMPLE_FLAGS,
                composition_offset: 7200,
            })
        );
        assert_eq!(
            video.entry(1, 100).map(|e| e.composition_offset),
            Some(-3600)
        );
        assert_eq!(
            video.entry(1, 100).map(|e| e.flags),
            Some(NON_SYNC_SAMPLE_FLAGS)
        );
        // The final sample repeats its predecessor's duration.
        assert_eq!(video.entry(2, 100).map(|e| e.duration), Some(3600));
        assert_eq!(video.entry(3, 100), None);
    }

    #[test]
    fn lone_final_sample_uses_last_written_or_codec_default() {
        let mut audio = Track::new(TrackKind::Audio, 2, 48_000);
        audio.push(&frame(0, 0, false));
        assert_eq!(
            audio.entry(0, 0).map(|e| (e.duration, e.flags)),
            Some((1024, SYNC_SAMPLE_FLAGS))
        );
        audio.last_duration = Some(999);
        assert_eq!(audio.entry(0, 0).map(|e| e.duration), Some(999));
        let mut video = Track::new(TrackKind::Video, 1, 90_000);
        video.push(&frame(0, 0, true));
        assert_eq!(video.entry(0, 0).map(|e| e.duration), Some(3600));
    }

    #[test]
    fn timing_bug_guards() {
        let mut video = Track::new(TrackKind::Video, 1, 90_000);
        video.push(&frame(1000, 0, true));
        assert!(matches!(
            video.check(&frame(999, 0, false)),
            Err(Fmp4Error::DtsBackwards { .. })
        ));
        assert!(matches!(
            video.check(&frame(1000 + MAX_DTS_STEP_MS + 1, 0, false)),
            Err(Fmp4Error::DtsJump { .. })
        ));
        assert!(matches!(
            video.check(&frame(1000, MAX_COMPOSITION_OFFSET_MS + 1, false)),
            Err(Fmp4Error::CompositionOffsetOutOfRange { .. })
        ));
        assert_eq!(video.check(&frame(1000, 0, false)), Ok(()));
        let fresh = Track::new(TrackKind::Video, 1, 90_000);
        assert!(matches!(
            fresh.check(&frame(i64::MIN, 0, true)),
            Err(Fmp4Error::TimestampOutOfRange { .. })
        ));
    }

    #[test]
    fn ticks_to_ms_rounds() {
        let audio = Track::new(TrackKind::Audio, 2, 44_100);
        assert_eq!(audio.ms(44_100), 1000);
        assert_eq!(audio.ms(1014), 23);
    }
}
