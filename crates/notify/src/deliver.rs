//! Delivers the callback outbox: claims due rows from the catalog, POSTs them with bounded
//! concurrency (in all and per domain), and records each attempt's result and the next one.
//!
//! At least once: a row stays `pending` until an attempt is recorded as delivered. An attempt
//! that crashes or cannot record its result leaves the row leased; it is tried again when the
//! lease ends. Receivers deduplicate on the `Idempotency-Key` header, the same for every
//! attempt of an event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use liverec_catalog::{AttemptOutcome, AttemptResult, Catalog, NotifyEventRow, unix_ms};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::schedule::{QUICK_RETRIES, retry_delay};
use crate::sign;

/// The header that carries the event id.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// How much of a receiver's answer is kept for DescribeLiveRecordNotifyRecords.
const RESPONSE_KEEP: usize = 512;
/// Time beyond the request timeout before a claimed row may be claimed again.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How long to wait after the database failed before claiming again.
const DB_RETRY: Duration = Duration::from_secs(1);
/// How long in-flight attempts get at shutdown; the rest are retried on the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Per attempt, connect to last byte (Alibaba: 5 s).
    pub timeout: Duration,
    /// Attempts in flight, all domains together.
    pub concurrency: u32,
    /// Attempts in flight for one domain, so a slow receiver cannot hold every slot.
    pub per_domain: u32,
    /// Even with nothing announced, look for due rows this often (retries, other nodes).
    pub poll_every: Duration,
    /// Cap of the slow retries' backoff.
    pub max_interval: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            concurrency: 64,
            per_domain: 8,
            poll_every: Duration::from_secs(2),
            max_interval: crate::schedule::DEFAULT_MAX_INTERVAL,
        }
    }
}

/// Tells the dispatcher that something was queued. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

pub struct Dispatcher {
    catalog: Catalog,
    client: reqwest::Client,
    settings: DeliverySettings,
    wake: Wake,
}

/// What an attempt sent and got.
struct Attempted {
    row: NotifyEventRow,
    headers: Vec<(String, String)>,
    delivered: bool,
    response: String,
}

