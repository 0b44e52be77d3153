//! Wires the crates together and runs until `shutdown` resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use liverec_hub::{Hub, HubConfig, SlowPolicy, SubscribeOptions};
use liverec_recorder::{FileRecord, FixedConfig, RecorderDeps, SpoolPolicy, Supervisor};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ingest::{DomainPolicy, Ingest};
use crate::settings::{Settings, secs};

/// Bound of the hub → recorder publish-event queue.
const LIFECYCLE_QUEUE: usize = 4096;

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
        None => tracing::info!("built-in record config disabled: nothing is recorded"),
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
    let sink = Arc::new(|record: FileRecord| {
        tracing::debug!(object = %record.object, "file recorded");
    });
    let deps = RecorderDeps {
        hub: hub.clone(),
        configs: Arc::new(FixedConfig(record_config)),
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
    let (_recorders, supervisor) = Supervisor::spawn(
        deps,
        lifecycle_rx,
        recorder_cancel.clone(),
        shutdown_timeout,
    );

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
        ..Default::default()
    };
    let domains = Arc::new(DomainPolicy {
        default_domain: settings.default_domain.clone(),
        known: settings.domains.clone(),
    });
    let rtmp_cancel = CancellationToken::new();
    let make_handler = {
        let hub = hub.clone();
        move |_peer| Ingest::new(hub.clone(), domains.clone())
    };
    let rtmp = tokio::spawn(liverec_rtmp::serve(
        listener,
        make_handler,
        limits,
        rtmp_cancel.clone(),
    ));

    shutdown.await;
    tracing::info!("shutting down: closing publishers, then finalizing recordings");
    rtmp_cancel.cancel();
    if tokio::time::timeout(Duration::from_secs(5), rtmp)
        .await
        .is_err()
    {
        tracing::warn!("rtmp sessions did not end within 5 s");
    }
    recorder_cancel.cancel();
    supervisor.await.context("recorder supervisor failed")?;
    tracing::info!("shutdown complete");
    Ok(())
}
