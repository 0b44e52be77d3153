//! End to end, the edge cases of recording (issue 3, points 3, 7 and 8): streams published
//! with the project's own RTMP client so that timestamps, codec ids and bytes can be rewritten,
//! each recorded file checked by ffprobe (ffmpeg 9 for Enhanced FLV) and a full decode.

// Tests fail by panicking; unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use liverec_media::flv::{VideoTag, parse_video_tag};
use liverec_rtmp::MediaKind;
use liverec_rtmp::client::Client;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const APP: &str = "live";
/// Media time of every 10 s asset.
const SOURCE_SECS: f64 = 10.0;
/// Media time of `h264_aac_640x360.flv`.
const SECOND_ASSET_SECS: f64 = 4.0;
/// Issue 3: a recording's duration is within this of what was published.
const TOLERANCE_SECS: f64 = 0.3;
/// Audio-minus-video offsets of a recording may differ from the source's by this much (one
/// AAC frame is 23 ms; a bridged discontinuity moves one track by at most a frame step).
const SYNC_TOLERANCE_SECS: f64 = 0.05;
/// Longest wait for any one log line or file.
const T: Duration = Duration::from_secs(60);
/// Where the jump tests break the timeline: the first video keyframe at or after this.
const JUMP_AT_MS: u32 = 5_000;
/// The forward jump: one hour.
const FORWARD_JUMP_MS: u32 = 3_600_000;
/// The wrap test's first timestamp: the 32-bit counter wraps 3 s into the stream.
const WRAP_START: u32 = u32::MAX - 3_000 + 1;
/// Stamping a repeat of a 10 s asset this much later continues its timeline without
/// overlap: the assets' last audio frame ends at 10.088 s and their first starts at 0.057 s.
const REPEAT_MS: u32 = 10_040;
/// FLV legacy codec id of HEVC (the de-facto "12" of Chinese CDNs and encoders).
const LEGACY_HEVC: u8 = 12;

/// A `[record]` section with a 1 s DelayTime and `formats`, given as `"mp4 flv m3u8:4"`
/// (`format:slice_secs`).
fn record_toml(formats: &str) -> String {
    let entries: Vec<String> = formats
        .split_whitespace()
        .map(|f| match f.split_once(':') {
            Some((format, slice)) => format!("{{ format = \"{format}\", slice_secs = {slice} }}"),
            None => format!("{{ format = \"{f}\" }}"),
        })
        .collect();
    format!(
        "[record]\ndelay_secs = 1\nformats = [{}]\n",
        entries.join(", ")
    )
}

fn ffmpeg() -> &'static Path {
    Path::new("ffmpeg")
}

/// `stream=` field of the server's log lines for a stream of the default domain.
fn stream_field(stream: &str) -> String {
    format!("stream=live.liverec.local/{APP}/{stream} ")
}

/// Waits for `n` "… complete" lines (files and playlists) of `stream`.
fn wait_complete(server: &Server, stream: &str, n: usize) {
    server.wait_for_lines(&["complete", &stream_field(stream)], n, T);
}

fn is_video_keyframe(tag: &Tag) -> bool {
    tag.kind == MediaKind::Video && tag.body.first().is_some_and(|b| (b >> 4) & 0x07 == 1)
}

/// Whether a tag carries a coded frame (not a header, metadata or command).
fn is_media_frame(tag: &Tag) -> bool {
    match tag.kind {
        MediaKind::Video => matches!(parse_video_tag(&tag.body), Ok(VideoTag::Frame { .. })),
        // AAC: AACPacketType 1 is a raw frame.
        MediaKind::Audio => tag.body.get(1) == Some(&1),
        MediaKind::Data => false,
    }
}

/// Checks an H.264 + AAC (or H.264-only) file with Debian's ffprobe and a full decode.
fn assert_valid(file: &Path, codecs: &[&str], secs: f64, counts: &[usize]) {
    let p = probe(file);
    assert_eq!(p.codecs, codecs, "{}", file.display());
    assert!(
        (p.duration - secs).abs() <= TOLERANCE_SECS,
        "{}: duration {} is not within {TOLERANCE_SECS} s of {secs}",
        file.display(),
        p.duration
    );
    assert!(
        p.first_video_frame_is_key,
        "{} does not start with a keyframe",
        file.display()
    );
    let got = [p.video_frames as usize, p.audio_frames as usize];
    assert_eq!(&got[..counts.len()], counts, "{}: frames", file.display());
    assert_decodes_cleanly(ffmpeg(), file);
}

/// DTS strictly increasing in every stream of the file.
fn assert_monotonic(ffmpeg: &Path, file: &Path) {
    for (i, s) in packet_list(ffmpeg, file).streams.iter().enumerate() {
        if let Some(w) = s.windows(2).find(|w| w[1].dts <= w[0].dts) {
            panic!(
                "{}: stream {i} dts not increasing: {} then {}",
                file.display(),
                w[0].dts,
                w[1].dts
            );
        }
    }
}

