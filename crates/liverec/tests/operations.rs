//! The operator's view (issue 14): `/metrics` scraped while ffmpeg publishes and liverec
//! records, plays, answers the API and sends callbacks — every metric checked to move; and the
//! JSON log format, whose lines name their stream or API request.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::receiver::{Behaviour, Receiver};
use support::*;

const T: Duration = Duration::from_secs(60);
const DOMAIN: &str = "live.liverec.local";
/// MP4 files of 3 s and HLS/CMAF segments, a 1 s DelayTime, quick callback retries.
const CONFIG: &str = "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\", cycle_secs = 3 }, \
     { format = \"cmaf\" }]\n[notify]\nretry_max_interval_secs = 1\n[buckets.archive]\n";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One scrape of `/metrics`: each sample's name and labels with its value.
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn take(server: &Server) -> Scrape {
        let (status, text) = server.http_get("/metrics");
        assert_eq!(status, 200, "{text}");
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("bad sample line {line:?}")))
            .collect();
        Scrape { text, samples }
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

/// `name{a="x",b="y"} value` (label values here hold no `"` or `,`).
fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}')?;
            let labels = inner
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect::<Option<BTreeMap<_, _>>>()?;
            (name, labels)
        }
        None => (series, BTreeMap::new()),
    };
    Some((name.to_owned(), labels, value))
}

