//! Errors of the FLV muxer. Each is about one frame (the caller may drop it and go on) or a
//! misuse of the muxer.

use liverec_media::TrackKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("frame pushed before the FLV header was written")]
    HeaderNotWritten,
    #[error("frame pushed after the file was finished")]
    Finished,
    #[error("frame of the {0:?} track, which this file was not opened with")]
    TrackNotConfigured(TrackKind),
    #[error("empty {0:?} frame")]
    EmptyFrame(TrackKind),
    #[error("{track:?} frame of {len} bytes exceeds the FLV tag limit of {max} bytes")]
    FrameTooLarge {
        track: TrackKind,
        len: usize,
        max: usize,
    },
    #[error("composition offset {0} ms does not fit the 24-bit FLV field")]
    CtsOutOfRange(i32),
    #[error("more than {max} extra onMetaData values")]
    TooMuchMetadata { max: usize },
    #[error("timestamp {relative_ms} ms from the start of the file does not fit 32 bits")]
    TimestampOutOfRange { relative_ms: i64 },
}
