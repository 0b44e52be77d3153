//! Chunk stream reader: bytes in, whole messages out (sans-IO).

use bytes::{Buf, Bytes, BytesMut};

use super::{ChunkReadError, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP};
use crate::message::{Message, type_id};

/// Largest chunk size a peer may set. The protocol allows 0x7FFFFFFF; nobody needs more than a
/// few KiB, and a whole chunk must fit in the read buffer.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// Largest message accepted (the header field allows 16 MiB). A 4K keyframe is well below.
pub const MAX_MESSAGE_LENGTH: u32 = 8 * 1024 * 1024;

/// Largest command or shared-object message (they are AMF-decoded; `connect` and `publish` from
/// real encoders take a few hundred bytes).
pub const MAX_COMMAND_MESSAGE_LENGTH: u32 = 32 * 1024;

/// Largest data message (`@setDataFrame`/`onMetaData`, text and cue points), also AMF-decoded.
pub const MAX_DATA_MESSAGE_LENGTH: u32 = 256 * 1024;

/// The largest message of `type_id` accepted: media and aggregates up to
/// [`MAX_MESSAGE_LENGTH`], AMF data up to [`MAX_DATA_MESSAGE_LENGTH`], everything else (commands,
/// shared objects, control, unknown types) up to [`MAX_COMMAND_MESSAGE_LENGTH`].
pub fn max_message_length(type_id: u8) -> u32 {
    match type_id {
        type_id::AUDIO | type_id::VIDEO | type_id::AGGREGATE => MAX_MESSAGE_LENGTH,
        type_id::DATA_AMF0 | type_id::DATA_AMF3 => MAX_DATA_MESSAGE_LENGTH,
        _ => MAX_COMMAND_MESSAGE_LENGTH,
    }
}

