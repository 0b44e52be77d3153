//! The few AMF0 encodings an `onMetaData` script tag needs (AMF0 spec §2).

use bytes::{BufMut, BytesMut};

const MARKER_NUMBER: u8 = 0x00;
const MARKER_BOOLEAN: u8 = 0x01;
const MARKER_STRING: u8 = 0x02;
const MARKER_ECMA_ARRAY: u8 = 0x08;
const MARKER_LONG_STRING: u8 = 0x0c;
/// `00 00 09`: empty key + object-end marker.
const OBJECT_END: [u8; 3] = [0x00, 0x00, 0x09];
/// Longest string a short (type 0x02) AMF0 string or a property name can carry.
pub const MAX_SHORT_STRING: usize = u16::MAX as usize;

/// Writes a number; returns the offset in `out` of its 8 value bytes (for later patching).
pub fn number(out: &mut BytesMut, value: f64) -> usize {
    out.put_u8(MARKER_NUMBER);
    let at = out.len();
    out.put_f64(value);
    at
}

pub fn boolean(out: &mut BytesMut, value: bool) {
    out.put_u8(MARKER_BOOLEAN);
    out.put_u8(u8::from(value));
}

/// Writes a string value, as a long string when it does not fit 16 bits.
pub fn string(out: &mut BytesMut, value: &str) {
    match u16::try_from(value.len()) {
        Ok(len) => {
            out.put_u8(MARKER_STRING);
            out.put_u16(len);
        }
        Err(_) => {
            out.put_u8(MARKER_LONG_STRING);
            out.put_u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        }
    }
    out.put_slice(value.as_bytes());
}

/// Starts an ECMA array with `count` entries (a hint only; readers go by the end marker).
pub fn ecma_array_start(out: &mut BytesMut, count: u32) {
    out.put_u8(MARKER_ECMA_ARRAY);
    out.put_u32(count);
}

/// Writes a property name (UTF-8, no marker); names longer than 64 KiB are cut.
pub fn key(out: &mut BytesMut, name: &str) {
    let bytes = name.as_bytes();
    let bytes = &bytes[..bytes.len().min(MAX_SHORT_STRING)];
    out.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.put_slice(bytes);
}

pub fn object_end(out: &mut BytesMut) {
    out.put_slice(&OBJECT_END);
}

/// Decodes the `onMetaData` script bodies this module writes (tests only).
#[cfg(test)]
pub(crate) fn decode_metadata(body: &[u8]) -> Option<(String, Vec<(String, super::MetaValue)>)> {
    use super::MetaValue;
    fn u16_at(b: &[u8], at: usize) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *b.get(at)?,
            *b.get(at + 1)?,
        ])))
    }
    fn utf8(b: &[u8], at: usize, len: usize) -> Option<String> {
        String::from_utf8(b.get(at..at + len)?.to_vec()).ok()
    }
    if *body.first()? != MARKER_STRING {
        return None;
    }
    let len = u16_at(body, 1)?;
    let name = utf8(body, 3, len)?;
    let mut at = 3 + len;
    if *body.get(at)? != MARKER_ECMA_ARRAY {
        return None;
    }
    at += 5;
    let mut entries = Vec::new();
    loop {
        if body.get(at..at + 3)? == OBJECT_END {
            return Some((name, entries));
        }
        let klen = u16_at(body, at)?;
        let key = utf8(body, at + 2, klen)?;
        at += 2 + klen;
        let marker = *body.get(at)?;
        at += 1;
        let value = match marker {
            MARKER_NUMBER => {
                let raw: [u8; 8] = body.get(at..at + 8)?.try_into().ok()?;
                at += 8;
                MetaValue::Number(f64::from_be_bytes(raw))
            }
            MARKER_BOOLEAN => {
                at += 1;
                MetaValue::Bool(*body.get(at - 1)? != 0)
            }
            MARKER_STRING => {
                let slen = u16_at(body, at)?;
                let v = utf8(body, at + 2, slen)?;
                at += 2 + slen;
                MetaValue::String(v)
            }
            _ => return None,
        };
        entries.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_values() {
        let mut out = BytesMut::new();
        let at = number(&mut out, 1.5);
        assert_eq!(at, 1);
        assert_eq!(&out[..], &[0, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        out.clear();
        boolean(&mut out, true);
        string(&mut out, "ab");
        key(&mut out, "k");
        object_end(&mut out);
        assert_eq!(&out[..], &[1, 1, 2, 0, 2, b'a', b'b', 0, 1, b'k', 0, 0, 9]);
    }

    #[test]
    fn long_strings_use_the_long_marker() {
        let mut out = BytesMut::new();
        let s = "x".repeat(MAX_SHORT_STRING + 1);
        string(&mut out, &s);
        assert_eq!(out[0], MARKER_LONG_STRING);
        assert_eq!(
            &out[1..5],
            &u32::try_from(s.len()).unwrap_or(0).to_be_bytes()
        );
        assert_eq!(out.len(), 5 + s.len());
    }
}
