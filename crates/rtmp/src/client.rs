//! A small RTMP client: what tests and benchmarks of the whole project use to publish (and to
//! send malformed input on purpose), and what liverec pulls streams from other servers with
//! ([`Client::play`], [`Client::next_media`]). It speaks the simple handshake and the same
//! command flows as ffmpeg.

mod error;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use liverec_media::flv::{FileReader, TagKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

pub use error::ClientError;

use crate::amf0::{self, Value};
use crate::chunk;
use crate::handler::MediaKind;
use crate::handshake::{PACKET_SIZE, RTMP_VERSION};
use crate::message::{Message, type_id};
use crate::session::{CONNECTION_CSID, Command, STREAM_CSID, write_command};

/// How long the client waits for any one answer of the server.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The buffer a playing client announces (ffmpeg's default).
const PLAY_BUFFER_MS: u32 = 3000;

/// Chunk streams of the client's media, as ffmpeg numbers them.
const AUDIO_CSID: u32 = 4;
const VIDEO_CSID: u32 = 6;
const DATA_CSID: u32 = 8;

/// A connected RTMP client.
#[derive(Debug)]
pub struct Client {
    socket: TcpStream,
    reader: chunk::Reader,
    writer: chunk::Writer,
    rbuf: BytesMut,
    wbuf: BytesMut,
    scratch: BytesMut,
    next_transaction: f64,
    stream_id: u32,
    /// Bytes received, and when the last Acknowledgement was sent (a player must acknowledge
    /// every window, or some servers stop sending).
    received: u64,
    acknowledged: u64,
    /// The server's Window Acknowledgement Size (0 until it sends one).
    ack_window: u32,
}

/// One media message of a played stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayedMedia {
    pub kind: MediaKind,
    pub timestamp: u32,
    /// An FLV tag body (for `Data`, the `@setDataFrame` wrapper removed).
    pub body: bytes::Bytes,
}

