//! Errors of FLV tag and file parsing.

use std::fmt;

use crate::TrackKind;
use crate::codec::CodecError;

/// How a tag names its codec: a legacy FLV codec id / sound format, or an E-RTMP FourCC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecId {
    /// Legacy `CodecID` (video) or `SoundFormat` (audio).
    Flv(u8),
    FourCc([u8; 4]),
}

impl fmt::Display for CodecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecId::Flv(id) => write!(f, "FLV codec id {id}"),
            CodecId::FourCc(cc) => write!(f, "FourCC '{}'", cc.escape_ascii()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The track's codec is not one liverec records; the other track can still be recorded.
    #[error("unsupported {track:?} codec: {codec}")]
    UnsupportedCodec { track: TrackKind, codec: CodecId },
    #[error("{track:?} tag truncated: {needed} bytes needed at offset {offset}")]
    Truncated {
        track: TrackKind,
        offset: usize,
        needed: usize,
    },
    #[error("unknown {track:?} packet type {packet_type}")]
    UnknownPacketType { track: TrackKind, packet_type: u8 },
    #[error("invalid {track:?} multitrack type {multitrack_type}")]
    InvalidMultitrack {
        track: TrackKind,
        multitrack_type: u8,
    },
    #[error("invalid {track:?} sequence header")]
    InvalidSequenceHeader {
        track: TrackKind,
        #[source]
        source: CodecError,
    },
    #[error("not an FLV file (bad signature or header)")]
    NotFlv,
    #[error("FLV file truncated in the tag at offset {offset}")]
    TruncatedFile { offset: u64 },
}

impl FlvError {
    /// Whether the error only means "this codec is not recorded" (log once, keep the stream).
    pub fn is_unsupported_codec(&self) -> bool {
        matches!(self, FlvError::UnsupportedCodec { .. })
    }
}
