//! RTMP and Enhanced RTMP for liverec: publish ingest and play.
//!
//! | spec | version | used for |
//! |---|---|---|
//! | Adobe RTMP Specification | 1.0 (2012) | handshake, chunk stream, control and command messages |
//! | Action Message Format – AMF 0 | 2006 | command and data messages ([`amf0`]) |
//! | Enhanced RTMP (veovera/enhanced-rtmp) | v2 | `connect` capabilities (`fourCcList`, `capsEx`), reconnect request |
//!
//! The protocol core is sans-IO: [`handshake::Handshake`], [`chunk::Reader`] /
//! [`chunk::Writer`] and [`session::Session`] take and produce bytes and events only. The tokio
//! shell is [`serve_connection`] (one connection; a timeout or the cancellation token beside
//! every await) and [`serve`] (the accept loop). Media bodies reach the [`SessionHandler`]
//! untouched — FLV tag bodies, legacy or E-RTMP — as slices of the read buffer. Acknowledgements
//! wait while a publisher runs ahead of real time (`pace`): sent to a client that has already
//! closed, they would make its kernel reset the connection and lose what was not read yet.
//!
//! Why in-house and not scuffle-rtmp or rml_rtmp: the recorder needs the tcUrl, the publish
//! query, an explicit onStatus refusal and E-RTMP `connect` capabilities (see CRATES.md).
//!
//! ```no_run
//! use liverec_rtmp::{Limits, MediaMessage, PublishRequest, Refusal, SessionHandler, serve};
//! use tokio_util::sync::CancellationToken;
//!
//! struct Hub;
//! impl SessionHandler for Hub {
//!     type Play = liverec_rtmp::NoPlay;
//!     async fn on_play(&mut self, _req: &liverec_rtmp::PlayRequest) -> Result<Self::Play, Refusal> {
//!         Err(Refusal::new(Refusal::PLAY_NOT_FOUND, "nothing to play"))
//!     }
//!     async fn on_publish(&mut self, req: &PublishRequest) -> Result<(), Refusal> {
//!         if req.stream_name == "taken" {
//!             return Err(Refusal::bad_name("already publishing"));
//!         }
//!         Ok(())
//!     }
//!     async fn on_media(&mut self, _msg: MediaMessage) {}
//!     async fn on_unpublish(&mut self) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:1935").await?;
//! serve(listener, |_peer| Hub, Limits::default(), CancellationToken::new()).await;
//! # Ok(())
//! # }
//! ```

pub mod amf0;
pub mod chunk;
pub mod client;
mod conn;
pub mod control;
mod error;
pub mod handler;
pub mod handshake;
mod limits;
mod listener;
pub mod logsafe;
pub mod message;
pub mod metrics;
mod pace;
pub mod session;

pub use conn::{Shared, serve_connection, serve_connection_with};
pub use error::RtmpError;
pub use handler::{
    MediaKind, MediaMessage, NoPlay, PlayRequest, PlaySource, PublishRequest, Refusal,
    SessionHandler,
};
pub use limits::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PENDING_CONNECTIONS, DEFAULT_MAX_PENDING_PER_IP, DEFAULT_MAX_VIEWERS,
    DEFAULT_PUBLISH_DEADLINE, DEFAULT_WRITE_TIMEOUT, Limits,
};
pub use listener::{PendingSlot, serve, serve_on};
