//! One RTMP connection on tokio: the thin I/O shell around [`Handshake`], the chunk
//! [`Reader`](chunk::Reader) and the [`Session`]. Every await has a timeout or the
//! cancellation token beside it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tracing::{debug, info};

use crate::chunk;
use crate::error::RtmpError;
use crate::handler::{PlaySource, Refusal, SessionHandler};
use crate::handshake::Handshake;
use crate::limits::Limits;
use crate::logsafe::clipped;
use crate::pace::Pace;
use crate::session::{Session, SessionEvent};

/// Initial capacity of the read buffer, and the room reserved before every read.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Read buffer of a playing connection: a player sends little (acknowledgements, pings), and
/// hundreds of viewers should not each hold a publisher's 64 KiB.
const PLAY_READ_BUFFER_SIZE: usize = 4 * 1024;
/// Output a playing connection keeps between batches; a larger one (the GOP sent at start) is
/// let go once written.
const PLAY_KEPT_OUTPUT: usize = 256 * 1024;

/// How long final words (a refusal, an error status, a reconnect request) may take to leave.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads a cancelled connection still takes in: what a merged read left waiting (a few
/// KiB), not a publisher that keeps sending at full speed.
const MAX_DRAIN_READS: u32 = 16;

/// The next multiple of `period` since a process-wide origin: every connection merging its
/// reads wakes at the same instants, so one timer wake-up of a thread serves all of them.
fn next_tick(now: Instant, period: Duration) -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(|| now);
    let period_ns = period.as_nanos().max(1);
    let since = now.saturating_duration_since(origin).as_nanos();
    let ticks = since / period_ns + 1;
    let offset = u64::try_from(ticks.saturating_mul(period_ns)).unwrap_or(u64::MAX);
    origin + Duration::from_nanos(offset)
}

/// Serves one connection until the client leaves, the session ends it, an error occurs or
/// `cancel` fires. `handler.on_unpublish` is called once if a publish was accepted and not yet
/// ended, whatever the reason. A refused publish returns `Ok` after the refusal is sent.
///
/// The handler's own futures get no timeout here: `on_media` blocking is the back-pressure
/// mechanism, and its bound (DESIGN.md: 2 s) belongs to the recorder. Cancellation still
/// interrupts `on_publish` and `on_media`.
pub async fn serve_connection<S, H>(
    io: S,
    peer: SocketAddr,
    handler: H,
    limits: &Limits,
    cancel: CancellationToken,
) -> Result<(), RtmpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: SessionHandler,
{
    serve_connection_with(io, peer, handler, limits, cancel, Shared::default()).await
}

/// What a connection shares with the listener's others.
#[derive(Default)]
pub struct Shared {
    /// The connection's place among its IP's connections that have not published yet: given
    /// back when a publish is accepted (or the connection ends).
    pub pending: Option<crate::listener::PendingSlot>,
    /// Its place among all connections that have not published yet, given back likewise.
    pub pending_permit: Option<OwnedSemaphorePermit>,
    /// Places of publishing connections (`max_connections`): an accepted publish takes one.
    pub publishers: Option<Arc<Semaphore>>,
    /// Places of playing connections (`max_viewers`): an accepted play takes one.
    pub viewers: Option<Arc<Semaphore>>,
    /// Where its partial messages are counted with every other connection's.
    pub budget: Option<Arc<chunk::PartialBudget>>,
}

/// [`serve_connection`] with the listener's shared limits.
pub async fn serve_connection_with<S, H>(
    io: S,
    peer: SocketAddr,
    mut handler: H,
    limits: &Limits,
    cancel: CancellationToken,
    shared: Shared,
) -> Result<(), RtmpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: SessionHandler,
{
    let mut conn = Conn {
        io,
        buf: BytesMut::with_capacity(READ_BUFFER_SIZE),
        reader: match shared.budget {
            Some(budget) => chunk::Reader::with_budget(budget),
            None => chunk::Reader::new(),
        },
        pending: shared.pending,
        pending_permit: shared.pending_permit,
        publishers: shared.publishers,
        publisher_permit: None,
        viewers: shared.viewers,
        viewer_permit: None,
        publish_by: Instant::now() + limits.publish_deadline,
        ever_started: false,
        session: Session::new(peer),
        limits,
        cancelled: Box::pin(cancel.clone().cancelled_owned()),
        cancel,
        published: false,
        stopper: None,
        pace: Pace::default(),
    };
    let result = conn.run(&mut handler).await;
    if conn.published {
        handler.on_unpublish().await;
    }
    // Best effort: the peer may already be gone.
    let _ = timeout(FINAL_FLUSH_TIMEOUT, conn.io.shutdown()).await;
    result
}

