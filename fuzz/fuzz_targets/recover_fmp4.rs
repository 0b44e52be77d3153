//! Crash recovery of MP4 recordings (`liverec_mux::fmp4::recover`) and of CMAF segments
//! (`recover_segment`) on arbitrary files: what the recorder runs on whatever a crash left in
//! its spool.
//!
//! Input: u16 length of a CMAF init segment, the init segment, then the media segment; the
//! whole input is also tried as one recording file.
//!
//! Invariants: recovery keeps at most the file; its patches lie inside the kept part; a
//! file finalized as the recorder does (cut, `mfra` appended, patched) recovers to the same
//! `mfra` and patches, so finalizing twice changes nothing.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use liverec_fuzz::{Input, apply_patches};
use liverec_mux::fmp4::{recover, recover_segment};

fuzz_target!(|data: &[u8]| {
    if let Ok(recovery) = recover(&mut Cursor::new(data)) {
        assert_eq!(recovery.file_len, data.len() as u64);
        assert!(recovery.valid_len <= recovery.file_len);
        let kept = usize::try_from(recovery.valid_len).unwrap_or(usize::MAX);
        let mut finalized = data[..kept].to_vec();
        assert!(
            apply_patches(&mut finalized, &recovery.patches),
            "a patch lies outside the kept part"
        );
        finalized.extend_from_slice(&recovery.tail);
        match recover(&mut Cursor::new(&finalized)) {
            Ok(again) => {
                assert_eq!(again.valid_len, recovery.valid_len);
                assert_eq!(again.fragment_count, recovery.fragment_count);
                assert_eq!(again.duration_ms, recovery.duration_ms);
                assert_eq!(again.tail, recovery.tail);
                assert_eq!(again.patches, recovery.patches);
            }
            Err(err) => panic!("a recovered file does not recover again: {err}"),
        }
    }

    let mut input = Input::new(data);
    let init_len = usize::from(input.u16());
    let init = input.take(init_len);
    let segment = input.rest();
    if let Ok(found) = recover_segment(&mut Cursor::new(init), &mut Cursor::new(segment)) {
        assert!(found.valid_len <= segment.len() as u64);
        let kept = usize::try_from(found.valid_len).unwrap_or(usize::MAX);
        // What recovery keeps is a whole segment: scanning it again keeps all of it.
        match recover_segment(&mut Cursor::new(init), &mut Cursor::new(&segment[..kept])) {
            Ok(again) => {
                assert_eq!(again.valid_len, found.valid_len);
                assert_eq!(again.fragment_count, found.fragment_count);
                assert_eq!(again.duration_ms, found.duration_ms);
            }
            Err(err) => panic!("a recovered segment does not recover again: {err}"),
        }
    }
});
