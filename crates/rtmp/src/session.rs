//! The RTMP session (sans-IO): messages in, events and reply bytes out.
//!
//! Publishing follows the command flow of ffmpeg, OBS (librtmp) and GStreamer: `connect` →
//! `releaseStream` / `FCPublish` / `createStream` → `publish` → `@setDataFrame` and media →
//! `FCUnpublish` / `deleteStream`. A publish is only a request until the caller answers it with
//! [`Session::accept_publish`] or [`Session::refuse_publish`].
//!
//! Playing: `connect` → `createStream` → `play` (ffmpeg, ffplay, VLC and players built on
//! librtmp); the caller answers with [`Session::accept_play`] or [`Session::refuse_play`], then
//! sends the stream's tags through [`Session::write_tag`] until [`Session::end_play`] or the
//! client's `deleteStream` / `closeStream`.

mod command;
mod error;
mod query;

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tracing::debug;

pub use command::{
    CONNECTION_CSID, Command, STREAM_CSID, status_object, write_command, write_on_status,
};
pub use error::SessionError;
pub use query::{MAX_QUERY_PAIRS, percent_decode, split_name};

use crate::amf0::{self, Value};
use crate::chunk::Writer;
use crate::control::{self, BandwidthLimit, event};
use crate::handler::{MediaKind, MediaMessage, PlayRequest, PublishRequest, Refusal};
use crate::message::{Message, type_id};

/// Window Acknowledgement Size and peer bandwidth the server announces (what nginx-rtmp and
/// SRS use).
pub const DEFAULT_WINDOW_ACK_SIZE: u32 = 2_500_000;

/// Smallest acknowledgement window accepted from a peer: a tiny one would make the server
/// acknowledge after every read.
pub const MIN_ACK_WINDOW: u32 = 4096;

/// Chunk size of everything the server sends after `connect`.
pub const OUT_CHUNK_SIZE: u32 = 4096;

/// Enhanced RTMP `capsEx` bit: the server may ask the client to reconnect.
pub const CAPS_EX_RECONNECT: u32 = 0x01;

/// `capsEx` bits liverec implements (echoed to the client masked with these).
const SUPPORTED_CAPS_EX: u32 = CAPS_EX_RECONNECT;

/// What `_result` of `connect` says the server is (the value every FMS-compatible server sends).
const FMS_VERSION: &str = "FMS/3,0,1,123";
const FMS_CAPABILITIES: f64 = 31.0;

/// Enhanced RTMP capability properties of `connect`, echoed in its `_result` so E-RTMP clients
/// (ffmpeg 7+, OBS 29+) keep using enhanced tags.
const ENHANCED_PROPERTIES: [&str; 3] = ["fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap"];

/// Replies to our own calls (or status pushes) that must never be answered with `_error`.
const NEVER_ANSWERED: [&str; 4] = ["_result", "_error", "onStatus", "onBWDone"];

/// What the caller must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A valid publish arrived; answer with `accept_publish` or `refuse_publish`.
    PublishRequested(PublishRequest),
    /// Media of the accepted publish.
    MediaReceived(MediaMessage),
    /// The client unpublished (FCUnpublish, deleteStream, closeStream).
    PublishEnded,
    /// A valid play arrived; answer with `accept_play` or `refuse_play`.
    PlayRequested(PlayRequest),
    /// The client stopped playing (deleteStream, closeStream).
    PlayEnded,
}

/// Chunk streams of what a player receives, as nginx-rtmp and SRS number them.
const PLAY_AUDIO_CSID: u32 = 6;
const PLAY_VIDEO_CSID: u32 = 7;
const PLAY_DATA_CSID: u32 = 5;

#[derive(Debug)]
struct Connection {
    app: String,
    app_query: Vec<(String, String)>,
    tc_url: Option<String>,
    caps_ex: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Connected,
    /// `PublishRequested` is out; nothing else is read until it is answered.
    PublishPending {
        stream_id: u32,
        stream_name: String,
    },
    Publishing {
        stream_id: u32,
    },
    /// `PlayRequested` is out; nothing else is read until it is answered.
    PlayPending {
        stream_id: u32,
        stream_name: String,
    },
    Playing {
        stream_id: u32,
    },
    /// A refusal was sent; the caller flushes the output and closes.
    Closed,
}

/// One RTMP connection after the handshake.
#[derive(Debug)]
pub struct Session {
    peer: SocketAddr,
    state: State,
    connection: Option<Connection>,
    writer: Writer,
    out: BytesMut,
    scratch: BytesMut,
    events: VecDeque<SessionEvent>,
    ack_window: u32,
    received: u64,
    last_ack: u64,
    next_stream_id: u32,
}

