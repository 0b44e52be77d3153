//! The API port's HTTP/1.1 server: an accept loop with bounded cost for every peer, in front
//! of the [`router`](crate::router) (DESIGN.md "Limits on the API port").
//!
//! - At most [`HttpLimits::max_connections`] connections; more are closed as they are accepted.
//! - At most [`HttpLimits::max_pending_per_ip`] *pending* connections per IP: connections with no
//!   request being answered (a request being read, or an idle keep-alive). A response still
//!   being sent (a VOD download) is not pending. A new connection beyond the cap is closed at once.
//! - A request head must arrive within [`HttpLimits::header_read_timeout`] of its first byte (of
//!   the connection's start, for the first request); an idle keep-alive connection is closed after
//!   [`HttpLimits::idle_timeout`]. The handler bounds the body ([`crate::ApiSettings::body_timeout`]).
//! - Before anything else, [`HttpLimits::requests_per_ip`] per second per IP: beyond it, HTTP 429
//!   `Throttling` (so a signed client within its per-key QPS meets `Throttling.User` first).
//!
//! Hyper's own header timeout is not used: it also runs while a keep-alive connection is idle.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use bytes::Bytes;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http_body::Frame;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ApiError;
use crate::response::{ApiResponse, Format};

/// Time to send a request head, from its first byte (from the connection's start for the first).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to send a request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a keep-alive connection may wait for its next request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pending connections (no request being answered) per client IP.
pub const DEFAULT_MAX_PENDING_PER_IP: usize = 64;
/// Connections in all.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Requests per second per client IP, before authentication.
pub const DEFAULT_REQUESTS_PER_IP: u32 = 500;
/// Largest request head hyper buffers (the query is limited separately, to 64 KiB by default).
const MAX_HEAD_BYTES: usize = 128 * 1024;
/// First pause after a failed accept (out of file descriptors…); doubles up to the max.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Refused connections are logged at most this often (with how many there were).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Per-IP throttle buckets idle this long are forgotten.
const THROTTLE_HOUSEKEEPING: Duration = Duration::from_secs(60);

/// Connection limits of the API port (settings under `[api]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_pending_per_ip: usize,
    pub max_connections: usize,
    /// 0: no per-IP request limit.
    pub requests_per_ip: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_pending_per_ip: DEFAULT_MAX_PENDING_PER_IP,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            requests_per_ip: DEFAULT_REQUESTS_PER_IP,
        }
    }
}

/// Counters of what the limits refused (for `/metrics` and the log).
#[derive(Debug, Default)]
pub struct HttpCounters {
    pub refused_total: AtomicU64,
    pub refused_per_ip: AtomicU64,
    pub timed_out: AtomicU64,
    pub throttled: AtomicU64,
    pub open: AtomicU64,
}

type IpLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// Serves `app` on `listener` until `cancel` fires, then gives open connections `drain` to
/// finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    counters: Arc<HttpCounters>,
    cancel: CancellationToken,
    drain: Duration,
) {
    let limits = Arc::new(limits);
    let pending = Arc::new(PendingTable::new(limits.max_pending_per_ip));
    let limiter = NonZeroU32::new(limits.requests_per_ip)
        .map(|rate| Arc::new(IpLimiter::keyed(Quota::per_second(rate))));
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut refusals = RefusalLog::default();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut housekeeping = tokio::time::interval(THROTTLE_HOUSEKEEPING);
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = housekeeping.tick() => {
                if let Some(limiter) = &limiter {
                    limiter.retain_recent();
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(error) => {
                tracing::warn!(%error, ?backoff, "API accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            counters.refused_total.fetch_add(1, Ordering::Relaxed);
            refusals.note(peer.ip(), "the API port has max_connections open");
            continue;
        };
        let Some(track) = pending.admit(peer.ip()) else {
            counters.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            refusals.note(
                peer.ip(),
                "this address has max_pending_connections_per_ip connections without a request",
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            limits: limits.clone(),
            limiter: limiter.clone(),
            counters: counters.clone(),
            track,
            peer,
        };
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let _permit = permit;
            connection.run(stream, cancel).await;
        });
    }
    tracker.close();
    if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
        tracing::warn!(
            open = tracker.len(),
            "API connections still open after {drain:?}"
        );
    }
}

