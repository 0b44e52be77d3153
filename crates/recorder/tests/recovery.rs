//! The start-up pass in-process: a local target whose completion hook collects index rows, and
//! spools arranged as a crash leaves them.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use liverec_recorder::FileRecord;
use liverec_recorder::Format;
use liverec_recorder::recovery::{
    MetaKey, MetaKind, RecoverySummary, SpoolMeta, recover_all, write_meta,
};
use liverec_storage::layout::{self, Spool};
use liverec_storage::{Completed, Storage};

fn storage(dir: &Path) -> (Storage, Arc<Mutex<Vec<FileRecord>>>) {
    let rows = Arc::new(Mutex::new(Vec::new()));
    let sink = rows.clone();
    let storage = Storage::new(
        dir,
        Arc::new(move |done: Completed| {
            let mut record: FileRecord = serde_json::from_value(done.payload).unwrap();
            // As the index hook does: the name the target chose.
            record.object = done.object;
            sink.lock().unwrap().push(record);
            Box::pin(async {})
        }),
    );
    (storage, rows)
}

fn playlist_meta(format: Format, init_object: Option<&str>, open_segment: &Path) -> SpoolMeta {
    SpoolMeta {
        version: 2,
        key: MetaKey {
            domain: "example.com".into(),
            app: "live".into(),
            stream: "s1".into(),
        },
        format,
        object_prefix: "record/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}".into(),
        slice_object_prefix: "record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}".into(),
        slice_secs: 6,
        start_unix_ms: 1_765_000_000_000,
        endpoint: String::new(),
        record_id: "rec-1".into(),
        session_id: "session-1".into(),
        sequence: 0,
        width: 640,
        height: 360,
        push_args: Default::default(),
        kind: MetaKind::Playlist {
            init_object: init_object.map(str::to_owned),
            segments: Vec::new(),
            open_segment: Some(open_segment.to_owned()),
            open_segment_start_ms: Some(1_765_000_000_000),
            closing_segment: None,
        },
    }
}