/// Scrapes until `check` holds (the server updates some gauges as things settle).
fn scrape_until(server: &Server, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + T;
    loop {
        let scrape = Scrape::take(server);
        if check(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never held; last scrape:\n{}",
            scrape.text
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stream_labels(stream: &str) -> [(&'static str, &str); 3] {
    [("domain", DOMAIN), ("app", "live"), ("stream", stream)]
}

#[test]
fn metrics_move_while_a_stream_is_recorded_played_and_commanded() {
    let receiver = Receiver::start(Behaviour {
        fail_first: 1,
        ..Behaviour::default()
    });
    let server = Server::start_with_env(CONFIG, &api::key_env());
    api::ok(
        server.api_addr(),
        "AddLiveRecordNotifyConfig",
        &[("DomainName", DOMAIN), ("NotifyUrl", &receiver.url("/cb"))],
    );
    let before = Scrape::take(&server);
    assert_eq!(before.sum("liverec_streams_online", &[]), 0.0);
    assert_eq!(before.sum("liverec_recordings_open", &[]), 0.0);
    assert!(before.sum("process_resident_memory_bytes", &[]) > 1e6);
    assert!(before.sum("process_open_fds", &[]) > 3.0);
    assert!(
        before
            .text
            .contains("# TYPE liverec_api_request_duration_seconds histogram"),
        "{}",
        before.text
    );

    let _publisher = Killed(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &server.url("live", "m"),
        &["-stream_loop", "-1"],
    ));
    let first = scrape_until(&server, "a live, recorded stream", |s| {
        s.sum("liverec_streams_online", &[]) == 1.0
            && s.sum("liverec_recordings_open", &[]) == 1.0
            && s.sum("liverec_ingest_bytes_total", &stream_labels("m")) > 0.0
    });
    assert_eq!(first.sum("liverec_publishes_total", &[]), 1.0);
    let later = scrape_until(&server, "bytes in and out growing", |s| {
        s.sum("liverec_ingest_bytes_total", &stream_labels("m"))
            > first.sum("liverec_ingest_bytes_total", &stream_labels("m"))
            && s.sum("liverec_written_bytes_total", &[])
                > first.sum("liverec_written_bytes_total", &[])
            && s.sum("liverec_fragments_flushed_total", &[("format", "mp4")]) > 0.0
            && s.sum("liverec_fragments_flushed_total", &[("format", "cmaf")]) > 0.0
    });
    assert!(later.has("liverec_recorder_queue_bytes"));

    // A second publisher of the same stream is refused, and counted with its reason.
    let refused = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-t",
            "2",
            "-i",
        ])
        .arg(asset("h264_aac.flv"))
        .args(["-c", "copy", "-f", "flv"])
        .arg(server.url("live", "m"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!refused.success());
    scrape_until(&server, "the refused publish counted", |s| {
        s.sum(
            "liverec_publishes_refused_total",
            &[("reason", "already_publishing")],
        ) == 1.0
    });

    // A viewer is counted while it plays.
    let viewer = {
        let url = server.url("live", "m");
        let out = server.dir.path().join("viewer.flv");
        std::thread::spawn(move || {
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-v", "error", "-i", &url])
                .args(["-t", "4", "-c", "copy", "-f", "flv", "-y"])
                .arg(out)
                .status()
                .unwrap()
        })
    };
    scrape_until(&server, "one viewer", |s| {
        s.sum("liverec_viewers", &[]) == 1.0
    });
    assert!(viewer.join().unwrap().success());
    scrape_until(&server, "the viewer gone", |s| {
        s.sum("liverec_viewers", &[]) == 0.0
    });
    let (status, _) = api::get(&format!("http://{}/live/nothing.flv", server.api_addr()));
    assert_eq!(status, 404);
    scrape_until(&server, "the refused play counted", |s| {
        s.sum("liverec_plays_refused_total", &[("reason", "not_found")]) == 1.0
    });

    // API requests by action and code, with their latency.
    let command = |command: &str| {
        api::call(
            server.api_addr(),
            "RealTimeRecordCommand",
            &[
                ("DomainName", DOMAIN),
                ("AppName", "live"),
                ("StreamName", "m"),
                ("Command", command),
            ],
        )
    };
    assert_eq!(command("stop").status, 200);
    assert_eq!(command("bogus").status, 400);
    let scrape = scrape_until(&server, "the API requests counted", |s| {
        s.sum(
            "liverec_api_requests_total",
            &[("action", "RealTimeRecordCommand"), ("code", "OK")],
        ) == 1.0
    });
    assert_eq!(
        scrape.sum(
            "liverec_api_requests_total",
            &[
                ("action", "RealTimeRecordCommand"),
                ("code", "InvalidCommand.Malformed")
            ]
        ),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.sum(
            "liverec_api_request_duration_seconds_count",
            &[("action", "RealTimeRecordCommand")]
        ),
        2.0
    );
    assert_eq!(
        scrape.sum(
            "liverec_api_request_duration_seconds_bucket",
            &[("action", "RealTimeRecordCommand"), ("le", "+Inf")]
        ),
        2.0
    );

    // `stop` paused the recording; DelayTime (1 s) later its files are finished and their
    // callbacks sent, the first one failing once and retried.
    let done = scrape_until(&server, "the recording finished and announced", |s| {
        s.sum("liverec_recordings_open", &[]) == 0.0
            && s.sum("liverec_files_written_total", &[]) >= 2.0
            && s.sum("liverec_callbacks_sent_total", &[]) >= 1.0
    });
    assert_eq!(
        done.sum("liverec_callback_attempts_failed_total", &[]),
        1.0,
        "{}",
        done.text
    );
    assert_eq!(done.sum("liverec_callbacks_retried_total", &[]), 1.0);
    assert_eq!(done.sum("liverec_callbacks_given_up_total", &[]), 0.0);
    assert_eq!(done.sum("liverec_streams_online", &[]), 1.0);
    assert_eq!(done.sum("liverec_dropped_frames_total", &[]), 0.0);

    // A local bucket owes nothing, and says so.
    for name in [
        "liverec_upload_backlog",
        "liverec_upload_backlog_bytes",
        "liverec_upload_backlog_oldest_age_seconds",
        "liverec_upload_failing",
    ] {
        assert!(done.has(name), "{name}: {}", done.text);
        assert_eq!(done.sum(name, &[("bucket", "archive")]), 0.0, "{name}");
    }

    // The docs list every metric exported, and the Grafana dashboard uses only listed ones.
    let operations = std::fs::read_to_string(repo_root().join("docs/OPERATIONS.md")).unwrap();
    let documented = |name: &str| operations.contains(&format!("| `{name}` |"));
    for line in done.text.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.split(' ').next())
        {
            assert!(documented(name), "{name} is not in docs/OPERATIONS.md");
        }
    }
    let dashboard =
        std::fs::read_to_string(repo_root().join("docs/grafana-dashboard.json")).unwrap();
    let mut used = 0;
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("liverec_") || word.starts_with("process_") {
            let name = word.strip_suffix("_bucket").unwrap_or(word);
            assert!(
                documented(name),
                "the dashboard uses {name}, not in docs/OPERATIONS.md"
            );
            used += 1;
        }
    }
    assert!(used > 20, "{used}");
}