/// Logs refused connections at most every [`REFUSAL_LOG_INTERVAL`], with their count.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    since_last: u64,
}

impl RefusalLog {
    fn note(&mut self, ip: IpAddr, why: &str) {
        self.since_last += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL)
        {
            tracing::warn!(%ip, refused = self.since_last, "API connection refused: {why}");
            self.last = Some(now);
            self.since_last = 0;
        }
    }
}

struct Connection {
    app: Router,
    limits: Arc<HttpLimits>,
    limiter: Option<Arc<IpLimiter>>,
    counters: Arc<HttpCounters>,
    track: Arc<ConnTrack>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, cancel: CancellationToken) {
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        let io = hyper_util::rt::TokioIo::new(TrackedIo {
            inner: stream,
            track: self.track.clone(),
        });
        let service = {
            let app = self.app.clone();
            let track = self.track.clone();
            let limiter = self.limiter.clone();
            let counters = self.counters.clone();
            let peer = self.peer;
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let busy = track.request_started();
                let mut app = app.clone();
                let limiter = limiter.clone();
                let counters = counters.clone();
                async move {
                    if limiter
                        .as_ref()
                        .is_some_and(|l| l.check_key(&peer.ip()).is_err())
                    {
                        counters.throttled.fetch_add(1, Ordering::Relaxed);
                        return Ok::<_, Infallible>(throttled_response());
                    }
                    let mut request = request.map(Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let response = match tower::Service::call(&mut app, request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    Ok(response.map(|body| {
                        Body::new(BusyBody {
                            inner: body,
                            _busy: busy,
                        })
                    }))
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .header_read_timeout(None)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut shutting_down = false;
        loop {
            let deadline = self.track.deadline(&self.limits);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %self.peer, %error, "API connection ended with an error");
                    }
                    break;
                }
                () = self.track.changed.notified() => {}
                () = sleep_until(deadline) => {
                    if let Some(why) = self.track.expired(&self.limits, Instant::now()) {
                        self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(peer = %self.peer, why, "API connection closed");
                        break;
                    }
                }
                () = cancel.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        self.track.close();
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// HTTP 429 with Alibaba's `Throttling` body (the request is not read any further).
fn throttled_response() -> axum::response::Response {
    ApiResponse {
        format: Format::Json,
        request_id: crate::handler::new_request_id(),
        host_id: crate::DEFAULT_HOST_ID.to_owned(),
        action: None,
        result: Err(ApiError::ThrottledIp),
    }
    .into_response()
}

/// Pending connections per IP.
struct PendingTable {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PendingTable {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection from `ip` (pending), unless `ip` has `max` pending already.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Arc<ConnTrack>> {
        let mut counts = self.counts();
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Arc::new(ConnTrack {
            ip,
            table: self.clone(),
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
                served: false,
            }),
            changed: Notify::new(),
        }))
    }

    fn add(&self, ip: IpAddr) {
        *self.counts().entry(ip).or_insert(0) += 1;
    }

    fn remove(&self, ip: IpAddr) {
        let mut counts = self.counts();
        if let Some(count) = counts.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's first byte; `served`: a request was answered before (keep-alive).
    Idle {
        since: Instant,
        served: bool,
    },
    /// A request head is arriving.
    ReadingHead {
        since: Instant,
    },
    /// Requests being answered (their response bodies not yet sent).
    Busy {
        in_flight: usize,
    },
    Closed,
}

impl Phase {
    fn is_pending(self) -> bool {
        matches!(self, Phase::Idle { .. } | Phase::ReadingHead { .. })
    }
}

/// One connection's phase, shared by its I/O, its requests and its task.
struct ConnTrack {
    ip: IpAddr,
    table: Arc<PendingTable>,
    phase: Mutex<Phase>,
    /// Woken on every phase change, so the task's deadline follows.
    changed: Notify,
}

impl ConnTrack {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves to `next`, keeping the IP's pending count right.
    fn set(&self, phase: &mut Phase, next: Phase) {
        match (phase.is_pending(), next.is_pending()) {
            (true, false) => self.table.remove(self.ip),
            (false, true) => self.table.add(self.ip),
            _ => {}
        }
        *phase = next;
        self.changed.notify_one();
    }

    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { served: true, .. } = *phase {
            self.set(
                &mut phase,
                Phase::ReadingHead {
                    since: Instant::now(),
                },
            );
        }
    }

    fn request_started(self: &Arc<Self>) -> BusyGuard {
        let mut phase = self.phase();
        let next = match *phase {
            Phase::Busy { in_flight } => Phase::Busy {
                in_flight: in_flight + 1,
            },
            Phase::Closed => Phase::Closed,
            _ => Phase::Busy { in_flight: 1 },
        };
        self.set(&mut phase, next);
        BusyGuard(self.clone())
    }

    fn request_finished(&self) {
        let mut phase = self.phase();
        let next = match *phase {
            Phase::Busy { in_flight } if in_flight > 1 => Phase::Busy {
                in_flight: in_flight - 1,
            },
            Phase::Busy { .. } => Phase::Idle {
                since: Instant::now(),
                served: true,
            },
            other => other,
        };
        self.set(&mut phase, next);
    }

    /// When the current phase runs out, if it can.
    fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        match *self.phase() {
            // The first request's head counts from the connection's start.
            Phase::Idle {
                since,
                served: false,
            }
            | Phase::ReadingHead { since } => Some(since + limits.header_read_timeout),
            Phase::Idle {
                since,
                served: true,
            } => Some(since + limits.idle_timeout),
            Phase::Busy { .. } | Phase::Closed => None,
        }
    }

    /// Why the connection must close now, if it must.
    fn expired(&self, limits: &HttpLimits, now: Instant) -> Option<&'static str> {
        let deadline = self.deadline(limits)?;
        if now < deadline {
            return None;
        }
        Some(match *self.phase() {
            Phase::Idle { served: true, .. } => "idle keep-alive timeout",
            _ => "request head not received in time",
        })
    }

    fn close(&self) {
        let mut phase = self.phase();
        self.set(&mut phase, Phase::Closed);
    }
}

