//! Codec configurations: what a decoder needs before the first frame of a track.

pub mod aac;
pub mod av1;
pub mod avc;
mod bits;
mod cursor;
mod error;
pub mod hevc;

use std::sync::Arc;

use bytes::Bytes;

pub use error::{CodecError, RecordKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
}

impl VideoCodec {
    /// The FLV codec id liverec reports for this codec (7 H.264, 12 H.265, 13 AV1).
    pub fn flv_id(self) -> u8 {
        match self {
            VideoCodec::H264 => 7,
            VideoCodec::H265 => 12,
            VideoCodec::Av1 => 13,
        }
    }

    /// The Enhanced RTMP / ISO BMFF FourCC.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            VideoCodec::H264 => *b"avc1",
            VideoCodec::H265 => *b"hvc1",
            VideoCodec::Av1 => *b"av01",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    Aac,
}

/// Decoder configuration of a video track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    pub codec: VideoCodec,
    /// The decoder configuration record as carried in MP4/FLV:
    /// `AVCDecoderConfigurationRecord` (avcC), `HEVCDecoderConfigurationRecord` (hvcC) or
    /// `AV1CodecConfigurationRecord` (av1C).
    pub record: Bytes,
    /// Coded picture size from the SPS / sequence header (0 if it could not be parsed).
    pub width: u32,
    pub height: u32,
    /// Bytes of the length prefix of each NAL unit in a frame (1, 2 or 4); 0 for AV1.
    pub nal_length_size: u8,
    /// The parameter-set NAL units of the record, without length prefixes, in decoding order:
    /// H.264 SPS then PPS; H.265 VPS, SPS, PPS. Empty for AV1. (MPEG-TS repeats them in-band
    /// before every keyframe.)
    pub parameter_sets: Vec<Bytes>,
}

/// Decoder configuration of an audio track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    pub codec: AudioCodec,
    /// The AAC `AudioSpecificConfig`.
    pub specific: Bytes,
    /// AAC audio object type (2 = AAC-LC), from the AudioSpecificConfig.
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecConfig {
    Video(Arc<VideoConfig>),
    Audio(Arc<AudioConfig>),
}

/// The tracks a file is opened with. A file is cut (new file or new init segment) whenever
/// this set changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tracks {
    pub video: Option<Arc<VideoConfig>>,
    pub audio: Option<Arc<AudioConfig>>,
}

impl Tracks {
    pub fn is_empty(&self) -> bool {
        self.video.is_none() && self.audio.is_none()
    }
}