/// (first audio pts − first video pts, last audio pts − last video pts), seconds.
fn av_offsets(list: &PacketList) -> (f64, f64) {
    let (v0, v1) = list.pts_range(0);
    let (a0, a1) = list.pts_range(1);
    (a0 - v0, a1 - v1)
}

/// Audio and video of `file` are as far apart, at its start and end, as in `source`.
fn assert_in_sync(ffmpeg: &Path, source: &Path, file: &Path) {
    let want = av_offsets(&packet_list(ffmpeg, source));
    let got = av_offsets(&packet_list(ffmpeg, file));
    assert!(
        (got.0 - want.0).abs() <= SYNC_TOLERANCE_SECS
            && (got.1 - want.1).abs() <= SYNC_TOLERANCE_SECS,
        "{}: A/V offsets (start, end) {got:?}, source {want:?}",
        file.display()
    );
}

/// Publishes `tags` in real time as `stream` and panics on any client error.
fn publish_realtime(server: &Server, stream: &str, tags: &[Tag]) -> Published {
    runtime()
        .block_on(publish_tags(server.rtmp, APP, stream, tags, true))
        .unwrap_or_else(|e| panic!("publishing {stream}: {e}"))
}

/// Re-tags Enhanced RTMP `hvc1` video (SequenceStart, CodedFrames, CodedFramesX, SequenceEnd)
/// in the legacy AVC-like layout with codec id 12: `(frametype << 4) | 12`, AVCPacketType,
/// SI24 composition time, then the same payload. Metadata packets (colorInfo) are dropped:
/// legacy FLV has no such thing.
fn to_legacy_hevc(tags: Vec<Tag>) -> Vec<Tag> {
    tags.into_iter()
        .filter_map(|mut tag| {
            let body = &tag.body;
            if tag.kind != MediaKind::Video || body[0] & 0x80 == 0 {
                return Some(tag);
            }
            assert_eq!(&body[1..5], b"hvc1", "only hvc1 is re-tagged");
            let frame_type = (body[0] >> 4) & 0x07;
            let first = (frame_type << 4) | LEGACY_HEVC;
            let mut out = BytesMut::with_capacity(body.len() + 1);
            match body[0] & 0x0f {
                // SequenceStart: hvcC follows; cts 0.
                0 => out.put_slice(&[first, 0, 0, 0, 0]),
                // CodedFrames: SI24 cts and the NAL units follow, as in legacy.
                1 => out.put_slice(&[first, 1]),
                // CodedFramesX: cts is implicitly 0.
                3 => out.put_slice(&[first, 1, 0, 0, 0]),
                2 => out.put_slice(&[first, 2, 0, 0, 0]),
                4 => return None,
                other => panic!("unexpected E-RTMP packet type {other} in the HEVC asset"),
            }
            if matches!(body[0] & 0x0f, 0 | 1 | 3) {
                out.put_slice(&body[5..]);
            }
            tag.body = out.freeze();
            Some(tag)
        })
        .collect()
}

#[test]
fn legacy_hevc_with_codec_id_12_is_recorded() {
    let ffmpeg9 = ffmpeg9();
    let asset = asset("hevc_aac.flv");
    let source = read_tags(&asset);
    let legacy = to_legacy_hevc(source.clone());

    // The re-tagging itself: every frame and header means the same to the parser as before.
    let video = |tags: &[Tag]| -> Vec<VideoTag> {
        tags.iter()
            .filter(|t| t.kind == MediaKind::Video)
            .map(|t| parse_video_tag(&t.body).unwrap())
            .filter(|v| !matches!(v, VideoTag::Ignored(_)))
            .collect()
    };
    assert_eq!(video(&legacy), video(&source));
    assert!(
        legacy
            .iter()
            .filter(|t| t.kind == MediaKind::Video)
            .all(|t| t.body[0] & 0x8f == LEGACY_HEVC),
        "every video tag is legacy id 12"
    );

    let server = Server::start(&record_toml("mp4 flv m3u8:4"));
    publish_realtime(&server, "hevc12", &legacy);
    wait_complete(&server, "hevc12", 3);

    let expected = recordable_counts(&ffmpeg9, &asset);
    let source_video = packet_list(&ffmpeg9, &asset).streams[0].clone();
    for ext in ["mp4", "flv", "m3u8"] {
        let files = server.recorded_for(APP, "hevc12", ext);
        assert_eq!(files.len(), 1, "{ext}: {files:?}");
        let file = &files[0];
        let banner = banner(&ffmpeg9, file);
        assert!(banner.contains("Video: hevc"), "{ext}: {banner}");
        assert!(banner.contains("Audio: aac"), "{ext}: {banner}");
        if ext != "m3u8" {
            let d = banner_duration(&ffmpeg9, file);
            assert!(
                (d - SOURCE_SECS).abs() <= TOLERANCE_SECS,
                "{ext}: duration {d}"
            );
        }
        let list = packet_list(&ffmpeg9, file);
        let counts: Vec<usize> = list.streams.iter().map(Vec::len).collect();
        assert_eq!(counts, expected, "{ext}: packets per stream");
        if ext != "m3u8" {
            // Same NAL units in the same (decode) order; TS carries them as Annex B instead.
            let crcs = |s: &[Pkt]| s.iter().map(|p| p.crc.clone()).collect::<Vec<_>>();
            assert_eq!(
                crcs(&list.streams[0]),
                crcs(&source_video),
                "{ext}: video payloads"
            );
        }
        assert_decodes_cleanly(&ffmpeg9, file);
    }
}

