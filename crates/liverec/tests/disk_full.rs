//! A real full disk: one bucket on a small tmpfs the test mounts (root is needed), another on
//! the ordinary disk. Filling the tmpfs costs its recording a counted gap (a log line and a
//! `record_error` callback) while it stays recording; the other stream and the API go on; once
//! space is back the recording writes again at the next keyframe and the file the gap cut is
//! finished; nothing is left corrupt or in the spool.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::receiver::{Behaviour, Receiver};
use support::*;

const T: Duration = Duration::from_secs(60);
const DOMAIN: &str = "live.liverec.local";
const TMPFS_BYTES: u64 = 16 * 1024 * 1024;

/// A size-limited tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_BYTES}")])
            .arg("liverec-test")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a {TMPFS_BYTES}-byte tmpfs and must run as root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Bytes in a spool directory's files.
fn spool_bytes(spool: &Path) -> u64 {
    let mut files = vec![];
    files_under(spool, &mut files);
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

const OBJECT_PREFIX: &str = "record/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}";

fn add_app_config(server: &Server, app: &str, bucket: &str, with_m3u8: bool) {
    let mut params = vec![
        ("DomainName", DOMAIN),
        ("AppName", app),
        ("OssBucket", bucket),
        ("OssEndpoint", "local"),
        ("OnDemand", "0"),
        ("DelayTime", "15"),
        ("RecordFormat.1.Format", "mp4"),
        ("RecordFormat.1.CycleDuration", "3600"),
        ("RecordFormat.1.OssObjectPrefix", OBJECT_PREFIX),
    ];
    if with_m3u8 {
        params.extend_from_slice(&[
            ("RecordFormat.2.Format", "m3u8"),
            ("RecordFormat.2.CycleDuration", "3600"),
            ("RecordFormat.2.SliceDuration", "5"),
            ("RecordFormat.2.OssObjectPrefix", OBJECT_PREFIX),
            (
                "RecordFormat.2.SliceOssObjectPrefix",
                "record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}",
            ),
        ]);
    }
    api::ok(server.api_addr(), "AddLiveAppRecordConfig", &params);
}

#[test]
fn a_full_disk_gives_a_counted_gap_and_recording_resumes_when_space_returns() {
    let disk = SmallDisk::mount();
    let small_root = disk.path().join("bucket");
    let receiver = Receiver::start(Behaviour::default());
    let mut server = Server::start_with_env(
        &format!(
            "[buckets.small]\npath = {:?}\n",
            small_root.display().to_string()
        ),
        &api::key_env(),
    );
    api::ok(
        server.api_addr(),
        "AddLiveRecordNotifyConfig",
        &[
            ("DomainName", DOMAIN),
            ("NotifyUrl", &receiver.url("/cb")),
            ("NeedStatusNotify", "true"),
        ],
    );
    // A domain with record configs records only what they name: `live` (MP4) on the ordinary
    // disk, `tight` (MP4 + M3U8) on the tmpfs.
    add_app_config(&server, "live", "default", false);
    add_app_config(&server, "tight", "small", true);
    let asset = asset("h264_aac.flv");
    let loop_input = ["-stream_loop", "-1"];
    let mut tight = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("tight", "s"),
        &loop_input,
    );
    let mut other = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "other"),
        &loop_input,
    );
    receiver.wait_for_status(T, "s", "record_started", 1);
    std::thread::sleep(Duration::from_secs(3));

    // The disk fills up.
    let filler = disk.fill();
    let full_at = Instant::now();
    receiver.wait_for_status(T, "s", "record_error", 1);
    let failure = server.wait_for_log("write failed", T);
    assert!(failure.contains("tight/s"), "{failure}");
    // The rest goes on: the API answers, the other stream's spool keeps growing.
    let other_spool = server.data_dir().join("buckets/default/.spool");
    let before = spool_bytes(&other_spool);
    api::ok(
        server.api_addr(),
        "DescribeLiveRecordNotifyConfig",
        &[("DomainName", DOMAIN)],
    );
    std::thread::sleep(Duration::from_secs(3));
    let after = spool_bytes(&other_spool);
    assert!(
        after > before + 50_000,
        "the stream on the other disk keeps recording: {before} then {after} bytes in {}",
        other_spool.display()
    );
    std::thread::sleep(Duration::from_secs(2));

    // Space comes back: the cut file is finished and recording resumes at a keyframe.
    std::fs::remove_file(&filler).unwrap();
    let space_back = std::time::SystemTime::now();
    server.wait_for_log("is stored now", T);
    std::thread::sleep(Duration::from_secs(6));
    let full_for = full_at.elapsed();
    let _ = tight.kill();
    let _ = other.kill();
    let _ = tight.wait();
    let _ = other.wait();
    assert!(server.terminate(T), "exits cleanly");

    // It stayed recording: no pause until the publisher went away.
    let events: Vec<String> = receiver
        .status_events("s")
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let first_pause = events.iter().position(|e| e == "record_paused");
    let first_error = events.iter().position(|e| e == "record_error").unwrap();
    assert!(
        first_pause.is_none_or(|p| p > first_error),
        "a full disk is not a pause: {events:?}"
    );
    let errors = receiver
        .status_events("s")
        .into_iter()
        .filter(|(e, _)| e == "record_error")
        .map(|(_, b)| b["description"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert!(
        errors.iter().any(|d| d.contains("No space left")),
        "{errors:?}"
    );

    // Nothing is left in the spools, and every file decodes.
    let mut small_files = vec![];
    files_under(&small_root, &mut small_files);
    assert!(
        !small_files
            .iter()
            .any(|f| f.to_string_lossy().contains("/.spool/")),
        "spool left: {small_files:?}"
    );
    assert!(!small_root.join(".orphans").exists());
    let mp4s: Vec<&PathBuf> = small_files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "mp4"))
        .collect();
    let playlists: Vec<&PathBuf> = small_files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "m3u8"))
        .collect();
    assert!(
        mp4s.len() >= 2 && !playlists.is_empty(),
        "a file before and after the gap: {small_files:?}"
    );
    for f in mp4s.iter().chain(playlists.iter()) {
        assert_decodes_cleanly(Path::new("ffmpeg"), f);
    }
    // Writing resumed: a file starts after space came back.
    let rows = index_rows(&server.data_dir(), DOMAIN, "tight", "s");
    assert_eq!(
        rows.len(),
        mp4s.len() + playlists.len(),
        "every file indexed once"
    );
    let back_ms = liverec_catalog::unix_ms(space_back);
    assert!(
        rows.iter()
            .any(|r| r.format == "mp4" && r.start_time >= back_ms - 1000),
        "recording resumed after {full_for:?} without space"
    );
    let other_files = server.recorded_for("live", "other", "mp4");
    assert_eq!(other_files.len(), 1, "{other_files:?}");
    assert_decodes_cleanly(Path::new("ffmpeg"), &other_files[0]);
}
