//! The MPEG-TS muxer (`liverec_mux::ts`) fed a frame script (see
//! `liverec_fuzz::parse_script`), cut into HLS segments at the script's cuts as the recorder
//! does, then each segment through the recorder's TS recovery scan and into a playlist.
//!
//! Invariants: a refused frame writes nothing; output is whole 188-byte packets with the sync
//! byte, counted by `bytes_written`; continuity counters advance by one per payload packet
//! of each PID across the whole recording; recovery keeps a whole untorn segment.

#![no_main]

use std::collections::HashMap;
use std::io::Cursor;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use liverec_fuzz::{Step, parse_script};
use liverec_mux::hls::MediaPlaylist;
use liverec_mux::ts::{Muxer, PACKET_SIZE};
use liverec_recorder::recovery::scan_ts_segment;

const SYNC_BYTE: u8 = 0x47;

fuzz_target!(|data: &[u8]| {
    let script = parse_script(data);
    let Ok(mut muxer) = Muxer::new(&script.tracks) else {
        return;
    };
    let mut segments = vec![BytesMut::new()];
    let mut total = 0usize;
    if let Some(first) = segments.last_mut() {
        muxer.start_segment(first);
    }
    for step in &script.steps {
        let Some(segment) = segments.last_mut() else {
            return;
        };
        match step {
            Step::Frame(frame) => {
                let before = segment.len();
                if muxer.push(frame, segment).is_err() {
                    assert_eq!(segment.len(), before, "a refused frame left bytes");
                }
            }
            Step::Cut => {
                total += segment.len();
                let mut next = BytesMut::new();
                muxer.start_segment(&mut next);
                segments.push(next);
            }
            Step::Flush => {}
        }
    }
    total += segments.last().map_or(0, BytesMut::len);
    assert_eq!(muxer.bytes_written(), total as u64);

    let mut continuity: HashMap<u16, u8> = HashMap::new();
    let mut playlist = MediaPlaylist::new();
    for (n, segment) in segments.iter().enumerate() {
        assert_eq!(segment.len() % PACKET_SIZE, 0);
        for packet in segment.chunks(PACKET_SIZE) {
            assert_eq!(packet[0], SYNC_BYTE);
            let pid = u16::from_be_bytes([packet[1] & 0x1f, packet[2]]);
            let has_payload = packet[3] & 0x10 != 0;
            let cc = packet[3] & 0x0f;
            if has_payload && let Some(last) = continuity.insert(pid, cc) {
                assert_eq!(
                    cc,
                    (last + 1) % 16,
                    "continuity counter of PID {pid:#x} skips"
                );
            }
        }
        match scan_ts_segment(&mut Cursor::new(&segment[..]), false) {
            Ok(Some((kept, duration_ms))) => {
                assert_eq!(
                    kept,
                    segment.len() as u64,
                    "recovery cuts an untorn segment"
                );
                playlist.push(format!("{n}.ts"), duration_ms as f64 / 1000.0);
            }
            Ok(None) => {}
            Err(err) => panic!("scanning a segment in memory failed: {err}"),
        }
    }
    let text = playlist.to_m3u8();
    assert_eq!(text.matches("#EXTINF").count(), playlist.segments.len());
});
