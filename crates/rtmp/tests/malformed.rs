//! Hostile and broken clients: each one's connection ends with an error, and a good publisher
//! on the same server, publishing throughout, does not notice.

// Tests fail by panicking; unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use liverec_media::flv::{FileReader, TagKind};
use liverec_rtmp::client::Client;
use liverec_rtmp::{Limits, MediaKind};
use support::{Summary, TestServer, asset};
use tokio::io::AsyncWriteExt;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);

fn limits() -> Limits {
    Limits {
        handshake_timeout: HANDSHAKE_TIMEOUT,
        ..Limits::default()
    }
}

/// A format-0 chunk header on chunk stream 3, message stream 0.
fn header(type_id: u8, length: u32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_slice(&[0x03, 0, 0, 0]);
    b.put_slice(&length.to_be_bytes()[1..]);
    b.put_u8(type_id);
    b.put_u32_le(0);
    b
}

async fn connected(server: &TestServer) -> Client {
    Client::connect(server.addr, "live", &server.url("live"))
        .await
        .unwrap()
}

/// Sends `bytes` after a complete handshake + connect, then waits for the server to close.
async fn send_after_connect(server: &TestServer, bytes: &[u8]) -> std::net::SocketAddr {
    let mut client = connected(server).await;
    let peer = client.socket().local_addr().unwrap();
    client.write_raw(bytes).await.unwrap();
    client.read_until_closed().await.unwrap();
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_clients_end_alone_while_a_good_publisher_goes_on() {
    let mut server = TestServer::start(limits()).await;
    let tags: Vec<_> = FileReader::new(std::fs::read(asset("h264_aac.flv")).unwrap().into())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let half = tags.len() / 2;

    // The good publisher sends half of the file...
    let mut good = connected(&server).await;
    let good_peer = good.socket().local_addr().unwrap();
    good.set_chunk_size(4096).await.unwrap();
    good.publish("good?token=1").await.unwrap();
    let kind = |k| match k {
        TagKind::Audio => MediaKind::Audio,
        TagKind::Video => MediaKind::Video,
        TagKind::Script => MediaKind::Data,
    };
    for tag in &tags[..half] {
        good.send_media(kind(tag.kind), tag.timestamp, &tag.body)
            .await
            .unwrap();
    }

    // ...while broken clients come and go.
    // 1. A chunk cut short, then the client closes.
    let mut client = connected(&server).await;
    let truncated_peer = client.socket().local_addr().unwrap();
    let mut bytes = header(20, 100);
    bytes.put_slice(&[0x02, 0x00, 0x07]);
    client.write_raw(&bytes).await.unwrap();
    client.socket().shutdown().await.unwrap();
    let s = Summary::of(server.events_until_ended(truncated_peer).await);
    assert!(s.error().contains("Truncated"), "{}", s.error());
    assert!(s.client_closed);

    // 2. An absurd SetChunkSize.
    let mut bytes = header(1, 4);
    bytes.put_u32(0x7FFF_FFFF);
    let peer = send_after_connect(&server, &bytes).await;
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("ChunkSizeTooLarge"), "{}", s.error());
    assert!(!s.client_closed);

    // 3. A message longer than the limit (announced in its header).
    let peer = send_after_connect(&server, &header(9, 0x00FF_FFFF)).await;
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("MessageTooLong"), "{}", s.error());

    // 4. Garbage AMF in connect.
    let mut client = Client::handshake(server.addr).await.unwrap();
    let peer = client.socket().local_addr().unwrap();
    // "connect", 1.0, then an object whose first key claims 65535 bytes.
    let mut garbage = BytesMut::from(&b"\x02\x00\x07connect\x00"[..]);
    garbage.put_f64(1.0);
    garbage.put_slice(&[0x03, 0xFF, 0xFF, b'a', 0x11]);
    let mut bytes = header(20, garbage.len() as u32);
    bytes.put_slice(&garbage);
    client.write_raw(&bytes).await.unwrap();
    client.read_until_closed().await.unwrap();
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("InvalidCommand"), "{}", s.error());

    // 5. A client that stalls in the middle of the handshake.
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let peer = stalled.local_addr().unwrap();
    stalled.write_all(&[3u8; 200]).await.unwrap();
    let started = tokio::time::Instant::now();
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("HandshakeTimeout"), "{}", s.error());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "dropped by the handshake timeout, not later"
    );

    // 6. A wrong protocol version.
    let mut rtmpe = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let peer = rtmpe.local_addr().unwrap();
    rtmpe.write_all(&[6u8; 1537]).await.unwrap();
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("UnsupportedVersion"), "{}", s.error());

    // 7. A compressed header with nothing to inherit from.
    let peer = send_after_connect(&server, &[0x47, 0, 0, 0, 0, 0, 1, 9, 0]).await;
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("MissingPreviousHeader"), "{}", s.error());

    // The good publisher finishes and everything it sent arrived.
    for tag in &tags[half..] {
        good.send_media(kind(tag.kind), tag.timestamp, &tag.body)
            .await
            .unwrap();
    }
    good.close().await.unwrap();
    let s = Summary::of(server.events_until_ended(good_peer).await);
    assert_eq!(s.result, Some(Ok(())));
    assert_eq!(s.publishes.len(), 1);
    assert_eq!(s.publishes[0].stream_name, "good");
    assert_eq!(s.publishes[0].query_value("token"), Some("1"));
    assert_eq!(s.media.len(), tags.len());
    assert_eq!(s.unpublishes, 1);
    for (msg, tag) in s.media.iter().zip(&tags) {
        assert_eq!((msg.kind, msg.timestamp), (kind(tag.kind), tag.timestamp));
        if msg.kind != MediaKind::Data {
            assert_eq!(msg.body, tag.body);
        }
    }
}

