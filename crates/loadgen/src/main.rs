//! Light load generators for the benchmarks in `bench/`: one process, one tokio runtime, many
//! connections, so the load costs a small fraction of what the server under test spends.
//!
//! `liverec-loadgen viewers --rtmp URL --rtmp-count N --http URL --http-count M --seconds T`
//! plays a stream N times over RTMP (the project's RTMP client) and M times over HTTP-FLV (a
//! plain HTTP/1.1 GET), reading everything, then prints one JSON line: per protocol, the
//! viewers that connected, failed and stayed to the end, and the bytes and media messages each
//! received (min, median, total).
//!
//! `liverec-loadgen publish --url rtmp://host:port/app --streams N --asset FILE.flv --seconds T`
//! publishes N streams (`{prefix}0` …) by replaying a pre-encoded FLV asset in real time,
//! looped with continuous timestamps (the asset is read once and shared; each publisher wakes
//! every `--batch-ms` and sends the frames due in one write), then prints one JSON line with,
//! per stream, the frames and bytes it sent, so a benchmark can count them in the recordings.

mod asset;

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, bail};
use asset::Asset;
use clap::{Parser, Subcommand};
use liverec_rtmp::client::Client;
use liverec_rtmp::handler::MediaKind;
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
    /// Many publishers replaying one FLV asset in real time.
    Publish {
        /// `rtmp://host:port/app`.
        #[arg(long)]
        url: String,
        #[arg(long)]
        streams: usize,
        /// Stream names are this plus the publisher's number.
        #[arg(long, default_value = "s")]
        prefix: String,
        /// The FLV file replayed (looped) by every publisher.
        #[arg(long)]
        asset: std::path::PathBuf,
        /// How long each publisher publishes, after the ramp.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Time over which the publishers connect (spread evenly).
        #[arg(long, default_value_t = 10.0)]
        ramp_seconds: f64,
        /// How often a publisher wakes to send the frames that are due.
        #[arg(long, default_value_t = 20)]
        batch_ms: u64,
    },
}

/// What one publisher sent.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
struct Sent {
    video_frames: u64,
    audio_frames: u64,
    bytes: u64,
    /// Milliseconds from the connect to the publish being accepted.
    accept_ms: u64,
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
        Commands::Publish {
            url,
            streams,
            prefix,
            asset,
            seconds,
            ramp_seconds,
            batch_ms,
        } => runtime.block_on(publish(PublishPlan {
            url,
            streams,
            prefix,
            asset,
            publish_for: Duration::from_secs_f64(seconds),
            ramp: Duration::from_secs_f64(ramp_seconds),
            batch: Duration::from_millis(batch_ms.max(1)),
        })),
    }
}

struct PublishPlan {
    url: String,
    streams: usize,
    prefix: String,
    asset: std::path::PathBuf,
    publish_for: Duration,
    ramp: Duration,
    batch: Duration,
}

async fn publish(plan: PublishPlan) -> anyhow::Result<()> {
    let data = tokio::fs::read(&plan.asset)
        .await
        .with_context(|| format!("cannot read {}", plan.asset.display()))?;
    let asset = Asset::parse(data.into())?;
    let (addr, app) = split_rtmp_app(&plan.url)?;
    let tc_url = plan.url.trim_end_matches('/').to_owned();
    let step = plan.ramp / u32::try_from(plan.streams.max(1)).unwrap_or(u32::MAX);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..plan.streams {
        let at = start + step * u32::try_from(i).unwrap_or(u32::MAX);
        let until = start + plan.ramp + plan.publish_for;
        let (asset, app, tc_url) = (asset.clone(), app.clone(), tc_url.clone());
        let name = format!("{}{i}", plan.prefix);
        let batch = plan.batch;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let sent = publish_one(addr, &app, &tc_url, &name, &asset, until, batch).await;
            (name, sent)
        }));
    }
    let mut per_stream = serde_json::Map::new();
    let mut errors = Vec::new();
    let mut accept_ms = Vec::new();
    for task in tasks {
        match task.await {
            Ok((name, Ok(sent))) => {
                accept_ms.push(sent.accept_ms);
                per_stream.insert(name, serde_json::to_value(sent)?);
            }
            Ok((name, Err(e))) => errors.push(format!("{name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    accept_ms.sort_unstable();
    let failed = errors.len();
    errors.truncate(5);
    println!(
        "{}",
        serde_json::json!({
            "streams": plan.streams,
            "published": per_stream.len(),
            "failed": failed,
            "accept_ms_median": accept_ms.get(accept_ms.len() / 2).copied().unwrap_or(0),
            "accept_ms_max": accept_ms.last().copied().unwrap_or(0),
            "errors": errors,
            "per_stream": per_stream,
        })
    );
    Ok(())
}

/// Publishes `name`, replaying `asset` in real time until `until`.
async fn publish_one(
    addr: SocketAddr,
    app: &str,
    tc_url: &str,
    name: &str,
    asset: &Arc<Asset>,
    until: Instant,
    batch: Duration,
) -> anyhow::Result<Sent> {
    let connecting = Instant::now();
    let mut client = Client::connect(addr, app, tc_url).await?;
    client.set_chunk_size(4096).await?;
    client.publish(name).await?;
    let mut sent = Sent {
        accept_ms: u64::try_from(connecting.elapsed().as_millis()).unwrap_or(u64::MAX),
        ..Sent::default()
    };
    for header in &asset.headers {
        client.queue_media(header.kind, 0, &header.body);
    }
    client.flush_queued().await?;
    let start = Instant::now();
    let mut next = 0u64;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let elapsed = u64::try_from(now.duration_since(start).as_millis()).unwrap_or(u64::MAX);
        loop {
            let (tag, timestamp) = asset.frame(next);
            // Frames are due at their timestamp (the replay's clock runs from `start`).
            let due = (next / asset.frames_per_pass()) * u64::from(asset.loop_ms)
                + u64::from(tag.timestamp);
            if due > elapsed {
                break;
            }
            client.queue_media(tag.kind, timestamp, &tag.body);
            match tag.kind {
                MediaKind::Video => sent.video_frames += 1,
                MediaKind::Audio => sent.audio_frames += 1,
                MediaKind::Data => {}
            }
            sent.bytes += tag.body.len() as u64;
            next += 1;
        }
        client.flush_queued().await?;
        tokio::time::sleep(batch).await;
    }
    client.close().await?;
    Ok(sent)
}

/// `host:port` and `app` of `rtmp://host:port/app`.
fn split_rtmp_app(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("rtmp://")
        .context("the URL must start with rtmp://")?;
    let (host, app) = rest
        .split_once('/')
        .context("the URL must be rtmp://host:port/app")?;
    let app = app.trim_end_matches('/');
    if app.is_empty() || app.contains('/') {
        bail!("the URL must be rtmp://host:port/app (one path segment)");
    }
    let addr = host
        .parse()
        .with_context(|| format!("{host} is not an IP address and port"))?;
    Ok((addr, app.to_owned()))
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
