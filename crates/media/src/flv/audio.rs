//! Audio tag bodies: legacy AAC (SoundFormat 10) and E-RTMP `ExAudioTagHeader` (SoundFormat 9).

use bytes::Bytes;

use super::cursor::Cursor;
use super::{
    CodecId, DEFAULT_TRACK_ID, FlvError, Ignored, SOUND_FORMAT_AAC, SOUND_FORMAT_EX_HEADER,
    audio_packet, multitrack,
};
use crate::{AudioCodec, AudioConfig, TrackKind};

const TRACK: TrackKind = TrackKind::Audio;

/// What one audio tag body means for the recorder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioTag {
    /// A decoder configuration (AAC AudioSpecificConfig).
    SequenceHeader(AudioConfig),
    /// One raw audio frame (every audio frame is a keyframe; no composition offset).
    Frame {
        codec: AudioCodec,
        data: Bytes,
    },
    /// E-RTMP SequenceEnd.
    EndOfSequence {
        codec: AudioCodec,
    },
    Ignored(Ignored),
}

/// Parses one FLV / RTMP audio tag body.
pub fn parse_audio_tag(body: &Bytes) -> Result<AudioTag, FlvError> {
    let mut c = Cursor::new(TRACK, body);
    let first = c.u8()?;
    let sound_format = first >> 4;
    match sound_format {
        SOUND_FORMAT_AAC => {
            // Legacy AACPacketType: 0 AudioSpecificConfig, 1 raw frame.
            let packet_type = c.u8()?;
            parse_aac(&mut c, packet_type)
        }
        SOUND_FORMAT_EX_HEADER => parse_enhanced(&mut c, first & 0x0f),
        other => Err(FlvError::UnsupportedCodec {
            track: TRACK,
            codec: CodecId::Flv(other),
        }),
    }
}

fn parse_enhanced(c: &mut Cursor<'_>, mut packet_type: u8) -> Result<AudioTag, FlvError> {
    while packet_type == audio_packet::MOD_EX {
        // TimestampOffsetNano only: below liverec's millisecond precision.
        packet_type = c.skip_mod_ex()? & 0x0f;
    }
    if packet_type != audio_packet::MULTITRACK {
        let fourcc = c.fourcc()?;
        return parse_ex_body(c, packet_type, fourcc);
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
    if matches!(packet_type, audio_packet::MULTITRACK | audio_packet::MOD_EX) {
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
            return parse_ex_body(c, packet_type, fourcc);
        }
        c.unlimit(outer_end);
        if multitrack_type == multitrack::ONE_TRACK {
            break;
        }
    }
    Ok(AudioTag::Ignored(Ignored::OtherTrack))
}

fn parse_ex_body(
    c: &mut Cursor<'_>,
    packet_type: u8,
    fourcc: [u8; 4],
) -> Result<AudioTag, FlvError> {
    if &fourcc != b"mp4a" {
        return Err(FlvError::UnsupportedCodec {
            track: TRACK,
            codec: CodecId::FourCc(fourcc),
        });
    }
    match packet_type {
        audio_packet::MULTICHANNEL_CONFIG => Ok(AudioTag::Ignored(Ignored::MultichannelConfig)),
        audio_packet::SEQUENCE_END => Ok(AudioTag::EndOfSequence {
            codec: AudioCodec::Aac,
        }),
        other => parse_aac(c, other),
    }
}

