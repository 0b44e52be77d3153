//! What a session asks of the rest of liverec: the [`SessionHandler`] trait and the values it
//! is called with.

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

/// A publish command, as the handler sees it before deciding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishRequest {
    /// The `app` of `connect`, without any `?query` (which is merged into `query`).
    pub app: String,
    /// The publish name without its `?query`.
    pub stream_name: String,
    /// Query pairs of the app and the publish name, percent-decoded, in order (app first).
    pub query: Vec<(String, String)>,
    pub tc_url: Option<String>,
    /// `live`, `record` or `append` as the client sent it (`live` when absent).
    pub publish_type: String,
    pub peer: SocketAddr,
}

impl PublishRequest {
    /// The first value of query parameter `key`.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        first_value(&self.query, key)
    }
}

/// A play command, as the handler sees it before deciding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayRequest {
    /// The `app` of `connect`, without any `?query` (which is merged into `query`).
    pub app: String,
    /// The played name without its `?query`.
    pub stream_name: String,
    /// Query pairs of the app and the played name, percent-decoded, in order (app first).
    pub query: Vec<(String, String)>,
    pub tc_url: Option<String>,
    pub peer: SocketAddr,
}

impl PlayRequest {
    /// The first value of query parameter `key`.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        first_value(&self.query, key)
    }
}

fn first_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A refused publish: sent to the client as an `onStatus` with level `error`, then the
/// connection is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The onStatus code, e.g. [`Refusal::BAD_NAME`].
    pub code: &'static str,
    pub description: String,
}

impl Refusal {
    /// The name is invalid, unknown or already being published.
    pub const BAD_NAME: &'static str = "NetStream.Publish.BadName";
    /// Not allowed (authentication, domain).
    pub const DENIED: &'static str = "NetStream.Publish.Denied";
    /// The publish URL's signature is missing, malformed, expired or wrong, or the stream is
    /// forbidden (Alibaba's code for both).
    pub const REJECTED: &'static str = "NetStream.Publish.Rejected";
    /// Generic failure (server overloaded, shutting down).
    pub const FAILED: &'static str = "NetStream.Publish.Failed";
    /// Play of a stream that is neither live nor pullable.
    pub const PLAY_NOT_FOUND: &'static str = "NetStream.Play.StreamNotFound";
    /// Play refused (a bad token, an unreachable origin, too many viewers).
    pub const PLAY_FAILED: &'static str = "NetStream.Play.Failed";

    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn bad_name(description: impl Into<String>) -> Self {
        Self::new(Self::BAD_NAME, description)
    }
}

/// Which RTMP message a media body came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Message type 8: an FLV audio tag body.
    Audio,
    /// Message type 9: an FLV video tag body (legacy or Enhanced RTMP).
    Video,
    /// Message type 18/15: AMF0 script data, starting with its name (`onMetaData` …); the
    /// `@setDataFrame` wrapper is already removed, as in an FLV file.
    Data,
}

/// One media message of an accepted publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaMessage {
    pub kind: MediaKind,
    /// Raw RTMP timestamp in milliseconds (32-bit, wraps; not normalised).
    pub timestamp: u32,
    /// The message payload, in an allocation of its own (the read buffer is reused).
    pub body: Bytes,
}

/// What a viewer's connection sends, batch by batch.
pub trait PlaySource: Send {
    /// Waits for the next tags of the played stream and appends them to `out` (those already
    /// waiting, up to a batch); `Err` with the reason to tell the player when the stream
    /// ended.
    fn next_batch(
        &mut self,
        out: &mut Vec<liverec_mux::flv::live::LiveTag>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// A handler that serves no play.
#[derive(Debug)]
pub enum NoPlay {}

impl PlaySource for NoPlay {
    async fn next_batch(
        &mut self,
        _out: &mut Vec<liverec_mux::flv::live::LiveTag>,
    ) -> Result<(), String> {
        match *self {}
    }
}

/// The decisions and data sinks of one RTMP connection. A connection calls it from its own
/// task, one call at a time.
pub trait SessionHandler: Send {
    /// What an accepted play reads from ([`NoPlay`] for handlers that serve no play).
    type Play: PlaySource;

    /// Accept a play with its source, or refuse it ([`Refusal::PLAY_NOT_FOUND`],
    /// [`Refusal::PLAY_FAILED`]).
    fn on_play(
        &mut self,
        req: &PlayRequest,
    ) -> impl Future<Output = Result<Self::Play, Refusal>> + Send;
    /// Accept or refuse a publish. The session reads nothing while this runs.
    fn on_publish(
        &mut self,
        req: &PublishRequest,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// Awaiting here stops reading the socket: that is how the recorder slows its own publisher.
    fn on_media(&mut self, msg: MediaMessage) -> impl Future<Output = ()> + Send;
    /// Called once when a publish that was accepted ends for any reason (unpublish, close, error, shutdown).
    fn on_unpublish(&mut self) -> impl Future<Output = ()> + Send;
    /// Asked once, right after a publish is accepted: when the token fires, the connection ends
    /// the publish with the status [`SessionHandler::stop_status`] gives and closes (the
    /// stream was forbidden, a newer publisher replaced a silent one).
    fn publish_stopper(&self) -> Option<CancellationToken> {
        None
    }
    /// The error status of a publish stopped through [`SessionHandler::publish_stopper`].
    fn stop_status(&self) -> Refusal {
        Refusal::new(Refusal::REJECTED, "the server stopped this publish")
    }
}