#[test]
fn timestamps_wrapping_past_32_bits_record_cleanly_and_in_sync() {
    let asset = asset("h264_aac.flv");
    let tags: Vec<Tag> = read_tags(&asset)
        .into_iter()
        .map(|t| Tag {
            timestamp: t.timestamp.wrapping_add(WRAP_START),
            ..t
        })
        .collect();
    assert!(
        tags.iter().any(|t| t.timestamp < 10_000)
            && tags.iter().any(|t| t.timestamp > u32::MAX - 3_000),
        "the stream wraps"
    );
    let server = Server::start(&record_toml("mp4 flv m3u8:4"));
    publish_realtime(&server, "wrap", &tags);
    wait_complete(&server, "wrap", 3);
    assert!(
        server
            .log_lines(&["publish ended", &stream_field("wrap"), "discontinuities=0"])
            .len()
            == 1,
        "a wrap is not a discontinuity"
    );
    let expected = recordable_counts(ffmpeg(), &asset);
    for ext in ["mp4", "flv", "m3u8"] {
        let files = server.recorded_for(APP, "wrap", ext);
        assert_eq!(files.len(), 1, "{ext}: one file across the wrap: {files:?}");
        assert_valid(&files[0], &["h264", "aac"], SOURCE_SECS, &expected);
        assert_monotonic(ffmpeg(), &files[0]);
        assert_in_sync(ffmpeg(), &asset, &files[0]);
    }
}

/// Publishes h264_aac.flv with its timeline broken at the first keyframe after
/// [`JUMP_AT_MS`]: from there on each timestamp becomes `rewrite(ts, break_ts)`; with
/// `restart`, the header tags (metadata, sequence headers) are sent again first at
/// timestamp 0, as an encoder that restarts does. Checks one continuous, clean, in-sync file
/// per format.
fn assert_jump_is_bridged(stream: &str, restart: bool, rewrite: fn(u32, u32) -> u32) {
    let asset = asset("h264_aac.flv");
    let source = read_tags(&asset);
    let split = source
        .iter()
        .position(|t| is_video_keyframe(t) && is_media_frame(t) && t.timestamp >= JUMP_AT_MS)
        .unwrap();
    let break_ts = source[split].timestamp;
    let headers: Vec<Tag> = source
        .iter()
        .take_while(|t| !is_media_frame(t))
        .map(|t| Tag {
            timestamp: 0,
            send_at_ms: u64::from(break_ts),
            ..t.clone()
        })
        .collect();
    assert!(headers.len() >= 2, "the asset starts with sequence headers");
    let mut tags = source[..split].to_vec();
    if restart {
        tags.extend(headers);
    }
    tags.extend(source[split..].iter().map(|t| Tag {
        timestamp: rewrite(t.timestamp, break_ts),
        ..t.clone()
    }));

    let server = Server::start(&record_toml("mp4 flv"));
    publish_realtime(&server, stream, &tags);
    wait_complete(&server, stream, 2);
    let ended = server.log_lines(&["publish ended", &stream_field(stream)]);
    assert!(
        ended.len() == 1 && ended[0].contains("discontinuities=1"),
        "one bridged discontinuity: {ended:?}"
    );
    let expected = recordable_counts(ffmpeg(), &asset);
    for ext in ["mp4", "flv"] {
        let files = server.recorded_for(APP, stream, ext);
        assert_eq!(files.len(), 1, "{ext}: one continuous file: {files:?}");
        assert_valid(&files[0], &["h264", "aac"], SOURCE_SECS, &expected);
        assert_monotonic(ffmpeg(), &files[0]);
        assert_in_sync(ffmpeg(), &asset, &files[0]);
    }
}

#[test]
fn encoder_restart_with_timestamps_back_at_zero_continues_the_file() {
    assert_jump_is_bridged("backward", true, |ts, base| ts.saturating_sub(base));
}

