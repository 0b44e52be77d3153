//! The GOP cache: every frame since the latest keyframe, so a recording started mid-stream
//! begins with a decodable picture from before the command (pre-roll).

use std::collections::VecDeque;
use std::time::Instant;

use liverec_media::{Frame, TrackKind};

/// Default cap of one stream's cache, in payload plus per-frame overhead
/// ([`liverec_media::Frame::memory_cost`]; DESIGN.md: 16 MiB).
pub const DEFAULT_GOP_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A cached frame: its hub sequence number, the frame, and when it arrived (a recording's
/// start time is the arrival of its first frame, which pre-roll takes from here).
pub type CachedFrame = (u64, Frame, Instant);

/// Frames from the latest keyframe on, with their hub sequence numbers.
#[derive(Debug)]
pub struct GopCache {
    frames: VecDeque<CachedFrame>,
    bytes: usize,
    cap_bytes: usize,
    /// The current GOP outgrew the cap: nothing is cached until the next keyframe.
    overflowed: bool,
    overflows: u64,
}

impl GopCache {
    pub fn new(cap_bytes: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            cap_bytes,
            overflowed: false,
            overflows: 0,
        }
    }

    /// Adds a frame. `has_video` says whether the stream has a video track: then only a video
    /// keyframe starts a GOP; an audio-only stream's GOP is its latest frame.
    pub fn push(&mut self, seq: u64, frame: &Frame, has_video: bool, arrived: Instant) {
        let starts_gop = frame.keyframe && (frame.track == TrackKind::Video || !has_video);
        if starts_gop {
            self.clear();
            self.overflowed = false;
        } else if self.frames.is_empty() || self.overflowed {
            // Nothing decodable to append to.
            return;
        }
        let size = frame.memory_cost();
        if self.bytes + size > self.cap_bytes {
            self.clear();
            self.overflowed = true;
            self.overflows += 1;
            return;
        }
        self.bytes += size;
        self.frames.push_back((seq, frame.clone(), arrived));
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    pub fn iter(&self) -> impl Iterator<Item = &CachedFrame> {
        self.frames.iter()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many GOPs lost their pre-roll because they outgrew the cap.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(track: TrackKind, dts: i64, keyframe: bool, size: usize) -> Frame {
        Frame {
            track,
            dts,
            cts: 0,
            keyframe,
            data: Bytes::from(vec![0u8; size]),
        }
    }

    /// Pushes `frame` as arrived now.
    fn add(c: &mut GopCache, seq: u64, frame: &Frame, has_video: bool) {
        c.push(seq, frame, has_video, Instant::now());
    }

    #[test]
    fn keeps_frames_from_latest_keyframe() {
        let mut c = GopCache::new(1000);
        add(&mut c, 1, &frame(TrackKind::Audio, 0, true, 10), true);
        assert!(
            c.is_empty(),
            "audio before the first video keyframe is not decodable pre-roll"
        );
        add(&mut c, 2, &frame(TrackKind::Video, 0, true, 10), true);
        add(&mut c, 3, &frame(TrackKind::Video, 40, false, 10), true);
        add(&mut c, 4, &frame(TrackKind::Audio, 41, true, 10), true);
        add(&mut c, 5, &frame(TrackKind::Video, 80, true, 10), true);
        add(&mut c, 6, &frame(TrackKind::Audio, 82, true, 10), true);
        let seqs: Vec<u64> = c.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(seqs, vec![5, 6]);
        assert_eq!(c.bytes(), 20 + 2 * liverec_media::FRAME_OVERHEAD_BYTES);
    }

    #[test]
    fn audio_only_stream_keeps_last_frame() {
        let mut c = GopCache::new(1000);
        add(&mut c, 1, &frame(TrackKind::Audio, 0, true, 10), false);
        add(&mut c, 2, &frame(TrackKind::Audio, 23, true, 10), false);
        assert_eq!(c.iter().map(|(s, _, _)| *s).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn tiny_frames_are_charged_their_overhead() {
        // A keyframe then many 1-byte frames: the cap counts frames, not only payload.
        let cap = 100 * liverec_media::FRAME_OVERHEAD_BYTES;
        let mut c = GopCache::new(cap);
        add(&mut c, 0, &frame(TrackKind::Video, 0, true, 1), true);
        for seq in 1..200 {
            add(
                &mut c,
                seq,
                &frame(TrackKind::Video, seq as i64, false, 1),
                true,
            );
        }
        assert!(c.is_empty(), "the GOP outgrew the cap: dropped");
        assert_eq!(c.overflows(), 1);
    }

    #[test]
    fn oversized_gop_is_dropped_until_next_keyframe() {
        let o = liverec_media::FRAME_OVERHEAD_BYTES;
        let mut c = GopCache::new(25 + 2 * o);
        add(&mut c, 1, &frame(TrackKind::Video, 0, true, 10), true);
        add(&mut c, 2, &frame(TrackKind::Video, 40, false, 10), true);
        add(&mut c, 3, &frame(TrackKind::Video, 80, false, 10), true);
        assert!(c.is_empty());
        assert_eq!(c.overflows(), 1);
        add(&mut c, 4, &frame(TrackKind::Video, 120, false, 1), true);
        assert!(c.is_empty());
        add(&mut c, 5, &frame(TrackKind::Video, 160, true, 10), true);
        assert_eq!(c.len(), 1);
    }
}
