//! S3 storage targets end to end: liverec records into a moto_server of each test's own, and
//! the objects are read back with the fixture's independent client (boto3), checked by ffprobe
//! and a full decode, and compared with the record index. Outages (a cut proxy between liverec
//! and moto), a kill -9 with uploads pending, and storage that refuses (wrong credentials, a
//! missing bucket) must lose nothing and upload nothing twice.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use liverec_catalog::{Catalog, Page, RecordingObject, RecordingQuery, RecordingRow};
use support::s3::MotoServer;
use support::*;

/// Upper bound of every wait (a hang guard, not a timing assertion).
const T: Duration = Duration::from_secs(120);
/// The domain of publishes that name none.
const DOMAIN: &str = "live.liverec.local";
/// The real bucket in moto; liverec knows the target as `archive`.
const REAL: &str = "rec-archive";
const NAME: &str = "archive";

/// A `[buckets.NAME]` section as DESIGN.md shows it.
fn s3_section(name: &str, endpoint: &str, real_bucket: &str) -> String {
    format!(
        "[buckets.{name}]\ntype = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"{real_bucket}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\n"
    )
}

/// The built-in record config, storing to `bucket`.
fn record_section(bucket: &str, formats: &str) -> String {
    format!("[record]\nbucket = \"{bucket}\"\ndelay_secs = 1\nformats = [{formats}]\n")
}

const MP4_M3U8_CMAF: &str = "{ format = \"mp4\" }, { format = \"m3u8\", slice_secs = 2 }, { format = \"cmaf\", slice_secs = 2 }";

/// The record index, read from the server's SQLite catalog (as record.rs does).
struct Index {
    runtime: tokio::runtime::Runtime,
    catalog: Catalog,
}

impl Index {
    fn open(server: &Server) -> Index {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let url = format!(
            "sqlite://{}",
            server.data_dir().join("liverec.db").display()
        );
        let catalog = runtime.block_on(Catalog::open(&url)).unwrap();
        Index { runtime, catalog }
    }

    /// Index rows of `live/{stream}`, by start time.
    fn rows(&self, stream: &str) -> Vec<RecordingRow> {
        let query = RecordingQuery {
            domain: DOMAIN.into(),
            app: "live".into(),
            stream: stream.into(),
            start: 0,
            end: i64::MAX,
            page: Page {
                num: 1,
                size: 100,
                desc: false,
            },
        };
        self.runtime
            .block_on(self.catalog.recordings(&query))
            .unwrap()
            .0
    }

    fn objects(&self, record_id: &str) -> Vec<RecordingObject> {
        self.runtime
            .block_on(self.catalog.recording_objects(record_id))
            .unwrap()
    }

