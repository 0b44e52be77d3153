//! Record callbacks end to end: real ffmpeg publishes, a real HTTP receiver that fails, is
//! slow or is down, and the server killed and restarted in between. Every recorded file has
//! exactly one index row and at least one callback, all attempts of it with the same
//! Idempotency-Key; bodies and signatures are checked against API.md independently of the
//! server's code.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};
use support::receiver::{Behaviour, Received, Receiver};
use support::*;

const T: Duration = Duration::from_secs(60);
const DOMAIN: &str = "live.liverec.local";
const AUTH_KEY: &str = "k3yForCallbacks2026";

/// The test key for the API, a built-in config cutting MP4 files every 3 s with a 1 s delay,
/// and short callback backoff so tests do not wait minutes.
fn config(extra: &str) -> String {
    format!(
        "[record]\ndelay_secs = 1\nformats = [{{ format = \"mp4\", cycle_secs = 3 }}]\n\
         [notify]\nretry_max_interval_secs = 1\n{extra}"
    )
}

fn start(extra: &str) -> Server {
    Server::start_with_env(&config(extra), &api::key_env())
}

fn add_notify_config(server: &Server, url: &str, extra: &[(&str, &str)]) {
    let mut params = vec![("DomainName", DOMAIN), ("NotifyUrl", url)];
    params.extend_from_slice(extra);
    api::ok(server.api_addr(), "AddLiveRecordNotifyConfig", &params);
}

fn rows(server: &Server, stream: &str) -> Vec<liverec_catalog::RecordingRow> {
    index_rows(&server.data_dir(), DOMAIN, "live", stream)
}

/// The callbacks about `stream`'s files, by Idempotency-Key (every attempt).
fn file_callbacks(receiver: &Receiver, stream: &str) -> BTreeMap<String, Vec<Received>> {
    let mut by_key: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for r in receiver.callbacks() {
        let body = r.json();
        if body["stream"] == stream && body.get("uri").is_some() {
            let key = r.header("idempotency-key").unwrap_or_default().to_owned();
            by_key.entry(key).or_default().push(r);
        }
    }
    by_key
}

/// Waits until every index row of `stream` (at least `min_rows`) has a delivered callback.
fn wait_for_every_file(
    server: &Server,
    receiver: &Receiver,
    stream: &str,
    min_rows: usize,
    timeout: Duration,
) -> (
    Vec<liverec_catalog::RecordingRow>,
    BTreeMap<String, Vec<Received>>,
) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let rows = rows(server, stream);
        let callbacks = file_callbacks(receiver, stream);
        let delivered = |id: &str| {
            callbacks
                .get(id)
                .is_some_and(|attempts| attempts.iter().any(|a| a.status == 200))
        };
        if rows.len() >= min_rows && rows.iter().all(|r| delivered(&r.record_id)) {
            return (rows, callbacks);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every file's callback was delivered within {timeout:?}: rows {:?}, callbacks {:?}",
            rows.iter().map(|r| &r.record_id).collect::<Vec<_>>(),
            callbacks.keys().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn every_file_gets_one_row_and_callbacks_with_one_event_id_body_and_signature() {
    // The receiver answers slowly (under the 5 s timeout) and fails the first three
    // callbacks: those events are retried, the others delivered once.
    let receiver = Receiver::start(Behaviour {
        fail_first: 3,
        delay: Duration::from_millis(700),
        ..Behaviour::default()
    });
    let server = start("");
    add_notify_config(
        &server,
        &receiver.url("/cb?token=t1"),
        &[("NotifyReqAuth", "true"), ("NotifyAuthKey", AUTH_KEY)],
    );
    let asset = asset("h264_aac.flv");
    let url = format!(
        "{}?callback_user=42&callback_room=7&other=x",
        server.url("live", "cb")
    );
    assert!(publish(Path::new("ffmpeg"), &asset, &url).success());

    let (rows, callbacks) = wait_for_every_file(&server, &receiver, "cb", 2, T);
    // One row per file, each with one event id; no callback names a file without a row.
    let ids: HashSet<&str> = rows.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "one row per file");
    assert_eq!(
        callbacks.keys().map(String::as_str).collect::<HashSet<_>>(),
        ids,
        "callbacks are exactly the files"
    );
    let retried = callbacks.values().filter(|a| a.len() > 1).count();
    assert!(retried >= 1, "the failing receiver made some events retry");

    for row in &rows {
        let attempts = &callbacks[&row.record_id];
        let delivered = attempts.iter().filter(|a| a.status == 200).count();
        assert_eq!(delivered, 1, "delivered once: {}", row.record_id);
        for a in attempts {
            assert_eq!(a.method, "POST");
            assert_eq!(a.path, "/cb");
            assert_eq!(a.query.get("token").map(String::as_str), Some("t1"));
            assert_eq!(a.header("content-type"), Some("application/json"));
            // API.md: md5("{host}|{timestamp}|{key}"), host without port.
            let ts = a.header("ali-live-timestamp").expect("timestamp header");
            let sig = a.header("ali-live-signature").expect("signature header");
            assert_eq!(sig, md5_hex(&format!("127.0.0.1|{ts}|{AUTH_KEY}")));
            let body = a.json();
            assert_eq!(body["domain"], DOMAIN);
            assert_eq!(body["app"], "live");
            assert_eq!(body["stream"], "cb");
            assert_eq!(body["uri"], row.oss_object.as_str());
            assert_eq!(body["start_time"], row.start_time / 1000);
            assert_eq!(body["stop_time"], row.end_time / 1000);
            let duration = body["duration"].as_f64().unwrap();
            assert!(
                (duration - row.duration_secs).abs() < 0.001,
                "{duration} vs {row:?}"
            );
            assert_eq!(
                body["push_args"],
                serde_json::json!({"callback_user": "42", "callback_room": "7"})
            );
            // Every attempt sends the same body.
            assert_eq!(a.body, attempts[0].body);
        }
    }
}

