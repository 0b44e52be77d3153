//! The RTMP chunk stream reader (`liverec_rtmp::chunk::Reader`): arbitrary bytes after the
//! handshake, delivered in pieces.
//!
//! Invariants: reading in pieces gives the same messages (and the same error) as reading
//! everything at once; a read never consumes more than it was given and never yields a
//! message over the limits; the messages re-encoded with `chunk::Writer` read back the same.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use liverec_fuzz::Input;
use liverec_rtmp::chunk::{ChunkReadError, MAX_CHUNK_SIZE, MAX_MESSAGE_LENGTH, Reader, Writer};
use liverec_rtmp::message::{Message, type_id};

/// Every message `reader` returns for `wire` fed `piece` bytes at a time, and the error that
/// ended the stream, if any.
fn read_in_pieces(wire: &[u8], piece: usize) -> (Vec<Message>, Option<ChunkReadError>) {
    let mut reader = Reader::new();
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for chunk in wire.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            let result = reader.read(&mut buf);
            assert!(buf.len() <= before, "the reader grew its input");
            match result {
                Ok(Some(message)) => {
                    assert!(message.payload.len() <= MAX_MESSAGE_LENGTH as usize);
                    assert!(reader.chunk_size() <= MAX_CHUNK_SIZE);
                    messages.push(message);
                }
                Ok(None) => break,
                Err(err) => return (messages, Some(err)),
            }
        }
    }
    (messages, None)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let piece = usize::from(input.u8()) + 1;
    let wire = input.rest();

    let (whole, whole_err) = read_in_pieces(wire, wire.len().max(1));
    let (pieces, pieces_err) = read_in_pieces(wire, piece);
    assert_eq!(whole, pieces, "messages depend on how the bytes arrive");
    assert_eq!(whole_err, pieces_err);

    // Re-encode what was read (control messages that change the chunk layer itself left out)
    // and read it back.
    let media: Vec<&Message> = whole
        .iter()
        .filter(|m| !matches!(m.type_id, type_id::SET_CHUNK_SIZE | type_id::ABORT))
        .collect();
    let mut writer = Writer::new();
    let mut wire2 = BytesMut::new();
    for m in &media {
        writer.write(
            m.csid,
            m.timestamp,
            m.type_id,
            m.stream_id,
            &m.payload,
            &mut wire2,
        );
    }
    // Lookahead for the reader: a last continuation chunk is only known to be whole once
    // 4 more bytes show it has no repeated extended timestamp.
    // On a chunk stream already in use: a new one could pass the reader's limit.
    let end_csid = media.last().map_or(3, |m| m.csid);
    writer.write(end_csid, 0, type_id::COMMAND_AMF0, 0, b"end!", &mut wire2);
    let (again, again_err) = read_in_pieces(&wire2, wire2.len());
    assert_eq!(again_err, None, "the writer's output does not read back");
    let again: Vec<&Message> = again.iter().take(media.len()).collect();
    assert_eq!(again, media, "re-encoded messages differ");
});