/// Bytes the half-received messages of all connections may hold together (a shared
/// [`PartialBudget`]); a connection whose message would go beyond it is closed.
pub const DEFAULT_PARTIAL_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// Memory shared by the partial messages of every connection, counted by declared length.
#[derive(Debug)]
pub struct PartialBudget {
    max: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl PartialBudget {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            used: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn reserve(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.used
            .fetch_update(Relaxed, Relaxed, |used| {
                used.checked_add(n).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self
            .used
            .fetch_update(Relaxed, Relaxed, |used| Some(used.saturating_sub(n)));
    }
}

/// Chunk streams a peer may use. Encoders use fewer than ten.
pub const MAX_CHUNK_STREAMS: usize = 64;

/// Bytes all half-received messages may hold together (counted by their declared lengths,
/// which is what gets allocated).
pub const MAX_PARTIAL_BYTES: usize = 16 * 1024 * 1024;

/// Header state of one chunk stream, inherited by the compressed chunk formats.
#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    /// Timestamp of the current (or last) message.
    timestamp: u32,
    /// Last timestamp field (absolute after format 0, delta after 1 and 2), extended resolved;
    /// a format-3 chunk that starts a message adds it again.
    ts_field: u32,
    /// The last format 0/1/2 header used the extended timestamp field.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    partial: Option<Partial>,
}

/// A message whose first chunks have arrived.
#[derive(Debug)]
struct Partial {
    data: BytesMut,
    remaining: u32,
}

/// What the parsed header of the chunk at the front of the buffer says, before any state changes.
struct Parsed {
    fmt: u8,
    csid: u32,
    /// Index into `streams`, or `None` for a new chunk stream (format 0 only).
    index: Option<usize>,
    header_len: usize,
    payload_len: usize,
    /// For a chunk that starts a message: its fields.
    start: Option<Start>,
}

struct Start {
    timestamp: u32,
    ts_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Size of the blocks that messages of a single chunk (audio frames, small video frames) are
/// copied into, one after the other: one allocation per block rather than two per message (the
/// payload and, when it is first shared, its reference count). A cached frame keeps its block
/// alive, so blocks stay small.
const PAYLOAD_BLOCK_SIZE: usize = 16 * 1024;

impl Drop for Reader {
    /// A connection that ends mid-message gives its reservation back.
    fn drop(&mut self) {
        let held = self.partial_bytes;
        self.release_partial(held);
    }
}

/// Reassembles messages from chunks. Keeps its own chunk size (changed by SetChunkSize
/// messages, which it applies itself before returning them) and header state per chunk stream.
#[derive(Debug)]
pub struct Reader {
    chunk_size: u32,
    streams: Vec<ChunkStream>,
    partial_bytes: usize,
    /// Where `partial_bytes` are also counted, across connections.
    budget: Option<std::sync::Arc<PartialBudget>>,
    /// The free rest of the current payload block.
    block: BytesMut,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            partial_bytes: 0,
            budget: None,
            block: BytesMut::new(),
        }
    }

    /// A reader whose partial messages also count against `budget`.
    pub fn with_budget(budget: std::sync::Arc<PartialBudget>) -> Self {
        let mut reader = Self::new();
        reader.budget = Some(budget);
        reader
    }

    fn release_partial(&mut self, n: usize) {
        let n = n.min(self.partial_bytes);
        self.partial_bytes -= n;
        if let Some(budget) = &self.budget {
            budget.release(n);
        }
    }

    /// A copy of `payload`, carved from the current payload block (a new one when it is full).
    fn copy_payload(&mut self, payload: &[u8]) -> Bytes {
        if payload.len() > PAYLOAD_BLOCK_SIZE / 4 {
            return Bytes::copy_from_slice(payload);
        }
        if self.block.capacity() < payload.len() {
            self.block = BytesMut::with_capacity(PAYLOAD_BLOCK_SIZE);
        }
        self.block.extend_from_slice(payload);
        self.block.split().freeze()
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// True while some message is half received (an end of input here is a truncation).
    pub fn has_partial(&self) -> bool {
        self.streams.iter().any(|s| s.partial.is_some())
    }

    /// Consumes whole chunks from the front of `buf` until a message completes, and returns it.
    /// Returns `Ok(None)` when `buf` holds no whole chunk more; a partial chunk stays in `buf`.
    /// SetChunkSize and Abort take effect here, before the next chunk is read.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ChunkReadError> {
        loop {
            let Some(parsed) = self.parse(buf)? else {
                return Ok(None);
            };
            if let Some(message) = self.commit(parsed, buf)? {
                self.apply_control(&message)?;
                return Ok(Some(message));
            }
        }
    }

    /// Parses the chunk at the front of `buf` without changing anything.
    fn parse(&self, buf: &[u8]) -> Result<Option<Parsed>, ChunkReadError> {
        let mut cur = Cursor { buf, pos: 0 };
        let Some(first) = cur.u8() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let csid = match first & 0x3F {
            0 => match cur.u8() {
                Some(b) => 64 + u32::from(b),
                None => return Ok(None),
            },
            1 => match (cur.u8(), cur.u8()) {
                (Some(lo), Some(hi)) => 64 + u32::from(lo) + 256 * u32::from(hi),
                _ => return Ok(None),
            },
            id => u32::from(id),
        };
        let index = self.streams.iter().position(|s| s.csid == csid);
        let state = index.and_then(|i| self.streams.get(i));
        if fmt != 0 && state.is_none() {
            return Err(ChunkReadError::MissingPreviousHeader { csid, fmt });
        }
        if index.is_none() && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(ChunkReadError::TooManyChunkStreams {
                csid,
                max: MAX_CHUNK_STREAMS,
            });
        }
        let in_progress = state.and_then(|s| s.partial.as_ref());
        if fmt != 3 && in_progress.is_some() {
            return Err(ChunkReadError::HeaderMidMessage { csid, fmt });
        }

        // Message header fields; `None` means inherited.
        let (mut field, mut length, mut type_id, mut stream_id) = (None, None, None, None);
        if fmt <= 2 {
            let Some(ts) = cur.u24() else { return Ok(None) };
            field = Some(ts);
        }
        if fmt <= 1 {
            let (Some(len), Some(ty)) = (cur.u24(), cur.u8()) else {
                return Ok(None);
            };
            length = Some(len);
            type_id = Some(ty);
        }
        if fmt == 0 {
            let Some(sid) = cur.u32_le() else {
                return Ok(None);
            };
            stream_id = Some(sid);
        }

        let (payload_len, start) = if let (Some(partial), Some(state)) = (in_progress, state) {
            // Continuation: format 3 only. ffmpeg and librtmp repeat the extended timestamp in
            // every chunk of the message, other encoders never do: take the 4 bytes only if
            // they equal the value this message started with.
            if state.extended {
                match cur.peek_u32() {
                    None => return Ok(None),
                    Some(v) if v == state.ts_field => cur.pos += 4,
                    Some(_) => {}
                }
            }
            (partial.remaining.min(self.chunk_size), None)
        } else {
            let extended = match field {
                Some(f) => f == EXTENDED_TIMESTAMP,
                None => state.is_some_and(|s| s.extended),
            };
            let value = if extended {
                let Some(v) = cur.u32() else { return Ok(None) };
                v
            } else {
                field.or(state.map(|s| s.ts_field)).unwrap_or(0)
            };
            let start = match state {
                Some(s) => Start {
                    timestamp: if fmt == 0 {
                        value
                    } else {
                        s.timestamp.wrapping_add(value)
                    },
                    ts_field: value,
                    extended,
                    length: length.unwrap_or(s.length),
                    type_id: type_id.unwrap_or(s.type_id),
                    stream_id: stream_id.unwrap_or(s.stream_id),
                },
                None => Start {
                    timestamp: value,
                    ts_field: value,
                    extended,
                    length: length.unwrap_or(0),
                    type_id: type_id.unwrap_or(0),
                    stream_id: stream_id.unwrap_or(0),
                },
            };
            let max = max_message_length(start.type_id);
            if start.length > max {
                return Err(ChunkReadError::MessageTooLong {
                    csid,
                    type_id: start.type_id,
                    length: start.length,
                    max,
                });
            }
            let first_chunk = start.length.min(self.chunk_size);
            if first_chunk < start.length {
                let total = self.partial_bytes.saturating_add(start.length as usize);
                if total > MAX_PARTIAL_BYTES {
                    return Err(ChunkReadError::PartialMessagesTooLarge {
                        csid,
                        total,
                        max: MAX_PARTIAL_BYTES,
                    });
                }
            }
            (first_chunk, Some(start))
        };
        let payload_len = payload_len as usize;
        if buf.len().saturating_sub(cur.pos) < payload_len {
            return Ok(None);
        }
        Ok(Some(Parsed {
            fmt,
            csid,
            index,
            header_len: cur.pos,
            payload_len,
            start,
        }))
    }

