//! The FLV muxer (`liverec_mux::flv`) fed a frame script (see `liverec_fuzz::parse_script`):
//! what an FLV recording writes.
//!
//! Invariants: `bytes_written` is the file's length; the finish patches lie inside the file
//! and fill `onMetaData` with the duration and the file size; the file reads back (with
//! `liverec_media`'s reader) as the same config and exactly the frames the muxer accepted.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use liverec_fuzz::{Step, apply_patches, parse_script};
use liverec_media::flv::{FileReader, TagKind, read_file_frames};
use liverec_media::{Frame, TrackKind, VideoCodec};
use liverec_mux::flv::Muxer;
use liverec_rtmp::amf0;

fuzz_target!(|data: &[u8]| {
    let script = parse_script(data);
    let mut muxer = Muxer::new(&script.tracks);
    let mut out = BytesMut::new();
    muxer.header(&mut out);
    let mut accepted: Vec<Frame> = Vec::new();
    // Tag timestamps count from the first frame the muxer looked at (a non-empty one).
    let mut first_dts = None;
    for step in &script.steps {
        let Step::Frame(frame) = step else {
            continue;
        };
        if !frame.data.is_empty() {
            first_dts.get_or_insert(frame.dts);
        }
        let before = out.len();
        match muxer.push(frame, &mut out) {
            Ok(()) => accepted.push(frame.clone()),
            Err(_) => assert_eq!(out.len(), before, "a refused frame left bytes"),
        }
        assert_eq!(muxer.bytes_written(), out.len() as u64);
    }
    let patches = muxer.finish(&mut out);
    assert_eq!(muxer.bytes_written(), out.len() as u64);
    let mut file = out.to_vec();
    assert!(
        apply_patches(&mut file, &patches),
        "a patch lies outside the file"
    );

    let media = match read_file_frames(&file) {
        Ok(media) => media,
        Err(err) => panic!("the muxer's file does not read back: {err}"),
    };
    assert_eq!(media.tracks, script.tracks);
    assert_eq!(media.frames.len(), accepted.len());
    let base = first_dts.unwrap_or(0);
    let av1 = script
        .tracks
        .video
        .as_ref()
        .is_some_and(|v| v.codec == VideoCodec::Av1);
    for (read, pushed) in media.frames.iter().zip(&accepted) {
        assert_eq!(read.track, pushed.track);
        assert_eq!(read.data, pushed.data);
        assert_eq!(read.dts, pushed.dts.saturating_sub(base).max(0));
        if pushed.track == TrackKind::Video {
            assert_eq!(read.keyframe, pushed.keyframe);
            // AV1 in FLV has no composition time (no reordering), so none is written.
            let cts = if av1 { 0 } else { pushed.cts };
            assert_eq!(read.cts, cts);
        }
    }

    // onMetaData, as patched: the duration in seconds and the file size in bytes.
    let Some(Ok(script_tag)) = FileReader::new(file.into()).ok().and_then(|mut r| r.next()) else {
        panic!("the muxer's file has no onMetaData tag");
    };
    assert_eq!(script_tag.kind, TagKind::Script);
    let values = match amf0::decode_all(&script_tag.body) {
        Ok(values) => values,
        Err(err) => panic!("onMetaData does not decode: {err}"),
    };
    let metadata = values.get(1);
    let number = |key| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_number())
    };
    assert_eq!(number("filesize"), Some(out.len() as f64));
    assert_eq!(
        number("duration"),
        Some(muxer.duration_ms() as f64 / 1000.0)
    );
});
