//! RTMP messages as the chunk layer delivers them, and the message type ids.

use bytes::Bytes;

/// Message type ids (RTMP spec 5.4, 6.1, 7.1).
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// One reassembled message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The chunk stream it arrived on (kept for tests and logs; the session does not care).
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wrapping u32, as on the wire).
    pub timestamp: u32,
    pub type_id: u8,
    /// Message stream id: 0 for the connection, the `createStream` id for a stream.
    pub stream_id: u32,
    pub payload: Bytes,
}
