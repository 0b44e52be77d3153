//! The fragmented-MP4 muxer against real decoders: each test asset (FLV) → frames → `Muxer` →
//! a temp file checked with Debian's ffprobe/ffmpeg 5.1 (H.264/AAC) or ffmpeg 9 (HEVC/AV1):
//! codecs, duration, clean decode, decoded frame count, seeking, crash durability (a file cut
//! in its last fragment), and CMAF init + segments. A small box walker checks the structure,
//! also under proptest with random frame sequences.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use liverec_media::flv::{FileMedia, read_file_frames};
use liverec_media::{AudioCodec, AudioConfig, Frame, TrackKind, Tracks, VideoCodec, VideoConfig};
use liverec_mux::Patch;
use liverec_mux::fmp4::{
    AUDIO_TRACK_ID, Fmp4Error, Fragment, Mode, Muxer, RecoverError, Recovery, VIDEO_TRACK_ID,
    recover, recover_segment,
};
use liverec_testkit::ffmpeg9;
use proptest::prelude::*;

/// The recorder's fragment length in these tests (flushed at the first keyframe after it).
const FLUSH_EVERY_MS: i64 = 1000;
/// CMAF segments group this many fragments.
const FRAGMENTS_PER_SEGMENT: usize = 2;
const DURATION_TOLERANCE_S: f64 = 0.3;

// ---------------------------------------------------------------------------------------------
// Peers and assets

