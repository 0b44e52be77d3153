//! Limits and timeouts of the RTMP server (plain config fields, set by the binary and tests).

use std::time::Duration;

/// Connections served at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Time a client gets for the whole handshake (a client that stalls in it is dropped).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence after which a connected client is considered gone.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to take a write of ours (replies are small; a stuck one is dead).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Merged reads of a publishing connection (0: off; see [`Limits::merge_reads`]).
pub const DEFAULT_MERGE_READS: Duration = Duration::ZERO;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
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
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            merge_reads: DEFAULT_MERGE_READS,
        }
    }
}