impl Client {
    /// TCP connect and handshake only (for tests that send raw bytes next).
    pub async fn handshake(addr: SocketAddr) -> Result<Self, ClientError> {
        let socket = timeout(CLIENT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                waiting_for: "TCP connect",
            })??;
        socket.set_nodelay(true)?;
        let mut client = Self {
            socket,
            reader: chunk::Reader::new(),
            writer: chunk::Writer::new(),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::new(),
            scratch: BytesMut::new(),
            next_transaction: 1.0,
            stream_id: 0,
            received: 0,
            acknowledged: 0,
            ack_window: 0,
        };
        let mut c0c1 = vec![0u8; 1 + PACKET_SIZE];
        c0c1[0] = RTMP_VERSION;
        // Time and zero fields stay 0 (simple handshake); the rest is a recognisable pattern.
        for (i, b) in c0c1.iter_mut().enumerate().skip(9) {
            *b = (i % 256) as u8;
        }
        client.socket.write_all(&c0c1).await?;
        let waiting_for = "S0+S1+S2";
        while client.rbuf.len() < 1 + 2 * PACKET_SIZE {
            client.read_more(waiting_for).await?;
        }
        let s0s1s2 = client.rbuf.split_to(1 + 2 * PACKET_SIZE);
        // C2 echoes S1.
        client
            .socket
            .write_all(s0s1s2.get(1..1 + PACKET_SIZE).unwrap_or_default())
            .await?;
        Ok(client)
    }

    /// Handshake and `connect` to `app`; waits for `NetConnection.Connect.Success`.
    pub async fn connect(addr: SocketAddr, app: &str, tc_url: &str) -> Result<Self, ClientError> {
        Self::connect_with(addr, app, tc_url, Vec::new()).await
    }

    /// Like [`Client::connect`], with extra properties in the command object (E-RTMP
    /// `fourCcList`, `capsEx` …).
    pub async fn connect_with(
        addr: SocketAddr,
        app: &str,
        tc_url: &str,
        extra: Vec<(String, Value)>,
    ) -> Result<Self, ClientError> {
        let mut client = Self::handshake(addr).await?;
        client.connect_command(app, tc_url, extra).await?;
        Ok(client)
    }

    /// Sends `connect` and returns the `_result`'s properties object.
    pub async fn connect_command(
        &mut self,
        app: &str,
        tc_url: &str,
        extra: Vec<(String, Value)>,
    ) -> Result<Value, ClientError> {
        let mut object = vec![
            ("app".to_owned(), Value::String(app.into())),
            ("type".to_owned(), Value::String("nonprivate".into())),
            (
                "flashVer".to_owned(),
                Value::String("FMLE/3.0 (compatible; liverec)".into()),
            ),
            ("tcUrl".to_owned(), Value::String(tc_url.into())),
        ];
        object.extend(extra);
        let txn = self.call("connect", Value::Object(object), Vec::new());
        self.flush().await?;
        let reply = self.wait_result(txn, "connect").await?;
        Ok(reply.object)
    }

    /// `releaseStream`, `FCPublish`, `createStream`, then `publish` of `name` (which may carry
    /// a `?query`); waits for `NetStream.Publish.Start`, or returns
    /// [`ClientError::Refused`] with the server's code.
    pub async fn publish(&mut self, name: &str) -> Result<(), ClientError> {
        let arg = vec![Value::String(name.into())];
        self.call("releaseStream", Value::Null, arg.clone());
        self.call("FCPublish", Value::Null, arg);
        let txn = self.call("createStream", Value::Null, Vec::new());
        self.flush().await?;
        let reply = self.wait_result(txn, "createStream").await?;
        self.stream_id = reply.args.first().and_then(Value::as_number).unwrap_or(1.0) as u32;
        let values = [
            Value::String("publish".into()),
            Value::Number(0.0),
            Value::Null,
            Value::String(name.into()),
            Value::String("live".into()),
        ];
        write_command(
            &mut self.writer,
            STREAM_CSID,
            self.stream_id,
            &values,
            &mut self.scratch,
            &mut self.wbuf,
        );
        self.flush().await?;
        self.wait_status("onStatus of publish", "NetStream.Publish.Start")
            .await
    }

    /// `createStream`, then `play` of `name` (which may carry a `?query`); waits for
    /// `NetStream.Play.Start`, or returns [`ClientError::Refused`] with the server's code.
    pub async fn play(&mut self, name: &str) -> Result<(), ClientError> {
        let txn = self.call("createStream", Value::Null, Vec::new());
        self.flush().await?;
        let reply = self.wait_result(txn, "createStream").await?;
        self.stream_id = reply.args.first().and_then(Value::as_number).unwrap_or(1.0) as u32;
        let values = [
            Value::String("play".into()),
            Value::Number(0.0),
            Value::Null,
            Value::String(name.into()),
            // Live, or recorded if there is no live stream: what ffmpeg asks for.
            Value::Number(-2000.0),
        ];
        write_command(
            &mut self.writer,
            STREAM_CSID,
            self.stream_id,
            &values,
            &mut self.scratch,
            &mut self.wbuf,
        );
        // The buffer length players announce (SRS and others wait for it).
        crate::control::write_set_buffer_length(
            &mut self.writer,
            self.stream_id,
            PLAY_BUFFER_MS,
            &mut self.wbuf,
        );
        self.flush().await?;
        self.wait_status("onStatus of play", "NetStream.Play.Start")
            .await
    }

    /// Reads until an `onStatus` with code `started`, or one of level `error`
    /// ([`ClientError::Refused`]).
    async fn wait_status(
        &mut self,
        waiting_for: &'static str,
        started: &str,
    ) -> Result<(), ClientError> {
        loop {
            let message = self.next_message(waiting_for).await?;
            let Some(cmd) = command(&message)? else {
                continue;
            };
            if cmd.name != "onStatus" {
                continue;
            }
            let (level, code, description) = status_fields(&cmd);
            if level == "error" {
                return Err(ClientError::Refused { code, description });
            }
            if code == started {
                return Ok(());
            }
        }
    }

    /// The next media message of the played stream; `None` once the server says the stream
    /// ended (`NetStream.Play.Stop`, `UnpublishNotify`, `StreamEOF`). Acknowledges what was
    /// received and answers pings on the way. A silent server is an error after
    /// [`CLIENT_TIMEOUT`].
    pub async fn next_media(&mut self) -> Result<Option<PlayedMedia>, ClientError> {
        loop {
            let message = self.next_message("the played stream").await?;
            self.acknowledge().await?;
            match message.type_id {
                type_id::AUDIO | type_id::VIDEO if !message.payload.is_empty() => {
                    let kind = if message.type_id == type_id::AUDIO {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    };
                    return Ok(Some(PlayedMedia {
                        kind,
                        timestamp: message.timestamp,
                        body: message.payload,
                    }));
                }
                type_id::DATA_AMF0 => {
                    let mut reader = amf0::Reader::new(&message.payload);
                    let body = match reader.read_value() {
                        Ok(Value::String(name)) if name == "@setDataFrame" => {
                            message.payload.slice(reader.position()..)
                        }
                        Ok(Value::String(name)) if name.starts_with('|') => continue,
                        _ => message.payload,
                    };
                    return Ok(Some(PlayedMedia {
                        kind: MediaKind::Data,
                        timestamp: message.timestamp,
                        body,
                    }));
                }
                type_id::WINDOW_ACK_SIZE => {
                    if let Some(size) = crate::control::parse_u32(&message.payload) {
                        self.ack_window = size;
                    }
                }
                type_id::USER_CONTROL => match crate::control::parse_user_control(&message.payload)
                {
                    Some((crate::control::event::PING_REQUEST, data)) => {
                        crate::control::write_user_control(
                            &mut self.writer,
                            crate::control::event::PING_RESPONSE,
                            data,
                            &mut self.wbuf,
                        );
                        self.flush().await?;
                    }
                    Some((crate::control::event::STREAM_EOF, _)) => return Ok(None),
                    _ => {}
                },
                type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                    let Some(cmd) = command(&message)? else {
                        continue;
                    };
                    if cmd.name == "onStatus" {
                        let (_, code, _) = status_fields(&cmd);
                        if matches!(
                            code.as_str(),
                            "NetStream.Play.Stop" | "NetStream.Play.UnpublishNotify"
                        ) {
                            return Ok(None);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends an Acknowledgement once a window of the server's size was received.
    async fn acknowledge(&mut self) -> Result<(), ClientError> {
        if self.ack_window > 0 && self.received - self.acknowledged >= u64::from(self.ack_window) {
            self.acknowledged = self.received;
            crate::control::write_acknowledgement(
                &mut self.writer,
                self.received as u32,
                &mut self.wbuf,
            );
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends SetChunkSize and uses `size` for everything sent after it.
    pub async fn set_chunk_size(&mut self, size: u32) -> Result<(), ClientError> {
        self.writer.write_set_chunk_size(size, &mut self.wbuf);
        self.flush().await
    }

    /// Sends one media message on the published stream. `Data` bodies are FLV script tag
    /// bodies (`onMetaData` …); they are wrapped in `@setDataFrame` as ffmpeg does.
    pub async fn send_media(
        &mut self,
        kind: MediaKind,
        timestamp: u32,
        body: &[u8],
    ) -> Result<(), ClientError> {
        self.queue_media(kind, timestamp, body);
        self.flush().await
    }

    /// Like [`Client::send_media`], but only chunks the message into the output buffer;
    /// [`Client::flush_queued`] sends what was queued in one write (a load generator sends a
    /// batch of due frames per wake-up so).
    pub fn queue_media(&mut self, kind: MediaKind, timestamp: u32, body: &[u8]) {
        let (csid, ty) = match kind {
            MediaKind::Audio => (AUDIO_CSID, type_id::AUDIO),
            MediaKind::Video => (VIDEO_CSID, type_id::VIDEO),
            MediaKind::Data => (DATA_CSID, type_id::DATA_AMF0),
        };
        if kind == MediaKind::Data {
            self.scratch.clear();
            amf0::write_string("@setDataFrame", &mut self.scratch);
            self.scratch.extend_from_slice(body);
            self.writer.write(
                csid,
                timestamp,
                ty,
                self.stream_id,
                &self.scratch,
                &mut self.wbuf,
            );
        } else {
            self.writer
                .write(csid, timestamp, ty, self.stream_id, body, &mut self.wbuf);
        }
    }

    /// Writes everything [`Client::queue_media`] queued.
    pub async fn flush_queued(&mut self) -> Result<(), ClientError> {
        self.flush().await
    }

    /// Sends a message exactly as given (any type, stream, chunk stream).
    pub async fn send_message(&mut self, message: &Message) -> Result<(), ClientError> {
        self.writer.write(
            message.csid,
            message.timestamp,
            message.type_id,
            message.stream_id,
            &message.payload,
            &mut self.wbuf,
        );
        self.flush().await
    }

    /// Writes raw bytes to the socket (malformed-input tests).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.socket.write_all(bytes).await?;
        Ok(())
    }

    /// The socket itself.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// The next message from the server.
    pub async fn next_message(
        &mut self,
        waiting_for: &'static str,
    ) -> Result<Message, ClientError> {
        loop {
            if let Some(message) = self.reader.read(&mut self.rbuf)? {
                return Ok(message);
            }
            self.read_more(waiting_for).await?;
        }
    }

    /// Reads until the server closes the connection; returns the commands it sent meanwhile.
    pub async fn read_until_closed(&mut self) -> Result<Vec<Command>, ClientError> {
        let mut commands = Vec::new();
        loop {
            match self.next_message("the server to close").await {
                Ok(message) => commands.extend(command(&message)?),
                Err(ClientError::Closed { .. }) => return Ok(commands),
                Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(commands);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `FCUnpublish` and `deleteStream`, then closes the socket.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if self.stream_id != 0 {
            self.call("FCUnpublish", Value::Null, Vec::new());
            self.call(
                "deleteStream",
                Value::Null,
                vec![Value::Number(f64::from(self.stream_id))],
            );
            self.flush().await?;
        }
        self.socket.shutdown().await?;
        Ok(())
    }

    /// Queues a connection command with the next transaction id; returns the id.
    fn call(&mut self, name: &str, object: Value, args: Vec<Value>) -> f64 {
        let txn = self.next_transaction;
        self.next_transaction += 1.0;
        let mut values = vec![Value::String(name.into()), Value::Number(txn), object];
        values.extend(args);
        write_command(
            &mut self.writer,
            CONNECTION_CSID,
            0,
            &values,
            &mut self.scratch,
            &mut self.wbuf,
        );
        txn
    }

    async fn wait_result(
        &mut self,
        txn: f64,
        waiting_for: &'static str,
    ) -> Result<Command, ClientError> {
        loop {
            let message = self.next_message(waiting_for).await?;
            let Some(cmd) = command(&message)? else {
                continue;
            };
            if cmd.transaction_id != txn {
                continue;
            }
            match cmd.name.as_str() {
                "_result" => return Ok(cmd),
                "_error" => {
                    return Err(ClientError::CommandFailed {
                        command: waiting_for,
                    });
                }
                _ => {}
            }
        }
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.wbuf.is_empty() {
            timeout(CLIENT_TIMEOUT, self.socket.write_all(&self.wbuf))
                .await
                .map_err(|_| ClientError::Timeout {
                    waiting_for: "a write",
                })??;
            self.wbuf.clear();
        }
        Ok(())
    }

    async fn read_more(&mut self, waiting_for: &'static str) -> Result<(), ClientError> {
        self.rbuf.reserve(64 * 1024);
        let n = timeout(CLIENT_TIMEOUT, self.socket.read_buf(&mut self.rbuf))
            .await
            .map_err(|_| ClientError::Timeout { waiting_for })??;
        if n == 0 {
            return Err(ClientError::Closed { waiting_for });
        }
        self.received += n as u64;
        Ok(())
    }
}

/// `level`, `code` and `description` of an `onStatus`.
fn status_fields(cmd: &Command) -> (String, String, String) {
    let info = cmd.args.first();
    let field = |key| {
        info.and_then(|i| i.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("level"), field("code"), field("description"))
}

/// The command in `message`, if it is a command message.
fn command(message: &Message) -> Result<Option<Command>, ClientError> {
    if matches!(
        message.type_id,
        type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3
    ) {
        return Ok(Some(Command::parse(message.type_id, &message.payload)?));
    }
    Ok(None)
}

/// Options of [`publish_flv_file`].
#[derive(Clone, Debug)]
pub struct FlvPublish<'a> {
    pub app: &'a str,
    pub tc_url: &'a str,
    /// Publish name, with an optional `?query`.
    pub stream: &'a str,
    /// Send tags at their timestamps (like `ffmpeg -re`) instead of as fast as possible.
    pub realtime: bool,
    pub chunk_size: u32,
}

/// Publishes every tag of an FLV file and closes; returns the number of tags sent.
pub async fn publish_flv_file(
    addr: SocketAddr,
    path: &Path,
    opts: &FlvPublish<'_>,
) -> Result<usize, ClientError> {
    let data = tokio::fs::read(path).await?;
    let tags = FileReader::new(data.into())?;
    let mut client = Client::connect(addr, opts.app, opts.tc_url).await?;
    client.set_chunk_size(opts.chunk_size).await?;
    client.publish(opts.stream).await?;
    let start = Instant::now();
    let mut sent = 0;
    for tag in tags {
        let tag = tag?;
        if opts.realtime {
            tokio::time::sleep_until(start + Duration::from_millis(u64::from(tag.timestamp))).await;
        }
        let kind = match tag.kind {
            TagKind::Audio => MediaKind::Audio,
            TagKind::Video => MediaKind::Video,
            TagKind::Script => MediaKind::Data,
        };
        client.send_media(kind, tag.timestamp, &tag.body).await?;
        sent += 1;
    }
    client.close().await?;
    Ok(sent)
}