#[test]
fn a_receiver_down_through_a_crash_gets_everything_once_back() {
    let mut receiver = Receiver::start(Behaviour::default());
    let mut server = start("");
    add_notify_config(&server, &receiver.url("/down"), &[]);
    receiver.go_down();
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "down")).success());
    server.wait_for_log("callback not delivered; will retry", T);
    // Killed while callbacks wait in the outbox: they survive in the database.
    server.kill_9();
    server.restart();
    std::thread::sleep(Duration::from_secs(30));
    assert!(
        receiver.callbacks().is_empty(),
        "nothing got through while down"
    );
    receiver.come_back();
    let (rows, callbacks) = wait_for_every_file(&server, &receiver, "down", 2, T);
    for row in &rows {
        let delivered = callbacks[&row.record_id]
            .iter()
            .filter(|a| a.status == 200)
            .count();
        assert_eq!(delivered, 1, "{}", row.record_id);
    }
    let (_, metrics) = server.http_get("/metrics");
    assert!(metrics.contains("liverec_callbacks_pending 0"), "{metrics}");
}

#[test]
fn a_given_up_callback_is_visible_and_resent_from_the_cli() {
    let mut receiver = Receiver::start(Behaviour::default());
    // 0.002 h = 7.2 s of retries.
    let mut server = start("retry_hours = 0.002");
    add_notify_config(&server, &receiver.url("/late"), &[]);
    receiver.go_down();
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "late")).success());
    // The recording's last file comes a DelayTime after the publish: every file must exist
    // before the given-up callbacks are counted.
    server.wait_for_lines(&["recording ends; generating files"], 1, T);
    server.wait_for_lines(&["callback given up after its retry window"], 1, T);
    let deadline = std::time::Instant::now() + T;
    let failed = loop {
        let (_, metrics) = server.http_get("/metrics");
        let failed: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("liverec_callbacks_failed "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        let files = index_rows(&server.data_dir(), "live.liverec.local", "live", "late").len();
        if failed >= 2 && failed == files as u64 && metrics.contains("liverec_callbacks_pending 0")
        {
            break failed;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    };
    receiver.come_back();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liverec"))
        .args(["notify", "resend", "--failed", "--config"])
        .arg(server.dir.path().join("liverec.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("{failed} callback(s) queued again")),
        "{said}"
    );
    let (rows, _) = wait_for_every_file(&server, &receiver, "late", 2, T);
    assert_eq!(rows.len() as u64, failed);
    server.kill_9();
}

#[test]
fn a_dead_receiver_of_one_domain_does_not_hold_up_another() {
    // One attempt at a time per domain: the hanging receiver holds its domain's only slot.
    let hanging = Receiver::start(Behaviour {
        delay: Duration::from_secs(3600),
        ..Behaviour::default()
    });
    let fine = Receiver::start(Behaviour::default());
    let server = start("per_domain_concurrency = 1\ntimeout_secs = 600");
    add_notify_config(&server, &hanging.url("/hang"), &[]);
    api::ok(
        server.api_addr(),
        "AddLiveRecordNotifyConfig",
        &[
            ("DomainName", "other.example"),
            ("NotifyUrl", &fine.url("/fine")),
        ],
    );
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "slow")).success());
    hanging.wait_until(T, "the first callback to hang", |got| {
        got.iter().any(|r| r.method == "POST")
    });
    let other = format!("{}?vhost=other.example", server.url("live", "fast"));
    assert!(publish(Path::new("ffmpeg"), &asset, &other).success());
    let rows = {
        let deadline = std::time::Instant::now() + T;
        loop {
            let rows = index_rows(&server.data_dir(), "other.example", "live", "fast");
            let got = fine.callbacks();
            if rows.len() >= 2
                && rows.iter().all(|r| {
                    got.iter()
                        .any(|c| c.header("idempotency-key") == Some(r.record_id.as_str()))
                })
            {
                break rows;
            }
            assert!(std::time::Instant::now() < deadline, "{rows:?} {got:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // The other domain's files were all announced while the first domain's receiver still
    // held its one callback (its 600 s timeout has not passed: it has not seen a second one).
    assert_eq!(
        hanging.callbacks().len(),
        1,
        "the hanging receiver got one request"
    );
    assert!(!rows.is_empty());
}

#[test]
fn status_callbacks_follow_the_recording_and_report_lost_data() {
    let receiver = Receiver::start(Behaviour::default());
    let server = start("");
    add_notify_config(
        &server,
        &receiver.url("/status"),
        &[("NeedStatusNotify", "true")],
    );
    let command = |command: &str| {
        api::ok(
            server.api_addr(),
            "RealTimeRecordCommand",
            &[
                ("DomainName", DOMAIN),
                ("AppName", "live"),
                ("StreamName", "st"),
                ("Command", command),
            ],
        );
    };
    let asset = asset("h264_aac.flv");
    let mut ffmpeg = publish_child(Path::new("ffmpeg"), &asset, &server.url("live", "st"), &[]);
    receiver.wait_for_status(T, "st", "record_started", 1);
    command("stop");
    receiver.wait_for_status(T, "st", "record_paused", 1);
    command("start");
    receiver.wait_for_status(T, "st", "record_resumed", 1);

    // The spool becomes unusable: the next file (MP4 cut every 3 s) cannot open, and the
    // recording loses data until the spool is back.
    // The resumed recording opens its file in the spool at its first keyframe: wait for it
    // (the spool directory is made by the first file, which can be after "record_resumed").
    let bucket = server.data_dir().join("buckets/default");
    let deadline = std::time::Instant::now() + T;
    while !std::fs::read_dir(bucket.join(".spool"))
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no file in the spool within {T:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::rename(bucket.join(".spool"), bucket.join(".spool-away")).unwrap();
    std::fs::write(bucket.join(".spool"), b"not a directory").unwrap();
    receiver.wait_for_status(T, "st", "record_error", 1);
    std::fs::remove_file(bucket.join(".spool")).unwrap();
    std::fs::rename(bucket.join(".spool-away"), bucket.join(".spool")).unwrap();

    assert!(ffmpeg.wait().unwrap().success());
    receiver.wait_for_status(T, "st", "record_paused", 2);
    let events = receiver.status_events("st");
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "record_started",
            "record_paused",
            "record_resumed",
            "record_error",
            "record_paused"
        ]
    );
    for (_, body) in &events {
        assert_eq!(body["domain"], DOMAIN);
        assert_eq!(body["app"], "live");
    }
    let error = &events[3].1;
    assert!(
        error["description"]
            .as_str()
            .is_some_and(|d| d.contains("mp4") && d.contains("cannot open")),
        "{error}"
    );
    // Each event is its own delivery.
    let keys: HashSet<String> = receiver
        .callbacks()
        .iter()
        .filter(|r| r.json().get("event").is_some())
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), events.len());
}
