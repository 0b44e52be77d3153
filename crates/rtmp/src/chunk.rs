//! The RTMP chunk stream (RTMP spec section 5.3): messages cut into chunks, interleaved across
//! chunk streams, with compressed headers.

mod error;
mod reader;
mod writer;

pub use error::ChunkReadError;
pub use reader::{
    DEFAULT_PARTIAL_BUDGET_BYTES, MAX_CHUNK_SIZE, MAX_CHUNK_STREAMS, MAX_COMMAND_MESSAGE_LENGTH,
    MAX_DATA_MESSAGE_LENGTH, MAX_MESSAGE_LENGTH, MAX_PARTIAL_BYTES, PartialBudget, Reader,
    max_message_length,
};
pub use writer::Writer;

/// Chunk size of both directions until a SetChunkSize says otherwise.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// Largest chunk stream id the 3-byte basic header can carry.
pub const MAX_CSID: u32 = 65_599;

/// The timestamp field value that means "an extended timestamp follows".
pub(crate) const EXTENDED_TIMESTAMP: u32 = 0x00FF_FFFF;
