//! One access unit of one track.

use bytes::Bytes;

/// Which track of a stream a frame belongs to. liverec records at most one video and one
/// audio track per stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

/// One access unit (a video picture or an audio frame).
///
/// Timestamps are milliseconds on the stream's own timeline after normalisation (unwrapped,
/// monotonic per track, gaps bridged), so `dts` never goes backwards within a track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub track: TrackKind,
    /// Decode timestamp, milliseconds.
    pub dts: i64,
    /// Composition offset (`pts - dts`), milliseconds; non-zero with B-frames.
    pub cts: i32,
    /// A random access point: an IDR/IRAP picture, an AV1 key frame; every audio frame is one.
    pub keyframe: bool,
    /// The codec payload exactly as an MP4 sample holds it:
    /// - H.264 / H.265: NAL units, each prefixed by its length in `nal_length_size` bytes
    ///   (from the decoder configuration record);
    /// - AV1: low-overhead OBUs (no temporal delimiters required);
    /// - AAC: one raw AAC frame (no ADTS header).
    pub data: Bytes,
}

/// What one frame costs in memory besides its payload: the `Frame` itself, the payload's
/// shared header, and a queue or cache slot. Budgets count it, so a keyframe followed by
/// millions of 1-byte frames fills them as surely as large frames do.
pub const FRAME_OVERHEAD_BYTES: usize = 128;

impl Frame {
    /// The bytes a queue or cache holding this frame is charged: payload plus
    /// [`FRAME_OVERHEAD_BYTES`].
    pub fn memory_cost(&self) -> usize {
        self.data.len().saturating_add(FRAME_OVERHEAD_BYTES)
    }

    /// Presentation timestamp in milliseconds. Saturates rather than overflowing: the fields
    /// are public, and a muxer handed a frame at the end of the i64 range (the TS muxer takes
    /// any time, modulo 2^33) must not panic.
    pub fn pts(&self) -> i64 {
        self.dts.saturating_add(i64::from(self.cts))
    }

    pub fn is_video(&self) -> bool {
        self.track == TrackKind::Video
    }
}
