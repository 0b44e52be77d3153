//! The fragmented-MP4 muxer (`liverec_mux::fmp4`) fed a frame script (see
//! `liverec_fuzz::parse_script`), in both of the recorder's uses: an MP4 recording file
//! (flags bit 1 clear) and CMAF segments for HLS (bit 1 set).
//!
//! Invariants: `bytes_written` counts every byte written; the finish patches lie inside the
//! file. A recording file: recovery of the finished file, and of the same file cut just before
//! its `mfra` (a crash at finish), computes exactly the `mfra` and patches that finish wrote.
//! CMAF: segment recovery keeps every byte and fragment of each segment.

#![no_main]

use std::io::Cursor;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use liverec_fuzz::{Script, Step, apply_patches, parse_script};
use liverec_mux::MuxOut;
use liverec_mux::fmp4::{Mode, Muxer, recover, recover_segment};

/// Flags bit: CMAF segments instead of one recording file.
const FLAG_CMAF: u8 = 0x02;

/// An output that keeps payloads by reference, as the recorder's spool files do.
#[derive(Default)]
struct SharedOut {
    head: BytesMut,
    parts: Vec<Bytes>,
    parts_len: usize,
}

impl MuxOut for SharedOut {
    fn head(&mut self) -> &mut BytesMut {
        &mut self.head
    }

    fn payload(&mut self, data: &Bytes) {
        let head = self.head.split().freeze();
        self.parts_len += head.len() + data.len();
        self.parts.push(head);
        self.parts.push(data.clone());
    }
}

impl SharedOut {
    fn len(&self) -> usize {
        self.parts_len + self.head.len()
    }

    fn concat(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len());
        for part in &self.parts {
            all.extend_from_slice(part);
        }
        all.extend_from_slice(&self.head);
        all
    }
}

fn recording_file(script: &Script) {
    let Ok(mut muxer) = Muxer::new(&script.tracks, Mode::File) else {
        return;
    };
    let mut out = BytesMut::new();
    if muxer.init(&mut out).is_err() {
        assert!(out.is_empty());
        return;
    }
    for step in &script.steps {
        match step {
            Step::Frame(frame) => drop(muxer.push(frame)),
            Step::Flush | Step::Cut => drop(muxer.flush_fragment(&mut out)),
        }
        assert_eq!(muxer.bytes_written(), out.len() as u64);
    }
    let Ok(patches) = muxer.finish(&mut out) else {
        return;
    };
    assert_eq!(muxer.bytes_written(), out.len() as u64);
    let mut file = out.to_vec();
    assert!(
        apply_patches(&mut file, &patches),
        "a patch lies outside the file"
    );

    let finished = match recover(&mut Cursor::new(&file)) {
        Ok(recovery) => recovery,
        Err(err) => panic!("recovery refuses a finished file: {err}"),
    };
    let mfra_at = usize::try_from(finished.valid_len).unwrap_or(usize::MAX);
    assert!(mfra_at <= file.len());
    assert_eq!(
        &finished.tail[..],
        &file[mfra_at..],
        "recovery computes another mfra"
    );
    assert_eq!(finished.patches, patches);
    assert_eq!(finished.fragment_count, muxer.fragment_count());
    assert_eq!(finished.duration_ms, muxer.duration_ms());

    // Killed during finish, after the last fragment: the patches were not applied yet.
    let crashed = &out[..mfra_at];
    match recover(&mut Cursor::new(crashed)) {
        Ok(recovery) => {
            assert_eq!(recovery.valid_len, finished.valid_len);
            assert_eq!(recovery.tail, finished.tail);
            assert_eq!(recovery.patches, patches);
        }
        Err(err) => panic!("recovery refuses a file cut before its mfra: {err}"),
    }
}

fn cmaf_segments(script: &Script) {
    let Ok(mut muxer) = Muxer::new(&script.tracks, Mode::Cmaf) else {
        return;
    };
    let mut init = BytesMut::new();
    if muxer.init(&mut init).is_err() {
        return;
    }
    // Each segment and how many fragments went into it, and the bytes of the closed ones.
    let mut segments = vec![(SharedOut::default(), 0u64)];
    let mut closed_bytes = init.len();
    for step in &script.steps {
        let Some((segment, fragments)) = segments.last_mut() else {
            return;
        };
        match step {
            Step::Frame(frame) => drop(muxer.push(frame)),
            Step::Flush | Step::Cut => {
                if let Ok(Some(_)) = muxer.flush_fragment(segment) {
                    *fragments += 1;
                }
                if matches!(step, Step::Cut) {
                    closed_bytes += segment.len();
                    segments.push((SharedOut::default(), 0));
                }
            }
        }
        let open_bytes = segments.last().map_or(0, |(s, _)| s.len());
        assert_eq!(muxer.bytes_written(), (closed_bytes + open_bytes) as u64);
    }
    if let Some((segment, fragments)) = segments.last_mut() {
        let before = segment.len();
        if muxer.finish(segment).is_err() {
            return;
        }
        if segment.len() > before {
            *fragments += 1;
        }
    }
    for (segment, fragments) in &segments {
        let bytes = segment.concat();
        match recover_segment(&mut Cursor::new(&init[..]), &mut Cursor::new(&bytes)) {
            Ok(found) => {
                assert_eq!(
                    found.valid_len,
                    bytes.len() as u64,
                    "recovery drops part of a segment"
                );
                assert_eq!(found.fragment_count, *fragments);
            }
            Err(err) => panic!("recovery refuses a whole segment: {err}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let script = parse_script(data);
    if script.flags & FLAG_CMAF == 0 {
        recording_file(&script);
    } else {
        cmaf_segments(&script);
    }
});
