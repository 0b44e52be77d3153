//! AMF0 encoding into a `BytesMut`.

use bytes::{BufMut, BytesMut};

use super::{Value, marker};

/// Encodes every value in order.
pub fn encode_all(values: &[Value], out: &mut BytesMut) {
    for value in values {
        encode(value, out);
    }
}

/// Encodes one value. Strings longer than a short string can hold become long strings.
pub fn encode(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Number(n) => write_number(*n, out),
        Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) => write_string(s, out),
        Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            write_properties(props, out);
        }
        Value::Null => out.put_u8(marker::NULL),
        Value::Undefined => out.put_u8(marker::UNDEFINED),
        Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Value::Reference(index) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*index);
        }
        Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
            write_properties(props, out);
        }
        Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode(item, out);
            }
        }
        Value::Date { millis, time_zone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
        Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_utf8(s, out);
        }
    }
}

pub fn write_number(n: f64, out: &mut BytesMut) {
    out.put_u8(marker::NUMBER);
    out.put_f64(n);
}

/// A string value (short form up to 65535 bytes, long form beyond).
pub fn write_string(s: &str, out: &mut BytesMut) {
    match u16::try_from(s.len()) {
        Ok(len) => {
            out.put_u8(marker::STRING);
            out.put_u16(len);
            out.put_slice(s.as_bytes());
        }
        Err(_) => {
            out.put_u8(marker::LONG_STRING);
            put_long_utf8(s, out);
        }
    }
}

/// One `key: value` pair inside an object whose marker the caller wrote.
pub fn write_property(key: &str, value: &Value, out: &mut BytesMut) {
    put_key(key, out);
    encode(value, out);
}

/// The empty key and end marker that close an object.
pub fn write_object_end(out: &mut BytesMut) {
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

fn write_properties(props: &[(String, Value)], out: &mut BytesMut) {
    for (key, value) in props {
        write_property(key, value, out);
    }
    write_object_end(out);
}

/// Keys have a 16-bit length; a longer key (never produced by liverec) is cut at a char
/// boundary rather than corrupting the stream.
fn put_key(key: &str, out: &mut BytesMut) {
    let mut end = key.len().min(usize::from(u16::MAX));
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = key.as_bytes().get(..end).unwrap_or_default();
    out.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.put_slice(bytes);
}

fn put_long_utf8(s: &str, out: &mut BytesMut) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.put_u32(len);
    out.put_slice(s.as_bytes().get(..len as usize).unwrap_or(s.as_bytes()));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::amf0::{MAX_DEPTH, decode_all};

    fn value_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("NaN never equals itself", |n| !n.is_nan())
                .prop_map(Value::Number),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,40}".prop_map(Value::String),
            Just(Value::Null),
            Just(Value::Undefined),
            Just(Value::Unsupported),
            any::<u16>().prop_map(Value::Reference),
            (-1e15f64..1e15, any::<i16>())
                .prop_map(|(millis, time_zone)| Value::Date { millis, time_zone }),
            ".{0,20}".prop_map(Value::XmlDocument),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-zA-Z]{1,10}", inner.clone()), 0..6)
                    .prop_map(Value::Object),
                prop::collection::vec(("[a-zA-Z]{1,10}", inner.clone()), 0..6)
                    .prop_map(Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(value_strategy(), 0..5)) {
            let mut out = BytesMut::new();
            encode_all(&values, &mut out);
            prop_assert_eq!(decode_all(&out).unwrap(), values);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_all(&bytes);
        }
    }

    #[test]
    fn long_strings_switch_form() {
        let long = "x".repeat(70_000);
        let mut out = BytesMut::new();
        write_string(&long, &mut out);
        assert_eq!(out[0], marker::LONG_STRING);
        assert_eq!(decode_all(&out).unwrap(), vec![Value::String(long)]);
    }

    #[test]
    fn deep_values_encode_and_decode_at_the_cap() {
        let mut value = Value::Null;
        for _ in 0..MAX_DEPTH {
            value = Value::StrictArray(vec![value]);
        }
        let mut out = BytesMut::new();
        encode(&value, &mut out);
        assert_eq!(decode_all(&out).unwrap(), vec![value.clone()]);
        let mut out = BytesMut::new();
        encode(&Value::Object(vec![("a".into(), value)]), &mut out);
        assert!(decode_all(&out).is_err());
    }
}
