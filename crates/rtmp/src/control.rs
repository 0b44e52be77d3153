//! Protocol control messages (RTMP spec 5.4) and user control messages (spec 6.2): the small
//! fixed-layout messages on chunk stream 2, message stream 0.

use bytes::BytesMut;

use crate::chunk::Writer;
use crate::message::type_id;

/// Chunk stream of protocol and user control messages.
pub const CONTROL_CSID: u32 = 2;

/// User control event types.
pub mod event {
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const STREAM_DRY: u16 = 2;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const STREAM_IS_RECORDED: u16 = 4;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
}

/// Limit type of Set Peer Bandwidth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandwidthLimit {
    Hard = 0,
    Soft = 1,
    Dynamic = 2,
}

fn write_u32(writer: &mut Writer, type_id: u8, value: u32, out: &mut BytesMut) {
    writer.write(CONTROL_CSID, 0, type_id, 0, &value.to_be_bytes(), out);
}

pub fn write_window_ack_size(writer: &mut Writer, size: u32, out: &mut BytesMut) {
    write_u32(writer, type_id::WINDOW_ACK_SIZE, size, out);
}

/// Acknowledgement: the number of bytes received so far (wrapping at 2^32).
pub fn write_acknowledgement(writer: &mut Writer, sequence: u32, out: &mut BytesMut) {
    write_u32(writer, type_id::ACKNOWLEDGEMENT, sequence, out);
}

pub fn write_set_peer_bandwidth(
    writer: &mut Writer,
    size: u32,
    limit: BandwidthLimit,
    out: &mut BytesMut,
) {
    let mut body = [0u8; 5];
    body[..4].copy_from_slice(&size.to_be_bytes());
    body[4] = limit as u8;
    writer.write(CONTROL_CSID, 0, type_id::SET_PEER_BANDWIDTH, 0, &body, out);
}

/// A user control event with a 4-byte argument (stream id or ping timestamp).
pub fn write_user_control(writer: &mut Writer, event: u16, data: u32, out: &mut BytesMut) {
    let mut body = [0u8; 6];
    body[..2].copy_from_slice(&event.to_be_bytes());
    body[2..].copy_from_slice(&data.to_be_bytes());
    writer.write(CONTROL_CSID, 0, type_id::USER_CONTROL, 0, &body, out);
}

/// SetBufferLength: how many milliseconds a player buffers of `stream_id` (what players send
/// after `play`; some servers wait for it).
pub fn write_set_buffer_length(writer: &mut Writer, stream_id: u32, ms: u32, out: &mut BytesMut) {
    let mut body = [0u8; 10];
    body[..2].copy_from_slice(&event::SET_BUFFER_LENGTH.to_be_bytes());
    body[2..6].copy_from_slice(&stream_id.to_be_bytes());
    body[6..].copy_from_slice(&ms.to_be_bytes());
    writer.write(CONTROL_CSID, 0, type_id::USER_CONTROL, 0, &body, out);
}

/// Reads a user control message: event type and its first 4-byte argument (0 when absent).
pub fn parse_user_control(payload: &[u8]) -> Option<(u16, u32)> {
    let event = u16::from_be_bytes(payload.get(..2)?.try_into().ok()?);
    let data = payload
        .get(2..6)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0);
    Some((event, data))
}

/// Reads the 4-byte big-endian value of WindowAckSize / Acknowledgement / SetChunkSize.
pub fn parse_u32(payload: &[u8]) -> Option<u32> {
    payload.get(..4)?.try_into().ok().map(u32::from_be_bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::chunk::Reader;

    #[test]
    fn control_messages_round_trip_through_the_chunk_layer() {
        let mut w = Writer::new();
        let mut out = BytesMut::new();
        write_window_ack_size(&mut w, 2_500_000, &mut out);
        write_set_peer_bandwidth(&mut w, 2_500_000, BandwidthLimit::Dynamic, &mut out);
        write_user_control(&mut w, event::PING_RESPONSE, 1234, &mut out);
        write_acknowledgement(&mut w, 99, &mut out);
        let mut r = Reader::new();
        let a = r.read(&mut out).unwrap().unwrap();
        assert_eq!(
            (a.type_id, parse_u32(&a.payload)),
            (type_id::WINDOW_ACK_SIZE, Some(2_500_000))
        );
        let b = r.read(&mut out).unwrap().unwrap();
        assert_eq!(&b.payload[..], &[0x00, 0x26, 0x25, 0xA0, 2]);
        let c = r.read(&mut out).unwrap().unwrap();
        assert_eq!(
            parse_user_control(&c.payload),
            Some((event::PING_RESPONSE, 1234))
        );
        let d = r.read(&mut out).unwrap().unwrap();
        assert_eq!(
            (d.type_id, parse_u32(&d.payload)),
            (type_id::ACKNOWLEDGEMENT, Some(99))
        );
    }

    #[test]
    fn short_user_control_messages() {
        assert_eq!(parse_user_control(&[0]), None);
        assert_eq!(
            parse_user_control(&[0, 6, 1]),
            Some((event::PING_REQUEST, 0))
        );
    }
}
