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
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
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

/// The decisions and data sinks of one RTMP connection. A connection calls it from its own
/// task, one call at a time.
pub trait SessionHandler: Send {
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
