//! Recovery of HLS TS segments (`liverec_recorder::recovery::scan_ts_segment`) on arbitrary
//! files, whole or torn (cut mid-write: the last PES is dropped).
//!
//! Input: the first byte says torn (bit 0); the rest is the segment.
//!
//! Invariants: it keeps whole packets and at most the file; what it keeps scans again, as an
//! untorn segment, to the same length.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use liverec_mux::ts::PACKET_SIZE;
use liverec_recorder::recovery::scan_ts_segment;

fuzz_target!(|data: &[u8]| {
    let Some((&switches, segment)) = data.split_first() else {
        return;
    };
    let torn = switches & 1 != 0;
    let Ok(Some((kept, duration_ms))) = scan_ts_segment(&mut Cursor::new(segment), torn) else {
        return;
    };
    assert!(kept <= segment.len() as u64);
    assert_eq!(kept % PACKET_SIZE as u64, 0);
    let kept_bytes = &segment[..usize::try_from(kept).unwrap_or(usize::MAX)];
    match scan_ts_segment(&mut Cursor::new(kept_bytes), false) {
        Ok(Some((again, again_ms))) => {
            assert_eq!((again, again_ms), (kept, duration_ms));
        }
        Ok(None) => panic!("a kept segment has no duration when scanned again"),
        Err(err) => panic!("scanning in memory failed: {err}"),
    }
});
