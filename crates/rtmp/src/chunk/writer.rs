//! Chunk stream writer: messages in, chunks appended to a `BytesMut` (sans-IO).

use bytes::{Buf, BufMut, BytesMut};

use super::{DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CHUNK_SIZE, MAX_CSID};
use crate::message::type_id;

/// Header state of one outgoing chunk stream, for header compression.
#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    timestamp: u32,
    /// Last timestamp field written (absolute for format 0, delta otherwise).
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Cuts messages into chunks with the smallest header that the reader can expand, the way
/// ffmpeg does: format 3 for a new message only when the timestamp field repeats.
#[derive(Debug)]
pub struct Writer {
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    repeat_extended: bool,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            repeat_extended: true,
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Whether format-3 continuation chunks repeat an extended timestamp (ffmpeg and librtmp
    /// do; default true). Off only to test readers against encoders that do not.
    pub fn set_repeat_extended_timestamp(&mut self, repeat: bool) {
        self.repeat_extended = repeat;
    }

    /// Writes a SetChunkSize message (in the old size) and switches to `size`, clamped to
    /// `1..=MAX_CHUNK_SIZE` so the peer's reader accepts it.
    pub fn write_set_chunk_size(&mut self, size: u32, out: &mut BytesMut) {
        let size = size.clamp(1, MAX_CHUNK_SIZE);
        self.write(2, 0, type_id::SET_CHUNK_SIZE, 0, &size.to_be_bytes(), out);
        self.chunk_size = size;
    }

    /// Appends `payload` as one message on chunk stream `csid` (clamped to `2..=MAX_CSID`).
    /// Payloads longer than the 24-bit length field are the caller's bug; they are cut short.
    pub fn write(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        self.write_parts(csid, timestamp, type_id, stream_id, &[], payload, out);
    }

    /// [`Writer::write`] of the message `head` followed by `payload`, without joining them
    /// first (a tag's few head bytes and a frame's shared payload).
    #[allow(clippy::too_many_arguments)]
    pub fn write_parts(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        head: &[u8],
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let csid = csid.clamp(2, MAX_CSID);
        const MAX_LEN: usize = 0x00FF_FFFF;
        let head = head.get(..MAX_LEN).unwrap_or(head);
        let payload = payload.get(..MAX_LEN - head.len()).unwrap_or(payload);
        let total = head.len() + payload.len();
        let length = total as u32;
        let existing = self.streams.iter().position(|s| s.csid == csid);
        let index = existing.unwrap_or_else(|| {
            self.streams.push(ChunkStream {
                csid,
                timestamp,
                ts_field: 0,
                length,
                type_id,
                stream_id,
            });
            self.streams.len() - 1
        });
        let Some(state) = self.streams.get_mut(index) else {
            return;
        };
        // Format 0 for the first message of a chunk stream, another message stream, or a
        // timestamp that goes backwards (deltas are unsigned).
        let (fmt, ts_field) =
            if existing.is_none() || state.stream_id != stream_id || timestamp < state.timestamp {
                (0u8, timestamp)
            } else {
                let delta = timestamp.wrapping_sub(state.timestamp);
                if state.length != length || state.type_id != type_id {
                    (1, delta)
                } else if delta != state.ts_field {
                    (2, delta)
                } else {
                    (3, delta)
                }
            };
        state.timestamp = timestamp;
        state.ts_field = ts_field;
        state.length = length;
        state.type_id = type_id;
        state.stream_id = stream_id;
        let extended = ts_field >= EXTENDED_TIMESTAMP;

        let chunks = total.div_ceil(self.chunk_size as usize).max(1);
        out.reserve(total + 18 + (chunks - 1) * 8);
        put_basic_header(fmt, csid, out);
        let field = if extended {
            EXTENDED_TIMESTAMP
        } else {
            ts_field
        };
        if fmt <= 2 {
            put_u24(field, out);
        }
        if fmt <= 1 {
            put_u24(length, out);
            out.put_u8(type_id);
        }
        if fmt == 0 {
            out.put_u32_le(stream_id);
        }
        if extended {
            out.put_u32(ts_field);
        }
        let mut body = head.chain(payload);
        let mut first = true;
        while first || body.has_remaining() {
            if !first {
                put_basic_header(3, csid, out);
                if extended && self.repeat_extended {
                    out.put_u32(ts_field);
                }
            }
            first = false;
            out.put((&mut body).take(self.chunk_size as usize));
        }
    }
}

fn put_basic_header(fmt: u8, csid: u32, out: &mut BytesMut) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid - 64;
            out.put_u8(fmt | 1);
            out.put_u8((id & 0xFF) as u8);
            out.put_u8((id >> 8) as u8);
        }
    }
}

