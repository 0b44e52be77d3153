//! AMF0 decoding from a byte slice.

use super::{Amf0Error, Value, marker};

/// Deepest nesting of objects and arrays accepted. Commands nest two levels at most; the cap
/// keeps recursion (and so the stack) bounded for hostile input.
pub const MAX_DEPTH: usize = 32;

/// Most values (nested ones included) decoded from one message. A `connect` has a few dozen and
/// an `onMetaData` a few hundred; the cap bounds what a hostile message of one-byte values
/// (nulls) costs once decoded (each value takes tens of bytes in memory).
pub const MAX_VALUES: usize = 4096;

/// Decodes AMF0 values one after the other from a slice.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Values decoded so far (see [`MAX_VALUES`]).
    values: usize,
}

/// Decodes every value in `buf` (a whole command or data message body).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut reader = Reader::new(buf);
    let mut values = Vec::new();
    while !reader.is_empty() {
        values.push(reader.read_value()?);
    }
    Ok(values)
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            values: 0,
        }
    }

    /// Bytes consumed so far: lets a caller slice the undecoded rest without copying.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Decodes the next value.
    pub fn read_value(&mut self) -> Result<Value, Amf0Error> {
        self.value(0)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        let offset = self.pos;
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(Amf0Error::TooManyValues {
                max: MAX_VALUES,
                offset,
            });
        }
        let marker = self.u8()?;
        Ok(match marker {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => Value::String(self.short_string()?),
            marker::LONG_STRING => Value::String(self.long_string()?),
            marker::XML_DOCUMENT => Value::XmlDocument(self.long_string()?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::UNSUPPORTED => Value::Unsupported,
            marker::REFERENCE => Value::Reference(self.u16()?),
            marker::DATE => {
                let millis = self.f64()?;
                let time_zone = self.u16()? as i16;
                Value::Date { millis, time_zone }
            }
            marker::OBJECT => Value::Object(self.properties(Self::nested(depth, offset)?)?),
            marker::ECMA_ARRAY => {
                let depth = Self::nested(depth, offset)?;
                // The declared count is advisory; the end marker ends the array.
                self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let depth = Self::nested(depth, offset)?;
                let count = self.u32()?;
                // Every element takes at least one byte: never reserve more than is left.
                let left = self.buf.len().saturating_sub(self.pos);
                let mut items =
                    Vec::with_capacity(usize::try_from(count).unwrap_or(left).min(left));
                for _ in 0..count {
                    items.push(self.value(depth)?);
                }
                Value::StrictArray(items)
            }
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd { offset }),
            marker => return Err(Amf0Error::UnsupportedMarker { marker, offset }),
        })
    }

    fn nested(depth: usize, offset: usize) -> Result<usize, Amf0Error> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep {
                max: MAX_DEPTH,
                offset,
            });
        }
        Ok(depth)
    }

    /// Key/value pairs up to the object-end marker (an empty key followed by 0x09). Input that
    /// ends right where a key would start also ends the object: some encoders drop the end
    /// marker of a trailing ECMA array.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            if self.is_empty() {
                return Ok(props);
            }
            let key = self.short_string()?;
            if key.is_empty() && self.peek() == Some(marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(Amf0Error::UnexpectedEnd { offset: self.pos })?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(Amf0Error::UnexpectedEnd { offset: self.pos })?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amf0Error> {
        let offset = self.pos;
        self.take(N)?
            .try_into()
            .map_err(|_| Amf0Error::UnexpectedEnd { offset })
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = usize::from(self.u16()?);
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn long_string(&mut self) -> Result<String, Amf0Error> {
        let offset = self.pos;
        let len = usize::try_from(self.u32()?).map_err(|_| Amf0Error::UnexpectedEnd { offset })?;
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_connect_like_command() {
        let mut bytes = vec![marker::STRING, 0, 7];
        bytes.extend_from_slice(b"connect");
        bytes.push(marker::NUMBER);
        bytes.extend_from_slice(&1.0f64.to_be_bytes());
        bytes.push(marker::OBJECT);
        bytes.extend_from_slice(&[0, 3]);
        bytes.extend_from_slice(b"app");
        bytes.extend_from_slice(&[marker::STRING, 0, 4]);
        bytes.extend_from_slice(b"live");
        bytes.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_number(), Some(1.0));
        assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
    }

    #[test]
    fn depth_is_capped() {
        let bytes: Vec<u8> = std::iter::repeat_n([marker::STRICT_ARRAY, 0, 0, 0, 1], 10_000)
            .flatten()
            .collect();
        let err = decode_all(&bytes).unwrap_err();
        assert!(
            matches!(err, Amf0Error::TooDeep { max: MAX_DEPTH, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn values_per_message_are_capped() {
        let at_cap = vec![marker::NULL; MAX_VALUES];
        assert_eq!(decode_all(&at_cap).unwrap().len(), MAX_VALUES);
        let over = vec![marker::NULL; MAX_VALUES + 1];
        assert_eq!(
            decode_all(&over),
            Err(Amf0Error::TooManyValues {
                max: MAX_VALUES,
                offset: MAX_VALUES
            })
        );
        // Nested values count too: one object of many properties.
        let mut object = vec![marker::OBJECT];
        for _ in 0..MAX_VALUES {
            object.extend_from_slice(&[0, 1, b'k', marker::NULL]);
        }
        object.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        assert!(matches!(
            decode_all(&object),
            Err(Amf0Error::TooManyValues { .. })
        ));
    }

    #[test]
    fn nesting_up_to_the_cap_is_fine() {
        let mut bytes: Vec<u8> = std::iter::repeat_n([marker::STRICT_ARRAY, 0, 0, 0, 1], MAX_DEPTH)
            .flatten()
            .collect();
        bytes.push(marker::NULL);
        assert_eq!(decode_all(&bytes).unwrap().len(), 1);
    }

    #[test]
    fn huge_declared_counts_do_not_allocate_or_panic() {
        let bytes = [marker::STRICT_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF, marker::NULL];
        assert!(matches!(
            decode_all(&bytes),
            Err(Amf0Error::UnexpectedEnd { .. })
        ));
        let bytes = [marker::LONG_STRING, 0xFF, 0xFF, 0xFF, 0xFF, b'a'];
        assert!(matches!(
            decode_all(&bytes),
            Err(Amf0Error::UnexpectedEnd { offset: 5 })
        ));
    }

    #[test]
    fn truncated_number_is_an_error() {
        assert_eq!(
            decode_all(&[marker::NUMBER, 1, 2, 3]),
            Err(Amf0Error::UnexpectedEnd { offset: 1 })
        );
    }

    #[test]
    fn unknown_marker_and_stray_object_end_are_errors() {
        assert_eq!(
            decode_all(&[marker::NULL, 0x11]),
            Err(Amf0Error::UnsupportedMarker {
                marker: 0x11,
                offset: 1
            })
        );
        assert_eq!(
            decode_all(&[marker::OBJECT_END]),
            Err(Amf0Error::UnexpectedObjectEnd { offset: 0 })
        );
    }

    #[test]
    fn ecma_array_without_end_marker_at_end_of_input_is_accepted() {
        let mut bytes = vec![marker::ECMA_ARRAY, 0, 0, 0, 1, 0, 1, b'w'];
        bytes.push(marker::NUMBER);
        bytes.extend_from_slice(&320.0f64.to_be_bytes());
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values[0].get("w").and_then(Value::as_number), Some(320.0));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let bytes = [marker::STRING, 0, 2, 0xFF, b'a'];
        assert_eq!(decode_all(&bytes).unwrap()[0].as_str(), Some("\u{FFFD}a"));
    }

    #[test]
    fn reference_date_and_unsupported_decode() {
        let mut bytes = vec![marker::REFERENCE, 0, 5, marker::DATE];
        bytes.extend_from_slice(&1.5f64.to_be_bytes());
        bytes.extend_from_slice(&[0xFF, 0xFE, marker::UNSUPPORTED]);
        assert_eq!(
            decode_all(&bytes).unwrap(),
            vec![
                Value::Reference(5),
                Value::Date {
                    millis: 1.5,
                    time_zone: -2
                },
                Value::Unsupported
            ]
        );
    }
}
