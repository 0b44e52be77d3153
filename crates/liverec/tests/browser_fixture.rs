//! The browser test peer itself: Debian's Chromium plays H.264/AAC as MP4 (progressive and
//! fragmented, with a seek) and as HLS (TS and CMAF segments, with hls.js and natively),
//! made by ffmpeg from a test asset and served with CORS and byte ranges by a server of the
//! test's own; a server without CORS is reported as such.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::browser::{MediaServer, Mode, PlayOpts, play};

const SIZE: (u32, u32) = (320, 240);

/// Remuxes the 10 s H.264/AAC asset (GOP 1 s) with Debian's ffmpeg into `dir/name`.
fn remux(dir: &Path, name: &str, args: &[&str]) {
    let out = dir.join(name);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
        .arg(support::asset("h264_aac.flv"))
        .args(["-c", "copy"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg {args:?} {name} failed");
}

/// HLS with 2 s segments (TS, or fMP4 with `fmp4`) in `dir/sub/index.m3u8`; returns the number
/// of segments in the playlist.
fn hls(dir: &Path, sub: &str, fmp4: bool) -> u64 {
    let seg = dir
        .join(sub)
        .join(if fmp4 { "seg_%03d.m4s" } else { "seg_%03d.ts" });
    let seg = seg.to_str().unwrap();
    let mut args = vec![
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        seg,
    ];
    if fmp4 {
        args.extend([
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
        ]);
    }
    remux(dir, &format!("{sub}/index.m3u8"), &args);
    let playlist = std::fs::read_to_string(dir.join(sub).join("index.m3u8")).unwrap();
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXTINF"))
        .count() as u64
}

fn mp4_opts() -> PlayOpts {
    PlayOpts {
        seek: Some(6.3),
        size: Some(SIZE),
        audio: true,
        ..PlayOpts::default()
    }
}

fn hls_opts() -> PlayOpts {
    PlayOpts {
        size: Some(SIZE),
        audio: true,
        // To the end of 10 s in 5.
        rate: 2.0,
        ..PlayOpts::default()
    }
}

#[test]
fn progressive_mp4_plays_and_seeks_through_byte_ranges() {
    let dir = tempfile::tempdir().unwrap();
    remux(dir.path(), "progressive.mp4", &["-movflags", "+faststart"]);
    let server = MediaServer::start(dir.path());
    let r = play(Mode::Mp4, &server.url("progressive.mp4"), &mp4_opts());
    r.assert_ok();
    // Debian's chromium decodes H.264 and AAC (proprietary codecs built in).
    assert_eq!(r.json["codecs"]["h264_aac_mp4"]["canPlayType"], "probably");
    assert_eq!(r.json["codecs"]["h264_aac_mp4"]["mse"], true);
    assert_eq!(r.engine, "video");
    assert_eq!(r.video_size, SIZE);
    assert!(r.audio_decoded_bytes > 0);
    let landed = r.seek_landed.unwrap();
    assert!((landed - 6.3).abs() <= 0.25, "{landed}");
    assert!(r.current_time > landed, "{r:?}");
    assert!(
        server.served().iter().any(|s| s.status == 206),
        "{:?}",
        server.served()
    );
}

#[test]
fn fragmented_mp4_plays_and_seeks() {
    let dir = tempfile::tempdir().unwrap();
    remux(
        dir.path(),
        "fragmented.mp4",
        &["-movflags", "+frag_keyframe+empty_moov+default_base_moof"],
    );
    let server = MediaServer::start(dir.path());
    let r = play(Mode::Mp4, &server.url("fragmented.mp4"), &mp4_opts());
    r.assert_ok();
    assert_eq!(r.video_size, SIZE);
    assert!((r.seek_landed.unwrap() - 6.3).abs() <= 0.25);
}

#[test]
fn hls_ts_plays_to_the_end_with_hls_js() {
    let dir = tempfile::tempdir().unwrap();
    let segments = hls(dir.path(), "ts", false);
    let server = MediaServer::start(dir.path());
    let r = play(Mode::Hls, &server.url("ts/index.m3u8"), &hls_opts());
    r.assert_ok();
    assert_eq!(r.engine, "hls.js");
    assert!(r.ended);
    assert_eq!(r.fragments_in_playlist, Some(segments));
    assert_eq!(r.fragments_loaded, Some(segments));
    let duration = r.duration.unwrap();
    assert!((duration - 10.0).abs() < 0.5, "{duration}");
    assert!((r.current_time - duration).abs() < 0.5, "{r:?}");
}

#[test]
fn cmaf_hls_plays_to_the_end_with_hls_js() {
    let dir = tempfile::tempdir().unwrap();
    let segments = hls(dir.path(), "cmaf", true);
    assert!(dir.path().join("cmaf/init.mp4").exists());
    let server = MediaServer::start(dir.path());
    let r = play(Mode::Hls, &server.url("cmaf/index.m3u8"), &hls_opts());
    r.assert_ok();
    assert_eq!(r.engine, "hls.js");
    assert_eq!(r.fragments_loaded, Some(segments));
    assert!(
        server.served().iter().any(|s| s.path == "/cmaf/init.mp4"),
        "{:?}",
        server.served()
    );
}

#[test]
fn hls_ts_plays_natively() {
    let dir = tempfile::tempdir().unwrap();
    let segments = hls(dir.path(), "ts", false);
    let server = MediaServer::start(dir.path());
    let opts = PlayOpts {
        native: true,
        ..hls_opts()
    };
    let r = play(Mode::Hls, &server.url("ts/index.m3u8"), &opts);
    r.assert_ok();
    assert_eq!(r.engine, "native");
    assert_eq!(r.fragments_loaded, Some(segments));
}

#[test]
fn a_media_server_without_cors_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    remux(dir.path(), "progressive.mp4", &["-movflags", "+faststart"]);
    let server = MediaServer::start_without_cors(dir.path());
    let r = play(Mode::Mp4, &server.url("progressive.mp4"), &mp4_opts());
    assert!(!r.ok, "{:?}", r.json);
    let cors = r.cors_error.as_deref().unwrap_or_default();
    assert!(cors.contains("Access-Control-Allow-Origin"), "{:?}", r.json);
    assert!(
        r.error.as_deref().unwrap().starts_with("CORS error"),
        "{:?}",
        r.error
    );
}

/// One raw HTTP/1.1 request; returns the head (lowercased) and the body.
fn http(addr: &str, request: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "{request}Host: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    (head, raw[split + 4..].to_vec())
}

#[test]
fn media_server_answers_ranges_cors_and_preflights() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(dir.path().join("a.mp4"), &data).unwrap();
    let server = MediaServer::start(dir.path());
    let url = server.url("a.mp4");
    let addr = url.trim_start_matches("http://").split('/').next().unwrap();

    let (head, body) = http(addr, "GET /a.mp4 HTTP/1.1\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(head.contains("accept-ranges: bytes"), "{head}");
    assert!(head.contains("content-type: video/mp4"), "{head}");
    assert_eq!(body, data);

    let (head, body) = http(addr, "GET /a.mp4 HTTP/1.1\r\nRange: bytes=100-199\r\n");
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(head.contains("content-range: bytes 100-199/1000"), "{head}");
    assert_eq!(body, &data[100..200]);
    let (_, body) = http(addr, "GET /a.mp4 HTTP/1.1\r\nRange: bytes=990-\r\n");
    assert_eq!(body, &data[990..]);
    let (_, body) = http(addr, "GET /a.mp4 HTTP/1.1\r\nRange: bytes=-10\r\n");
    assert_eq!(body, &data[990..]);
    let (head, _) = http(addr, "GET /a.mp4 HTTP/1.1\r\nRange: bytes=1000-\r\n");
    assert!(head.starts_with("http/1.1 416"), "{head}");
    assert!(head.contains("content-range: bytes */1000"), "{head}");

    let (head, body) = http(addr, "HEAD /a.mp4 HTTP/1.1\r\n");
    assert!(head.contains("content-length: 1000"), "{head}");
    assert!(body.is_empty());
    let (head, _) = http(
        addr,
        "OPTIONS /a.mp4 HTTP/1.1\r\nOrigin: http://127.0.0.1:1\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: range\r\n",
    );
    assert!(head.starts_with("http/1.1 204"), "{head}");
    assert!(
        head.contains("access-control-allow-headers: range"),
        "{head}"
    );
    let (head, _) = http(addr, "GET /missing.mp4 HTTP/1.1\r\n");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    let (head, _) = http(addr, "GET /../a.mp4 HTTP/1.1\r\n");
    assert!(head.starts_with("http/1.1 404"), "{head}");

    assert_eq!(server.served().len(), 9);
}
