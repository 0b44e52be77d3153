//! `serve`: several publishers at once, the connection limit, and shutdown.

// Tests fail by panicking; unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use liverec_rtmp::client::{Client, FlvPublish, publish_flv_file};
use liverec_rtmp::{Limits, MediaKind, serve_on};
use support::{Event, RecordingHandler, asset, count_tags, ffmpeg_publish, ffmpeg9};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Events already taken from the channel by `wait_for`.
    seen: Vec<Event>,
}

async fn start(limits: Limits) -> Server {
    start_on(limits, Vec::new()).await
}

/// A server whose connections run on `workers` (none: the test's runtime).
async fn start_on(limits: Limits, workers: Vec<tokio::runtime::Handle>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let make = move |peer| RecordingHandler {
        peer,
        events: tx.clone(),
    };
    let task = tokio::spawn(serve_on(listener, make, limits, cancel.clone(), workers));
    Server {
        addr,
        cancel,
        task,
        events,
        seen: Vec::new(),
    }
}

impl Server {
    /// Waits until an event matching `pred` has arrived.
    async fn wait_for(&mut self, pred: impl Fn(&Event) -> bool) {
        while !self.seen.iter().any(&pred) {
            let event = tokio::time::timeout(support::EVENT_TIMEOUT, self.events.recv())
                .await
                .expect("timed out waiting for an event")
                .expect("server gone");
            self.seen.push(event);
        }
    }

    /// Cancels, waits for `serve` to return (all connections ended), and returns every event.
    async fn stop(mut self) -> Vec<Event> {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after cancellation")
            .unwrap();
        let mut events = self.seen;
        while let Some(event) = self.events.recv().await {
            events.push(event);
        }
        events
    }
}

#[derive(Default, Debug)]
struct PerStream {
    publishes: usize,
    video: usize,
    audio: usize,
    unpublishes: usize,
}

