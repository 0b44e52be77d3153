//! Wires the crates together and runs until `shutdown` resolves.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use liverec_api::{ApiState, ReloadConfigs};
use liverec_catalog::{Catalog, ObjectKind, RecordingObject, RecordingRow, unix_ms};
use liverec_hub::{Hub, HubConfig, SlowPolicy, SubscribeOptions};
use liverec_recorder::{FileRecord, RecorderDeps, SpoolPolicy, Supervisor};
use liverec_storage::{Completed, OnComplete};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configs::CatalogConfigs;
use crate::ingest::{DomainPolicy, Ingest};
use crate::notify::Callbacks;
use crate::settings::{Settings, secs};
use crate::workers::MediaWorkers;

/// Bound of the hub → recorder publish-event queue.
const LIFECYCLE_QUEUE: usize = 4096;
/// How long in-flight API requests get at shutdown.
const API_DRAIN: Duration = Duration::from_secs(5);
/// Name of the secret that signs playback URLs (kept in the database).
const VOD_SECRET: &str = "vod";
/// Bound of the queue of publishes noted in the catalog.
const PUBLISHED_QUEUE: usize = 1024;
/// How long RTMP sessions get to end at shutdown.
const RTMP_DRAIN: Duration = Duration::from_secs(5);

/// Indexes every finished file in the catalog, with its callback in the same transaction: the
/// storage targets' completion hook, called once a file's object (and its segments) exist.
/// Idempotent on the record id, so a completion delivered again after a crash indexes the file
/// (and queues its callback) once.
/// First wait before indexing a finished file again after a database error; it doubles up to
/// [`INDEX_RETRY_MAX`].
const INDEX_RETRY_FIRST: Duration = Duration::from_millis(200);
const INDEX_RETRY_MAX: Duration = Duration::from_secs(10);

