//! The FLV reader and tag parsers against the real files in `tests/.assets/` (written by
//! Debian ffmpeg 5.1 and ffmpeg 9: legacy FLV for H.264/AAC, Enhanced FLV for HEVC/AV1).

use liverec_media::flv::{
    AudioTag, Ignored, TagKind, VideoTag, parse_audio_tag, parse_video_tag, read_file_frames,
    read_file_tags,
};
use liverec_media::{TrackKind, VideoCodec};
use liverec_testkit::asset_bytes;

/// 10 s at 25 fps.
const VIDEO_FRAMES: usize = 250;
/// GOP of 25 frames.
const KEYFRAMES: usize = 10;
/// 10 s of 44.1 kHz audio in 1024-sample frames (ffmpeg adds priming: allow a little more).
const AUDIO_FRAMES_MIN: usize = 430;
const AUDIO_FRAMES_MAX: usize = 434;

struct Counts {
    video: usize,
    keyframes: usize,
    audio: usize,
    ignored: usize,
    video_codec: Option<VideoCodec>,
    nonzero_cts: usize,
}

fn count(name: &str) -> Counts {
    let data = asset_bytes(name);
    let mut c = Counts {
        video: 0,
        keyframes: 0,
        audio: 0,
        ignored: 0,
        video_codec: None,
        nonzero_cts: 0,
    };
    for tag in read_file_tags(&data) {
        let tag = tag.expect("tag");
        match tag.kind {
            TagKind::Video => match parse_video_tag(&tag.body).expect("video tag") {
                VideoTag::SequenceHeader(cfg) => {
                    assert_eq!((cfg.width, cfg.height), (320, 240), "{name}");
                    c.video_codec = Some(cfg.codec);
                }
                VideoTag::Frame {
                    codec,
                    keyframe,
                    cts,
                    data,
                } => {
                    assert_eq!(Some(codec), c.video_codec, "{name}: frame before config");
                    assert!(!data.is_empty());
                    c.video += 1;
                    c.keyframes += usize::from(keyframe);
                    c.nonzero_cts += usize::from(cts != 0);
                    if c.video == 1 {
                        assert!(keyframe, "{name}: first frame is not a keyframe");
                    }
                }
                VideoTag::EndOfSequence { .. } => {}
                VideoTag::Ignored(reason) => {
                    assert_eq!(reason, Ignored::Metadata, "{name}");
                    c.ignored += 1;
                }
            },
            TagKind::Audio => match parse_audio_tag(&tag.body).expect("audio tag") {
                AudioTag::SequenceHeader(cfg) => {
                    assert_eq!(
                        (cfg.sample_rate, cfg.channels, cfg.object_type),
                        (44_100, 1, 2)
                    );
                }
                AudioTag::Frame { .. } => c.audio += 1,
                other => panic!("{name}: unexpected {other:?}"),
            },
            TagKind::Script => {}
        }
    }
    c
}

#[test]
fn h264_aac_legacy_flv() {
    let c = count("h264_aac.flv");
    assert_eq!(c.video_codec, Some(VideoCodec::H264));
    assert_eq!(c.video, VIDEO_FRAMES);
    assert_eq!(c.keyframes, KEYFRAMES);
    assert!(c.nonzero_cts > 0, "B-frames give composition offsets");
    assert!(
        (AUDIO_FRAMES_MIN..=AUDIO_FRAMES_MAX).contains(&c.audio),
        "{}",
        c.audio
    );
}

#[test]
fn hevc_aac_enhanced_flv() {
    let c = count("hevc_aac.flv");
    assert_eq!(c.video_codec, Some(VideoCodec::H265));
    assert_eq!(c.video, VIDEO_FRAMES);
    assert_eq!(c.keyframes, KEYFRAMES);
    assert!(c.nonzero_cts > 0);
    assert!(c.ignored > 0, "ffmpeg 9 writes colorInfo metadata");
    assert!((AUDIO_FRAMES_MIN..=AUDIO_FRAMES_MAX).contains(&c.audio));
}

#[test]
fn av1_aac_enhanced_flv() {
    let c = count("av1_aac.flv");
    assert_eq!(c.video_codec, Some(VideoCodec::Av1));
    assert_eq!(c.video, VIDEO_FRAMES);
    assert_eq!(c.keyframes, KEYFRAMES);
    assert_eq!(
        c.nonzero_cts, 0,
        "av01 coded frames carry no composition time"
    );
    assert!((AUDIO_FRAMES_MIN..=AUDIO_FRAMES_MAX).contains(&c.audio));
}

#[test]
fn single_track_files() {
    let c = count("h264_only.flv");
    assert_eq!((c.video, c.audio), (VIDEO_FRAMES, 0));
    let c = count("aac_only.flv");
    assert_eq!((c.video, c.audio, c.video_codec), (0, c.audio, None));
    assert!((AUDIO_FRAMES_MIN..=AUDIO_FRAMES_MAX).contains(&c.audio));
}

#[test]
fn read_file_frames_gives_tracks_and_monotonic_dts() {
    for name in ["h264_aac.flv", "hevc_aac.flv", "av1_aac.flv"] {
        let media = read_file_frames(&asset_bytes(name)).expect(name);
        let video = media.tracks.video.as_ref().expect("video track");
        assert_eq!(video.width, 320);
        assert!(media.tracks.audio.is_some());
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let dts: Vec<i64> = media
                .frames
                .iter()
                .filter(|f| f.track == kind)
                .map(|f| f.dts)
                .collect();
            assert!(dts.windows(2).all(|w| w[0] <= w[1]), "{name} {kind:?}");
            assert!(dts.last().copied().unwrap_or(0) >= 9_900, "{name} {kind:?}");
        }
    }
}

#[test]
fn every_truncation_of_a_real_file_is_handled() {
    let data = asset_bytes("hevc_aac.flv");
    // Every cut in the first 8 KiB plus a stride through the rest: no panic, at most one error.
    let cuts = (0..8192).chain((8192..data.len()).step_by(997));
    for cut in cuts {
        let items: Vec<_> = read_file_tags(&data[..cut]).collect();
        let errors = items.iter().filter(|i| i.is_err()).count();
        assert!(errors <= 1, "cut {cut}");
        for tag in items.into_iter().flatten() {
            match tag.kind {
                TagKind::Video => {
                    let _ = parse_video_tag(&tag.body);
                }
                TagKind::Audio => {
                    let _ = parse_audio_tag(&tag.body);
                }
                TagKind::Script => {}
            }
        }
    }
}
