//! Wires the crates together and runs until `shutdown` resolves.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use liverec_api::{ApiState, ReloadConfigs};
use liverec_catalog::{Catalog, RecordingRow, unix_ms};
use liverec_hub::{Hub, HubConfig, SlowPolicy, SubscribeOptions};
use liverec_recorder::{FileRecord, FileSink, RecorderDeps, SpoolPolicy, Supervisor};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configs::CatalogConfigs;
use crate::ingest::{DomainPolicy, Ingest};
use crate::settings::{Settings, secs};
use crate::workers::MediaWorkers;

/// Bound of the hub → recorder publish-event queue.
const LIFECYCLE_QUEUE: usize = 4096;
/// How long in-flight API requests get at shutdown.
const API_DRAIN: Duration = Duration::from_secs(5);
/// How long RTMP sessions get to end at shutdown.
const RTMP_DRAIN: Duration = Duration::from_secs(5);

/// Indexes every finished file in the catalog.
fn index_sink(catalog: Catalog) -> FileSink {
    Arc::new(move |record: FileRecord| {
        let catalog = catalog.clone();
        Box::pin(async move {
            let row = RecordingRow {
                record_id: uuid::Uuid::new_v4().to_string(),
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
            };
            match catalog.insert_recording(&row).await {
                Ok(()) => {
                    tracing::debug!(record_id = %row.record_id, object = %row.oss_object, "recording indexed")
                }
                Err(err) => {
                    tracing::error!(object = %row.oss_object, %err, "cannot index a finished recording")
                }
            }
        })
    })
}

pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            settings.data_dir.display()
        )
    })?;
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
    let sink = index_sink(catalog.clone());

    // Before anything records: finish what a crash left in the spools.
    let recovered = liverec_recorder::recovery::recover_all(&settings.data_dir, &sink).await;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "finalized recordings left unfinished by the previous run"
        );
    }

    let (lifecycle_tx, lifecycle_rx) = mpsc::channel(LIFECYCLE_QUEUE);
    let idle_timeout = secs(
        "ingest.idle_timeout_secs",
        settings.ingest.idle_timeout_secs,
    )?;
    let hub = Hub::new(
        HubConfig {
            gop_cache_bytes: settings.hub.gop_cache_bytes,
            stale_publisher_after: idle_timeout,
        },
        lifecycle_tx,
    );
    let deps = RecorderDeps {
        hub: hub.clone(),
        configs: configs.clone(),
        data_dir: settings.data_dir.clone(),
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
        sink,
        finalizers: TaskTracker::new(),
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
    let api_state = Arc::new(ApiState {
        catalog: catalog.clone(),
        recorder: recorders,
        hub: hub.clone(),
        reload_configs,
        settings: settings.api_settings(),
    });
    tracing::info!(addr = %api_listener.local_addr()?, "api listening");
    let api_cancel = CancellationToken::new();
    let api = tokio::spawn(
        axum::serve(api_listener, liverec_api::router(api_state))
            .with_graceful_shutdown(api_cancel.clone().cancelled_owned())
            .into_future(),
    );

    // RTMP ingest.
    let listener = TcpListener::bind(settings.rtmp_listen)
        .await
        .with_context(|| format!("cannot listen for RTMP on {}", settings.rtmp_listen))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %settings.data_dir.display(), "rtmp ingest listening");
    let limits = liverec_rtmp::Limits {
        max_connections: settings.ingest.max_publishers,
        handshake_timeout: secs(
            "ingest.handshake_timeout_secs",
            settings.ingest.handshake_timeout_secs,
        )?,
        idle_timeout,
        merge_reads: Duration::from_millis(settings.ingest.merge_reads_ms),
        ..Default::default()
    };
    let domains = Arc::new(DomainPolicy {
        default_domain: settings.default_domain.clone(),
        known: settings.domains.clone(),
        strict: settings.api.strict_domains,
    });
    let rtmp_cancel = CancellationToken::new();
    let make_handler = {
        let hub = hub.clone();
        move |_peer| Ingest::new(hub.clone(), domains.clone())
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
    if tokio::time::timeout(API_DRAIN, api).await.is_err() {
        tracing::warn!("API requests did not finish within {API_DRAIN:?}");
    }
    if tokio::time::timeout(RTMP_DRAIN, rtmp).await.is_err() {
        tracing::warn!("rtmp sessions did not end within {RTMP_DRAIN:?}");
    }
    recorder_cancel.cancel();
    let supervised = supervisor.await.context("recorder supervisor failed");
    // Recorders and their finalizations have ended (or timed out): nothing left to run there.
    workers.stop().await;
    supervised?;
    tracing::info!("shutdown complete");
    Ok(())
}