#[test]
fn forward_jump_of_an_hour_continues_the_file() {
    assert_jump_is_bridged("forward", false, |ts, _| ts + FORWARD_JUMP_MS);
}

/// How far before its predecessor one audio frame is stamped in the jitter test: well under
/// the normaliser's discontinuity threshold, so it is jitter, not a jump.
const JITTER_BACK_MS: u32 = 5;

#[test]
fn a_track_stepping_back_a_few_ms_still_gets_increasing_dts() {
    let asset = asset("h264_aac.flv");
    let mut tags = read_tags(&asset);
    // The first audio frame after 5 s is stamped a little before the audio frame before it,
    // as encoders that resync audio to the wall clock do.
    let audio: Vec<usize> = (0..tags.len())
        .filter(|&i| tags[i].kind == MediaKind::Audio && is_media_frame(&tags[i]))
        .collect();
    let k = audio
        .iter()
        .position(|&i| tags[i].timestamp >= JUMP_AT_MS)
        .unwrap();
    tags[audio[k]].timestamp = tags[audio[k - 1]].timestamp - JITTER_BACK_MS;

    let server = Server::start(&record_toml("mp4 flv m3u8:4"));
    publish_realtime(&server, "jitter", &tags);
    wait_complete(&server, "jitter", 3);
    let expected = recordable_counts(ffmpeg(), &asset);
    for ext in ["mp4", "flv", "m3u8"] {
        let files = server.recorded_for(APP, "jitter", ext);
        assert_eq!(files.len(), 1, "{ext}: {files:?}");
        let file = &files[0];
        let p = probe(file);
        assert_eq!(p.video_frames as usize, expected[0], "{ext}: video frames");
        // The late frame may be dropped or moved; nothing else may go.
        assert!(
            (expected[1] - 1..=expected[1]).contains(&(p.audio_frames as usize)),
            "{ext}: {} audio frames of {}",
            p.audio_frames,
            expected[1]
        );
        assert_monotonic(ffmpeg(), file);
        assert_decodes_cleanly(ffmpeg(), file);
    }
}

#[test]
fn b_frames_keep_composition_offsets_and_decode_order() {
    let asset = asset("h264_aac.flv");
    let server = Server::start(&record_toml("mp4 flv"));
    publish_realtime(&server, "bframes", &read_tags(&asset));
    wait_complete(&server, "bframes", 2);

    let source = packet_list(ffmpeg(), &asset);
    // Composition offsets (pts − dts) in ms, and payload checksums, in decode order.
    let offsets = |l: &PacketList| -> Vec<i64> {
        l.streams[0]
            .iter()
            .map(|p| (l.secs(0, p.pts - p.dts) * 1000.0).round() as i64)
            .collect()
    };
    let crcs =
        |l: &PacketList| -> Vec<String> { l.streams[0].iter().map(|p| p.crc.clone()).collect() };
    assert!(
        offsets(&source).windows(2).any(|w| w[0] != w[1]),
        "the asset has B-frames"
    );
    for ext in ["mp4", "flv"] {
        let file = &server.recorded_for(APP, "bframes", ext)[0];
        let list = packet_list(ffmpeg(), file);
        let reordered = list.streams[0].iter().filter(|p| p.pts != p.dts).count();
        assert!(
            reordered > list.streams[0].len() / 2,
            "{ext}: pts ≠ dts for B-frame streams ({reordered} of {})",
            list.streams[0].len()
        );
        assert_eq!(
            offsets(&list),
            offsets(&source),
            "{ext}: composition offsets"
        );
        assert_eq!(
            crcs(&list),
            crcs(&source),
            "{ext}: decode order and payloads"
        );
        // Presentation times, sorted, are the 25 fps grid without holes or duplicates.
        let mut pts: Vec<i64> = list.streams[0]
            .iter()
            .map(|p| (list.secs(0, p.pts) * 1000.0).round() as i64)
            .collect();
        pts.sort_unstable();
        assert!(
            pts.windows(2).all(|w| (w[1] - w[0] - 40).abs() <= 1),
            "{ext}: pts grid {pts:?}"
        );
        assert_decodes_cleanly(ffmpeg(), file);
    }
}