impl Session {
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            state: State::AwaitingConnect,
            connection: None,
            writer: Writer::new(),
            out: BytesMut::new(),
            scratch: BytesMut::new(),
            events: VecDeque::new(),
            ack_window: DEFAULT_WINDOW_ACK_SIZE,
            received: 0,
            last_ack: 0,
            next_stream_id: 1,
        }
    }

    /// Bytes to send, appended by every call; the caller writes and clears them.
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Lets go of an empty output buffer larger than `max` (a burst that was written).
    pub fn shrink_output(&mut self, max: usize) {
        if self.out.is_empty() && self.out.capacity() > max {
            self.out = BytesMut::new();
        }
    }

    pub fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// A publish is accepted (its `on_publish` said yes and `PublishEnded` has not come yet).
    pub fn is_publishing(&self) -> bool {
        matches!(self.state, State::Publishing { .. })
    }

    /// A play is accepted and not ended.
    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    /// Answers the pending play with `NetStream.Play.Reset` and `NetStream.Play.Start`, as
    /// FMS-compatible servers do; the stream's tags may follow.
    pub fn accept_play(&mut self) {
        let State::PlayPending {
            stream_id,
            stream_name,
        } = std::mem::replace(&mut self.state, State::Connected)
        else {
            debug!("accept_play without a pending play");
            return;
        };
        control::write_user_control(
            &mut self.writer,
            event::STREAM_BEGIN,
            stream_id,
            &mut self.out,
        );
        for (code, description) in [
            (
                "NetStream.Play.Reset",
                format!("Playing and resetting {stream_name}."),
            ),
            (
                "NetStream.Play.Start",
                format!("Started playing {stream_name}."),
            ),
        ] {
            let mut info = status_object("status", code, &description);
            if let Value::Object(props) = &mut info {
                props.push(("details".into(), Value::String(stream_name.clone())));
            }
            write_on_status(
                &mut self.writer,
                stream_id,
                info,
                &mut self.scratch,
                &mut self.out,
            );
        }
        // Lets Flash-era players read the media (what nginx-rtmp and SRS send).
        let access = [
            Value::String("|RtmpSampleAccess".into()),
            Value::Boolean(true),
            Value::Boolean(true),
        ];
        self.scratch.clear();
        amf0::encode_all(&access, &mut self.scratch);
        self.writer.write(
            PLAY_DATA_CSID,
            0,
            type_id::DATA_AMF0,
            stream_id,
            &self.scratch,
            &mut self.out,
        );
        self.state = State::Playing { stream_id };
    }

    /// Answers the pending play with an error status (`NetStream.Play.StreamNotFound`,
    /// `NetStream.Play.Failed`); the session is closed after it.
    pub fn refuse_play(&mut self, refusal: &Refusal) {
        self.refuse(refusal);
    }

    /// Sends `refusal` as an error status on the stream being published or played (pending or
    /// accepted) and closes the session.
    fn refuse(&mut self, refusal: &Refusal) {
        let stream_id = match &self.state {
            State::PublishPending { stream_id, .. }
            | State::Publishing { stream_id }
            | State::PlayPending { stream_id, .. }
            | State::Playing { stream_id } => *stream_id,
            _ => 0,
        };
        self.send_error_status(stream_id, refusal.code, &refusal.description);
        self.state = State::Closed;
    }

    /// Sends one tag of the played stream.
    pub fn write_tag(&mut self, tag: &liverec_mux::flv::live::LiveTag) {
        let State::Playing { stream_id } = self.state else {
            return;
        };
        let csid = match tag.tag_type {
            type_id::AUDIO => PLAY_AUDIO_CSID,
            type_id::VIDEO => PLAY_VIDEO_CSID,
            _ => PLAY_DATA_CSID,
        };
        let type_id = match tag.tag_type {
            type_id::AUDIO | type_id::VIDEO => tag.tag_type,
            _ => type_id::DATA_AMF0,
        };
        self.writer.write_parts(
            csid,
            tag.timestamp,
            type_id,
            stream_id,
            tag.head.as_slice(),
            &tag.payload,
            &mut self.out,
        );
    }

    /// The played stream ended (its publisher left): `StreamEOF` and
    /// `NetStream.Play.UnpublishNotify`, `NetStream.Play.Stop`; the session is closed after it.
    pub fn end_play(&mut self, description: &str) {
        let State::Playing { stream_id } = self.state else {
            return;
        };
        control::write_user_control(
            &mut self.writer,
            event::STREAM_EOF,
            stream_id,
            &mut self.out,
        );
        for code in ["NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"] {
            let info = status_object("status", code, description);
            write_on_status(
                &mut self.writer,
                stream_id,
                info,
                &mut self.scratch,
                &mut self.out,
            );
        }
        self.state = State::Closed;
    }

    /// The session refused a publish and wants the connection closed once output is sent.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The `app` of `connect`, once connected.
    pub fn app(&self) -> Option<&str> {
        self.connection.as_ref().map(|c| c.app.as_str())
    }

    /// Counts received bytes. Each full window makes an Acknowledgement due; the connection
    /// decides when to send it ([`Session::acknowledge`]).
    pub fn bytes_received(&mut self, n: usize) {
        self.received = self.received.saturating_add(n as u64);
    }

    /// Bytes received on the connection so far.
    pub fn total_received(&self) -> u64 {
        self.received
    }

    /// A window of bytes arrived since the last Acknowledgement.
    pub fn acknowledgement_due(&self) -> bool {
        self.received - self.last_ack >= u64::from(self.ack_window)
    }

    /// Writes an Acknowledgement of everything received so far, if one is due.
    pub fn acknowledge(&mut self) {
        if self.acknowledgement_due() {
            self.last_ack = self.received;
            control::write_acknowledgement(&mut self.writer, self.received as u32, &mut self.out);
        }
    }

    /// Asks an E-RTMP client that announced the reconnect capability to reconnect (before a
    /// shutdown). Returns whether a request was sent.
    pub fn request_reconnect(&mut self) -> bool {
        let supported = self
            .connection
            .as_ref()
            .is_some_and(|c| c.caps_ex & CAPS_EX_RECONNECT != 0);
        if supported {
            let info = status_object(
                "status",
                "NetConnection.Connect.ReconnectRequest",
                "The server is shutting down; reconnect.",
            );
            write_on_status(&mut self.writer, 0, info, &mut self.scratch, &mut self.out);
        }
        supported
    }

    /// Answers the pending publish with `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self) {
        if !matches!(self.state, State::PublishPending { .. }) {
            debug!("accept_publish without a pending publish");
            return;
        }
        let State::PublishPending {
            stream_id,
            stream_name,
        } = std::mem::replace(&mut self.state, State::Connected)
        else {
            return;
        };
        control::write_user_control(
            &mut self.writer,
            event::STREAM_BEGIN,
            stream_id,
            &mut self.out,
        );
        let mut info = status_object(
            "status",
            "NetStream.Publish.Start",
            &format!("{stream_name} is now published."),
        );
        if let Value::Object(props) = &mut info {
            props.push(("details".into(), Value::String(stream_name)));
        }
        write_on_status(
            &mut self.writer,
            stream_id,
            info,
            &mut self.scratch,
            &mut self.out,
        );
        self.state = State::Publishing { stream_id };
    }

    /// Answers the pending publish with an error status, or ends the accepted one with it (a
    /// forbidden stream); the session is closed after it.
    pub fn refuse_publish(&mut self, refusal: &Refusal) {
        self.refuse(refusal);
    }

    /// Handles one message from the chunk reader.
    pub fn handle_message(&mut self, msg: Message) -> Result<(), SessionError> {
        if self.state == State::Closed {
            return Ok(());
        }
        match msg.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = Command::parse(msg.type_id, &msg.payload)?;
                self.handle_command(cmd, msg.stream_id)
            }
            type_id::AUDIO => {
                self.media(MediaKind::Audio, msg.timestamp, msg.payload);
                Ok(())
            }
            type_id::VIDEO => {
                self.media(MediaKind::Video, msg.timestamp, msg.payload);
                Ok(())
            }
            type_id::DATA_AMF0 => {
                self.data(msg.timestamp, msg.payload);
                Ok(())
            }
            type_id::DATA_AMF3 => {
                self.data(msg.timestamp, msg.payload.slice(1.min(msg.payload.len())..));
                Ok(())
            }
            type_id::AGGREGATE => {
                self.aggregate(msg.timestamp, &msg.payload);
                Ok(())
            }
            type_id::USER_CONTROL => {
                if let Some((event::PING_REQUEST, data)) = control::parse_user_control(&msg.payload)
                {
                    control::write_user_control(
                        &mut self.writer,
                        event::PING_RESPONSE,
                        data,
                        &mut self.out,
                    );
                }
                Ok(())
            }
            type_id::WINDOW_ACK_SIZE => {
                if let Some(size) = control::parse_u32(&msg.payload) {
                    self.ack_window = size.max(MIN_ACK_WINDOW);
                }
                Ok(())
            }
            // SetChunkSize and Abort act in the chunk reader; acknowledgements of what we send
            // (a few hundred bytes) and the peer's bandwidth wish need nothing.
            _ => Ok(()),
        }
    }

    fn handle_command(&mut self, cmd: Command, stream_id: u32) -> Result<(), SessionError> {
        if self.state == State::AwaitingConnect && cmd.name != "connect" {
            return Err(SessionError::NotConnected { command: cmd.name });
        }
        match cmd.name.as_str() {
            "connect" => self.connect(&cmd),
            "releaseStream" => {
                self.result(&cmd, Value::Undefined);
                Ok(())
            }
            "FCPublish" => {
                let name = cmd.first_string_arg().unwrap_or_default();
                let info = Value::Object(vec![
                    (
                        "code".into(),
                        Value::String("NetStream.Publish.Start".into()),
                    ),
                    ("description".into(), Value::String(name.into())),
                ]);
                let values = [
                    Value::String("onFCPublish".into()),
                    Value::Number(0.0),
                    Value::Null,
                    info,
                ];
                write_command(
                    &mut self.writer,
                    CONNECTION_CSID,
                    0,
                    &values,
                    &mut self.scratch,
                    &mut self.out,
                );
                self.result(&cmd, Value::Undefined);
                Ok(())
            }
            "createStream" => {
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.wrapping_add(1).max(1);
                self.result(&cmd, Value::Number(f64::from(id)));
                Ok(())
            }
            "publish" => self.publish(&cmd, stream_id),
            "FCUnpublish" | "deleteStream" | "closeStream" => {
                if self.is_publishing() {
                    self.state = State::Connected;
                    self.events.push_back(SessionEvent::PublishEnded);
                } else if self.is_playing() && cmd.name != "FCUnpublish" {
                    self.state = State::Connected;
                    self.events.push_back(SessionEvent::PlayEnded);
                }
                Ok(())
            }
            "play" => self.play(&cmd, stream_id),
            // Asked by some players before `play`; nothing to subscribe to beforehand.
            "FCSubscribe" => {
                self.result(&cmd, Value::Undefined);
                Ok(())
            }
            // ffmpeg and ffplay ask it before playing; a live stream has no length (0).
            "getStreamLength" => {
                self.result(&cmd, Value::Number(0.0));
                Ok(())
            }
            name => {
                debug!(command = name, "ignoring unknown command");
                if cmd.transaction_id > 0.0 && !NEVER_ANSWERED.contains(&name) {
                    let info =
                        status_object("error", "NetConnection.Call.Failed", "unknown command");
                    let values = [
                        Value::String("_error".into()),
                        Value::Number(cmd.transaction_id),
                        Value::Null,
                        info,
                    ];
                    write_command(
                        &mut self.writer,
                        CONNECTION_CSID,
                        0,
                        &values,
                        &mut self.scratch,
                        &mut self.out,
                    );
                }
                Ok(())
            }
        }
    }

    fn connect(&mut self, cmd: &Command) -> Result<(), SessionError> {
        if self.state != State::AwaitingConnect {
            return Err(SessionError::AlreadyConnected);
        }
        let obj = &cmd.object;
        let mut app_query = Vec::new();
        let app = split_name(
            obj.get("app").and_then(Value::as_str).unwrap_or_default(),
            &mut app_query,
        );
        // Some clients (OBS with a trailing slash in the server URL) send "live/".
        let app = app.trim_end_matches('/').to_owned();
        let tc_url = obj.get("tcUrl").and_then(Value::as_str).map(str::to_owned);
        let object_encoding = obj
            .get("objectEncoding")
            .and_then(Value::as_number)
            .unwrap_or(0.0);
        let caps_ex = obj
            .get("capsEx")
            .and_then(Value::as_number)
            .map(|n| n as u32);

        debug!(
            app = %crate::logsafe::clipped(&app),
            tc_url = %crate::logsafe::clipped(tc_url.as_deref().unwrap_or_default()),
            object_encoding,
            caps_ex = caps_ex.unwrap_or(0),
            four_cc_list = ?obj.get("fourCcList"),
            "connect"
        );
        control::write_window_ack_size(&mut self.writer, DEFAULT_WINDOW_ACK_SIZE, &mut self.out);
        control::write_set_peer_bandwidth(
            &mut self.writer,
            DEFAULT_WINDOW_ACK_SIZE,
            BandwidthLimit::Dynamic,
            &mut self.out,
        );
        self.writer
            .write_set_chunk_size(OUT_CHUNK_SIZE, &mut self.out);

        let mut properties = vec![
            ("fmsVer".to_owned(), Value::String(FMS_VERSION.into())),
            ("capabilities".to_owned(), Value::Number(FMS_CAPABILITIES)),
            ("mode".to_owned(), Value::Number(1.0)),
        ];
        for key in ENHANCED_PROPERTIES {
            if let Some(value) = obj.get(key) {
                properties.push((key.to_owned(), value.clone()));
            }
        }
        if let Some(caps) = caps_ex {
            properties.push((
                "capsEx".to_owned(),
                Value::Number(f64::from(caps & SUPPORTED_CAPS_EX)),
            ));
        }
        let mut info = status_object(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        );
        if let Value::Object(props) = &mut info {
            props.push(("objectEncoding".into(), Value::Number(object_encoding)));
        }
        let values = [
            Value::String("_result".into()),
            Value::Number(cmd.transaction_id),
            Value::Object(properties),
            info,
        ];
        write_command(
            &mut self.writer,
            CONNECTION_CSID,
            0,
            &values,
            &mut self.scratch,
            &mut self.out,
        );
        self.connection = Some(Connection {
            app,
            app_query,
            tc_url,
            caps_ex: caps_ex.unwrap_or(0),
        });
        self.state = State::Connected;
        Ok(())
    }

    fn publish(&mut self, cmd: &Command, stream_id: u32) -> Result<(), SessionError> {
        if self.state != State::Connected {
            return Err(SessionError::AlreadyPublishing);
        }
        let Some(conn) = &self.connection else {
            return Err(SessionError::NotConnected {
                command: cmd.name.clone(),
            });
        };
        let mut query = conn.app_query.clone();
        let stream_name =
            split_name(cmd.first_string_arg().unwrap_or_default(), &mut query).to_owned();
        let publish_type = cmd
            .args
            .get(1)
            .and_then(Value::as_str)
            .unwrap_or("live")
            .to_owned();
        if !valid_name(&conn.app) || !valid_name(&stream_name) {
            self.send_error_status(
                stream_id,
                Refusal::BAD_NAME,
                "empty app or stream name, or control characters in it",
            );
            self.state = State::Closed;
            return Ok(());
        }
        let req = PublishRequest {
            app: conn.app.clone(),
            stream_name: stream_name.clone(),
            query,
            tc_url: conn.tc_url.clone(),
            publish_type,
            peer: self.peer,
        };
        self.events.push_back(SessionEvent::PublishRequested(req));
        self.state = State::PublishPending {
            stream_id,
            stream_name,
        };
        Ok(())
    }

    fn play(&mut self, cmd: &Command, stream_id: u32) -> Result<(), SessionError> {
        if self.state != State::Connected {
            return Err(SessionError::AlreadyPublishing);
        }
        let Some(conn) = &self.connection else {
            return Err(SessionError::NotConnected {
                command: cmd.name.clone(),
            });
        };
        let mut query = conn.app_query.clone();
        let stream_name =
            split_name(cmd.first_string_arg().unwrap_or_default(), &mut query).to_owned();
        if !valid_name(&conn.app) || !valid_name(&stream_name) {
            self.send_error_status(
                stream_id,
                Refusal::PLAY_NOT_FOUND,
                "empty app or stream name, or control characters in it",
            );
            self.state = State::Closed;
            return Ok(());
        }
        let req = PlayRequest {
            app: conn.app.clone(),
            stream_name: stream_name.clone(),
            query,
            tc_url: conn.tc_url.clone(),
            peer: self.peer,
        };
        self.events.push_back(SessionEvent::PlayRequested(req));
        self.state = State::PlayPending {
            stream_id,
            stream_name,
        };
        Ok(())
    }

    fn media(&mut self, kind: MediaKind, timestamp: u32, body: Bytes) {
        // Before publish (or after unpublish) media has nowhere to go; empty bodies are no tags.
        if self.is_publishing() && !body.is_empty() {
            self.events
                .push_back(SessionEvent::MediaReceived(MediaMessage {
                    kind,
                    timestamp,
                    body,
                }));
        }
    }

    /// Script data: `@setDataFrame` is unwrapped so the body reads as an FLV script tag;
    /// `@clearDataFrame` is dropped.
    fn data(&mut self, timestamp: u32, body: Bytes) {
        if !self.is_publishing() {
            return;
        }
        let mut reader = amf0::Reader::new(&body);
        let body = match reader.read_value() {
            Ok(Value::String(name)) if name == "@setDataFrame" => body.slice(reader.position()..),
            Ok(Value::String(name)) if name == "@clearDataFrame" => return,
            Ok(_) => body,
            Err(e) => {
                debug!(error = %e, "dropping data message that is not AMF0");
                return;
            }
        };
        self.media(MediaKind::Data, timestamp, body);
    }

    /// Aggregate messages hold FLV tags (header, body, previous tag size); their timestamps are
    /// made relative to the first one and moved to the aggregate's timestamp.
    fn aggregate(&mut self, timestamp: u32, payload: &Bytes) {
        const TAG_HEADER: usize = 11;
        const PREVIOUS_TAG_SIZE: usize = 4;
        let mut pos = 0usize;
        let mut first_ts = None;
        while let Some(header) = payload.get(pos..pos + TAG_HEADER) {
            let tag_type = header[0];
            let size =
                usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
            let ts = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
            let start = pos + TAG_HEADER;
            let Some(end) = start.checked_add(size).filter(|end| *end <= payload.len()) else {
                debug!("truncated tag in aggregate message");
                return;
            };
            let base = *first_ts.get_or_insert(ts);
            let ts = timestamp.wrapping_add(ts.wrapping_sub(base));
            let body = payload.slice(start..end);
            match tag_type {
                type_id::AUDIO => self.media(MediaKind::Audio, ts, body),
                type_id::VIDEO => self.media(MediaKind::Video, ts, body),
                type_id::DATA_AMF0 => self.data(ts, body),
                _ => {}
            }
            pos = end + PREVIOUS_TAG_SIZE;
        }
    }

    /// `_result(txn, null, value)` for a command that expects one.
    fn result(&mut self, cmd: &Command, value: Value) {
        if cmd.transaction_id <= 0.0 {
            return;
        }
        let values = [
            Value::String("_result".into()),
            Value::Number(cmd.transaction_id),
            Value::Null,
            value,
        ];
        write_command(
            &mut self.writer,
            CONNECTION_CSID,
            0,
            &values,
            &mut self.scratch,
            &mut self.out,
        );
    }

    fn send_error_status(&mut self, stream_id: u32, code: &str, description: &str) {
        let info = status_object("error", code, description);
        write_on_status(
            &mut self.writer,
            stream_id,
            info,
            &mut self.scratch,
            &mut self.out,
        );
    }
}

