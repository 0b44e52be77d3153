//! FLV tag framing: the 11-byte tag header, the body, the trailing `PreviousTagSize`.

use bytes::{BufMut, BytesMut};

/// Largest tag body FLV can describe (24-bit DataSize).
pub const MAX_BODY_LEN: usize = (1 << 24) - 1;
/// Bytes of the tag header.
pub const HEADER_LEN: usize = 11;
/// Bytes of the `PreviousTagSize` after each tag.
pub const TRAILER_LEN: usize = 4;

/// Writes a tag header for a body of `body_len` bytes (checked ≤ [`MAX_BODY_LEN`] by the
/// caller). The timestamp is split into 24 low bits and the extended upper byte.
pub fn header(out: &mut BytesMut, tag_type: u8, body_len: usize, timestamp: u32) {
    let len = u32::try_from(body_len).unwrap_or(0).to_be_bytes();
    let ts = timestamp.to_be_bytes();
    out.put_slice(&[
        tag_type, len[1], len[2], len[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0,
    ]);
}

/// Writes `PreviousTagSize` for a tag whose body had `body_len` bytes.
pub fn trailer(out: &mut BytesMut, body_len: usize) {
    out.put_u32(u32::try_from(HEADER_LEN + body_len).unwrap_or(u32::MAX));
}

/// Bytes a tag with a body of `body_len` bytes takes in the file.
pub fn total_len(body_len: usize) -> usize {
    HEADER_LEN + body_len + TRAILER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_splits_the_timestamp() {
        let mut out = BytesMut::new();
        header(&mut out, 9, 0x01_0203, 0x0456_789a);
        assert_eq!(
            &out[..],
            &[9, 0x01, 0x02, 0x03, 0x56, 0x78, 0x9a, 0x04, 0, 0, 0]
        );
        trailer(&mut out, 5);
        assert_eq!(&out[HEADER_LEN..], &[0, 0, 0, 16]);
        assert_eq!(total_len(5), 20);
    }

    #[test]
    fn si24_keeps_the_sign() {
        let mut head = super::super::TagHead::new();
        head.si24(-40);
        head.si24(80);
        assert_eq!(head.as_slice(), &[0xff, 0xff, 0xd8, 0, 0, 80]);
    }
}
