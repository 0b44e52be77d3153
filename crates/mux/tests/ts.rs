//! End to end: the frames of a test asset → `ts::Muxer` segments cut at keyframes every
//! ≥ 2 s → `.ts` files plus an `hls::MediaPlaylist` in a temp dir → real ffmpeg/ffprobe.
//! H.264/AAC against Debian's ffmpeg 5.1, HEVC against ffmpeg 9. A missing peer fails the
//! test.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::BytesMut;
use liverec_media::flv::read_file_frames;
use liverec_media::{Frame, TrackKind, Tracks};
use liverec_mux::hls::MediaPlaylist;
use liverec_mux::ts::{self, MuxError, Muxer, PACKET_SIZE};
use liverec_testkit::{asset, decode_errors, ffmpeg9, ffprobe_streams};
use tempfile::TempDir;

/// Segments are cut at the first keyframe this long after the segment's start.
const MIN_SEGMENT_MS: i64 = 2000;
/// How far the playlist's duration may be from the source's.
const DURATION_TOLERANCE_SECS: f64 = 0.3;
const PLAYLIST: &str = "index.m3u8";

/// Runs a peer; returns (exit success, stdout, stderr). Panics if it cannot start.
fn run(program: &Path, args: &[&str]) -> (bool, String, String) {
    // `output()` gives the child a closed stdin, so ffmpeg never waits for keys.
    let out = Command::new(program).args(args).output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("cannot run {}: {e}", program.display()),
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A recording made of an asset.
struct Recorded {
    _dir: Option<TempDir>,
    playlist: PathBuf,
    segments: Vec<PathBuf>,
    video_frames: usize,
    audio_frames: usize,
    tracks: Tracks,
}

/// Muxes `asset` the way the recorder does: a new segment at the first keyframe (of the
/// video track, or any audio frame without video) ≥ [`MIN_SEGMENT_MS`] after the current
/// segment's start; the playlist is rendered after every finished segment, and closed.
fn record(asset_name: &str) -> Recorded {
    let data = match std::fs::read(asset(asset_name)) {
        Ok(data) => data,
        Err(e) => panic!("{asset_name}: {e}"),
    };
    let media = match read_file_frames(&data) {
        Ok(media) => media,
        Err(e) => panic!("{asset_name}: {e}"),
    };
    let mut muxer = match Muxer::new(&media.tracks) {
        Ok(muxer) => muxer,
        Err(e) => panic!("{asset_name}: {e}"),
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let has_video = media.tracks.video.is_some();
    let cut_track = if has_video {
        TrackKind::Video
    } else {
        TrackKind::Audio
    };

    let mut playlist = MediaPlaylist {
        min_target_duration: 2,
        ..MediaPlaylist::default()
    };
    let mut segments = Vec::new();
    let mut out = BytesMut::new();
    let mut segment_start: Option<i64> = None;
    let (mut video_frames, mut audio_frames) = (0, 0);
    // Last dts and last frame interval per track, to end the last segment.
    let mut last = [(0i64, 0i64); 2];

    for frame in &media.frames {
        let starts_segment = frame.track == cut_track
            && frame.keyframe
            && segment_start.is_none_or(|start| frame.dts - start >= MIN_SEGMENT_MS);
        if segment_start.is_none() && !starts_segment {
            continue; // before the first keyframe
        }
        if starts_segment {
            if let Some(start) = segment_start {
                finish_segment(
                    &dir,
                    &mut out,
                    &mut segments,
                    &mut playlist,
                    start,
                    frame.dts,
                );
            }
            segment_start = Some(frame.dts);
            muxer.start_segment(&mut out);
        }
        if let Err(e) = muxer.push(frame, &mut out) {
            panic!("{asset_name}: frame at {}: {e}", frame.dts);
        }
        match frame.track {
            TrackKind::Video => video_frames += 1,
            TrackKind::Audio => audio_frames += 1,
        }
        let slot = &mut last[usize::from(frame.track == TrackKind::Audio)];
        *slot = (frame.dts, frame.dts - slot.0);
    }
    let end = last
        .iter()
        .map(|&(dts, interval)| dts + interval)
        .max()
        .unwrap_or_default();
    if let Some(start) = segment_start {
        finish_segment(&dir, &mut out, &mut segments, &mut playlist, start, end);
    }
    playlist.ended = true;
    let playlist_path = dir.path().join(PLAYLIST);
    write(&playlist_path, playlist.to_m3u8().as_bytes());
    // For debugging with other tools: LIVEREC_KEEP_TEST_OUTPUT=1 leaves the files behind.
    let dir = if std::env::var_os("LIVEREC_KEEP_TEST_OUTPUT").is_some() {
        eprintln!("{asset_name}: output kept in {}", dir.keep().display());
        None
    } else {
        Some(dir)
    };

    Recorded {
        _dir: dir,
        playlist: playlist_path,
        segments,
        video_frames,
        audio_frames,
        tracks: media.tracks,
    }
}

fn finish_segment(
    dir: &TempDir,
    out: &mut BytesMut,
    segments: &mut Vec<PathBuf>,
    playlist: &mut MediaPlaylist,
    start: i64,
    end: i64,
) {
    let name = format!("seg_{}.ts", segments.len());
    let path = dir.path().join(&name);
    write(&path, &out.split());
    segments.push(path);
    playlist.push(name, (end - start) as f64 / 1000.0);
    // The recorder rewrites the growing playlist after each segment.
    write(&dir.path().join(PLAYLIST), playlist.to_m3u8().as_bytes());
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("{}: {e}", path.display());
    }
}

fn path_str(path: &Path) -> &str {
    match path.to_str() {
        Some(s) => s,
        None => panic!("non-UTF-8 path {}", path.display()),
    }
}

/// Codec names and duration as ffmpeg's `-i` banner shows them (the only probe ffmpeg 9
/// offers, and the one that reads Enhanced FLV).
fn banner_probe(ffmpeg: &Path, input: &Path) -> (Vec<String>, f64) {
    let (_, _, banner) = run(ffmpeg, &["-hide_banner", "-i", path_str(input)]);
    let mut codecs = Vec::new();
    let mut duration = None;
    for line in banner.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Duration: ") {
            let hms = rest.split(',').next().unwrap_or_default();
            let parts: Vec<f64> = hms.split(':').filter_map(|p| p.parse().ok()).collect();
            if let [h, m, s] = parts[..] {
                duration = Some(h * 3600.0 + m * 60.0 + s);
            }
        }
        if line.starts_with("Stream #") {
            for kind in ["Video: ", "Audio: "] {
                if let Some((_, rest)) = line.split_once(kind) {
                    let name = rest.split([' ', ',']).next().unwrap_or_default();
                    codecs.push(name.to_owned());
                }
            }
        }
    }
    match duration {
        Some(d) => (codecs, d),
        None => panic!("no duration for {}:\n{banner}", input.display()),
    }
}

