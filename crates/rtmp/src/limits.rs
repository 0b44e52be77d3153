//! Limits and timeouts of the RTMP server (plain config fields, set by the binary and tests).

use std::time::Duration;

/// Publishing connections at once (`max_publishers`). Every limit here is a field of
/// [`Limits`], set from `[ingest]` settings (docs/SECURITY.md lists them).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Playing connections at once (`max_viewers`); a play beyond is refused.
pub const DEFAULT_MAX_VIEWERS: usize = 2000;
/// Time a client gets for the whole handshake (a client that stalls in it is dropped).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence after which a connected client is considered gone.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to take a write of ours (replies are small; a stuck one is dead).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets from connecting to an accepted `publish` or `play` (the handshake
/// included).
pub const DEFAULT_PUBLISH_DEADLINE: Duration = Duration::from_secs(10);
/// Connections that have not published yet, from all addresses; more wait in the listen
/// backlog. Publishers do not count, so a flood of idle connections never keeps a publisher out
/// of its own `max_connections`.
pub const DEFAULT_MAX_PENDING_CONNECTIONS: usize = 1000;
/// Connections per client IP that have not published yet; more are closed as they are accepted.
/// Established publishers count only against `max_connections`, so one host may publish many
/// streams.
pub const DEFAULT_MAX_PENDING_PER_IP: usize = 64;
/// Merged reads of a publishing connection (0: off; see [`Limits::merge_reads`]).
pub const DEFAULT_MERGE_READS: Duration = Duration::ZERO;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Publishing connections at once (`max_publishers`); a publish beyond is refused.
    pub max_connections: usize,
    /// Playing connections at once (`max_viewers`); a play beyond is refused.
    pub max_viewers: usize,
    /// Connections that have not published yet, all addresses together.
    pub max_pending_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub publish_deadline: Duration,
    pub max_pending_per_ip: usize,
    /// Bytes the half-received messages of all connections may hold together
    /// ([`crate::chunk::PartialBudget`]).
    pub partial_budget_bytes: usize,
    /// Once a publish is accepted and the socket has been drained, wait for the next tick of
    /// this period before reading again, so one wake-up reads everything that arrived since
    /// (SRS calls this merged read). Ticks are shared by all connections, so the connections
    /// on one thread wake together. Costs at most this much latency; zero reads at once.
    pub merge_reads: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_viewers: DEFAULT_MAX_VIEWERS,
            max_pending_connections: DEFAULT_MAX_PENDING_CONNECTIONS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            publish_deadline: DEFAULT_PUBLISH_DEADLINE,
            max_pending_per_ip: DEFAULT_MAX_PENDING_PER_IP,
            partial_budget_bytes: crate::chunk::DEFAULT_PARTIAL_BUDGET_BYTES,
            merge_reads: DEFAULT_MERGE_READS,
        }
    }
}