fn asset(name: &str) -> FileMedia {
    read_file_frames(&liverec_testkit::asset_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Which real decoder checks a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// Debian ffmpeg/ffprobe 5.1: H.264 and AAC.
    Debian,
    /// ffmpeg 9 from imageio-ffmpeg: HEVC and AV1 too; no ffprobe.
    Ffmpeg9,
}

impl Peer {
    fn ffmpeg(self) -> PathBuf {
        match self {
            Peer::Debian => PathBuf::from("ffmpeg"),
            Peer::Ffmpeg9 => ffmpeg9(),
        }
    }
}

fn run(program: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} missing: {e}", program.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Codec names (stream order) and container duration in seconds.
fn probe(peer: Peer, path: &Path) -> (Vec<String>, f64) {
    let file = path.to_str().expect("utf-8 temp path");
    match peer {
        Peer::Debian => {
            let (ok, stdout, stderr) = run(
                Path::new("ffprobe"),
                &[
                    "-v",
                    "error",
                    "-show_entries",
                    "stream=codec_name:format=duration",
                    "-of",
                    "flat",
                    file,
                ],
            );
            assert!(ok, "ffprobe {file}: {stderr}");
            let mut codecs = Vec::new();
            let mut duration = None;
            for line in stdout.lines() {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let value = value.trim_matches('"');
                if key.ends_with(".codec_name") {
                    codecs.push(value.to_owned());
                } else if key == "format.duration" {
                    duration = value.parse::<f64>().ok();
                }
            }
            (codecs, duration.expect("ffprobe printed no duration"))
        }
        Peer::Ffmpeg9 => {
            // `ffmpeg -i` alone exits 1 ("no output file") but prints the input summary.
            let (_, _, stderr) = run(&peer.ffmpeg(), &["-hide_banner", "-i", file]);
            let mut codecs = Vec::new();
            let mut duration = None;
            for line in stderr.lines() {
                let line = line.trim();
                if let Some(rest) = line.strip_prefix("Duration: ") {
                    duration = parse_hms(rest.split(',').next().unwrap_or(""));
                }
                for kind in ["Video: ", "Audio: "] {
                    if let Some((_, rest)) = line.split_once(kind)
                        && line.starts_with("Stream #")
                    {
                        codecs.push(rest.split([' ', ',']).next().unwrap_or("").to_owned());
                    }
                }
            }
            (
                codecs,
                duration.unwrap_or_else(|| panic!("no duration in: {stderr}")),
            )
        }
    }
}

fn parse_hms(text: &str) -> Option<f64> {
    let mut parts = text.trim().split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Decodes every stream; returns the decoded frame count per stream and ffmpeg's stderr.
fn decode(peer: Peer, path: &Path) -> (Vec<u64>, String) {
    let file = path.to_str().expect("utf-8 temp path");
    let (_, stdout, stderr) = run(
        &peer.ffmpeg(),
        &[
            "-v",
            "error",
            "-i",
            file,
            "-map",
            "0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framecrc",
            "-",
        ],
    );
    let mut counts = Vec::new();
    for line in stdout.lines().filter(|l| !l.starts_with('#')) {
        let Some(Ok(stream)) = line.split(',').next().map(|s| s.trim().parse::<usize>()) else {
            continue;
        };
        if counts.len() <= stream {
            counts.resize(stream + 1, 0);
        }
        counts[stream] += 1;
    }
    (counts, stderr)
}

// ---------------------------------------------------------------------------------------------
// Muxing like the recorder does

struct Muxed {
    /// The file as written, before patches (what a crash leaves, plus the mfra).
    raw: Vec<u8>,
    /// The finished file: patches applied.
    file: Vec<u8>,
    patches: Vec<Patch>,
    fragments: Vec<Fragment>,
    fragment_count: u64,
    duration_ms: u64,
}

/// A muxer that has taken every frame of an asset, not finished yet.
struct Run {
    init: Vec<u8>,
    /// The bytes of each flushed fragment, with what the muxer said about it.
    chunks: Vec<(Bytes, Fragment)>,
    muxer: Muxer,
}

/// Pushes every frame and flushes once ≥ 1 s is buffered, right after pushing a video
/// keyframe (any frame for audio only), so each fragment ends just before a keyframe.
fn mux(media: &FileMedia, mode: Mode) -> Run {
    let mut muxer = Muxer::new(&media.tracks, mode).expect("muxer");
    let mut out = BytesMut::new();
    muxer.init(&mut out).expect("init");
    let init = out.split().freeze();
    let mut chunks = Vec::new();
    let has_video = media.tracks.video.is_some();
    let mut fragment_start = None;
    for frame in &media.frames {
        muxer.push(frame).expect("push");
        let start = *fragment_start.get_or_insert(frame.dts);
        let boundary = !has_video || (frame.is_video() && frame.keyframe);
        if boundary && frame.dts - start >= FLUSH_EVERY_MS {
            if let Some(fragment) = muxer.flush_fragment(&mut out).expect("flush") {
                chunks.push((out.split().freeze(), fragment));
            }
            fragment_start = Some(frame.dts);
        }
    }
    Run {
        init: init.to_vec(),
        chunks,
        muxer,
    }
}

fn mux_file(media: &FileMedia) -> Muxed {
    let Run {
        init,
        chunks,
        mut muxer,
    } = mux(media, Mode::File);
    let mut raw = init;
    for (chunk, _) in &chunks {
        raw.extend_from_slice(chunk);
    }
    let mut out = BytesMut::new();
    let patches = muxer.finish(&mut out).expect("finish");
    raw.extend_from_slice(&out);
    assert_eq!(muxer.bytes_written(), raw.len() as u64);
    let mut file = raw.clone();
    apply(&mut file, &patches);
    Muxed {
        raw,
        file,
        patches,
        fragments: chunks.into_iter().map(|(_, f)| f).collect(),
        fragment_count: muxer.fragment_count(),
        duration_ms: muxer.duration_ms(),
    }
}

fn apply(file: &mut [u8], patches: &[Patch]) {
    for patch in patches {
        let at = usize::try_from(patch.offset).expect("offset");
        file[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }
}

fn frames_per_track(media: &FileMedia) -> Vec<u64> {
    let count = |kind| media.frames.iter().filter(|f| f.track == kind).count() as u64;
    let mut counts = Vec::new();
    if media.tracks.video.is_some() {
        counts.push(count(TrackKind::Video));
    }
    if media.tracks.audio.is_some() {
        counts.push(count(TrackKind::Audio));
    }
    counts
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

// ---------------------------------------------------------------------------------------------
// File mode against real decoders

fn check_file_mode(asset_name: &str, peer: Peer, codecs: &[&str]) {
    let media = asset(asset_name);
    let expected_frames = frames_per_track(&media);
    let muxed = mux_file(&media);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_temp(dir.path(), "out.mp4", &muxed.file);
    let source = liverec_testkit::asset(asset_name);

    // Structure: ftyp, moov, (moof, mdat)*, mfra, sizes adding up, mfra pointing at moofs.
    let layout = check_structure(&muxed.file, Mode::File);
    assert_eq!(layout.fragments.len() as u64, muxed.fragment_count);
    assert!(muxed.fragment_count >= 9, "~1 s fragments of a 10 s asset");
    let written: Vec<u64> = layout.samples_per_track();
    assert_eq!(written, expected_frames, "samples in truns");
    for (i, fragment) in muxed.fragments.iter().enumerate() {
        assert!(
            fragment.starts_with_keyframe,
            "fragment {i} starts on a keyframe"
        );
        assert_eq!(fragment.offset, layout.fragments[i].moof_offset as u64);
    }
    assert_eq!(muxed.patches.len(), 2 + 2 * expected_frames.len());

    // Codecs and duration.
    let (got_codecs, duration) = probe(peer, &path);
    assert_eq!(got_codecs, codecs, "codecs of {asset_name}");
    let (_, source_duration) = probe(peer, &source);
    assert!(
        (duration - source_duration).abs() <= DURATION_TOLERANCE_S,
        "{asset_name}: duration {duration} s, source {source_duration} s"
    );
    assert!(
        (muxed.duration_ms as f64 / 1000.0 - source_duration).abs() <= DURATION_TOLERANCE_S,
        "duration_ms {}",
        muxed.duration_ms
    );

    // Clean decode, every frame.
    let file = path.to_str().expect("utf-8 path");
    let (ok, _, stderr) = run(
        &peer.ffmpeg(),
        &["-v", "error", "-i", file, "-f", "null", "-"],
    );
    assert!(
        ok && stderr.is_empty(),
        "{asset_name}: decode errors: {stderr}"
    );
    let (decoded, stderr) = decode(peer, &path);
    assert!(stderr.is_empty(), "{asset_name}: framecrc errors: {stderr}");
    assert_eq!(
        decoded, expected_frames,
        "{asset_name}: decoded frames per stream"
    );
    if peer == Peer::Debian {
        let counted = ffprobe_count_frames(&path);
        assert_eq!(
            counted, expected_frames,
            "{asset_name}: ffprobe -count_frames"
        );
    }

    // Seeking.
    let first = if media.tracks.video.is_some() {
        "-frames:v"
    } else {
        "-frames:a"
    };
    let (ok, _, stderr) = run(
        &peer.ffmpeg(),
        &[
            "-v", "error", "-ss", "5", "-i", file, first, "1", "-f", "null", "-",
        ],
    );
    assert!(ok && stderr.is_empty(), "{asset_name}: seek: {stderr}");
    if peer == Peer::Debian && media.tracks.video.is_some() {
        let (pts, keyframe) = ffprobe_packet_after_seek(&path, 5.0);
        assert!(keyframe, "{asset_name}: seek lands on a keyframe");
        assert!(
            (4.0..=5.5).contains(&pts),
            "{asset_name}: seek to 5 s landed at {pts}"
        );
    }

    // Crash durability: the raw bytes cut in the middle of the last fragment (no mfra, no
    // patches) still decode everything before that fragment.
    let raw_layout = check_structure(&muxed.raw, Mode::File);
    let last = raw_layout.fragments.last().expect("fragments");
    let cut = last.moof_offset + last.size / 2;
    let before: Vec<u64> = raw_layout.fragments[..raw_layout.fragments.len() - 1]
        .iter()
        .fold(vec![0; expected_frames.len()], |mut acc, f| {
            for (a, n) in acc.iter_mut().zip(&f.samples) {
                *a += n;
            }
            acc
        });
    let cut_path = write_temp(dir.path(), "cut.mp4", &muxed.raw[..cut]);
    let (decoded, stderr) = decode(peer, &cut_path);
    assert_eq!(
        decoded.len(),
        expected_frames.len(),
        "cut file streams: {stderr}"
    );
    for (i, (got, min)) in decoded.iter().zip(&before).enumerate() {
        assert!(
            got >= min && *got <= expected_frames[i],
            "{asset_name}: cut file decoded {got} frames of stream {i}, {min} before the cut"
        );
    }
}

fn ffprobe_count_frames(path: &Path) -> Vec<u64> {
    let file = path.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            file,
        ],
    );
    assert!(ok && stderr.is_empty(), "ffprobe -count_frames: {stderr}");
    stdout
        .lines()
        .map(|l| l.trim().trim_end_matches(',').parse().expect("frame count"))
        .collect()
}

/// Seeks ffprobe to `at` seconds and returns the first video packet's pts and key flag.
fn ffprobe_packet_after_seek(path: &Path, at: f64) -> (f64, bool) {
    let file = path.to_str().expect("utf-8 path");
    let interval = format!("{at}%+#1");
    let (ok, stdout, stderr) = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            &interval,
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
            file,
        ],
    );
    assert!(ok && stderr.is_empty(), "ffprobe seek: {stderr}");
    let line = stdout.lines().next().expect("a packet after seeking");
    let (pts, flags) = line.split_once(',').expect("pts_time,flags");
    (pts.parse().expect("pts_time"), flags.contains('K'))
}

