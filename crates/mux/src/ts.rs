//! MPEG-2 transport stream muxer (ISO/IEC 13818-1) for the segments of `m3u8` recordings.
//!
//! One program: PMT on PID 0x1000, video (H.264 0x1B, H.265 0x24) on 0x100, AAC in ADTS
//! (0x0F) on 0x101. Every segment begins with PAT and PMT and the recorder cuts at
//! keyframes, which carry their parameter sets in-band, so each segment decodes on its own.
//! Continuity counters and timestamps run on across segments, so the segments of one
//! recording also play back to back. AV1 is not carried (there is no AV1-in-TS mapping
//! that players read): [`Muxer::new`] refuses it and the recorder skips the format.
//!
//! Pure: frames in, bytes out; no I/O and no clock.

mod adts;
mod annexb;
mod error;
mod packet;
mod pes;
mod psi;

use bytes::BytesMut;
use liverec_media::{Frame, TrackKind, Tracks, VideoCodec, VideoConfig};
use std::sync::Arc;

pub use error::MuxError;
pub use packet::PACKET_SIZE;

use adts::Adts;
use annexb::NalCodec;
use packet::{CLOCK_MODULUS, Continuity, StartFlags};

pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
pub const STREAM_TYPE_H264: u8 = 0x1B;
pub const STREAM_TYPE_H265: u8 = 0x24;
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// Added to every PTS/DTS so that a stream starting at 0 with B-frames (or audio slightly
/// ahead of video) never needs a negative timestamp; the value ffmpeg's muxer uses too.
/// Anything still below zero wraps modulo 2^33, as TS timestamps do.
pub const TIMESTAMP_OFFSET_MS: i64 = 1400;
/// How far the PCR runs behind the DTS of the frame it comes with: the time a decoder may
/// buffer a frame, and how far audio may lag video in the interleaving without arriving
/// "late".
const PCR_DELAY_MS: i64 = 700;
/// A PCR at least this often (of media time) on the PCR PID. ISO/IEC 13818-1 asks for one
/// every 100 ms; PCRs only ride on frames, so half that keeps the gap under 100 ms for
/// frame rates down to 20 fps.
const PCR_PERIOD_MS: i64 = 50;
const TICKS_PER_MS: i64 = 90;

/// Muxes the frames of one recording into transport stream segments.
///
/// Call [`Muxer::start_segment`] at the start of every segment (the first [`Muxer::push`]
/// does it if it was never called), then [`Muxer::push`] each frame in decoding order.
#[derive(Debug)]
pub struct Muxer {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    program: Program,
    /// The PES being built; reused so that steady-state muxing does not allocate.
    pes: BytesMut,
}

/// What is shared by the tracks: the tables, the PCR, the byte count.
#[derive(Debug)]
struct Program {
    pcr_track: TrackKind,
    pat: [u8; PACKET_SIZE],
    pmt: [u8; PACKET_SIZE],
    pat_cc: Continuity,
    pmt_cc: Continuity,
    clock: PcrClock,
    started: bool,
    bytes_written: u64,
}

impl Program {
    fn start_segment(&mut self, out: &mut BytesMut) {
        packet::set_continuity(&mut self.pat, self.pat_cc.next());
        packet::set_continuity(&mut self.pmt, self.pmt_cc.next());
        out.reserve(2 * PACKET_SIZE);
        out.extend_from_slice(&self.pat);
        out.extend_from_slice(&self.pmt);
        self.bytes_written += 2 * PACKET_SIZE as u64;
        self.clock.due = true;
        self.started = true;
    }

    /// The flags of the next PES of `track`, which starts a segment if none was started.
    fn next_pes(&mut self, out: &mut BytesMut, track: TrackKind, frame: &Frame) -> StartFlags {
        if !self.started {
            self.start_segment(out);
        }
        if track != self.pcr_track {
            return StartFlags {
                pcr: None,
                random_access: track == TrackKind::Video && frame.keyframe,
            };
        }
        let keyframe = track == TrackKind::Video && frame.keyframe;
        let pcr = self.clock.next(frame.dts, keyframe);
        StartFlags {
            pcr,
            // Without video the audio frame that carries the PCR (among them the first of
            // each segment) is marked as an entry point.
            random_access: keyframe || (track == TrackKind::Audio && pcr.is_some()),
        }
    }
}

