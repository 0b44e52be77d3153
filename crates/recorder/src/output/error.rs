use std::io;

use liverec_mux::{flv, fmp4, ts};

use crate::names::NameError;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("storage: {0}")]
    Io(#[from] io::Error),
    #[error("mp4: {0}")]
    Fmp4(#[from] fmp4::Fmp4Error),
    #[error("flv: {0}")]
    Flv(#[from] flv::MuxError),
    #[error("mpeg-ts: {0}")]
    Ts(#[from] ts::MuxError),
    #[error("object name: {0}")]
    Name(#[from] NameError),
}
