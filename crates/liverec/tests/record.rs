//! End to end: real ffmpeg publishers → liverec → files checked by ffprobe and a full decode.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

const SOURCE_SECS: f64 = 10.0;
const TOLERANCE_SECS: f64 = 0.3;
const T: Duration = Duration::from_secs(60);

/// Packets per stream a recording of `asset` must hold: every video frame, and every audio
/// frame from the first video keyframe on (a file starts with a keyframe; audio stamped
/// before it has no picture to go with).
fn source_counts(ffmpeg: &Path, asset: &Path) -> Vec<usize> {
    let p = packets(ffmpeg, asset);
    if p.streams.len() < 2 {
        return p.streams.iter().map(Vec::len).collect();
    }
    let first_video = p.streams[0].first().map_or(i64::MIN, |(dts, _)| *dts);
    vec![
        p.streams[0].len(),
        p.streams[1]
            .iter()
            .filter(|(dts, _)| *dts >= first_video)
            .count(),
    ]
}

fn assert_valid_h264_aac(file: &Path, expected_secs: f64) -> Probe {
    let p = probe(file);
    assert_eq!(p.codecs, vec!["h264", "aac"], "{}", file.display());
    assert!(
        (p.duration - expected_secs).abs() <= TOLERANCE_SECS,
        "{}: duration {} not within {TOLERANCE_SECS} s of {expected_secs}",
        file.display(),
        p.duration
    );
    assert!(
        p.first_video_frame_is_key,
        "{} does not start with a keyframe",
        file.display()
    );
    assert_decodes_cleanly(Path::new("ffmpeg"), file);
    p
}

#[test]
fn h264_aac_stream_is_recorded_in_every_format() {
    let mut server = Server::start(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }, { format = \"flv\" }, { format = \"m3u8\", slice_secs = 3 }, { format = \"cmaf\", slice_secs = 3 }]",
    );
    let asset = asset("h264_aac.flv");
    let status = publish(
        Path::new("ffmpeg"),
        &asset,
        &format!("{}?vhost=v.example.com", server.url("live", "s1")),
    );
    assert!(status.success());
    server.wait_for_logs("complete", 4, T);

    let expected = source_counts(Path::new("ffmpeg"), &asset);
    for ext in ["mp4", "flv"] {
        let files = server.recorded(ext);
        assert_eq!(files.len(), 1, "{ext}: {files:?}");
        let name = files[0].to_string_lossy().into_owned();
        assert!(
            name.contains("/record/v.example.com/live/s1/"),
            "object name {name}"
        );
        let p = assert_valid_h264_aac(&files[0], SOURCE_SECS);
        assert_eq!(
            p.video_frames as usize, expected[0],
            "{ext}: every video frame recorded"
        );
        assert_eq!(
            p.audio_frames as usize, expected[1],
            "{ext}: every audio frame recorded"
        );
    }
    let playlists = server.recorded("m3u8");
    assert_eq!(playlists.len(), 2, "{playlists:?}");
    // DESIGN.md "Object names": `{prefix}.m3u8` for TS, `{prefix}.cmaf.m3u8` for CMAF, with
    // the same prefix.
    let names: Vec<String> = playlists
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let cmaf: Vec<&String> = names.iter().filter(|n| n.ends_with(".cmaf.m3u8")).collect();
    assert_eq!(cmaf.len(), 1, "{names:?}");
    let ts = names.iter().find(|n| !n.ends_with(".cmaf.m3u8")).unwrap();
    assert_eq!(
        cmaf[0].trim_end_matches(".cmaf.m3u8"),
        ts.trim_end_matches(".m3u8"),
        "{names:?}"
    );
    for playlist in &playlists {
        let text = std::fs::read_to_string(playlist).unwrap();
        assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
        let p = probe(playlist);
        assert_eq!(p.codecs, vec!["h264", "aac"]);
        assert_eq!(
            p.video_frames as usize,
            expected[0],
            "{}",
            playlist.display()
        );
        assert_decodes_cleanly(Path::new("ffmpeg"), playlist);
    }
    assert_eq!(
        server.recorded("ts").len(),
        4,
        "10 s in 3 s slices cut at 1 s GOPs"
    );
    assert!(server.recorded("m4s").len() >= 4);
    // Every finished file is a row of the record index.
    let rows = index_rows(&server.data_dir(), "v.example.com", "live", "s1");
    let mut formats: Vec<&str> = rows.iter().map(|r| r.format.as_str()).collect();
    formats.sort_unstable();
    assert_eq!(formats, vec!["cmaf", "flv", "m3u8", "mp4"]);
    for row in &rows {
        assert!(
            (row.duration_secs - SOURCE_SECS).abs() <= TOLERANCE_SECS,
            "{row:?}"
        );
        assert_eq!((row.width, row.height), (320, 240), "{row:?}");
        assert!(row.size > 0 && row.end_time > row.start_time, "{row:?}");
        assert!(
            server
                .data_dir()
                .join("buckets/default")
                .join(&row.oss_object)
                .exists(),
            "{row:?}"
        );
    }
    assert!(server.terminate(Duration::from_secs(15)), "clean exit");
}