#[test]
fn file_h264_aac_decodes_seeks_and_survives_a_cut() {
    check_file_mode("h264_aac.flv", Peer::Debian, &["h264", "aac"]);
}

#[test]
fn file_h264_only_decodes_seeks_and_survives_a_cut() {
    check_file_mode("h264_only.flv", Peer::Debian, &["h264"]);
}

#[test]
fn file_aac_only_decodes_seeks_and_survives_a_cut() {
    check_file_mode("aac_only.flv", Peer::Debian, &["aac"]);
}

#[test]
fn file_hevc_aac_decodes_seeks_and_survives_a_cut() {
    check_file_mode("hevc_aac.flv", Peer::Ffmpeg9, &["hevc", "aac"]);
}

#[test]
fn file_av1_aac_decodes_seeks_and_survives_a_cut() {
    check_file_mode("av1_aac.flv", Peer::Ffmpeg9, &["av1", "aac"]);
}

// ---------------------------------------------------------------------------------------------
// CMAF

fn check_cmaf(asset_name: &str, peer: Peer) {
    let media = asset(asset_name);
    let expected_frames = frames_per_track(&media);
    let Run {
        init,
        chunks,
        mut muxer,
    } = mux(&media, Mode::Cmaf);
    let mut tail = BytesMut::new();
    let patches = muxer.finish(&mut tail).expect("finish");
    assert!(patches.is_empty(), "CMAF has nothing to patch");
    assert_eq!(&init[4..12], b"ftypiso6");

    // Segments of FRAGMENTS_PER_SEGMENT fragments; the tail fragment goes to the last one.
    let mut segments: Vec<Vec<u8>> = Vec::new();
    for (i, (chunk, fragment)) in chunks.iter().enumerate() {
        if i % FRAGMENTS_PER_SEGMENT == 0 {
            assert!(
                fragment.starts_with_keyframe,
                "segment starts on a keyframe"
            );
            segments.push(Vec::new());
        }
        segments
            .last_mut()
            .expect("segment")
            .extend_from_slice(chunk);
    }
    segments
        .last_mut()
        .expect("segment")
        .extend_from_slice(&tail);

    let dir = tempfile::tempdir().expect("temp dir");
    write_temp(dir.path(), "init.mp4", &init);
    let mut joined = init.clone();
    for (n, segment) in segments.iter().enumerate() {
        assert_eq!(&segment[4..8], b"moof");
        write_temp(dir.path(), &format!("seg{n}.m4s"), segment);
        joined.extend_from_slice(segment);
    }
    let layout = check_structure(&joined, Mode::Cmaf);
    assert_eq!(layout.samples_per_track(), expected_frames);
    let path = write_temp(dir.path(), "joined.mp4", &joined);
    let (decoded, stderr) = decode(peer, &path);
    assert!(
        stderr.is_empty(),
        "{asset_name}: CMAF decode errors: {stderr}"
    );
    assert_eq!(decoded, expected_frames);
}

#[test]
fn cmaf_h264_aac_init_plus_segments_decode_cleanly() {
    check_cmaf("h264_aac.flv", Peer::Debian);
}

#[test]
fn cmaf_av1_aac_init_plus_segments_decode_cleanly() {
    check_cmaf("av1_aac.flv", Peer::Ffmpeg9);
}

// ---------------------------------------------------------------------------------------------
// Crash recovery

