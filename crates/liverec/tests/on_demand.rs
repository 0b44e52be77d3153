//! On-demand recording end to end: real ffmpeg publishes, a real HTTP receiver answering the
//! OnDemandUrl question (no, a format list with intervals, an error, nonsense, never), and the
//! publish URL's `record=1` for OnDemand = 2. What was recorded is read back with ffmpeg.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use md5::Digest;
use support::receiver::{Behaviour, OnDemandAnswer, Receiver};
use support::*;

const T: Duration = Duration::from_secs(60);
const DOMAIN: &str = "live.liverec.local";
const AUTH_KEY: &str = "onDemandKey20261207";

/// The test key for the API and a built-in on-demand config recording MP4 and FLV; the server
/// waits `timeout_ms` for an answer.
fn start(mode: &str, timeout_ms: u64) -> Server {
    Server::start_with_env(
        &format!(
            "[record]\nmode = \"{mode}\"\ndelay_secs = 1\n\
             formats = [{{ format = \"mp4\" }}, {{ format = \"flv\" }}]\n\
             [notify]\non_demand_timeout_ms = {timeout_ms}\n"
        ),
        &api::key_env(),
    )
}

fn add_on_demand_url(server: &Server, receiver: &Receiver, extra: &[(&str, &str)]) {
    let (notify, on_demand) = (receiver.url("/files"), receiver.url("/ask?token=t"));
    let mut params = vec![
        ("DomainName", DOMAIN),
        ("NotifyUrl", notify.as_str()),
        ("OnDemandUrl", on_demand.as_str()),
    ];
    params.extend_from_slice(extra);
    api::ok(server.api_addr(), "AddLiveRecordNotifyConfig", &params);
}

/// Waits until `stream`'s publish ended and, if `recorded`, its recording was finalized; a
/// stream not recorded gets two seconds (DelayTime is 1 s) to show a wrongly made file.
fn wait_publish_over(server: &mut Server, stream: &str, recorded: bool) {
    let field = format!("stream={DOMAIN}/live/{stream}");
    server.wait_for_lines(&["publish ended", &field], 1, T);
    if recorded {
        server.wait_for_lines(&["recording ends", &field], 1, T);
    } else {
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn wait_rows(server: &Server, stream: &str, n: usize) -> Vec<liverec_catalog::RecordingRow> {
    let deadline = std::time::Instant::now() + T;
    loop {
        let rows = index_rows(&server.data_dir(), DOMAIN, "live", stream);
        if rows.len() >= n {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stream}: {} of {n} index rows",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Publishes 4 s of encoded test video (800 kbit/s, so onMetaData says `videodatarate`
/// 781.25) and audio in real time.
fn publish_encoded(url: &str) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=4",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=4"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-b:v",
            "800k",
        ])
        .args(["-c:a", "aac", "-f", "flv", url])
        .stdout(Stdio::null())
        .status()
        .expect("spawn ffmpeg");
    assert!(status.success());
}

#[test]
fn a_no_records_nothing_and_the_question_describes_the_publish() {
    let receiver = Receiver::start(Behaviour {
        on_demand: OnDemandAnswer::Json(r#"{"ApiVersion":"1.0","NeedRecord":false}"#.into()),
        ..Behaviour::default()
    });
    let mut server = start("on_demand_url", 3000);
    add_on_demand_url(
        &server,
        &receiver,
        &[("NotifyReqAuth", "true"), ("NotifyAuthKey", AUTH_KEY)],
    );
    publish_encoded(&server.url("live", "no"));
    wait_publish_over(&mut server, "no", false);

    let asked = receiver.wait_until(T, "the question", |r| r.iter().any(|r| r.method == "GET"));
    let questions: Vec<_> = asked.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(questions.len(), 1, "asked once per publish");
    let q = questions[0];
    assert_eq!(q.path, "/ask");
    let param = |name: &str| q.query.get(name).map(String::as_str);
    assert_eq!(param("token"), Some("t"), "the URL's own query is kept");
    assert_eq!(param("app"), Some("live"));
    assert_eq!(param("domain"), Some(DOMAIN));
    assert_eq!(param("stream"), Some("no"));
    assert_eq!(param("codec"), Some("h264"));
    // ffmpeg writes videodatarate = bit_rate / 1024.
    assert_eq!(param("vbitrate"), Some("781"));
    let ts = q.header("ali-live-timestamp").expect("signed");
    let sig = q.header("ali-live-signature").expect("signed");
    let expected: String = md5::Md5::digest(format!("127.0.0.1|{ts}|{AUTH_KEY}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, expected);

    assert!(server.log_contains("on-demand answer: do not record"));
    assert!(server.recorded_for("live", "no", "mp4").is_empty());
    assert!(server.recorded_for("live", "no", "flv").is_empty());
    assert!(index_rows(&server.data_dir(), DOMAIN, "live", "no").is_empty());
}

#[test]
fn the_answer_chooses_formats_and_intervals() {
    let receiver = Receiver::start(Behaviour {
        on_demand: OnDemandAnswer::Json(
            r#"{"ApiVersion":"1.0","NeedRecord":true,"Format":["FLV"],"Interval":{"Flv":5}}"#
                .into(),
        ),
        ..Behaviour::default()
    });
    let mut server = start("on_demand_url", 3000);
    add_on_demand_url(&server, &receiver, &[]);
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "flvonly")).success());
    wait_publish_over(&mut server, "flvonly", true);
    let rows = wait_rows(&server, "flvonly", 2);
    // 10 s cut every 5 s (at the next keyframe): two FLV files and nothing else.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.format == "flv"), "{rows:?}");
    assert!(server.recorded_for("live", "flvonly", "mp4").is_empty());
    let files = server.recorded_for("live", "flvonly", "flv");
    assert_eq!(files.len(), 2);
    let video_frames: usize = files
        .iter()
        .map(|f| packets(Path::new("ffmpeg"), f).streams[0].len())
        .sum();
    assert_eq!(
        video_frames,
        recordable_counts(Path::new("ffmpeg"), &asset)[0]
    );
}

/// The publish's frames wait for the answer, so a recording the fallback starts holds every
/// frame from the first keyframe on, whatever the wait.
fn assert_whole_publish_recorded(server: &Server, stream: &str) {
    let asset = asset("h264_aac.flv");
    let expected = recordable_counts(Path::new("ffmpeg"), &asset);
    let rows = wait_rows(server, stream, 2);
    assert_eq!(rows.len(), 2, "one MP4 and one FLV: {rows:?}");
    for ext in ["mp4", "flv"] {
        let files = server.recorded_for("live", stream, ext);
        assert_eq!(files.len(), 1, "{stream}: {files:?}");
        let got = packets(Path::new("ffmpeg"), &files[0]);
        let counts: Vec<usize> = got.streams.iter().map(Vec::len).collect();
        assert_eq!(
            counts, expected,
            "{stream} {ext}: every frame from the first keyframe"
        );
        assert_decodes_cleanly(Path::new("ffmpeg"), &files[0]);
    }
}

#[test]
fn a_question_never_answered_still_records_the_whole_publish() {
    let receiver = Receiver::start(Behaviour {
        on_demand: OnDemandAnswer::Never,
        ..Behaviour::default()
    });
    let mut server = start("on_demand_url", 2000);
    add_on_demand_url(&server, &receiver, &[]);
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "silent")).success());
    wait_publish_over(&mut server, "silent", true);
    assert!(server.log_contains("on-demand URL did not answer in time; recording anyway"));
    assert_whole_publish_recorded(&server, "silent");
    // The files start when the publish did, not when the wait for the answer ended (2 s on).
    let published = server
        .logged_at(&["publish started", "live/silent"])
        .unwrap();
    let published_ms = wall_ms_of(published);
    for row in index_rows(&server.data_dir(), DOMAIN, "live", "silent") {
        assert!(
            (row.start_time - published_ms).abs() < 1000,
            "file starts at {} ms, publish at {published_ms} ms",
            row.start_time
        );
    }
}

