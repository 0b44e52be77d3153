//! Errors of the codec configuration parsers.

use std::fmt;

/// Which decoder configuration a [`CodecError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `AVCDecoderConfigurationRecord` (avcC).
    Avc,
    /// `HEVCDecoderConfigurationRecord` (hvcC).
    Hevc,
    /// `AV1CodecConfigurationRecord` (av1C).
    Av1,
    /// AAC `AudioSpecificConfig`.
    Aac,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Avc => "avcC",
            RecordKind::Hevc => "hvcC",
            RecordKind::Av1 => "av1C",
            RecordKind::Aac => "AudioSpecificConfig",
        })
    }
}

/// A decoder configuration record that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{record} truncated: {needed} more bytes needed at offset {offset}")]
    Truncated {
        record: RecordKind,
        offset: usize,
        needed: usize,
    },
    #[error("{record} version {version} is not supported")]
    UnsupportedVersion { record: RecordKind, version: u8 },
    #[error("{record}: NAL unit length size {size} is not 1, 2 or 4")]
    InvalidNalLengthSize { record: RecordKind, size: u8 },
    #[error("{record} has no {what}")]
    Missing {
        record: RecordKind,
        what: &'static str,
    },
    #[error("{record}: {count} parameter sets exceed the limit of {limit}")]
    TooManyParameterSets {
        record: RecordKind,
        count: usize,
        limit: usize,
    },
    #[error("AudioSpecificConfig: audio object type {0} is not AAC")]
    UnsupportedObjectType(u8),
    #[error("AudioSpecificConfig: sampling frequency index {0} is reserved")]
    InvalidSampleRateIndex(u8),
    #[error("AudioSpecificConfig: explicit sampling frequency {0} Hz is out of range")]
    InvalidSampleRate(u32),
    #[error("AudioSpecificConfig: channel configuration {0} is reserved")]
    InvalidChannelConfig(u8),
}