    /// Consumes the parsed chunk and updates the chunk stream; returns a completed message.
    fn commit(
        &mut self,
        parsed: Parsed,
        buf: &mut BytesMut,
    ) -> Result<Option<Message>, ChunkReadError> {
        buf.advance(parsed.header_len);
        let index = match parsed.index {
            Some(i) => i,
            None => {
                self.streams.push(ChunkStream {
                    csid: parsed.csid,
                    timestamp: 0,
                    ts_field: 0,
                    extended: false,
                    length: 0,
                    type_id: 0,
                    stream_id: 0,
                    partial: None,
                });
                self.streams.len() - 1
            }
        };
        // Payloads are copied out, never sliced: a slice would keep the whole read buffer alive
        // for as long as the frame lives (GOP cache, queues), and force a new read buffer.
        let payload = buf.get(..parsed.payload_len).unwrap_or_default();
        let whole = parsed
            .start
            .as_ref()
            .is_some_and(|start| parsed.payload_len as u32 == start.length);
        let copied = whole.then(|| self.copy_payload(payload));
        let Some(stream) = self.streams.get_mut(index) else {
            return Err(ChunkReadError::MissingPreviousHeader {
                csid: parsed.csid,
                fmt: parsed.fmt,
            });
        };
        if let Some(start) = parsed.start {
            stream.timestamp = start.timestamp;
            stream.ts_field = start.ts_field;
            stream.extended = start.extended;
            stream.length = start.length;
            stream.type_id = start.type_id;
            stream.stream_id = start.stream_id;
            if let Some(copied) = copied {
                // The whole message in one chunk.
                let message = stream.message(copied);
                buf.advance(parsed.payload_len);
                return Ok(Some(message));
            }
            // Reserved before it is allocated; the reader's error closes the connection.
            if let Some(budget) = &self.budget
                && !budget.reserve(start.length as usize)
            {
                return Err(ChunkReadError::ServerPartialBudget {
                    length: start.length,
                    max: budget.max,
                });
            }
            let mut data = BytesMut::with_capacity(start.length as usize);
            data.extend_from_slice(payload);
            buf.advance(parsed.payload_len);
            self.partial_bytes += start.length as usize;
            stream.partial = Some(Partial {
                data,
                remaining: start.length - parsed.payload_len as u32,
            });
            return Ok(None);
        }
        let Some(partial) = stream.partial.as_mut() else {
            return Err(ChunkReadError::MissingPreviousHeader {
                csid: parsed.csid,
                fmt: parsed.fmt,
            });
        };
        partial.data.extend_from_slice(payload);
        buf.advance(parsed.payload_len);
        partial.remaining = partial.remaining.saturating_sub(parsed.payload_len as u32);
        if partial.remaining > 0 {
            return Ok(None);
        }
        let data = stream
            .partial
            .take()
            .map(|p| p.data.freeze())
            .unwrap_or_default();
        let message = stream.message(data);
        let length = stream.length as usize;
        self.release_partial(length);
        Ok(Some(message))
    }