/// Unix milliseconds of a moment the test saw.
fn wall_ms_of(at: std::time::Instant) -> i64 {
    let wall = std::time::SystemTime::now() - at.elapsed();
    wall.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn errors_invalid_answers_and_a_missing_url_record() {
    let receiver = Receiver::start(Behaviour {
        on_demand: OnDemandAnswer::Status(503),
        ..Behaviour::default()
    });
    let mut server = start("on_demand_url", 3000);
    let asset = asset("h264_aac.flv");
    // No notify config yet: recorded without asking.
    let nourl = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "nourl"),
        &[],
    );
    server.wait_for_lines(&["recording started", "live/nourl"], 1, T);
    add_on_demand_url(&server, &receiver, &[]);
    let failing = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "failing"),
        &[],
    );
    receiver.wait_until(T, "the failing question", |r| {
        r.iter().any(|r| r.method == "GET" && r.status == 503)
    });
    receiver.set(Behaviour {
        on_demand: OnDemandAnswer::Json(r#"{"NeedRecord":true,"Format":["mkv"]}"#.into()),
        ..Behaviour::default()
    });
    let invalid = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "invalid"),
        &[],
    );
    for mut child in [nourl, failing, invalid] {
        assert!(child.wait().unwrap().success());
    }
    for stream in ["nourl", "failing", "invalid"] {
        wait_publish_over(&mut server, stream, true);
    }
    assert!(server.log_contains("OnDemandUrl answered HTTP 503"));
    assert!(server.log_contains("unknown format \"mkv\""));
    let asked: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.method == "GET")
        .filter_map(|r| r.query.get("stream").cloned())
        .collect();
    assert_eq!(asked, ["failing", "invalid"], "no question without a URL");
    for stream in ["nourl", "failing", "invalid"] {
        assert_whole_publish_recorded(&server, stream);
    }
}

#[test]
fn on_demand_by_parameter_records_only_publishes_with_record_1() {
    let mut server = start("on_demand_param", 3000);
    let asset = asset("h264_aac.flv");
    let with = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &format!("{}?record=1", server.url("live", "with")),
        &[],
    );
    let without = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &format!("{}?record=0", server.url("live", "without")),
        &[],
    );
    for mut child in [with, without] {
        assert!(child.wait().unwrap().success());
    }
    wait_publish_over(&mut server, "with", true);
    wait_publish_over(&mut server, "without", false);
    assert_whole_publish_recorded(&server, "with");
    assert!(index_rows(&server.data_dir(), DOMAIN, "live", "without").is_empty());
    assert!(server.recorded_for("live", "without", "mp4").is_empty());
}
