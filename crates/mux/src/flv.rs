//! FLV muxer: H.264 + AAC as legacy FLV (codec ids 7 / 10); H.265 and AV1 as Enhanced FLV
//! (E-RTMP v2 `ExVideoTagHeader`, FourCC `hvc1` / `av01`), which ffmpeg ≥ 6.1 reads.
//!
//! The file starts with an `onMetaData` script tag whose `duration` and `filesize` are
//! placeholders; [`Muxer::finish`] returns the [`Patch`]es that fill them in, so a recording is
//! finalized without rewriting it. Pure: frames in, bytes out; no I/O and no clock.

mod amf0;
mod error;
pub mod live;
mod tag;

use bytes::{BufMut, BytesMut};
use liverec_media::flv::{
    FRAME_TYPE_INTER, FRAME_TYPE_KEY, SOUND_FORMAT_AAC, TAG_TYPE_AUDIO, TAG_TYPE_SCRIPT,
    TAG_TYPE_VIDEO, VIDEO_CODEC_AVC, VIDEO_EX_HEADER, audio_packet, video_packet,
};
use liverec_media::{AudioConfig, Frame, TrackKind, Tracks, VideoCodec, VideoConfig};

use crate::Patch;

pub use error::MuxError;
pub use tag::MAX_BODY_LEN;

/// `FLV`, version 1.
const SIGNATURE: [u8; 4] = *b"FLV\x01";
/// Header flag: the file has audio tags.
const FLAG_AUDIO: u8 = 0x04;
/// Header flag: the file has video tags.
const FLAG_VIDEO: u8 = 0x01;
/// Bytes of the file header (also its `DataOffset` value).
const FILE_HEADER_LEN: u32 = 9;
/// First byte of every AAC audio tag: SoundFormat 10, 44 kHz, 16-bit, stereo (the FLV spec
/// fixes these flags for AAC; the AudioSpecificConfig is authoritative).
const AAC_SOUND_BYTE: u8 = (SOUND_FORMAT_AAC << 4) | 0x0f;
/// FLV `audiocodecid` of AAC.
const AUDIO_CODEC_ID_AAC: f64 = 10.0;
/// The `encoder` value written to `onMetaData`.
const ENCODER: &str = "liverec";
/// Bytes of an AVC video tag header: frame/codec byte, AVCPacketType, SI24 composition time.
const AVC_HEADER_LEN: usize = 5;
/// Bytes of an ExVideoTagHeader: header byte + FourCC.
const EX_HEADER_LEN: usize = 5;
/// Most extra `onMetaData` values a file takes (keeps the script tag far below the tag limit).
pub const MAX_EXTRA_METADATA: usize = 32;
/// The range of the 24-bit composition time offset.
const CTS_MIN: i32 = -(1 << 23);
const CTS_MAX: i32 = (1 << 23) - 1;

/// An extra `onMetaData` value (e.g. the recorder's recording id, for recovery).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    Number(f64),
    String(String),
    Bool(bool),
}

/// Writes one FLV file. Call [`Muxer::header`] once, then [`Muxer::push`] per frame, then
/// [`Muxer::finish`]; the bytes of all calls, concatenated, are the file.
#[derive(Debug)]
pub struct Muxer {
    tracks: Tracks,
    extra: Vec<(String, MetaValue)>,
    header_written: bool,
    finished: bool,
    bytes_written: u64,
    /// File offsets of the `duration` and `filesize` numbers in `onMetaData`.
    duration_offset: Option<u64>,
    filesize_offset: Option<u64>,
    /// DTS of the first frame of the file: timestamps are written relative to it.
    first_dts: Option<i64>,
    video: TrackTime,
    audio: TrackTime,
}

/// Per-track timing for the duration: the furthest presentation end seen.
#[derive(Clone, Copy, Debug, Default)]
struct TrackTime {
    last_dts: Option<i64>,
    /// DTS step between the last two frames: the assumed duration of the last frame.
    last_step: i64,
    /// Largest pts seen, relative to the start of the file.
    max_pts: i64,
}

impl TrackTime {
    fn record(&mut self, dts: i64, pts: i64) {
        if let Some(prev) = self.last_dts {
            self.last_step = dts.saturating_sub(prev).max(0);
        }
        self.last_dts = Some(dts);
        self.max_pts = self.max_pts.max(pts);
    }