impl Dispatcher {
    pub fn new(catalog: Catalog, settings: DeliverySettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A receiver that redirects gets the answer it asked for, not our body elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("liverec/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            catalog,
            client,
            settings,
            wake: Wake::default(),
        })
    }

    /// The handle that wakes this dispatcher when an event is queued.
    pub fn waker(&self) -> Wake {
        self.wake.clone()
    }

    /// Delivers until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let mut in_flight: JoinSet<Attempted> = JoinSet::new();
        let mut per_domain: HashMap<String, u32> = HashMap::new();
        let lease = self.settings.timeout + LEASE_MARGIN;
        loop {
            let free = self
                .settings
                .concurrency
                .saturating_sub(u32::try_from(in_flight.len()).unwrap_or(u32::MAX));
            let mut wait = self.settings.poll_every;
            if free > 0 {
                let now = SystemTime::now();
                let domains_in_flight: Vec<(String, u32)> =
                    per_domain.iter().map(|(d, n)| (d.clone(), *n)).collect();
                match self
                    .catalog
                    .claim_notify_events(
                        unix_ms(now),
                        unix_ms(now + lease),
                        free,
                        self.settings.per_domain,
                        &domains_in_flight,
                    )
                    .await
                {
                    Ok(rows) => {
                        for row in rows {
                            *per_domain.entry(row.domain.clone()).or_default() += 1;
                            in_flight.spawn(attempt(self.client.clone(), row));
                        }
                        wait = self.until_next_due(wait).await;
                    }
                    Err(err) => {
                        tracing::warn!(%err, "cannot read the callback outbox; trying again");
                        wait = DB_RETRY;
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.0.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    self.settle(done, &mut per_domain).await;
                    // Settle everything else that finished, then claim again.
                    while let Some(done) = in_flight.try_join_next() {
                        self.settle(done, &mut per_domain).await;
                    }
                }
            }
        }
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = &mut grace => break,
                done = in_flight.join_next() => match done {
                    Some(done) => self.settle(done, &mut per_domain).await,
                    None => break,
                },
            }
        }
        // Attempts cut short stay leased and are made again on the next start.
        in_flight.abort_all();
    }

    /// How long to sleep before the next due row, at most `cap`.
    async fn until_next_due(&self, cap: Duration) -> Duration {
        match self.catalog.next_notify_due().await {
            Ok(Some(due)) => {
                let now = unix_ms(SystemTime::now());
                let ms = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
                Duration::from_millis(ms).min(cap)
            }
            Ok(None) => cap,
            Err(_) => DB_RETRY.min(cap),
        }
    }

    async fn settle(
        &self,
        done: Result<Attempted, tokio::task::JoinError>,
        per_domain: &mut HashMap<String, u32>,
    ) {
        let attempted = match done {
            Ok(a) => a,
            Err(err) => {
                // The row stays leased and is tried again after its lease.
                tracing::error!(%err, "a callback attempt failed unexpectedly");
                return;
            }
        };
        if let Some(count) = per_domain.get_mut(&attempted.row.domain) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_domain.remove(&attempted.row.domain);
            }
        }
        let row = &attempted.row;
        let now = SystemTime::now();
        let failures = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
        let outcome = if attempted.delivered {
            AttemptOutcome::Delivered
        } else {
            let next = unix_ms(
                now + retry_delay(failures, rand::random::<f64>(), self.settings.max_interval),
            );
            if next > row.retry_until {
                AttemptOutcome::GiveUp
            } else {
                AttemptOutcome::RetryAt(next)
            }
        };
        let url = redacted(&row.url);
        let event = row.event.clone();
        if !attempted.delivered {
            metrics::counter!(crate::metrics::CALLBACK_ATTEMPTS_FAILED, "event" => event.clone())
                .increment(1);
        }
        let counter = match outcome {
            AttemptOutcome::Delivered => crate::metrics::CALLBACKS_SENT,
            AttemptOutcome::GiveUp => crate::metrics::CALLBACKS_GIVEN_UP,
            AttemptOutcome::RetryAt(_) => crate::metrics::CALLBACKS_RETRIED,
        };
        metrics::counter!(counter, "event" => event).increment(1);
        match outcome {
            AttemptOutcome::Delivered => {
                tracing::debug!(event_id = %row.event_id, event = %row.event, url, attempt = failures, "callback delivered")
            }
            AttemptOutcome::GiveUp => {
                tracing::error!(event_id = %row.event_id, event = %row.event, domain = %row.domain, url,
                    attempts = failures, last = %attempted.response,
                    "callback given up after its retry window; `liverec notify resend` sends it again")
            }
            AttemptOutcome::RetryAt(at) => {
                // One line when an event starts failing and one when it leaves the quick
                // retries: a receiver that is down must not flood the log.
                if failures == 1 || failures == QUICK_RETRIES + 1 {
                    tracing::warn!(event_id = %row.event_id, event = %row.event, domain = %row.domain, url,
                        attempt = failures, response = %attempted.response,
                        retry_in_ms = at.saturating_sub(unix_ms(now)), "callback not delivered; will retry")
                } else {
                    tracing::debug!(event_id = %row.event_id, attempt = failures, response = %attempted.response, "callback retry failed")
                }
            }
        }
        let headers: serde_json::Map<String, serde_json::Value> = attempted
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let result = AttemptResult {
            at: unix_ms(now),
            headers: serde_json::Value::Object(headers).to_string(),
            response: attempted.response,
            outcome,
        };
        if let Err(err) = self
            .catalog
            .finish_notify_attempt(&row.event_id, &result)
            .await
        {
            // The lease ends and the event is sent again: at least once still holds.
            tracing::warn!(event_id = %row.event_id, %err, "cannot record a callback attempt");
        }
    }
}

/// One POST of one event.
async fn attempt(client: reqwest::Client, row: NotifyEventRow) -> Attempted {
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (IDEMPOTENCY_HEADER.to_owned(), row.event_id.clone()),
    ];
    if !row.auth_key.is_empty() {
        let now = unix_ms(SystemTime::now()) / 1000;
        if let Some(auth) = sign::auth_headers(&row.url, now, &row.auth_key) {
            headers.extend(auth.map(|(k, v)| (k.to_owned(), v)));
        }
    }
    let mut request = client.post(&row.url).body(row.body.clone());
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let (delivered, response) = match request.send().await {
        Ok(mut answer) => {
            let status = answer.status();
            let mut kept = Vec::new();
            // Read at most RESPONSE_KEEP bytes; the rest of a large answer is dropped unread.
            while kept.len() < RESPONSE_KEEP {
                match answer.chunk().await {
                    Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            kept.truncate(RESPONSE_KEEP);
            let text = String::from_utf8_lossy(&kept);
            (
                status.is_success(),
                format!("HTTP {}: {}", status.as_u16(), text.trim()),
            )
        }
        Err(err) => (false, describe(&err)),
    };
    Attempted {
        row,
        headers,
        delivered,
        response,
    }
}

/// Why a request failed, in a few words (reqwest's Display nests its sources).
fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

/// A URL for the log: scheme, host, port and path (a query may carry a receiver's token).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(invalid url)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_lose_their_query() {
        assert_eq!(
            redacted("https://h.example:8443/cb?token=secret#x"),
            "https://h.example:8443/cb"
        );
        assert_eq!(redacted("nope"), "(invalid url)");
    }
}
