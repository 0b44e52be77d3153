//! FLV and Enhanced RTMP / FLV (E-RTMP v2) tag bodies → the media model, and an FLV file reader.
//!
//! RTMP audio/video messages carry exactly FLV tag bodies, so the same parsers serve the
//! ingest ([`parse_video_tag`], [`parse_audio_tag`]) and tests reading `.flv` files
//! ([`FileReader`]). Parsing is zero-copy: payloads are slices of the tag body.

mod audio;
mod cursor;
mod error;
mod file;
mod frames;
mod video;

pub use audio::{AudioTag, parse_audio_tag};
pub use error::{CodecId, FlvError};
pub use file::{FileReader, FileTag, TagKind, read_file_tags};
pub use frames::{FileMedia, read_file_frames};
pub use video::{VideoTag, parse_video_tag};

/// FLV tag type of an audio tag.
pub const TAG_TYPE_AUDIO: u8 = 8;
/// FLV tag type of a video tag.
pub const TAG_TYPE_VIDEO: u8 = 9;
/// FLV tag type of a script data (AMF0) tag.
pub const TAG_TYPE_SCRIPT: u8 = 18;
/// Bytes of an FLV tag header (type, size, timestamp, stream id).
pub const TAG_HEADER_LEN: usize = 11;
/// Bytes of the FLV file header (`FLV`, version, flags, data offset).
pub const FILE_HEADER_LEN: usize = 9;

/// Legacy video codec id of H.264 (AVC).
pub const VIDEO_CODEC_AVC: u8 = 7;
/// Legacy video codec id of H.265 used by many encoders before E-RTMP (same layout as AVC).
pub const VIDEO_CODEC_HEVC: u8 = 12;
/// Video frame type of a keyframe.
pub const FRAME_TYPE_KEY: u8 = 1;
/// Video frame type of an inter frame.
pub const FRAME_TYPE_INTER: u8 = 2;
/// Video frame type of a command / video info frame (no picture).
pub const FRAME_TYPE_COMMAND: u8 = 5;
/// `IsExHeader` bit of the first video byte (E-RTMP).
pub const VIDEO_EX_HEADER: u8 = 0x80;

/// AVCPacketType / E-RTMP VideoPacketType values.
pub mod video_packet {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
    pub const MULTITRACK: u8 = 6;
    pub const MOD_EX: u8 = 7;
}

/// Sound format of AAC.
pub const SOUND_FORMAT_AAC: u8 = 10;
/// Sound format of MP3.
pub const SOUND_FORMAT_MP3: u8 = 2;
/// Sound format that announces an E-RTMP `ExAudioTagHeader`.
pub const SOUND_FORMAT_EX_HEADER: u8 = 9;

/// AACPacketType / E-RTMP AudioPacketType values.
pub mod audio_packet {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const MULTICHANNEL_CONFIG: u8 = 4;
    pub const MULTITRACK: u8 = 5;
    pub const MOD_EX: u8 = 7;
}

/// E-RTMP `AvMultitrackType`.
pub mod multitrack {
    pub const ONE_TRACK: u8 = 0;
    pub const MANY_TRACKS: u8 = 1;
    pub const MANY_TRACKS_MANY_CODECS: u8 = 2;
}

/// The track id that liverec records from an E-RTMP multitrack message (the default track).
pub const DEFAULT_TRACK_ID: u8 = 0;

/// A tag that is valid but carries nothing liverec records. Callers may count these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// A video command / info frame (frame type 5).
    Command,
    /// An E-RTMP metadata packet (e.g. HDR `colorInfo`).
    Metadata,
    /// An E-RTMP MPEG2TSSequenceStart (AV1 descriptor); the av1C sequence start is used.
    Mpeg2TsSequenceStart,
    /// An E-RTMP multichannel configuration packet (the AudioSpecificConfig already says it).
    MultichannelConfig,
    /// A multitrack message without the default track ([`DEFAULT_TRACK_ID`]).
    OtherTrack,
    /// A coded-frames packet with no payload.
    EmptyFrame,
}
