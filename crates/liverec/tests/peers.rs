//! Publishers other than ffmpeg: GStreamer's native RTMP client (`rtmp2sink`) and its librtmp
//! one (`rtmpsink`; librtmp is also the RTMP stack OBS Studio grew out of). Each replays the
//! H.264/AAC asset (`flvdemux ! parse ! flvmux`, packets copied as ffmpeg `-c copy` does); the
//! recording must hold every packet, byte for byte, and decode cleanly.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(60);

/// Plays `asset` into `sink` (an RTMP sink element) at `url`; returns whether it succeeded.
fn gst_publish(sink: &str, asset: &Path, url: &str) -> bool {
    let pipeline = format!(
        "filesrc location={} ! flvdemux name=d \
         d.video ! queue ! h264parse ! mux. \
         d.audio ! queue ! aacparse ! mux. \
         flvmux name=mux streamable=true ! {sink} location={url}",
        asset.display()
    );
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .status()
        .expect("gst-launch-1.0 (scripts/test.sh installs GStreamer)");
    status.success()
}

/// The packets' checksums per stream, as `ffmpeg -f framecrc` prints them (size and CRC of
/// each packet's payload), from the first video packet on.
fn packet_crcs(file: &Path) -> Vec<Vec<String>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("ffmpeg framecrc");
    assert!(out.status.success(), "framecrc of {}", file.display());
    let mut streams: Vec<Vec<String>> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(index), Some(size), Some(crc)) = (fields.first(), fields.get(4), fields.get(5))
        else {
            continue;
        };
        let index: usize = index.parse().expect("stream index");
        streams.resize_with(streams.len().max(index + 1), Vec::new);
        streams[index].push(format!("{size}/{crc}"));
    }
    streams
}

fn check_peer(sink: &str, stream: &str) {
    let mut server = Server::start("[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }]");
    let asset = asset("h264_aac.flv");
    assert!(
        gst_publish(sink, &asset, &server.url("live", stream)),
        "{sink} failed to publish"
    );
    server.wait_for_log("recording file complete", T);
    let files = server.recorded("mp4");
    assert_eq!(files.len(), 1, "{sink}: {files:?}");
    let file = &files[0];

    let p = probe(file);
    assert_eq!(p.codecs, vec!["h264", "aac"], "{sink}");
    assert!(p.first_video_frame_is_key, "{sink}: starts with a keyframe");
    assert!(
        (p.duration - 10.0).abs() <= 0.3,
        "{sink}: duration {} s of a 10 s asset",
        p.duration
    );
    assert_decodes_cleanly(Path::new("ffmpeg"), file);
    let expected = recordable_counts(Path::new("ffmpeg"), &asset);
    let recorded = packet_crcs(file);
    let source = packet_crcs(&asset);
    assert_eq!(
        recorded.iter().map(Vec::len).collect::<Vec<_>>(),
        expected,
        "{sink}: every packet recorded"
    );
    assert_eq!(
        recorded[0], source[0],
        "{sink}: video packets byte for byte"
    );
    let audio_from = source[1].len() - expected[1];
    assert_eq!(
        recorded[1],
        source[1][audio_from..],
        "{sink}: audio packets byte for byte"
    );
    assert!(server.terminate(T), "{sink}: clean shutdown");
}

#[test]
fn gstreamer_rtmp2sink_publish_is_recorded_packet_for_packet() {
    check_peer("rtmp2sink", "gst-native");
}

#[test]
fn gstreamer_librtmp_rtmpsink_publish_is_recorded_packet_for_packet() {
    check_peer("rtmpsink", "gst-librtmp");
}