#[test]
fn new_sequence_header_mid_stream_starts_a_new_file() {
    let first = asset("h264_aac.flv");
    let second = asset("h264_aac_640x360.flv");
    // The second asset continues the first's timeline on the same connection, as an encoder
    // that changes resolution does.
    let mut tags = read_tags(&first);
    tags.extend(read_tags(&second).into_iter().map(|t| Tag {
        timestamp: t.timestamp + REPEAT_MS,
        send_at_ms: t.send_at_ms + u64::from(REPEAT_MS),
        ..t
    }));
    let server = Server::start(&record_toml("mp4 flv m3u8:4"));
    publish_realtime(&server, "resize", &tags);
    wait_complete(&server, "resize", 6);

    let parts = [
        (&first, (320, 240), SOURCE_SECS),
        (&second, (640, 360), SECOND_ASSET_SECS),
    ];
    for ext in ["mp4", "flv", "m3u8"] {
        let files = server.recorded_for(APP, "resize", ext);
        assert_eq!(
            files.len(),
            2,
            "{ext}: a new file at the new resolution: {files:?}"
        );
        // Object names start with the start time: sorted, they are in recording order.
        for (file, (asset, size, secs)) in files.iter().zip(parts) {
            assert_eq!(video_size(file), size, "{}", file.display());
            let expected = recordable_counts(ffmpeg(), asset);
            if ext == "m3u8" {
                let p = probe(file);
                assert_eq!(p.video_frames as usize, expected[0], "{}", file.display());
                assert_decodes_cleanly(ffmpeg(), file);
            } else {
                assert_valid(file, &["h264", "aac"], secs, &expected);
            }
        }
    }
}

#[test]
fn unsupported_codecs_record_the_other_track_and_are_logged_once() {
    let server = Server::start(&record_toml("mp4"));
    // H.264 + MP3 from a real ffmpeg publisher, and Sorenson H.263 (FLV codec id 2) + AAC.
    let mp3 = asset("h264_mp3.flv");
    let flv1 = asset("flv1_aac.flv");
    assert!(
        publish(ffmpeg(), &mp3, &server.url(APP, "mp3")).success(),
        "ffmpeg publishes"
    );
    publish_realtime(&server, "flv1", &read_tags(&flv1));
    let source = [
        ("mp3", &mp3, vec!["h264"], probe(&mp3).video_frames),
        ("flv1", &flv1, vec!["aac"], probe(&flv1).audio_frames),
    ];
    for (stream, asset, codecs, frames) in source {
        wait_complete(&server, stream, 1);
        let warnings = server.log_lines(&["unsupported codec", &stream_field(stream)]);
        assert_eq!(warnings.len(), 1, "{stream}: logged once: {warnings:?}");
        let files = server.recorded_for(APP, stream, "mp4");
        assert_eq!(files.len(), 1, "{stream}: {files:?}");
        let p = probe(&files[0]);
        assert_eq!(p.codecs, codecs, "{}", asset.display());
        assert_eq!(
            p.video_frames + p.audio_frames,
            frames,
            "{stream}: every frame of the supported track"
        );
        assert!(
            (p.duration - SOURCE_SECS).abs() <= TOLERANCE_SECS,
            "{stream}: duration {}",
            p.duration
        );
        assert_decodes_cleanly(ffmpeg(), &files[0]);
    }
}

/// Deterministic pseudo-random bytes (xorshift64), so a failing case can be replayed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A format-0 chunk header on chunk stream 3, message stream 0.
fn chunk_header(type_id: u8, length: u32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_slice(&[0x03, 0, 0, 0]);
    b.put_slice(&length.to_be_bytes()[1..]);
    b.put_u8(type_id);
    b.put_u32_le(0);
    b
}

/// Reads until the server closes `socket`; panics if it is still open after `within`.
async fn assert_closed_by_server(what: &str, socket: &mut TcpStream, within: Duration) {
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(within, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{what}: the server did not close the connection within {within:?}"
    );
}

/// Handshake and `connect`, as a well-behaved client starts.
async fn connected(addr: SocketAddr) -> Client {
    Client::connect(addr, APP, &format!("rtmp://{addr}/{APP}"))
        .await
        .unwrap()
}

/// How long the server gives a client for its handshake and to stay silent, in the malformed
/// input test (short, so stalled clients are dropped quickly).
const HANDSHAKE_TIMEOUT_SECS: u64 = 1;
const IDLE_TIMEOUT_SECS: u64 = 2;

