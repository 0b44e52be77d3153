//! Live HTTP-FLV on the API port: `GET /{AppName}/{StreamName}.flv` (Alibaba's play-URL
//! shape; docs/API.md "Pulled streams", play URLs).
//!
//! The domain comes from `?vhost=`, else the `Host` header when it is a known domain, else the
//! default domain; a domain with `aliauth` needs an `auth_key` signed over
//! `/{AppName}/{StreamName}.flv`. The response is an FLV file that grows until the stream ends.
//! A viewer that stops reading costs its queue (bounded; it skips ahead) and is let go after
//! [`STALL_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use liverec_play::{PlayError, PlayRequest};
use percent_encoding::percent_decode_str;
use tokio::sync::mpsc;

use crate::ApiState;

/// A viewer whose connection takes nothing for this long is let go.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Chunks (tag batches) waiting for the socket.
const QUEUED_CHUNKS: usize = 8;
const FLV_SUFFIX: &str = ".flv";

/// `GET /{app}/{name}`: live HTTP-FLV when `name` ends with `.flv`.
pub(crate) async fn serve(
    State(state): State<Arc<ApiState>>,
    Path((app, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(stream) = name.strip_suffix(FLV_SUFFIX) else {
        return plain(StatusCode::NOT_FOUND, "not found\n".to_owned());
    };
    let query = request.uri().query().unwrap_or("");
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| percent_decode_str(v).decode_utf8().ok())
            .map(|v| v.into_owned())
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host).to_owned());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let req = PlayRequest {
        vhost: param("vhost").or_else(|| param("domain")),
        host,
        app: app.clone(),
        stream: stream.to_owned(),
        auth_key: param("auth_key"),
        signed_name: name.clone(),
        peer,
    };
    let viewer = match state.viewers.open(&req).await {
        Ok(viewer) => viewer,
        Err(err) => {
            let status = match &err {
                PlayError::NotFound(_) => StatusCode::NOT_FOUND,
                PlayError::Forbidden(_) => StatusCode::FORBIDDEN,
                PlayError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            };
            tracing::info!(app = %crate::handler::clip(&app), stream = %crate::handler::clip(stream), peer = ?peer,
                %status, reason = %err, "HTTP-FLV play refused");
            return plain(status, format!("{err}\n"));
        }
    };
    let key = viewer.key().clone();
    tracing::info!(stream = %key, peer = ?peer, "HTTP-FLV play started");
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    tokio::spawn(async move {
        let mut body = viewer.into_flv();
        while let Some(chunk) = body.next_chunk().await {
            match tx.send_timeout(chunk, STALL_TIMEOUT).await {
                Ok(()) => {}
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    tracing::info!(stream = %key, peer = ?peer, "HTTP-FLV viewer let go: it took nothing for {STALL_TIMEOUT:?}");
                    return;
                }
                Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                    tracing::debug!(stream = %key, peer = ?peer, "HTTP-FLV viewer left");
                    return;
                }
            }
        }
        tracing::info!(stream = %key, peer = ?peer, "HTTP-FLV play ended with the stream");
    });
    let mut response = axum::body::Body::new(ChunkBody(rx)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        text,
    )
        .into_response()
}

/// A response body of the chunks a viewer's task sends; it ends when the task does.
struct ChunkBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}
