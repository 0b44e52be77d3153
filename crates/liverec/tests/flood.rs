//! Issue 12: a flood of idle connections from other hosts (127.0.0.2 and up) on both ports
//! cannot take liverec's descriptors or shut out real clients. liverec runs with an open-file
//! limit of 4096 and faces 5000 API sockets that send half a request line and then nothing, and
//! 1000 RTMP sockets that send nothing; every one the server closes connects again. It must hold
//! far fewer descriptors than the flood, answer a signed call from 127.0.0.1, and record a new
//! publish. Latency under attack is a benchmark's business: the timeouts here are generous.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// liverec's open-file limit in this test.
const SERVER_NOFILE: u64 = 4096;
const API_SOCKETS: usize = 5000;
const RTMP_SOCKETS: usize = 1000;
/// Flood sources: API from 127.0.0.2..=11, RTMP from 127.0.0.20..=24.
const API_HOSTS: u8 = 10;
const RTMP_HOSTS: u8 = 5;
/// A closed flood socket connects again after this pause.
const RECONNECT_PAUSE: Duration = Duration::from_secs(2);
/// What liverec may hold under the flood: its per-IP caps (64 pending connections per host on
/// each port) plus its own files; the flood is 6000 sockets.
const MAX_SERVER_FDS: usize = (API_HOSTS as usize + RTMP_HOSTS as usize) * 64 + 300;

#[derive(Default)]
struct Stats {
    connects: AtomicU64,
    failed_connects: AtomicU64,
}

/// One flood socket, connecting again whenever the server closes it.
async fn flood_slot(
    source: Ipv4Addr,
    target: SocketAddr,
    greeting: &'static [u8],
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    while !stop.load(Ordering::Relaxed) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((source, 0))).unwrap();
        match tokio::time::timeout(Duration::from_secs(10), socket.connect(target)).await {
            Ok(Ok(mut stream)) => {
                stats.connects.fetch_add(1, Ordering::Relaxed);
                let _ = stream.write_all(greeting).await;
                let mut buf = [0u8; 256];
                // Until the server closes it (or the test ends).
                while !stop.load(Ordering::Relaxed) {
                    let read =
                        tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf))
                            .await;
                    if let Ok(Ok(0) | Err(_)) = read {
                        break;
                    }
                }
            }
            _ => {
                stats.failed_connects.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_flood_of_idle_connections_from_other_hosts_leaves_room_for_real_clients() {
    let own = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        own >= (API_SOCKETS + RTMP_SOCKETS + 1000) as u64,
        "this test needs an open-file limit of at least {} for its flood sockets (hard limit: {own})",
        API_SOCKETS + RTMP_SOCKETS + 1000
    );
    let server = Server::start_with(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }]\n",
        &api::key_env(),
        Some(SERVER_NOFILE),
    );
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let api_stats = Arc::new(Stats::default());
    let rtmp_stats = Arc::new(Stats::default());
    for i in 0..API_SOCKETS {
        let host = Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(API_HOSTS)) as u8);
        rt.spawn(flood_slot(
            host,
            server.api_addr(),
            b"GET /?Action=DescribeLive",
            stop.clone(),
            api_stats.clone(),
        ));
    }
    for i in 0..RTMP_SOCKETS {
        let host = Ipv4Addr::new(127, 0, 0, 20 + (i % usize::from(RTMP_HOSTS)) as u8);
        rt.spawn(flood_slot(
            host,
            server.rtmp,
            b"",
            stop.clone(),
            rtmp_stats.clone(),
        ));
    }

    // The flood in full swing: sample liverec's descriptors for a while.
    let pid = server.pid();
    let sampled_until = Instant::now() + Duration::from_secs(8);
    let mut most_fds = 0;
    while Instant::now() < sampled_until {
        most_fds = most_fds.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(200));
    }
    let api_connects = api_stats.connects.load(Ordering::Relaxed);
    let rtmp_connects = rtmp_stats.connects.load(Ordering::Relaxed);
    eprintln!(
        "flood: {api_connects} API and {rtmp_connects} RTMP connects so far; liverec held at most {most_fds} descriptors"
    );
    assert!(
        api_connects >= API_SOCKETS as u64 && rtmp_connects >= RTMP_SOCKETS as u64,
        "the flood did not reach the server: {api_connects} API, {rtmp_connects} RTMP connects"
    );
    assert!(
        most_fds < MAX_SERVER_FDS,
        "liverec held {most_fds} descriptors under a flood of {} sockets (bound {MAX_SERVER_FDS})",
        API_SOCKETS + RTMP_SOCKETS
    );

    // A real client from 127.0.0.1 is still served, while the flood goes on.
    let online = api::ok(
        server.api_addr(),
        "DescribeLiveStreamsOnlineList",
        &[("DomainName", "live.liverec.local")],
    );
    assert_eq!(online["TotalNum"], 0, "{online}");
    let asset = asset("h264_aac.flv");
    assert!(publish(Path::new("ffmpeg"), &asset, &server.url("live", "real")).success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.recorded_for("live", "real", "mp4").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the real publish was not recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for file in server.recorded_for("live", "real", "mp4") {
        assert_decodes_cleanly(Path::new("ffmpeg"), &file);
    }
    let (status, metrics) = server.http_get("/metrics");
    assert_eq!(status, 200);
    let refused = metrics
        .lines()
        .find(|l| {
            l.starts_with("liverec_api_connections_refused_total{reason=\"max_pending_per_ip\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(refused > 0, "no per-IP refusal counted: {metrics}");
    assert!(server.log_contains("RTMP connection refused: this address has max_pending_per_ip"));
    stop.store(true, Ordering::Relaxed);
    rt.shutdown_timeout(Duration::from_secs(5));
}
