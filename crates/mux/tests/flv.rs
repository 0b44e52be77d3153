//! The FLV muxer against real decoders: each test asset is read with the media crate's FLV
//! reader, re-muxed with `mux::flv::Muxer`, and checked with ffprobe / ffmpeg 5.1 (H.264,
//! AAC) or ffmpeg 9 (Enhanced FLV: HEVC, AV1). Every check fails if a peer is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::BytesMut;
use liverec_media::flv::{FileMedia, read_file_frames};
use liverec_mux::flv::Muxer;
use liverec_testkit::{assert_decodes_cleanly, asset_bytes, ffmpeg9, ffprobe_streams};

/// The assets are 10 s long.
const EXPECTED_DURATION_S: f64 = 10.0;
/// Allowed distance of the reported duration from [`EXPECTED_DURATION_S`].
const DURATION_TOLERANCE_S: f64 = 0.3;

/// Re-muxes an asset into an FLV file in a temp dir, with the finish patches applied.
fn remux(name: &str, dir: &Path) -> (PathBuf, FileMedia) {
    let media = read_file_frames(&asset_bytes(name)).expect("asset parses");
    let mut muxer = Muxer::new(&media.tracks);
    let mut out = BytesMut::new();
    muxer.header(&mut out);
    for frame in &media.frames {
        muxer.push(frame, &mut out).expect("push");
    }
    let patches = muxer.finish(&mut out);
    let mut file = out.to_vec();
    assert_eq!(muxer.bytes_written(), file.len() as u64);
    for p in patches {
        let at = usize::try_from(p.offset).expect("offset");
        file[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
    }
    let path = dir.join(name);
    std::fs::write(&path, &file).expect("write");
    (path, media)
}

fn assert_duration(seconds: f64, file: &Path) {
    assert!(
        (seconds - EXPECTED_DURATION_S).abs() <= DURATION_TOLERANCE_S,
        "{}: duration {seconds}",
        file.display()
    );
}

/// ffmpeg 9 has no ffprobe next to it: read `-i`'s banner (`Duration: HH:MM:SS.cc`,
/// `Stream #0:n: Video: hevc ...`).
fn ffmpeg9_probe(ffmpeg: &Path, file: &Path) -> (Vec<String>, f64) {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", ffmpeg.display()));
    let text = String::from_utf8_lossy(&out.stderr);
    let mut codecs = Vec::new();
    let mut duration = f64::NAN;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Duration: ") {
            let hms = rest.split(',').next().unwrap_or("");
            let parts: Vec<f64> = hms.split(':').filter_map(|p| p.parse().ok()).collect();
            if let [h, m, s] = parts[..] {
                duration = h * 3600.0 + m * 60.0 + s;
            }
        } else if line.starts_with("Stream #") {
            for kind in ["Video: ", "Audio: "] {
                if let Some(i) = line.find(kind) {
                    let codec = line[i + kind.len()..]
                        .split([' ', ','])
                        .next()
                        .unwrap_or("");
                    codecs.push(codec.to_owned());
                }
            }
        }
    }
    (codecs, duration)
}

fn check_legacy(name: &str, expected_codecs: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, media) = remux(name, dir.path());
    assert!(!media.frames.is_empty());
    let (codecs, duration) = ffprobe_streams(&file);
    assert_eq!(codecs, expected_codecs, "{name}");
    assert_duration(duration, &file);
    assert_decodes_cleanly(Path::new("ffmpeg"), &file);
}

fn check_enhanced(name: &str, expected_codecs: &[&str]) {
    let ffmpeg = ffmpeg9();
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = remux(name, dir.path());
    let (codecs, duration) = ffmpeg9_probe(&ffmpeg, &file);
    assert_eq!(codecs, expected_codecs, "{name}");
    assert_duration(duration, &file);
    assert_decodes_cleanly(&ffmpeg, &file);
}

#[test]
fn h264_aac_plays_in_ffmpeg_5() {
    check_legacy("h264_aac.flv", &["h264", "aac"]);
}

#[test]
fn h264_only_plays_in_ffmpeg_5() {
    check_legacy("h264_only.flv", &["h264"]);
}

#[test]
fn aac_only_plays_in_ffmpeg_5() {
    check_legacy("aac_only.flv", &["aac"]);
}

#[test]
fn hevc_aac_plays_in_ffmpeg_9() {
    check_enhanced("hevc_aac.flv", &["hevc", "aac"]);
}

#[test]
fn av1_aac_plays_in_ffmpeg_9() {
    check_enhanced("av1_aac.flv", &["av1", "aac"]);
}

#[test]
fn remuxed_file_reads_back_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["h264_aac.flv", "hevc_aac.flv", "av1_aac.flv"] {
        let (file, media) = remux(name, dir.path());
        let again = read_file_frames(&std::fs::read(&file).expect("read")).expect("parse");
        assert_eq!(again.tracks, media.tracks, "{name}");
        let first = media.frames.first().map_or(0, |f| f.dts);
        assert_eq!(again.frames.len(), media.frames.len(), "{name}");
        for (a, b) in again.frames.iter().zip(&media.frames) {
            assert_eq!(a.dts, (b.dts - first).max(0), "{name}");
            assert_eq!(
                (a.cts, a.keyframe, &a.data),
                (b.cts, b.keyframe, &b.data),
                "{name}"
            );
        }
    }
}
