//! Errors of the server handshake.

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// C0 asked for another protocol version (6 would be RTMPE encryption, which liverec does not speak).
    #[error("unsupported RTMP version {version} in C0 (only 3 is supported)")]
    UnsupportedVersion { version: u8 },
}
