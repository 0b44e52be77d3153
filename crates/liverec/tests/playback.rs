//! RecordUrls in a real browser: liverec records 30 s of the test asset as MP4, HLS (TS) and
//! CMAF; the RecordUrls come from DescribeLiveStreamRecordIndexFiles (a signed API call);
//! headless Chromium plays the MP4 and seeks in it (byte ranges), and plays both playlists
//! to the end with hls.js (signed segment URLs, CORS). A tampered URL fails in the browser.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::api;
use support::browser::{Mode, PlayOpts, play};

const DOMAIN: &str = "play.example.com";
const APP: &str = "live";
const STREAM: &str = "cam";
const SIZE: (u32, u32) = (320, 240);
/// Three passes of the 10 s asset.
const RECORDED_SECS: f64 = 30.0;

/// The config: every format in one file each (the cycle outlasts the recording), 4 s slices,
/// and a short DelayTime so the files are made soon after the publisher leaves.
const CONFIG: &str = r#"
[record]
delay_secs = 1
formats = [
  { format = "mp4" },
  { format = "m3u8", slice_secs = 4 },
  { format = "cmaf", slice_secs = 4 },
]
"#;

/// The index rows of the stream, once all three files are indexed.
fn index_rows(server: &support::Server, since: i64) -> Vec<serde_json::Value> {
    let start = api::utc(since - 60);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let end = api::utc(api::now_secs() + 60);
        let body = api::ok(
            server.api,
            "DescribeLiveStreamRecordIndexFiles",
            &[
                ("DomainName", DOMAIN),
                ("AppName", APP),
                ("StreamName", STREAM),
                ("StartTime", &start),
                ("EndTime", &end),
            ],
        );
        let rows = body["RecordIndexInfoList"]["RecordIndexInfo"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if rows.len() >= 3 {
            assert_eq!(rows.len(), 3, "{body}");
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "3 index rows expected, have {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn url_of(rows: &[serde_json::Value], format: &str) -> String {
    let row = rows
        .iter()
        .find(|r| r["Format"] == format)
        .unwrap_or_else(|| panic!("no {format} row in {rows:?}"));
    assert_eq!(
        (row["Width"].as_u64(), row["Height"].as_u64()),
        (Some(320), Some(240))
    );
    let duration = row["Duration"].as_f64().unwrap();
    assert!(
        (duration - RECORDED_SECS).abs() < 1.0,
        "{format}: {duration} s"
    );
    row["RecordUrl"].as_str().unwrap().to_owned()
}

/// The same URL with the last hex digit of its signature changed.
fn tampered(url: &str) -> String {
    let last = url.chars().last().unwrap();
    let swapped = if last == '0' { '1' } else { '0' };
    format!("{}{swapped}", &url[..url.len() - 1])
}

#[test]
fn record_urls_play_seek_and_refuse_tampering_in_chromium() {
    support::browser::require_browser();
    let env = api::key_env();
    let mut server = support::Server::start_with_env(CONFIG, &env);
    let since = api::now_secs();
    let url = format!("{}?vhost={DOMAIN}", server.url(APP, STREAM));
    let mut publisher = support::publish_child(
        std::path::Path::new("ffmpeg"),
        &support::asset("h264_aac.flv"),
        &url,
        &["-stream_loop", "2"],
    );
    assert!(publisher.wait().unwrap().success(), "ffmpeg publish failed");
    let rows = index_rows(&server, since);
    let mp4 = url_of(&rows, "mp4");
    let ts = url_of(&rows, "m3u8");
    let cmaf = url_of(&rows, "cmaf");
    for url in [&mp4, &ts, &cmaf] {
        assert!(
            url.starts_with(&format!(
                "http://127.0.0.1:{}/vod/default/",
                server.api.port()
            )),
            "{url}"
        );
    }

    // MP4: plays, seeks to 20 s through byte ranges, plays on.
    let r = play(
        Mode::Mp4,
        &mp4,
        &PlayOpts {
            seek: Some(20.0),
            size: Some(SIZE),
            audio: true,
            ..PlayOpts::default()
        },
    );
    r.assert_ok();
    assert_eq!(r.engine, "video");
    let landed = r.seek_landed.unwrap();
    assert!((landed - 20.0).abs() <= 0.25, "seek landed at {landed}");
    assert!(r.current_time > landed, "{r:?}");
    assert!(
        (r.duration.unwrap() - RECORDED_SECS).abs() < 1.0,
        "{:?}",
        r.duration
    );
    assert!(r.partial_responses > 0, "no byte-range answer: {}", r.json);
    assert!(r.cors_error.is_none());

    // HLS (TS) and CMAF with hls.js, to the end: every signed segment loads.
    for (what, url) in [("TS", &ts), ("CMAF", &cmaf)] {
        let r = play(
            Mode::Hls,
            url,
            &PlayOpts {
                size: Some(SIZE),
                audio: true,
                rate: 2.0,
                ..PlayOpts::default()
            },
        );
        r.assert_ok();
        assert_eq!(r.engine, "hls.js", "{what}");
        assert!(r.ended, "{what}: {r:?}");
        let loaded = r.fragments_loaded.unwrap();
        assert!(loaded >= 7, "{what}: {loaded} fragments");
        assert_eq!(Some(loaded), r.fragments_in_playlist, "{what}");
        assert!(
            (r.duration.unwrap() - RECORDED_SECS).abs() < 1.0,
            "{what}: {:?}",
            r.duration
        );
        assert!(r.cors_error.is_none(), "{what}");
    }

    // A tampered URL is refused (403) and the browser reports the failure, not a CORS error.
    assert_eq!(api::get(&mp4).0, 200);
    for (mode, url) in [(Mode::Mp4, tampered(&mp4)), (Mode::Hls, tampered(&ts))] {
        assert_eq!(api::get(&url).0, 403, "{url}");
        let r = play(
            mode,
            &url,
            &PlayOpts {
                timeout: Duration::from_secs(20),
                ..PlayOpts::default()
            },
        );
        assert!(!r.ok, "{mode:?} played a tampered URL: {}", r.json);
        assert!(r.cors_error.is_none(), "{}", r.json);
        assert_eq!(r.decoded_frames, 0, "{}", r.json);
        let refused = r.json["http_errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == 403);
        assert!(refused, "{mode:?}: no 403 among {}", r.json);
    }

    assert!(server.terminate(Duration::from_secs(20)), "unclean exit");
}
