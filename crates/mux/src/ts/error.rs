//! Errors of the MPEG-TS muxer. Every one is about one frame or the track set, so the
//! caller can drop the frame (or skip the format) and carry on.

use liverec_media::{TrackKind, VideoCodec};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MuxError {
    #[error("MPEG-TS recording does not carry {0:?} video")]
    UnsupportedVideoCodec(VideoCodec),
    #[error("no track to mux: the track set is empty")]
    NoTracks,
    #[error("frame of the {0:?} track, which this muxer was not opened with")]
    TrackNotConfigured(TrackKind),
    #[error("NAL length size {0} is not 1, 2, 3 or 4")]
    NalLengthSize(u8),
    #[error("NAL unit at byte {offset}: {remaining} bytes left, too few for its length prefix")]
    TruncatedNalLength { offset: usize, remaining: usize },
    #[error("NAL unit at byte {offset} claims {len} bytes but only {remaining} are left")]
    NalOverrun {
        offset: usize,
        len: usize,
        remaining: usize,
    },
    #[error("empty {0:?} frame")]
    EmptyFrame(TrackKind),
    #[error("AAC frame of {len} bytes is over the ADTS maximum of {max}")]
    AacFrameTooLarge { len: usize, max: usize },
    #[error("AAC object type {0} cannot be signalled in an ADTS header")]
    AdtsObjectType(u8),
    #[error("sample rate {0} Hz has no ADTS sampling frequency index")]
    AdtsSampleRate(u32),
    #[error("{0} audio channels cannot be signalled in an ADTS header")]
    AdtsChannels(u8),
}
