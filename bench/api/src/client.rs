//! A signing API client over a pool of keep-alive connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::{Conn, HttpError, Response};
use crate::sign::{Credentials, NonceSource, Scheme, sign};
use crate::stats::{Outcome, outcome_of};

/// What every request shares.
#[derive(Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub creds: Credentials,
    pub scheme: Scheme,
    nonces: NonceSource,
    pool: Mutex<Vec<Conn>>,
}

/// One finished call.
#[derive(Debug, Clone)]
pub struct Call {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub body: Vec<u8>,
    /// When the request was written (wall clock, for matching with files and logs).
    pub sent_wall: SystemTime,
    pub done_wall: SystemTime,
    /// From just before writing to the last response byte.
    pub service: Duration,
    pub sent: Instant,
    pub done: Instant,
}

impl Client {
    pub fn new(addr: SocketAddr, creds: Credentials, scheme: Scheme) -> Arc<Self> {
        Arc::new(Self {
            addr,
            creds,
            scheme,
            nonces: NonceSource::new(),
            pool: Mutex::new(Vec::new()),
        })
    }

    fn take_conn(&self) -> Option<Conn> {
        self.pool.lock().ok().and_then(|mut p| p.pop())
    }

    fn give_back(&self, conn: Conn) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(conn);
        }
    }

    /// Opens `n` connections ahead of time, so connection set-up is not measured.
    pub async fn warm(&self, n: usize) -> Result<(), HttpError> {
        for _ in 0..n {
            let c = Conn::connect(self.addr).await?;
            self.give_back(c);
        }
        Ok(())
    }

    /// Signs and sends one action on a pooled connection (a new one if none is free). A
    /// connection that failed or that the server closes is dropped.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Call {
        let conn = match self.take_conn() {
            Some(c) => Ok(c),
            None => Conn::connect(self.addr).await,
        };
        let sent_wall = SystemTime::now();
        let sent = Instant::now();
        let result = match conn {
            Ok(mut conn) => {
                let req = sign(
                    self.scheme,
                    &self.creds,
                    conn.host(),
                    action,
                    params,
                    &self.nonces.next(),
                    None,
                );
                let r = conn.post(&req).await;
                if r.is_ok() && !conn.closed {
                    self.give_back(conn);
                }
                r
            }
            Err(e) => Err(e),
        };
        let done = Instant::now();
        let (outcome, status, body) = match result {
            Ok(Response { status, body }) => (outcome_of(status, &body), Some(status), body),
            Err(e) => (client_outcome(&e), None, e.to_string().into_bytes()),
        };
        Call {
            outcome,
            status,
            body,
            sent_wall,
            done_wall: SystemTime::now(),
            service: done.duration_since(sent),
            sent,
            done,
        }
    }
}

/// Short outcome names for client-side failures.
fn client_outcome(e: &HttpError) -> Outcome {
    match e {
        HttpError::Connect { .. } => "client:connect",
        HttpError::Timeout(_) => "client:timeout",
        HttpError::Closed => "client:closed",
        HttpError::Io(_) => "client:io",
        HttpError::HeadTooLarge | HttpError::BodyTooLarge(_) | HttpError::Malformed(_) => {
            "client:malformed"
        }
    }
    .to_owned()
}

/// Unix milliseconds of a wall-clock time.
pub fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}
