//! AMF0 decoding (`liverec_rtmp::amf0`): the body of every RTMP command and data message.
//!
//! Invariants: the reader's position never passes the end; whatever decodes re-encodes to
//! bytes that decode again, and that second encoding is stable (invalid UTF-8 and over-long
//! keys are normalised by the first round, not later ones).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use liverec_rtmp::amf0::{self, Reader};

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::new(data);
    while !reader.is_empty() {
        let before = reader.position();
        if reader.read_value().is_err() {
            break;
        }
        assert!(reader.position() > before && reader.position() <= data.len());
    }

    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    let mut first = BytesMut::new();
    amf0::encode_all(&values, &mut first);
    let again = match amf0::decode_all(&first) {
        Ok(again) => again,
        Err(err) => panic!("re-encoded values do not decode: {err}"),
    };
    let mut second = BytesMut::new();
    amf0::encode_all(&again, &mut second);
    assert_eq!(first, second, "encoding is not stable");
});
