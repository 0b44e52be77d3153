//! Triggered ("lazy") pulls (issue 13, points 2, 3 and 5): Debian's nginx-rtmp as the origin
//! with ffmpeg publishing to it, ffmpeg as liverec's viewers; a pulled stream is recorded only
//! while someone plays it.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::origin::NginxOrigin;
use support::*;

const DOMAIN: &str = "live.liverec.local";
const T: Duration = Duration::from_secs(60);
/// Short DelayTime and pull grace, so each played period becomes its own file quickly.
const CONFIG: &str =
    "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }]\n[pull]\ngrace_secs = 2\n";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ffmpeg keeping `secs` seconds of `url` in `out`; returns its status and stderr.
fn view(ffmpeg: &Path, url: &str, secs: &str, out: &Path) -> (ExitStatus, String) {
    let child = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-t", secs, "-c", "copy", "-f", "flv", "-y"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    let killer = Killed(child);
    let deadline = Instant::now() + T;
    let mut killer = killer;
    loop {
        if let Some(status) = killer.0.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = killer.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return (status, stderr);
        }
        assert!(Instant::now() < deadline, "viewer of {url} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Publishes the looping test asset to the origin and waits until it can be played there.
fn publish_to_origin(origin: &NginxOrigin, stream: &str, dir: &Path) -> Killed {
    let publisher = Killed(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &origin.url("live", stream),
        &["-stream_loop", "-1"],
    ));
    let deadline = Instant::now() + T;
    loop {
        let (status, _) = view(
            Path::new("ffmpeg"),
            &origin.url("live", stream),
            "0.5",
            &dir.join("probe.flv"),
        );
        if status.success() {
            return publisher;
        }
        assert!(
            Instant::now() < deadline,
            "the origin never had {stream}: {}",
            origin.error_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn set_lazy(server: &Server, origins: &str, protocol: &str) {
    api::ok(
        server.api_addr(),
        "SetLiveLazyPullStreamInfoConfig",
        &[
            ("DomainName", DOMAIN),
            ("AppName", "live"),
            ("PullDomainName", origins),
            ("PullProtocol", protocol),
        ],
    );
}

/// The finished MP4 recordings of `live/{stream}`, once there are `n`.
fn wait_recordings(server: &Server, stream: &str, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + T;
    loop {
        let files = server.recorded_for("live", stream, "mp4");
        if files.len() >= n {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} recordings: {files:?}",
            files.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_pulled_stream_is_recorded_only_while_it_is_played() {
    let origin = NginxOrigin::start();
    let dir = tempfile::tempdir().unwrap();
    let _publisher = publish_to_origin(&origin, "s", dir.path());
    let mut server = Server::start_with_env(CONFIG, &api::key_env());
    set_lazy(&server, &origin.host_port(), "rtmp");
    let described = api::ok(
        server.api_addr(),
        "DescribeLiveLazyPullStreamConfig",
        &[("DomainName", DOMAIN)],
    );
    let config = &described["LiveLazyPullConfigList"]["LiveLazyPullConfig"][0];
    assert_eq!(
        config["PullDomainName"],
        origin.host_port().as_str(),
        "{described}"
    );
    assert_eq!(config["PullProtocol"], "rtmp");

    // Nobody plays it: nothing to record, as for a stream nobody publishes.
    let start = api::call(
        server.api_addr(),
        "RealTimeRecordCommand",
        &[
            ("DomainName", DOMAIN),
            ("AppName", "live"),
            ("StreamName", "s"),
            ("Command", "start"),
        ],
    );
    assert_eq!(start.status, 404, "{}", start.body);
    assert_eq!(start.body["Code"], "InvalidStream.NotFound");
    assert!(server.recorded_for("live", "s", "mp4").is_empty());

    // A first played period over RTMP: one recording of about its length.
    let first = dir.path().join("first.flv");
    let (status, stderr) = view(Path::new("ffmpeg"), &server.url("live", "s"), "4", &first);
    assert!(status.success(), "{stderr}");
    server.wait_for_log("triggered pull started", T);
    server.wait_for_log("pull stopped: no viewer for the grace period", T);
    let files = wait_recordings(&server, "s", 1);
    assert_eq!(files.len(), 1, "{files:?}");
    let played = probe(&first).duration;
    let recorded = probe(&files[0]).duration;
    assert!(
        (recorded - played).abs() < 0.5,
        "played {played} s, recorded {recorded} s"
    );
    assert_decodes_cleanly(Path::new("ffmpeg"), &files[0]);

    // A second period, over HTTP-FLV, after the pull stopped: a new pull, a second recording.
    let second = dir.path().join("second.flv");
    let url = format!("http://{}/live/s.flv", server.api_addr());
    let (status, stderr) = view(Path::new("ffmpeg"), &url, "3", &second);
    assert!(status.success(), "{stderr}");
    let files = wait_recordings(&server, "s", 2);
    let mut durations: Vec<f64> = files.iter().map(|f| probe(f).duration).collect();
    durations.sort_by(f64::total_cmp);
    let played = probe(&second).duration;
    assert!(
        (durations[0] - played).abs() < 0.5,
        "played {played} s, recorded {durations:?}"
    );
    for file in &files {
        assert_decodes_cleanly(Path::new("ffmpeg"), file);
    }
    let rows = index_rows(&server.data_dir(), DOMAIN, "live", "s");
    assert_eq!(rows.len(), 2, "{rows:?}");
}

/// Viewers who come while a stream is pulled share that pull: one connection to the origin,
/// one "triggered pull started", and one recording covering the time anyone played.
#[test]
fn concurrent_viewers_share_one_pull() {
    let origin = NginxOrigin::start();
    let dir = tempfile::tempdir().unwrap();
    let _publisher = publish_to_origin(&origin, "s", dir.path());
    let origin_plays = origin.plays("s");
    let server = Server::start_with_env(CONFIG, &api::key_env());
    set_lazy(&server, &origin.host_port(), "rtmp");
    let rtmp = server.url("live", "s");
    let http_flv = format!("http://{}/live/s.flv", server.api_addr());
    // Staggered by 0.7 s, 4 s each: the first waits for the pull, the others join it.
    let viewers: Vec<_> = [rtmp.clone(), http_flv, rtmp]
        .into_iter()
        .enumerate()
        .map(|(i, url)| {
            let out = dir.path().join(format!("viewer{i}.flv"));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700 * i as u64));
                let (status, stderr) = view(Path::new("ffmpeg"), &url, "4", &out);
                (url, status, stderr, out)
            })
        })
        .collect();
    for viewer in viewers {
        let (url, status, stderr, out) = viewer.join().unwrap();
        assert!(status.success(), "{url}: {stderr}");
        let p = probe(&out);
        assert!(p.video_frames > 40, "{url}: {p:?}");
        assert_decodes_cleanly(Path::new("ffmpeg"), &out);
    }
    server.wait_for_lines(&["pull stopped: no viewer for the grace period"], 1, T);
    assert_eq!(server.log_lines(&["triggered pull started"]).len(), 1);
    assert_eq!(
        origin.plays("s"),
        origin_plays + 1,
        "{}",
        origin.error_log()
    );
    let files = wait_recordings(&server, "s", 1);
    assert_eq!(files.len(), 1, "{files:?}");
    let recorded = probe(&files[0]).duration;
    // From the first viewer's start to the last one's end: 1.4 s + 4 s.
    assert!(recorded > 4.9 && recorded < 6.5, "recorded {recorded} s");
    assert_decodes_cleanly(Path::new("ffmpeg"), &files[0]);
}

/// In automatic mode a viewer who comes back within DelayTime continues the recording the last
/// viewer left (DESIGN.md's transition table, as for a publisher returning): one file whose
/// timeline bridges the pause.
#[test]
fn a_viewer_back_within_delay_time_continues_the_recording() {
    let origin = NginxOrigin::start();
    let dir = tempfile::tempdir().unwrap();
    let _publisher = publish_to_origin(&origin, "s", dir.path());
    let server = Server::start_with_env(
        "[record]\ndelay_secs = 6\nformats = [{ format = \"mp4\" }]\n[pull]\ngrace_secs = 10\n",
        &api::key_env(),
    );
    set_lazy(&server, &origin.host_port(), "rtmp");
    let first = dir.path().join("first.flv");
    let (status, stderr) = view(Path::new("ffmpeg"), &server.url("live", "s"), "3", &first);
    assert!(status.success(), "{stderr}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(server.recorded_for("live", "s", "mp4").is_empty());
    let second = dir.path().join("second.flv");
    let url = format!("http://{}/live/s.flv", server.api_addr());
    let (status, stderr) = view(Path::new("ffmpeg"), &url, "3", &second);
    assert!(status.success(), "{stderr}");

    let files = wait_recordings(&server, "s", 1);
    std::thread::sleep(Duration::from_secs(1));
    let files_now = server.recorded_for("live", "s", "mp4");
    assert_eq!(files_now, files, "one recording for both played periods");
    assert_eq!(
        server
            .log_lines(&["pulled stream played: recording it"])
            .len(),
        2
    );
    assert_eq!(server.log_lines(&["recording started", "/live/s"]).len(), 1);
    let played = probe(&first).duration + probe(&second).duration;
    let recorded = probe(&files[0]).duration;
    assert!(
        (recorded - played).abs() < 0.5,
        "played {played} s in two periods, recorded {recorded} s"
    );
    assert_decodes_cleanly(Path::new("ffmpeg"), &files[0]);
    let rows = index_rows(&server.data_dir(), DOMAIN, "live", "s");
    assert_eq!(rows.len(), 1, "{rows:?}");
}

#[test]
fn a_dead_origin_gives_the_viewer_an_error_within_seconds_and_the_next_origin_is_tried() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let server = Server::start_with_env(CONFIG, &api::key_env());
    let dir = tempfile::tempdir().unwrap();
    set_lazy(&server, &dead_addr.to_string(), "rtmp");
    let started = Instant::now();
    let (status, stderr) = view(
        Path::new("ffmpeg"),
        &server.url("live", "s"),
        "2",
        &dir.path().join("a.flv"),
    );
    assert!(!status.success());
    assert!(
        stderr.contains("NetStream.Play.Failed") || stderr.contains("Server error"),
        "{stderr}"
    );
    let (code, body) = api::get(&format!("http://{}/live/s.flv", server.api_addr()));
    assert_eq!(code, 502, "{}", String::from_utf8_lossy(&body));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // Two origins, the first dead: the second is pulled.
    let origin = NginxOrigin::start();
    let _publisher = publish_to_origin(&origin, "s", dir.path());
    set_lazy(
        &server,
        &format!("{dead_addr};{}", origin.host_port()),
        "rtmp",
    );
    let out = dir.path().join("b.flv");
    let (status, stderr) = view(Path::new("ffmpeg"), &server.url("live", "s"), "2", &out);
    assert!(status.success(), "{stderr}");
    assert!(probe(&out).video_frames > 20);
}

/// HTTP-FLV pulls, from another liverec (nginx-rtmp serves no HTTP-FLV).
#[test]
fn a_stream_is_pulled_over_http_flv() {
    let origin = Server::start("");
    let _publisher = Killed(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &origin.url("live", "s"),
        &["-stream_loop", "-1"],
    ));
    origin.wait_for_lines(&["publish started", "/live/s "], 1, T);
    let server = Server::start_with_env(CONFIG, &api::key_env());
    set_lazy(&server, &origin.api_addr().to_string(), "httpflv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.flv");
    let (status, stderr) = view(Path::new("ffmpeg"), &server.url("live", "s"), "3", &out);
    assert!(status.success(), "{stderr}");
    let p = probe(&out);
    assert!(p.video_frames > 30 && p.audio_frames > 30, "{p:?}");
    assert_decodes_cleanly(Path::new("ffmpeg"), &out);
    assert!(server.log_contains("triggered pull started"));
}

fn utc_in(secs: i64) -> String {
    api::utc(api::now_secs() + secs)
}

/// Scheduled pulls (issue 13, point 4): the source is pulled and recorded during its window,
/// whether or not anyone plays; deleting the config stops it.
#[test]
fn a_scheduled_pull_records_its_window() {
    let origin = NginxOrigin::start();
    let dir = tempfile::tempdir().unwrap();
    let _publisher = publish_to_origin(&origin, "s", dir.path());
    let _other = publish_to_origin(&origin, "t", dir.path());
    let mut server = Server::start_with_env(CONFIG, &api::key_env());
    let add = |stream: &str, until: i64| {
        api::call(
            server.api_addr(),
            "AddLivePullStreamInfoConfig",
            &[
                ("DomainName", DOMAIN),
                ("AppName", "live"),
                ("StreamName", stream),
                ("SourceUrl", &origin.url("live", stream)),
                ("StartTime", &utc_in(-2)),
                ("EndTime", &utc_in(until)),
            ],
        )
    };
    assert_eq!(add("s", 8).status, 200);
    let again = add("s", 8);
    assert_eq!(again.body["Code"], "ConfigAlreadyExists", "{}", again.body);
    let missing = api::call(
        server.api_addr(),
        "UpdateLivePullStreamInfoConfig",
        &[
            ("DomainName", DOMAIN),
            ("AppName", "live"),
            ("StreamName", "nothing"),
            ("SourceUrl", &origin.url("live", "s")),
            ("StartTime", &utc_in(-2)),
            ("EndTime", &utc_in(60)),
        ],
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
    server.wait_for_lines(&["scheduled pull started", "/live/s "], 1, T);
    let described = api::ok(
        server.api_addr(),
        "DescribeLivePullStreamConfig",
        &[("DomainName", DOMAIN)],
    );
    let row = &described["LiveAppRecordList"]["LiveAppRecord"][0];
    assert_eq!(row["StreamName"], "s", "{described}");
    assert_eq!(
        row["SourceUsing"],
        origin.url("live", "s").as_str(),
        "{described}"
    );

    // Nobody plays it, and it is recorded until its window ends.
    let files = wait_recordings(&server, "s", 1);
    let recorded = probe(&files[0]).duration;
    assert!(recorded > 4.0 && recorded < 9.0, "{recorded} s");
    assert_decodes_cleanly(Path::new("ffmpeg"), &files[0]);

    // A config deleted in its window stops its pull.
    assert_eq!(add("t", 600).status, 200);
    server.wait_for_lines(&["scheduled pull started", "/live/t "], 1, T);
    std::thread::sleep(Duration::from_secs(3));
    api::ok(
        server.api_addr(),
        "DeleteLivePullStreamInfoConfig",
        &[
            ("DomainName", DOMAIN),
            ("AppName", "live"),
            ("StreamName", "t"),
        ],
    );
    server.wait_for_lines(
        &["scheduled pull over", "/live/t"],
        1,
        Duration::from_secs(10),
    );
    let files = wait_recordings(&server, "t", 1);
    assert!(probe(&files[0]).duration > 2.0);
    let described = api::ok(
        server.api_addr(),
        "DescribeLivePullStreamConfig",
        &[("DomainName", DOMAIN)],
    );
    assert_eq!(
        described["LiveAppRecordList"]["LiveAppRecord"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{described}"
    );
    let _ = &mut server;
}

/// A scheduled pull whose source drops is pulled again when it returns: one recording per
/// stretch the source was there.
#[test]
fn a_scheduled_pull_comes_back_when_its_source_does() {
    let origin = NginxOrigin::start();
    let dir = tempfile::tempdir().unwrap();
    let first = publish_to_origin(&origin, "r", dir.path());
    let server = Server::start_with_env(CONFIG, &api::key_env());
    api::ok(
        server.api_addr(),
        "AddLivePullStreamInfoConfig",
        &[
            ("DomainName", DOMAIN),
            ("AppName", "live"),
            ("StreamName", "r"),
            ("SourceUrl", &origin.url("live", "r")),
            ("StartTime", &utc_in(-2)),
            ("EndTime", &utc_in(600)),
        ],
    );
    server.wait_for_lines(&["scheduled pull started", "/live/r"], 1, T);
    std::thread::sleep(Duration::from_secs(4));
    drop(first);
    let files = wait_recordings(&server, "r", 1);
    assert!(probe(&files[0]).duration > 2.0, "{files:?}");
    // The source returns: the pull (retrying meanwhile) records it again.
    let _second = publish_to_origin(&origin, "r", dir.path());
    std::thread::sleep(Duration::from_secs(5));
    api::ok(
        server.api_addr(),
        "DeleteLivePullStreamInfoConfig",
        &[
            ("DomainName", DOMAIN),
            ("AppName", "live"),
            ("StreamName", "r"),
        ],
    );
    let files = wait_recordings(&server, "r", 2);
    for file in &files {
        assert_decodes_cleanly(Path::new("ffmpeg"), file);
    }
    let mut durations: Vec<f64> = files.iter().map(|f| probe(f).duration).collect();
    durations.sort_by(f64::total_cmp);
    assert!(durations[0] > 1.0, "{durations:?}");
}
