use std::io;

use liverec_mux::{flv, fmp4, ts};
use liverec_storage::{NameError, StorageError};

use crate::config::Format;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("storage: {0}")]
    Io(#[from] io::Error),
    #[error("storage target: {0}")]
    Storage(#[from] StorageError),
    #[error("mp4: {0}")]
    Fmp4(#[from] fmp4::Fmp4Error),
    #[error("flv: {0}")]
    Flv(#[from] flv::MuxError),
    #[error("mpeg-ts: {0}")]
    Ts(#[from] ts::MuxError),
    #[error("object name: {0}")]
    Name(#[from] NameError),
    /// A format reached an output that does not write it (a bug, never a silent fallback).
    #[error("format {} is not written by this output", .0.as_str())]
    WrongOutput(Format),
}
