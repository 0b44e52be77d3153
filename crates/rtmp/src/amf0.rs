//! AMF0 (Action Message Format 0): the encoding of RTMP command and data messages.
//!
//! In-house rather than `scuffle-amf0`: that crate has no AMF0 references and its serde path
//! makes a depth cap hard to guarantee. Here decoding works on a byte slice, never panics, caps
//! nesting at [`MAX_DEPTH`], never trusts a declared count for an allocation, and turns invalid
//! UTF-8 into replacement characters instead of failing a whole command.

mod error;
mod reader;
mod writer;

pub use error::Amf0Error;
pub use reader::{Reader, decode_all};
pub use writer::{
    encode, encode_all, write_number, write_object_end, write_property, write_string,
};

pub use reader::{MAX_DEPTH, MAX_VALUES};

/// Type markers of the AMF0 spec, section 2.1.
pub(crate) mod marker {
    pub(crate) const NUMBER: u8 = 0x00;
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const STRING: u8 = 0x02;
    pub(crate) const OBJECT: u8 = 0x03;
    pub(crate) const NULL: u8 = 0x05;
    pub(crate) const UNDEFINED: u8 = 0x06;
    pub(crate) const REFERENCE: u8 = 0x07;
    pub(crate) const ECMA_ARRAY: u8 = 0x08;
    pub(crate) const OBJECT_END: u8 = 0x09;
    pub(crate) const STRICT_ARRAY: u8 = 0x0A;
    pub(crate) const DATE: u8 = 0x0B;
    pub(crate) const LONG_STRING: u8 = 0x0C;
    pub(crate) const UNSUPPORTED: u8 = 0x0D;
    pub(crate) const XML_DOCUMENT: u8 = 0x0F;
}

/// One decoded AMF0 value. Objects keep their property order (commands are echoed back).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    /// A string; encoded as a long string when longer than 65535 bytes.
    String(String),
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    /// Index into the message's table of complex values; kept as is, never resolved (no
    /// RTMP publisher sends one, and resolving would let a message reference itself).
    Reference(u16),
    /// Associative array; the declared count is ignored on decode, as every reader does.
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the epoch and a time-zone field that the spec says to ignore.
    Date {
        millis: f64,
        time_zone: i16,
    },
    /// The "unsupported" marker.
    Unsupported,
    /// An XML document (carried like a long string).
    XmlDocument(String),
}

impl Value {
    /// The string inside `String`, or `None`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside `Number`, or `None`.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties of an object or ECMA array, or `None`.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => Some(props),
            _ => None,
        }
    }

    /// The value of property `key` of an object or ECMA array (the first one if repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}
