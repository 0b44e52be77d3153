//! Errors of the fragmented-MP4 muxer and of crash recovery.

use liverec_media::TrackKind;

/// Why the fMP4 muxer refused a configuration, a frame or a call.
///
/// Frame errors leave the muxer usable (the frame is not buffered); configuration errors come
/// from [`Muxer::new`](super::Muxer::new).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Fmp4Error {
    #[error("an MP4 file needs at least one track")]
    NoTracks,
    #[error("{track:?} frame pushed but the file was opened without a {track:?} track")]
    NoSuchTrack { track: TrackKind },
    #[error("{track:?} codec record is empty")]
    EmptyCodecRecord { track: TrackKind },
    #[error("{track:?} codec record of {len} bytes exceeds {max} bytes")]
    CodecRecordTooLarge {
        track: TrackKind,
        len: usize,
        max: usize,
    },
    #[error("video size {width}x{height} does not fit a 16-bit sample entry")]
    VideoSizeTooLarge { width: u32, height: u32 },
    #[error("audio sample rate {rate} Hz outside 1..={max}")]
    BadSampleRate { rate: u32, max: u32 },
    #[error("{track:?} dts {dts} ms outside ±{max} ms")]
    TimestampOutOfRange {
        track: TrackKind,
        dts: i64,
        max: i64,
    },
    #[error("{track:?} dts went backwards: {dts} ms after {last} ms")]
    DtsBackwards {
        track: TrackKind,
        last: i64,
        dts: i64,
    },
    #[error("{track:?} dts jumped {step} ms (limit {max} ms)")]
    DtsJump {
        track: TrackKind,
        step: i64,
        max: i64,
    },
    #[error("{track:?} composition offset {cts} ms outside ±{max} ms")]
    CompositionOffsetOutOfRange {
        track: TrackKind,
        cts: i32,
        max: i32,
    },
    #[error("fragment would hold {samples} samples (limit {max}); flush more often")]
    TooManySamples { samples: usize, max: usize },
    #[error("fragment would hold {bytes} bytes (limit {max}); flush more often")]
    FragmentTooLarge { bytes: u64, max: u64 },
    #[error("box {} of {size} bytes does not fit a 32-bit size", String::from_utf8_lossy(.fourcc))]
    BoxTooLarge { fourcc: [u8; 4], size: usize },
    #[error("init() must be called once, before the first fragment")]
    InitOrder,
    #[error("the muxer is finished")]
    Finished,
}

/// Why a crashed recording could not be [recovered](super::recover).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("reading the file failed")]
    Io(#[from] std::io::Error),
    #[error("no complete ftyp + moov at the start: nothing to recover")]
    NoInit,
    #[error("box {} at offset {offset}: {size} bytes exceeds the {max}-byte limit", String::from_utf8_lossy(.fourcc))]
    BoxTooLarge {
        fourcc: [u8; 4],
        offset: u64,
        size: u64,
        max: u64,
    },
    #[error("box {} at offset {offset} is malformed: {what}", String::from_utf8_lossy(.fourcc))]
    Malformed {
        fourcc: [u8; 4],
        offset: u64,
        what: &'static str,
    },
    #[error("fragment at offset {offset} refers to track {track_id}, which moov does not declare")]
    UnknownTrack { offset: u64, track_id: u32 },
    #[error(transparent)]
    Mux(#[from] Fmp4Error),
}