/// Every hostile client of the malformed-input test, one after the other.
async fn hostile_clients(addr: SocketAddr, cut_tags: Vec<Tag>) {
    let slack = Duration::from_secs(IDLE_TIMEOUT_SECS + 3);

    // Garbage instead of a handshake: a bad version byte, then the same with version 3.
    for (seed, version) in [(1, None), (2, Some(3u8))] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut bytes = noise(seed, 1 + 2 * 1536 + 4096);
        if let Some(v) = version {
            bytes[0] = v;
        }
        let _ = s.write_all(&bytes).await;
        assert_closed_by_server("garbage handshake", &mut s, slack).await;
    }

    // Garbage after a good handshake and connect.
    let mut c = connected(addr).await;
    let _ = c.write_raw(&noise(3, 64 * 1024)).await;
    assert_closed_by_server("garbage chunks", c.socket(), slack).await;

    // Garbage AMF in `connect`: an object whose first key claims 65535 bytes.
    let mut c = Client::handshake(addr).await.unwrap();
    let mut amf = BytesMut::from(&b"\x02\x00\x07connect\x00"[..]);
    amf.put_f64(1.0);
    amf.put_slice(&[0x03, 0xFF, 0xFF, b'a', 0x11]);
    let mut bytes = chunk_header(20, u32::try_from(amf.len()).unwrap());
    bytes.put_slice(&amf);
    let _ = c.write_raw(&bytes).await;
    assert_closed_by_server("garbage AMF", c.socket(), slack).await;

    // A chunk cut short: then the client goes silent, or closes its side.
    for close in [false, true] {
        let mut c = connected(addr).await;
        let mut bytes = chunk_header(20, 100);
        bytes.put_slice(&[0x02, 0x00, 0x07]);
        c.write_raw(&bytes).await.unwrap();
        if close {
            c.socket().shutdown().await.unwrap();
        }
        assert_closed_by_server("truncated chunk", c.socket(), slack).await;
    }

    // An absurd SetChunkSize, and a message longer than any limit.
    let mut set_chunk_size = chunk_header(1, 4);
    set_chunk_size.put_u32(0x7FFF_FFFF);
    for (what, bytes) in [
        ("absurd SetChunkSize", set_chunk_size),
        ("oversized message", chunk_header(9, 0x00FF_FFFF)),
    ] {
        let mut c = connected(addr).await;
        let _ = c.write_raw(&bytes).await;
        assert_closed_by_server(what, c.socket(), slack).await;
    }

    // A client that stalls in the middle of the handshake.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[3u8; 200]).await.unwrap();
    let started = std::time::Instant::now();
    assert_closed_by_server(
        "stalled handshake",
        &mut s,
        Duration::from_secs(HANDSHAKE_TIMEOUT_SECS + 3),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the timeout"
    );

    // A publisher whose tag bodies are malformed: dropped, the session itself is fine.
    let mut c = connected(addr).await;
    c.publish("bad").await.unwrap();
    let mut bodies: Vec<(MediaKind, Vec<u8>)> = vec![
        (MediaKind::Video, vec![]),
        (MediaKind::Video, vec![0x17]),
        (MediaKind::Video, vec![0x17, 0x00, 0, 0, 0, 1, 2, 3]),
        (MediaKind::Video, vec![0x90, b'h', b'v']),
        (MediaKind::Video, vec![0x90, b'h', b'v', b'c', b'1', 0xff]),
        (MediaKind::Video, vec![0x17, 0x01, 0, 0, 0]),
        (MediaKind::Audio, vec![0xaf]),
        (MediaKind::Audio, vec![0xaf, 0x00, 0xff]),
        (MediaKind::Data, vec![0x02, 0xff, 0xff]),
    ];
    for seed in 10..40 {
        let kind = if seed % 2 == 0 {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        bodies.push((kind, noise(seed, 16 + seed as usize * 7)));
    }
    for (ts, (kind, body)) in bodies.iter().enumerate() {
        c.send_media(*kind, ts as u32 * 40, body).await.unwrap();
    }
    c.close().await.unwrap();

    // A publisher cut off by an absurd SetChunkSize in the middle of its stream.
    let mut c = connected(addr).await;
    c.set_chunk_size(CLIENT_CHUNK_SIZE).await.unwrap();
    c.publish("cut").await.unwrap();
    let start = tokio::time::Instant::now();
    for tag in &cut_tags {
        tokio::time::sleep_until(start + Duration::from_millis(tag.send_at_ms)).await;
        c.send_media(tag.kind, tag.timestamp, &tag.body)
            .await
            .unwrap();
    }
    let mut bytes = chunk_header(1, 4);
    bytes.put_u32(0x7FFF_FFFF);
    let _ = c.write_raw(&bytes).await;
    assert_closed_by_server(
        "publisher sending an absurd SetChunkSize",
        c.socket(),
        slack,
    )
    .await;
}