#[derive(Debug)]
struct VideoTrack {
    config: Arc<VideoConfig>,
    codec: NalCodec,
    cc: Continuity,
}

#[derive(Debug)]
struct AudioTrack {
    adts: Adts,
    cc: Continuity,
}

/// When the PCR PID gets its next PCR.
#[derive(Debug, Default)]
struct PcrClock {
    last_dts: Option<i64>,
    /// A segment started and has had no PCR yet.
    due: bool,
}

impl PcrClock {
    fn next(&mut self, dts: i64, keyframe: bool) -> Option<u64> {
        let periodic = self
            .last_dts
            .is_none_or(|last| dts < last || dts.saturating_sub(last) >= PCR_PERIOD_MS);
        if !(self.due || keyframe || periodic) {
            return None;
        }
        self.due = false;
        self.last_dts = Some(dts);
        Some(ticks(dts, TIMESTAMP_OFFSET_MS - PCR_DELAY_MS))
    }
}

/// Milliseconds plus `offset_ms` as 90 kHz ticks modulo 2^33. Wrapping arithmetic is exact
/// here: 2^64 is a multiple of 2^33, so no input can panic or skew the result.
fn ticks(ms: i64, offset_ms: i64) -> u64 {
    ms.wrapping_add(offset_ms)
        .wrapping_mul(TICKS_PER_MS)
        .rem_euclid(CLOCK_MODULUS as i64) as u64
}

impl Muxer {
    /// A muxer for `tracks`. Fails on an empty track set, AV1 video, NAL length sizes other
    /// than 1–4, and AAC parameters an ADTS header cannot express.
    pub fn new(tracks: &Tracks) -> Result<Self, MuxError> {
        if tracks.is_empty() {
            return Err(MuxError::NoTracks);
        }
        let video = match &tracks.video {
            Some(config) => {
                let codec = NalCodec::from_codec(config.codec)?;
                annexb::check_length_size(config.nal_length_size)?;
                Some(VideoTrack {
                    config: Arc::clone(config),
                    codec,
                    cc: Continuity::default(),
                })
            }
            None => None,
        };
        let audio = match &tracks.audio {
            Some(config) => Some(AudioTrack {
                adts: Adts::new(config)?,
                cc: Continuity::default(),
            }),
            None => None,
        };

        let mut streams = Vec::with_capacity(2);
        if let Some(video) = &video {
            streams.push(psi::Stream {
                stream_type: match video.config.codec {
                    VideoCodec::H265 => STREAM_TYPE_H265,
                    _ => STREAM_TYPE_H264,
                },
                pid: VIDEO_PID,
            });
        }
        if audio.is_some() {
            streams.push(psi::Stream {
                stream_type: STREAM_TYPE_AAC_ADTS,
                pid: AUDIO_PID,
            });
        }
        let (pcr_track, pcr_pid) = if video.is_some() {
            (TrackKind::Video, VIDEO_PID)
        } else {
            (TrackKind::Audio, AUDIO_PID)
        };
        let mut section = BytesMut::new();
        let mut pat = [0; PACKET_SIZE];
        psi::write_pat(&mut section, PMT_PID);
        packet::write_section(&mut pat, psi::PAT_PID, &section);
        section.clear();
        let mut pmt = [0; PACKET_SIZE];
        psi::write_pmt(&mut section, pcr_pid, &streams);
        packet::write_section(&mut pmt, PMT_PID, &section);

        Ok(Self {
            video,
            audio,
            program: Program {
                pcr_track,
                pat,
                pmt,
                pat_cc: Continuity::default(),
                pmt_cc: Continuity::default(),
                clock: PcrClock::default(),
                started: false,
                bytes_written: 0,
            },
            pes: BytesMut::new(),
        })
    }

    /// Begins a segment: appends PAT and PMT, and puts a PCR on the next frame of the PCR
    /// track. The recorder calls this before the first frame of every segment, which for a
    /// video track must be a keyframe.
    pub fn start_segment(&mut self, out: &mut BytesMut) {
        self.program.start_segment(out);
    }