    fn end(&self) -> i64 {
        match self.last_dts {
            Some(_) => self.max_pts.saturating_add(self.last_step),
            None => 0,
        }
    }
}

impl Muxer {
    pub fn new(tracks: &Tracks) -> Muxer {
        Muxer {
            tracks: tracks.clone(),
            extra: Vec::new(),
            header_written: false,
            finished: false,
            bytes_written: 0,
            duration_offset: None,
            filesize_offset: None,
            first_dts: None,
            video: TrackTime::default(),
            audio: TrackTime::default(),
        }
    }

    /// Adds a value to `onMetaData` (written after the standard ones); only effective before
    /// [`Muxer::header`]. Names and string values are cut to 64 KiB.
    pub fn add_metadata(
        &mut self,
        name: impl Into<String>,
        value: MetaValue,
    ) -> Result<(), MuxError> {
        if self.extra.len() >= MAX_EXTRA_METADATA {
            return Err(MuxError::TooMuchMetadata {
                max: MAX_EXTRA_METADATA,
            });
        }
        let value = match value {
            MetaValue::String(mut s) => {
                truncate_utf8(&mut s, amf0::MAX_SHORT_STRING);
                MetaValue::String(s)
            }
            other => other,
        };
        let mut name = name.into();
        truncate_utf8(&mut name, amf0::MAX_SHORT_STRING);
        self.extra.push((name, value));
        Ok(())
    }

    /// Writes the file header, `onMetaData` and the sequence-header tag of each track.
    /// Only the first call writes anything.
    pub fn header(&mut self, out: &mut BytesMut) {
        if self.header_written {
            return;
        }
        let start = out.len();
        let flags = if self.tracks.audio.is_some() {
            FLAG_AUDIO
        } else {
            0
        } | if self.tracks.video.is_some() {
            FLAG_VIDEO
        } else {
            0
        };
        out.put_slice(&SIGNATURE);
        out.put_u8(flags);
        out.put_u32(FILE_HEADER_LEN);
        out.put_u32(0); // PreviousTagSize0

        let script_at = out.len();
        let (duration_at, filesize_at) = self.write_metadata(out);
        let base = self.bytes_written + u64::try_from(script_at - start).unwrap_or(0);
        self.duration_offset = Some(base + u64::try_from(duration_at).unwrap_or(0));
        self.filesize_offset = Some(base + u64::try_from(filesize_at).unwrap_or(0));

        if let Some(video) = self.tracks.video.clone() {
            write_video_config(out, &video);
        }
        if let Some(audio) = self.tracks.audio.clone() {
            write_audio_config(out, &audio);
        }
        self.header_written = true;
        self.bytes_written += u64::try_from(out.len() - start).unwrap_or(0);
    }

    /// Writes the `onMetaData` script tag; returns the offsets of the duration and filesize
    /// values relative to the start of the tag.
    fn write_metadata(&self, out: &mut BytesMut) -> (usize, usize) {
        let mut body = BytesMut::with_capacity(256);
        amf0::string(&mut body, "onMetaData");
        let video = self.tracks.video.as_deref();
        let audio = self.tracks.audio.as_deref();
        let count = 3
            + if video.is_some() { 3 } else { 0 }
            + if audio.is_some() { 3 } else { 0 }
            + self.extra.len();
        amf0::ecma_array_start(&mut body, u32::try_from(count).unwrap_or(u32::MAX));
        amf0::key(&mut body, "duration");
        let duration_at = amf0::number(&mut body, 0.0);
        amf0::key(&mut body, "filesize");
        let filesize_at = amf0::number(&mut body, 0.0);
        if let Some(v) = video {
            amf0::key(&mut body, "width");
            amf0::number(&mut body, f64::from(v.width));
            amf0::key(&mut body, "height");
            amf0::number(&mut body, f64::from(v.height));
            amf0::key(&mut body, "videocodecid");
            amf0::number(&mut body, video_codec_id(v.codec));
        }
        if let Some(a) = audio {
            amf0::key(&mut body, "audiocodecid");
            amf0::number(&mut body, AUDIO_CODEC_ID_AAC);
            amf0::key(&mut body, "audiosamplerate");
            amf0::number(&mut body, f64::from(a.sample_rate));
            amf0::key(&mut body, "stereo");
            amf0::boolean(&mut body, a.channels >= 2);
        }
        amf0::key(&mut body, "encoder");
        amf0::string(&mut body, ENCODER);
        for (name, value) in &self.extra {
            amf0::key(&mut body, name);
            match value {
                MetaValue::Number(n) => {
                    amf0::number(&mut body, *n);
                }
                MetaValue::String(s) => amf0::string(&mut body, s),
                MetaValue::Bool(b) => amf0::boolean(&mut body, *b),
            }
        }
        amf0::object_end(&mut body);
        // At most MAX_EXTRA_METADATA extras of at most 128 KiB each: far below MAX_BODY_LEN.
        tag::header(out, TAG_TYPE_SCRIPT, body.len(), 0);
        out.put_slice(&body);
        tag::trailer(out, body.len());
        (tag::HEADER_LEN + duration_at, tag::HEADER_LEN + filesize_at)
    }