    /// SetChunkSize and Abort change how the next chunks are read, so they act here.
    fn apply_control(&mut self, message: &Message) -> Result<(), ChunkReadError> {
        match message.type_id {
            type_id::SET_CHUNK_SIZE => {
                let size = control_u32(message)?;
                if size & 0x8000_0000 != 0 || size == 0 {
                    return Err(ChunkReadError::InvalidChunkSize { size });
                }
                if size > MAX_CHUNK_SIZE {
                    return Err(ChunkReadError::ChunkSizeTooLarge {
                        size,
                        max: MAX_CHUNK_SIZE,
                    });
                }
                self.chunk_size = size;
            }
            type_id::ABORT => {
                let csid = control_u32(message)?;
                if let Some(stream) = self.streams.iter_mut().find(|s| s.csid == csid)
                    && stream.partial.take().is_some()
                {
                    let length = stream.length as usize;
                    self.release_partial(length);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl ChunkStream {
    fn message(&self, payload: Bytes) -> Message {
        Message {
            csid: self.csid,
            timestamp: self.timestamp,
            type_id: self.type_id,
            stream_id: self.stream_id,
            payload,
        }
    }
}

fn control_u32(message: &Message) -> Result<u32, ChunkReadError> {
    message
        .payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(ChunkReadError::InvalidControlMessage {
            type_id: message.type_id,
            length: message.payload.len(),
        })
}

/// Big-endian reads that return `None` at the end instead of panicking.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self
            .buf
            .get(self.pos..self.pos.checked_add(N)?)?
            .try_into()
            .ok()?;
        self.pos += N;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes::<1>().map(|[b]| b)
    }

    fn u24(&mut self) -> Option<u32> {
        self.bytes::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes::<4>().map(u32::from_be_bytes)
    }

    fn u32_le(&mut self) -> Option<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn peek_u32(&self) -> Option<u32> {
        let bytes: [u8; 4] = self
            .buf
            .get(self.pos..self.pos.checked_add(4)?)?
            .try_into()
            .ok()?;
        Some(u32::from_be_bytes(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::BufMut;
    use proptest::prelude::*;

    use super::*;
    use crate::chunk::Writer;

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> Message {
        Message {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn read_all(reader: &mut Reader, buf: &mut BytesMut) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = reader.read(buf).unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn payloads_never_point_into_the_read_buffer() {
        let mut buf = BytesMut::with_capacity(1024);
        // Two audio messages of one chunk each, and one of two chunks (size 128).
        buf.put_slice(&[0x04, 0, 0, 10, 0, 0, 3, 8, 1, 0, 0, 0, b'a', b'b', b'c']);
        buf.put_slice(&[0xC4, b'd', b'e', b'f']);
        buf.put_slice(&[0x06, 0, 0, 20, 0, 0, 200, 9, 1, 0, 0, 0]);
        buf.put_slice(&[7u8; 128]);
        buf.put_slice(&[0xC6]);
        buf.put_slice(&[8u8; 72]);
        let range = buf.as_ptr_range();
        let messages = read_all(&mut Reader::new(), &mut buf);
        let payloads: Vec<&[u8]> = messages.iter().map(|m| &m.payload[..]).collect();
        assert_eq!(payloads.len(), 3);
        assert_eq!((payloads[0], payloads[1]), (&b"abc"[..], &b"def"[..]));
        assert_eq!(payloads[2].len(), 200);
        for m in &messages {
            assert!(
                !range.contains(&m.payload.as_ptr()),
                "payload sliced from the read buffer"
            );
        }
        // Small payloads share a block, one after the other.
        assert_eq!(payloads[1].as_ptr(), payloads[0].as_ptr().wrapping_add(3));
    }

    #[test]
    fn format_0_single_chunk() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x03, 0, 0, 10, 0, 0, 3, 20, 1, 0, 0, 0]);
        buf.put_slice(b"abc");
        let mut r = Reader::new();
        assert_eq!(read_all(&mut r, &mut buf), vec![msg(3, 10, 20, 1, b"abc")]);
        assert!(buf.is_empty());
    }

    #[test]
    fn formats_1_2_3_inherit_and_add_deltas() {
        let mut buf = BytesMut::new();
        // fmt 0: ts 1000, len 2, type 9, stream 1.
        buf.put_slice(&[0x06, 0, 0x03, 0xE8, 0, 0, 2, 9, 1, 0, 0, 0, b'a', b'b']);
        // fmt 1: delta 40, len 1, type 8.
        buf.put_slice(&[0x46, 0, 0, 40, 0, 0, 1, 8, b'c']);
        // fmt 2: delta 20.
        buf.put_slice(&[0x86, 0, 0, 20, b'd']);
        // fmt 3: new message, same delta 20.
        buf.put_slice(&[0xC6, b'e']);
        let mut r = Reader::new();
        assert_eq!(
            read_all(&mut r, &mut buf),
            vec![
                msg(6, 1000, 9, 1, b"ab"),
                msg(6, 1040, 8, 1, b"c"),
                msg(6, 1060, 8, 1, b"d"),
                msg(6, 1080, 8, 1, b"e"),
            ]
        );
    }

    #[test]
    fn format_3_after_format_0_adds_the_absolute_field_like_ffmpeg() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x04, 0, 0, 33, 0, 0, 1, 8, 1, 0, 0, 0, b'a', 0xC4, b'b']);
        let mut r = Reader::new();
        let got = read_all(&mut r, &mut buf);
        assert_eq!(got[1].timestamp, 66);
    }

    #[test]
    fn two_and_three_byte_basic_headers() {
        let mut buf = BytesMut::new();
        // csid 64 + 10 = 74 (2-byte form), then csid 64 + 1 + 256 * 2 = 577 (3-byte form).
        buf.put_slice(&[0x00, 10, 0, 0, 0, 0, 0, 1, 20, 0, 0, 0, 0, b'x']);
        buf.put_slice(&[0x01, 1, 2, 0, 0, 0, 0, 0, 1, 20, 0, 0, 0, 0, b'y']);
        let mut r = Reader::new();
        let got = read_all(&mut r, &mut buf);
        assert_eq!(
            got.iter().map(|m| m.csid).collect::<Vec<_>>(),
            vec![74, 577]
        );
    }

    #[test]
    fn extended_timestamp_repeated_in_format_3_continuations() {
        // 300-byte message, chunk size 128, timestamp 0x01000000 (extended).
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let ext = 0x0100_0000u32.to_be_bytes();
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x05, 0xFF, 0xFF, 0xFF, 0, 0x01, 0x2C, 9, 1, 0, 0, 0]);
        buf.put_slice(&ext);
        buf.put_slice(&payload[..128]);
        buf.put_u8(0xC5);
        buf.put_slice(&ext);
        buf.put_slice(&payload[128..256]);
        buf.put_u8(0xC5);
        buf.put_slice(&ext);
        buf.put_slice(&payload[256..]);
        let mut r = Reader::new();
        assert_eq!(
            read_all(&mut r, &mut buf),
            vec![msg(5, 0x0100_0000, 9, 1, &payload)]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn extended_timestamp_not_repeated_in_continuations() {
        let payload = [7u8; 200];
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x05, 0xFF, 0xFF, 0xFF, 0, 0, 200, 9, 1, 0, 0, 0]);
        buf.put_slice(&0x0200_0000u32.to_be_bytes());
        buf.put_slice(&payload[..128]);
        buf.put_u8(0xC5);
        buf.put_slice(&payload[128..]);
        let mut r = Reader::new();
        assert_eq!(
            read_all(&mut r, &mut buf),
            vec![msg(5, 0x0200_0000, 9, 1, &payload)]
        );
    }