    /// Appends one frame as a PES. On error nothing is appended and no counter moves, so
    /// the caller may drop the frame and go on.
    pub fn push(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        match frame.track {
            TrackKind::Video => self.push_video(frame, out),
            TrackKind::Audio => self.push_audio(frame, out),
        }
    }

    /// Bytes appended so far by [`Muxer::start_segment`] and [`Muxer::push`].
    pub fn bytes_written(&self) -> u64 {
        self.program.bytes_written
    }

    fn push_video(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        let track = self
            .video
            .as_mut()
            .ok_or(MuxError::TrackNotConfigured(TrackKind::Video))?;
        let length_size = track.config.nal_length_size;
        let scan = annexb::scan(&frame.data, length_size, track.codec)?;
        if scan.nal_count == 0 {
            return Err(MuxError::EmptyFrame(TrackKind::Video));
        }
        let parameter_sets =
            (frame.keyframe && !scan.has_sps).then_some(track.config.parameter_sets.as_slice());
        let es_len = annexb::written_len(&scan, track.codec, parameter_sets);

        self.pes.clear();
        self.pes.reserve(pes::MAX_HEADER_SIZE + es_len);
        pes::write_header(
            &mut self.pes,
            pes::STREAM_ID_VIDEO,
            ticks(frame.pts(), TIMESTAMP_OFFSET_MS),
            Some(ticks(frame.dts, TIMESTAMP_OFFSET_MS)),
            es_len,
        );
        annexb::write(
            &mut self.pes,
            &frame.data,
            length_size,
            track.codec,
            parameter_sets,
        )?;

        let flags = self.program.next_pes(out, TrackKind::Video, frame);
        let written = packet::write_pes(out, VIDEO_PID, &mut track.cc, flags, &self.pes);
        self.program.bytes_written += written as u64;
        Ok(())
    }

    fn push_audio(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), MuxError> {
        let track = self
            .audio
            .as_mut()
            .ok_or(MuxError::TrackNotConfigured(TrackKind::Audio))?;
        if frame.data.is_empty() {
            return Err(MuxError::EmptyFrame(TrackKind::Audio));
        }
        let adts = track.adts.header(frame.data.len())?;
        let es_len = adts.len() + frame.data.len();

        self.pes.clear();
        self.pes.reserve(pes::MAX_HEADER_SIZE + es_len);
        pes::write_header(
            &mut self.pes,
            pes::STREAM_ID_AUDIO,
            ticks(frame.pts(), TIMESTAMP_OFFSET_MS),
            Some(ticks(frame.dts, TIMESTAMP_OFFSET_MS)),
            es_len,
        );
        self.pes.extend_from_slice(&adts);
        self.pes.extend_from_slice(&frame.data);

        let flags = self.program.next_pes(out, TrackKind::Audio, frame);
        let written = packet::write_pes(out, AUDIO_PID, &mut track.cc, flags, &self.pes);
        self.program.bytes_written += written as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use liverec_media::{AudioCodec, AudioConfig};
    use proptest::prelude::*;

    use super::*;

    fn h264() -> Arc<VideoConfig> {
        Arc::new(VideoConfig {
            codec: VideoCodec::H264,
            record: Bytes::new(),
            width: 320,
            height: 240,
            nal_length_size: 4,
            parameter_sets: vec![
                Bytes::from_static(&[0x67, 0x64, 0x00, 0x0D]),
                Bytes::from_static(&[0x68, 0xEE]),
            ],
        })
    }

    fn aac() -> Arc<AudioConfig> {
        Arc::new(AudioConfig {
            codec: AudioCodec::Aac,
            specific: Bytes::from_static(&[0x12, 0x08]),
            object_type: 2,
            sample_rate: 44_100,
            channels: 1,
        })
    }

    fn av_tracks() -> Tracks {
        Tracks {
            video: Some(h264()),
            audio: Some(aac()),
        }
    }

    fn video(dts: i64, cts: i32, keyframe: bool, nal: &[u8]) -> Frame {
        let mut data = (nal.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(nal);
        Frame {
            track: TrackKind::Video,
            dts,
            cts,
            keyframe,
            data: Bytes::from(data),
        }
    }

    fn audio(dts: i64, len: usize) -> Frame {
        Frame {
            track: TrackKind::Audio,
            dts,
            cts: 0,
            keyframe: true,
            data: Bytes::from(vec![0x21; len]),
        }
    }

    /// The fields of one parsed packet.
    #[derive(Debug)]
    struct Packet {
        pid: u16,
        unit_start: bool,
        cc: u8,
        random_access: bool,
        pcr: Option<u64>,
        payload: Vec<u8>,
    }

    fn parse(bytes: &[u8]) -> Vec<Packet> {
        assert_eq!(bytes.len() % PACKET_SIZE, 0);
        bytes
            .chunks(PACKET_SIZE)
            .map(|p| {
                assert_eq!(p[0], 0x47);
                let afc = p[3] >> 4 & 3;
                let (mut random_access, mut pcr) = (false, None);
                let mut start = 4;
                if afc == 3 {
                    let len = usize::from(p[4]);
                    if len > 0 {
                        random_access = p[5] & 0x40 != 0;
                        if p[5] & 0x10 != 0 {
                            let b = &p[6..12];
                            pcr = Some(
                                u64::from(b[0]) << 25
                                    | u64::from(b[1]) << 17
                                    | u64::from(b[2]) << 9
                                    | u64::from(b[3]) << 1
                                    | u64::from(b[4] >> 7),
                            );
                        }
                    }
                    start = 5 + len;
                }
                Packet {
                    pid: u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]),
                    unit_start: p[1] & 0x40 != 0,
                    cc: p[3] & 0x0F,
                    random_access,
                    pcr,
                    payload: p[start..].to_vec(),
                }
            })
            .collect()
    }

