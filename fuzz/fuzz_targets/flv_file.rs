//! A whole FLV file in memory (`liverec_media::flv::FileReader`, `read_file_frames`), and its
//! media timestamps through the ingest's `Normalizer`.
//!
//! Invariants: tags come in file order inside the file; normalised timestamps never go
//! backwards within a track.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use liverec_media::TrackKind;
use liverec_media::flv::{FileReader, TAG_HEADER_LEN, TagKind, read_file_frames};
use liverec_media::timestamp::Normalizer;

fuzz_target!(|data: &[u8]| {
    let file = Bytes::copy_from_slice(data);
    let Ok(reader) = FileReader::new(file.clone()) else {
        return;
    };
    let mut next_offset = 0u64;
    let mut normalizer = Normalizer::new();
    let mut last = [None::<i64>; 2];
    for tag in reader {
        let Ok(tag) = tag else {
            break;
        };
        assert!(tag.offset >= next_offset, "tags out of file order");
        let body_end = tag.offset + (TAG_HEADER_LEN + tag.body.len()) as u64;
        assert!(body_end <= data.len() as u64);
        next_offset = body_end;
        let track = match tag.kind {
            TagKind::Video => TrackKind::Video,
            TagKind::Audio => TrackKind::Audio,
            TagKind::Script => continue,
        };
        let dts = normalizer.normalize(track, tag.timestamp);
        let slot = &mut last[usize::from(track == TrackKind::Video)];
        if let Some(previous) = *slot {
            assert!(
                dts >= previous,
                "normalised {track:?} time went back: {previous} → {dts}"
            );
        }
        *slot = Some(dts);
    }
    let _ = read_file_frames(data);
});
