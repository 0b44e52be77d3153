//! Video tag bodies: legacy AVC / HEVC (codec ids 7 and 12) and E-RTMP `ExVideoTagHeader`.

use bytes::Bytes;

use super::cursor::Cursor;
use super::{
    CodecId, DEFAULT_TRACK_ID, FRAME_TYPE_COMMAND, FRAME_TYPE_KEY, FlvError, Ignored,
    VIDEO_CODEC_AVC, VIDEO_CODEC_HEVC, VIDEO_EX_HEADER, multitrack, video_packet,
};
use crate::{TrackKind, VideoCodec, VideoConfig};

const TRACK: TrackKind = TrackKind::Video;

/// What one video tag body means for the recorder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoTag {
    /// A decoder configuration (AVC/HEVC sequence header, E-RTMP SequenceStart).
    SequenceHeader(VideoConfig),
    /// One coded picture. `data` is a slice of the tag body in the [`crate::Frame`] layout.
    Frame {
        codec: VideoCodec,
        keyframe: bool,
        /// Composition time offset (pts - dts), milliseconds.
        cts: i32,
        data: Bytes,
    },
    /// End of sequence: the publisher ends this video configuration.
    EndOfSequence {
        codec: VideoCodec,
    },
    Ignored(Ignored),
}

/// Parses one FLV / RTMP video tag body.
pub fn parse_video_tag(body: &Bytes) -> Result<VideoTag, FlvError> {
    let mut c = Cursor::new(TRACK, body);
    let first = c.u8()?;
    let frame_type = (first >> 4) & 0x07;
    if first & VIDEO_EX_HEADER == 0 {
        return parse_legacy(&mut c, first);
    }
    let mut packet_type = first & 0x0f;
    while packet_type == video_packet::MOD_EX {
        // The only modifier defined (TimestampOffsetNano) refines the timestamp below
        // millisecond precision, which liverec's millisecond timeline cannot use.
        packet_type = c.skip_mod_ex()? & 0x0f;
    }
    if packet_type != video_packet::METADATA && frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoTag::Ignored(Ignored::Command));
    }
    if packet_type != video_packet::MULTITRACK {
        let fourcc = c.fourcc()?;
        return parse_ex_body(&mut c, frame_type, packet_type, fourcc);
    }
    let byte = c.u8()?;
    let multitrack_type = byte >> 4;
    let packet_type = byte & 0x0f;
    if multitrack_type > multitrack::MANY_TRACKS_MANY_CODECS {
        return Err(FlvError::InvalidMultitrack {
            track: TRACK,
            multitrack_type,
        });
    }
    if matches!(packet_type, video_packet::MULTITRACK | video_packet::MOD_EX) {
        return Err(FlvError::UnknownPacketType {
            track: TRACK,
            packet_type,
        });
    }
    let shared_fourcc = if multitrack_type == multitrack::MANY_TRACKS_MANY_CODECS {
        None
    } else {
        Some(c.fourcc()?)
    };
    while c.remaining() > 0 {
        let fourcc = match shared_fourcc {
            Some(cc) => cc,
            None => c.fourcc()?,
        };
        let track_id = c.u8()?;
        let size = if multitrack_type == multitrack::ONE_TRACK {
            c.remaining()
        } else {
            usize::try_from(c.u24()?).unwrap_or(usize::MAX)
        };
        let outer_end = c.limit(size)?;
        if track_id == DEFAULT_TRACK_ID {
            return parse_ex_body(&mut c, frame_type, packet_type, fourcc);
        }
        c.unlimit(outer_end);
        if multitrack_type == multitrack::ONE_TRACK {
            break;
        }
    }
    Ok(VideoTag::Ignored(Ignored::OtherTrack))
}

