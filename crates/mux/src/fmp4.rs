//! Fragmented MP4 (ISO/IEC 14496-12): MP4 recording files and CMAF segments.
//!
//! | spec | what is used |
//! |---|---|
//! | ISO/IEC 14496-12 (ISOBMFF) | `ftyp`, `moov`/`mvex`/`mehd`/`trex`, `moof`/`traf`/`tfhd`/`tfdt`/`trun`, `mdat`, `mfra`/`tfra`/`mfro` |
//! | ISO/IEC 14496-15 | `avc1`+`avcC`, `hvc1`+`hvcC` sample entries |
//! | AV1 in ISOBMFF v1.2 | `av01`+`av1C` |
//! | ISO/IEC 14496-14, -1 | `mp4a`+`esds` (AAC) |
//! | ISO/IEC 23000-19 (CMAF) | init segment + fragments with `tfdt`, default-base-is-moof |
//!
//! A recording file is written as it arrives: `ftyp`+`moov` first, then one `moof`+`mdat` per
//! fragment. Finishing appends an `mfra` (random access index with 64-bit `moof` offsets) and
//! returns [`Patch`](crate::Patch)es for a few fixed-size duration fields at the start, so
//! finalizing never copies data and a crash loses at most the unflushed fragment. After a
//! crash, [`recover`] finds the last complete fragment and computes the same `mfra` and
//! patches from the `moof`s.
//!
//! Timing: frames carry milliseconds; video tracks use 90 kHz and audio tracks the sample
//! rate, every tick value converted from the absolute time (no drift). A sample lasts until
//! the next frame of its track, so each flush holds back the last sample of every track (see
//! [`Muxer`]); no edit list is written, so presentation starts at the first frame's PTS, as in
//! the FLV source.
//!
//! Boxes are written by hand (`boxes.rs`) rather than with `mp4-atom`: each writer appends
//! straight into the caller's `BytesMut` with back-patched sizes, which gives exact control of
//! box versions and of the positions to patch, and no per-fragment allocation of box structs.

mod boxes;
mod error;
mod fragment;
mod index;
mod init;
mod muxer;
mod recover;
mod track;

pub use error::{Fmp4Error, RecoverError};
pub use fragment::{Fragment, MAX_FRAGMENT_BYTES, MAX_FRAGMENT_SAMPLES};
pub use init::{MAX_AUDIO_SAMPLE_RATE, MAX_CODEC_RECORD_BYTES};
pub use muxer::{AUDIO_TRACK_ID, Mode, Muxer, VIDEO_TRACK_ID};
pub use recover::{
    MAX_MOOF_BYTES, MAX_MOOV_BYTES, Recovery, SegmentRecovery, recover, recover_segment,
};
pub use track::{MAX_ABS_DTS_MS, MAX_COMPOSITION_OFFSET_MS, MAX_DTS_STEP_MS};
