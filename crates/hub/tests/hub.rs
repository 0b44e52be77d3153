//! Publish/subscribe behaviour of the hub: refusal, eviction, pre-roll, back-pressure.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use liverec_hub::{
    Hub, HubConfig, HubError, HubEvent, Lifecycle, SlowPolicy, StreamKey, SubscribeOptions,
};
use liverec_media::{AudioCodec, AudioConfig, CodecConfig, TrackKind, VideoCodec, VideoConfig};
use tokio::sync::mpsc;

fn key(stream: &str) -> StreamKey {
    StreamKey {
        domain: "d.example".into(),
        app: "live".into(),
        stream: stream.into(),
    }
}

fn video_config() -> CodecConfig {
    CodecConfig::Video(Arc::new(VideoConfig {
        codec: VideoCodec::H264,
        record: Bytes::from_static(&[1, 2, 3]),
        width: 320,
        height: 240,
        nal_length_size: 4,
        parameter_sets: vec![],
    }))
}

fn audio_config() -> CodecConfig {
    CodecConfig::Audio(Arc::new(AudioConfig {
        codec: AudioCodec::Aac,
        specific: Bytes::from_static(&[0x12, 0x10]),
        object_type: 2,
        sample_rate: 44100,
        channels: 1,
    }))
}

fn hub(config: HubConfig) -> (Hub, mpsc::Receiver<Lifecycle>) {
    let (tx, rx) = mpsc::channel(64);
    (Hub::new(config, tx), rx)
}

fn data(len: usize) -> Bytes {
    Bytes::from(vec![0u8; len])
}

#[tokio::test]
async fn second_publisher_of_live_stream_is_refused() {
    let (hub, mut events) = hub(HubConfig::default());
    let first = hub.publish(key("a"), vec![], None).await.unwrap();
    assert!(matches!(
        events.recv().await,
        Some(Lifecycle::Published { .. })
    ));
    let err = hub.publish(key("a"), vec![], None).await.err();
    assert_eq!(err, Some(HubError::AlreadyPublishing(key("a"))));
    // Another stream name is independent.
    assert!(hub.publish(key("b"), vec![], None).await.is_ok());
    first.end().await;
    assert!(hub.publish(key("a"), vec![], None).await.is_ok());
}

#[tokio::test]
async fn silent_publisher_is_evicted_by_a_new_one() {
    let config = HubConfig {
        stale_publisher_after: Duration::from_millis(50),
        ..Default::default()
    };
    let (hub, mut events) = hub(config);
    let first = hub.publish(key("a"), vec![], None).await.unwrap();
    let first_session = first.info().session;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let second = hub.publish(key("a"), vec![], None).await.unwrap();
    assert!(first.info().cancel.is_cancelled());
    let mut seen = vec![];
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        seen.iter().any(
            |e| matches!(e, Lifecycle::Unpublished { session, .. } if *session == first_session)
        )
    );
    // The evicted publisher ending later does not end the new session.
    drop(first);
    assert!(hub.is_publishing(&key("a")));
    second.end().await;
    assert!(!hub.is_publishing(&key("a")));
}

