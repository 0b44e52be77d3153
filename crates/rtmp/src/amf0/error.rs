//! Errors of the AMF0 decoder.

/// Why AMF0 bytes could not be decoded. Offsets are from the start of the decoded slice.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Amf0Error {
    #[error("more than {max} AMF0 values in one message (at byte {offset})")]
    TooManyValues { max: usize, offset: usize },
    #[error("AMF0 input ends inside a value at byte {offset}")]
    UnexpectedEnd { offset: usize },
    #[error("unknown or unsupported AMF0 type marker {marker:#04x} at byte {offset}")]
    UnsupportedMarker { marker: u8, offset: usize },
    #[error("object-end marker outside an object at byte {offset}")]
    UnexpectedObjectEnd { offset: usize },
    #[error("AMF0 values nested deeper than {max} at byte {offset}")]
    TooDeep { max: usize, offset: usize },
}
