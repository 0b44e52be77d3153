//! Errors of the RTMP session (command flow).

use crate::amf0::Amf0Error;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SessionError {
    #[error("command message (type {type_id}) is not valid AMF0")]
    InvalidCommand { type_id: u8, source: Amf0Error },
    #[error("command message (type {type_id}) does not start with a command name")]
    MissingCommandName { type_id: u8 },
    #[error("command {command:?} before connect")]
    NotConnected { command: String },
    #[error("connect received twice")]
    AlreadyConnected,
    #[error("publish or play received while one is already active")]
    AlreadyPublishing,
}
