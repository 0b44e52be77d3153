//! Pure muxers: frames in, bytes out. No file, path or clock is known here; the recorder's
//! output shells own the I/O.
//!
//! | module | format |
//! |---|---|
//! | [`flv`] | FLV, Enhanced FLV (E-RTMP v2) for H.265 and AV1 |
//! | [`fmp4`] | fragmented MP4 (ISO/IEC 14496-12): MP4 recording files and CMAF segments |
//! | [`ts`] | MPEG-2 transport stream segments (ISO/IEC 13818-1) |
//! | [`hls`] | HLS media playlists (RFC 8216) |

pub mod flv;
pub mod fmp4;
pub mod hls;
pub mod ts;

use bytes::Bytes;

/// Bytes to overwrite at `offset` of a file already written, applied when the file is
/// finalized (durations and sizes that are only known at the end). Applying a patch never
/// moves data, so finalizing never copies a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Bytes,
}
