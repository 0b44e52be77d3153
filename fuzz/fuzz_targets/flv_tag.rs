//! One FLV / RTMP audio or video tag body (`liverec_media::flv`), legacy or Enhanced RTMP:
//! what every media message of a publish goes through. A decoder configuration that parses
//! is then opened by each muxer, as a recording would.
//!
//! Invariants: frame payloads are non-empty slices of the body (zero copy), composition
//! offsets fit the 24-bit field; a config some muxer accepts writes a header that reads back
//! (FLV: the same config; fMP4: a `moov` that recovery accepts).

#![no_main]

use std::io::Cursor;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use liverec_media::flv::{AudioTag, VideoTag, parse_audio_tag, parse_video_tag, read_file_frames};
use liverec_media::{Tracks, VideoConfig};
use liverec_mux::{flv, fmp4, ts};

fn inside(part: &Bytes, whole: &Range<*const u8>) -> bool {
    let range = part.as_ptr_range();
    part.is_empty() || (whole.start <= range.start && range.end <= whole.end)
}

/// Opens every muxer with `tracks` and checks what they write up front.
fn open_muxers(tracks: &Tracks) {
    let mut header = BytesMut::new();
    let mut muxer = flv::Muxer::new(tracks);
    muxer.header(&mut header);
    match read_file_frames(&header) {
        Ok(media) => assert_eq!(&media.tracks, tracks, "the FLV header changes the config"),
        Err(err) => panic!("the FLV muxer's header does not read back: {err}"),
    }

    for mode in [fmp4::Mode::File, fmp4::Mode::Cmaf] {
        let Ok(mut muxer) = fmp4::Muxer::new(tracks, mode) else {
            continue;
        };
        let mut init = BytesMut::new();
        if muxer.init(&mut init).is_err() {
            assert!(init.is_empty(), "a failed init left bytes behind");
            continue;
        }
        match fmp4::recover(&mut Cursor::new(&init[..])) {
            Ok(recovery) => {
                assert_eq!(recovery.valid_len, init.len() as u64);
                assert_eq!(recovery.fragment_count, 0);
            }
            Err(err) => panic!("recovery refuses the muxer's own init segment: {err}"),
        }
    }

    if let Ok(mut muxer) = ts::Muxer::new(tracks) {
        let mut out = BytesMut::new();
        muxer.start_segment(&mut out);
        assert_eq!(out.len() % ts::PACKET_SIZE, 0);
    }
}

fn check_video_config(config: &VideoConfig, body: &Range<*const u8>) {
    assert!(inside(&config.record, body));
    assert!(config.parameter_sets.iter().all(|p| inside(p, body)));
    let tracks = Tracks {
        video: Some(Arc::new(config.clone())),
        audio: None,
    };
    open_muxers(&tracks);
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    let range = body.as_ptr_range();
    if kind & 1 == 0 {
        match parse_video_tag(&body) {
            Ok(VideoTag::Frame { cts, data, .. }) => {
                assert!(!data.is_empty() && inside(&data, &range));
                assert!((-(1 << 23)..(1 << 23)).contains(&cts));
            }
            Ok(VideoTag::SequenceHeader(config)) => check_video_config(&config, &range),
            Ok(VideoTag::EndOfSequence { .. } | VideoTag::Ignored(_)) | Err(_) => {}
        }
    } else {
        match parse_audio_tag(&body) {
            Ok(AudioTag::Frame { data, .. }) => assert!(!data.is_empty() && inside(&data, &range)),
            Ok(AudioTag::SequenceHeader(config)) => {
                assert!(inside(&config.specific, &range));
                let tracks = Tracks {
                    video: None,
                    audio: Some(Arc::new(config)),
                };
                open_muxers(&tracks);
            }
            Ok(AudioTag::EndOfSequence { .. } | AudioTag::Ignored(_)) | Err(_) => {}
        }
    }
});
