//! The accept loop: a permit per connection, backoff on accept errors, one task per
//! connection, and a clean wait for all of them on shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::chunk::PartialBudget;
use crate::conn::{Shared, serve_connection_with};
use crate::error::RtmpError;
use crate::handler::SessionHandler;
use crate::limits::Limits;

/// First pause after a failed accept (out of file descriptors, …).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between accept attempts; the server never gives up on its listener.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Connections per IP that have not published yet.
#[derive(Debug)]
pub(crate) struct PendingTable {
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

    /// A place for a new connection from `ip`, unless it has `max` already.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PendingSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PendingSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection's place among its IP's connections that have not published yet; dropping it
/// gives the place back.
#[derive(Debug)]
pub struct PendingSlot {
    table: Arc<PendingTable>,
    ip: IpAddr,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut counts = self
            .table
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Refused connections are logged at most this often, with their count.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts RTMP connections until `cancel` fires, then waits for every connection task (each
/// sees the same cancellation, asks E-RTMP clients to reconnect, and ends its publish).
/// `make_handler` is called once per accepted connection. Connections run on the current
/// runtime.
pub async fn serve<F, H>(
    listener: TcpListener,
    make_handler: F,
    limits: Limits,
    cancel: CancellationToken,
) where
    F: Fn(SocketAddr) -> H,
    H: SessionHandler + 'static,
{
    serve_on(listener, make_handler, limits, cancel, Vec::new()).await;
}

/// [`serve`], with each connection handed to one of `workers` in turn (an empty list: the
/// current runtime). Single-threaded worker runtimes, one per core, keep a connection and
/// what it wakes on one thread, as nginx's worker processes do.
pub async fn serve_on<F, H>(
    listener: TcpListener,
    make_handler: F,
    limits: Limits,
    cancel: CancellationToken,
    workers: Vec<Handle>,
) where
    F: Fn(SocketAddr) -> H,
    H: SessionHandler + 'static,
{
    let mut next_worker = 0usize;
    let tracker = TaskTracker::new();
    // Connections wait for a pending place before they are accepted; a publish then trades it
    // for a publisher's place (conn.rs), so idle connections never take a publisher's.
    let permits = Arc::new(Semaphore::new(limits.max_pending_connections.max(1)));
    let publishers = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let viewers = Arc::new(Semaphore::new(limits.max_viewers.max(1)));
    let pending = Arc::new(PendingTable::new(limits.max_pending_per_ip));
    let budget = Arc::new(PartialBudget::new(limits.partial_budget_bytes));
    let mut refused_since_log = 0u64;
    let mut last_refusal_log: Option<tokio::time::Instant> = None;
    let limits = Arc::new(limits);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(error) => {
                warn!(%error, ?backoff, "RTMP accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Some(slot) = pending.admit(peer.ip()) else {
            refused_since_log += 1;
            let now = tokio::time::Instant::now();
            if last_refusal_log.is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_INTERVAL) {
                warn!(ip = %peer.ip(), refused = refused_since_log, max = limits.max_pending_per_ip,
                    "RTMP connection refused: this address has max_pending_per_ip connections that have not published");
                refused_since_log = 0;
                last_refusal_log = Some(now);
            }
            continue;
        };
        let shared = Shared {
            pending: Some(slot),
            pending_permit: Some(permit),
            publishers: Some(publishers.clone()),
            viewers: Some(viewers.clone()),
            budget: Some(budget.clone()),
        };
        // Small replies (statuses, acks) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let handler = make_handler(peer);
        let limits = Arc::clone(&limits);
        let cancel = cancel.child_token();
        // Round robin; no workers: the current runtime.
        let worker = workers.get(next_worker % workers.len().max(1));
        next_worker = next_worker.wrapping_add(1);
        // A socket belongs to the reactor it was registered with: it travels as a std socket
        // and is registered again by the runtime that serves it.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                warn!(%peer, %error, "cannot take over an RTMP connection");
                continue;
            }
        };
        let task = async move {
            let result = match TcpStream::from_std(stream) {
                Ok(stream) => {
                    serve_connection_with(stream, peer, handler, &limits, cancel, shared).await
                }
                Err(error) => Err(RtmpError::from(error)),
            };
            log_end(&result);
        }
        // `stream` is filled in once the peer asks to publish or play (conn.rs), so every
        // later line of the connection names its stream.
        .instrument(info_span!("rtmp", %peer, stream = tracing::field::Empty));
        match worker {
            Some(worker) => tracker.spawn_on(task, worker),
            None => tracker.spawn(task),
        };
    }
    tracker.close();
    tracker.wait().await;
}

/// Logs a connection's end once, at a level chosen by its classification.
fn log_end(result: &Result<(), RtmpError>) {
    match result {
        Ok(()) => debug!("connection closed"),
        Err(error) if error.is_client_closed() => debug!(%error, "client went away"),
        Err(error) => info!(%error, "connection ended with an error"),
    }
}
