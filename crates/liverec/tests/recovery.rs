//! Crash durability: a `kill -9` while recording loses at most the last unflushed second, and
//! the next start finalizes what the crash left in the spool into valid, playable files.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A child process killed when dropped, so a failing test leaves no server running.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` with its stderr echoed and forwarded line by line; returns once
/// `pattern` was logged.
fn spawn_until(
    mut command: Command,
    pattern: &str,
) -> (Running, std::sync::mpsc::Receiver<String>) {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn liverec");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[liverec] {line}");
            let _ = tx.send(line);
        }
    });
    let child = Running(child);
    wait_line(&rx, pattern);
    (child, rx)
}

/// Starts liverec on `config` and returns it once `pattern` was logged.
fn start_until(config: &Path, pattern: &str) -> (Running, std::sync::mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_liverec"));
    command.args(["serve", "--config"]).arg(config);
    spawn_until(command, pattern)
}

fn wait_line(rx: &std::sync::mpsc::Receiver<String>, pattern: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line with {pattern:?}"));
        if line.contains(pattern) {
            return line;
        }
    }
}

#[test]
fn kill_9_while_recording_then_restart_recovers_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("liverec.toml");
    // Both runs must use the same RTMP port: take a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "rtmp_listen = \"127.0.0.1:{port}\"\napi_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[record]\nformats = [{{ format = \"mp4\" }}, {{ format = \"flv\" }}, {{ format = \"m3u8\", slice_secs = 2 }}, {{ format = \"cmaf\", slice_secs = 30 }}]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let (mut server, rx) = start_until(&config, "rtmp ingest listening");
    let url = format!("rtmp://127.0.0.1:{port}/live/crash");
    let mut publisher = Running(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &url,
        &[],
    ));
    wait_line(&rx, "recording started");
    std::thread::sleep(Duration::from_secs(6));
    // SIGKILL: no shutdown handling at all.
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = publisher.kill();
    let _ = publisher.wait();
    let spool = data.join("buckets/default/.spool");
    assert!(
        std::fs::read_dir(&spool).unwrap().count() > 0,
        "the crash left spool files"
    );

    // Four recordings were open: one per format.
    let (mut server, rx) = start_until(&config, "left by the previous run found=4");
    wait_line(&rx, "rtmp ingest listening");
    drop(rx);
    let mut found = 0;
    // Two playlists: HLS (2 s TS segments, the last one torn) and CMAF, whose only segment
    // (30 s) was torn by the crash and keeps its complete 1 s fragments.
    for (ext, count) in [("mp4", 1), ("flv", 1), ("m3u8", 2)] {
        let mut files = vec![];
        collect_files(&data.join("buckets/default/record"), ext, &mut files);
        // CMAF's init segment is an .mp4 of its own.
        files.retain(|f| !f.to_string_lossy().ends_with("_init.mp4"));
        assert_eq!(files.len(), count, "{ext}: {files:?}");
        for file in &files {
            let p = probe(file);
            // About 6 s were published; at most the last unflushed second (or segment) is lost.
            assert!(
                p.duration > 3.5 && p.duration < 7.5,
                "{}: recovered duration {}",
                file.display(),
                p.duration
            );
            assert!(p.first_video_frame_is_key);
            assert_decodes_cleanly(Path::new("ffmpeg"), file);
            found += 1;
        }
    }
    assert_eq!(found, 4);
    // Each recovered file is indexed once, with its picture size (kept in the sidecar), and
    // names an object that exists.
    let rows = index_rows(&data, "live.liverec.local", "live", "crash");
    let mut formats: Vec<&str> = rows.iter().map(|r| r.format.as_str()).collect();
    formats.sort_unstable();
    assert_eq!(formats, vec!["cmaf", "flv", "m3u8", "mp4"], "{rows:?}");
    for row in &rows {
        assert_eq!((row.width, row.height), (320, 240), "{row:?}");
        let object = data.join("buckets/default").join(&row.oss_object);
        assert!(object.is_file(), "{row:?}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "spool emptied: {leftovers:?}");
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
}

fn collect_files(dir: &Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// Starts liverec under `sh` with a file-size limit: writes past `limit_blocks` × 512 bytes fail
/// with EFBIG, as on a full disk (SIGXFSZ is ignored so the failure reaches the server).
fn start_with_file_size_limit(
    config: &Path,
    limit_blocks: u32,
) -> (Running, std::sync::mpsc::Receiver<String>) {
    let script = format!(
        "trap '' XFSZ; ulimit -f {limit_blocks}; exec '{}' serve --config '{}'",
        env!("CARGO_BIN_EXE_liverec"),
        config.display()
    );
    let mut command = Command::new("sh");
    command.args(["-c", &script]);
    spawn_until(command, "rtmp ingest listening")
}

#[test]
fn failing_storage_gives_a_counted_gap_and_loses_nothing_already_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("liverec.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "rtmp_listen = \"127.0.0.1:{port}\"\napi_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[record]\ndelay_secs = 1\nformats = [{{ format = \"mp4\" }}]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    // The database is made first, without the limit (its migrations write more than a file of
    // the test may hold).
    let migrated = Command::new(env!("CARGO_BIN_EXE_liverec"))
        .args(["keys", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    // 300 KiB per file: the 10 s asset (~470 KB) overflows it once, mid-recording.
    let (mut server, rx) = start_with_file_size_limit(&config, 600);
    let asset = asset("h264_aac.flv");
    let status = publish(
        Path::new("ffmpeg"),
        &asset,
        &format!("rtmp://127.0.0.1:{port}/live/full"),
    );
    assert!(status.success(), "the publisher never notices");
    let failure = wait_line(&rx, "write failed");
    assert!(failure.contains("failures=1"), "{failure}");
    // The file the failure cut is finished by a retry (it fits once cut at its last whole
    // fragment), and a new file starts at the next keyframe.
    let mut waiting = vec!["is stored now", "recording file complete"];
    while !waiting.is_empty() {
        let line = wait_line(&rx, "");
        waiting.retain(|pattern| !line.contains(pattern));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(
        server.wait().unwrap().success(),
        "still running and exits cleanly after the failure"
    );
    let mut files = vec![];
    collect_files(&data.join("buckets/default/record"), "mp4", &mut files);
    assert_eq!(
        files.len(),
        2,
        "the cut file and the one after the gap: {files:?}"
    );
    let spool: Vec<_> = std::fs::read_dir(data.join("buckets/default/.spool"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(spool.is_empty(), "nothing left for recovery: {spool:?}");
    let (mut frames, mut seconds) = (0, 0.0);
    for f in &files {
        let p = probe(f);
        assert!(p.first_video_frame_is_key);
        assert_decodes_cleanly(Path::new("ffmpeg"), f);
        frames += p.video_frames;
        seconds += p.duration;
    }
    // The gap: the torn fragment (≤ 1 s) and the rest of its GOP (1 s GOPs).
    assert!(
        (250 - 2 * 25..250).contains(&frames),
        "video frames kept: {frames}"
    );
    assert!(seconds > 7.5 && seconds < 10.0, "seconds kept: {seconds}");
}

#[test]
fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let mut first = Server::start("");
    let config = first.dir.path().join("liverec.toml");
    let second = Command::new(env!("CARGO_BIN_EXE_liverec"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another liverec (pid ") && said.contains("is serving data directory"),
        "{said}"
    );
    assert!(first.is_running(), "the first server is untouched");
    // The lock dies with its process: after a crash the next start takes it.
    first.kill_9();
    first.restart();
    assert!(first.is_running());
}

/// Starts liverec on `config` under `ulimit` options (`-Sn 256 -Hn 4096` …) and returns the
/// line logged about the open-file limit.
fn open_file_limit_line(config: &Path, ulimit: &str) -> String {
    let script = format!(
        "ulimit {ulimit}; exec '{}' serve --config '{}'",
        env!("CARGO_BIN_EXE_liverec"),
        config.display()
    );
    let mut server = Running(
        Command::new("sh")
            .args(["-c", &script])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn liverec"),
    );
    let stderr = server.stderr.take().expect("stderr");
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("open-file limit"))
        .unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    line
}

#[test]
fn the_open_file_limit_is_raised_and_a_too_low_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("liverec.toml");
    let write = |max_publishers: u32| {
        std::fs::write(
            &config,
            format!(
                "rtmp_listen = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
                 [ingest]\nmax_publishers = {max_publishers}\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .unwrap();
    };
    // Soft 256, hard 4096: raised to 4096, enough for 100 publishers (9 each + 256).
    write(100);
    let line = open_file_limit_line(&config, "-Sn 256; ulimit -Hn 4096");
    assert!(
        line.contains("INFO") && line.contains("limit=4096"),
        "{line}"
    );
    // 1000 publishers need 9256: too many for 4096.
    write(1000);
    let line = open_file_limit_line(&config, "-Sn 256; ulimit -Hn 4096");
    assert!(
        line.contains("WARN") && line.contains("limit=4096") && line.contains("need=9256"),
        "{line}"
    );
}

/// Issue 11: SQLite locked by another process for 12 s while a recording finishes: no crash,
/// the file is indexed once the lock is gone.
#[test]
fn a_file_finished_while_the_database_is_locked_is_indexed_afterwards() {
    let server = Server::start("[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }]\n");
    let db = server.data_dir().join("liverec.db");
    let mut publisher = Running(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &server.url("live", "locked"),
        &[],
    ));
    std::thread::sleep(Duration::from_secs(7));
    // An exclusive transaction from another process: every write waits, then fails.
    let mut lock = Running(
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys, time\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                 c.execute('BEGIN EXCLUSIVE')\n\
                 print('locked', flush=True)\n\
                 time.sleep(12)\n\
                 c.rollback()\n",
            ])
            .arg(&db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut said = String::new();
    BufReader::new(lock.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("read");
    assert_eq!(said.trim(), "locked");
    assert!(publisher.wait().expect("ffmpeg").success());
    let mut server = server;
    server.wait_for_log("cannot index a finished recording yet; retrying", T_LOCK);
    assert!(index_rows(&server.data_dir(), "live.liverec.local", "live", "locked").is_empty());
    assert!(lock.wait().expect("python3").success());
    server.wait_for_log("recording indexed after the database came back", T_LOCK);
    let rows = index_rows(&server.data_dir(), "live.liverec.local", "live", "locked");
    assert_eq!(rows.len(), 1);
    assert!(server.is_running());
}

const T_LOCK: Duration = Duration::from_secs(60);
