//! Publishes noted in the catalog: their domains (a publish brings its domain into being), the
//! streams seen (CreateLiveStreamRecordIndexFiles tells a stream that never ingested apart from
//! one with nothing recorded) and the publish history
//! (DescribeLiveStreamsPublishList). Ingest hands notes over a bounded queue, so a busy
//! database costs a missing note, never a stalled publish.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use liverec_catalog::{Catalog, PublishRow, unix_ms};
use liverec_hub::StreamKey;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the publish history is kept (Alibaba answers for the last 30 days).
pub const HISTORY_DAYS: i64 = 31;
/// How often publishes older than [`HISTORY_DAYS`] are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Name of the file in the data directory that holds this node's id.
const NODE_ID_FILE: &str = "node-id";

/// A publish started or stopped.
#[derive(Debug)]
pub enum PublishNote {
    Started {
        key: StreamKey,
        publish_id: String,
        client_addr: String,
        at_ms: i64,
    },
    Stopped {
        publish_id: String,
        at_ms: i64,
    },
}

/// A new publish id (random; the catalog's key).
pub fn new_publish_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// This node's id, kept in the data directory (made on first start): publish-history rows are
/// tagged with it, so a node starting after a crash ends its own open rows and no other node's.
pub fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tmp = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// Writes the notes to the catalog until every sender is gone or `cancel` fires. First ends
/// the publishes this node left open when it last stopped without noting them (a crash).
pub async fn run(
    catalog: Catalog,
    node: String,
    mut notes: mpsc::Receiver<PublishNote>,
    cancel: CancellationToken,
) {
    let now = unix_ms(std::time::SystemTime::now());
    match catalog.close_open_publishes(&node, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            publishes = n,
            "publishes left open by the previous run are ended at this start"
        ),
        Err(err) => tracing::warn!(%err, "cannot end the publishes left open by the previous run"),
    }
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        let note = tokio::select! {
            note = notes.recv() => match note {
                Some(note) => note,
                None => return,
            },
            _ = prune.tick() => {
                let before = unix_ms(std::time::SystemTime::now()) - HISTORY_DAYS * 86_400_000;
                if let Err(err) = catalog.prune_publish_history(before).await {
                    tracing::warn!(%err, "cannot prune the publish history");
                }
                continue;
            }
            () = cancel.cancelled() => return,
        };
        match note {
            PublishNote::Started {
                key,
                publish_id,
                client_addr,
                at_ms,
            } => {
                // A publish brings its domain into being (DESIGN.md "Domains").
                if let Err(err) = catalog.ensure_domain(&key.domain).await {
                    tracing::warn!(stream = %key, %err, "cannot note a publish's domain in the catalog");
                }
                if let Err(err) = catalog
                    .touch_stream(&key.domain, &key.app, &key.stream, at_ms)
                    .await
                {
                    tracing::warn!(stream = %key, %err, "cannot note a publish in the catalog");
                }
                let row = PublishRow {
                    publish_id,
                    node: node.clone(),
                    publish_url: format!("rtmp://{}/{}/{}", key.domain, key.app, key.stream),
                    domain: key.domain,
                    app: key.app,
                    stream: key.stream,
                    client_addr,
                    started_at: at_ms,
                    stopped_at: None,
                };
                if let Err(err) = catalog.publish_started(&row).await {
                    tracing::warn!(%err, "cannot note a publish in the publish history");
                }
            }
            PublishNote::Stopped { publish_id, at_ms } => {
                if let Err(err) = catalog.publish_stopped(&publish_id, at_ms).await {
                    tracing::warn!(%err, "cannot note the end of a publish in the publish history");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = node_id(dir.path()).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(node_id(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join(NODE_ID_FILE), "\n").unwrap();
        assert_ne!(
            node_id(dir.path()).unwrap(),
            first,
            "an empty file gets a new id"
        );
    }
}