#[test]
fn json_logs_name_the_stream_and_the_request() {
    let mut env = api::key_env().to_vec();
    env.push(("LIVEREC_LOG_FORMAT", "json"));
    let server = Server::start_with_env(CONFIG, &env);
    assert!(
        publish(
            Path::new("ffmpeg"),
            &asset("h264_aac.flv"),
            &server.url("live", "j")
        )
        .success()
    );
    api::ok(
        server.api_addr(),
        "DescribeLiveStreamsOnlineList",
        &[("DomainName", DOMAIN)],
    );
    server.wait_for_lines(&["recording file complete"], 1, T);
    let lines = server.log_lines(&[""]);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
    };
    // A line of the API request carries its RequestId.
    let request = find("api request");
    assert_eq!(request["action"], "\"DescribeLiveStreamsOnlineList\"");
    assert_eq!(request["request_id"].as_str().map(str::len), Some(36));
    // The recorder's lines are in their stream's span; the connection's in its own.
    let started = find("recording started");
    let spans = started["spans"].as_array().unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "recorder" && s["stream"] == format!("{DOMAIN}/live/j")),
        "{started}"
    );
    let publish = find("publish started");
    assert!(
        publish["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "rtmp" && s["stream"] == "live/j"),
        "{publish}"
    );
    assert_eq!(publish["level"], "INFO");
    assert!(publish["timestamp"].is_string());
}

/// Runs the liverec CLI; returns its exit status, stdout and stderr.
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_liverec"))
        .args(args)
        .env_remove("LIVEREC_ACCESS_KEY_ID")
        .env_remove("LIVEREC_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `liverec status` and `liverec recordings list` against a running server, with the bootstrap
/// key it wrote (found through --data-dir), and a wrong key refused.
#[test]
fn the_cli_shows_what_is_live_and_lists_recordings() {
    let server = Server::start("[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }]\n");
    let api = format!("http://{}", server.api_addr());
    let data = server.data_dir();
    let data = data.to_str().unwrap();
    let publisher = Killed(publish_child(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &server.url("live", "c"),
        &["-stream_loop", "-1"],
    ));
    server.wait_for_lines(&["recording started", "/live/c"], 1, T);
    let deadline = Instant::now() + T;
    let status = loop {
        let (ok, out, err) = cli(&["status", "--api", &api, "--data-dir", data]);
        assert!(ok, "{err}");
        if out.contains("H.264") {
            break out;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{DOMAIN}/live/c ")))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        line.contains("yes") && line.ends_with("recording #1"),
        "{status}"
    );
    let (ok, json, _) = cli(&["status", "--api", &api, "--data-dir", data, "--json"]);
    assert!(ok);
    let overview: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(overview["streams"][0]["recorder"]["state"], "recording");

    drop(publisher);
    server.wait_for_lines(&["recording file complete", "/live/c"], 1, T);
    let deadline = Instant::now() + T;
    let listed = loop {
        let (ok, out, err) = cli(&[
            "recordings",
            "list",
            "--api",
            &api,
            "--data-dir",
            data,
            "--stream",
            "c",
        ]);
        assert!(ok, "{err}");
        if out.contains("mp4") {
            break out;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("START"), "{listed}");
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[1].contains(" mp4 ") && lines[1].contains("live/c/"),
        "{listed}"
    );
    let (ok, json, _) = cli(&[
        "recordings",
        "list",
        "--api",
        &api,
        "--data-dir",
        data,
        "--stream",
        "c",
        "--json",
    ]);
    assert!(ok);
    let items: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0]["RecordUrl"].as_str().unwrap().contains("/vod/"));
    // A range with nothing in it, and a range given backwards.
    let (ok, out, _) = cli(&[
        "recordings",
        "list",
        "--api",
        &api,
        "--data-dir",
        data,
        "--stream",
        "c",
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2020-01-02T00:00:00Z",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), "no recordings in this range");
    let (ok, _, err) = cli(&[
        "recordings",
        "list",
        "--api",
        &api,
        "--data-dir",
        data,
        "--stream",
        "c",
        "--from",
        "2020-01-02T00:00:00Z",
        "--to",
        "2020-01-01T00:00:00Z",
    ]);
    assert!(!ok && err.contains("--from must be before --to"), "{err}");

    let (ok, _, err) = cli(&[
        "status",
        "--api",
        &api,
        "--key-id",
        "LTAInobody",
        "--key-secret",
        "nothing",
    ]);
    assert!(!ok);
    assert!(err.contains("refused (HTTP 401"), "{err}");
}