/// Legacy `VideoTagHeader`: AVC (7) and the de-facto HEVC (12), both with
/// AVCPacketType + SI24 composition time.
fn parse_legacy(c: &mut Cursor<'_>, first: u8) -> Result<VideoTag, FlvError> {
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    if frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoTag::Ignored(Ignored::Command));
    }
    let codec = match codec_id {
        VIDEO_CODEC_AVC => VideoCodec::H264,
        VIDEO_CODEC_HEVC => VideoCodec::H265,
        other => {
            return Err(FlvError::UnsupportedCodec {
                track: TRACK,
                codec: CodecId::Flv(other),
            });
        }
    };
    let packet_type = c.u8()?;
    let cts = c.si24()?;
    match packet_type {
        video_packet::SEQUENCE_START => sequence_header(codec, c.rest()),
        video_packet::CODED_FRAMES => Ok(frame(codec, frame_type, cts, c.rest())),
        video_packet::SEQUENCE_END => Ok(VideoTag::EndOfSequence { codec }),
        other => Err(FlvError::UnknownPacketType {
            track: TRACK,
            packet_type: other,
        }),
    }
}

/// The body of one E-RTMP video packet (one track of it) after its FourCC.
fn parse_ex_body(
    c: &mut Cursor<'_>,
    frame_type: u8,
    packet_type: u8,
    fourcc: [u8; 4],
) -> Result<VideoTag, FlvError> {
    let codec = match &fourcc {
        b"avc1" => VideoCodec::H264,
        b"hvc1" => VideoCodec::H265,
        b"av01" => VideoCodec::Av1,
        _ => {
            return Err(FlvError::UnsupportedCodec {
                track: TRACK,
                codec: CodecId::FourCc(fourcc),
            });
        }
    };
    match packet_type {
        video_packet::SEQUENCE_START => sequence_header(codec, c.rest()),
        video_packet::CODED_FRAMES => {
            let cts = match codec {
                VideoCodec::H264 | VideoCodec::H265 => c.si24()?,
                VideoCodec::Av1 => 0,
            };
            Ok(frame(codec, frame_type, cts, c.rest()))
        }
        video_packet::CODED_FRAMES_X => Ok(frame(codec, frame_type, 0, c.rest())),
        video_packet::SEQUENCE_END => Ok(VideoTag::EndOfSequence { codec }),
        video_packet::METADATA => Ok(VideoTag::Ignored(Ignored::Metadata)),
        video_packet::MPEG2TS_SEQUENCE_START => {
            Ok(VideoTag::Ignored(Ignored::Mpeg2TsSequenceStart))
        }
        other => Err(FlvError::UnknownPacketType {
            track: TRACK,
            packet_type: other,
        }),
    }
}

fn sequence_header(codec: VideoCodec, record: Bytes) -> Result<VideoTag, FlvError> {
    let parsed = match codec {
        VideoCodec::H264 => VideoConfig::from_avc_record(record),
        VideoCodec::H265 => VideoConfig::from_hevc_record(record),
        VideoCodec::Av1 => VideoConfig::from_av1_record(record),
    };
    parsed
        .map(VideoTag::SequenceHeader)
        .map_err(|source| FlvError::InvalidSequenceHeader {
            track: TRACK,
            source,
        })
}

