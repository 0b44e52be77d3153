//! ISO BMFF box writing primitives (ISO/IEC 14496-12 §4.2).
//!
//! A box is opened with a placeholder size, its body is appended, and closing it writes the size
//! back, so nested boxes need no size precomputation and nothing is allocated: every byte goes
//! straight into the caller's `BytesMut`.

use bytes::{BufMut, BytesMut};

use super::error::Fmp4Error;

pub(crate) type FourCc = [u8; 4];

/// Bytes of a compact box header: 32-bit size and type.
pub(crate) const BOX_HEADER_LEN: usize = 8;

/// A box whose size is not written yet. Close it with [`OpenBox::close`].
#[must_use = "an open box must be closed to get its size"]
#[derive(Debug)]
pub(crate) struct OpenBox {
    start: usize,
    fourcc: FourCc,
}

impl OpenBox {
    /// Where the box starts in the output buffer.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Writes the box size back and returns it.
    pub(crate) fn close(self, out: &mut BytesMut) -> Result<usize, Fmp4Error> {
        let size = out.len().saturating_sub(self.start);
        let size32 = u32::try_from(size).map_err(|_| Fmp4Error::BoxTooLarge {
            fourcc: self.fourcc,
            size,
        })?;
        patch_u32(out, self.start, size32);
        Ok(size)
    }
}

/// Opens a plain box.
pub(crate) fn open(out: &mut BytesMut, fourcc: FourCc) -> OpenBox {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(&fourcc);
    OpenBox { start, fourcc }
}

/// Opens a full box: a box with an 8-bit version and 24-bit flags.
pub(crate) fn open_full(out: &mut BytesMut, fourcc: FourCc, version: u8, flags: u32) -> OpenBox {
    let open_box = open(out, fourcc);
    put_version_flags(out, version, flags);
    open_box
}

pub(crate) fn put_version_flags(out: &mut BytesMut, version: u8, flags: u32) {
    out.put_u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
}

/// Overwrites 4 bytes at `pos` (a position this module handed out, so always in bounds).
pub(crate) fn patch_u32(out: &mut BytesMut, pos: usize, value: u32) {
    if let Some(dst) = pos.checked_add(4).and_then(|end| out.get_mut(pos..end)) {
        dst.copy_from_slice(&value.to_be_bytes());
    }
}

/// The unity transformation matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
pub(crate) const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

pub(crate) fn put_matrix(out: &mut BytesMut) {
    for value in UNITY_MATRIX {
        out.put_u32(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_their_sizes_written_back() -> Result<(), Fmp4Error> {
        let mut out = BytesMut::new();
        out.put_slice(b"xx"); // boxes need not start at 0
        let outer = open(&mut out, *b"moov");
        let inner = open_full(&mut out, *b"mehd", 1, 0x00AB_CDEF);
        out.put_u64(7);
        assert_eq!(inner.close(&mut out)?, 20);
        assert_eq!(outer.close(&mut out)?, 28);
        assert_eq!(
            &out[..],
            &[
                b'x', b'x', //
                0, 0, 0, 28, b'm', b'o', b'o', b'v', //
                0, 0, 0, 20, b'm', b'e', b'h', b'd', 1, 0xAB, 0xCD, 0xEF, //
                0, 0, 0, 0, 0, 0, 0, 7,
            ][..]
        );
        Ok(())
    }

    #[test]
    fn flags_are_cut_to_24_bits() {
        let mut out = BytesMut::new();
        put_version_flags(&mut out, 0, 0xFF00_0001);
        assert_eq!(&out[..], &[0, 0, 0, 1]);
    }

    #[test]
    fn patch_out_of_bounds_is_ignored() {
        let mut out = BytesMut::from(&[1u8, 2, 3][..]);
        patch_u32(&mut out, 1, 0xFFFF_FFFF);
        patch_u32(&mut out, usize::MAX, 0xFFFF_FFFF);
        assert_eq!(&out[..], &[1, 2, 3]);
    }
}
