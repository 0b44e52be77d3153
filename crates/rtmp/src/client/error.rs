//! Errors of the RTMP client.

use std::io;

use liverec_media::flv::FlvError;

use crate::chunk::ChunkReadError;
use crate::session::SessionError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("server's chunk stream: {0}")]
    Chunk(#[from] ChunkReadError),
    #[error("server's command: {0}")]
    Command(#[from] SessionError),
    #[error("no answer to {waiting_for} in time")]
    Timeout { waiting_for: &'static str },
    #[error("server closed the connection while we waited for {waiting_for}")]
    Closed { waiting_for: &'static str },
    #[error("server refused the publish or play: {code} ({description})")]
    Refused { code: String, description: String },
    #[error("server answered {command} with _error")]
    CommandFailed { command: &'static str },
    #[error("FLV file: {0}")]
    Flv(#[from] FlvError),
}
