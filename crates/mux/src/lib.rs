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

use bytes::{Bytes, BytesMut};

/// Where a muxer's bytes go. Headers (boxes, tags) are written into [`MuxOut::head`]; media
/// payloads are handed over with [`MuxOut::payload`], which may keep a reference (a clone of
/// the `Bytes`) instead of copying, so media can reach a file without being copied. A
/// `BytesMut` copies everything into itself.
pub trait MuxOut {
    /// The buffer headers are appended to; everything in it precedes the next payload.
    fn head(&mut self) -> &mut BytesMut;
    /// Appends one media payload after what [`MuxOut::head`] holds.
    fn payload(&mut self, data: &Bytes);
    /// About `bytes` of payload follow (lets a copying output grow once).
    fn reserve_payload(&mut self, _bytes: usize) {}
}

impl MuxOut for BytesMut {
    fn head(&mut self) -> &mut BytesMut {
        self
    }

    fn payload(&mut self, data: &Bytes) {
        self.extend_from_slice(data);
    }

    fn reserve_payload(&mut self, bytes: usize) {
        self.reserve(bytes);
    }
}

/// Bytes to overwrite at `offset` of a file already written, applied when the file is
/// finalized (durations and sizes that are only known at the end). Applying a patch never
/// moves data, so finalizing never copies a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Bytes,
}
