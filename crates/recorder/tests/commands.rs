//! The recorder in-process: a hub, a supervisor and a local storage target whose completion
//! hook collects the finished files (no binary, no log lines). Commands against frames that are
//! still queued, and a recorder task that dies.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use liverec_hub::StreamKey;
use liverec_hub::{Hub, HubConfig, Publisher, SubscribeOptions};
use liverec_media::{AudioCodec, AudioConfig, CodecConfig, TrackKind, VideoCodec, VideoConfig};
use liverec_recorder::{
    AlwaysRecord, Command, CommandReply, ConfigSource, FileRecord, Format, FormatSpec, NoStatus,
    RecordConfig, RecordMode, RecorderDeps, RecorderHandle, SpoolPolicy, Supervisor,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const FRAME_MS: u32 = 40;

/// Manual MP4 recording. The second resolution for the stream named `boom` (its recorder's,
/// handling the first command) panics: a recorder task dying of a bug.
struct Configs {
    boom: Mutex<u32>,
}

impl ConfigSource for Configs {
    fn resolve(&self, key: &StreamKey) -> Option<RecordConfig> {
        if key.stream == "boom" {
            let n = {
                let mut n = self.boom.lock().unwrap();
                *n += 1;
                *n
            };
            if n == 2 {
                panic!("a recorder bug");
            }
        }
        let formats = if key.stream == "long" {
            // One-second HLS segments, for a recording of many of them.
            vec![FormatSpec {
                slice: Duration::from_secs(1),
                ..FormatSpec::new(Format::M3u8)
            }]
        } else {
            vec![FormatSpec::new(Format::Mp4)]
        };
        Some(RecordConfig {
            mode: RecordMode::Manual,
            delay: Duration::from_secs(180),
            bucket: "default".into(),
            endpoint: String::new(),
            formats,
        })
    }
}

struct Rig {
    hub: Hub,
    recorder: RecorderHandle,
    files: Arc<Mutex<Vec<FileRecord>>>,
    cancel: CancellationToken,
    dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(Mutex::new(Vec::new()));
    let sink = files.clone();
    let storage = Arc::new(liverec_storage::Storage::new(
        dir.path(),
        Arc::new(move |done: liverec_storage::Completed| {
            let record: FileRecord = serde_json::from_value(done.payload).unwrap();
            sink.lock().unwrap().push(record);
            Box::pin(async {})
        }),
    ));
    let (lifecycle_tx, lifecycle_rx) = tokio::sync::mpsc::channel(64);
    let hub = Hub::new(HubConfig::default(), lifecycle_tx);
    let deps = RecorderDeps {
        hub: hub.clone(),
        configs: Arc::new(Configs {
            boom: Mutex::new(0),
        }),
        storage,
        policy: SpoolPolicy::default(),
        subscribe: SubscribeOptions::default(),
        finalizers: TaskTracker::new(),
        on_demand: Arc::new(AlwaysRecord),
        on_demand_timeout: Duration::from_secs(3),
        status: Arc::new(NoStatus),
        board: Default::default(),
    };
    let cancel = CancellationToken::new();
    let (recorder, _join) =
        Supervisor::spawn(deps, lifecycle_rx, cancel.clone(), Duration::from_secs(5));
    Rig {
        hub,
        recorder,
        files,
        cancel,
        dir,
    }
}

fn key(stream: &str) -> StreamKey {
    StreamKey {
        domain: "live.example.com".into(),
        app: "live".into(),
        stream: stream.into(),
    }
}

async fn publish(hub: &Hub, stream: &str) -> Publisher {
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let mut p = hub.publish(key(stream), vec![], Some(peer)).await.unwrap();
    p.set_config(CodecConfig::Video(Arc::new(VideoConfig {
        codec: VideoCodec::H264,
        record: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
        width: 1280,
        height: 720,
        nal_length_size: 4,
        parameter_sets: vec![],
    })));
    p.set_config(CodecConfig::Audio(Arc::new(AudioConfig {
        codec: AudioCodec::Aac,
        specific: Bytes::from_static(&[0x12, 0x10]),
        object_type: 2,
        sample_rate: 44100,
        channels: 2,
    })));
    p
}

/// Pushes video frames `from..to` (a keyframe every 25), without yielding to other tasks.
async fn push_video(p: &mut Publisher, from: u32, to: u32) {
    for i in from..to {
        let key = i % 25 == 0;
        let nal: &'static [u8] = if key {
            &[0, 0, 0, 2, 0x65, 0x88]
        } else {
            &[0, 0, 0, 2, 0x41, 0x9a]
        };
        p.push(
            TrackKind::Video,
            i * FRAME_MS,
            0,
            key,
            Bytes::from_static(nal),
        )
        .await;
    }
}