struct Conn<'a, S> {
    io: S,
    buf: BytesMut,
    reader: chunk::Reader,
    /// Held until the first publish is accepted (see [`Shared::pending`]).
    pending: Option<crate::listener::PendingSlot>,
    pending_permit: Option<OwnedSemaphorePermit>,
    publishers: Option<Arc<Semaphore>>,
    /// This connection's publisher place, once a publish was accepted.
    publisher_permit: Option<OwnedSemaphorePermit>,
    viewers: Option<Arc<Semaphore>>,
    /// This connection's viewer place, once a play was accepted.
    viewer_permit: Option<OwnedSemaphorePermit>,
    /// Until a publish or play is accepted, the connection must get one by then.
    publish_by: Instant,
    /// A publish or play was accepted at some point (the deadline no longer applies).
    ever_started: bool,
    session: Session,
    limits: &'a Limits,
    cancel: CancellationToken,
    /// `cancel.cancelled()`, kept for the whole connection: the per-read and per-message
    /// waits on it then register with the token once, not once per read and per frame.
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    /// An accepted publish has not been ended by `on_unpublish` yet.
    published: bool,
    /// The handler's `publish_stopper` of the accepted publish, kept registered like
    /// `cancelled`.
    stopper: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Whether the publisher runs ahead of real time (then no Acknowledgements go out).
    pace: Pace,
}

/// Why the read loop stopped without an error.
enum Stop<P> {
    /// The connection is done (client closed cleanly, refusal sent).
    Closed,
    /// `cancel` fired.
    Cancelled,
    /// The handler's publish stopper fired.
    PublishStopped,
    /// A play was accepted: the connection now sends what `P` gives.
    Play(P),
}