/// Frames decoded from the first stream of `kind` ("v" or "a"), one framecrc line each.
fn decoded_frames(ffmpeg: &Path, input: &Path, kind: &str) -> usize {
    let map = format!("0:{kind}:0");
    let (ok, crcs, err) = run(
        ffmpeg,
        &[
            "-v",
            "error",
            "-i",
            path_str(input),
            "-map",
            &map,
            "-fps_mode",
            "passthrough",
            "-f",
            "framecrc",
            "-",
        ],
    );
    assert!(ok, "framecrc {}: {err}", input.display());
    crcs.lines().filter(|l| !l.starts_with('#')).count()
}

/// Checks the TS structure of the segments as one stream: whole packets, PAT and PMT first
/// in each segment, continuity counters running on across segments, and every video
/// segment opening with a random-access PES that carries a PCR.
fn check_structure(rec: &Recorded) {
    let mut counters = std::collections::HashMap::new();
    for path in &rec.segments {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        assert_eq!(bytes.len() % PACKET_SIZE, 0, "{}", path.display());
        let packets: Vec<&[u8]> = bytes.chunks(PACKET_SIZE).collect();
        let pid = |p: &[u8]| u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
        assert_eq!(pid(packets[0]), 0, "PAT first");
        assert_eq!(pid(packets[1]), ts::PMT_PID, "PMT second");
        let first_media = packets[2];
        let media_pid = if rec.tracks.video.is_some() {
            ts::VIDEO_PID
        } else {
            ts::AUDIO_PID
        };
        assert_eq!(pid(first_media), media_pid, "{}", path.display());
        assert_eq!(first_media[3] & 0x20, 0x20, "adaptation field");
        assert_eq!(first_media[5] & 0x50, 0x50, "random access + PCR");
        for p in &packets {
            assert_eq!(p[0], 0x47);
            let cc = p[3] & 0x0F;
            if let Some(prev) = counters.insert(pid(p), cc) {
                assert_eq!(cc, (prev + 1) & 0x0F, "CC of PID {:#x}", pid(p));
            }
        }
    }
}