async fn wait_files(files: &Mutex<Vec<FileRecord>>, n: usize) -> Vec<FileRecord> {
    for _ in 0..500 {
        if files.lock().unwrap().len() >= n {
            return files.lock().unwrap().clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} files not finished");
}

#[tokio::test]
async fn frames_queued_before_stop_are_in_the_file() {
    let rig = rig();
    let mut p = publish(&rig.hub, "queued").await;
    push_video(&mut p, 0, 25).await;
    let start = rig.recorder.command(key("queued"), Command::Start).await;
    assert_eq!(start.unwrap(), CommandReply::Done);
    // 4 s more while the recorder does not run (this is a single-threaded runtime): they
    // wait in its queue when `stop` arrives.
    push_video(&mut p, 25, 125).await;
    let stop = rig.recorder.command(key("queued"), Command::Stop).await;
    assert_eq!(stop.unwrap(), CommandReply::Done);
    let cancel = rig
        .recorder
        .command(key("queued"), Command::CancelDelay)
        .await;
    assert_eq!(cancel.unwrap(), CommandReply::Done);
    let files = wait_files(&rig.files, 1).await;
    // The file starts at the pre-roll keyframe (frame 0) and ends with frame 124.
    assert!(
        files[0].duration_ms >= u64::from(124 * FRAME_MS),
        "{} ms recorded",
        files[0].duration_ms
    );
}

#[tokio::test]
async fn a_recorder_task_that_dies_is_started_again() {
    let rig = rig();
    // The first command makes the stream's recorder panic: it gets no answer.
    let first = rig.recorder.command(key("boom"), Command::Start).await;
    assert!(first.is_err());
    // The next one reaches a new recorder.
    let second = rig.recorder.command(key("boom"), Command::Start).await;
    assert_eq!(second.unwrap(), CommandReply::NotPublishing);
    let mut p = publish(&rig.hub, "boom").await;
    push_video(&mut p, 0, 30).await;
    let start = rig.recorder.command(key("boom"), Command::Start).await;
    assert_eq!(start.unwrap(), CommandReply::Done);
}

/// The one spool file under `root` whose name ends with `suffix`, if any.
fn spool_file(root: &std::path::Path, suffix: &str) -> Option<std::path::PathBuf> {
    let spool = root.join("buckets/default/.spool");
    let mut found: Vec<_> = std::fs::read_dir(spool)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert!(found.len() <= 1, "{found:?}");
    found.pop()
}

/// Segments the playlist's journal notes as stored.
fn stored_in_journal(journal: &std::path::Path) -> usize {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""event":"stored""#))
        .count()
}

/// Pushes video frames `from..to` in one-second batches, letting the recorder drain its queue
/// after each.
async fn push_paced(p: &mut Publisher, from: u32, to: u32) {
    let mut i = from;
    while i < to {
        let next = (i + 25).min(to);
        push_video(p, i, next).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        i = next;
    }
}

async fn wait_stored(journal: &std::path::Path, n: usize) {
    for _ in 0..1000 {
        if stored_in_journal(journal) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} segments not stored: {}", stored_in_journal(journal));
}

/// Each segment of a long playlist costs the same small notes: the sidecar is written once,
/// the journal gains a few short lines, the spool playlist its segment's lines.
#[tokio::test]
async fn notes_grow_by_a_constant_per_segment() {
    use std::os::unix::fs::MetadataExt;
    let rig = rig();
    let mut p = publish(&rig.hub, "long").await;
    push_video(&mut p, 0, 25).await;
    let start = rig.recorder.command(key("long"), Command::Start).await;
    assert_eq!(start.unwrap(), CommandReply::Done);
    push_paced(&mut p, 25, 25 * 21).await;
    let mut playlist = None;
    for _ in 0..500 {
        playlist = spool_file(rig.dir.path(), ".m3u8");
        if playlist.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let playlist = playlist.expect("a spool playlist");
    let sidecar = liverec_storage::layout::sidecar_path(&playlist);
    let journal = liverec_storage::layout::journal_path(&playlist);
    wait_stored(&journal, 20).await;

    let early = (
        stored_in_journal(&journal),
        std::fs::read(&sidecar).unwrap(),
        std::fs::metadata(&sidecar).unwrap().ino(),
        std::fs::metadata(&journal).unwrap().len(),
        std::fs::read_to_string(&playlist).unwrap(),
        std::fs::metadata(&playlist).unwrap().ino(),
    );
    push_paced(&mut p, 25 * 21, 25 * 221).await;
    wait_stored(&journal, 220).await;
    let late = (
        stored_in_journal(&journal),
        std::fs::read(&sidecar).unwrap(),
        std::fs::metadata(&sidecar).unwrap().ino(),
        std::fs::metadata(&journal).unwrap().len(),
        std::fs::read_to_string(&playlist).unwrap(),
        std::fs::metadata(&playlist).unwrap().ino(),
    );
    let added = (late.0 - early.0) as u64;
    assert!(added >= 200, "{added} segments");
    // The sidecar was never written again (a rewrite renames a new file into place).
    assert_eq!((&late.1, late.2), (&early.1, early.2), "sidecar rewritten");
    let journal_per_segment = (late.3 - early.3) / added;
    assert!(
        journal_per_segment < 1024,
        "{journal_per_segment} journal bytes per segment"
    );
    // The spool playlist only had lines appended: same file, the earlier text its prefix,
    // a segment's two lines per segment.
    assert_eq!(late.5, early.5, "spool playlist rewritten");
    assert!(late.4.starts_with(&early.4));
    let playlist_per_segment = (late.4.len() - early.4.len()) as u64 / added;
    assert!(
        playlist_per_segment < 128,
        "{playlist_per_segment} playlist bytes per segment"
    );

    let stop = rig.recorder.command(key("long"), Command::Stop).await;
    assert_eq!(stop.unwrap(), CommandReply::Done);
    let cancel = rig
        .recorder
        .command(key("long"), Command::CancelDelay)
        .await;
    assert_eq!(cancel.unwrap(), CommandReply::Done);
    let files = wait_files(&rig.files, 1).await;
    assert!(files[0].segments.len() > 220, "{}", files[0].segments.len());
    // Finished: its notes go right after it is stored (the file is reported at store time).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sidecar.exists() || journal.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the finished playlist's notes stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