/// Waits for the publish stopper, forever when there is none.
async fn stopped(stopper: &mut Option<Pin<Box<WaitForCancellationFutureOwned>>>) {
    match stopper {
        Some(stopper) => stopper.as_mut().await,
        None => std::future::pending().await,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    async fn run<H: SessionHandler>(&mut self, handler: &mut H) -> Result<(), RtmpError> {
        let after = self.limits.handshake_timeout;
        let cancel = self.cancel.clone();
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            done = timeout(after, self.handshake()) => done.map_err(|_| RtmpError::HandshakeTimeout { after })??,
        }
        match self.serve(handler).await {
            Ok(Stop::Closed) => Ok(()),
            Ok(Stop::Play(source)) => self.play(source).await,
            Ok(Stop::PublishStopped) => {
                let status = handler.stop_status();
                info!(code = status.code, reason = %status.description, "publish stopped by the server");
                self.session.refuse_publish(&status);
                self.flush_best_effort().await;
                Ok(())
            }
            Ok(Stop::Cancelled) => {
                if self.session.request_reconnect() {
                    debug!("asked the client to reconnect");
                }
                self.flush_best_effort().await;
                Ok(())
            }
            Err(e) => {
                // An error status the session wrote (play refused) should still reach the client.
                self.flush_best_effort().await;
                Err(e)
            }
        }
    }

    async fn handshake(&mut self) -> Result<(), RtmpError> {
        let mut handshake = Handshake::new();
        let mut out = BytesMut::with_capacity(1 + 2 * crate::handshake::PACKET_SIZE);
        loop {
            let done = handshake.advance(&mut self.buf, &mut out)?;
            if !out.is_empty() {
                self.io.write_all(&out).await?;
                out.clear();
            }
            if done {
                debug!(kind = ?handshake.kind(), "handshake done");
                return Ok(());
            }
            self.buf.reserve(READ_BUFFER_SIZE);
            let n = self.io.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(RtmpError::ClosedDuringHandshake);
            }
            self.session.bytes_received(n);
        }
    }

    async fn serve<H: SessionHandler>(
        &mut self,
        handler: &mut H,
    ) -> Result<Stop<H::Play>, RtmpError> {
        let idle = self.limits.idle_timeout;
        // One timer for the connection rather than one per read: it is moved to
        // `waiting_since + idle` only when it fires.
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        let publish_deadline = tokio::time::sleep_until(self.publish_by);
        tokio::pin!(publish_deadline);
        // The last read filled the room it had: more is waiting, read again at once.
        let mut read_was_full = false;
        // Cancelled: take in what already arrived (a merged read leaves data waiting in the
        // socket), then stop.
        let mut draining = false;
        let mut drained_reads = 0u32;
        loop {
            while let Some(message) = self.reader.read(&mut self.buf)? {
                self.session.handle_message(message)?;
                if let Some(stop) = self.dispatch(handler).await? {
                    return Ok(stop);
                }
                if self.session.is_closed() {
                    self.flush().await?;
                    return Ok(Stop::Closed);
                }
            }
            if !self.pace.ahead() {
                self.session.acknowledge();
            }
            self.flush().await?;

            if draining {
                drained_reads += 1;
                if drained_reads > MAX_DRAIN_READS {
                    return Ok(Stop::Cancelled);
                }
                self.buf.reserve(READ_BUFFER_SIZE);
                // A zero timeout polls the read once: whatever is already there, no waiting.
                match timeout(Duration::ZERO, self.io.read_buf(&mut self.buf)).await {
                    Ok(Ok(n)) if n > 0 => {
                        self.session.bytes_received(n);
                        continue;
                    }
                    _ => return Ok(Stop::Cancelled),
                }
            }
            let merge = self.limits.merge_reads;
            if self.published && !merge.is_zero() && !read_was_full {
                tokio::select! {
                    biased;
                    () = &mut self.cancelled => {
                        draining = true;
                        continue;
                    }
                    () = stopped(&mut self.stopper) => return Ok(Stop::PublishStopped),
                    () = tokio::time::sleep_until(next_tick(Instant::now(), merge)) => {}
                }
            }
            self.buf.reserve(READ_BUFFER_SIZE);
            let room = self.buf.capacity() - self.buf.len();
            // Silence is counted from here: time spent handing media on (back-pressure) is not
            // the client's.
            let waiting_since = Instant::now();
            let n = loop {
                tokio::select! {
                    biased;
                    () = &mut self.cancelled => return Ok(Stop::Cancelled),
                    () = stopped(&mut self.stopper) => return Ok(Stop::PublishStopped),
                    () = &mut publish_deadline, if !self.ever_started => {
                        return Err(RtmpError::PublishDeadline { after: self.limits.publish_deadline });
                    }
                    read = self.io.read_buf(&mut self.buf) => break read.map_err(|e| self.read_failed(e))?,
                    () = &mut idle_timer => {
                        let deadline = waiting_since + idle;
                        if Instant::now() >= deadline {
                            return Err(RtmpError::IdleTimeout { after: idle });
                        }
                        idle_timer.as_mut().reset(deadline);
                    }
                }
            };
            if n == 0 {
                if !self.buf.is_empty() || self.reader.has_partial() {
                    return Err(RtmpError::Truncated {
                        buffered: self.buf.len(),
                    });
                }
                return Ok(Stop::Closed);
            }
            read_was_full = n >= room;
            self.session.bytes_received(n);
        }
    }

    /// Hands the session's events to the handler. Returns `Some` when the connection must stop.
    async fn dispatch<H: SessionHandler>(
        &mut self,
        handler: &mut H,
    ) -> Result<Option<Stop<H::Play>>, RtmpError> {
        while let Some(event) = self.session.next_event() {
            match event {
                SessionEvent::MediaReceived(media) => {
                    self.pace
                        .observe(Instant::now().into_std(), media.timestamp);
                    // Media first: a frame that is taken at once never polls the token (a
                    // mutex); one the recorder holds up still yields to cancellation.
                    tokio::select! {
                        biased;
                        () = handler.on_media(media) => {}
                        () = &mut self.cancelled => return Ok(Some(Stop::Cancelled)),
                        () = stopped(&mut self.stopper) => return Ok(Some(Stop::PublishStopped)),
                    }
                }
                SessionEvent::PublishRequested(req) => {
                    name_stream_in_span(&req.app, &req.stream_name);
                    // Replies so far (createStream …) go out before a possibly slow decision.
                    self.flush().await?;
                    if !self.take_publisher_place() {
                        let refusal = Refusal::new(
                            Refusal::FAILED,
                            "the server has max_publishers publishers",
                        );
                        tracing::warn!(stream = %clipped(&req.stream_name), max = self.limits.max_connections,
                            "publish refused: the server has max_publishers publishers");
                        crate::metrics::publish_refused("max_publishers");
                        self.session.refuse_publish(&refusal);
                        self.flush().await?;
                        continue;
                    }
                    let decision = tokio::select! {
                        biased;
                        () = &mut self.cancelled => return Ok(Some(Stop::Cancelled)),
                        decision = handler.on_publish(&req) => decision,
                    };
                    match decision {
                        Ok(()) => {
                            info!(app = %clipped(&req.app), stream = %clipped(&req.stream_name), "publish started");
                            self.session.accept_publish();
                            self.published = true;
                            // A publisher counts against max_connections only.
                            self.pending = None;
                            self.pending_permit = None;
                            self.ever_started = true;
                            self.stopper = handler
                                .publish_stopper()
                                .map(|token| Box::pin(token.cancelled_owned()));
                        }
                        Err(refusal) => {
                            if !self.ever_started {
                                self.publisher_permit = None;
                            }
                            info!(
                                app = %clipped(&req.app),
                                stream = %clipped(&req.stream_name),
                                code = refusal.code,
                                reason = %clipped(&refusal.description),
                                "publish refused"
                            );
                            self.session.refuse_publish(&refusal);
                        }
                    }
                    self.flush().await?;
                }
                SessionEvent::PublishEnded => {
                    if self.published {
                        self.published = false;
                        self.stopper = None;
                        info!("publish ended by the client");
                        handler.on_unpublish().await;
                    }
                }
                SessionEvent::PlayRequested(req) => {
                    name_stream_in_span(&req.app, &req.stream_name);
                    self.flush().await?;
                    if !self.take_viewer_place() {
                        tracing::warn!(stream = %clipped(&req.stream_name), max = self.limits.max_viewers,
                            "play refused: the server has max_viewers viewers");
                        crate::metrics::play_refused("max_viewers");
                        self.session.refuse_play(&Refusal::new(
                            Refusal::PLAY_FAILED,
                            "the server has max_viewers viewers",
                        ));
                        self.flush().await?;
                        continue;
                    }
                    let decision = tokio::select! {
                        biased;
                        () = &mut self.cancelled => return Ok(Some(Stop::Cancelled)),
                        decision = handler.on_play(&req) => decision,
                    };
                    match decision {
                        Ok(source) => {
                            info!(app = %clipped(&req.app), stream = %clipped(&req.stream_name), "play started");
                            self.session.accept_play();
                            // A viewer counts against max_viewers only.
                            self.pending = None;
                            self.pending_permit = None;
                            self.ever_started = true;
                            self.flush().await?;
                            return Ok(Some(Stop::Play(source)));
                        }
                        Err(refusal) => {
                            self.viewer_permit = None;
                            info!(
                                app = %clipped(&req.app),
                                stream = %clipped(&req.stream_name),
                                code = refusal.code,
                                reason = %clipped(&refusal.description),
                                "play refused"
                            );
                            self.session.refuse_play(&refusal);
                            self.flush().await?;
                        }
                    }
                }
                // Only while playing, which `play` handles.
                SessionEvent::PlayEnded => {}
            }
        }
        Ok(None)
    }

    /// Sends the played stream until it ends, the client stops or leaves, a write times out
    /// (a viewer that does not read: its hub queue skipped frames meanwhile, so nobody else
    /// waited) or `cancel` fires.
    async fn play<P: PlaySource>(&mut self, mut source: P) -> Result<(), RtmpError> {
        let mut tags = Vec::new();
        if self.buf.is_empty() {
            self.buf = BytesMut::with_capacity(PLAY_READ_BUFFER_SIZE);
        }
        loop {
            tags.clear();
            self.buf.reserve(PLAY_READ_BUFFER_SIZE);
            let batch = tokio::select! {
                biased;
                () = &mut self.cancelled => {
                    self.session.end_play("The server is shutting down.");
                    self.flush_best_effort().await;
                    return Ok(());
                }
                read = self.io.read_buf(&mut self.buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.session.bytes_received(n);
                    while let Some(message) = self.reader.read(&mut self.buf)? {
                        self.session.handle_message(message)?;
                    }
                    while let Some(event) = self.session.next_event() {
                        if event == SessionEvent::PlayEnded {
                            debug!("play ended by the client");
                            return Ok(());
                        }
                    }
                    self.flush().await?;
                    continue;
                }
                batch = source.next_batch(&mut tags) => batch,
            };
            match batch {
                Ok(()) => {
                    for tag in &tags {
                        self.session.write_tag(tag);
                    }
                    self.flush().await?;
                    self.session.shrink_output(PLAY_KEPT_OUTPUT);
                }
                Err(reason) => {
                    info!(reason = %clipped(&reason), "played stream ended");
                    self.session.end_play(&reason);
                    self.flush_best_effort().await;
                    return Ok(());
                }
            }
        }
    }

    /// Takes a viewer's place for the play about to be decided (none is needed without a
    /// listener).
    fn take_viewer_place(&mut self) -> bool {
        let Some(viewers) = &self.viewers else {
            return true;
        };
        match viewers.clone().try_acquire_owned() {
            Ok(permit) => {
                self.viewer_permit = Some(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// Takes a publisher's place for the publish about to be decided, unless the connection has
    /// one already (from an earlier publish) or none is needed (no listener).
    fn take_publisher_place(&mut self) -> bool {
        if self.publisher_permit.is_some() {
            return true;
        }
        let Some(publishers) = &self.publishers else {
            return true;
        };
        match publishers.clone().try_acquire_owned() {
            Ok(permit) => {
                self.publisher_permit = Some(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// A failed read of an accepted publish is worth a warning: a reset throws away what the
    /// kernel held for us, so media the publisher sent may be lost.
    fn read_failed(&self, error: std::io::Error) -> std::io::Error {
        if self.published {
            tracing::warn!(%error, received_bytes = self.session.total_received(),
                unparsed_bytes = self.buf.len(), partial_message = self.reader.has_partial(),
                "the publisher's connection failed: media it sent after the last complete message is lost");
        }
        error
    }

    async fn flush(&mut self) -> Result<(), RtmpError> {
        let out = self.session.output();
        if out.is_empty() {
            return Ok(());
        }
        let after = self.limits.write_timeout;
        timeout(after, self.io.write_all(out))
            .await
            .map_err(|_| RtmpError::WriteTimeout { after })??;
        out.clear();
        Ok(())
    }

    async fn flush_best_effort(&mut self) {
        let out = self.session.output();
        if !out.is_empty() {
            let _ = timeout(FINAL_FLUSH_TIMEOUT, self.io.write_all(out)).await;
            out.clear();
        }
    }
}

/// Records `{app}/{stream}` (clipped) in the connection's `rtmp` span (listener.rs).
fn name_stream_in_span(app: &str, stream: &str) {
    tracing::Span::current().record(
        "stream",
        tracing::field::display(format_args!("{}/{}", clipped(app), clipped(stream))),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_shared_and_strictly_ahead() {
        let period = Duration::from_millis(40);
        let now = Instant::now();
        let tick = next_tick(now, period);
        assert!(tick > now && tick <= now + period);
        // Any moment before a tick leads to that same tick: connections wake together.
        assert_eq!(next_tick(tick - Duration::from_millis(1), period), tick);
        assert_eq!(
            next_tick(tick - period + Duration::from_millis(1), period),
            tick
        );
        // At a tick, the next one.
        assert_eq!(next_tick(tick, period), tick + period);
    }
}
