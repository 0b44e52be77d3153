//! Viewers (issue 13, point 1): RTMP play and HTTP-FLV of live streams, with real ffmpeg as
//! publisher and as viewer; what the viewers saved is probed and decoded.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use liverec_api::ingest_auth::sign;
use support::*;

const DOMAIN: &str = "live.liverec.local";
const T: Duration = Duration::from_secs(60);
/// What one viewer keeps of the stream.
const VIEW_SECS: &str = "4";

/// A publisher looping `asset` into `app/stream` until dropped.
struct Looping(Child);

impl Drop for Looping {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn publish_looping(
    server: &Server,
    ffmpeg: &Path,
    asset: &Path,
    stream: &str,
    url: &str,
) -> Looping {
    let child = publish_child(ffmpeg, asset, url, &["-stream_loop", "-1"]);
    server.wait_for_lines(&["publish started", &format!("/live/{stream} ")], 1, T);
    Looping(child)
}

/// Starts `ffmpeg` saving `VIEW_SECS` of `url` into `out` (stream copy).
fn view(ffmpeg: &Path, url: &str, out: &Path) -> Child {
    Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-t", VIEW_SECS, "-c", "copy", "-f", "flv", "-y"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg")
}

/// Waits for a viewer; a viewer still running after `limit` is killed and fails the test.
fn finish(mut child: Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            eprintln!("{what}: {status} {stderr}");
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_flv(server: &Server, path_and_query: &str) -> String {
    format!("http://{}{path_and_query}", server.api_addr())
}

/// What a viewer saved: a playable stream of `VIEW_SECS` starting at a keyframe.
fn assert_viewed(file: &Path) {
    let p = probe(file);
    assert!(
        p.codecs.iter().any(|c| c == "h264") && p.codecs.iter().any(|c| c == "aac"),
        "{}: {p:?}",
        file.display()
    );
    assert!(
        p.video_frames > 50 && p.audio_frames > 50,
        "{}: {p:?}",
        file.display()
    );
    assert!(p.first_video_frame_is_key, "{}: {p:?}", file.display());
    assert!(
        p.duration > 3.0 && p.duration < 5.0,
        "{}: {} s",
        file.display(),
        p.duration
    );
    assert_decodes_cleanly(Path::new("ffmpeg"), file);
}

/// Plays `url` in ffplay for `wall` and returns the playback clock its last status line
/// showed (seconds), 0 if it never played. An error line fails the test.
fn ffplay_clock(url: &str, wall: Duration) -> f64 {
    let mut child = Command::new("ffplay")
        .args(["-hide_banner", "-loglevel", "info", "-stats", "-nodisp"])
        .arg(url)
        .env("SDL_AUDIODRIVER", "dummy")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffplay");
    std::thread::sleep(wall);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let mut clock = 0.0f64;
    for status in text.split(['\r', '\n']) {
        assert!(!status.contains("rror"), "ffplay {url}: {status}");
        // `  12.34 M-A:  0.000 fd=   0 aq=    8KB …` once audio plays.
        if let Some((time, rest)) = status.trim().split_once(" M-A:")
            && !rest.contains("aq=    0KB")
            && let Ok(t) = time.trim().parse::<f64>()
        {
            clock = clock.max(t);
        }
    }
    clock
}

#[test]
fn rtmp_and_http_flv_viewers_see_a_live_stream_from_a_keyframe() {
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("live", "s");
    let _publisher = publish_looping(
        &server,
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        "s",
        &url,
    );
    let ffmpeg = Path::new("ffmpeg");
    let outputs: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("v{i}.flv")))
        .collect();
    // Two of each at once: they share the stream.
    let viewers = vec![
        view(ffmpeg, &url, &outputs[0]),
        view(ffmpeg, &url, &outputs[1]),
        view(ffmpeg, &http_flv(&server, "/live/s.flv"), &outputs[2]),
        view(
            ffmpeg,
            &http_flv(&server, &format!("/live/s.flv?vhost={DOMAIN}")),
            &outputs[3],
        ),
    ];
    for (i, viewer) in viewers.into_iter().enumerate() {
        let status = finish(viewer, T, &format!("viewer {i}"));
        assert!(status.success(), "viewer {i}: {status}");
    }
    for out in &outputs {
        assert_viewed(out);
    }
    // ffplay, as a person would watch (no window or sound device here: SDL's dummy audio, and
    // -nodisp). It never exits on its own with a live input (nor with nginx-rtmp's), so it plays
    // for a while and its status line must show the clock advancing with audio queued.
    for url in [url.clone(), http_flv(&server, "/live/s.flv")] {
        let clock = ffplay_clock(&url, Duration::from_secs(6));
        assert!(clock > 3.0, "ffplay {url}: played {clock} s");
    }
    assert!(server.log_contains("play started"));
    assert!(server.log_contains("HTTP-FLV play started"));
}

