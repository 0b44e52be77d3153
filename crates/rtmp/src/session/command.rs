//! Command messages (RTMP spec 7.1.1, 7.2): parsing the client's, writing the server's.

use bytes::BytesMut;

use super::SessionError;
use crate::amf0::{self, Value};
use crate::chunk::Writer;
use crate::message::type_id;

/// Chunk stream of NetConnection commands (message stream 0).
pub const CONNECTION_CSID: u32 = 3;
/// Chunk stream of NetStream commands and statuses (message stream = the created stream).
pub const STREAM_CSID: u32 = 5;

/// A decoded command: name, transaction id, command object and further arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction_id: f64,
    /// The command object (`Null` for most stream commands).
    pub object: Value,
    pub args: Vec<Value>,
}

impl Command {
    /// Decodes a command message. AMF3 commands (type 17) carry a leading format byte and then,
    /// from every known encoder, AMF0 values: the byte is skipped, as nginx-rtmp does.
    pub fn parse(message_type: u8, payload: &[u8]) -> Result<Self, SessionError> {
        let body = if message_type == type_id::COMMAND_AMF3 {
            payload.get(1..).unwrap_or_default()
        } else {
            payload
        };
        let values = amf0::decode_all(body).map_err(|source| SessionError::InvalidCommand {
            type_id: message_type,
            source,
        })?;
        let mut values = values.into_iter();
        let Some(Value::String(name)) = values.next() else {
            return Err(SessionError::MissingCommandName {
                type_id: message_type,
            });
        };
        let transaction_id = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Value::Null);
        Ok(Self {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }

    /// The first argument as a string (the stream name of publish, play, FCPublish …).
    pub fn first_string_arg(&self) -> Option<&str> {
        self.args.first().and_then(Value::as_str)
    }
}

/// Encodes `values` as one AMF0 command message and chunks it into `out`. `scratch` is reused.
pub fn write_command(
    writer: &mut Writer,
    csid: u32,
    stream_id: u32,
    values: &[Value],
    scratch: &mut BytesMut,
    out: &mut BytesMut,
) {
    scratch.clear();
    amf0::encode_all(values, scratch);
    writer.write(csid, 0, type_id::COMMAND_AMF0, stream_id, scratch, out);
}

/// An `onStatus` information object.
pub fn status_object(level: &str, code: &str, description: &str) -> Value {
    Value::Object(vec![
        ("level".into(), Value::String(level.into())),
        ("code".into(), Value::String(code.into())),
        ("description".into(), Value::String(description.into())),
    ])
}

/// `onStatus(0, null, info)` on a message stream.
pub fn write_on_status(
    writer: &mut Writer,
    stream_id: u32,
    info: Value,
    scratch: &mut BytesMut,
    out: &mut BytesMut,
) {
    let values = [
        Value::String("onStatus".into()),
        Value::Number(0.0),
        Value::Null,
        info,
    ];
    write_command(writer, STREAM_CSID, stream_id, &values, scratch, out);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn encode(values: &[Value]) -> BytesMut {
        let mut out = BytesMut::new();
        amf0::encode_all(values, &mut out);
        out
    }

    #[test]
    fn parses_publish() {
        let body = encode(&[
            Value::String("publish".into()),
            Value::Number(5.0),
            Value::Null,
            Value::String("s1?a=b".into()),
            Value::String("live".into()),
        ]);
        let cmd = Command::parse(type_id::COMMAND_AMF0, &body).unwrap();
        assert_eq!(cmd.name, "publish");
        assert_eq!(cmd.transaction_id, 5.0);
        assert_eq!(cmd.first_string_arg(), Some("s1?a=b"));
        assert_eq!(cmd.args.len(), 2);
    }

    #[test]
    fn amf3_command_skips_its_first_byte() {
        let mut body = BytesMut::from(&[0u8][..]);
        body.extend_from_slice(&encode(&[
            Value::String("deleteStream".into()),
            Value::Number(0.0),
        ]));
        let cmd = Command::parse(type_id::COMMAND_AMF3, &body).unwrap();
        assert_eq!(cmd.name, "deleteStream");
        assert_eq!(cmd.object, Value::Null);
        assert!(Command::parse(type_id::COMMAND_AMF3, &[]).is_err());
    }

    #[test]
    fn garbage_and_nameless_commands_are_errors() {
        assert!(matches!(
            Command::parse(type_id::COMMAND_AMF0, &[0x02, 0xFF]),
            Err(SessionError::InvalidCommand { .. })
        ));
        assert_eq!(
            Command::parse(type_id::COMMAND_AMF0, &encode(&[Value::Number(1.0)])),
            Err(SessionError::MissingCommandName {
                type_id: type_id::COMMAND_AMF0
            })
        );
    }
}