#[test]
fn malformed_input_closes_only_its_own_connection() {
    let mut server = Server::start(&format!(
        "{}[ingest]\nhandshake_timeout_secs = {HANDSHAKE_TIMEOUT_SECS}\n\
         idle_timeout_secs = {IDLE_TIMEOUT_SECS}\n",
        record_toml("mp4")
    ));
    let asset = asset("h264_aac.flv");
    let tags = read_tags(&asset);
    // The cut-off publisher sends the first 3 s.
    let cut_tags: Vec<Tag> = tags
        .iter()
        .filter(|t| t.timestamp < 3_000)
        .cloned()
        .collect();
    let addr = server.rtmp;
    let rt = runtime();
    let (good, ()) = rt.block_on(async {
        tokio::join!(publish_tags(addr, APP, "good", &tags, true), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            hostile_clients(addr, cut_tags).await;
        })
    });
    let good = good.unwrap();
    assert!(
        good.elapsed < Duration::from_secs_f64(SOURCE_SECS + 1.0),
        "the good publisher was not slowed down: {good:?}"
    );
    wait_complete(&server, "good", 1);
    wait_complete(&server, "cut", 1);
    assert!(server.is_running(), "the server survived");
    assert!(
        !server
            .log_lines(&["malformed media tag dropped", &stream_field("bad")])
            .is_empty()
    );

    let files = server.recorded_for(APP, "good", "mp4");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_valid(
        &files[0],
        &["h264", "aac"],
        SOURCE_SECS,
        &recordable_counts(ffmpeg(), &asset),
    );
    // What the cut-off publisher sent before its connection was closed is a valid file.
    let files = server.recorded_for(APP, "cut", "mp4");
    assert_eq!(files.len(), 1, "{files:?}");
    let p = probe(&files[0]);
    assert!((2.5..=3.3).contains(&p.duration), "cut: {}", p.duration);
    assert_decodes_cleanly(ffmpeg(), &files[0]);
    // Nothing of the malformed publisher could be recorded: it never sent a sequence header.
    assert!(server.recorded_for(APP, "bad", "mp4").is_empty());
    assert!(server.terminate(Duration::from_secs(15)), "clean exit");
}

#[test]
fn environment_overrides_the_config_file() {
    // The file says 180 s; LIVEREC_RECORD__DELAY_SECS=1 must win.
    let server = Server::start_with_env(
        "[record]\ndelay_secs = 180\nformats = [{ format = \"mp4\" }]",
        &[("LIVEREC_RECORD__DELAY_SECS", "1")],
    );
    let config = server.log_lines(&["built-in record config"]);
    assert!(
        config.len() == 1 && config[0].contains("delay_secs=1.0 "),
        "{config:?}"
    );
    let asset = asset("h264_aac_640x360.flv");
    let published = publish_realtime(&server, "env", &read_tags(&asset));
    server.wait_for_lines(
        &["recording file complete", &stream_field("env")],
        1,
        Duration::from_secs(10),
    );
    let waited = published.closed_at.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "finalized after the 1 s delay: {waited:?}"
    );
    let file = &server.recorded_for(APP, "env", "mp4")[0];
    assert_valid(
        file,
        &["h264", "aac"],
        SECOND_ASSET_SECS,
        &recordable_counts(ffmpeg(), &asset),
    );
}

/// Loops of the asset the flooding publisher sends as fast as it can.
const FLOOD_LOOPS: u32 = 20;
/// The recorder queue of the isolation test: small, so the flood's recorder may hold up its
/// own publisher (never the others).
const SMALL_RECORDER_QUEUE: usize = 256 * 1024;
/// How much later than its client the server may see a real-time publisher's end.
const MAX_SERVER_LAG: Duration = Duration::from_millis(1500);

#[test]
fn a_flooding_publisher_does_not_slow_down_other_streams() {
    let server = Server::start(&format!(
        "{}[hub]\nrecorder_queue_bytes = {SMALL_RECORDER_QUEUE}\n",
        record_toml("mp4 flv m3u8:1 cmaf:1")
    ));
    let asset = asset("h264_aac.flv");
    let tags = read_tags(&asset);
    let flood: Vec<Tag> = (0..FLOOD_LOOPS)
        .flat_map(|i| {
            tags.iter().map(move |t| Tag {
                timestamp: t.timestamp + i * REPEAT_MS,
                ..t.clone()
            })
        })
        .collect();
    let addr = server.rtmp;
    let (a, b, f) = runtime().block_on(async {
        tokio::join!(
            publish_tags(addr, APP, "rt1", &tags, true),
            publish_tags(addr, APP, "rt2", &tags, true),
            publish_tags(addr, APP, "flood", &flood, false),
        )
    });
    f.unwrap();
    for (stream, published) in [("rt1", a.unwrap()), ("rt2", b.unwrap())] {
        assert!(
            published.elapsed < Duration::from_secs_f64(SOURCE_SECS + 1.0)
                && published.max_lag < Duration::from_millis(500),
            "{stream} finished in real time: {published:?}"
        );
        let seen = server
            .wait_for_lines(&["publish ended", &stream_field(stream)], 1, T)
            .len();
        assert_eq!(seen, 1);
        let at = server
            .logged_at(&["publish ended", &stream_field(stream)])
            .unwrap();
        assert!(
            at.saturating_duration_since(published.closed_at) < MAX_SERVER_LAG,
            "{stream}: the server read its publisher's end {:?} late",
            at.saturating_duration_since(published.closed_at)
        );
    }
    for stream in ["rt1", "rt2", "flood"] {
        wait_complete(&server, stream, 4);
    }
    let expected = recordable_counts(ffmpeg(), &asset);
    for stream in ["rt1", "rt2"] {
        assert!(
            server
                .log_lines(&["recorder fell behind", &stream_field(stream)])
                .is_empty(),
            "{stream} lost nothing"
        );
        for ext in ["mp4", "flv"] {
            let files = server.recorded_for(APP, stream, ext);
            assert_eq!(files.len(), 1, "{stream}/{ext}: {files:?}");
            assert_valid(&files[0], &["h264", "aac"], SOURCE_SECS, &expected);
        }
        let playlists = server.recorded_for(APP, stream, "m3u8");
        assert_eq!(playlists.len(), 2, "{stream}: {playlists:?}");
        for playlist in &playlists {
            assert_eq!(probe(playlist).video_frames as usize, expected[0]);
            assert_decodes_cleanly(ffmpeg(), playlist);
        }
    }
    // The flood's recording may have counted gaps (and starts at the GOP the recorder found
    // when it subscribed), but what it holds is valid.
    for ext in ["mp4", "flv", "m3u8"] {
        let files = server.recorded_for(APP, "flood", ext);
        assert!(!files.is_empty(), "flood/{ext}");
        for file in files {
            assert!(probe(&file).first_video_frame_is_key, "{}", file.display());
            assert_decodes_cleanly(ffmpeg(), &file);
        }
    }
}