#[test]
fn a_stream_nobody_publishes_is_refused_at_once() {
    let mut server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let status = finish(
        view(
            Path::new("ffmpeg"),
            &server.url("live", "nobody"),
            &dir.path().join("a.flv"),
        ),
        T,
        "RTMP viewer of nothing",
    );
    assert!(!status.success());
    let (code, body) = api::get(&http_flv(&server, "/live/nobody.flv"));
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("not live"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    server.wait_for_log("play refused", T);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_domain_with_aliauth_needs_a_play_url_signed_over_its_path() {
    const KEY: &str = "playKey12345";
    let server = Server::start_with_env("", &api::key_env());
    let functions = serde_json::json!([{"functionName": "aliauth", "functionArgs": [
        {"argName": "auth_type", "argValue": "type_a"},
        {"argName": "auth_key1", "argValue": KEY},
        {"argName": "ali_auth_delta", "argValue": "1800"},
    ]}])
    .to_string();
    api::ok(
        server.api_addr(),
        "BatchSetLiveDomainConfigs",
        &[("DomainNames", DOMAIN), ("Functions", &functions)],
    );
    let t = now();
    let publish_url = format!(
        "{}?auth_key={}",
        server.url("live", "s"),
        sign("live", "s", t, "0", "0", KEY)
    );
    let _publisher = publish_looping(
        &server,
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        "s",
        &publish_url,
    );
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = Path::new("ffmpeg");

    // Unsigned, or signed over the other protocol's path: refused.
    let unsigned = finish(
        view(ffmpeg, &server.url("live", "s"), &dir.path().join("u.flv")),
        T,
        "unsigned RTMP",
    );
    assert!(!unsigned.success());
    let (code, _) = api::get(&http_flv(&server, "/live/s.flv"));
    assert_eq!(code, 403);
    let rtmp_token = sign("live", "s", t, "0", "0", KEY);
    let flv_token = sign("live", "s.flv", t, "0", "0", KEY);
    let (code, _) = api::get(&http_flv(
        &server,
        &format!("/live/s.flv?auth_key={rtmp_token}"),
    ));
    assert_eq!(code, 403, "an RTMP token does not sign the .flv path");

    // Signed: played.
    let rtmp_out = dir.path().join("r.flv");
    let flv_out = dir.path().join("h.flv");
    let rtmp = view(
        ffmpeg,
        &format!("{}?auth_key={rtmp_token}", server.url("live", "s")),
        &rtmp_out,
    );
    let http = view(
        ffmpeg,
        &http_flv(&server, &format!("/live/s.flv?auth_key={flv_token}")),
        &flv_out,
    );
    assert!(finish(rtmp, T, "signed RTMP").success());
    assert!(finish(http, T, "signed HTTP-FLV").success());
    assert_viewed(&rtmp_out);
    assert_viewed(&flv_out);
}

/// Enhanced RTMP codecs reach viewers as Enhanced FLV, which ffmpeg 9 plays (Debian's 5.1
/// cannot read it).
#[test]
fn hevc_and_av1_streams_play_over_both_protocols() {
    let ffmpeg9 = ffmpeg9();
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    for (stream, asset_name, codec) in [
        ("hevc", "hevc_aac.flv", "hevc"),
        ("av1", "av1_aac.flv", "av1"),
    ] {
        let url = server.url("live", stream);
        let _publisher = publish_looping(&server, &ffmpeg9, &asset(asset_name), stream, &url);
        let rtmp_out = dir.path().join(format!("{stream}-rtmp.flv"));
        let flv_out = dir.path().join(format!("{stream}-http.flv"));
        let rtmp = view(&ffmpeg9, &url, &rtmp_out);
        let http = view(
            &ffmpeg9,
            &http_flv(&server, &format!("/live/{stream}.flv")),
            &flv_out,
        );
        assert!(finish(rtmp, T, "RTMP").success());
        assert!(finish(http, T, "HTTP-FLV").success());
        for out in [&rtmp_out, &flv_out] {
            let banner = banner(&ffmpeg9, out);
            assert!(
                banner.contains(&format!("Video: {codec}")),
                "{}: {banner}",
                out.display()
            );
            assert!(banner.contains("Audio: aac"), "{}: {banner}", out.display());
            assert_decodes_cleanly(&ffmpeg9, out);
            let packets = packets(&ffmpeg9, out);
            assert!(
                packets.streams.iter().all(|s| s.len() > 10),
                "{}: {packets:?}",
                out.display()
            );
        }
    }
}
