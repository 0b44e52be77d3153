//! Scheduled pulls (AddLivePullStreamInfoConfig & co.): during each config's window the
//! source is pulled into the main hub — recorded like a published stream, whether or not
//! anyone plays — and pulled again with backoff when it drops.
//!
//! The configs are read from the catalog every [`POLL`], so API changes apply within seconds
//! on every node sharing the database.

use std::collections::HashMap;
use std::time::Duration;

use liverec_catalog::{Catalog, PullConfig};
use liverec_hub::{Hub, StreamKey};
use liverec_pull::PumpEnd;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the scheduled pulls are compared with the catalog.
pub const POLL: Duration = Duration::from_secs(2);
/// First and longest wait before pulling a source again after it failed or dropped.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

struct Running {
    source_url: String,
    cancel: CancellationToken,
}

/// Runs until `cancel` fires; each pull's task is tracked by `tasks`.
pub async fn run(hub: Hub, catalog: Catalog, tasks: TaskTracker, cancel: CancellationToken) {
    let mut running: HashMap<StreamKey, Running> = HashMap::new();
    let mut failures = 0u64;
    loop {
        let now = liverec_catalog::unix_ms(std::time::SystemTime::now());
        match catalog.active_pull_configs(now).await {
            Ok(active) => {
                failures = 0;
                let wanted: HashMap<StreamKey, PullConfig> =
                    active.into_iter().map(|c| (key_of(&c), c)).collect();
                running.retain(|key, pull| {
                    let keep = wanted
                        .get(key)
                        .is_some_and(|c| c.source_url == pull.source_url);
                    if !keep {
                        tracing::info!(stream = %key, "scheduled pull stops (its window ended or its config changed)");
                        pull.cancel.cancel();
                    }
                    keep
                });
                for (key, config) in wanted {
                    if running.contains_key(&key) {
                        continue;
                    }
                    let pull_cancel = cancel.child_token();
                    tasks.spawn(pull(
                        hub.clone(),
                        catalog.clone(),
                        key.clone(),
                        config.source_url.clone(),
                        pull_cancel.clone(),
                    ));
                    running.insert(
                        key,
                        Running {
                            source_url: config.source_url,
                            cancel: pull_cancel,
                        },
                    );
                }
            }
            // Pulls keep going while the database cannot be read.
            Err(err) => {
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(%err, failures, "cannot read the scheduled pulls; those running go on");
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

fn key_of(config: &PullConfig) -> StreamKey {
    StreamKey {
        domain: config.domain.clone(),
        app: config.app.clone(),
        stream: config.stream.clone(),
    }
}

/// Pulls one stream until `cancel` fires, from the first of its sources that works, again and
/// again (1 s doubling to 30 s apart) when it fails or drops.
async fn pull(
    hub: Hub,
    catalog: Catalog,
    key: StreamKey,
    source_url: String,
    cancel: CancellationToken,
) {
    let urls: Vec<String> = source_url
        .split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let mut wait = RETRY_FIRST;
    while !cancel.is_cancelled() {
        let connected = tokio::select! {
            () = cancel.cancelled() => break,
            connected = liverec_pull::connect_first(&urls) => connected,
        };
        match connected {
            Err(err) => {
                tracing::warn!(stream = %key, %err, retry_in = ?wait, "scheduled pull failed")
            }
            Ok((mut source, url)) => match hub.publish(key.clone(), Vec::new(), None).await {
                Err(err) => {
                    tracing::warn!(stream = %key, %err, retry_in = ?wait, "a scheduled pull cannot publish")
                }
                Ok(mut publisher) => {
                    tracing::info!(stream = %key, %url, "scheduled pull started");
                    note_source(&catalog, &key, &url).await;
                    let started = tokio::time::Instant::now();
                    let end =
                        liverec_pull::pump(&mut source, &mut publisher, &cancel, |_| {}).await;
                    publisher.end().await;
                    note_source(&catalog, &key, "").await;
                    // A pull that ran a while retries at once after it drops.
                    if started.elapsed() > RETRY_MAX {
                        wait = RETRY_FIRST;
                    }
                    match end {
                        PumpEnd::Cancelled => break,
                        PumpEnd::Ended => {
                            tracing::info!(stream = %key, %url, retry_in = ?wait, "the source ended the scheduled pull's stream")
                        }
                        PumpEnd::Failed(err) => {
                            tracing::warn!(stream = %key, %url, %err, retry_in = ?wait, "scheduled pull broke off")
                        }
                    }
                }
            },
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MAX);
    }
    tracing::info!(stream = %key, "scheduled pull over");
}

async fn note_source(catalog: &Catalog, key: &StreamKey, url: &str) {
    if let Err(err) = catalog
        .set_pull_source_using(&key.domain, &key.app, &key.stream, url)
        .await
    {
        tracing::debug!(stream = %key, %err, "cannot note the source in use");
    }
}