    /// Writes one frame as one tag.
    pub fn push(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        if !self.header_written {
            return Err(MuxError::HeaderNotWritten);
        }
        if self.finished {
            return Err(MuxError::Finished);
        }
        if frame.data.is_empty() {
            return Err(MuxError::EmptyFrame(frame.track));
        }
        let first = *self.first_dts.get_or_insert(frame.dts);
        // A frame of the other track slightly older than the first one is pinned to 0.
        let relative = frame.dts.saturating_sub(first).max(0);
        let timestamp = u32::try_from(relative).map_err(|_| MuxError::TimestampOutOfRange {
            relative_ms: relative,
        })?;
        let start = out.len();
        match frame.track {
            TrackKind::Video => {
                let config = self
                    .tracks
                    .video
                    .as_deref()
                    .ok_or(MuxError::TrackNotConfigured(TrackKind::Video))?;
                write_video_frame(out, config, frame, timestamp)?;
                let pts = relative.saturating_add(i64::from(frame.cts));
                self.video.record(relative, pts);
            }
            TrackKind::Audio => {
                if self.tracks.audio.is_none() {
                    return Err(MuxError::TrackNotConfigured(TrackKind::Audio));
                }
                let head = audio_frame_head();
                check_body_len(TrackKind::Audio, head.len() + frame.data.len())?;
                write_tag(out, TAG_TYPE_AUDIO, timestamp, &head, &frame.data);
                self.audio.record(relative, relative);
            }
        }
        self.bytes_written += u64::try_from(out.len() - start).unwrap_or(0);
        Ok(())
    }

    /// Writes the video end-of-sequence tag (if the file has video) and returns the patches
    /// for `onMetaData`'s duration (seconds) and filesize (bytes). Nothing is patched if the
    /// header was never written; a second call writes nothing and returns the same patches.
    pub fn finish(&mut self, out: &mut BytesMut) -> Vec<Patch> {
        if !self.header_written {
            return Vec::new();
        }
        let start = out.len();
        let first_finish = !std::mem::replace(&mut self.finished, true);
        if let (true, Some(video)) = (first_finish, self.tracks.video.clone()) {
            let timestamp = u32::try_from(self.video.last_dts.unwrap_or(0)).unwrap_or(u32::MAX);
            write_end_of_sequence(out, &video, timestamp);
        }
        self.bytes_written += u64::try_from(out.len() - start).unwrap_or(0);
        let mut patches = Vec::with_capacity(2);
        let seconds = self.duration_ms() as f64 / 1000.0;
        if let Some(offset) = self.duration_offset {
            patches.push(Patch {
                offset,
                bytes: bytes::Bytes::copy_from_slice(&seconds.to_be_bytes()),
            });
        }
        if let Some(offset) = self.filesize_offset {
            let size = self.bytes_written as f64;
            patches.push(Patch {
                offset,
                bytes: bytes::Bytes::copy_from_slice(&size.to_be_bytes()),
            });
        }
        patches
    }

