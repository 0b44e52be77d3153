//! The S3 test peer itself: moto_server, the boto3 client, pause/resume/stop and the cut
//! proxy behave as later storage tests rely on.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::s3::{MotoServer, S3Client};

/// Sends a bare HTTP request (ListBuckets, which moto answers unsigned) on a new connection.
fn send_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    conn
}

#[test]
fn objects_round_trip_through_moto() {
    let moto = MotoServer::start();
    moto.create_bucket("records");
    moto.create_bucket("other");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    moto.put_object("records", "live/cam1/a.mp4", &body);
    moto.put_object("records", "live/cam1/b.mp4", b"bb");
    moto.put_object("records", "live/cam2/c.mp4", b"ccc");
    moto.put_object("other", "live/cam1/a.mp4", b"not the same");

    assert_eq!(moto.get_object("records", "live/cam1/a.mp4"), Some(body));
    assert_eq!(moto.get_object("records", "live/cam1/nope.mp4"), None);
    assert_eq!(
        moto.list("records", "live/cam1/"),
        vec![
            ("live/cam1/a.mp4".to_owned(), 200_000),
            ("live/cam1/b.mp4".to_owned(), 2)
        ]
    );
    assert_eq!(moto.list("records", "").len(), 3);
    assert_eq!(
        moto.list("other", ""),
        vec![("live/cam1/a.mp4".to_owned(), 12)]
    );
    moto.delete_object("records", "live/cam1/b.mp4");
    assert_eq!(moto.list("records", "live/cam1/").len(), 1);

    // A second client of its own sees the same store; errors come back as errors.
    let client = S3Client::new(&moto.endpoint());
    assert_eq!(
        client.get_object("other", "live/cam1/a.mp4").as_deref(),
        Some(&b"not the same"[..])
    );
    let err = client.try_list("no-such-bucket", "").unwrap_err();
    assert!(err.contains("NoSuchBucket"), "{err}");

    // stop() kills the server: connections are refused.
    let addr = moto.addr();
    moto.stop();
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn paused_moto_answers_nothing_until_resumed() {
    let moto = MotoServer::start();
    moto.create_bucket("records");
    moto.put_object("records", "k", b"v");

    moto.pause();
    assert!(moto.is_paused());
    // The kernel still accepts the connection, but no answer comes while paused.
    let mut conn = send_request(moto.addr());
    conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 64];
    let err = conn.read(&mut buf).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );

    moto.resume();
    assert!(!moto.is_paused());
    // The request sent while paused is answered now.
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(moto.get_object("records", "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn cut_proxy_drops_and_refuses_connections_until_restored() {
    let moto = MotoServer::start();
    moto.create_bucket("records");
    let mut proxy = moto.proxy();
    let client = S3Client::fail_fast(&proxy.endpoint());
    client.put_object("records", "through-proxy", b"hello");
    assert_eq!(
        moto.get_object("records", "through-proxy").as_deref(),
        Some(&b"hello"[..])
    );

    // A connection open through the proxy (moto paused, so its request is still pending).
    moto.pause();
    let mut open = send_request(proxy.addr());
    // cut() wakes the proxy's acceptor with a connection of its own, queued after this one,
    // so this one is accepted (and then dropped) first.
    proxy.cut();
    assert!(proxy.is_cut());
    moto.resume();
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    // Dropped: EOF (or a reset), never moto's answer.
    match open.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest)),
        Err(e) => assert_ne!(e.kind(), ErrorKind::WouldBlock, "{e:?}"),
    }

    // New connections are refused, so a request fails at once instead of hanging.
    let refused = TcpStream::connect(proxy.addr()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    let err = client.try_list("records", "").unwrap_err();
    assert!(err.contains("Could not connect"), "{err}");
    // moto itself is fine.
    assert_eq!(moto.list("records", "").len(), 1);

    proxy.restore();
    assert!(!proxy.is_cut());
    assert_eq!(
        client.list("records", ""),
        vec![("through-proxy".to_owned(), 5)]
    );
    assert_eq!(
        client.get_object("records", "through-proxy").as_deref(),
        Some(&b"hello"[..])
    );
}
