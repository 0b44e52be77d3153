//! Helpers shared by liverec's fuzz targets (docs/FUZZING.md): a reader of fuzz input that
//! never fails, and the frame scripts that the muxer targets decode from their input.

use std::sync::Arc;

use bytes::Bytes;
use liverec_media::timestamp::Normalizer;
use liverec_media::{AudioConfig, Frame, TrackKind, Tracks, VideoConfig};

/// Reads fuzz input front to back. Past the end, numbers read as zero and slices come back
/// short, so a target never needs a special case for a short input.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Bytes read so far (never more than the input's length).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// At most `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = end;
        self.data.get(start..end).unwrap_or_default()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn i16(&mut self) -> i16 {
        self.u16() as i16
    }

    /// A signed 24-bit number (the FLV composition time field).
    pub fn i24(&mut self) -> i32 {
        let raw = i32::from_be_bytes([0, self.u8(), self.u8(), self.u8()]);
        (raw << 8) >> 8
    }
}

/// Real decoder configuration records (from the test assets made by
/// scripts/make-test-assets.sh): fuzzed frame sequences start from a valid config most of the
/// time, so they reach the muxers' frame paths instead of stopping at the config check.
pub mod records {
    pub const H264_AVCC: &[u8] = include_bytes!("../records/h264.avcc");
    pub const H265_HVCC: &[u8] = include_bytes!("../records/h265.hvcc");
    pub const AV1_AV1C: &[u8] = include_bytes!("../records/av1.av1c");
    pub const AAC_ASC: &[u8] = include_bytes!("../records/aac.asc");
}

/// One step of a frame script.
#[derive(Clone, Debug)]
pub enum Step {
    Frame(Frame),
    /// End the current fragment (fMP4); the other muxers ignore it.
    Flush,
    /// Start a new segment (TS, CMAF), after ending the fragment.
    Cut,
}

/// A stream as a muxer sees it: the tracks it is opened with, then frames and cut points.
#[derive(Clone, Debug)]
pub struct Script {
    pub tracks: Tracks,
    /// Target-specific switches (the third header byte); bit 0 is [`FLAG_RAW_TIMING`].
    pub flags: u8,
    pub steps: Vec<Step>,
}

/// Frame times are the raw running sum of the deltas (may go backwards, jump or overflow the
/// muxers' ranges) instead of RTMP timestamps through the ingest's [`Normalizer`].
pub const FLAG_RAW_TIMING: u8 = 0x01;

/// Step kinds, in the low two bits of a step's first byte.
pub const STEP_VIDEO: u8 = 0;
pub const STEP_AUDIO: u8 = 1;
pub const STEP_FLUSH: u8 = 2;
pub const STEP_CUT: u8 = 3;
/// Keyframe bit of a frame step's first byte.
pub const STEP_KEYFRAME: u8 = 0x04;
/// The frame's time is absolute rather than a step: the RTMP timestamp `delta` (to 32 bits),
/// or with [`FLAG_RAW_TIMING`] `delta` from the nearer end of the i64 range, so the extremes
/// are one step away.
pub const STEP_ABSOLUTE: u8 = 0x08;

/// Decodes a frame script. The format (big-endian), chosen so that seeds are easy to write
/// from real recordings and every byte string decodes to something:
///
/// ```text
/// video: u8   0 none, 1 H.264, 2 H.265, 3 AV1 (the records above),
///             4 avcC, 5 hvcC, 6 av1C from the input (u16 length, bytes), 7 none
/// audio: u8   0 none, 1 AAC (the record above), 2 AudioSpecificConfig from the input
///             (u8 length, bytes), 3 none
/// flags: u8   FLAG_RAW_TIMING | target bits
/// then steps until the input ends:
///   op: u8    bits 0-1 STEP_*, bit 2 keyframe, bit 3 absolute time, bits 4-7 shift
///   frames only: delta i16 (milliseconds, shifted left by 3 × `shift` bits, so a few steps
///             reach any 64-bit time), cts i24, length u16, data
/// ```
///
/// A config the media crate refuses leaves that track out (so a script may have no track).
pub fn parse_script(data: &[u8]) -> Script {
    let whole = Bytes::copy_from_slice(data);
    let mut input = Input::new(data);
    let mut tracks = Tracks::default();
    let video = match input.u8() % 8 {
        1 => VideoConfig::from_avc_record(Bytes::from_static(records::H264_AVCC)).ok(),
        2 => VideoConfig::from_hevc_record(Bytes::from_static(records::H265_HVCC)).ok(),
        3 => VideoConfig::from_av1_record(Bytes::from_static(records::AV1_AV1C)).ok(),
        kind @ 4..=6 => {
            let len = usize::from(input.u16());
            let record = Bytes::copy_from_slice(input.take(len));
            match kind {
                4 => VideoConfig::from_avc_record(record).ok(),
                5 => VideoConfig::from_hevc_record(record).ok(),
                _ => VideoConfig::from_av1_record(record).ok(),
            }
        }
        _ => None,
    };
    tracks.video = video.map(Arc::new);
    let audio = match input.u8() % 4 {
        1 => AudioConfig::from_aac_specific_config(Bytes::from_static(records::AAC_ASC)).ok(),
        2 => {
            let len = usize::from(input.u8());
            AudioConfig::from_aac_specific_config(Bytes::copy_from_slice(input.take(len))).ok()
        }
        _ => None,
    };
    tracks.audio = audio.map(Arc::new);
    let flags = input.u8();

    let mut normalizer = Normalizer::new();
    let (mut raw_rtmp, mut raw_dts) = (0u32, 0i64);
    let mut steps = Vec::new();
    while !input.is_empty() {
        let op = input.u8();
        let track = match op & 0x03 {
            STEP_VIDEO => TrackKind::Video,
            STEP_AUDIO => TrackKind::Audio,
            STEP_FLUSH => {
                steps.push(Step::Flush);
                continue;
            }
            _ => {
                steps.push(Step::Cut);
                continue;
            }
        };
        let delta = i64::from(input.i16()) << (3 * (op >> 4));
        let cts = input.i24();
        let len = usize::from(input.u16());
        let start = input.position();
        let end = start + input.take(len).len();
        let absolute = op & STEP_ABSOLUTE != 0;
        let dts = if flags & FLAG_RAW_TIMING != 0 {
            raw_dts = match (absolute, delta >= 0) {
                (false, _) => raw_dts.saturating_add(delta),
                (true, true) => i64::MAX - delta,
                (true, false) => i64::MIN.saturating_sub(delta + 1),
            };
            raw_dts
        } else {
            // RTMP timestamps are 32-bit and wrap; the casts keep the low bits on purpose.
            raw_rtmp = if absolute {
                delta as u32
            } else {
                raw_rtmp.wrapping_add(delta as u32)
            };
            normalizer.normalize(track, raw_rtmp)
        };
        steps.push(Step::Frame(Frame {
            track,
            dts,
            cts: if track == TrackKind::Video { cts } else { 0 },
            keyframe: op & STEP_KEYFRAME != 0,
            data: whole.slice(start..end),
        }));
    }
    Script {
        tracks,
        flags,
        steps,
    }
}

/// Writes `patches` into `file` (what the recorder does at finalize); false if one lies
/// outside the file.
pub fn apply_patches(file: &mut [u8], patches: &[liverec_mux::Patch]) -> bool {
    for patch in patches {
        let Ok(start) = usize::try_from(patch.offset) else {
            return false;
        };
        let Some(dst) = file.get_mut(start..start.saturating_add(patch.bytes.len())) else {
            return false;
        };
        dst.copy_from_slice(&patch.bytes);
    }
    true
}