/// Held while a request is being answered: dropped with its response body.
struct BusyGuard(Arc<ConnTrack>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request busy until it is sent (or dropped).
struct BusyBody {
    inner: Body,
    _busy: BusyGuard,
}

impl http_body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling its [`ConnTrack`] when bytes arrive.
struct TrackedIo {
    inner: TcpStream,
    track: Arc<ConnTrack>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.track.bytes_read();
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_pending_per_ip: 2,
            ..HttpLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pending_connections_are_counted_per_ip_and_phases_have_deadlines() {
        let table = Arc::new(PendingTable::new(2));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = table.admit(a).unwrap();
        let second = table.admit(a).unwrap();
        assert!(
            table.admit(a).is_none(),
            "a third pending connection of one IP"
        );
        assert!(table.admit(b).is_some(), "another IP has its own count");

        let l = limits();
        let start = Instant::now();
        assert_eq!(first.deadline(&l), Some(start + l.header_read_timeout));
        // A request being answered is not pending: the IP may open another connection.
        let busy = first.request_started();
        assert_eq!(first.deadline(&l), None);
        let third = table.admit(a).unwrap();
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(
            first.expired(&l, Instant::now()),
            None,
            "busy never expires"
        );
        drop(busy);
        let idle_since = Instant::now();
        assert_eq!(first.deadline(&l), Some(idle_since + l.idle_timeout));
        assert!(table.admit(a).is_none(), "idle keep-alive is pending again");
        // The next request's first byte starts the head timeout.
        tokio::time::advance(Duration::from_secs(5)).await;
        first.bytes_read();
        assert_eq!(
            first.deadline(&l),
            Some(Instant::now() + l.header_read_timeout)
        );
        tokio::time::advance(l.header_read_timeout).await;
        assert_eq!(
            first.expired(&l, Instant::now()),
            Some("request head not received in time")
        );
        assert!(second.expired(&l, Instant::now()).is_some());
        first.close();
        second.close();
        third.close();
        first.close();
        assert!(table.counts().get(&a).is_none(), "every count given back");
    }
}