    /// Bytes of the file written so far (all calls' output).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Duration of the file so far, in milliseconds: the latest presentation end of any track
    /// (the last frame is assumed to last as long as the step before it).
    pub fn duration_ms(&self) -> u64 {
        u64::try_from(self.video.end().max(self.audio.end())).unwrap_or(0)
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

/// `videocodecid` in `onMetaData`: the FLV id for H.264; for Enhanced FLV codecs the FourCC as
/// a number, as E-RTMP v1 specifies (and ffmpeg writes).
fn video_codec_id(codec: VideoCodec) -> f64 {
    match codec {
        VideoCodec::H264 => f64::from(VIDEO_CODEC_AVC),
        VideoCodec::H265 | VideoCodec::Av1 => f64::from(u32::from_be_bytes(codec.fourcc())),
    }
}

fn check_body_len(track: TrackKind, len: usize) -> Result<(), MuxError> {
    if len > MAX_BODY_LEN {
        return Err(MuxError::FrameTooLarge {
            track,
            len,
            max: MAX_BODY_LEN,
        });
    }
    Ok(())
}

/// The bytes of a tag body before its payload (codec, packet type, composition time): at most
/// 8, so a tag is a small head plus a payload shared by reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagHead {
    bytes: [u8; 8],
    len: u8,
}

impl TagHead {
    fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    fn si24(&mut self, value: i32) {
        self.extend(&value.to_be_bytes()[1..]);
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The head of a video sequence-header tag (its payload is the decoder configuration record).
pub(crate) fn video_config_head(config: &VideoConfig) -> TagHead {
    let mut head = TagHead::new();
    match config.codec {
        VideoCodec::H264 => head.extend(&[
            (FRAME_TYPE_KEY << 4) | VIDEO_CODEC_AVC,
            video_packet::SEQUENCE_START,
            0,
            0,
            0,
        ]),
        VideoCodec::H265 | VideoCodec::Av1 => {
            head.push(VIDEO_EX_HEADER | (FRAME_TYPE_KEY << 4) | video_packet::SEQUENCE_START);
            head.extend(&config.codec.fourcc());
        }
    }
    head
}

/// The head of the AAC sequence-header tag (its payload is the AudioSpecificConfig).
pub(crate) fn audio_config_head() -> TagHead {
    let mut head = TagHead::new();
    head.extend(&[AAC_SOUND_BYTE, audio_packet::SEQUENCE_START]);
    head
}

/// The head of an AAC frame's tag.
pub(crate) fn audio_frame_head() -> TagHead {
    let mut head = TagHead::new();
    head.extend(&[AAC_SOUND_BYTE, audio_packet::CODED_FRAMES]);
    head
}

/// The head of a video frame's tag; fails if its composition time does not fit.
pub(crate) fn video_frame_head(config: &VideoConfig, frame: &Frame) -> Result<TagHead, MuxError> {
    let frame_type = if frame.keyframe {
        FRAME_TYPE_KEY
    } else {
        FRAME_TYPE_INTER
    };
    if !(CTS_MIN..=CTS_MAX).contains(&frame.cts) {
        return Err(MuxError::CtsOutOfRange(frame.cts));
    }
    let mut head = TagHead::new();
    match config.codec {
        VideoCodec::H264 => {
            head.push((frame_type << 4) | VIDEO_CODEC_AVC);
            head.push(video_packet::CODED_FRAMES);
            head.si24(frame.cts);
        }
        VideoCodec::H265 => {
            // CodedFramesX saves the SI24 when the composition offset is 0 (as ffmpeg does).
            let with_cts = frame.cts != 0;
            let packet_type = if with_cts {
                video_packet::CODED_FRAMES
            } else {
                video_packet::CODED_FRAMES_X
            };
            head.push(VIDEO_EX_HEADER | (frame_type << 4) | packet_type);
            head.extend(&config.codec.fourcc());
            if with_cts {
                head.si24(frame.cts);
            }
        }
        VideoCodec::Av1 => {
            // av01 CodedFrames carries no composition time: AV1 has no reordering in FLV.
            head.push(VIDEO_EX_HEADER | (frame_type << 4) | video_packet::CODED_FRAMES);
            head.extend(&config.codec.fourcc());
        }
    }
    Ok(head)
}

/// Writes a whole tag: header, `head`, `payload`, trailer.
fn write_tag(out: &mut BytesMut, tag_type: u8, timestamp: u32, head: &TagHead, payload: &[u8]) {
    let body_len = head.len() + payload.len();
    out.reserve(tag::total_len(body_len));
    tag::header(out, tag_type, body_len, timestamp);
    out.put_slice(head.as_slice());
    out.put_slice(payload);
    tag::trailer(out, body_len);
}

fn write_video_config(out: &mut BytesMut, config: &VideoConfig) {
    let head = video_config_head(config);
    let len = config.record.len().min(MAX_BODY_LEN - head.len());
    write_tag(out, TAG_TYPE_VIDEO, 0, &head, &config.record[..len]);
}

fn write_audio_config(out: &mut BytesMut, config: &AudioConfig) {
    let head = audio_config_head();
    let len = config.specific.len().min(MAX_BODY_LEN - head.len());
    write_tag(out, TAG_TYPE_AUDIO, 0, &head, &config.specific[..len]);
}

fn write_video_frame(
    out: &mut BytesMut,
    config: &VideoConfig,
    frame: &Frame,
    timestamp: u32,
) -> Result<(), MuxError> {
    let head = video_frame_head(config, frame)?;
    check_body_len(TrackKind::Video, head.len() + frame.data.len())?;
    write_tag(out, TAG_TYPE_VIDEO, timestamp, &head, &frame.data);
    Ok(())
}

fn write_end_of_sequence(out: &mut BytesMut, config: &VideoConfig, timestamp: u32) {
    match config.codec {
        VideoCodec::H264 => {
            let body_len = AVC_HEADER_LEN;
            tag::header(out, TAG_TYPE_VIDEO, body_len, timestamp);
            out.put_slice(&[
                (FRAME_TYPE_KEY << 4) | VIDEO_CODEC_AVC,
                video_packet::SEQUENCE_END,
                0,
                0,
                0,
            ]);
            tag::trailer(out, body_len);
        }
        VideoCodec::H265 | VideoCodec::Av1 => {
            let body_len = EX_HEADER_LEN;
            tag::header(out, TAG_TYPE_VIDEO, body_len, timestamp);
            out.put_u8(VIDEO_EX_HEADER | (FRAME_TYPE_KEY << 4) | video_packet::SEQUENCE_END);
            out.put_slice(&config.codec.fourcc());
            tag::trailer(out, body_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use liverec_media::flv::{TagKind, read_file_frames, read_file_tags};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// avcC of ffmpeg/x264 320x240 (tests/.assets/h264_aac.flv).
    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb,
    ];
    /// av1C of ffmpeg 9/SVT-AV1 320x240 (tests/.assets/av1_aac.flv).
    const AV1C: &[u8] = &[
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x21, 0xe7, 0xfd, 0xe0, 0x17,
        0xc0, 0x02,
    ];
    /// hvcC of ffmpeg 9/x265 320x240 with its VPS, SPS and PPS (no SEI array).
    const HVCC_HEX: &str = concat!(
        "0101600000009000000000003cf000fcfdf8f800000f03",
        "a00001001840010c01ffff01600000030090000003000003003c959009",
        "a1000100",
        "2a42010101600000030090000003000003003ca00a080f16595912930bc05a020000030002000003003210",
        "a200010006",
        "4401c073c189",
    );
    const ASC: &[u8] = &[0x12, 0x08];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0))
            .collect()
    }

    fn video(codec: VideoCodec) -> Arc<VideoConfig> {
        let cfg = match codec {
            VideoCodec::H264 => VideoConfig::from_avc_record(Bytes::from_static(AVCC)),
            VideoCodec::H265 => VideoConfig::from_hevc_record(Bytes::from(hex(HVCC_HEX))),
            VideoCodec::Av1 => VideoConfig::from_av1_record(Bytes::from_static(AV1C)),
        };
        Arc::new(cfg.expect("test record"))
    }

    fn audio() -> Arc<AudioConfig> {
        Arc::new(AudioConfig::from_aac_specific_config(Bytes::from_static(ASC)).expect("asc"))
    }

    fn tracks(v: Option<VideoCodec>, a: bool) -> Tracks {
        Tracks {
            video: v.map(video),
            audio: a.then(audio),
        }
    }

    fn vframe(dts: i64, cts: i32, keyframe: bool, payload: &[u8]) -> Frame {
        Frame {
            track: TrackKind::Video,
            dts,
            cts,
            keyframe,
            data: Bytes::copy_from_slice(payload),
        }
    }

    fn aframe(dts: i64, payload: &[u8]) -> Frame {
        Frame {
            track: TrackKind::Audio,
            dts,
            cts: 0,
            keyframe: true,
            data: Bytes::copy_from_slice(payload),
        }
    }

    /// Muxes `frames` into one file with the patches applied.
    fn mux(tracks: &Tracks, frames: &[Frame]) -> (Vec<u8>, Vec<Patch>, Muxer) {
        let mut m = Muxer::new(tracks);
        let mut out = BytesMut::new();
        m.header(&mut out);
        let mut file = out.split().to_vec();
        for f in frames {
            m.push(f, &mut out).expect("push");
            // Hand the bytes off per frame, as the recorder does.
            file.extend_from_slice(&out.split());
        }
        let patches = m.finish(&mut out);
        file.extend_from_slice(&out);
        for p in &patches {
            let at = usize::try_from(p.offset).expect("offset");
            file[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
        }
        (file, patches, m)
    }

    fn metadata(file: &[u8]) -> Vec<(String, MetaValue)> {
        let tag = read_file_tags(file)
            .next()
            .expect("a tag")
            .expect("valid tag");
        assert_eq!(tag.kind, TagKind::Script);
        let (name, entries) = amf0::decode_metadata(&tag.body).expect("AMF0");
        assert_eq!(name, "onMetaData");
        entries
    }

    fn meta_number(entries: &[(String, MetaValue)], key: &str) -> Option<f64> {
        entries.iter().find_map(|(k, v)| match v {
            MetaValue::Number(n) if k == key => Some(*n),
            _ => None,
        })
    }

    fn shifted(frames: &[Frame], by: i64) -> Vec<Frame> {
        frames
            .iter()
            .map(|f| Frame {
                dts: f.dts - by,
                ..f.clone()
            })
            .collect()
    }

    #[test]
    fn h264_aac_round_trip() {
        let t = tracks(Some(VideoCodec::H264), true);
        let frames = vec![
            vframe(1000, 80, true, &[0, 0, 0, 2, 0x65, 1]),
            aframe(1000, &[0x21, 0x10]),
            vframe(1040, -40, false, &[0, 0, 0, 1, 0x41]),
            aframe(1023, &[0x21, 0x11]),
            vframe(1080, 0, false, &[0, 0, 0, 1, 0x01]),
        ];
        let (file, _, m) = mux(&t, &frames);
        let media = read_file_frames(&file).expect("parse back");
        assert_eq!(media.tracks, t);
        assert_eq!(media.frames, shifted(&frames, 1000));
        assert_eq!(m.bytes_written(), u64::try_from(file.len()).expect("len"));
    }

    #[test]
    fn hevc_and_av1_round_trip_as_enhanced_flv() {
        for codec in [VideoCodec::H265, VideoCodec::Av1] {
            let t = tracks(Some(codec), true);
            let cts = if codec == VideoCodec::H265 { 80 } else { 0 };
            let frames = vec![
                vframe(0, cts, true, &[0, 0, 0, 2, 0x26, 1]),
                aframe(5, &[0x21]),
                vframe(40, 0, false, &[0, 0, 0, 1, 2]),
            ];
            let (file, _, _) = mux(&t, &frames);
            let first_video = read_file_tags(&file)
                .flatten()
                .find(|t| t.kind == TagKind::Video)
                .expect("video tag");
            assert_eq!(first_video.body[0] & VIDEO_EX_HEADER, VIDEO_EX_HEADER);
            assert_eq!(&first_video.body[1..5], &codec.fourcc());
            let media = read_file_frames(&file).expect("parse back");
            assert_eq!(media.tracks, t, "{codec:?}");
            assert_eq!(media.frames, frames, "{codec:?}");
        }
    }

    #[test]
    fn header_flags_and_metadata() {
        let t = tracks(Some(VideoCodec::H265), true);
        let mut m = Muxer::new(&t);
        m.add_metadata("recording_id", MetaValue::String("r-1".into()))
            .expect("room");
        let mut out = BytesMut::new();
        m.header(&mut out);
        assert_eq!(&out[..5], b"FLV\x01\x05");
        let entries = metadata(&out);
        assert_eq!(meta_number(&entries, "width"), Some(320.0));
        assert_eq!(meta_number(&entries, "height"), Some(240.0));
        assert_eq!(
            meta_number(&entries, "videocodecid"),
            Some(f64::from(u32::from_be_bytes(*b"hvc1")))
        );
        assert_eq!(meta_number(&entries, "audiocodecid"), Some(10.0));
        assert_eq!(meta_number(&entries, "audiosamplerate"), Some(44_100.0));
        assert!(entries.contains(&("stereo".into(), MetaValue::Bool(false))));
        assert!(entries.contains(&("encoder".into(), MetaValue::String("liverec".into()))));
        assert!(entries.contains(&("recording_id".into(), MetaValue::String("r-1".into()))));

        let audio_only = Muxer::new(&tracks(None, true));
        let mut out = BytesMut::new();
        let mut audio_only = audio_only;
        audio_only.header(&mut out);
        assert_eq!(out[4], FLAG_AUDIO);
        assert_eq!(meta_number(&metadata(&out), "width"), None);
    }

    #[test]
    fn patches_fill_duration_and_filesize() {
        let t = tracks(Some(VideoCodec::H264), true);
        let frames: Vec<Frame> = (0..50)
            .flat_map(|i| {
                [
                    vframe(500 + i * 40, 0, i % 25 == 0, &[0, 0, 0, 1, 0x41]),
                    aframe(500 + i * 40, &[1, 2, 3]),
                ]
            })
            .collect();
        let (file, patches, m) = mux(&t, &frames);
        assert_eq!(patches.len(), 2);
        let entries = metadata(&file);
        // Last frame at 1960 ms relative, lasting one 40 ms step.
        assert_eq!(m.duration_ms(), 2000);
        assert_eq!(meta_number(&entries, "duration"), Some(2.0));
        assert_eq!(meta_number(&entries, "filesize"), Some(file.len() as f64));
        // The file ends with the AVC end-of-sequence tag.
        let last = read_file_tags(&file).flatten().last().expect("tags");
        assert_eq!(&last.body[..], &[0x17, 2, 0, 0, 0]);
        assert_eq!(last.timestamp, 1960);
    }

    #[test]
    fn patch_offsets_account_for_earlier_output() {
        // The header written into a buffer that already holds bytes: offsets are file
        // offsets counted by the muxer, not buffer positions.
        let t = tracks(None, true);
        let mut m = Muxer::new(&t);
        let mut out = BytesMut::from(&b"junk"[..]);
        m.header(&mut out);
        let file = out.split_off(4);
        let patches = m.finish(&mut BytesMut::new());
        let at = usize::try_from(patches[0].offset).expect("offset");
        // The 8 bytes before a number are its key's last byte and the number marker.
        assert_eq!(&file[at - 9..at], b"duration\x00");
        let at = usize::try_from(patches[1].offset).expect("offset");
        assert_eq!(&file[at - 9..at], b"filesize\x00");
    }

    #[test]
    fn timestamps_are_relative_and_extended() {
        let t = tracks(None, true);
        let base = 7_000_000_000;
        let frames = [aframe(base, &[1]), aframe(base + 0x0123_4567, &[2])];
        let (file, _, _) = mux(&t, &frames);
        let ts: Vec<u32> = read_file_tags(&file)
            .flatten()
            .filter(|t| t.kind == TagKind::Audio)
            .map(|t| t.timestamp)
            .collect();
        assert_eq!(ts, vec![0, 0, 0x0123_4567]);
    }

    #[test]
    fn errors() {
        let t = tracks(Some(VideoCodec::H264), false);
        let mut m = Muxer::new(&t);
        let mut out = BytesMut::new();
        let v = vframe(0, 0, true, &[1]);
        assert_eq!(m.push(&v, &mut out), Err(MuxError::HeaderNotWritten));
        m.header(&mut out);
        out.clear();
        assert_eq!(
            m.push(&aframe(0, &[1]), &mut out),
            Err(MuxError::TrackNotConfigured(TrackKind::Audio))
        );
        assert_eq!(
            m.push(&vframe(0, 0, true, &[]), &mut out),
            Err(MuxError::EmptyFrame(TrackKind::Video))
        );
        assert_eq!(
            m.push(&vframe(0, 1 << 23, true, &[1]), &mut out),
            Err(MuxError::CtsOutOfRange(1 << 23))
        );
        m.push(&v, &mut out).expect("first frame");
        assert!(matches!(
            m.push(&vframe(1 << 32, 0, true, &[1]), &mut out),
            Err(MuxError::TimestampOutOfRange { .. })
        ));
        let big = vframe(1, 0, true, &vec![0; MAX_BODY_LEN]);
        assert!(matches!(
            m.push(&big, &mut out),
            Err(MuxError::FrameTooLarge { .. })
        ));
        // Failed pushes wrote nothing.
        let written = out.len();
        assert_eq!(written, tag::total_len(AVC_HEADER_LEN + 1));
    }

    #[test]
    fn header_and_finish_are_idempotent() {
        let t = tracks(Some(VideoCodec::Av1), false);
        let mut m = Muxer::new(&t);
        let mut out = BytesMut::new();
        m.header(&mut out);
        let len = out.len();
        m.header(&mut out);
        assert_eq!(out.len(), len);
        m.push(&vframe(0, 0, true, &[0x12, 0]), &mut out)
            .expect("push");
        let patches = m.finish(&mut out);
        let len = out.len();
        assert_eq!(m.finish(&mut out), patches);
        assert_eq!(out.len(), len);
        assert_eq!(
            m.push(&vframe(40, 0, false, &[0x12, 0]), &mut out),
            Err(MuxError::Finished)
        );
        assert_eq!(m.bytes_written(), u64::try_from(len).expect("len"));
    }

    #[test]
    fn metadata_limit() {
        let mut m = Muxer::new(&Tracks::default());
        for i in 0..MAX_EXTRA_METADATA {
            m.add_metadata(format!("k{i}"), MetaValue::Number(1.0))
                .expect("room");
        }
        assert_eq!(
            m.add_metadata("one more", MetaValue::Bool(true)),
            Err(MuxError::TooMuchMetadata {
                max: MAX_EXTRA_METADATA
            })
        );
    }

    fn arb_frames() -> impl Strategy<Value = (Tracks, Vec<Frame>)> {
        let codec = prop_oneof![
            Just(None),
            Just(Some(VideoCodec::H264)),
            Just(Some(VideoCodec::H265)),
            Just(Some(VideoCodec::Av1)),
        ];
        (codec, any::<bool>()).prop_flat_map(|(codec, has_audio)| {
            let has_video = codec.is_some();
            let has_audio = has_audio || !has_video;
            let frame = (
                any::<bool>(),
                0i64..100_000,
                -1000i32..1000,
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 1..64),
            );
            (
                Just(tracks(codec, has_audio)),
                proptest::collection::vec(frame, 0..40),
                0i64..1_000_000_000_000,
            )
                .prop_map(move |(t, raw, start)| {
                    let mut dts = [start, start];
                    let frames = raw
                        .into_iter()
                        .map(|(video, step, cts, key, data)| {
                            let video = (video && has_video) || !has_audio;
                            let i = usize::from(video);
                            dts[i] += step;
                            Frame {
                                track: if video {
                                    TrackKind::Video
                                } else {
                                    TrackKind::Audio
                                },
                                dts: dts[i],
                                cts: if video && codec != Some(VideoCodec::Av1) {
                                    cts
                                } else {
                                    0
                                },
                                keyframe: key || !video,
                                data: Bytes::from(data),
                            }
                        })
                        .collect::<Vec<_>>();
                    (t, frames)
                })
        })
    }

    proptest! {
        #[test]
        fn random_frame_sequences_produce_parseable_flv((t, frames) in arb_frames()) {
            let (file, _, m) = mux(&t, &frames);
            prop_assert_eq!(m.bytes_written(), file.len() as u64);
            let media = read_file_frames(&file);
            prop_assert!(media.is_ok(), "{:?}", media);
            let media = media.unwrap_or_default();
            prop_assert_eq!(&media.tracks, &t);
            let first = frames.first().map_or(0, |f| f.dts);
            let expected: Vec<Frame> = frames
                .iter()
                .map(|f| Frame { dts: (f.dts - first).max(0), ..f.clone() })
                .collect();
            prop_assert_eq!(media.frames, expected);
            let entries = metadata(&file);
            prop_assert_eq!(meta_number(&entries, "filesize"), Some(file.len() as f64));
            prop_assert_eq!(
                meta_number(&entries, "duration"),
                Some(m.duration_ms() as f64 / 1000.0)
            );
        }
    }
}