/// A server with a 300 ms idle timeout and a client publishing `stream` on it.
async fn publishing_with_short_idle_timeout(
    stream: &str,
) -> (TestServer, Client, std::net::SocketAddr) {
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::start(limits).await;
    let mut client = connected(&server).await;
    let peer = client.socket().local_addr().unwrap();
    client.publish(stream).await.unwrap();
    (server, client, peer)
}

#[tokio::test]
async fn silent_publisher_times_out_and_is_unpublished() {
    let (mut server, mut client, peer) = publishing_with_short_idle_timeout("quiet").await;
    client
        .send_media(MediaKind::Audio, 0, &[0xAF, 0x00, 0x12, 0x10])
        .await
        .unwrap();
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(s.error().contains("IdleTimeout"), "{}", s.error());
    assert_eq!(s.unpublishes, 1);
    assert_eq!(s.count(MediaKind::Audio), 1);
}

#[tokio::test]
async fn a_steady_publisher_outlives_the_idle_timeout() {
    let (mut server, mut client, peer) = publishing_with_short_idle_timeout("steady").await;
    // 1 s in all, never silent for more than 100 ms.
    for i in 0..10u32 {
        client
            .send_media(MediaKind::Audio, i * 100, &[0xAF, 0x01, 0x21])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.close().await.unwrap();
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(matches!(s.result, Some(Ok(()))), "{:?}", s.result);
    assert_eq!(s.count(MediaKind::Audio), 10);
}

#[tokio::test]
async fn a_play_the_handler_refuses_gets_an_error_status() {
    let mut server = TestServer::start(Limits::default()).await;
    let mut client = connected(&server).await;
    let peer = client.socket().local_addr().unwrap();
    let mut payload = BytesMut::new();
    liverec_rtmp::amf0::encode_all(
        &[
            liverec_rtmp::amf0::Value::String("play".into()),
            liverec_rtmp::amf0::Value::Number(0.0),
            liverec_rtmp::amf0::Value::Null,
            liverec_rtmp::amf0::Value::String("s1".into()),
        ],
        &mut payload,
    );
    let message = liverec_rtmp::message::Message {
        csid: 8,
        timestamp: 0,
        type_id: 20,
        stream_id: 1,
        payload: payload.freeze(),
    };
    client.send_message(&message).await.unwrap();
    let commands = client.read_until_closed().await.unwrap();
    let status = commands
        .iter()
        .find(|c| c.name == "onStatus")
        .expect("onStatus");
    assert_eq!(
        status.args[0].get("code").and_then(|v| v.as_str()),
        Some("NetStream.Play.StreamNotFound")
    );
    let s = Summary::of(server.events_until_ended(peer).await);
    assert!(matches!(s.result, Some(Ok(()))), "{:?}", s.result);
}