#[test]
fn hevc_and_av1_over_enhanced_rtmp_are_recorded() {
    let ffmpeg9 = ffmpeg9();
    let mut server = Server::start(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }, { format = \"flv\" }, { format = \"cmaf\", slice_secs = 4 }]",
    );
    for (asset_name, stream, codec) in [
        ("hevc_aac.flv", "hevc", "hevc"),
        ("av1_aac.flv", "av1", "av1"),
    ] {
        let asset = asset(asset_name);
        assert!(publish(&ffmpeg9, &asset, &server.url("live", stream)).success());
        server.wait_for_logs("complete", 3, T);
        let expected = source_counts(&ffmpeg9, &asset);
        for ext in ["mp4", "flv", "m3u8"] {
            let file = server
                .recorded(ext)
                .into_iter()
                .find(|f| f.to_string_lossy().contains(&format!("/{stream}/")))
                .unwrap_or_else(|| panic!("no {ext} for {stream}"));
            let banner = banner(&ffmpeg9, &file);
            assert!(
                banner.contains(&format!("Video: {codec}")),
                "{ext}/{stream}: {banner}"
            );
            assert!(banner.contains("Audio: aac"), "{ext}/{stream}: {banner}");
            if ext != "m3u8" {
                let d = banner_duration(&ffmpeg9, &file);
                assert!(
                    (d - SOURCE_SECS).abs() <= TOLERANCE_SECS,
                    "{ext}/{stream}: duration {d}"
                );
            }
            let counts: Vec<usize> = packets(&ffmpeg9, &file)
                .streams
                .iter()
                .map(Vec::len)
                .collect();
            assert_eq!(counts, expected, "{ext}/{stream}: packets per stream");
            assert_decodes_cleanly(&ffmpeg9, &file);
        }
    }
}

#[test]
fn hevc_is_recorded_as_mpeg_ts_hls() {
    let ffmpeg9 = ffmpeg9();
    let mut server = Server::start(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"m3u8\", slice_secs = 4 }]",
    );
    let asset = asset("hevc_aac.flv");
    assert!(publish(&ffmpeg9, &asset, &server.url("live", "h")).success());
    server.wait_for_log("complete", T);
    let playlist = &server.recorded("m3u8")[0];
    assert!(banner(&ffmpeg9, playlist).contains("Video: hevc"));
    let counts: Vec<usize> = packets(&ffmpeg9, playlist)
        .streams
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(counts, source_counts(&ffmpeg9, &asset));
    assert_decodes_cleanly(&ffmpeg9, playlist);
}