    /// Waits until `live/{stream}` has `n` index rows. Every time it looks, each row's objects
    /// must already be in the bucket: a row is made only once its objects exist.
    fn wait_rows(&self, moto: &MotoServer, stream: &str, n: usize) -> Vec<RecordingRow> {
        let deadline = Instant::now() + T;
        loop {
            let rows = self.rows(stream);
            let keys = bucket_keys(moto);
            for row in &rows {
                assert_eq!(row.oss_bucket, NAME, "{row:?}");
                for o in self.objects(&row.record_id) {
                    assert!(
                        keys.contains(&o.object),
                        "index row {} names {} before it is in the bucket",
                        row.record_id,
                        o.object
                    );
                }
            }
            if rows.len() >= n {
                assert_eq!(rows.len(), n, "{stream}: more rows than files: {rows:#?}");
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "{stream}: {} of {n} index rows within {T:?}",
                rows.len()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn bucket_keys(moto: &MotoServer) -> BTreeSet<String> {
    moto.list(REAL, "").into_iter().map(|(k, _)| k).collect()
}

/// Files left in the target's spool (recordings in progress, uploads pending, sidecars).
fn spool_files(server: &Server, bucket: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![
        server
            .data_dir()
            .join("buckets")
            .join(bucket)
            .join(".spool"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

/// `(pending, failing)` of `bucket` from `GET /metrics`.
fn upload_gauges(server: &Server, bucket: &str) -> (u64, u64) {
    let (status, body) = server.http_get("/metrics");
    assert_eq!(status, 200, "{body}");
    let gauge = |name: &str| {
        let prefix = format!("{name}{{bucket=\"{bucket}\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{body}"))
    };
    (
        gauge("liverec_upload_backlog"),
        gauge("liverec_upload_failing"),
    )
}

/// Waits until `bucket` owes no upload.
fn wait_backlog_empty(server: &Server, bucket: &str) {
    let deadline = Instant::now() + T;
    loop {
        let (pending, failing) = upload_gauges(server, bucket);
        if pending == 0 {
            assert_eq!(failing, 0);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} uploads still pending after {T:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until `bucket`'s backlog has at least `pending` uploads of which `failing` failed.
fn wait_backlog(server: &Server, bucket: &str, pending: u64, failing: u64) -> (u64, u64) {
    let deadline = Instant::now() + T;
    loop {
        let now = upload_gauges(server, bucket);
        if now.0 >= pending && now.1 >= failing {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "backlog {now:?}, not at least ({pending}, {failing}) within {T:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Downloads `keys` with the fixture's client into `dir`, under their object names.
fn download(moto: &MotoServer, dir: &Path, keys: &[&str]) {
    for key in keys {
        let data = moto
            .get_object(REAL, key)
            .unwrap_or_else(|| panic!("{key} is not in the bucket"));
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// The part of an object name after `record/{domain}/live/{stream}/`, with each run of digits
/// of the stem as one `D`: `D-D-D-D-D-D_D-D-D-D-D-D.mp4` for a file named by its start and end.
fn shape(object: &str, stream: &str) -> String {
    let prefix = format!("record/{DOMAIN}/live/{stream}/");
    let rest = object
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{object} is not under {prefix}"));
    let (stem, extension) = rest.split_once('.').unwrap_or((rest, ""));
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('D') {
                out.push('D');
            }
        } else {
            out.push(c);
        }
    }
    format!("{out}.{extension}")
}

const TIMED: &str = "D-D-D-D-D-D_D-D-D-D-D-D";

/// One index row read back from the bucket: checks its objects' names (as a local target
/// names them), downloads them into `dir` and returns the main object's local copy.
fn fetch_row(
    index: &Index,
    moto: &MotoServer,
    dir: &Path,
    row: &RecordingRow,
    stream: &str,
) -> PathBuf {
    let objects = index.objects(&row.record_id);
    assert_eq!(objects[0].object, row.oss_object);
    for o in &objects {
        assert_eq!(o.bucket, NAME, "{o:?}");
    }
    let main = shape(&row.oss_object, stream);
    let (segment, init) = match row.format.as_str() {
        "mp4" => (None, false),
        "m3u8" => (Some("D_D.ts"), false),
        "cmaf" => (Some("D_D.m4s"), true),
        other => panic!("unexpected format {other}"),
    };
    let extension = match row.format.as_str() {
        "cmaf" => "cmaf.m3u8",
        f => f,
    };
    assert_eq!(main, format!("{TIMED}.{extension}"), "{}", row.oss_object);
    for o in &objects[1..] {
        let s = shape(&o.object, stream);
        if o.object.ends_with("_init.mp4") {
            assert!(init, "{o:?}");
            assert_eq!(s, "D_D_init.mp4");
        } else {
            assert_eq!(Some(s.as_str()), segment, "{}", o.object);
        }
    }
    let keys: Vec<&str> = objects.iter().map(|o| o.object.as_str()).collect();
    download(moto, dir, &keys);
    let local = dir.join(&row.oss_object);
    if segment.is_some() {
        // The playlist names exactly the row's segments (and init), relative to itself.
        let text = std::fs::read_to_string(&local).unwrap();
        assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
        let mut named: Vec<String> = text
            .lines()
            .filter_map(|l| {
                if let Some(map) = l.strip_prefix("#EXT-X-MAP:URI=\"") {
                    Some(map.trim_end_matches('"').to_owned())
                } else if l.starts_with('#') || l.trim().is_empty() {
                    None
                } else {
                    Some(l.trim().to_owned())
                }
            })
            .map(|uri| {
                liverec_storage::layout::resolve_uri(&row.oss_object, &uri)
                    .unwrap_or_else(|| panic!("{uri} leaves the bucket"))
            })
            .collect();
        named.sort();
        let mut listed: Vec<String> = objects[1..].iter().map(|o| o.object.clone()).collect();
        listed.sort();
        assert_eq!(named, listed, "{text}");
    }
    local
}

/// Checks a downloaded recording: H.264 + AAC, starts with a keyframe, decodes without an
/// error; returns what ffprobe counted.
fn check_media(file: &Path) -> Probe {
    let p = probe(file);
    assert_eq!(p.codecs, vec!["h264", "aac"], "{}", file.display());
    assert!(p.first_video_frame_is_key, "{}", file.display());
    assert_decodes_cleanly(Path::new("ffmpeg"), file);
    p
}

/// Every object of every row, each named by exactly one row.
fn indexed_objects(index: &Index, rows: &[RecordingRow]) -> BTreeSet<String> {
    let mut all = BTreeMap::new();
    for row in rows {
        for o in index.objects(&row.record_id) {
            if let Some(other) = all.insert(o.object.clone(), row.record_id.clone()) {
                panic!(
                    "{} is named by rows {other} and {}",
                    o.object, row.record_id
                );
            }
        }
    }
    all.into_keys().collect()
}

fn by_format<'a>(rows: &'a [RecordingRow], format: &str) -> Vec<&'a RecordingRow> {
    rows.iter().filter(|r| r.format == format).collect()
}

fn assert_spool_empty(server: &Server, bucket: &str) {
    let left = spool_files(server, bucket);
    assert!(left.is_empty(), "files left in the spool: {left:?}");
}

#[test]
fn records_every_format_to_s3_under_local_names() {
    let moto = MotoServer::start();
    moto.create_bucket(REAL);
    let mut server = Server::start(&format!(
        "{}{}",
        s3_section(NAME, &moto.endpoint(), REAL),
        record_section(NAME, MP4_M3U8_CMAF)
    ));
    assert!(server.log_contains("s3 storage target"));
    let asset = asset("h264_aac.flv");
    let expected = recordable_counts(Path::new("ffmpeg"), &asset);
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "rec")).success());

    let index = Index::open(&server);
    let rows = index.wait_rows(&moto, "rec", 3);
    wait_backlog_empty(&server, NAME);
    let mut formats: Vec<&str> = rows.iter().map(|r| r.format.as_str()).collect();
    formats.sort_unstable();
    assert_eq!(formats, vec!["cmaf", "m3u8", "mp4"]);

    // The bucket holds exactly the indexed objects: nothing twice, nothing else.
    assert_eq!(bucket_keys(&moto), indexed_objects(&index, &rows));
    let dir = tempfile::tempdir().unwrap();
    for row in &rows {
        let local = fetch_row(&index, &moto, dir.path(), row, "rec");
        let p = check_media(&local);
        assert_eq!(
            p.video_frames as usize, expected[0],
            "{}: every video frame",
            row.format
        );
        if row.format == "mp4" {
            assert_eq!(p.audio_frames as usize, expected[1], "every audio frame");
        }
        assert!(
            (p.duration - 10.0).abs() <= 0.3,
            "{}: {}",
            row.format,
            p.duration
        );
        assert_eq!((row.width, row.height), (320, 240));
        assert_eq!(
            row.size as u64,
            index
                .objects(&row.record_id)
                .iter()
                .map(|o| std::fs::metadata(dir.path().join(&o.object)).unwrap().len())
                .sum::<u64>(),
            "{}: size of the row",
            row.format
        );
    }
    // Both playlists are `{prefix}.m3u8` / `{prefix}.cmaf.m3u8` of the same start and end.
    let stem = |r: &RecordingRow| {
        let o = r.oss_object.clone();
        o[..o.find('.').unwrap()].to_owned()
    };
    assert_eq!(
        stem(by_format(&rows, "m3u8")[0]),
        stem(by_format(&rows, "cmaf")[0])
    );
    assert_spool_empty(&server, NAME);
    assert_eq!(upload_gauges(&server, NAME), (0, 0));
    assert!(server.terminate(Duration::from_secs(15)), "clean exit");
}

#[test]
fn bucket_configured_through_environment_variables() {
    let moto = MotoServer::start();
    moto.create_bucket(REAL);
    let endpoint = moto.endpoint();
    let var = |key: &str| format!("LIVEREC_BUCKETS__{}__{key}", NAME.to_uppercase());
    let env: Vec<(String, String)> = [
        ("TYPE", "s3"),
        ("ENDPOINT", endpoint.as_str()),
        ("BUCKET", REAL),
        ("REGION", "us-east-1"),
        ("ACCESS_KEY_ID", "test"),
        ("SECRET_ACCESS_KEY", "test"),
    ]
    .iter()
    .map(|(k, v)| (var(k), (*v).to_owned()))
    .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with_env(
        &format!(
            "[record]\nbucket = \"{NAME}\"\ndelay_secs = 3\nformats = [{{ format = \"mp4\" }}]\n"
        ),
        &env,
    );
    assert!(server.log_contains("s3 storage target"));
    let asset = asset("h264_aac.flv");
    let tags = read_tags(&asset);
    // The publisher comes back within DelayTime: one recording, one object.
    let rt = runtime();
    for n in 1..=2 {
        rt.block_on(publish_tags(server.rtmp, "live", "env", &tags, false))
            .unwrap();
        server.wait_for_lines(&["publish ended", "live/env"], n, T);
    }
    let index = Index::open(&server);
    let rows = index.wait_rows(&moto, "env", 1);
    wait_backlog_empty(&server, NAME);
    assert_eq!(bucket_keys(&moto), indexed_objects(&index, &rows));
    let dir = tempfile::tempdir().unwrap();
    let local = fetch_row(&index, &moto, dir.path(), &rows[0], "env");
    let p = check_media(&local);
    let expected = recordable_counts(Path::new("ffmpeg"), &asset);
    assert_eq!(p.video_frames as usize, 2 * expected[0], "both publishes");
    assert_spool_empty(&server, NAME);
}

/// Waits until the bucket holds at least `n` objects.
fn wait_keys(moto: &MotoServer, n: usize) {
    let deadline = Instant::now() + T;
    while bucket_keys(moto).len() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} objects within {T:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sums what ffprobe counts over files.
fn frames(files: &[PathBuf]) -> (usize, usize) {
    files.iter().fold((0, 0), |(v, a), f| {
        let p = check_media(f);
        (v + p.video_frames as usize, a + p.audio_frames as usize)
    })
}

#[test]
fn outage_in_the_middle_of_uploads_loses_nothing_and_uploads_nothing_twice() {
    let moto = MotoServer::start();
    moto.create_bucket(REAL);
    let mut proxy = moto.proxy();
    let server = Server::start(&format!(
        "{}{}",
        s3_section(NAME, &proxy.endpoint(), REAL),
        record_section(
            NAME,
            "{ format = \"mp4\", cycle_secs = 3 }, { format = \"m3u8\", slice_secs = 1 }"
        )
    ));
    let asset = asset("h264_aac.flv");
    let expected = recordable_counts(Path::new("ffmpeg"), &asset);
    let mut publisher = publish_child(Path::new("ffmpeg"), &asset, &server.url("live", "cut"), &[]);
    // Segments are going up: storage goes away in the middle of the uploads.
    wait_keys(&moto, 2);
    proxy.cut();
    server.wait_for_lines(
        &["object storage is not taking uploads", "bucket=archive"],
        1,
        T,
    );
    wait_backlog(&server, NAME, 1, 1);
    // Recording goes on: the stream is recorded to its end and every file finalized.
    assert!(publisher.wait().unwrap().success());
    server.wait_for_lines(&["recording playlist complete", "live/cut"], 1, T);
    server.wait_for_lines(&["recording file complete", "live/cut"], 4, T);
    let index = Index::open(&server);
    let during = index.rows("cut");
    assert!(during.len() < 5, "{during:#?}");
    let (pending, failing) = upload_gauges(&server, NAME);
    assert!(pending > 0 && failing > 0, "({pending}, {failing})");
    assert!(!spool_files(&server, NAME).is_empty());

    proxy.restore();
    let rows = index.wait_rows(&moto, "cut", 5);
    wait_backlog_empty(&server, NAME);
    // Exactly the indexed objects: no `_1` copy of a file sent again, nothing missing.
    assert_eq!(bucket_keys(&moto), indexed_objects(&index, &rows));
    let dir = tempfile::tempdir().unwrap();
    let mp4: Vec<PathBuf> = by_format(&rows, "mp4")
        .iter()
        .map(|r| fetch_row(&index, &moto, dir.path(), r, "cut"))
        .collect();
    assert_eq!(mp4.len(), 4, "10 s in 3 s cycles cut at 1 s GOPs");
    assert_eq!(
        frames(&mp4),
        (expected[0], expected[1]),
        "every frame across the cuts"
    );
    let playlist = fetch_row(
        &index,
        &moto,
        dir.path(),
        by_format(&rows, "m3u8")[0],
        "cut",
    );
    assert_eq!(check_media(&playlist).video_frames as usize, expected[0]);
    assert_spool_empty(&server, NAME);
    assert!(server.log_contains("object storage takes uploads again"));
}

#[test]
fn kill_9_with_uploads_pending_then_restart_uploads_and_indexes_each_file_once() {
    let moto = MotoServer::start();
    moto.create_bucket(REAL);
    let mut proxy = moto.proxy();
    let mut server = Server::start(&format!(
        "{}{}",
        s3_section(NAME, &proxy.endpoint(), REAL),
        record_section(
            NAME,
            "{ format = \"mp4\" }, { format = \"cmaf\", slice_secs = 30 }"
        )
    ));
    // Storage is down from the start: every upload waits.
    proxy.cut();
    let asset = asset("h264_aac.flv");
    let expected = recordable_counts(Path::new("ffmpeg"), &asset);
    // Stream `done` is recorded whole and finalized: its files wait in the upload queue.
    runtime()
        .block_on(publish_tags(
            server.rtmp,
            "live",
            "done",
            &read_tags(&asset),
            false,
        ))
        .unwrap();
    server.wait_for_lines(&["recording file complete", "live/done"], 1, T);
    server.wait_for_lines(&["recording playlist complete", "live/done"], 1, T);
    // Stream `torn` is still recording when the server dies: recovery finishes it.
    let mut publisher = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "torn"),
        &[],
    );
    server.wait_for_lines(&["recording started", "live/torn"], 1, T);
    wait_backlog(&server, NAME, 4, 1);
    std::thread::sleep(Duration::from_secs(5));
    server.kill_9();
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(bucket_keys(&moto).is_empty());

    // Recovery runs before storage is back, so it must find the CMAF init segment (stored,
    // still waiting to be uploaded) in the spool; then storage comes back.
    server.restart();
    server.wait_for_lines(&["recovery finished", "recovered=2"], 1, T);
    proxy.restore();
    let index = Index::open(&server);
    let done = index.wait_rows(&moto, "done", 2);
    let torn = index.wait_rows(&moto, "torn", 2);
    wait_backlog_empty(&server, NAME);
    let all: Vec<RecordingRow> = done.iter().chain(&torn).cloned().collect();
    assert_eq!(bucket_keys(&moto), indexed_objects(&index, &all));
    let dir = tempfile::tempdir().unwrap();
    for row in &done {
        let p = check_media(&fetch_row(&index, &moto, dir.path(), row, "done"));
        assert_eq!(p.video_frames as usize, expected[0], "{}", row.format);
    }
    let mut durations = BTreeMap::new();
    for row in &torn {
        let p = check_media(&fetch_row(&index, &moto, dir.path(), row, "torn"));
        assert!(p.duration > 2.5, "{}: {}", row.format, p.duration);
        durations.insert(row.format.clone(), p.duration);
    }
    // The torn CMAF segment (the only one: 30 s slices) keeps its complete 1 s fragments: as
    // long as the MP4, give or take a fragment.
    assert!(
        (durations["cmaf"] - durations["mp4"]).abs() <= 1.1,
        "{durations:?}"
    );
    assert_spool_empty(&server, NAME);
    // Still once each after everything settled.
    assert_eq!(index.rows("done").len(), 2);
    assert_eq!(index.rows("torn").len(), 2);
}

/// Storage that refuses (wrong credentials, no such bucket): the log names the bucket and
/// why, the backlog is kept and visible, recording goes on; once storage accepts again every
/// file goes up.
fn refused_then_accepted(
    refuse: impl FnOnce(&MotoServer),
    accept: impl FnOnce(&MotoServer),
    reason: &str,
) {
    let moto = MotoServer::start();
    refuse(&moto);
    let mut server = Server::start(&format!(
        "{}{}",
        s3_section(NAME, &moto.endpoint(), REAL),
        record_section(NAME, "{ format = \"mp4\" }")
    ));
    let tags = read_tags(&asset("h264_aac.flv"));
    let rt = runtime();
    rt.block_on(publish_tags(server.rtmp, "live", "first", &tags, false))
        .unwrap();
    let line = server.wait_for_lines(&["upload failed", "bucket=archive"], 1, T)[0].clone();
    assert!(line.contains(reason), "{line}");
    assert!(line.contains(REAL), "names the real bucket: {line}");
    wait_backlog(&server, NAME, 1, 1);
    // Recording goes on.
    rt.block_on(publish_tags(server.rtmp, "live", "second", &tags, false))
        .unwrap();
    server.wait_for_lines(&["recording file complete", "live/second"], 1, T);
    wait_backlog(&server, NAME, 2, 1);
    assert!(server.is_running());
    let index = Index::open(&server);
    assert!(index.rows("first").is_empty() && index.rows("second").is_empty());

    accept(&moto);
    let first = index.wait_rows(&moto, "first", 1);
    let second = index.wait_rows(&moto, "second", 1);
    wait_backlog_empty(&server, NAME);
    let all: Vec<RecordingRow> = first.into_iter().chain(second).collect();
    assert_eq!(bucket_keys(&moto), indexed_objects(&index, &all));
    assert_spool_empty(&server, NAME);
}

#[test]
fn wrong_credentials_keep_the_backlog_until_storage_accepts() {
    refused_then_accepted(
        |moto| {
            moto.create_bucket(REAL);
            // liverec's `test`/`test` are no IAM user's keys.
            moto.require_auth(true);
        },
        |moto| moto.require_auth(false),
        "credentials",
    );
}

#[test]
fn missing_bucket_keeps_the_backlog_until_it_exists() {
    refused_then_accepted(|_| {}, |moto| moto.create_bucket(REAL), "does not exist");
}

/// Peak resident set size of this process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A manual measurement, not a check (docs/BENCHMARKS.md "S3 upload memory"): a ~900 MB
/// spool file (sparse) goes up through `S3Target` to moto as a multipart upload streamed from
/// disk; prints this process's peak RSS before and after.
///
/// `cargo nextest run -p liverec --test s3 --run-ignored only --no-capture big_upload`
#[test]
#[ignore = "manual: uploads ~900 MB to moto and prints the peak RSS"]
fn big_upload_memory_is_bounded() {
    use liverec_storage::s3::{S3Settings, S3Target};
    use liverec_storage::{ObjectName, OnComplete, StoreRequest, Target};
    use std::sync::Arc;

    const SIZE: u64 = 900 * 1000 * 1000;
    let moto = MotoServer::start();
    moto.create_bucket(REAL);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (before, after, elapsed) = rt.block_on(async {
        let catalog = Catalog::open_in_memory().await.unwrap();
        let hook: OnComplete = Arc::new(|_| Box::pin(async {}));
        let settings = S3Settings {
            endpoint: Some(moto.endpoint()),
            bucket: REAL.into(),
            region: Some("us-east-1".into()),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
            virtual_hosted: false,
        };
        let target = Arc::new(S3Target::new(NAME, dir.path(), &settings, catalog, hook).unwrap());
        let spool_file = target.spool().new_path("mp4");
        std::fs::create_dir_all(spool_file.parent().unwrap()).unwrap();
        std::fs::File::create(&spool_file)
            .unwrap()
            .set_len(SIZE)
            .unwrap();
        let before = peak_rss_kib();
        let started = Instant::now();
        let object = target
            .store(StoreRequest {
                spool_file: spool_file.clone(),
                name: ObjectName::new("big/file".into(), "mp4").unwrap(),
                group: None,
                completion: None,
            })
            .await
            .unwrap();
        assert_eq!(object, "big/file.mp4");
        let cancel = tokio_util::sync::CancellationToken::new();
        let uploader = tokio::spawn(target.clone().run_uploader(cancel.clone()));
        while target.backlog().await.unwrap().pending > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let elapsed = started.elapsed();
        cancel.cancel();
        uploader.await.unwrap();
        assert!(!spool_file.exists());
        (before, peak_rss_kib(), elapsed)
    });
    assert_eq!(
        moto.list(REAL, "big/"),
        vec![("big/file.mp4".to_owned(), SIZE)]
    );
    eprintln!(
        "S3 upload of {SIZE} bytes in {elapsed:.1?}: peak RSS {} MiB before, {} MiB after",
        before / 1024,
        after / 1024
    );
}
