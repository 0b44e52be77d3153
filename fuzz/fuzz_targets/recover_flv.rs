//! Crash recovery of FLV recordings (`liverec_recorder::recovery::scan_flv`) on arbitrary
//! files: finds the end of the last whole tag and the media time up to it.
//!
//! Invariants: it keeps at most the file, never less than it scanned past; the kept part
//! scans again to the same result.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use liverec_recorder::recovery::scan_flv;

fuzz_target!(|data: &[u8]| {
    let Ok((valid_len, duration_ms)) = scan_flv(&mut Cursor::new(data)) else {
        return;
    };
    assert!(valid_len <= data.len() as u64, "keeps more than the file");
    let kept = &data[..usize::try_from(valid_len).unwrap_or(usize::MAX)];
    match scan_flv(&mut Cursor::new(kept)) {
        Ok(again) => assert_eq!(again, (valid_len, duration_ms)),
        Err(err) => panic!("a recovered FLV does not scan again: {err}"),
    }
});