#[test]
fn cycle_cut_loses_and_duplicates_no_frame() {
    let mut server = Server::start(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\", cycle_secs = 3 }, { format = \"flv\", cycle_secs = 4, object_prefix = \"record/{AppName}/{StreamName}/part{Sequence}_{EscapedStartTime}_{EscapedEndTime}\" }]",
    );
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "cycle")).success());
    let expected = source_counts(Path::new("ffmpeg"), &asset);
    server.wait_for_log("recording ends", T);
    // 3 s cycles of 10 s cut at 1 s GOPs: 4 MP4 files; 4 s cycles: 3 FLV files.
    for (ext, files_expected) in [("mp4", 4), ("flv", 3)] {
        std::thread::sleep(Duration::from_millis(500));
        let files = server.recorded(ext);
        assert_eq!(files.len(), files_expected, "{ext}: {files:?}");
        let (mut video, mut audio, mut secs) = (0, 0, 0.0);
        for f in &files {
            let p = probe(f);
            assert!(
                p.first_video_frame_is_key,
                "{} starts with a keyframe",
                f.display()
            );
            assert_decodes_cleanly(Path::new("ffmpeg"), f);
            video += p.video_frames as usize;
            audio += p.audio_frames as usize;
            secs += p.duration;
        }
        if ext == "flv" {
            // `{Sequence}` in OssObjectPrefix numbers the files of one recording.
            let mut parts: Vec<String> = files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy()[..5].to_owned())
                .collect();
            parts.sort();
            assert_eq!(parts, vec!["part0", "part1", "part2"], "{files:?}");
        }
        assert_eq!(video, expected[0], "{ext}: video frames across the cuts");
        assert_eq!(audio, expected[1], "{ext}: audio frames across the cuts");
        assert!(
            (secs - SOURCE_SECS).abs() <= TOLERANCE_SECS * 2.0,
            "{ext}: total duration {secs}"
        );
    }
}

#[test]
fn publisher_returning_within_delay_continues_the_same_recording() {
    let mut server = Server::start("[record]\ndelay_secs = 6\nformats = [{ format = \"mp4\" }]");
    let asset = asset("h264_aac.flv");
    let url = server.url("live", "again");
    assert!(publish(Path::new("ffmpeg"), &asset, &url).success());
    server.wait_for_log("publish ended", T);
    assert!(publish(Path::new("ffmpeg"), &asset, &url).success());
    server.wait_for_log("complete", T);
    let files = server.recorded("mp4");
    assert_eq!(
        files.len(),
        1,
        "one recording across the reconnect: {files:?}"
    );
    let p = assert_valid_h264_aac(&files[0], 2.0 * SOURCE_SECS);
    let expected = source_counts(Path::new("ffmpeg"), &asset);
    assert_eq!(p.video_frames as usize, 2 * expected[0]);
    // Timestamps stay monotonic across the bridge.
    let pk = packets(Path::new("ffmpeg"), &files[0]);
    for stream in &pk.streams {
        assert!(
            stream.windows(2).all(|w| w[1].0 > w[0].0),
            "dts strictly increasing"
        );
    }
}

#[test]
fn second_publisher_of_a_live_stream_is_refused() {
    let mut server = Server::start("[record]\nenabled = false");
    let asset = asset("h264_aac.flv");
    let url = server.url("live", "dup");
    let mut first = publish_child(Path::new("ffmpeg"), &asset, &url, &[]);
    server.wait_for_log("publish started", T);
    let second = publish(Path::new("ffmpeg"), &asset, &url);
    assert!(!second.success(), "the second publisher must be refused");
    assert!(server.log_contains("publish refused"));
    assert!(
        first.wait().unwrap().success(),
        "the first publisher is unaffected"
    );
}

