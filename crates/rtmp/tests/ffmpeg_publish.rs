//! Real encoders publishing to the server: Debian's ffmpeg 5.1 (legacy RTMP, H.264/AAC) and
//! ffmpeg 9 (Enhanced RTMP, HEVC and AV1).

// Tests fail by panicking; unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use liverec_rtmp::client::{Client, ClientError};
use liverec_rtmp::{Limits, MediaKind, Refusal};
use support::{REFUSED_NAME, Summary, TestServer, asset, count_tags, ffmpeg_publish, ffmpeg9};

/// Publishes `file` with `binary -re -c copy` and returns what the server saw.
async fn publish_file(
    binary: &Path,
    file: &str,
    path: &str,
    output_args: &[&str],
) -> (TestServer, Summary) {
    let mut server = TestServer::start(Limits::default()).await;
    let url = server.url(path);
    let (status, stderr) = ffmpeg_publish(binary, &asset(file), &url, true, output_args).await;
    assert!(status.success(), "ffmpeg failed: {stderr}");
    let peer = server.next_publisher().await;
    let summary = Summary::of(server.events_until_ended(peer).await);
    (server, summary)
}

fn assert_counts_match(summary: &Summary, file: &str) {
    let (video, audio, _) = count_tags(&asset(file));
    assert_eq!(
        summary.count(MediaKind::Video),
        video,
        "video messages = video tags of {file}"
    );
    assert_eq!(
        summary.count(MediaKind::Audio),
        audio,
        "audio messages = audio tags of {file}"
    );
    let data = summary
        .media
        .iter()
        .find(|m| m.kind == MediaKind::Data)
        .expect("metadata");
    assert_eq!(
        &data.body[..13],
        b"\x02\x00\x0aonMetaData",
        "@setDataFrame is unwrapped"
    );
    assert_eq!(summary.unpublishes, 1);
    assert_eq!(summary.result, Some(Ok(())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg5_publishes_h264_aac_with_query_and_tc_url() {
    let (server, summary) = publish_file(
        Path::new("ffmpeg"),
        "h264_aac.flv",
        "live/s1?vhost=a.example&callback_x=1",
        &[],
    )
    .await;
    assert_eq!(summary.publishes.len(), 1);
    let req = &summary.publishes[0];
    assert_eq!(req.app, "live");
    assert_eq!(req.stream_name, "s1");
    assert_eq!(
        req.query,
        vec![
            ("vhost".to_owned(), "a.example".to_owned()),
            ("callback_x".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(req.tc_url.as_deref(), Some(server.url("live").as_str()));
    assert_eq!(req.publish_type, "live");
    assert_counts_match(&summary, "h264_aac.flv");
    // Legacy FLV: AVC video (codec id 7), timestamps rising to about 10 s.
    let video: Vec<_> = summary
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .collect();
    assert!(video.iter().all(|m| m.body[0] & 0x0F == 7));
    let last = video.last().unwrap().timestamp;
    assert!(
        (9_000..11_000).contains(&last),
        "last video timestamp {last}"
    );
}

async fn enhanced(file: &str, fourcc: &[u8; 4], output_args: &[&str]) {
    let (_server, summary) = publish_file(&ffmpeg9(), file, "live/enhanced", output_args).await;
    assert_eq!(summary.publishes[0].stream_name, "enhanced");
    assert_counts_match(&summary, file);
    for m in summary.media.iter().filter(|m| m.kind == MediaKind::Video) {
        assert_ne!(m.body[0] & 0x80, 0, "E-RTMP ex-header bit");
        assert_eq!(&m.body[1..5], fourcc);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg9_publishes_hevc_over_enhanced_rtmp() {
    enhanced("hevc_aac.flv", b"hvc1", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg9_publishes_av1_over_enhanced_rtmp() {
    // Announcing E-RTMP codecs in connect (fourCcList), answered with the echo.
    enhanced(
        "av1_aac.flv",
        b"av01",
        &["-rtmp_enhanced_codecs", "hvc1,av01"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_publish_reaches_client_and_ffmpeg() {
    let mut server = TestServer::start(Limits::default()).await;

    let mut client = Client::connect(server.addr, "live", &server.url("live"))
        .await
        .unwrap();
    let peer = client.socket().local_addr().unwrap();
    match client.publish(REFUSED_NAME).await {
        Err(ClientError::Refused { code, description }) => {
            assert_eq!(code, Refusal::BAD_NAME);
            assert_eq!(description, "stream is already being published");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    client.read_until_closed().await.unwrap();
    let summary = Summary::of(server.events_until_ended(peer).await);
    assert_eq!(summary.publishes.len(), 1);
    assert_eq!(summary.unpublishes, 0, "a refused publish never started");
    assert!(summary.media.is_empty());
    assert_eq!(summary.result, Some(Ok(())));

    let url = server.url(&format!("live/{REFUSED_NAME}"));
    let (status, stderr) = ffmpeg_publish(
        Path::new("ffmpeg"),
        &asset("h264_aac.flv"),
        &url,
        false,
        &[],
    )
    .await;
    assert!(!status.success(), "ffmpeg must fail on a refusal");
    assert!(
        stderr.contains("BadName") || stderr.contains("already"),
        "ffmpeg says why: {stderr}"
    );
}