    #[test]
    fn format_3_new_message_reads_extended_delta() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x05, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, b'a']);
        // fmt 2 with an extended delta of 0x01000000, then fmt 3 repeating it.
        buf.put_slice(&[0x85, 0xFF, 0xFF, 0xFF]);
        buf.put_slice(&0x0100_0000u32.to_be_bytes());
        buf.put_u8(b'b');
        buf.put_u8(0xC5);
        buf.put_slice(&0x0100_0000u32.to_be_bytes());
        buf.put_u8(b'c');
        let mut r = Reader::new();
        let ts: Vec<u32> = read_all(&mut r, &mut buf)
            .iter()
            .map(|m| m.timestamp)
            .collect();
        assert_eq!(ts, vec![0, 0x0100_0000, 0x0200_0000]);
    }

    #[test]
    fn timestamps_wrap_around() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x05, 0xFF, 0xFF, 0xFF, 0, 0, 1, 9, 1, 0, 0, 0]);
        buf.put_slice(&0xFFFF_FFF0u32.to_be_bytes());
        buf.put_u8(b'a');
        buf.put_slice(&[0x85, 0, 0, 0x20, b'b']);
        let mut r = Reader::new();
        let ts: Vec<u32> = read_all(&mut r, &mut buf)
            .iter()
            .map(|m| m.timestamp)
            .collect();
        assert_eq!(ts, vec![0xFFFF_FFF0, 0x10]);
    }

    #[test]
    fn interleaved_chunk_streams_reassemble() {
        let video: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x06, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
        buf.put_slice(&video[..128]);
        // An audio message on chunk stream 4 in between.
        buf.put_slice(&[0x04, 0, 0, 5, 0, 0, 2, 8, 1, 0, 0, 0, 0xAF, 0x01]);
        buf.put_u8(0xC6);
        buf.put_slice(&video[128..]);
        let mut r = Reader::new();
        assert_eq!(
            read_all(&mut r, &mut buf),
            vec![msg(4, 5, 8, 1, &[0xAF, 0x01]), msg(6, 0, 9, 1, &video)]
        );
    }

    #[test]
    fn chunk_size_change_applies_to_following_chunks_of_other_messages() {
        let video = [9u8; 300];
        let mut buf = BytesMut::new();
        // Video starts with 128-byte chunks...
        buf.put_slice(&[0x06, 0, 0, 0, 0, 0x01, 0x2C, 9, 1, 0, 0, 0]);
        buf.put_slice(&video[..128]);
        // ...then SetChunkSize 4096 on csid 2...
        buf.put_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        // ...and the rest (172 bytes) comes in one chunk.
        buf.put_u8(0xC6);
        buf.put_slice(&video[128..]);
        let mut r = Reader::new();
        let got = read_all(&mut r, &mut buf);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].type_id, type_id::SET_CHUNK_SIZE);
        assert_eq!(r.chunk_size(), 4096);
        assert_eq!(got[1].payload.len(), 300);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_input_consumes_nothing_until_a_chunk_is_whole() {
        let mut whole = BytesMut::new();
        whole.put_slice(&[0x03, 0, 0, 10, 0, 0, 3, 20, 1, 0, 0, 0]);
        whole.put_slice(b"abc");
        let mut r = Reader::new();
        let mut buf = BytesMut::new();
        for (i, b) in whole.iter().enumerate() {
            buf.put_u8(*b);
            let got = r.read(&mut buf).unwrap();
            if i + 1 < whole.len() {
                assert_eq!(got, None);
                assert_eq!(buf.len(), i + 1, "nothing consumed at byte {i}");
            } else {
                assert_eq!(got, Some(msg(3, 10, 20, 1, b"abc")));
            }
        }
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x06, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
        buf.put_slice(&[1u8; 128]);
        buf.put_slice(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 6]);
        buf.put_slice(&[0x06, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, b'z']);
        let mut r = Reader::new();
        let got = read_all(&mut r, &mut buf);
        assert_eq!(got.last(), Some(&msg(6, 0, 9, 1, b"z")));
        assert!(!r.has_partial());
        assert_eq!(r.partial_bytes, 0);
    }

    #[test]
    fn oversized_message_is_refused_from_its_header() {
        let mut buf = BytesMut::from(&[0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0][..]);
        assert!(matches!(
            Reader::new().read(&mut buf),
            Err(ChunkReadError::MessageTooLong {
                length: 0xFF_FFFF,
                ..
            })
        ));
    }

    #[test]
    fn absurd_and_zero_chunk_sizes_are_refused() {
        for (size, want) in [
            (
                0x7FFF_FFFFu32,
                ChunkReadError::ChunkSizeTooLarge {
                    size: 0x7FFF_FFFF,
                    max: MAX_CHUNK_SIZE,
                },
            ),
            (0, ChunkReadError::InvalidChunkSize { size: 0 }),
            (
                0x8000_0001,
                ChunkReadError::InvalidChunkSize { size: 0x8000_0001 },
            ),
        ] {
            let mut buf = BytesMut::from(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0][..]);
            buf.put_u32(size);
            assert_eq!(Reader::new().read(&mut buf), Err(want));
        }
        let mut buf = BytesMut::from(&[0x02, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 1][..]);
        assert!(matches!(
            Reader::new().read(&mut buf),
            Err(ChunkReadError::InvalidControlMessage { length: 2, .. })
        ));
    }

    #[test]
    fn too_many_chunk_streams() {
        let mut r = Reader::new();
        let mut buf = BytesMut::new();
        for i in 0..=MAX_CHUNK_STREAMS as u8 {
            buf.put_slice(&[0x00, i, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0]);
        }
        for _ in 0..MAX_CHUNK_STREAMS {
            assert!(r.read(&mut buf).unwrap().is_some());
        }
        assert!(matches!(
            r.read(&mut buf),
            Err(ChunkReadError::TooManyChunkStreams { .. })
        ));
    }

    #[test]
    fn partial_bytes_are_capped() {
        // Start `n` maximal messages on as many chunk streams, first chunks only.
        fn start_messages(n: u8) -> BytesMut {
            let mut buf = BytesMut::new();
            for i in 0..n {
                buf.put_slice(&[i + 3, 0, 0, 0]);
                buf.put_slice(&MAX_MESSAGE_LENGTH.to_be_bytes()[1..]);
                buf.put_slice(&[9, 1, 0, 0, 0]);
                buf.put_slice(&[0u8; 128]);
            }
            buf
        }
        let fit = (MAX_PARTIAL_BYTES / MAX_MESSAGE_LENGTH as usize) as u8;
        let mut r = Reader::new();
        assert_eq!(r.read(&mut start_messages(fit)), Ok(None));
        assert_eq!(r.partial_bytes, MAX_PARTIAL_BYTES);
        let mut r = Reader::new();
        assert!(matches!(
            r.read(&mut start_messages(fit + 1)),
            Err(ChunkReadError::PartialMessagesTooLarge { csid, .. }) if csid == u32::from(fit) + 3
        ));
    }

    /// The first chunk (128 bytes) of a message of `length` bytes and `type_id` on `csid`.
    fn first_chunk(csid: u8, type_id: u8, length: u32) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_slice(&[csid, 0, 0, 0]);
        buf.put_slice(&length.to_be_bytes()[1..]);
        buf.put_slice(&[type_id, 1, 0, 0, 0]);
        buf.put_slice(&vec![0u8; length.min(128) as usize]);
        buf
    }

    #[test]
    fn each_message_type_has_its_own_size_limit_checked_at_its_header() {
        for (type_id, max) in [
            (type_id::COMMAND_AMF0, MAX_COMMAND_MESSAGE_LENGTH),
            (type_id::COMMAND_AMF3, MAX_COMMAND_MESSAGE_LENGTH),
            (type_id::SHARED_OBJECT_AMF0, MAX_COMMAND_MESSAGE_LENGTH),
            (type_id::DATA_AMF0, MAX_DATA_MESSAGE_LENGTH),
            (type_id::DATA_AMF3, MAX_DATA_MESSAGE_LENGTH),
            (type_id::VIDEO, MAX_MESSAGE_LENGTH),
            (type_id::AUDIO, MAX_MESSAGE_LENGTH),
            (type_id::AGGREGATE, MAX_MESSAGE_LENGTH),
            (42, MAX_COMMAND_MESSAGE_LENGTH),
        ] {
            assert_eq!(max_message_length(type_id), max);
            let mut r = Reader::new();
            assert_eq!(
                r.read(&mut first_chunk(3, type_id, max)),
                Ok(None),
                "{type_id}"
            );
            assert_eq!(
                Reader::new().read(&mut first_chunk(3, type_id, max + 1)),
                Err(ChunkReadError::MessageTooLong {
                    csid: 3,
                    type_id,
                    length: max + 1,
                    max
                }),
                "nothing is buffered for a message over its type's limit"
            );
        }
    }

    #[test]
    fn partial_messages_of_all_readers_share_one_budget() {
        let budget = std::sync::Arc::new(PartialBudget::new(3 * 1024 * 1024));
        let mut a = Reader::with_budget(budget.clone());
        let mut b = Reader::with_budget(budget.clone());
        assert_eq!(a.read(&mut first_chunk(3, 9, 2 * 1024 * 1024)), Ok(None));
        assert_eq!(budget.used(), 2 * 1024 * 1024);
        assert_eq!(
            b.read(&mut first_chunk(3, 9, 2 * 1024 * 1024)),
            Err(ChunkReadError::ServerPartialBudget {
                length: 2 * 1024 * 1024,
                max: 3 * 1024 * 1024
            })
        );
        // A reader that goes away (its connection closed mid-message) gives its share back.
        drop(a);
        assert_eq!(budget.used(), 0);
        let mut c = Reader::with_budget(budget.clone());
        let mut buf = first_chunk(3, 9, 300);
        buf.put_slice(&[0xC3]);
        buf.put_slice(&[0u8; 128]);
        buf.put_slice(&[0xC3]);
        buf.put_slice(&[0u8; 44]);
        assert_eq!(c.read(&mut buf).unwrap().unwrap().payload.len(), 300);
        assert_eq!(budget.used(), 0, "a completed message gives its share back");
    }

    #[test]
    fn compressed_header_without_history_and_header_mid_message() {
        let mut buf = BytesMut::from(&[0x43, 0, 0, 0, 0, 0, 1, 9, b'a'][..]);
        assert_eq!(
            Reader::new().read(&mut buf),
            Err(ChunkReadError::MissingPreviousHeader { csid: 3, fmt: 1 })
        );
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x06, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
        buf.put_slice(&[0u8; 128]);
        buf.put_slice(&[0x86, 0, 0, 1]);
        let mut r = Reader::new();
        assert_eq!(
            r.read(&mut buf),
            Err(ChunkReadError::HeaderMidMessage { csid: 6, fmt: 2 })
        );
    }

    #[test]
    fn zero_length_message() {
        let mut buf = BytesMut::from(&[0x03, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 0][..]);
        assert_eq!(
            Reader::new().read(&mut buf),
            Ok(Some(msg(3, 1, 20, 0, b"")))
        );
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        (
            prop_oneof![
                2u32..10,
                60u32..70,
                300u32..330,
                Just(super::super::MAX_CSID)
            ],
            prop_oneof![0u32..100_000, 0x00FF_FFF0u32..0x0100_0010, any::<u32>()],
            prop_oneof![Just(8u8), Just(9u8), Just(18u8), Just(20u8)],
            0u32..3,
            prop::collection::vec(any::<u8>(), 0..1200),
        )
            .prop_map(|(csid, timestamp, type_id, stream_id, payload)| Message {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload: payload.into(),
            })
    }

    proptest! {
        #[test]
        fn writer_to_reader_round_trip(
            messages in prop::collection::vec(message_strategy(), 1..40),
            chunk_size in prop_oneof![1u32..10, 60u32..200, Just(4096u32)],
            repeat_extended in any::<bool>(),
            split in 1usize..700,
        ) {
            let mut writer = Writer::new();
            writer.set_repeat_extended_timestamp(repeat_extended);
            let mut wire = BytesMut::new();
            writer.write_set_chunk_size(chunk_size, &mut wire);
            for m in &messages {
                writer.write(m.csid, m.timestamp, m.type_id, m.stream_id, &m.payload, &mut wire);
            }
            // Lookahead for the reader: without repeated extended timestamps it needs 4 bytes
            // past a continuation chunk to see that they are not one.
            writer.write(11, 0, 20, 0, b"end!", &mut wire);
            // Feed the wire in pieces, as a socket would.
            let mut reader = Reader::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(split) {
                buf.put_slice(piece);
                while let Some(m) = reader.read(&mut buf).unwrap() {
                    got.push(m);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got.remove(0).type_id, type_id::SET_CHUNK_SIZE);
            prop_assert_eq!(got.pop().map(|m| m.payload), Some(Bytes::from_static(b"end!")));
            prop_assert_eq!(got, messages);
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut reader = Reader::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = reader.read(&mut buf) {}
        }

        #[test]
        fn random_bytes_after_a_valid_start_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut reader = Reader::new();
            let mut buf = BytesMut::from(&[0x06, 0xFF, 0xFF, 0xFF, 0, 1, 0, 9, 1, 0, 0, 0, 0, 0, 0, 1][..]);
            buf.put_slice(&bytes);
            while let Ok(Some(_)) = reader.read(&mut buf) {}
        }
    }
}