fn recover_bytes(data: &[u8]) -> Result<Recovery, RecoverError> {
    recover(&mut Cursor::new(data))
}

/// What finalizing a recovered file writes: the kept bytes, the new mfra, the patches.
fn finalize(data: &[u8], recovery: &Recovery) -> Vec<u8> {
    let mut file = data[..recovery.valid_len as usize].to_vec();
    file.extend_from_slice(&recovery.tail);
    apply(&mut file, &recovery.patches);
    file
}

#[test]
fn recovering_a_finished_file_reproduces_its_mfra_and_patches() {
    let muxed = mux_file(&asset("h264_aac.flv"));
    let mfra_at = check_structure(&muxed.file, Mode::File)
        .fragments
        .last()
        .map(|f| f.moof_offset + f.size)
        .expect("fragments");
    for data in [&muxed.raw, &muxed.file] {
        let recovery = recover_bytes(data).expect("recover");
        assert_eq!(recovery.file_len, data.len() as u64);
        assert_eq!(recovery.valid_len, mfra_at as u64);
        assert_eq!(recovery.fragment_count, muxed.fragment_count);
        assert_eq!(recovery.duration_ms, muxed.duration_ms);
        assert_eq!(&recovery.tail[..], &muxed.raw[mfra_at..]);
        assert_eq!(recovery.patches, muxed.patches);
        assert_eq!(finalize(data, &recovery), muxed.file);
    }
}

fn check_recovered_cut(asset_name: &str, peer: Peer) {
    let media = asset(asset_name);
    let muxed = mux_file(&media);
    let layout = check_structure(&muxed.file, Mode::File);
    let last = layout.fragments.last().expect("fragments");
    // A crash while the last fragment was being written: no mfra, no patches, torn fragment.
    let crashed = &muxed.raw[..last.moof_offset + last.size / 2];
    let recovery = recover_bytes(crashed).expect("recover");
    assert_eq!(recovery.valid_len, last.moof_offset as u64);
    assert_eq!(recovery.fragment_count, muxed.fragment_count - 1);
    let file = finalize(crashed, &recovery);
    let recovered = check_structure(&file, Mode::File);
    let kept: Vec<u64> = recovered.samples_per_track();

    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_temp(dir.path(), "recovered.mp4", &file);
    let (decoded, stderr) = decode(peer, &path);
    assert!(
        stderr.is_empty(),
        "{asset_name}: recovered file decode errors: {stderr}"
    );
    assert_eq!(decoded, kept, "{asset_name}: every kept frame decodes");
    let (_, duration) = probe(peer, &path);
    let expected = recovery.duration_ms as f64 / 1000.0;
    assert!(
        (duration - expected).abs() <= 0.05 && recovery.duration_ms < muxed.duration_ms,
        "{asset_name}: recovered duration {duration} s, recovery says {expected} s"
    );
}