/// Events grouped by stream name (through each connection's publish request).
fn by_stream(events: Vec<Event>) -> HashMap<String, PerStream> {
    let mut names: HashMap<SocketAddr, String> = HashMap::new();
    let mut out: HashMap<String, PerStream> = HashMap::new();
    for event in events {
        let peer = event.peer();
        if let Event::Published { req, .. } = &event {
            names.insert(peer, req.stream_name.clone());
        }
        let name = names
            .get(&peer)
            .cloned()
            .expect("events of a connection follow its publish");
        let entry = out.entry(name).or_default();
        match event {
            Event::Published { .. } => entry.publishes += 1,
            Event::Media { msg, .. } if msg.kind == MediaKind::Video => entry.video += 1,
            Event::Media { msg, .. } if msg.kind == MediaKind::Audio => entry.audio += 1,
            Event::Media { .. } => {}
            Event::Unpublished { .. } => entry.unpublishes += 1,
            Event::Ended { .. } => unreachable!("serve reports no Ended events"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_publishers_at_once() {
    let server = start(Limits::default()).await;
    publish_all_and_check(server, false).await;
}

/// Connections handed to single-threaded worker runtimes (as liverec runs them) with merged
/// reads: publishers paced in real time, so the reads do wait for ticks; every frame arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_reads_on_worker_runtimes_deliver_every_frame() {
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        handles.push(runtime.handle().clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        });
        workers.push((stop, thread));
    }
    let limits = Limits {
        merge_reads: Duration::from_millis(30),
        ..Limits::default()
    };
    let server = start_on(limits, handles).await;
    publish_all_and_check(server, true).await;
    for (stop, thread) in workers {
        stop.send(()).unwrap();
        thread.join().unwrap();
    }
}

/// Publishes six streams at once (ffmpeg 5.1 and 9, our client with several chunk sizes),
/// stops the server and checks that each got every tag of its file and one unpublish.
async fn publish_all_and_check(server: Server, realtime: bool) {
    let addr = server.addr;
    let url = |name: &str| format!("rtmp://{addr}/live/{name}");

    let mut tasks = Vec::new();
    for (binary, file, name) in [
        (Path::new("ffmpeg").to_path_buf(), "h264_aac.flv", "ff1"),
        (Path::new("ffmpeg").to_path_buf(), "aac_only.flv", "ff2"),
        (ffmpeg9(), "hevc_aac.flv", "ff3"),
    ] {
        let url = url(name);
        tasks.push(tokio::spawn(async move {
            let (status, stderr) = ffmpeg_publish(&binary, &asset(file), &url, realtime, &[]).await;
            assert!(status.success(), "{name}: {stderr}");
            (name, file)
        }));
    }
    for (chunk_size, file, name) in [
        (128, "h264_only.flv", "c1"),
        (4096, "h264_aac.flv", "c2"),
        (60_000, "av1_aac.flv", "c3"),
    ] {
        tasks.push(tokio::spawn(async move {
            let tc_url = format!("rtmp://{addr}/live");
            let opts = FlvPublish {
                app: "live",
                tc_url: &tc_url,
                stream: name,
                realtime,
                chunk_size,
            };
            let sent = publish_flv_file(addr, &asset(file), &opts).await.unwrap();
            assert!(sent > 100);
            (name, file)
        }));
    }
    let mut expected = Vec::new();
    for task in tasks {
        expected.push(task.await.unwrap());
    }

    let streams = by_stream(server.stop().await);
    assert_eq!(streams.len(), expected.len(), "{streams:?}");
    for (name, file) in expected {
        let (video, audio, _) = count_tags(&asset(file));
        let got = &streams[name];
        assert_eq!((got.publishes, got.unpublishes), (1, 1), "{name}");
        assert_eq!((got.video, got.audio), (video, audio), "{name} from {file}");
    }
}

#[tokio::test]
async fn shutdown_ends_live_publishes() {
    let mut server = start(Limits::default()).await;
    let mut client = Client::connect(server.addr, "live", "rtmp://127.0.0.1/live")
        .await
        .unwrap();
    client.publish("live1").await.unwrap();
    client
        .send_media(MediaKind::Video, 0, &[0x17, 0x00, 0, 0, 0])
        .await
        .unwrap();
    server.wait_for(|e| matches!(e, Event::Media { .. })).await;
    let events = server.stop().await;
    let streams = by_stream(events);
    let live = &streams["live1"];
    assert_eq!((live.publishes, live.video, live.unpublishes), (1, 1, 1));
    assert!(
        client.read_until_closed().await.is_ok(),
        "the server closed the connection"
    );
}

#[tokio::test]
async fn shutdown_asks_reconnect_capable_clients_to_reconnect() {
    let server = start(Limits::default()).await;
    let mut client = Client::handshake(server.addr).await.unwrap();
    let caps = vec![("capsEx".to_owned(), liverec_rtmp::amf0::Value::Number(1.0))];
    let properties = client
        .connect_command("live", "rtmp://127.0.0.1/live", caps)
        .await
        .unwrap();
    assert_eq!(
        properties.get("capsEx"),
        Some(&liverec_rtmp::amf0::Value::Number(1.0))
    );
    client.publish("e1").await.unwrap();
    server.stop().await;
    let commands = client.read_until_closed().await.unwrap();
    let codes: Vec<_> = commands
        .iter()
        .filter_map(|c| {
            c.args
                .first()
                .and_then(|i| i.get("code"))
                .and_then(|v| v.as_str())
        })
        .collect();
    assert_eq!(codes, vec!["NetConnection.Connect.ReconnectRequest"]);
}

#[tokio::test]
async fn connections_that_have_not_published_wait_beyond_the_limit_and_a_publish_frees_its_place() {
    let server = start(Limits {
        max_pending_connections: 1,
        ..Limits::default()
    })
    .await;
    let mut first = Client::connect(server.addr, "live", "rtmp://127.0.0.1/live")
        .await
        .unwrap();

    let mut second = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut c0c1 = vec![0u8; 1537];
    c0c1[0] = 3;
    second.write_all(&c0c1).await.unwrap();
    let mut s0 = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut s0)).await;
    assert!(
        early.is_err(),
        "the second connection is not served while the first holds the only pending place"
    );

    // Publishing trades the pending place for a publisher's: the second is served.
    first.publish("a").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), second.read_exact(&mut s0))
        .await
        .expect("served once the first connection published")
        .unwrap();
    assert_eq!(s0[0], 3);
    first.close().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_publish_beyond_max_publishers_is_refused_and_its_place_comes_back() {
    let server = start(Limits {
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    let connect = || Client::connect(server.addr, "live", "rtmp://127.0.0.1/live");
    let mut first = connect().await.unwrap();
    first.publish("a").await.unwrap();
    let mut second = connect().await.unwrap();
    match second.publish("b").await {
        Err(liverec_rtmp::client::ClientError::Refused { code, description }) => {
            assert_eq!(code, "NetStream.Publish.Failed");
            assert!(description.contains("max_publishers"), "{description}");
        }
        other => panic!("second publisher: {other:?}"),
    }
    first.close().await.unwrap();
    // The first publisher's place is free again once its connection ended.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut third = connect().await.unwrap();
        match third.publish("c").await {
            Ok(()) => break,
            Err(err) => assert!(
                tokio::time::Instant::now() < deadline,
                "no publisher place came back: {err:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
