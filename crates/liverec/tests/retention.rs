//! Retention: `retention_days` of a bucket deletes older recordings (objects and index rows),
//! logs what it deleted, and never touches a recording in progress.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

const T: Duration = Duration::from_secs(60);

fn index_rows(server: &Server, stream: &str) -> Vec<liverec_catalog::RecordingRow> {
    support::index_rows(&server.data_dir(), "live.liverec.local", "live", stream)
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn expired_recordings_are_deleted_and_recordings_in_progress_are_not() {
    // 0.0001 days = 8.64 s; the sweep looks every second.
    let mut server = Server::start(
        "[buckets.default]\nretention_days = 0.0001\n[storage]\nretention_sweep_secs = 1\n\
         [record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }, { format = \"m3u8\", slice_secs = 2 }]",
    );
    let bucket = server.data_dir().join("buckets/default");
    let old_dir = bucket.join("record/live.liverec.local/live/old");
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "old")).success());
    server.wait_for_lines(&["recording", "complete"], 2, T);
    let old_rows = index_rows(&server, "old");
    assert_eq!(old_rows.len(), 2, "{old_rows:?}");
    let old_files = files_under(&old_dir);
    assert!(
        old_files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "ts")),
        "{old_files:?}"
    );

    // A second stream records (20 s) while the first one's files expire.
    let mut live = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "inprogress"),
        &["-stream_loop", "1"],
    );
    let deleted = server.wait_for_logs("retention: deleted an expired recording", 2, T);
    let swept_at = Instant::now();
    assert!(
        deleted
            .iter()
            .all(|l| l.contains("record/live.liverec.local/live/old/")),
        "{deleted:#?}"
    );
    assert!(index_rows(&server, "old").is_empty(), "index rows deleted");
    let left = files_under(&old_dir);
    assert!(left.is_empty(), "objects and segments deleted: {left:?}");
    // The stream still recording is untouched: its spool files are there and it has no
    // index row yet.
    assert!(
        live.try_wait().unwrap().is_none(),
        "the second stream was still publishing"
    );
    let spool: Vec<_> = files_under(&bucket.join(".spool"))
        .into_iter()
        .filter(|f| !f.to_string_lossy().ends_with(".json"))
        .collect();
    assert!(
        !spool.is_empty(),
        "the recording in progress keeps its spool files"
    );
    assert!(index_rows(&server, "inprogress").is_empty());
    assert!(swept_at.elapsed() < Duration::from_secs(15));
    assert!(live.wait().unwrap().success());
    server.wait_for_lines(&["recording", "complete", "inprogress"], 2, T);
    // Once finished, the second stream's files are indexed and exist (checked before they
    // expire in turn).
    let rows = index_rows(&server, "inprogress");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert!(bucket.join(&row.oss_object).is_file(), "{row:?}");
    }
    assert!(server.terminate(T));
}