/// AAC after its packet type; legacy and E-RTMP share SequenceStart = 0, CodedFrames = 1.
fn parse_aac(c: &mut Cursor<'_>, packet_type: u8) -> Result<AudioTag, FlvError> {
    match packet_type {
        audio_packet::SEQUENCE_START => AudioConfig::from_aac_specific_config(c.rest())
            .map(AudioTag::SequenceHeader)
            .map_err(|source| FlvError::InvalidSequenceHeader {
                track: TRACK,
                source,
            }),
        audio_packet::CODED_FRAMES => {
            let data = c.rest();
            if data.is_empty() {
                return Ok(AudioTag::Ignored(Ignored::EmptyFrame));
            }
            Ok(AudioTag::Frame {
                codec: AudioCodec::Aac,
                data,
            })
        }
        other => Err(FlvError::UnknownPacketType {
            track: TRACK,
            packet_type: other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(parts: &[&[u8]]) -> Result<AudioTag, FlvError> {
        parse_audio_tag(&Bytes::from(parts.concat()))
    }

    #[test]
    fn legacy_aac_config_and_frame() {
        match parse(&[&[0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00]]) {
            Ok(AudioTag::SequenceHeader(cfg)) => {
                assert_eq!(
                    (cfg.sample_rate, cfg.channels, cfg.object_type),
                    (44_100, 1, 2)
                );
                assert_eq!(&cfg.specific[..], &[0x12, 0x08, 0x56, 0xe5, 0x00]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            parse(&[&[0xaf, 0x01, 0xde, 0x02]]),
            Ok(AudioTag::Frame {
                codec: AudioCodec::Aac,
                data: Bytes::from_static(&[0xde, 0x02]),
            })
        );
        assert_eq!(
            parse(&[&[0xaf, 0x01]]),
            Ok(AudioTag::Ignored(Ignored::EmptyFrame))
        );
        assert!(matches!(
            parse(&[&[0xaf, 0x00, 0x12]]),
            Err(FlvError::InvalidSequenceHeader { .. })
        ));
        assert!(matches!(
            parse(&[&[0xaf, 0x05, 1]]),
            Err(FlvError::UnknownPacketType { .. })
        ));
        assert!(matches!(parse(&[&[0xaf]]), Err(FlvError::Truncated { .. })));
    }

    #[test]
    fn mp3_and_others_are_unsupported() {
        for (byte, id) in [(0x2f, 2), (0x7e, 7), (0xbe, 11)] {
            assert_eq!(
                parse(&[&[byte, 0xff]]),
                Err(FlvError::UnsupportedCodec {
                    track: TrackKind::Audio,
                    codec: CodecId::Flv(id),
                })
            );
        }
    }

    #[test]
    fn enhanced_mp4a() {
        assert!(matches!(
            parse(&[&[0x90], b"mp4a", &[0x11, 0x90]]),
            Ok(AudioTag::SequenceHeader(AudioConfig {
                sample_rate: 48_000,
                channels: 2,
                ..
            }))
        ));
        assert_eq!(
            parse(&[&[0x91], b"mp4a", &[1, 2, 3]]),
            Ok(AudioTag::Frame {
                codec: AudioCodec::Aac,
                data: Bytes::from_static(&[1, 2, 3]),
            })
        );
        assert_eq!(
            parse(&[&[0x92], b"mp4a"]),
            Ok(AudioTag::EndOfSequence {
                codec: AudioCodec::Aac
            })
        );
        assert_eq!(
            parse(&[&[0x94], b"mp4a", &[0, 2]]),
            Ok(AudioTag::Ignored(Ignored::MultichannelConfig))
        );
    }

    #[test]
    fn enhanced_other_fourccs_are_unsupported() {
        for cc in [b"Opus", b".mp3", b"ac-3", b"ec-3", b"fLaC"] {
            assert_eq!(
                parse(&[&[0x90], cc, &[1]]),
                Err(FlvError::UnsupportedCodec {
                    track: TrackKind::Audio,
                    codec: CodecId::FourCc(*cc),
                })
            );
        }
    }

    #[test]
    fn enhanced_mod_ex_and_multitrack() {
        // ModEx (size 1, data), then CodedFrames.
        assert!(matches!(
            parse(&[&[0x97, 0, 0xaa, 0x01], b"mp4a", &[5]]),
            Ok(AudioTag::Frame { .. })
        ));
        // Multitrack ManyTracks CodedFrames mp4a: track 3 (1 byte), track 0 (2 bytes).
        assert_eq!(
            parse(&[
                &[0x95, 0x11],
                b"mp4a",
                &[3, 0, 0, 1, 9],
                &[0, 0, 0, 2, 4, 4]
            ]),
            Ok(AudioTag::Frame {
                codec: AudioCodec::Aac,
                data: Bytes::from_static(&[4, 4]),
            })
        );
        // ManyTracksManyCodecs: the default track is Opus → unsupported.
        assert!(matches!(
            parse(&[&[0x95, 0x21], b"Opus", &[0, 0, 0, 1, 9]]),
            Err(FlvError::UnsupportedCodec { .. })
        ));
        assert_eq!(
            parse(&[&[0x95, 0x11], b"mp4a", &[1, 0, 0, 1, 9]]),
            Ok(AudioTag::Ignored(Ignored::OtherTrack))
        );
    }

    proptest! {
        #[test]
        fn random_bodies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_audio_tag(&Bytes::from(data));
        }

        #[test]
        fn random_enhanced_bodies_never_panic(
            low in 0u8..16,
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = parse(&[&[0x90 | low], b"mp4a", &data]);
        }
    }
}