fn index_hook(catalog: Catalog, callbacks: Callbacks, waiting: Arc<AtomicU64>) -> OnComplete {
    Arc::new(move |completed: Completed| {
        let catalog = catalog.clone();
        let callbacks = callbacks.clone();
        let waiting = waiting.clone();
        Box::pin(async move {
            let mut record: FileRecord = match serde_json::from_value(completed.payload) {
                Ok(r) => r,
                Err(err) => {
                    tracing::error!(bucket = %completed.bucket, object = %completed.object, %err,
                        "a stored file carries no readable index row; it is not indexed");
                    return;
                }
            };
            record.object = completed.object;
            let (row, objects) = index_entry(&record);
            let event = callbacks.file_event(&record);
            // A finished file is always indexed: a database that is busy or down is waited
            // out (the storage target keeps the completion until this returns).
            let mut wait = INDEX_RETRY_FIRST;
            let mut failures = 0u64;
            loop {
                let indexed = catalog.index_recording(&row, &objects, Some(&event)).await;
                if failures > 0 && indexed.is_ok() {
                    waiting.fetch_sub(1, Ordering::Relaxed);
                }
                match indexed {
                    Ok(true) => {
                        callbacks.wake();
                        if failures > 0 {
                            tracing::info!(record_id = %row.record_id, object = %row.oss_object, failures, "recording indexed after the database came back");
                        }
                        tracing::debug!(record_id = %row.record_id, object = %row.oss_object, "recording indexed");
                        break;
                    }
                    Ok(false) => {
                        tracing::debug!(record_id = %row.record_id, "recording was indexed already");
                        break;
                    }
                    Err(err) => {
                        if failures == 0 {
                            waiting.fetch_add(1, Ordering::Relaxed);
                        }
                        failures += 1;
                        if failures.is_power_of_two() {
                            tracing::warn!(bucket = %row.oss_bucket, object = %row.oss_object, %err, failures,
                                retry_in = ?wait, "cannot index a finished recording yet; retrying");
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(INDEX_RETRY_MAX);
                    }
                }
            }
        })
    })
}

/// The index row of a finished file and its stored objects (the file, or the playlist, its
/// init segment and its segments).
fn index_entry(record: &FileRecord) -> (RecordingRow, Vec<RecordingObject>) {
    let row = RecordingRow {
        record_id: record.record_id.clone(),
        domain: record.key.domain.clone(),
        app: record.key.app.clone(),
        stream: record.key.stream.clone(),
        format: record.format.as_str().to_owned(),
        oss_bucket: record.bucket.clone(),
        oss_endpoint: record.endpoint.clone(),
        oss_object: record.object.clone(),
        start_time: unix_ms(record.start),
        end_time: unix_ms(record.end),
        duration_secs: record.duration_ms as f64 / 1000.0,
        size: i64::try_from(record.size).unwrap_or(i64::MAX),
        width: i32::try_from(record.width).unwrap_or(0),
        height: i32::try_from(record.height).unwrap_or(0),
        created_at: unix_ms(std::time::SystemTime::now()),
        session_id: record.session_id.clone(),
        object_prefix: record.object_prefix.clone(),
        generated: false,
    };
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let object = |kind, object: &str, start, duration_ms, size| RecordingObject {
        seq: 0,
        bucket: record.bucket.clone(),
        object: object.to_owned(),
        kind,
        start_time: start,
        duration_ms,
        size,
    };
    let main_kind = if record.format.is_segmented() {
        ObjectKind::Playlist
    } else {
        ObjectKind::File
    };
    let mut objects = vec![object(
        main_kind,
        &record.object,
        row.start_time,
        ms(record.duration_ms),
        row.size,
    )];
    if let Some(init) = &record.init_object {
        objects.push(object(ObjectKind::Init, init, row.start_time, 0, 0));
    }
    for segment in &record.segments {
        objects.push(object(
            ObjectKind::Segment,
            &segment.object,
            unix_ms(segment.start),
            ms(segment.duration_ms),
            ms(segment.size),
        ));
    }
    for (seq, o) in objects.iter_mut().enumerate() {
        o.seq = i32::try_from(seq).unwrap_or(i32::MAX);
    }
    (row, objects)
}

/// Name of the lock file in the data directory: one server per data directory.
const LOCK_FILE: &str = "liverec.lock";

/// Takes the data directory's exclusive lock for the life of the process (the returned file
/// holds it). A second server on the same directory would "recover" the first one's open
/// recordings out from under it, so it refuses to start.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            anyhow::bail!(
                "another liverec (pid {}) is serving data directory {}; stop it first, or give \
                 this one its own data_dir",
                holder.trim(),
                data_dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // The holder's pid, for the message above (informational: the lock is what counts).
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Descriptors the server keeps for itself (database, listeners, uploads, API clients, logs).
const FD_RESERVE: u64 = 256;
/// Descriptors one publish may hold: its socket, and for each of up to four formats an open
/// spool file and, for the segmented ones, the playlist's beside the segment's.
const FDS_PER_PUBLISH: u64 = 1 + 2 * 4;

/// Raises the soft open-file limit to the hard one (a default soft limit of 1024 is reached
/// by about a hundred recorded publishers) and warns when even that cannot hold
/// `max_publishers` publishes with their recordings.
fn raise_open_file_limit(max_publishers: usize) {
    let need = (max_publishers as u64)
        .saturating_mul(FDS_PER_PUBLISH)
        .saturating_add(FD_RESERVE);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < need => tracing::warn!(
            limit,
            need,
            max_publishers,
            "the open-file limit is too low for max_publishers recorded streams: raise the hard \
             limit (ulimit -Hn, systemd LimitNOFILE) or lower ingest.max_publishers"
        ),
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(err) => tracing::warn!(%err, "cannot read or raise the open-file limit"),
    }
}