/// A CMAF segment of three fragments torn in its third: the first two are kept, span what the
/// muxer said they span, and init + the kept part decode cleanly.
#[test]
fn torn_cmaf_segment_keeps_its_complete_fragments() {
    let media = asset("h264_aac.flv");
    let Run { init, chunks, .. } = mux(&media, Mode::Cmaf);
    assert!(chunks.len() >= 4, "the asset gives enough fragments");
    // The segment starts with the second fragment (a later one, so tfdt is not zero).
    let parts = &chunks[1..4];
    let mut segment = Vec::new();
    for (chunk, _) in parts {
        segment.extend_from_slice(chunk);
    }
    let kept_len = parts[0].0.len() + parts[1].0.len();
    let torn = &segment[..kept_len + parts[2].0.len() / 2];

    let found = recover_segment(&mut Cursor::new(&init), &mut Cursor::new(torn)).expect("recover");
    assert_eq!(found.valid_len, kept_len as u64);
    assert_eq!(found.fragment_count, 2);
    let expected_ms = parts[1].1.end_ms - parts[0].1.start_ms;
    assert!(
        found.duration_ms.abs_diff(expected_ms) <= 30,
        "recovered {} ms, the muxer wrote {expected_ms} ms",
        found.duration_ms
    );

    let mut joined = init.clone();
    joined.extend_from_slice(&torn[..kept_len]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_temp(dir.path(), "recovered.mp4", &joined);
    let (decoded, stderr) = decode(Peer::Debian, &path);
    assert!(stderr.is_empty(), "decode errors: {stderr}");
    assert!(
        decoded.iter().all(|&n| n > 0),
        "both tracks decode: {decoded:?}"
    );

    // Nothing complete, or no init: errors, not panics.
    let nothing =
        recover_segment(&mut Cursor::new(&init), &mut Cursor::new(&torn[..10])).expect("empty");
    assert_eq!(
        (
            nothing.valid_len,
            nothing.fragment_count,
            nothing.duration_ms
        ),
        (0, 0, 0)
    );
    assert!(recover_segment(&mut Cursor::new(torn), &mut Cursor::new(torn)).is_err());
}

#[test]
fn recovered_h264_aac_file_cut_mid_fragment_decodes_cleanly() {
    check_recovered_cut("h264_aac.flv", Peer::Debian);
}

#[test]
fn recovered_hevc_aac_file_cut_mid_fragment_decodes_cleanly() {
    check_recovered_cut("hevc_aac.flv", Peer::Ffmpeg9);
}

#[test]
fn recovering_a_file_cut_inside_its_init_finds_nothing() {
    let muxed = mux_file(&asset("aac_only.flv"));
    let moov_end = check_structure(&muxed.file, Mode::File).fragments[0].moof_offset;
    for cut in [0, 10, moov_end / 2, moov_end - 1] {
        assert!(
            matches!(recover_bytes(&muxed.raw[..cut]), Err(RecoverError::NoInit)),
            "cut at {cut}"
        );
    }
    let empty = recover_bytes(&muxed.raw[..moov_end]).expect("init only");
    assert_eq!(
        (empty.valid_len, empty.fragment_count),
        (moov_end as u64, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Box walker

#[derive(Debug)]
struct Atom {
    kind: [u8; 4],
    start: usize,
    size: usize,
    header: usize,
    children: Vec<Atom>,
}

impl Atom {
    fn body<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.start + self.header..self.start + self.size]
    }

    fn child(&self, kind: &[u8; 4]) -> Option<&Atom> {
        self.children.iter().find(|a| &a.kind == kind)
    }

    fn all(&self, kind: &'static [u8; 4]) -> impl Iterator<Item = &Atom> {
        self.children.iter().filter(move |a| &a.kind == kind)
    }
}

/// Bytes before the child boxes of boxes that hold both fields and boxes.
fn children_offset(kind: &[u8; 4]) -> Option<usize> {
    match kind {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof" | b"traf"
        | b"mfra" => Some(0),
        b"stsd" | b"dref" => Some(8),
        b"avc1" | b"hvc1" | b"av01" => Some(78),
        b"mp4a" => Some(28),
        _ => None,
    }
}

/// Parses the boxes in `data[start..end]`, which they must fill exactly.
fn walk(data: &[u8], start: usize, end: usize) -> Result<Vec<Atom>, String> {
    let mut atoms = Vec::new();
    let mut pos = start;
    while pos < end {
        if end - pos < 8 {
            return Err(format!("{} stray bytes at {pos}", end - pos));
        }
        let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().expect("4 bytes");
        let (size, header) = match size32 {
            0 => (end - pos, 8),
            1 => (
                u64::from_be_bytes(data[pos + 8..pos + 16].try_into().expect("8 bytes")) as usize,
                16,
            ),
            n => (n as usize, 8),
        };
        if size < header || pos + size > end {
            return Err(format!(
                "box {} at {pos} of {size} bytes overflows its parent ending at {end}",
                String::from_utf8_lossy(&kind)
            ));
        }
        let children = match children_offset(&kind) {
            Some(skip) => walk(data, pos + header + skip, pos + size)?,
            None => Vec::new(),
        };
        atoms.push(Atom {
            kind,
            start: pos,
            size,
            header,
            children,
        });
        pos += size;
    }
    Ok(atoms)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    duration: u32,
    size: u32,
    flags: u32,
    composition_offset: i32,
}

#[derive(Debug)]
struct Traf {
    track_id: u32,
    base_decode_time: u64,
    /// Absolute file offset of the first sample.
    data_start: usize,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct FragmentLayout {
    moof_offset: usize,
    /// moof + mdat.
    size: usize,
    sequence: u32,
    trafs: Vec<Traf>,
    /// Samples per track in track order (video, audio), zeros included.
    samples: Vec<u64>,
}

#[derive(Debug)]
struct Layout {
    track_ids: Vec<u32>,
    timescales: Vec<u32>,
    fragments: Vec<FragmentLayout>,
    /// (track id, time, moof offset, traf number, sample number)
    tfra: Vec<(u32, u64, u64, u8, u32)>,
}

impl Layout {
    fn samples_per_track(&self) -> Vec<u64> {
        self.track_ids
            .iter()
            .enumerate()
            .map(|(k, _)| self.fragments.iter().map(|f| f.samples[k]).sum())
            .collect()
    }
}

fn parse_traf(data: &[u8], traf: &Atom, moof_start: usize) -> Traf {
    let tfhd = traf.child(b"tfhd").expect("tfhd").body(data);
    let tfhd_flags = be32(tfhd, 0) & 0xFF_FFFF;
    assert_ne!(tfhd_flags & 0x02_0000, 0, "default-base-is-moof");
    let tfdt = traf.child(b"tfdt").expect("tfdt").body(data);
    assert_eq!(tfdt[0], 1, "64-bit tfdt");
    let truns: Vec<&Atom> = traf.all(b"trun").collect();
    assert_eq!(truns.len(), 1, "one trun per traf");
    let trun = truns[0].body(data);
    let version = trun[0];
    let flags = be32(trun, 0) & 0xFF_FFFF;
    let count = be32(trun, 4) as usize;
    assert_ne!(flags & 0x1, 0, "data offset present");
    let data_offset = be32(trun, 8) as i32;
    let default_flags = if tfhd_flags & 0x20 != 0 {
        be32(tfhd, 8)
    } else {
        0
    };
    let mut at = 12;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let mut field = |present: u32| {
            if flags & present != 0 {
                let v = be32(trun, at);
                at += 4;
                Some(v)
            } else {
                None
            }
        };
        let duration = field(0x100).expect("per-sample duration");
        let size = field(0x200).expect("per-sample size");
        let sample_flags = field(0x400).unwrap_or(default_flags);
        let composition_offset = field(0x800).map_or(0, |v| {
            if version == 0 {
                i32::try_from(v).expect("v0 offset")
            } else {
                v as i32
            }
        });
        entries.push(Entry {
            duration,
            size,
            flags: sample_flags,
            composition_offset,
        });
    }
    assert_eq!(at, trun.len(), "trun has no trailing bytes");
    Traf {
        track_id: be32(tfhd, 4),
        base_decode_time: be64(tfdt, 4),
        data_start: (moof_start as i64 + i64::from(data_offset)) as usize,
        entries,
    }
}

/// Walks a whole file and checks the layout every output of the muxer must have.
fn check_structure(data: &[u8], mode: Mode) -> Layout {
    let top = walk(data, 0, data.len()).unwrap_or_else(|e| panic!("box tree: {e}"));
    assert_eq!(&top[0].kind, b"ftyp");
    let moov = &top[1];
    assert_eq!(&moov.kind, b"moov");
    let mut track_ids = Vec::new();
    let mut timescales = Vec::new();
    for trak in moov.all(b"trak") {
        let tkhd = trak.child(b"tkhd").expect("tkhd").body(data);
        track_ids.push(be32(tkhd, 20));
        let mdhd = trak
            .child(b"mdia")
            .and_then(|m| m.child(b"mdhd"))
            .expect("mdhd")
            .body(data);
        timescales.push(be32(mdhd, 20));
    }
    let mvex = moov.child(b"mvex").expect("mvex");
    assert_eq!(mvex.all(b"trex").count(), track_ids.len());
    assert_eq!(mvex.child(b"mehd").is_some(), mode == Mode::File);

    let mut fragments = Vec::new();
    let mut rest = &top[2..];
    let mut sequence = 0;
    while let [moof, mdat, tail @ ..] = rest {
        if &moof.kind != b"moof" {
            break;
        }
        assert_eq!(&mdat.kind, b"mdat", "mdat follows moof");
        let mfhd = moof.child(b"mfhd").expect("mfhd").body(data);
        let seq = be32(mfhd, 4);
        assert_eq!(seq, sequence + 1, "mfhd sequence numbers count up");
        sequence = seq;
        let trafs: Vec<Traf> = moof
            .all(b"traf")
            .map(|t| parse_traf(data, t, moof.start))
            .collect();
        assert!(!trafs.is_empty(), "no empty moof");
        // The samples fill the mdat exactly, traf after traf.
        let mut expect_at = mdat.start + mdat.header;
        for traf in &trafs {
            assert_eq!(
                traf.data_start, expect_at,
                "data offset of track {}",
                traf.track_id
            );
            expect_at += traf.entries.iter().map(|e| e.size as usize).sum::<usize>();
        }
        assert_eq!(expect_at, mdat.start + mdat.size, "samples fill the mdat");
        let samples = track_ids
            .iter()
            .map(|id| {
                trafs
                    .iter()
                    .filter(|t| t.track_id == *id)
                    .map(|t| t.entries.len() as u64)
                    .sum()
            })
            .collect();
        fragments.push(FragmentLayout {
            moof_offset: moof.start,
            size: moof.size + mdat.size,
            sequence: seq,
            trafs,
            samples,
        });
        rest = tail;
    }

    let mut tfra = Vec::new();
    match mode {
        Mode::File => {
            assert_eq!(rest.len(), 1, "only mfra after the fragments");
            let mfra = &rest[0];
            assert_eq!(&mfra.kind, b"mfra");
            let mfro = mfra.children.last().expect("mfro");
            assert_eq!(&mfro.kind, b"mfro");
            assert_eq!(be32(mfro.body(data), 4) as usize, mfra.size, "mfro size");
            for t in mfra.all(b"tfra") {
                let body = t.body(data);
                assert_eq!(body[0], 1, "64-bit tfra");
                assert_eq!(be32(body, 8), 3, "length sizes");
                let n = be32(body, 12) as usize;
                assert_eq!(body.len(), 16 + n * 22);
                for i in 0..n {
                    let e = 16 + i * 22;
                    tfra.push((
                        be32(body, 4),
                        be64(body, e),
                        be64(body, e + 8),
                        body[e + 16],
                        be32(body, e + 18),
                    ));
                }
            }
            for &(track, time, offset, traf_number, sample_number) in &tfra {
                let fragment = fragments
                    .iter()
                    .find(|f| f.moof_offset as u64 == offset)
                    .unwrap_or_else(|| panic!("tfra offset {offset} is no moof"));
                let traf = &fragment.trafs[traf_number as usize - 1];
                assert_eq!(traf.track_id, track);
                let i = sample_number as usize - 1;
                let entry = traf.entries[i];
                assert_eq!(entry.flags, 0x0200_0000, "tfra points at a sync sample");
                let dts: u64 = traf.base_decode_time
                    + traf.entries[..i]
                        .iter()
                        .map(|e| u64::from(e.duration))
                        .sum::<u64>();
                // Presentation time; a negative one (a first frame with pts < dts) clamps to 0.
                assert_eq!(
                    time as i64,
                    (dts as i64 + i64::from(entry.composition_offset)).max(0)
                );
            }
        }
        Mode::Cmaf => assert!(rest.is_empty(), "nothing after the fragments"),
    }
    Layout {
        track_ids,
        timescales,
        fragments,
        tfra,
    }
}

// ---------------------------------------------------------------------------------------------
// Structure under random input

fn test_tracks(video: bool, audio: bool) -> Tracks {
    Tracks {
        video: video.then(|| {
            Arc::new(VideoConfig {
                codec: VideoCodec::H264,
                record: Bytes::from_static(&[1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0]),
                width: 320,
                height: 240,
                nal_length_size: 4,
                parameter_sets: Vec::new(),
            })
        }),
        audio: audio.then(|| {
            Arc::new(AudioConfig {
                codec: AudioCodec::Aac,
                specific: Bytes::from_static(&[0x12, 0x08]),
                object_type: 2,
                sample_rate: 44_100,
                channels: 1,
            })
        }),
    }
}

/// One step of a random stream: a frame of one track, then maybe a flush.
#[derive(Clone, Debug)]
struct Step {
    video: bool,
    dts_step: i64,
    cts: i32,
    keyframe: bool,
    size: usize,
    flush: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<bool>(),
        0..120i64,
        -50..300i32,
        any::<bool>(),
        0..3000usize,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(video, dts_step, cts, keyframe, size, flush)| Step {
            video,
            dts_step,
            cts,
            keyframe,
            size,
            flush,
        })
}

fn ms_to_ticks(ms: i64, timescale: u32) -> i64 {
    (i128::from(ms) * i128::from(timescale) + 500).div_euclid(1000) as i64
}

/// A random stream: which tracks, where each starts, and the frames and flushes.
#[derive(Clone, Debug)]
struct Stream {
    video: bool,
    audio: bool,
    first_dts: [i64; 2],
    steps: Vec<Step>,
}

fn stream() -> impl Strategy<Value = Stream> {
    (
        0..3u8,
        0..2000i64,
        0..2000i64,
        prop::collection::vec(step(), 1..200),
    )
        .prop_map(|(tracks, video_first, audio_first, steps)| Stream {
            video: tracks != 1,
            audio: tracks != 0,
            first_dts: [video_first, audio_first],
            steps,
        })
}

/// A random stream muxed: the output before patches, and what went in.
struct Muxing {
    muxer: Muxer,
    raw: Vec<u8>,
    init_len: usize,
    patches: Vec<Patch>,
    /// Frames pushed per track (video, audio).
    pushed: [Vec<Frame>; 2],
}

fn mux_stream(stream: &Stream, mode: Mode) -> Muxing {
    let (video, audio) = (stream.video, stream.audio);
    let mut muxer = Muxer::new(&test_tracks(video, audio), mode).expect("muxer");
    let mut out = BytesMut::new();
    muxer.init(&mut out).expect("init");
    let init_len = out.len();
    let mut dts = stream.first_dts;
    let mut pushed: [Vec<Frame>; 2] = [Vec::new(), Vec::new()];
    for (n, s) in stream.steps.iter().enumerate() {
        let k = if (s.video && video) || !audio { 0 } else { 1 };
        dts[k] += s.dts_step;
        let frame = Frame {
            track: if k == 0 {
                TrackKind::Video
            } else {
                TrackKind::Audio
            },
            dts: dts[k],
            cts: if k == 0 { s.cts } else { 0 },
            keyframe: s.keyframe,
            data: Bytes::from(vec![n as u8; s.size]),
        };
        muxer.push(&frame).expect("push");
        pushed[k].push(frame);
        if s.flush {
            muxer.flush_fragment(&mut out).expect("flush");
        }
    }
    let patches = muxer.finish(&mut out).expect("finish");
    Muxing {
        muxer,
        raw: out.to_vec(),
        init_len,
        patches,
        pushed,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random frames and flush points: the box tree's sizes add up, every frame is in a trun
    /// with its bytes in the mdat, decode times are exactly the rounded frame times (no
    /// drift), tfdt continues where the previous fragment ended, mfra points at sync samples,
    /// and the patches fill the zeroed duration fields with the track ends.
    #[test]
    fn random_streams_produce_consistent_box_trees(stream in stream(), cmaf in any::<bool>()) {
        let mode = if cmaf { Mode::Cmaf } else { Mode::File };
        let Muxing { muxer, raw, init_len, patches, pushed } = mux_stream(&stream, mode);
        let (video, audio) = (stream.video, stream.audio);
        prop_assert_eq!(muxer.bytes_written(), raw.len() as u64);
        let mut file = raw.clone();
        apply(&mut file, &patches);
        let layout = check_structure(&file, mode);

        let kinds: Vec<usize> = [video, audio]
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(k, _)| k)
            .collect();
        let origin = muxer.origin_ms().expect("origin");
        for (t, &k) in kinds.iter().enumerate() {
            let id = layout.track_ids[t];
            prop_assert_eq!(id, if k == 0 { VIDEO_TRACK_ID } else { AUDIO_TRACK_ID });
            let timescale = layout.timescales[t];
            let mut samples = Vec::new();
            let mut end: Option<u64> = None;
            for fragment in &layout.fragments {
                for traf in fragment.trafs.iter().filter(|t| t.track_id == id) {
                    if let Some(end) = end {
                        prop_assert_eq!(traf.base_decode_time, end, "tfdt continues");
                    }
                    let mut time = traf.base_decode_time;
                    let mut at = traf.data_start;
                    for e in &traf.entries {
                        samples.push((time, *e, &file[at..at + e.size as usize]));
                        time += u64::from(e.duration);
                        at += e.size as usize;
                    }
                    end = Some(time);
                }
            }
            prop_assert_eq!(samples.len(), pushed[k].len());
            for (i, ((time, entry, bytes), frame)) in samples.iter().zip(&pushed[k]).enumerate() {
                prop_assert_eq!(*bytes, &frame.data[..], "payload of sample {}", i);
                let rel = (frame.dts - origin).max(0);
                prop_assert_eq!(*time as i64, ms_to_ticks(rel, timescale), "dts of sample {}", i);
                let cto = ms_to_ticks(rel + i64::from(frame.cts), timescale)
                    - ms_to_ticks(rel, timescale);
                prop_assert_eq!(i64::from(entry.composition_offset), cto);
                let sync = frame.keyframe || k == 1;
                prop_assert_eq!(entry.flags == 0x0200_0000, sync);
            }
            if mode == Mode::File {
                // Patched mdhd duration = the track's end.
                let track_end = end.unwrap_or(0);
                let mdhd = patches.iter().find(|p| {
                    file[p.offset as usize - 4..p.offset as usize] == timescale.to_be_bytes()
                        && p.bytes[..] == track_end.to_be_bytes()
                });
                prop_assert!(mdhd.is_some(), "mdhd duration patch of track {}", id);
                let fragments_with_sync = layout
                    .fragments
                    .iter()
                    .filter(|f| {
                        f.trafs
                            .iter()
                            .any(|t| t.track_id == id && t.entries.iter().any(|e| e.flags == 0x0200_0000))
                    })
                    .count();
                prop_assert_eq!(
                    layout.tfra.iter().filter(|e| e.0 == id).count(),
                    fragments_with_sync
                );
            }
        }
        let sequences: Vec<u32> = layout.fragments.iter().map(|f| f.sequence).collect();
        prop_assert_eq!(sequences.len() as u64, muxer.fragment_count());
        for patch in &patches {
            let at = patch.offset as usize;
            prop_assert!(at + 8 <= init_len, "patches hit the init segment");
            prop_assert_eq!(&raw[at..at + 8], &[0u8; 8][..], "patched fields were zero");
        }
        prop_assert_eq!(patches.is_empty(), mode == Mode::Cmaf);
    }

    /// A crash at any byte: recovery keeps exactly the complete fragments before the cut (none
    /// inside the init), and the finalized result is a well-formed file holding their samples.
    #[test]
    fn files_cut_anywhere_recover_to_valid_files(stream in stream(), cut in 0.0..1.0f64) {
        let Muxing { raw, init_len, patches, .. } = mux_stream(&stream, Mode::File);
        let finished = {
            let mut file = raw.clone();
            apply(&mut file, &patches);
            check_structure(&file, Mode::File)
        };
        let cut = ((raw.len() as f64) * cut) as usize;
        let crashed = &raw[..cut];
        match recover_bytes(crashed) {
            Err(RecoverError::NoInit) => prop_assert!(cut < init_len, "cut {} after init", cut),
            Err(err) => prop_assert!(false, "cut {}: {}", cut, err),
            Ok(recovery) => {
                prop_assert!(cut >= init_len);
                let complete: Vec<&FragmentLayout> = finished
                    .fragments
                    .iter()
                    .filter(|f| f.moof_offset + f.size <= cut)
                    .collect();
                prop_assert_eq!(recovery.fragment_count, complete.len() as u64);
                let end = complete.last().map_or(init_len, |f| f.moof_offset + f.size);
                prop_assert_eq!(recovery.valid_len, end as u64);
                let recovered = check_structure(&finalize(crashed, &recovery), Mode::File);
                let expected: Vec<u64> = finished
                    .track_ids
                    .iter()
                    .enumerate()
                    .map(|(k, _)| complete.iter().map(|f| f.samples[k]).sum())
                    .collect();
                prop_assert_eq!(recovered.samples_per_track(), expected);
            }
        }
    }

    /// Recovery reads untrusted bytes: corrupting a file anywhere never panics.
    #[test]
    fn recovery_survives_corrupted_files(
        stream in stream(),
        flips in prop::collection::vec((0.0..1.0f64, any::<u8>()), 1..8),
    ) {
        let Muxing { mut raw, .. } = mux_stream(&stream, Mode::File);
        for (at, byte) in flips {
            let at = ((raw.len() as f64) * at) as usize;
            if let Some(b) = raw.get_mut(at) {
                *b ^= byte;
            }
        }
        if let Ok(recovery) = recover_bytes(&raw) {
            prop_assert!(recovery.valid_len <= raw.len() as u64);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// API contract

#[test]
fn frames_of_unconfigured_tracks_and_calls_out_of_order_are_refused() {
    let mut muxer = Muxer::new(&test_tracks(true, false), Mode::File).expect("muxer");
    let mut out = BytesMut::new();
    let audio = Frame {
        track: TrackKind::Audio,
        dts: 0,
        cts: 0,
        keyframe: true,
        data: Bytes::from_static(b"a"),
    };
    assert_eq!(
        muxer.push(&audio),
        Err(Fmp4Error::NoSuchTrack {
            track: TrackKind::Audio
        })
    );
    let video = Frame {
        track: TrackKind::Video,
        ..audio
    };
    muxer.push(&video).expect("buffering before init is fine");
    assert_eq!(muxer.flush_fragment(&mut out), Err(Fmp4Error::InitOrder));
    assert!(out.is_empty());
    muxer.init(&mut out).expect("init");
    assert_eq!(muxer.init(&mut out), Err(Fmp4Error::InitOrder));
    // One sample: its duration is unknown, so a flush writes nothing yet.
    let before = out.len();
    assert_eq!(muxer.flush_fragment(&mut out), Ok(None));
    assert_eq!(out.len(), before);
    muxer.finish(&mut out).expect("finish");
    assert_eq!(muxer.fragment_count(), 1);
    assert_eq!(muxer.push(&video), Err(Fmp4Error::Finished));
    assert_eq!(
        Muxer::new(&Tracks::default(), Mode::File).err(),
        Some(Fmp4Error::NoTracks)
    );
}

#[test]
fn a_muxer_without_frames_finishes_into_a_valid_empty_file() {
    let mut muxer = Muxer::new(&test_tracks(true, true), Mode::File).expect("muxer");
    let mut out = BytesMut::new();
    muxer.init(&mut out).expect("init");
    let patches = muxer.finish(&mut out).expect("finish");
    let layout = check_structure(&out, Mode::File);
    assert!(layout.fragments.is_empty());
    assert!(patches.iter().all(|p| p.bytes[..] == [0; 8]));
    assert_eq!(muxer.duration_ms(), 0);
}