#[tokio::test]
async fn files_no_recording_claims_are_moved_aside_and_crash_leftovers_removed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::in_root(&layout::bucket_root(dir.path(), "default"));
    std::fs::create_dir_all(spool.dir()).unwrap();
    // A file created just before the crash could write its sidecar, with media in it.
    let unclaimed = spool.new_path("ts");
    std::fs::write(&unclaimed, [0x47u8; 188 * 4]).unwrap();
    // One created with nothing in it yet, and a sidecar cut off before its rename.
    let empty = spool.new_path("mp4");
    std::fs::write(&empty, b"").unwrap();
    let half_sidecar = spool.dir().join("x.mp4.json.tmp");
    std::fs::write(&half_sidecar, b"{\"vers").unwrap();

    let (storage, rows) = storage(dir.path());
    let summary = recover_all(&storage).await;

    assert_eq!(
        summary,
        RecoverySummary {
            orphans: 1,
            ..Default::default()
        }
    );
    let moved = spool.orphans_dir().join(unclaimed.file_name().unwrap());
    assert_eq!(
        std::fs::read(&moved).unwrap().len(),
        188 * 4,
        "kept, not deleted"
    );
    assert_eq!(
        std::fs::read_dir(spool.dir()).unwrap().count(),
        0,
        "spool is empty"
    );
    assert!(rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_torn_segment_that_cannot_be_read_now_is_kept_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::in_root(&layout::bucket_root(dir.path(), "default"));
    std::fs::create_dir_all(spool.dir()).unwrap();
    // A CMAF recording cut by a crash: its open segment can only be read with its init
    // segment, which the target cannot give now (an object store down looks the same).
    let playlist = spool.new_path("m3u8");
    std::fs::write(&playlist, b"").unwrap();
    let segment = spool.new_path("m4s");
    std::fs::write(&segment, vec![0u8; 4096]).unwrap();
    let meta = playlist_meta(Format::Cmaf, Some("record/live/s1/init.mp4"), &segment);
    write_meta(&playlist, &meta).unwrap();

    let (storage, rows) = storage(dir.path());
    let summary = recover_all(&storage).await;

    assert_eq!(
        summary,
        RecoverySummary {
            left: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        std::fs::read(&segment).unwrap().len(),
        4096,
        "segment kept whole"
    );
    assert!(layout::sidecar_path(&playlist).exists(), "sidecar kept");
    assert!(
        !spool.orphans_dir().exists(),
        "a claimed segment is no orphan"
    );
    assert!(rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_torn_segment_proven_empty_is_deleted_and_the_rest_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::in_root(&layout::bucket_root(dir.path(), "default"));
    std::fs::create_dir_all(spool.dir()).unwrap();
    // An HLS recording whose only segment holds no complete PES with a timestamp: nothing
    // decodes, so there is nothing to recover and nothing is left behind.
    let playlist = spool.new_path("m3u8");
    std::fs::write(&playlist, b"").unwrap();
    let segment = spool.new_path("ts");
    std::fs::write(&segment, vec![0xffu8; 1000]).unwrap();
    write_meta(&playlist, &playlist_meta(Format::M3u8, None, &segment)).unwrap();

    let (storage, rows) = storage(dir.path());
    let summary = recover_all(&storage).await;

    assert_eq!(summary, RecoverySummary::default());
    assert!(!segment.exists());
    assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
    assert!(rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_segment_stored_just_before_the_crash_stays_in_the_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let root = layout::bucket_root(dir.path(), "default");
    let spool = Spool::in_root(&root);
    std::fs::create_dir_all(spool.dir()).unwrap();
    // The crash came after the finished segment left the spool for its bucket and before the
    // sidecar listed it: only the closing note knows it.
    let playlist = spool.new_path("m3u8");
    std::fs::write(&playlist, b"").unwrap();
    let gone = spool.new_path("ts");
    let object = "record/live/s1/1765000000_0.ts";
    let stored = root.join(object);
    std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
    std::fs::write(&stored, vec![0x47u8; 188 * 10]).unwrap();
    let mut meta = playlist_meta(Format::M3u8, None, &gone);
    if let MetaKind::Playlist {
        open_segment,
        closing_segment,
        ..
    } = &mut meta.kind
    {
        *open_segment = None;
        *closing_segment = Some(liverec_recorder::recovery::ClosingSegment {
            path: gone.clone(),
            start_ms: 1_765_000_000_000,
            duration_ms: 6000,
            size: 188 * 10,
            sequence: 0,
        });
    }
    write_meta(&playlist, &meta).unwrap();

    let (storage, rows) = storage(dir.path());
    let summary = recover_all(&storage).await;

    assert_eq!(summary.recovered, 1, "{summary:?}");
    let rows = rows.lock().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].segments.len(), 1);
    assert_eq!(rows[0].segments[0].object, object);
    assert_eq!(rows[0].duration_ms, 6000);
    let text = std::fs::read_to_string(root.join(&rows[0].object)).unwrap();
    assert!(
        text.contains("1765000000_0.ts") && text.contains("#EXT-X-ENDLIST"),
        "{text}"
    );
}

/// A TS packet starting a video PES with timestamp `pts` (90 kHz).
fn pes_packet(pts: u64) -> Vec<u8> {
    let mut p = vec![0x47, 0x41, 0x00, 0x10, 0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
    p.extend_from_slice(&[
        0x21 | (((pts >> 30) & 7) << 1) as u8,
        (pts >> 22) as u8,
        (((pts >> 15) & 0x7f) << 1) as u8 | 1,
        (pts >> 7) as u8,
        ((pts & 0x7f) << 1) as u8 | 1,
    ]);
    p.resize(188, 0xff);
    p
}

#[tokio::test]
async fn a_recovery_that_fails_after_storing_a_segment_keeps_it_for_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let root = layout::bucket_root(dir.path(), "default");
    let spool = Spool::in_root(&root);
    std::fs::create_dir_all(spool.dir()).unwrap();
    let playlist = spool.new_path("m3u8");
    std::fs::write(&playlist, b"").unwrap();
    let segment = spool.new_path("ts");
    // Three frames a second apart; the last, maybe cut off mid-write, is dropped.
    let mut ts = pes_packet(0);
    ts.extend(pes_packet(90_000));
    ts.extend(pes_packet(180_000));
    std::fs::write(&segment, &ts).unwrap();
    let mut meta = playlist_meta(Format::M3u8, None, &segment);
    meta.slice_object_prefix = "slices/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}".into();
    write_meta(&playlist, &meta).unwrap();
    // The playlist cannot be stored (its directory is a file): the segment can.
    std::fs::write(root.join("record"), b"in the way").unwrap();

    let (storage, rows) = storage(dir.path());
    let first = recover_all(&storage).await;
    assert_eq!(first.left, 1, "{first:?}");
    assert!(!segment.exists(), "the segment was stored");

    std::fs::remove_file(root.join("record")).unwrap();
    let second = recover_all(&storage).await;
    assert_eq!(second.recovered, 1, "{second:?}");
    let rows = rows.lock().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].segments.len(),
        1,
        "the segment stored by the first pass is kept"
    );
    assert_eq!(rows[0].duration_ms, 1000);
    assert_eq!(rows[0].segments[0].size, 2 * 188);
    assert!(root.join(&rows[0].segments[0].object).exists());
}