/// Runs the server until `shutdown`; `recent` holds the log's recent warnings and errors (the
/// dashboard shows them).
pub async fn serve(
    settings: Settings,
    recent: Arc<liverec_api::RecentEvents>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    raise_open_file_limit(settings.ingest.max_publishers);
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            settings.data_dir.display()
        )
    })?;
    let _data_dir_lock = lock_data_dir(&settings.data_dir)?;
    let metrics = crate::telemetry::install_metrics()?;
    let record_config = settings.record_config()?;
    match &record_config {
        Some(c) => {
            tracing::info!(mode = ?c.mode, formats = ?c.formats.iter().map(|f| f.format.as_str()).collect::<Vec<_>>(),
            delay_secs = c.delay.as_secs_f64(), bucket = %c.bucket, "built-in record config")
        }
        None => tracing::info!("built-in record config disabled: only API-made configs record"),
    }

    let catalog = Catalog::open(&settings.database_url())
        .await
        .context("cannot open the database")?;
    crate::keys::bootstrap(&catalog, &settings.data_dir).await?;
    // Declared domains exist (the API's strict mode accepts only these).
    for domain in settings
        .domains
        .iter()
        .chain(std::iter::once(&settings.default_domain))
    {
        catalog
            .ensure_domain(&domain.to_ascii_lowercase())
            .await
            .with_context(|| format!("cannot declare domain {domain}"))?;
    }
    let configs = Arc::new(CatalogConfigs::new(catalog.clone(), record_config));
    configs.reload().await;
    let background = TaskTracker::new();
    let background_cancel = CancellationToken::new();
    let callbacks =
        crate::notify::start(&settings.notify, &catalog, &background, &background_cancel)?;
    let index_waiting = Arc::new(AtomicU64::new(0));
    let storage = Arc::new(crate::storage::build(
        &settings,
        &catalog,
        index_hook(catalog.clone(), callbacks.clone(), index_waiting.clone()),
        &background,
        &background_cancel,
    )?);
    {
        let (settings, storage, catalog) = (settings.clone(), storage.clone(), catalog.clone());
        let cancel = background_cancel.clone();
        background.spawn(async move {
            if let Err(err) =
                crate::storage::retention_sweep(settings, storage, catalog, cancel).await
            {
                tracing::error!(%err, "retention sweep stopped");
            }
        });
    }
    // Publishes are noted in the catalog: streams seen, publish history.
    let (published_tx, published_rx) = mpsc::channel(PUBLISHED_QUEUE);
    let node = crate::publishes::node_id(&settings.data_dir)?;
    background.spawn(crate::publishes::run(
        catalog.clone(),
        node,
        published_rx,
        background_cancel.clone(),
    ));

    // Before anything records: finish what a crash left in the spools.
    let started = std::time::Instant::now();
    let progress = crate::progress::RecoveryBar::new();
    let summary = liverec_recorder::recovery::recover_all_with(&storage, &progress).await;
    progress.finish();
    tracing::info!(
        recovered = summary.recovered,
        resumed = summary.resumed,
        left = summary.left,
        orphans = summary.orphans,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovery finished: recordings left unfinished by the previous run are stored and indexed"
    );

    let (lifecycle_tx, lifecycle_rx) = mpsc::channel(LIFECYCLE_QUEUE);
    let idle_timeout = secs(
        "ingest.idle_timeout_secs",
        settings.ingest.idle_timeout_secs,
    )?;
    let hub = Hub::new(
        HubConfig {
            gop_cache_bytes: settings.hub.gop_cache_bytes,
            stale_publisher_after: idle_timeout,
            metrics: true,
        },
        lifecycle_tx,
    );
    let on_demand_timeout = Duration::from_millis(settings.notify.on_demand_timeout_ms.max(1));
    let deps = RecorderDeps {
        hub: hub.clone(),
        configs: configs.clone(),
        storage: storage.clone(),
        policy: SpoolPolicy {
            flush_every: secs(
                "spool.flush_interval_secs",
                settings.spool.flush_interval_secs,
            )?,
            sync_every: secs(
                "spool.fsync_interval_secs",
                settings.spool.fsync_interval_secs,
            )?,
        },
        subscribe: SubscribeOptions {
            from_gop: true,
            queue_bytes: settings.hub.recorder_queue_bytes,
            policy: SlowPolicy::Block {
                max_wait: secs(
                    "hub.recorder_max_block_secs",
                    settings.hub.recorder_max_block_secs,
                )?,
            },
        },
        finalizers: TaskTracker::new(),
        on_demand: Arc::new(
            liverec_notify::on_demand::HttpOnDemand::new(catalog.clone(), on_demand_timeout)
                .context("cannot set up the HTTP client")?,
        ),
        on_demand_timeout,
        status: crate::notify::status_sink(&callbacks, &catalog, &background, &background_cancel),
        board: Default::default(),
    };
    let shutdown_timeout = secs("shutdown_timeout_secs", settings.shutdown_timeout_secs)?;
    let recorder_cancel = CancellationToken::new();
    let (recorders, supervisor) = Supervisor::spawn(
        deps,
        lifecycle_rx,
        recorder_cancel.clone(),
        shutdown_timeout,
    );

    // Control API.
    let api_listener = TcpListener::bind(settings.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", settings.api_listen))?;
    let reload_configs: ReloadConfigs = {
        let configs = configs.clone();
        Arc::new(move || {
            let configs = configs.clone();
            Box::pin(async move { configs.reload().await })
        })
    };
    let api_addr = api_listener.local_addr()?;
    let vod_secret = catalog
        .server_secret(VOD_SECRET)
        .await
        .context("cannot read the playback URL secret")?;
    let vod = liverec_api::vod::VodSigner::new(
        vod_secret.as_bytes(),
        &settings.public_url(api_addr),
        Duration::from_secs(settings.api.vod_url_ttl_secs),
    )
    .context("playback URL secret")?;
    let http_counters = Arc::new(liverec_api::server::HttpCounters::default());
    let domains = Arc::new(DomainPolicy {
        default_domain: settings.default_domain.clone(),
        known: settings.domains.clone(),
        strict: settings.api.strict_domains,
    });
    let publish_auth = Arc::new(crate::ingest::PublishAuth::new(catalog.clone()));
    // Pulls publish like RTMP publishers and stop with them at shutdown.
    let pulls_cancel = CancellationToken::new();
    let pull_tasks = TaskTracker::new();
    let lazy_pulls = crate::lazy::LazyPulls::new(
        hub.clone(),
        catalog.clone(),
        secs("pull.grace_secs", settings.pull.grace_secs)?,
        pulls_cancel.clone(),
    );
    pull_tasks.spawn(crate::scheduled::run(
        hub.clone(),
        catalog.clone(),
        pull_tasks.clone(),
        pulls_cancel.clone(),
    ));
    let viewers: Arc<dyn liverec_play::Viewers> = Arc::new(crate::viewers::PlayGate::new(
        hub.clone(),
        domains.clone(),
        publish_auth.clone(),
        lazy_pulls,
    ));
    let api_state = Arc::new(ApiState {
        catalog: catalog.clone(),
        recorder: recorders,
        hub: hub.clone(),
        reload_configs,
        settings: settings.api_settings(),
        storage: storage.clone(),
        vod,
        index_waiting,
        http: http_counters.clone(),
        viewers: viewers.clone(),
        metrics: Some(metrics),
        recent,
    });
    tracing::info!(addr = %api_listener.local_addr()?, "api listening");
    let api_cancel = CancellationToken::new();
    let api = tokio::spawn(liverec_api::server::serve(
        api_listener,
        liverec_api::router(api_state),
        settings.http_limits()?,
        http_counters,
        api_cancel.clone(),
        API_DRAIN,
    ));

    // RTMP ingest.
    let listener = TcpListener::bind(settings.rtmp_listen)
        .await
        .with_context(|| format!("cannot listen for RTMP on {}", settings.rtmp_listen))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %settings.data_dir.display(), "rtmp ingest listening");
    let limits = liverec_rtmp::Limits {
        max_connections: settings.ingest.max_publishers,
        max_viewers: settings.ingest.max_viewers.max(1),
        handshake_timeout: secs(
            "ingest.handshake_timeout_secs",
            settings.ingest.handshake_timeout_secs,
        )?,
        idle_timeout,
        merge_reads: Duration::from_millis(settings.ingest.merge_reads_ms),
        publish_deadline: secs(
            "ingest.publish_deadline_secs",
            settings.ingest.publish_deadline_secs,
        )?,
        max_pending_per_ip: settings.ingest.max_pending_connections_per_ip.max(1),
        max_pending_connections: settings.ingest.max_pending_connections.max(1),
        partial_budget_bytes: settings.ingest.partial_budget_bytes,
        write_timeout: liverec_rtmp::DEFAULT_WRITE_TIMEOUT,
    };
    let rtmp_cancel = CancellationToken::new();
    let make_handler = {
        let hub = hub.clone();
        move |_peer| {
            Ingest::new(
                hub.clone(),
                viewers.clone(),
                domains.clone(),
                publish_auth.clone(),
                published_tx.clone(),
            )
        }
    };
    let workers = MediaWorkers::start(settings.ingest.threads)?;
    let rtmp = tokio::spawn(liverec_rtmp::serve_on(
        listener,
        make_handler,
        limits,
        rtmp_cancel.clone(),
        workers.handles(),
    ));

    shutdown.await;
    tracing::info!("shutting down: closing the API and publishers, then finalizing recordings");
    api_cancel.cancel();
    rtmp_cancel.cancel();
    pulls_cancel.cancel();
    pull_tasks.close();
    if tokio::time::timeout(API_DRAIN, api).await.is_err() {
        tracing::warn!("API requests did not finish within {API_DRAIN:?}");
    }
    if tokio::time::timeout(RTMP_DRAIN, rtmp).await.is_err() {
        tracing::warn!("rtmp sessions did not end within {RTMP_DRAIN:?}");
    }
    if tokio::time::timeout(RTMP_DRAIN, pull_tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("scheduled pulls did not end within {RTMP_DRAIN:?}");
    }
    recorder_cancel.cancel();
    let supervised = supervisor.await.context("recorder supervisor failed");
    // Recorders and their finalizations have ended (or timed out): nothing left to run there.
    workers.stop().await;
    // Uploads still queued resume on the next start.
    background_cancel.cancel();
    background.close();
    if tokio::time::timeout(API_DRAIN, background.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop within {API_DRAIN:?}");
    }
    supervised?;
    tracing::info!("shutdown complete");
    Ok(())
}