fn check_recording(asset_name: &str, ffmpeg: &Path, use_ffprobe: bool, codecs: &[&str]) {
    let rec = record(asset_name);
    assert!(
        rec.segments.len() >= 4,
        "10 s cut every ≥ 2 s: {} segments",
        rec.segments.len()
    );
    check_structure(&rec);

    let source = asset(asset_name);
    let ((got_codecs, duration), (_, source_duration)) = if use_ffprobe {
        (ffprobe_streams(&rec.playlist), ffprobe_streams(&source))
    } else {
        (
            banner_probe(ffmpeg, &rec.playlist),
            banner_probe(ffmpeg, &source),
        )
    };
    eprintln!(
        "{asset_name}: {} segments, {} video + {} audio frames, {duration} s (source {source_duration} s)",
        rec.segments.len(),
        rec.video_frames,
        rec.audio_frames
    );
    assert_eq!(got_codecs, codecs, "codecs of the playlist");
    assert!(
        (duration - source_duration).abs() <= DURATION_TOLERANCE_SECS,
        "playlist {duration} s, source {source_duration} s"
    );

    let errors = decode_errors(ffmpeg, &rec.playlist);
    assert!(errors.is_empty(), "decoding the playlist: {errors}");
    if rec.video_frames > 0 {
        assert_eq!(
            decoded_frames(ffmpeg, &rec.playlist, "v"),
            rec.video_frames,
            "decoded video frames"
        );
    }
    if rec.audio_frames > 0 {
        assert_eq!(
            decoded_frames(ffmpeg, &rec.playlist, "a"),
            rec.audio_frames,
            "decoded audio frames"
        );
    }
    for segment in &rec.segments {
        let errors = decode_errors(ffmpeg, segment);
        assert!(
            errors.is_empty(),
            "decoding {} alone: {errors}",
            segment.display()
        );
    }
}

#[test]
fn h264_aac_segments_play_in_ffmpeg_5() {
    check_recording("h264_aac.flv", Path::new("ffmpeg"), true, &["h264", "aac"]);
}

#[test]
fn h264_only_segments_play_in_ffmpeg_5() {
    check_recording("h264_only.flv", Path::new("ffmpeg"), true, &["h264"]);
}

#[test]
fn aac_only_segments_play_in_ffmpeg_5() {
    check_recording("aac_only.flv", Path::new("ffmpeg"), true, &["aac"]);
}

#[test]
fn hevc_aac_segments_play_in_ffmpeg_9() {
    check_recording("hevc_aac.flv", &ffmpeg9(), false, &["hevc", "aac"]);
}

#[test]
fn av1_is_refused() {
    let data = match std::fs::read(asset("av1_aac.flv")) {
        Ok(data) => data,
        Err(e) => panic!("{e}"),
    };
    let media = match read_file_frames(&data) {
        Ok(media) => media,
        Err(e) => panic!("{e}"),
    };
    assert!(media.tracks.video.is_some());
    assert_eq!(
        Muxer::new(&media.tracks).err(),
        Some(MuxError::UnsupportedVideoCodec(
            liverec_media::VideoCodec::Av1
        ))
    );
}

/// Frames the recorder never hands over (an unconfigured track) are refused, not muxed.
#[test]
fn frames_of_an_unconfigured_track_are_refused() {
    let data = match std::fs::read(asset("h264_only.flv")) {
        Ok(data) => data,
        Err(e) => panic!("{e}"),
    };
    let media = match read_file_frames(&data) {
        Ok(media) => media,
        Err(e) => panic!("{e}"),
    };
    let Ok(mut muxer) = Muxer::new(&media.tracks) else {
        panic!("muxer");
    };
    let frame = Frame {
        track: TrackKind::Audio,
        dts: 0,
        cts: 0,
        keyframe: true,
        data: bytes::Bytes::from_static(&[0x21, 0x10]),
    };
    let mut out = BytesMut::new();
    assert_eq!(
        muxer.push(&frame, &mut out),
        Err(MuxError::TrackNotConfigured(TrackKind::Audio))
    );
    assert!(out.is_empty());
}
