//! The error of one RTMP connection: every module's error folded in, plus the I/O shell's.

use std::io;
use std::time::Duration;

use crate::chunk::ChunkReadError;
use crate::handshake::HandshakeError;
use crate::session::SessionError;

#[derive(Debug, thiserror::Error)]
pub enum RtmpError {
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkReadError),
    #[error("session: {0}")]
    Session(#[from] SessionError),
    #[error("handshake not completed within {after:?}")]
    HandshakeTimeout { after: Duration },
    #[error("no data from the client for {after:?}")]
    IdleTimeout { after: Duration },
    #[error("no publish accepted within {after:?} of connecting")]
    PublishDeadline { after: Duration },
    #[error("client did not take our data within {after:?}")]
    WriteTimeout { after: Duration },
    #[error("client closed the connection during the handshake")]
    ClosedDuringHandshake,
    #[error("client closed the connection in the middle of a message ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
}

impl RtmpError {
    /// The client went away (hang-up, reset, close mid-message): routine for an ingest
    /// server, logged at debug level by the caller.
    pub fn is_client_closed(&self) -> bool {
        match self {
            RtmpError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            RtmpError::ClosedDuringHandshake | RtmpError::Truncated { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(
            RtmpError::from(io::Error::from(io::ErrorKind::ConnectionReset)).is_client_closed()
        );
        assert!(RtmpError::Truncated { buffered: 3 }.is_client_closed());
        assert!(
            !RtmpError::from(io::Error::from(io::ErrorKind::PermissionDenied)).is_client_closed()
        );
        assert!(
            !RtmpError::IdleTimeout {
                after: Duration::from_secs(1)
            }
            .is_client_closed()
        );
        assert!(
            !RtmpError::from(HandshakeError::UnsupportedVersion { version: 6 }).is_client_closed()
        );
    }
}