    /// The PES payloads (after their headers) per PID, in order.
    fn pes_payloads(packets: &[Packet], pid: u16) -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for p in packets.iter().filter(|p| p.pid == pid) {
            if p.unit_start {
                all.push(Vec::new());
            }
            if let Some(last) = all.last_mut() {
                last.extend_from_slice(&p.payload);
            }
        }
        all.into_iter()
            .map(|pes| pes[9 + usize::from(pes[8])..].to_vec())
            .collect()
    }

    #[test]
    fn av1_and_empty_track_sets_are_refused() {
        let mut config = (*h264()).clone();
        config.codec = VideoCodec::Av1;
        let tracks = Tracks {
            video: Some(Arc::new(config)),
            audio: None,
        };
        assert_eq!(
            Muxer::new(&tracks).err(),
            Some(MuxError::UnsupportedVideoCodec(VideoCodec::Av1))
        );
        assert_eq!(
            Muxer::new(&Tracks::default()).err(),
            Some(MuxError::NoTracks)
        );
    }

    #[test]
    fn pat_and_pmt_open_every_segment_with_running_counters() {
        let Ok(mut muxer) = Muxer::new(&av_tracks()) else {
            panic!("muxer");
        };
        let mut out = BytesMut::new();
        muxer.start_segment(&mut out);
        muxer.start_segment(&mut out);
        let packets = parse(&out);
        let ids: Vec<(u16, u8)> = packets.iter().map(|p| (p.pid, p.cc)).collect();
        assert_eq!(ids, [(0, 0), (PMT_PID, 0), (0, 1), (PMT_PID, 1)]);
        // PMT: PCR on video, H.264 then AAC.
        let pmt = &packets[1].payload;
        assert_eq!(&pmt[9..11], &[0xE1, 0x00]);
        assert_eq!(&pmt[13..18], &[0x1B, 0xE1, 0x00, 0xF0, 0x00]);
        assert_eq!(&pmt[18..23], &[0x0F, 0xE1, 0x01, 0xF0, 0x00]);
        assert_eq!(muxer.bytes_written(), out.len() as u64);
    }

    #[test]
    fn keyframe_gets_pcr_random_access_and_parameter_sets() {
        let Ok(mut muxer) = Muxer::new(&av_tracks()) else {
            panic!("muxer");
        };
        let mut out = BytesMut::new();
        let pushed = [
            muxer.push(&video(0, 80, true, &[0x65, 0x88]), &mut out),
            muxer.push(&video(40, 0, false, &[0x41, 0x9A]), &mut out),
            muxer.push(&audio(10, 100), &mut out),
        ];
        assert!(pushed.iter().all(Result::is_ok), "{pushed:?}");
        let packets = parse(&out);
        // The first push wrote PAT + PMT itself.
        assert_eq!(packets[0].pid, 0);
        assert_eq!(packets[1].pid, PMT_PID);
        let video_starts: Vec<&Packet> = packets
            .iter()
            .filter(|p| p.pid == VIDEO_PID && p.unit_start)
            .collect();
        assert_eq!(video_starts.len(), 2);
        assert!(video_starts[0].random_access);
        assert_eq!(video_starts[0].pcr, Some((1400 - 700) * 90));
        // 40 ms later: under the PCR period, not a keyframe.
        assert!(!video_starts[1].random_access);
        assert_eq!(video_starts[1].pcr, None);

        let payloads = pes_payloads(&packets, VIDEO_PID);
        assert_eq!(
            payloads[0],
            [
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x0D, 0, 0, 0, 1, 0x68, 0xEE,
                0, 0, 0, 1, 0x65, 0x88
            ]
        );
        assert_eq!(
            payloads[1],
            [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x9A]
        );
        // PTS (1480 ms) and DTS (1400 ms) of the keyframe.
        let first = &video_starts[0].payload[7..];
        assert_eq!(&first[..2], &[0xC0, 10]);
        assert_eq!(&first[2..7], &[0x31, 0x00, 0x09, 0x10, 0xA1]); // 133_200 ticks
        assert_eq!(&first[7..12], &[0x11, 0x00, 0x07, 0xD8, 0x61]); // 126_000 ticks

        let audio = pes_payloads(&packets, AUDIO_PID);
        assert_eq!(audio.len(), 1);
        assert_eq!(&audio[0][..7], &[0xFF, 0xF1, 0x50, 0x40, 0x0D, 0x7F, 0xFC]);
        assert_eq!(audio[0].len(), 107);
        assert_eq!(muxer.bytes_written(), out.len() as u64);
    }

    #[test]
    fn in_band_parameter_sets_are_not_repeated() {
        let tracks = Tracks {
            video: Some(h264()),
            audio: None,
        };
        let Ok(mut muxer) = Muxer::new(&tracks) else {
            panic!("muxer");
        };
        let mut out = BytesMut::new();
        let mut data = vec![0, 0, 0, 2, 0x67, 0x01, 0, 0, 0, 2, 0x68, 0x02];
        data.extend_from_slice(&[0, 0, 0, 1, 0x65]);
        let frame = Frame {
            track: TrackKind::Video,
            dts: 0,
            cts: 0,
            keyframe: true,
            data: Bytes::from(data),
        };
        assert_eq!(muxer.push(&frame, &mut out), Ok(()));
        let payloads = pes_payloads(&parse(&out), VIDEO_PID);
        assert_eq!(
            payloads[0],
            [
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 0x01, 0, 0, 0, 1, 0x68, 0x02, 0, 0, 0, 1,
                0x65
            ]
        );
    }

    #[test]
    fn audio_only_carries_pcr_on_audio() {
        let tracks = Tracks {
            video: None,
            audio: Some(aac()),
        };
        let Ok(mut muxer) = Muxer::new(&tracks) else {
            panic!("muxer");
        };
        let mut out = BytesMut::new();
        muxer.start_segment(&mut out);
        for i in 0..4 {
            assert_eq!(muxer.push(&audio(i * 23, 50), &mut out), Ok(()));
        }
        let packets = parse(&out);
        let pmt = &packets[1].payload;
        assert_eq!(&pmt[9..11], &[0xE1, 0x01], "PCR PID is the audio PID");
        let pcrs: Vec<Option<u64>> = packets
            .iter()
            .filter(|p| p.pid == AUDIO_PID)
            .map(|p| p.pcr)
            .collect();
        // 0 (segment start), 23 and 46 are within 50 ms, 69 is not.
        assert_eq!(pcrs, [Some(63_000), None, None, Some(63_000 + 69 * 90)]);
    }

    #[test]
    fn errors_write_nothing_and_keep_counters() {
        let tracks = Tracks {
            video: Some(h264()),
            audio: None,
        };
        let Ok(mut muxer) = Muxer::new(&tracks) else {
            panic!("muxer");
        };
        let mut out = BytesMut::new();
        assert_eq!(
            muxer.push(&audio(0, 10), &mut out),
            Err(MuxError::TrackNotConfigured(TrackKind::Audio))
        );
        let mut broken = video(0, 0, true, &[0x65]);
        broken.data = Bytes::from_static(&[0, 0, 0, 9, 0x65]);
        assert!(matches!(
            muxer.push(&broken, &mut out),
            Err(MuxError::NalOverrun { .. })
        ));
        let empty = Frame {
            data: Bytes::new(),
            ..video(0, 0, true, &[])
        };
        assert_eq!(
            muxer.push(&empty, &mut out),
            Err(MuxError::EmptyFrame(TrackKind::Video))
        );
        assert!(out.is_empty());
        assert_eq!(muxer.bytes_written(), 0);
        assert_eq!(muxer.push(&video(0, 0, true, &[0x65]), &mut out), Ok(()));
        let packets = parse(&out);
        assert_eq!(packets[2].pid, VIDEO_PID);
        assert_eq!(packets[2].cc, 0);
    }

    #[test]
    fn large_keyframe_spans_packets_with_an_unbounded_pes_length() {
        let tracks = Tracks {
            video: Some(h264()),
            audio: None,
        };
        let Ok(mut muxer) = Muxer::new(&tracks) else {
            panic!("muxer");
        };
        let mut nal = vec![0x65];
        nal.extend((0..100_000u32).map(|i| (i % 251) as u8));
        let mut out = BytesMut::new();
        assert_eq!(muxer.push(&video(0, 0, true, &nal), &mut out), Ok(()));
        let packets = parse(&out);
        let starts: Vec<&Packet> = packets
            .iter()
            .filter(|p| p.pid == VIDEO_PID && p.unit_start)
            .collect();
        assert_eq!(starts.len(), 1);
        assert_eq!(&starts[0].payload[4..6], &[0, 0], "PES_packet_length 0");
        let payload = pes_payloads(&packets, VIDEO_PID).concat();
        // AUD (6) + SPS (8) + PPS (6) + start code (4), then the NAL unit unchanged.
        assert_eq!(payload.len(), 24 + nal.len());
        assert_eq!(&payload[24..], &nal[..]);
    }

    #[test]
    fn negative_timestamps_wrap_instead_of_panicking() {
        assert_eq!(ticks(-1400, TIMESTAMP_OFFSET_MS), 0);
        assert_eq!(ticks(-1401, TIMESTAMP_OFFSET_MS), CLOCK_MODULUS - 90);
        assert!(ticks(i64::MIN, TIMESTAMP_OFFSET_MS) < CLOCK_MODULUS);
        assert!(ticks(i64::MAX, TIMESTAMP_OFFSET_MS) < CLOCK_MODULUS);
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            0i64..100,
            -50i32..200,
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..600),
        )
            .prop_map(|(is_video, step, cts, keyframe, body)| {
                if is_video {
                    video(step, cts, keyframe, &body)
                } else {
                    let mut frame = audio(step, 1);
                    frame.data = Bytes::from(body);
                    frame
                }
            })
    }

    proptest! {
        #[test]
        fn packets_are_whole_and_counters_continuous(
            frames in proptest::collection::vec(arb_frame(), 1..60),
            cuts in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let Ok(mut muxer) = Muxer::new(&av_tracks()) else {
                panic!("muxer");
            };
            let mut out = BytesMut::new();
            let mut dts = 0;
            for (frame, cut) in frames.iter().zip(cuts) {
                dts += frame.dts; // strategy gives steps: keep dts monotonic
                let frame = Frame { dts, ..frame.clone() };
                if cut {
                    muxer.start_segment(&mut out);
                }
                let before = out.len();
                if muxer.push(&frame, &mut out).is_err() {
                    prop_assert_eq!(out.len(), before);
                }
            }
            prop_assert_eq!(out.len() % PACKET_SIZE, 0);
            prop_assert_eq!(muxer.bytes_written(), out.len() as u64);
            let mut last: HashMap<u16, u8> = HashMap::new();
            for packet in parse(&out) {
                if let Some(prev) = last.insert(packet.pid, packet.cc) {
                    prop_assert_eq!(packet.cc, (prev + 1) & 0x0F, "pid {:#x}", packet.pid);
                } else {
                    prop_assert_eq!(packet.cc, 0);
                }
            }
        }
    }
}
