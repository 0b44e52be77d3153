//! The storage targets of the settings' `[buckets.NAME]` sections, their uploaders, and the
//! retention sweep.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use liverec_catalog::{Catalog, unix_ms};
use liverec_storage::layout;
use liverec_storage::s3::{S3Settings, S3Target};
use liverec_storage::{LocalTarget, OnComplete, Storage};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::{BucketSettings, Settings, secs};

/// Index rows the retention sweep deletes per catalog query.
const RETENTION_BATCH: u32 = 100;

/// Storage for `settings`: configured buckets (local directories elsewhere than the default,
/// S3 targets with their uploaders started on `tasks`), any other bucket a local directory.
pub fn build(
    settings: &Settings,
    catalog: &Catalog,
    on_complete: OnComplete,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> anyhow::Result<Storage> {
    let mut storage = Storage::new(settings.data_dir.clone(), on_complete.clone());
    for (name, bucket) in &settings.buckets {
        let root = layout::bucket_root(&settings.data_dir, name);
        match bucket.kind.as_str() {
            "s3" => {
                let s3 = S3Settings {
                    endpoint: bucket.endpoint.clone(),
                    bucket: bucket.bucket.clone().unwrap_or_else(|| name.clone()),
                    region: bucket.region.clone(),
                    access_key_id: bucket.access_key_id.clone(),
                    secret_access_key: bucket.secret_access_key.clone(),
                    virtual_hosted: bucket.virtual_hosted,
                };
                let target = Arc::new(
                    S3Target::new(name, &root, &s3, catalog.clone(), on_complete.clone())
                        .with_context(|| format!("[buckets.{name}]"))?,
                );
                tracing::info!(bucket = %name, real_bucket = %s3.bucket,
                    endpoint = s3.endpoint.as_deref().unwrap_or("AWS"), "s3 storage target");
                let uploader = target.clone();
                let cancel = cancel.clone();
                tasks.spawn(async move { uploader.run_uploader(cancel).await });
                storage = storage.with_target(target);
            }
            _ => {
                let root = bucket.path.clone().unwrap_or(root);
                tracing::info!(bucket = %name, root = %root.display(), "local storage target");
                storage = storage.with_target(Arc::new(LocalTarget::new(
                    name,
                    root,
                    on_complete.clone(),
                )));
            }
        }
    }
    Ok(storage)
}

/// Deletes recordings older than their bucket's `retention_days` (objects first, then the
/// index row), every `storage.retention_sweep_secs`, until `cancel`. Only indexed files are
/// candidates: a recording in progress or still uploading has no index row yet.
pub async fn retention_sweep(
    settings: Settings,
    storage: Arc<Storage>,
    catalog: Catalog,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let every = secs(
        "storage.retention_sweep_secs",
        settings.storage.retention_sweep_secs,
    )?;
    let buckets: Vec<(String, Duration)> = settings
        .buckets
        .iter()
        .filter_map(|(name, b): (&String, &BucketSettings)| {
            let days = b.retention_days?;
            Duration::try_from_secs_f64(days * 86_400.0)
                .ok()
                .map(|d| (name.clone(), d))
        })
        .collect();
    if buckets.is_empty() {
        return Ok(());
    }
    loop {
        for (bucket, keep) in &buckets {
            sweep_bucket(&storage, &catalog, bucket, *keep).await;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn sweep_bucket(storage: &Storage, catalog: &Catalog, bucket: &str, keep: Duration) {
    let cutoff = unix_ms(
        SystemTime::now()
            .checked_sub(keep)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let target = storage.target(bucket);
    let (mut deleted, mut objects) = (0u64, 0u64);
    loop {
        let rows = match catalog
            .recordings_ended_before(bucket, cutoff, RETENTION_BATCH)
            .await
        {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(bucket, %err, "retention: cannot list expired recordings");
                return;
            }
        };
        if rows.is_empty() {
            break;
        }
        let mut progressed = false;
        for row in &rows {
            let mut names: Vec<String> = match catalog.recording_objects(&row.record_id).await {
                Ok(objects) => objects.into_iter().map(|o| o.object).collect(),
                Err(err) => {
                    tracing::warn!(bucket, record_id = %row.record_id, %err, "retention: cannot list a recording's objects");
                    continue;
                }
            };
            if names.is_empty() {
                names.push(row.oss_object.clone());
            }
            let mut failed = false;
            for object in &names {
                if let Err(err) = target.delete(object).await {
                    tracing::warn!(bucket, object, %err, "retention: cannot delete an expired object; will retry");
                    failed = true;
                    break;
                }
            }
            if failed {
                continue;
            }
            match catalog.delete_recording(&row.record_id).await {
                Ok(_) => {
                    deleted += 1;
                    objects += names.len() as u64;
                    progressed = true;
                    tracing::info!(bucket, record_id = %row.record_id, object = %row.oss_object,
                        ended_ms = row.end_time, "retention: deleted an expired recording");
                }
                Err(err) => {
                    tracing::warn!(bucket, record_id = %row.record_id, %err, "retention: cannot delete an index row")
                }
            }
        }
        if !progressed {
            break;
        }
    }
    if deleted > 0 {
        tracing::info!(
            bucket,
            recordings = deleted,
            objects,
            keep_days = keep.as_secs_f64() / 86_400.0,
            "retention sweep done"
        );
    }
}