fn put_u24(value: u32, out: &mut BytesMut) {
    out.put_slice(&value.to_be_bytes()[1..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_in_two_parts_is_chunked_as_one() {
        let head = [9u8, 1, 2];
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let joined: Vec<u8> = head.iter().chain(&payload).copied().collect();
        for chunk_size in [1, 2, 3, 4, 128, 303, 4096] {
            let (mut a, mut b) = (Writer::new(), Writer::new());
            let (mut out_a, mut out_b) = (BytesMut::new(), BytesMut::new());
            a.write_set_chunk_size(chunk_size, &mut out_a);
            b.write_set_chunk_size(chunk_size, &mut out_b);
            a.write(6, 70_000_000, type_id::VIDEO, 1, &joined, &mut out_a);
            b.write_parts(
                6,
                70_000_000,
                type_id::VIDEO,
                1,
                &head,
                &payload,
                &mut out_b,
            );
            assert_eq!(out_a, out_b, "chunk size {chunk_size}");
        }
        let (mut a, mut b) = (Writer::new(), Writer::new());
        let (mut out_a, mut out_b) = (BytesMut::new(), BytesMut::new());
        a.write(6, 0, type_id::VIDEO, 1, &[], &mut out_a);
        b.write_parts(6, 0, type_id::VIDEO, 1, &[], &[], &mut out_b);
        assert_eq!(out_a, out_b, "an empty message is one chunk header");
    }

    #[test]
    fn first_message_uses_format_0_then_compresses() {
        let mut w = Writer::new();
        let mut out = BytesMut::new();
        w.write(4, 1000, 8, 1, b"ab", &mut out);
        assert_eq!(
            &out[..],
            &[0x04, 0, 0x03, 0xE8, 0, 0, 2, 8, 1, 0, 0, 0, b'a', b'b']
        );
        out.clear();
        w.write(4, 1023, 8, 1, b"cd", &mut out);
        assert_eq!(&out[..], &[0x84, 0, 0, 23, b'c', b'd']);
        out.clear();
        w.write(4, 1046, 8, 1, b"ef", &mut out);
        assert_eq!(&out[..], &[0xC4, b'e', b'f']);
        out.clear();
        w.write(4, 1069, 8, 1, b"ghi", &mut out);
        assert_eq!(&out[..], &[0x44, 0, 0, 23, 0, 0, 3, 8, b'g', b'h', b'i']);
        out.clear();
        w.write(4, 5, 8, 1, b"j", &mut out);
        assert_eq!(out[0] >> 6, 0, "backwards timestamp restarts with format 0");
    }

    #[test]
    fn long_messages_are_cut_with_format_3_and_repeat_extended_timestamps() {
        let mut w = Writer::new();
        let mut out = BytesMut::new();
        let payload = [1u8; 200];
        w.write(6, 0x0100_0000, 9, 1, &payload, &mut out);
        let ext = 0x0100_0000u32.to_be_bytes();
        assert_eq!(&out[..4], &[0x06, 0xFF, 0xFF, 0xFF]);
        assert_eq!(&out[12..16], &ext);
        let cont = 16 + 128;
        assert_eq!(out[cont], 0xC6);
        assert_eq!(&out[cont + 1..cont + 5], &ext);
        assert_eq!(out.len(), cont + 5 + 72);
    }

    #[test]
    fn large_chunk_stream_ids_use_long_basic_headers() {
        let mut out = BytesMut::new();
        put_basic_header(0, 100, &mut out);
        put_basic_header(3, 65_599, &mut out);
        assert_eq!(&out[..], &[0x00, 36, 0xC1, 0xFF, 0xFF]);
    }

    #[test]
    fn set_chunk_size_is_sent_in_the_old_size_then_used() {
        let mut w = Writer::new();
        let mut out = BytesMut::new();
        w.write_set_chunk_size(4096, &mut out);
        assert_eq!(
            &out[..],
            &[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0]
        );
        assert_eq!(w.chunk_size(), 4096);
        out.clear();
        w.write(3, 0, 20, 0, &[0u8; 300], &mut out);
        assert_eq!(out.len(), 12 + 300, "one chunk");
    }
}
