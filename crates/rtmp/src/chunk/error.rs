//! Errors of the chunk reader. Each DoS limit has its own variant.

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChunkReadError {
    #[error(
        "message of type {type_id} and {length} bytes on chunk stream {csid} exceeds the limit of {max} for its type"
    )]
    MessageTooLong {
        csid: u32,
        type_id: u8,
        length: u32,
        max: u32,
    },
    #[error(
        "a {length}-byte message would take the server's partial messages beyond their budget of {max} bytes"
    )]
    ServerPartialBudget { length: u32, max: usize },
    #[error("more than {max} chunk streams in use (new one: {csid})")]
    TooManyChunkStreams { csid: u32, max: usize },
    #[error(
        "partial messages would hold {total} bytes (limit {max}) when chunk stream {csid} starts one"
    )]
    PartialMessagesTooLarge { csid: u32, total: usize, max: usize },
    #[error("SetChunkSize {size} exceeds the limit of {max}")]
    ChunkSizeTooLarge { size: u32, max: u32 },
    #[error("SetChunkSize {size} is not a valid chunk size")]
    InvalidChunkSize { size: u32 },
    #[error("chunk of format {fmt} on chunk stream {csid} with no previous header to inherit")]
    MissingPreviousHeader { csid: u32, fmt: u8 },
    #[error("chunk of format {fmt} on chunk stream {csid} while a message is half received")]
    HeaderMidMessage { csid: u32, fmt: u8 },
    #[error("protocol control message type {type_id} has a {length}-byte payload")]
    InvalidControlMessage { type_id: u8, length: usize },
}