fn frame(codec: VideoCodec, frame_type: u8, cts: i32, data: Bytes) -> VideoTag {
    if data.is_empty() {
        return VideoTag::Ignored(Ignored::EmptyFrame);
    }
    VideoTag::Frame {
        codec,
        keyframe: frame_type == FRAME_TYPE_KEY,
        cts,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb,
    ];
    const AV1C: &[u8] = &[
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x21, 0xe7, 0xfd, 0xe0, 0x17,
        0xc0, 0x02,
    ];

    fn body(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    fn parse(parts: &[&[u8]]) -> Result<VideoTag, FlvError> {
        parse_video_tag(&body(parts))
    }

    #[test]
    fn legacy_avc_sequence_header_frame_and_end() {
        match parse(&[&[0x17, 0, 0, 0, 0], AVCC]) {
            Ok(VideoTag::SequenceHeader(cfg)) => {
                assert_eq!(cfg.codec, VideoCodec::H264);
                assert_eq!((cfg.width, cfg.height), (320, 240));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            parse(&[&[0x27, 1, 0xff, 0xff, 0xd8], &[0, 0, 0, 1, 0x41]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::H264,
                keyframe: false,
                cts: -40,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            })
        );
        assert_eq!(
            parse(&[&[0x17, 1, 0, 0, 80], &[0, 0, 0, 1, 0x65]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::H264,
                keyframe: true,
                cts: 80,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            })
        );
        assert_eq!(
            parse(&[&[0x17, 2, 0, 0, 0]]),
            Ok(VideoTag::EndOfSequence {
                codec: VideoCodec::H264
            })
        );
    }

    #[test]
    fn legacy_frame_is_a_zero_copy_slice() {
        let b = body(&[&[0x27, 1, 0, 0, 0], &[0, 0, 0, 1, 0x41]]);
        let Ok(VideoTag::Frame { data, .. }) = parse_video_tag(&b) else {
            panic!("not a frame");
        };
        assert_eq!(data.as_ptr(), b[5..].as_ptr());
    }

    #[test]
    fn legacy_hevc_codec_12_is_h265() {
        assert!(matches!(
            parse(&[&[0x1c, 1, 0, 0, 0], &[0, 0, 0, 1, 0x26]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::H265,
                keyframe: true,
                ..
            })
        ));
    }

    #[test]
    fn unsupported_legacy_codecs_and_commands() {
        assert_eq!(
            parse(&[&[0x22, 0, 0]]),
            Err(FlvError::UnsupportedCodec {
                track: TrackKind::Video,
                codec: CodecId::Flv(2),
            })
        );
        assert_eq!(
            parse(&[&[0x57, 0]]),
            Ok(VideoTag::Ignored(Ignored::Command))
        );
        assert!(matches!(
            parse(&[&[0x17, 9, 0, 0, 0]]),
            Err(FlvError::UnknownPacketType { packet_type: 9, .. })
        ));
        assert!(matches!(
            parse(&[&[0x17, 1, 0]]),
            Err(FlvError::Truncated { .. })
        ));
        assert!(matches!(parse(&[]), Err(FlvError::Truncated { .. })));
        assert_eq!(
            parse(&[&[0x27, 1, 0, 0, 0]]),
            Ok(VideoTag::Ignored(Ignored::EmptyFrame))
        );
    }

    #[test]
    fn enhanced_av1_sequence_start_and_frames() {
        match parse(&[&[0x90], b"av01", AV1C]) {
            Ok(VideoTag::SequenceHeader(cfg)) => {
                assert_eq!(cfg.codec, VideoCodec::Av1);
                assert_eq!((cfg.width, cfg.height), (320, 240));
            }
            other => panic!("unexpected {other:?}"),
        }
        // av01 CodedFrames has no composition time.
        assert_eq!(
            parse(&[&[0x91], b"av01", &[0x12, 0x00, 0x32]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::Av1,
                keyframe: true,
                cts: 0,
                data: Bytes::from_static(&[0x12, 0x00, 0x32]),
            })
        );
        assert_eq!(
            parse(&[&[0x95], b"av01", &[1, 2, 3]]),
            Ok(VideoTag::Ignored(Ignored::Mpeg2TsSequenceStart))
        );
    }

    #[test]
    fn enhanced_hevc_coded_frames_and_frames_x() {
        assert_eq!(
            parse(&[&[0xa1], b"hvc1", &[0, 0, 40], &[0, 0, 0, 1, 2]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::H265,
                keyframe: false,
                cts: 40,
                data: Bytes::from_static(&[0, 0, 0, 1, 2]),
            })
        );
        assert_eq!(
            parse(&[&[0xa3], b"hvc1", &[0, 0, 0, 1, 2]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::H265,
                keyframe: false,
                cts: 0,
                data: Bytes::from_static(&[0, 0, 0, 1, 2]),
            })
        );
        assert_eq!(
            parse(&[&[0x92], b"hvc1"]),
            Ok(VideoTag::EndOfSequence {
                codec: VideoCodec::H265
            })
        );
    }

    #[test]
    fn enhanced_avc1_sequence_start() {
        assert!(matches!(
            parse(&[&[0x90], b"avc1", AVCC]),
            Ok(VideoTag::SequenceHeader(VideoConfig {
                codec: VideoCodec::H264,
                ..
            }))
        ));
    }

    #[test]
    fn enhanced_metadata_and_commands_are_ignored() {
        // ffmpeg 9 writes colorInfo metadata with frame type 5 (0xd4).
        assert_eq!(
            parse(&[&[0xd4], b"hvc1", &[2, 0, 9]]),
            Ok(VideoTag::Ignored(Ignored::Metadata))
        );
        assert_eq!(
            parse(&[&[0xd1, 0]]),
            Ok(VideoTag::Ignored(Ignored::Command))
        );
    }

    #[test]
    fn enhanced_unsupported_fourcc() {
        assert_eq!(
            parse(&[&[0x90], b"vp09", &[1, 2]]),
            Err(FlvError::UnsupportedCodec {
                track: TrackKind::Video,
                codec: CodecId::FourCc(*b"vp09"),
            })
        );
    }

    #[test]
    fn mod_ex_is_skipped() {
        // ModEx, size 3 (2 + 1), data, then (TimestampOffsetNano << 4) | CodedFramesX.
        assert_eq!(
            parse(&[&[0x97, 2, 0, 0, 7, 0x03], b"av01", &[0x12, 0x00]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::Av1,
                keyframe: true,
                cts: 0,
                data: Bytes::from_static(&[0x12, 0x00]),
            })
        );
        // 16-bit size form: 255 means "read a UI16".
        let mut long = vec![0x97, 255, 0x01, 0x00];
        long.extend(std::iter::repeat_n(0u8, 257));
        long.push(0x03);
        long.extend_from_slice(b"av01");
        long.push(0x12);
        assert!(matches!(
            parse_video_tag(&Bytes::from(long)),
            Ok(VideoTag::Frame { .. })
        ));
        assert!(matches!(
            parse(&[&[0x97, 9, 0]]),
            Err(FlvError::Truncated { .. })
        ));
    }

    #[test]
    fn multitrack_takes_the_default_track() {
        // ManyTracks, CodedFramesX, hvc1; track 1 (3 bytes) then track 0 (2 bytes).
        let tag = parse(&[
            &[0x96, 0x13],
            b"hvc1",
            &[1, 0, 0, 3, 9, 9, 9],
            &[0, 0, 0, 2, 7, 7],
        ]);
        assert_eq!(
            tag,
            Ok(VideoTag::Frame {
                codec: VideoCodec::H265,
                keyframe: true,
                cts: 0,
                data: Bytes::from_static(&[7, 7]),
            })
        );
        // OneTrack with track id 0.
        assert!(matches!(
            parse(&[&[0x96, 0x03], b"av01", &[0, 0x12, 0]]),
            Ok(VideoTag::Frame {
                codec: VideoCodec::Av1,
                ..
            })
        ));
        // ManyTracksManyCodecs: each track has its FourCC; only track 2 → ignored.
        assert_eq!(
            parse(&[&[0x96, 0x23], b"av01", &[2, 0, 0, 1, 5]]),
            Ok(VideoTag::Ignored(Ignored::OtherTrack))
        );
        assert!(matches!(
            parse(&[&[0x96, 0x33], b"av01"]),
            Err(FlvError::InvalidMultitrack { .. })
        ));
        assert!(matches!(
            parse(&[&[0x96, 0x13], b"hvc1", &[1, 0, 0, 9, 1]]),
            Err(FlvError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn random_bodies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = parse_video_tag(&Bytes::from(data));
        }

        #[test]
        fn random_enhanced_bodies_never_panic(
            head in 0x80u8..=0xff,
            fourcc in prop_oneof![Just(*b"avc1"), Just(*b"hvc1"), Just(*b"av01")],
            data in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let b = body(&[&[head], &fourcc, &data]);
            if let Ok(VideoTag::Frame { data: d, .. }) = parse_video_tag(&b) {
                prop_assert!(!d.is_empty());
                prop_assert!(d.len() < b.len());
            }
        }

        #[test]
        fn legacy_cts_round_trips(cts in -(1i32 << 23)..(1i32 << 23)) {
            let raw = cts.to_be_bytes();
            let tag = parse(&[&[0x27, 1], &raw[1..], &[1]]);
            prop_assert_eq!(tag, Ok(VideoTag::Frame {
                codec: VideoCodec::H264, keyframe: false, cts, data: Bytes::from_static(&[1]),
            }));
        }
    }
}
