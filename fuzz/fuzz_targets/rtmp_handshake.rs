//! The server side of the RTMP handshake (`liverec_rtmp::handshake`), fed C0+C1+C2 and what
//! follows in pieces, as a socket delivers them.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use liverec_fuzz::Input;
use liverec_rtmp::handshake::digest::{DIGEST_LEN, GENUINE_FMS_KEY, packet_digest};
use liverec_rtmp::handshake::{Handshake, Kind, PACKET_SIZE, RTMP_VERSION};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    // First byte: the size of the pieces the bytes arrive in.
    let piece = usize::from(input.u8()) * 16 + 1;
    let wire = input.rest();

    let mut handshake = Handshake::new();
    let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
    let mut fed = 0;
    let mut done = false;
    for chunk in wire.chunks(piece) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        match handshake.advance(&mut buf, &mut out) {
            Ok(finished) => done = finished,
            Err(_) => return,
        }
        let consumed = fed - buf.len();
        // It only ever takes its own bytes: C0+C1, then C2.
        assert!(consumed <= 1 + 2 * PACKET_SIZE);
        assert!(out.is_empty() || out.len() == 1 + 2 * PACKET_SIZE);
        assert_eq!(out.is_empty(), consumed < 1 + PACKET_SIZE);
        assert_eq!(done, consumed == 1 + 2 * PACKET_SIZE);
        if done {
            break;
        }
    }
    if out.is_empty() {
        return;
    }
    assert_eq!(out[0], RTMP_VERSION);
    let c1 = &wire[1..1 + PACKET_SIZE];
    let s1: &[u8; PACKET_SIZE] = match out[1..1 + PACKET_SIZE].try_into() {
        Ok(s1) => s1,
        Err(_) => unreachable!("S1 is {PACKET_SIZE} bytes"),
    };
    let s2 = &out[1 + PACKET_SIZE..];
    match handshake.kind() {
        Some(Kind::Simple) => assert_eq!(s2, c1, "a simple S2 echoes C1"),
        Some(Kind::Complex(scheme)) => {
            // What a Flash-style client checks: S1 carries the server digest.
            let offset = scheme.digest_offset(s1);
            assert_eq!(
                s1[offset..offset + DIGEST_LEN],
                packet_digest(s1, offset, GENUINE_FMS_KEY)
            );
        }
        None => panic!("S0+S1+S2 written without a handshake kind"),
    }
    if done {
        // Chunk data that arrived with C2 stays in the buffer.
        let after_c2 = 1 + 2 * PACKET_SIZE;
        assert_eq!(&buf[..], &wire[after_c2..fed]);
    }
});
