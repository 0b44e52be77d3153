//! Runs the binary against a fake API server on 127.0.0.1:0 and checks what it reports.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A keep-alive HTTP server: every third request answers 409 TaskAlreadyStarted, the rest 200.
/// Requests without an ACS3 Authorization header get 400 IncompleteSignature.
async fn fake_server(count: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    buf.drain(..end + 4);
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let (status, body) =
                        if !head.contains("authorization: acs3-hmac-sha256 credential=ak,") {
                            (
                                "400 Bad Request",
                                r#"{"Code":"IncompleteSignature"}"#.to_owned(),
                            )
                        } else if n % 3 == 2 {
                            (
                                "409 Conflict",
                                r#"{"Code":"TaskAlreadyStarted"}"#.to_owned(),
                            )
                        } else {
                            ("200 OK", r#"{"RequestId":"X","TotalNum":5}"#.to_owned())
                        };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn bench(addr: std::net::SocketAddr, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_liverec-apibench"))
        .args([
            "--addr",
            &addr.to_string(),
            "--key-id",
            "AK",
            "--key-secret",
            "SK",
        ])
        .args(args)
        .env_remove("LIVEREC_ACCESS_KEY_ID")
        .env_remove("LIVEREC_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_counts_every_request_and_code() {
    let count = Arc::new(AtomicU64::new(0));
    let addr = fake_server(Arc::clone(&count)).await;
    let v = tokio::task::spawn_blocking(move || {
        bench(
            addr,
            &[
                "steady",
                "--rate",
                "60",
                "--duration",
                "0.5",
                "--live",
                "4",
                "--idle",
                "2",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(v["requests"], 30);
    assert_eq!(count.load(Ordering::SeqCst), 30);
    let outcomes = v["outcomes"].as_object().unwrap();
    let total: u64 = outcomes
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 30);
    assert_eq!(v["failures"], 10);
    assert!(outcomes.contains_key("idle:stop"));
    assert!(outcomes.contains_key("live:start"));
    assert!(v["latency"]["p99_ms"].as_f64().unwrap() >= v["latency"]["p50_ms"].as_f64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_reports_a_rate_and_call_reports_times() {
    let count = Arc::new(AtomicU64::new(0));
    let addr = fake_server(Arc::clone(&count)).await;
    let pid = std::process::id().to_string();
    let v = tokio::task::spawn_blocking(move || {
        bench(
            addr,
            &[
                "max",
                "--concurrency",
                "3",
                "--warmup",
                "0.1",
                "--duration",
                "0.4",
                "--pid",
                &pid,
            ],
        )
    })
    .await
    .unwrap();
    assert!(v["requests"].as_u64().unwrap() > 0);
    assert!(v["rate"].as_f64().unwrap() > 0.0);
    assert!(v["server_cpu_cores"].as_f64().is_some());

    let c = tokio::task::spawn_blocking(move || {
        bench(
            addr,
            &["call", "DescribeLiveStreamsOnlineList", "DomainName=d"],
        )
    })
    .await
    .unwrap();
    assert!(c["done_unix_ms"].as_f64().unwrap() >= c["sent_unix_ms"].as_f64().unwrap());
    assert!(c["status"].is_u64());
}

#[test]
fn refuses_missing_credentials_and_bad_params() {
    let out = Command::new(env!("CARGO_BIN_EXE_liverec-apibench"))
        .args(["--addr", "127.0.0.1:9", "call", "X"])
        .env_remove("LIVEREC_ACCESS_KEY_ID")
        .env_remove("LIVEREC_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_liverec-apibench"))
        .args([
            "--addr",
            "127.0.0.1:9",
            "--key-id",
            "a",
            "--key-secret",
            "b",
            "call",
            "X",
            "novalue",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn connection_refused_is_an_outcome_not_a_crash() {
    // Bind then drop to get a port that is (very likely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_liverec-apibench"))
        .args([
            "--addr",
            &port.to_string(),
            "--key-id",
            "a",
            "--key-secret",
            "b",
            "call",
            "X",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "client:connect");
}