/// Non-empty and free of NUL and other control characters. Everything else about names is the
/// hub's policy.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::chunk::Reader;

    fn peer() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 50_000))
    }

    fn command(stream_id: u32, values: &[Value]) -> Message {
        let mut payload = BytesMut::new();
        amf0::encode_all(values, &mut payload);
        Message {
            csid: 3,
            timestamp: 0,
            type_id: type_id::COMMAND_AMF0,
            stream_id,
            payload: payload.freeze(),
        }
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn n(v: f64) -> Value {
        Value::Number(v)
    }

    fn connect_command(extra: Vec<(String, Value)>) -> Message {
        let mut obj = vec![
            ("app".to_owned(), s("live?token=x")),
            ("type".to_owned(), s("nonprivate")),
            ("tcUrl".to_owned(), s("rtmp://a.example:1935/live?token=x")),
        ];
        obj.extend(extra);
        command(0, &[s("connect"), n(1.0), Value::Object(obj)])
    }

    /// Every message the session wrote, decoded by a fresh chunk reader.
    fn sent(session: &mut Session, reader: &mut Reader) -> Vec<Message> {
        let mut out = Vec::new();
        let buf = session.output();
        while let Some(m) = reader.read(buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty());
        out
    }

    fn commands(messages: &[Message]) -> Vec<Command> {
        messages
            .iter()
            .filter(|m| m.type_id == type_id::COMMAND_AMF0)
            .map(|m| Command::parse(m.type_id, &m.payload).unwrap())
            .collect()
    }

    fn code(cmd: &Command) -> Option<&str> {
        cmd.args
            .first()
            .and_then(|info| info.get("code"))
            .and_then(Value::as_str)
    }

    /// connect + createStream + publish, as ffmpeg sends them.
    fn publishing_session(name: &str) -> (Session, Reader, PublishRequest) {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        session.handle_message(connect_command(vec![])).unwrap();
        session
            .handle_message(command(
                0,
                &[s("releaseStream"), n(2.0), Value::Null, s(name)],
            ))
            .unwrap();
        session
            .handle_message(command(0, &[s("FCPublish"), n(3.0), Value::Null, s(name)]))
            .unwrap();
        session
            .handle_message(command(0, &[s("createStream"), n(4.0), Value::Null]))
            .unwrap();
        session
            .handle_message(command(
                1,
                &[s("publish"), n(5.0), Value::Null, s(name), s("live")],
            ))
            .unwrap();
        let Some(SessionEvent::PublishRequested(req)) = session.next_event() else {
            panic!("no publish request");
        };
        sent(&mut session, &mut reader);
        (session, reader, req)
    }

    #[test]
    fn connect_answers_control_messages_and_success() {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        let caps = vec![
            (
                "fourCcList".to_owned(),
                Value::StrictArray(vec![s("hvc1"), s("av01")]),
            ),
            ("capsEx".to_owned(), n(15.0)),
            ("objectEncoding".to_owned(), n(3.0)),
        ];
        session.handle_message(connect_command(caps)).unwrap();
        let msgs = sent(&mut session, &mut reader);
        let types: Vec<u8> = msgs.iter().map(|m| m.type_id).collect();
        assert_eq!(
            types,
            vec![
                type_id::WINDOW_ACK_SIZE,
                type_id::SET_PEER_BANDWIDTH,
                type_id::SET_CHUNK_SIZE,
                type_id::COMMAND_AMF0
            ]
        );
        assert_eq!(reader.chunk_size(), OUT_CHUNK_SIZE);
        let result = &commands(&msgs)[0];
        assert_eq!(result.name, "_result");
        assert_eq!(result.transaction_id, 1.0);
        assert_eq!(code(result), Some("NetConnection.Connect.Success"));
        assert_eq!(result.args[0].get("objectEncoding"), Some(&n(3.0)));
        assert_eq!(
            result.object.get("fourCcList"),
            Some(&Value::StrictArray(vec![s("hvc1"), s("av01")]))
        );
        assert_eq!(result.object.get("capsEx"), Some(&n(1.0)));
        assert_eq!(session.app(), Some("live"));
        assert!(!session.is_publishing());
    }

    #[test]
    fn publish_flow_emits_request_then_media_then_end() {
        let (mut session, mut reader, req) =
            publishing_session("s1?vhost=a.example&callback_x=%41+b");
        assert_eq!(req.app, "live");
        assert_eq!(req.stream_name, "s1");
        assert_eq!(
            req.tc_url.as_deref(),
            Some("rtmp://a.example:1935/live?token=x")
        );
        assert_eq!(req.publish_type, "live");
        assert_eq!(req.peer, peer());
        assert_eq!(
            req.query,
            vec![
                ("token".to_owned(), "x".to_owned()),
                ("vhost".to_owned(), "a.example".to_owned()),
                ("callback_x".to_owned(), "A b".to_owned())
            ]
        );
        assert_eq!(req.query_value("vhost"), Some("a.example"));

        session.accept_publish();
        assert!(session.is_publishing());
        let msgs = sent(&mut session, &mut reader);
        assert_eq!(msgs[0].type_id, type_id::USER_CONTROL);
        assert_eq!(
            control::parse_user_control(&msgs[0].payload),
            Some((event::STREAM_BEGIN, 1))
        );
        let status = &commands(&msgs)[0];
        assert_eq!(status.name, "onStatus");
        assert_eq!(code(status), Some("NetStream.Publish.Start"));
        assert_eq!(msgs[1].stream_id, 1);

        let mut meta = BytesMut::new();
        amf0::encode_all(
            &[
                s("@setDataFrame"),
                s("onMetaData"),
                Value::EcmaArray(vec![("width".into(), n(320.0))]),
            ],
            &mut meta,
        );
        let meta = meta.freeze();
        session
            .handle_message(Message {
                csid: 4,
                timestamp: 0,
                type_id: type_id::DATA_AMF0,
                stream_id: 1,
                payload: meta.clone(),
            })
            .unwrap();
        let Some(SessionEvent::MediaReceived(data)) = session.next_event() else {
            panic!()
        };
        assert_eq!(data.kind, MediaKind::Data);
        assert_eq!(amf0::decode_all(&data.body).unwrap()[0], s("onMetaData"));
        assert_eq!(
            data.body.len(),
            meta.len() - 16,
            "only the @setDataFrame string is cut"
        );

        let video = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]);
        session
            .handle_message(Message {
                csid: 6,
                timestamp: 40,
                type_id: type_id::VIDEO,
                stream_id: 1,
                payload: video.clone(),
            })
            .unwrap();
        assert_eq!(
            session.next_event(),
            Some(SessionEvent::MediaReceived(MediaMessage {
                kind: MediaKind::Video,
                timestamp: 40,
                body: video
            }))
        );
        session
            .handle_message(command(
                0,
                &[s("FCUnpublish"), n(6.0), Value::Null, s("s1")],
            ))
            .unwrap();
        session
            .handle_message(command(
                1,
                &[s("deleteStream"), n(7.0), Value::Null, n(1.0)],
            ))
            .unwrap();
        assert_eq!(session.next_event(), Some(SessionEvent::PublishEnded));
        assert_eq!(session.next_event(), None, "ended once");
        assert!(!session.is_publishing());
    }

    #[test]
    fn refusal_sends_error_status_and_closes() {
        let (mut session, mut reader, _) = publishing_session("taken");
        session.refuse_publish(&Refusal::bad_name("stream is already being published"));
        assert!(session.is_closed());
        let msgs = sent(&mut session, &mut reader);
        let status = &commands(&msgs)[0];
        assert_eq!(status.name, "onStatus");
        assert_eq!(code(status), Some(Refusal::BAD_NAME));
        assert_eq!(status.args[0].get("level"), Some(&s("error")));
        assert_eq!(msgs[0].stream_id, 1);
    }

    #[test]
    fn bad_names_are_refused_without_asking() {
        for name in ["", "a\0b", "line\nbreak", "?only=query"] {
            let mut session = Session::new(peer());
            let mut reader = Reader::new();
            session.handle_message(connect_command(vec![])).unwrap();
            session
                .handle_message(command(1, &[s("publish"), n(0.0), Value::Null, s(name)]))
                .unwrap();
            assert_eq!(session.next_event(), None, "{name:?}");
            assert!(session.is_closed());
            let msgs = sent(&mut session, &mut reader);
            assert_eq!(
                code(commands(&msgs).last().unwrap()),
                Some(Refusal::BAD_NAME)
            );
        }
    }

    #[test]
    fn media_before_publish_is_ignored() {
        let mut session = Session::new(peer());
        session.handle_message(connect_command(vec![])).unwrap();
        session
            .handle_message(Message {
                csid: 6,
                timestamp: 0,
                type_id: 9,
                stream_id: 1,
                payload: Bytes::from_static(b"x"),
            })
            .unwrap();
        assert_eq!(session.next_event(), None);
    }

    /// connect + createStream + play, as ffmpeg sends them.
    fn play_requested(name: &str) -> (Session, Reader, PlayRequest) {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        session.handle_message(connect_command(vec![])).unwrap();
        session
            .handle_message(command(0, &[s("createStream"), n(2.0), Value::Null]))
            .unwrap();
        session
            .handle_message(command(
                1,
                &[s("play"), n(0.0), Value::Null, s(name), n(-2000.0)],
            ))
            .unwrap();
        let Some(SessionEvent::PlayRequested(req)) = session.next_event() else {
            panic!("no play request");
        };
        sent(&mut session, &mut reader);
        (session, reader, req)
    }

    #[test]
    fn a_play_is_a_request_until_answered() {
        let (mut session, mut reader, req) = play_requested("s1?auth_key=k");
        assert_eq!(req.app, "live");
        assert_eq!(req.stream_name, "s1");
        assert_eq!(req.query_value("token"), Some("x"));
        assert_eq!(req.query_value("auth_key"), Some("k"));
        assert!(!session.is_playing());
        session.accept_play();
        assert!(session.is_playing());
        let msgs = sent(&mut session, &mut reader);
        let codes: Vec<_> = commands(&msgs)
            .iter()
            .filter_map(|c| code(c).map(str::to_owned))
            .collect();
        assert_eq!(codes, vec!["NetStream.Play.Reset", "NetStream.Play.Start"]);
        assert!(
            msgs.iter().any(|m| m.type_id == type_id::DATA_AMF0),
            "|RtmpSampleAccess"
        );

        // Tags go out as media messages on the play stream.
        let tag = liverec_mux::flv::live::LiveTag {
            tag_type: type_id::VIDEO,
            timestamp: 40,
            head: liverec_mux::flv::TagHead::default(),
            payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]),
        };
        session.write_tag(&tag);
        let msgs = sent(&mut session, &mut reader);
        assert_eq!(msgs.len(), 1);
        assert_eq!(
            (msgs[0].type_id, msgs[0].timestamp, msgs[0].stream_id),
            (type_id::VIDEO, 40, 1)
        );
        assert_eq!(&msgs[0].payload[..], &[0x17, 1, 0, 0, 0, 9]);

        // The client stops.
        session
            .handle_message(command(
                0,
                &[s("deleteStream"), n(0.0), Value::Null, n(1.0)],
            ))
            .unwrap();
        assert_eq!(session.next_event(), Some(SessionEvent::PlayEnded));
        assert!(!session.is_playing());
    }

    #[test]
    fn a_refused_play_and_an_ended_stream_tell_the_player() {
        let (mut session, mut reader, _) = play_requested("gone");
        session.refuse_play(&Refusal::new(Refusal::PLAY_NOT_FOUND, "no such stream"));
        assert!(session.is_closed());
        let msgs = sent(&mut session, &mut reader);
        assert_eq!(
            code(&commands(&msgs)[0]),
            Some("NetStream.Play.StreamNotFound")
        );

        let (mut session, mut reader, _) = play_requested("s");
        session.accept_play();
        sent(&mut session, &mut reader);
        session.end_play("the publisher left");
        assert!(session.is_closed());
        let msgs = sent(&mut session, &mut reader);
        let codes: Vec<_> = commands(&msgs)
            .iter()
            .filter_map(|c| code(c).map(str::to_owned))
            .collect();
        assert_eq!(
            codes,
            vec!["NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"]
        );
    }

    #[test]
    fn a_play_of_a_bad_name_is_refused_and_a_second_play_is_an_error() {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        session.handle_message(connect_command(vec![])).unwrap();
        sent(&mut session, &mut reader);
        session
            .handle_message(command(1, &[s("play"), n(0.0), Value::Null, s("")]))
            .unwrap();
        assert!(session.is_closed());
        let msgs = sent(&mut session, &mut reader);
        assert_eq!(
            code(&commands(&msgs)[0]),
            Some("NetStream.Play.StreamNotFound")
        );

        let (mut session, _, _) = play_requested("s");
        assert_eq!(
            session.handle_message(command(1, &[s("play"), n(0.0), Value::Null, s("t")])),
            Err(SessionError::AlreadyPublishing)
        );
    }

    #[test]
    fn commands_before_connect_and_second_connect_are_errors() {
        let mut session = Session::new(peer());
        assert_eq!(
            session.handle_message(command(0, &[s("createStream"), n(2.0), Value::Null])),
            Err(SessionError::NotConnected {
                command: "createStream".into()
            })
        );
        session.handle_message(connect_command(vec![])).unwrap();
        assert_eq!(
            session.handle_message(connect_command(vec![])),
            Err(SessionError::AlreadyConnected)
        );
    }

    #[test]
    fn unknown_commands_get_error_only_when_a_reply_is_expected() {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        session.handle_message(connect_command(vec![])).unwrap();
        sent(&mut session, &mut reader);
        session
            .handle_message(command(0, &[s("getBandwidthTest"), n(9.0), Value::Null]))
            .unwrap();
        session
            .handle_message(command(0, &[s("someNotify"), n(0.0), Value::Null]))
            .unwrap();
        session
            .handle_message(command(0, &[s("_result"), n(3.0), Value::Null]))
            .unwrap();
        let cmds = commands(&sent(&mut session, &mut reader));
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            (cmds[0].name.as_str(), cmds[0].transaction_id),
            ("_error", 9.0)
        );
    }

    #[test]
    fn ping_request_gets_a_response_and_acks_follow_the_window() {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        session
            .handle_message(Message {
                csid: 2,
                timestamp: 0,
                type_id: type_id::USER_CONTROL,
                stream_id: 0,
                payload: Bytes::from_static(&[0, 6, 0, 0, 1, 2]),
            })
            .unwrap();
        let msgs = sent(&mut session, &mut reader);
        assert_eq!(
            control::parse_user_control(&msgs[0].payload),
            Some((event::PING_RESPONSE, 258))
        );

        session
            .handle_message(Message {
                csid: 2,
                timestamp: 0,
                type_id: type_id::WINDOW_ACK_SIZE,
                stream_id: 0,
                payload: Bytes::from_static(&[0, 0, 0x27, 0x10]),
            })
            .unwrap();
        session.bytes_received(9_999);
        session.acknowledge();
        assert!(!session.acknowledgement_due() && session.output().is_empty());
        session.bytes_received(1);
        assert!(session.acknowledgement_due());
        assert!(
            session.output().is_empty(),
            "the connection sends it when it chooses"
        );
        session.bytes_received(500);
        session.acknowledge();
        let msgs = sent(&mut session, &mut reader);
        assert_eq!(
            (msgs[0].type_id, control::parse_u32(&msgs[0].payload)),
            (type_id::ACKNOWLEDGEMENT, Some(10_500))
        );
        session.bytes_received(9_999);
        session.acknowledge();
        assert!(session.output().is_empty());
    }

    #[test]
    fn reconnect_request_only_for_clients_that_support_it() {
        let mut session = Session::new(peer());
        let mut reader = Reader::new();
        session.handle_message(connect_command(vec![])).unwrap();
        assert!(!session.request_reconnect());
        let mut session = Session::new(peer());
        session
            .handle_message(connect_command(vec![("capsEx".into(), n(1.0))]))
            .unwrap();
        sent(&mut session, &mut reader);
        assert!(session.request_reconnect());
        let cmds = commands(&sent(&mut session, &mut reader));
        assert_eq!(
            code(&cmds[0]),
            Some("NetConnection.Connect.ReconnectRequest")
        );
    }

    #[test]
    fn aggregate_messages_are_split_into_tags() {
        let (mut session, _, _) = publishing_session("agg");
        session.accept_publish();
        let mut payload = BytesMut::new();
        for (ty, ts, body) in [
            (9u8, 1000u32, &b"vv"[..]),
            (8, 1020, b"a"),
            (9, 1040, b"v3"),
        ] {
            payload.extend_from_slice(&[ty, 0, 0, body.len() as u8]);
            payload.extend_from_slice(&ts.to_be_bytes()[1..]);
            payload.extend_from_slice(&[(ts >> 24) as u8, 0, 0, 0]);
            payload.extend_from_slice(body);
            payload.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        }
        // A truncated tag at the end is dropped.
        payload.extend_from_slice(&[9, 0, 0, 50, 0, 0]);
        session
            .handle_message(Message {
                csid: 6,
                timestamp: 5000,
                type_id: type_id::AGGREGATE,
                stream_id: 1,
                payload: payload.freeze(),
            })
            .unwrap();
        let mut got = Vec::new();
        while let Some(SessionEvent::MediaReceived(m)) = session.next_event() {
            got.push((m.kind, m.timestamp, m.body));
        }
        assert_eq!(
            got,
            vec![
                (MediaKind::Video, 5000, Bytes::from_static(b"vv")),
                (MediaKind::Audio, 5020, Bytes::from_static(b"a")),
                (MediaKind::Video, 5040, Bytes::from_static(b"v3")),
            ]
        );
    }

    proptest! {
        #[test]
        fn random_messages_never_panic(
            messages in prop::collection::vec(
                (prop_oneof![1u8..=22, Just(20u8), Just(17u8)], prop::collection::vec(any::<u8>(), 0..200)),
                0..30,
            ),
        ) {
            let (mut session, _, _) = publishing_session("fuzz");
            session.accept_publish();
            for (type_id, payload) in messages {
                let _ = session.handle_message(Message { csid: 3, timestamp: 0, type_id, stream_id: 1, payload: payload.into() });
                while session.next_event().is_some() {}
            }
        }

        #[test]
        fn random_bytes_through_reader_and_session_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let mut session = Session::new(peer());
            let mut reader = Reader::new();
            let mut buf = BytesMut::from(&bytes[..]);
            session.bytes_received(bytes.len());
            while let Ok(Some(m)) = reader.read(&mut buf) {
                if session.handle_message(m).is_err() {
                    break;
                }
                if let Some(SessionEvent::PublishRequested(_)) = session.next_event() {
                    session.accept_publish();
                }
            }
        }
    }
}