#[tokio::test]
async fn subscriber_gets_tracks_then_gop_cache_then_live_frames() {
    let (hub, _events) = hub(HubConfig::default());
    let mut publisher = hub.publish(key("a"), vec![], None).await.unwrap();
    publisher.set_config(video_config());
    publisher.set_config(audio_config());
    assert!(publisher.push(TrackKind::Video, 0, 0, true, data(10)).await);
    assert!(
        publisher
            .push(TrackKind::Video, 40, 0, false, data(10))
            .await
    );
    assert!(
        publisher
            .push(TrackKind::Video, 80, 0, true, data(10))
            .await
    );
    assert!(publisher.push(TrackKind::Audio, 81, 0, true, data(5)).await);
    let mut sub = hub
        .subscribe(&key("a"), SubscribeOptions::default())
        .unwrap();
    assert!(
        publisher
            .push(TrackKind::Video, 120, 0, false, data(10))
            .await
    );
    let tracks = match sub.recv().await {
        Some(HubEvent::Tracks(t)) => t,
        other => panic!("{other:?}"),
    };
    assert!(tracks.video.is_some() && tracks.audio.is_some());
    let mut dts = vec![];
    for _ in 0..3 {
        match sub.recv().await {
            Some(HubEvent::Frame(d)) => dts.push(d.frame.dts),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(dts, vec![80, 81, 120]);
    publisher.end().await;
    assert!(matches!(sub.recv().await, Some(HubEvent::PublishEnded)));
}

#[tokio::test]
async fn frames_without_config_are_dropped() {
    let (hub, _events) = hub(HubConfig::default());
    let mut publisher = hub.publish(key("a"), vec![], None).await.unwrap();
    assert!(!publisher.push(TrackKind::Video, 0, 0, true, data(10)).await);
}

#[tokio::test(start_paused = true)]
async fn full_recorder_queue_blocks_its_publisher_then_skips_to_keyframe_with_gap() {
    let (hub, _events) = hub(HubConfig::default());
    let mut slow = hub.publish(key("slow"), vec![], None).await.unwrap();
    slow.set_config(video_config());
    let opts = SubscribeOptions {
        from_gop: false,
        // Two frames of 50 bytes, each charged its overhead too.
        queue_bytes: 2 * (50 + liverec_media::FRAME_OVERHEAD_BYTES),
        policy: SlowPolicy::Block {
            max_wait: Duration::from_secs(2),
        },
    };
    let mut sub = hub.subscribe(&key("slow"), opts).unwrap();
    // Fill the queue: two frames of 50 bytes.
    assert!(slow.push(TrackKind::Video, 0, 0, true, data(50)).await);
    assert!(slow.push(TrackKind::Video, 40, 0, false, data(50)).await);
    // The third waits for room, up to 2 s (virtual time), then is dropped.
    let started = tokio::time::Instant::now();
    assert!(slow.push(TrackKind::Video, 80, 0, false, data(50)).await);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // Skipping now: a non-keyframe is dropped without waiting even when room frees up.
    assert!(matches!(sub.recv().await, Some(HubEvent::Tracks(_))));
    let first = sub.recv().await;
    drop(first);
    let started = tokio::time::Instant::now();
    assert!(slow.push(TrackKind::Video, 120, 0, false, data(50)).await);
    assert_eq!(started.elapsed(), Duration::ZERO);
    // The next keyframe resumes delivery, announced by a gap of two frames.
    assert!(slow.push(TrackKind::Video, 160, 0, true, data(50)).await);
    match sub.recv().await {
        Some(HubEvent::Frame(d)) => assert_eq!(d.frame.dts, 40),
        other => panic!("{other:?}"),
    }
    match sub.recv().await {
        Some(HubEvent::Gap { dropped }) => assert_eq!(dropped, 2),
        other => panic!("{other:?}"),
    }
    match sub.recv().await {
        Some(HubEvent::Frame(d)) => assert!(d.frame.keyframe && d.frame.dts == 160),
        other => panic!("{other:?}"),
    }
    assert_eq!(sub.dropped_total(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_recorder_never_slows_another_stream() {
    let (hub, _events) = hub(HubConfig::default());
    let mut slow = hub.publish(key("slow"), vec![], None).await.unwrap();
    let mut fast = hub.publish(key("fast"), vec![], None).await.unwrap();
    slow.set_config(video_config());
    fast.set_config(video_config());
    let opts = SubscribeOptions {
        from_gop: false,
        queue_bytes: 10,
        ..Default::default()
    };
    let _stalled = hub.subscribe(&key("slow"), opts).unwrap();
    let mut fast_sub = hub
        .subscribe(&key("fast"), SubscribeOptions::default())
        .unwrap();
    let slow_task = tokio::spawn(async move {
        for i in 0..10u32 {
            slow.push(TrackKind::Video, i * 40, 0, i == 0, data(10))
                .await;
        }
    });
    let started = tokio::time::Instant::now();
    for i in 0..100u32 {
        assert!(
            fast.push(TrackKind::Video, i * 40, 0, i % 25 == 0, data(1000))
                .await
        );
        // Drain so the fast subscriber never blocks on its own queue.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, fast_sub.recv()).await {}
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    slow_task.await.unwrap();
}

/// Issue 12: a keyframe followed by a flood of 1-byte frames cannot queue more frames than the
/// budget holds once each frame is charged its overhead.
#[tokio::test(start_paused = true)]
async fn a_flood_of_tiny_frames_is_bounded_by_frame_count_too() {
    let (hub, _events) = hub(HubConfig::default());
    let mut publisher = hub.publish(key("tiny"), vec![], None).await.unwrap();
    publisher.set_config(video_config());
    let queue_bytes = 64 * 1024;
    let opts = SubscribeOptions {
        from_gop: false,
        queue_bytes,
        policy: SlowPolicy::Skip,
    };
    let mut sub = hub.subscribe(&key("tiny"), opts).unwrap();
    assert!(publisher.push(TrackKind::Video, 0, 0, true, data(1)).await);
    for dts in 1..100_000 {
        assert!(
            publisher
                .push(TrackKind::Video, dts, 0, false, data(1))
                .await
        );
    }
    // Count what was queued (the subscriber has not read anything yet).
    let mut queued = 0usize;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(10), sub.recv()).await {
        if matches!(event, HubEvent::Frame(_)) {
            queued += 1;
        }
    }
    let most = queue_bytes / (1 + liverec_media::FRAME_OVERHEAD_BYTES);
    assert!(
        queued > 0 && queued <= most,
        "{queued} frames queued for a {queue_bytes}-byte budget (at most {most})"
    );
    assert!(sub.dropped_total() >= 100_000 - most as u64);
}