/// Issue 11: a 120 s, 2 Mbit/s file pushed at full speed (`ffmpeg -i F -c copy -f flv URL`, no
/// `-re`) keeps every frame in every format. Acknowledgements sent while the publisher was
/// ahead used to reach its closed socket; its kernel answered with a reset, which threw away
/// seconds of media still unread.
#[test]
fn a_file_pushed_at_full_speed_keeps_every_frame_in_every_format() {
    let server = Server::start(&format!(
        "{}[hub]\nrecorder_queue_bytes = {SMALL_RECORDER_QUEUE}\n",
        record_toml("mp4 m3u8:10 cmaf:10 flv")
    ));
    let asset = asset("h264_aac_120s_2mbps.flv");
    let status = std::process::Command::new(ffmpeg())
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(&asset)
        .args(["-c", "copy", "-f", "flv", &server.url(APP, "fast")])
        .status()
        .unwrap();
    assert!(status.success());
    wait_complete(&server, "fast", 4);
    assert!(
        server.log_lines(&["publish ended by the client"]).len() == 1,
        "the client's deleteStream was read, not lost to a reset"
    );
    assert!(
        !server.log_contains("the publisher's connection failed"),
        "no reset"
    );
    let expected = recordable_counts(ffmpeg(), &asset);
    assert_eq!(expected[0], 3600);
    for (ext, cmaf) in [
        ("mp4", false),
        ("m3u8", false),
        ("m3u8", true),
        ("flv", false),
    ] {
        let files: Vec<_> = server
            .recorded_for(APP, "fast", ext)
            .into_iter()
            .filter(|f| f.to_string_lossy().ends_with(".cmaf.m3u8") == cmaf)
            .collect();
        assert_eq!(files.len(), 1, "{ext}: {files:?}");
        let got: Vec<usize> = packets(ffmpeg(), &files[0])
            .streams
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(got, expected, "{ext}: every frame");
    }
}

/// Issue 11: the longest stream name with a template that puts it in the file name: the name
/// is shortened to the file system's 255 bytes (DESIGN.md "Object names"), the file is stored,
/// indexed and decodes, and nothing is stranded in the spool.
#[test]
fn a_longest_stream_name_in_the_file_name_is_shortened_not_stranded() {
    let server = Server::start(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\", object_prefix = \
         \"r/{StreamName}_{EscapedStartTime}_{EscapedEndTime}\" }]\n",
    );
    let stream = "s".repeat(255);
    let asset = asset("h264_aac.flv");
    assert!(publish(ffmpeg(), &asset, &server.url(APP, &stream)).success());
    server.wait_for_lines(&["recording file complete", &stream], 1, T);
    let mut files = Vec::new();
    collect_mp4(&server.data_dir().join("buckets/default/r"), &mut files);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.len() <= 255 && name.ends_with(".mp4"), "{name}");
    assert!(name.starts_with(&"s".repeat(200)), "{name}");
    assert_decodes_cleanly(ffmpeg(), &files[0]);
    let rows = index_rows(&server.data_dir(), "live.liverec.local", APP, &stream);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].oss_object, format!("r/{name}"));
    let spool = server.data_dir().join("buckets/default/.spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the spool: {left:?}");
}

fn collect_mp4(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_mp4(&path, out);
        } else if path.extension().is_some_and(|e| e == "mp4") {
            out.push(path);
        }
    }
}