#[test]
fn audio_only_and_video_only_streams_are_recorded() {
    let mut server = Server::start(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }, { format = \"m3u8\", slice_secs = 4 }]",
    );
    for (name, stream, codecs) in [
        ("aac_only.flv", "audio", vec!["aac"]),
        ("h264_only.flv", "video", vec!["h264"]),
    ] {
        let asset = asset(name);
        assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", stream)).success());
        server.wait_for_logs("complete", 2, T);
        let expected = source_counts(Path::new("ffmpeg"), &asset);
        for ext in ["mp4", "m3u8"] {
            let f = server
                .recorded(ext)
                .into_iter()
                .find(|f| f.to_string_lossy().contains(&format!("/{stream}/")))
                .unwrap();
            let p = probe(&f);
            assert_eq!(p.codecs, codecs, "{}", f.display());
            assert!(
                (p.duration - SOURCE_SECS).abs() <= TOLERANCE_SECS,
                "{}: {}",
                f.display(),
                p.duration
            );
            assert_eq!(
                p.video_frames + p.audio_frames,
                expected[0] as u64,
                "{}",
                f.display()
            );
            assert_decodes_cleanly(Path::new("ffmpeg"), &f);
        }
    }
}

#[test]
fn sigterm_finalizes_open_recordings() {
    // Default delay (180 s): without shutdown handling nothing would be finalized.
    let mut server = Server::start(
        "[record]\nformats = [{ format = \"mp4\" }, { format = \"flv\" }, { format = \"m3u8\", slice_secs = 2 }]",
    );
    let asset = asset("h264_aac.flv");
    let mut publisher = publish_child(
        Path::new("ffmpeg"),
        &asset,
        &server.url("live", "term"),
        &[],
    );
    server.wait_for_log("recording started", T);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        server.terminate(Duration::from_secs(15)),
        "liverec exits cleanly on SIGTERM"
    );
    let _ = publisher.wait();
    for ext in ["mp4", "flv", "m3u8"] {
        let files = server.recorded(ext);
        assert_eq!(files.len(), 1, "{ext}: {files:?}");
        let p = probe(&files[0]);
        assert!(
            p.duration > 2.5 && p.duration < 6.0,
            "{ext}: {}",
            p.duration
        );
        assert_decodes_cleanly(Path::new("ffmpeg"), &files[0]);
    }
    assert!(server.log_contains("all recordings finalized"));
}

#[test]
fn strict_domains_refuse_undeclared_publishes() {
    let mut server = Server::start(
        "domains = [\"declared.example\"]\n[api]\nstrict_domains = true\n[record]\ndelay_secs = 1",
    );
    let asset = asset("h264_aac.flv");
    let refused = publish(
        Path::new("ffmpeg"),
        &asset,
        &format!("{}?vhost=other.example", server.url("live", "s")),
    );
    assert!(!refused.success(), "an undeclared domain is refused");
    assert!(server.log_contains("domain is not declared"));
    let accepted = publish(
        Path::new("ffmpeg"),
        &asset,
        &format!("{}?vhost=declared.example", server.url("live", "s")),
    );
    assert!(accepted.success());
    server.wait_for_log("complete", T);
    assert_eq!(server.recorded("mp4").len(), 1);
}

/// DESIGN.md "Domains": outside strict mode a domain made through the API is known, so a
/// publish whose tcUrl host names it records under it; an unknown host gets the default domain.
#[test]
fn a_domain_made_through_the_api_is_recognised_in_the_tc_url() {
    let mut server = Server::start_with_env("[record]\ndelay_secs = 1", &api::key_env());
    api::ok(
        server.api_addr(),
        "AddLiveRecordNotifyConfig",
        &[
            ("DomainName", "made.example"),
            ("NotifyUrl", "http://127.0.0.1:9/unused"),
        ],
    );
    let asset = asset("h264_aac.flv");
    for (host, stream) in [("made.example", "a"), ("unknown.example", "b")] {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
            .arg(&asset)
            .args(["-c", "copy", "-f", "flv", "-rtmp_tcurl"])
            .arg(format!("rtmp://{host}/live"))
            .arg(server.url("live", stream))
            .status()
            .unwrap();
        assert!(status.success());
    }
    server.wait_for_log("publish started stream=made.example/live/a", T);
    server.wait_for_log("publish started stream=live.liverec.local/live/b", T);
}
