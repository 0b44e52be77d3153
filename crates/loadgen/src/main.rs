//! Light load generators for the benchmarks in `bench/`: one process, one tokio runtime, many
//! connections, so the load costs a small fraction of what the server under test spends.
//!
//! `liverec-loadgen viewers --rtmp URL --rtmp-count N --http URL --http-count M --seconds T`
//! plays a stream N times over RTMP (the project's RTMP client) and M times over HTTP-FLV (a
//! plain HTTP/1.1 GET), reading everything, then prints one JSON line: per protocol, the
//! viewers that connected, failed and stayed to the end, and the bytes and media messages each
//! received (min, median, total).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use liverec_rtmp::client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser)]
#[command(version, about = "Load generators for liverec's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Many viewers of one live stream.
    Viewers {
        /// `rtmp://host:port/app/stream`.
        #[arg(long)]
        rtmp: Option<String>,
        #[arg(long, default_value_t = 0)]
        rtmp_count: usize,
        /// `http://host:port/app/stream.flv`.
        #[arg(long)]
        http: Option<String>,
        #[arg(long, default_value_t = 0)]
        http_count: usize,
        /// How long each viewer watches.
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Time over which the viewers connect (spread evenly).
        #[arg(long, default_value_t = 5.0)]
        ramp_seconds: f64,
    },
}

/// What one viewer got.
#[derive(Debug, Default, Clone, Copy)]
struct Watched {
    bytes: u64,
    messages: u64,
    /// It watched until the end (no error, no early end of stream).
    whole: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Commands::Viewers {
            rtmp,
            rtmp_count,
            http,
            http_count,
            seconds,
            ramp_seconds,
        } => runtime.block_on(viewers(
            rtmp,
            rtmp_count,
            http,
            http_count,
            Duration::from_secs_f64(seconds),
            Duration::from_secs_f64(ramp_seconds),
        )),
    }
}

async fn viewers(
    rtmp: Option<String>,
    rtmp_count: usize,
    http: Option<String>,
    http_count: usize,
    watch: Duration,
    ramp: Duration,
) -> anyhow::Result<()> {
    let total = rtmp_count + http_count;
    let step = ramp / u32::try_from(total.max(1)).unwrap_or(u32::MAX);
    let start = Instant::now();
    let mut rtmp_tasks = Vec::new();
    let mut http_tasks = Vec::new();
    for i in 0..total {
        let at = start + step * u32::try_from(i).unwrap_or(u32::MAX);
        let until = start + ramp + watch;
        if i < rtmp_count {
            let url = rtmp.clone().context("--rtmp is needed with --rtmp-count")?;
            rtmp_tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                watch_rtmp(&url, until).await
            }));
        } else {
            let url = http.clone().context("--http is needed with --http-count")?;
            http_tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                watch_http(&url, until).await
            }));
        }
    }
    let mut report = serde_json::Map::new();
    for (name, tasks) in [("rtmp", rtmp_tasks), ("http_flv", http_tasks)] {
        let mut got = Vec::new();
        let mut errors = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok(w)) => got.push(w),
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let mut bytes: Vec<u64> = got.iter().map(|w| w.bytes).collect();
        bytes.sort_unstable();
        let messages: u64 = got.iter().map(|w| w.messages).sum();
        errors.sort();
        errors.dedup();
        report.insert(
            name.to_owned(),
            serde_json::json!({
                "connected": got.len(),
                "failed": errors.len(),
                "whole": got.iter().filter(|w| w.whole).count(),
                "bytes_min": bytes.first().copied().unwrap_or(0),
                "bytes_median": bytes.get(bytes.len() / 2).copied().unwrap_or(0),
                "bytes_total": bytes.iter().sum::<u64>(),
                "messages_total": messages,
                "errors": errors.into_iter().take(5).collect::<Vec<_>>(),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}

/// `host:port`, `app` and `name` of `rtmp://host:port/app/name`.
fn split_rtmp(url: &str) -> anyhow::Result<(SocketAddr, String, String, String)> {
    let rest = url.strip_prefix("rtmp://").context("not an rtmp:// URL")?;
    let (authority, path) = rest.split_once('/').context("no app in the URL")?;
    let (app, name) = path.split_once('/').context("no stream in the URL")?;
    let addr = authority
        .parse()
        .context("host:port must be an IP address and port")?;
    Ok((
        addr,
        app.to_owned(),
        name.to_owned(),
        format!("rtmp://{authority}/{app}"),
    ))
}

async fn watch_rtmp(url: &str, until: Instant) -> anyhow::Result<Watched> {
    let (addr, app, name, tc_url) = split_rtmp(url)?;
    let mut client = Client::connect(addr, &app, &tc_url).await?;
    client.play(&name).await?;
    let mut watched = Watched::default();
    loop {
        match tokio::time::timeout_at(until, client.next_media()).await {
            Err(_) => {
                watched.whole = true;
                return Ok(watched);
            }
            Ok(Ok(Some(media))) => {
                watched.bytes += media.body.len() as u64;
                watched.messages += 1;
            }
            Ok(Ok(None)) => return Ok(watched),
            Ok(Err(e)) => bail!("after {} bytes: {e}", watched.bytes),
        }
    }
}

async fn watch_http(url: &str, until: Instant) -> anyhow::Result<Watched> {
    let rest = url.strip_prefix("http://").context("not an http:// URL")?;
    let (authority, path) = rest.split_once('/').context("no path in the URL")?;
    let mut socket = TcpStream::connect(authority).await?;
    socket
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut watched = Watched::default();
    let mut head_done = false;
    loop {
        let n = match tokio::time::timeout_at(until, socket.read(&mut buf)).await {
            Err(_) => {
                watched.whole = true;
                return Ok(watched);
            }
            Ok(read) => read?,
        };
        if n == 0 {
            return Ok(watched);
        }
        if !head_done {
            let text = String::from_utf8_lossy(&buf[..n.min(16)]);
            if !text.starts_with("HTTP/1.1 200") {
                bail!("answered {}", text.lines().next().unwrap_or_default());
            }
            head_done = true;
        }
        watched.bytes += n as u64;
        watched.messages += 1;
    }
}
