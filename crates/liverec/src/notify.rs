//! Record callbacks in the binary: the outbox dispatcher and its prune loop, the file event
//! each index row carries, the status events recorders announce, and `liverec notify resend`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use liverec_catalog::{Catalog, NewNotifyEvent, ResendFilter, unix_ms};
use liverec_hub::StreamKey;
use liverec_notify::deliver::{DeliverySettings, Dispatcher, Wake};
use liverec_notify::events::{EventKind, FileFacts, StreamRef, file_body, status_body};
use liverec_recorder::{FileRecord, RecordStatus, StatusSink};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::{NotifySettings, secs};

/// How often delivered and given-up callbacks older than `keep_days` are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Status events waiting for their outbox row. Recorders never wait on the database: past this
/// many, an announcement is dropped (counted and logged).
const STATUS_QUEUE: usize = 4096;
/// How long a status event is retried against a failing database before it is dropped.
const STATUS_DB_PATIENCE: Duration = Duration::from_secs(60);

/// What the rest of the server needs of the callbacks. Cheap to clone.
#[derive(Clone)]
pub struct Callbacks {
    wake: Wake,
    retry_for: Duration,
}

impl Callbacks {
    /// The file callback of an index row: its id is the record id, so a completion delivered
    /// twice (after a crash) queues it once.
    pub fn file_event(&self, record: &FileRecord) -> NewNotifyEvent {
        let push_args = &record.push_args;
        let body = file_body(
            StreamRef {
                domain: &record.key.domain,
                app: &record.key.app,
                stream: &record.key.stream,
            },
            FileFacts {
                uri: &record.object,
                duration_secs: record.duration_ms as f64 / 1000.0,
                start_time: unix_ms(record.start) / 1000,
                stop_time: unix_ms(record.end) / 1000,
                push_args,
            },
        );
        self.event(
            record.record_id.clone(),
            (&record.key.domain, &record.key.app, &record.key.stream),
            EventKind::FileCreated,
            body,
        )
    }

    fn event(
        &self,
        event_id: String,
        (domain, app, stream): (&str, &str, &str),
        kind: EventKind,
        body: String,
    ) -> NewNotifyEvent {
        let now = SystemTime::now();
        NewNotifyEvent {
            event_id,
            domain: domain.to_owned(),
            app: app.to_owned(),
            stream: stream.to_owned(),
            event: kind.as_str().to_owned(),
            body,
            created_at: unix_ms(now),
            retry_until: unix_ms(now + self.retry_for),
        }
    }

    /// Something was queued: deliver it now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.wake();
    }
}

fn retry_window(settings: &NotifySettings) -> anyhow::Result<Duration> {
    secs("notify.retry_hours", settings.retry_hours * 3600.0)
}

/// Starts the dispatcher and the prune loop on `tasks`; both end at `cancel`.
pub fn start(
    settings: &NotifySettings,
    catalog: &Catalog,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> anyhow::Result<Callbacks> {
    let delivery = DeliverySettings {
        timeout: secs("notify.timeout_secs", settings.timeout_secs)?,
        concurrency: settings.concurrency.max(1),
        per_domain: settings.per_domain_concurrency.max(1),
        max_interval: secs(
            "notify.retry_max_interval_secs",
            settings.retry_max_interval_secs,
        )?,
        ..DeliverySettings::default()
    };
    let keep_for = secs("notify.keep_days", settings.keep_days * 86_400.0)?;
    let dispatcher =
        Dispatcher::new(catalog.clone(), delivery).context("cannot set up the HTTP client")?;
    let callbacks = Callbacks {
        wake: dispatcher.waker(),
        retry_for: retry_window(settings)?,
    };
    tasks.spawn(dispatcher.run(cancel.clone()));
    let (catalog, cancel) = (catalog.clone(), cancel.clone());
    tasks.spawn(async move {
        loop {
            let before = unix_ms(
                SystemTime::now()
                    .checked_sub(keep_for)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            );
            match catalog.prune_notify_events(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old callback records pruned"),
                Err(err) => tracing::warn!(%err, "cannot prune old callback records"),
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    });
    Ok(callbacks)
}

/// Turns recorders' status announcements into status callbacks (for domains whose notify
/// config has NeedStatusNotify): a bounded queue, written to the outbox by one task.
pub struct StatusCallbacks {
    callbacks: Callbacks,
    queue: mpsc::Sender<NewNotifyEvent>,
    dropped: AtomicU64,
}

impl StatusSink for StatusCallbacks {
    fn announce(&self, key: &StreamKey, status: RecordStatus) {
        let (kind, description) = match &status {
            RecordStatus::Started => (EventKind::RecordStarted, None),
            RecordStatus::Paused => (EventKind::RecordPaused, None),
            RecordStatus::Resumed => (EventKind::RecordResumed, None),
            RecordStatus::Error { description } => {
                (EventKind::RecordError, Some(description.as_str()))
            }
        };
        let body = status_body(
            StreamRef {
                domain: &key.domain,
                app: &key.app,
                stream: &key.stream,
            },
            kind,
            description,
        );
        let event = self.callbacks.event(
            liverec_recorder::output::new_id(),
            (&key.domain, &key.app, &key.stream),
            kind,
            body,
        );
        if self.queue.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(stream = %key, event = kind.as_str(), dropped,
                    "status callback dropped: the database is not keeping up");
            }
        }
    }
}

/// Starts the task that writes status events to the outbox; it ends at `cancel`, after
/// writing what was already queued.
pub fn status_sink(
    callbacks: &Callbacks,
    catalog: &Catalog,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Arc<StatusCallbacks> {
    let (queue, mut rx) = mpsc::channel::<NewNotifyEvent>(STATUS_QUEUE);
    let (catalog, cancel, wake) = (catalog.clone(), cancel.clone(), callbacks.clone());
    tasks.spawn(async move {
        loop {
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = cancel.cancelled() => {
                    rx.close();
                    rx.recv().await
                }
            };
            let Some(event) = event else { break };
            let mut wait = Duration::from_millis(100);
            let give_up_at = tokio::time::Instant::now() + STATUS_DB_PATIENCE;
            loop {
                match catalog.enqueue_status_event(&event).await {
                    Ok(true) => {
                        wake.wake();
                        break;
                    }
                    // The domain wants no status callbacks.
                    Ok(false) => break,
                    Err(err) if tokio::time::Instant::now() + wait < give_up_at && !cancel.is_cancelled() => {
                        tracing::warn!(%err, event = %event.event, stream = %event.stream,
                            "cannot queue a status callback; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                    Err(err) => {
                        tracing::error!(%err, event = %event.event, domain = %event.domain,
                            app = %event.app, stream = %event.stream, "status callback lost: the database refused it");
                        break;
                    }
                }
            }
        }
    });
    Arc::new(StatusCallbacks {
        callbacks: callbacks.clone(),
        queue,
        dropped: AtomicU64::new(0),
    })
}

/// `liverec notify resend`: makes callbacks due again, with a fresh retry window.
pub async fn resend(
    catalog: &Catalog,
    settings: &NotifySettings,
    filter: ResendFilter,
) -> anyhow::Result<()> {
    let until = unix_ms(SystemTime::now() + retry_window(settings)?);
    let n = catalog
        .resend_notify_events(&filter, until)
        .await
        .context("cannot mark the callbacks for sending")?;
    let backlog = catalog
        .notify_backlog()
        .await
        .context("cannot read the outbox")?;
    println!(
        "{n} callback(s) queued again; the running server sends them within seconds \
         ({} pending, {} given up)",
        backlog.pending, backlog.failed
    );
    Ok(())
}
