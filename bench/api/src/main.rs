//! `liverec-apibench`: see `lib.rs` and `bench/run-api.sh`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use liverec_apibench::client::{Client, unix_ms};
use liverec_apibench::plan::Plan;
use liverec_apibench::run::{self, Target};
use liverec_apibench::sign::{Credentials, Scheme};
use serde_json::json;

/// Longest accepted key file.
const MAX_KEY_FILE_BYTES: u64 = 4096;
/// Interval between polls of the online list.
const ONLINE_POLL: Duration = Duration::from_millis(200);

#[derive(Parser, Debug)]
#[command(version, about = "Signed load generator for liverec's control API")]
struct Cli {
    /// API address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// File with `AccessKeyId=…` and `AccessKeySecret=…` lines (liverec's bootstrap key file).
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[arg(long, env = "LIVEREC_ACCESS_KEY_ID", hide_env_values = true)]
    key_id: Option<String>,
    #[arg(long, env = "LIVEREC_ACCESS_KEY_SECRET", hide_env_values = true)]
    key_secret: Option<String>,
    #[arg(long, value_enum, default_value = "acs3")]
    scheme: Scheme,
    #[arg(long, default_value = "live.liverec.local")]
    domain: String,
    #[arg(long, default_value = "live")]
    app: String,
    /// Client runtime threads (the client competes with the server for cores).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// One signed call; prints status, code, body and wall-clock send/answer times as JSON.
    Call {
        action: String,
        /// `Name=Value` parameters.
        params: Vec<String>,
    },
    /// Waits until at least `min` streams of the domain are online.
    Online {
        #[arg(long)]
        min: usize,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Steady open-loop rate of RealTimeRecordCommand.
    Steady {
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        #[command(flatten)]
        mix: Mix,
    },
    /// Closed-loop maximum rate of RealTimeRecordCommand.
    Max {
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[command(flatten)]
        mix: Mix,
    },
}

#[derive(clap::Args, Debug)]
struct Mix {
    /// Publishing streams `{live_prefix}{0..live}`: each cycles start → stop → cancel_delay.
    #[arg(long, default_value_t = 100)]
    live: usize,
    #[arg(long, default_value = "s")]
    live_prefix: String,
    /// Non-publishing streams `{idle_prefix}{0..idle}`: they get `stop`.
    #[arg(long, default_value_t = 100)]
    idle: usize,
    #[arg(long, default_value = "idle")]
    idle_prefix: String,
    /// Fraction of requests that go to idle streams.
    #[arg(long, default_value_t = 0.2)]
    idle_share: f64,
    /// liverec's pid: its CPU is read from /proc over the measured window.
    #[arg(long)]
    pid: Option<u32>,
}

impl Mix {
    fn plan(&self) -> Plan {
        Plan::new(
            &self.live_prefix,
            self.live,
            &self.idle_prefix,
            self.idle,
            self.idle_share,
        )
    }
}

fn credentials(cli: &Cli) -> Result<Credentials, String> {
    if let Some(path) = &cli.key_file {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(format!(
                "{}: larger than {MAX_KEY_FILE_BYTES} bytes",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let get = |name: &str| {
            text.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(name)
                        .and_then(|r| r.strip_prefix('='))
                })
                .map(|v| v.trim().to_owned())
        };
        return match (get("AccessKeyId"), get("AccessKeySecret")) {
            (Some(id), Some(secret)) => Ok(Credentials { id, secret }),
            _ => Err(format!(
                "{}: no AccessKeyId/AccessKeySecret lines",
                path.display()
            )),
        };
    }
    match (&cli.key_id, &cli.key_secret) {
        (Some(id), Some(secret)) => Ok(Credentials {
            id: id.clone(),
            secret: secret.clone(),
        }),
        _ => Err("give --key-file, or --key-id and --key-secret".to_owned()),
    }
}

fn parse_params(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    raw.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("parameter {p:?} is not Name=Value"))
        })
        .collect()
}

fn positive_secs(what: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{what} must be a positive number of seconds"))
}

async fn online(client: &Client, domain: &str, min: usize, timeout: Duration) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let call = client
            .call(
                "DescribeLiveStreamsOnlineList",
                &[
                    ("DomainName", domain),
                    ("PageSize", "3000"),
                    ("OnlyStream", "yes"),
                ],
            )
            .await;
        let total = serde_json::from_slice::<serde_json::Value>(&call.body)
            .ok()
            .and_then(|v| v.get("TotalNum").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        if total >= min || start.elapsed() >= timeout {
            return json!({"online": total, "ok": total >= min, "outcome": call.outcome,
                          "waited_secs": start.elapsed().as_secs_f64()});
        }
        tokio::time::sleep(ONLINE_POLL).await;
    }
}

async fn run(cli: Cli) -> Result<serde_json::Value, String> {
    let creds = credentials(&cli)?;
    let client = Client::new(cli.addr, creds, cli.scheme);
    let target = Target {
        domain: cli.domain.clone(),
        app: cli.app.clone(),
    };
    Ok(match &cli.cmd {
        Cmd::Call { action, params } => {
            let params = parse_params(params)?;
            let refs: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let call = client.call(action, &refs).await;
            let body = serde_json::from_slice::<serde_json::Value>(&call.body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&call.body)));
            json!({
                "status": call.status, "outcome": call.outcome, "body": body,
                "sent_unix_ms": unix_ms(call.sent_wall), "done_unix_ms": unix_ms(call.done_wall),
                "latency_ms": call.service.as_secs_f64() * 1e3,
            })
        }
        Cmd::Online { min, timeout } => {
            online(
                &client,
                &cli.domain,
                *min,
                positive_secs("--timeout", *timeout)?,
            )
            .await
        }
        Cmd::Steady {
            rate,
            duration,
            mix,
        } => {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err("--rate must be positive".to_owned());
            }
            let d = positive_secs("--duration", *duration)?;
            let mut r = run::steady(client, target, mix.plan(), *rate, d, mix.pid).await;
            r["scheme"] = json!(format!("{:?}", cli.scheme));
            r
        }
        Cmd::Max {
            concurrency,
            warmup,
            duration,
            mix,
        } => {
            if *concurrency == 0 {
                return Err("--concurrency must be at least 1".to_owned());
            }
            let w = Duration::try_from_secs_f64(*warmup).map_err(|_| "bad --warmup".to_owned())?;
            let d = positive_secs("--duration", *duration)?;
            let mut r = run::max(client, target, mix.plan(), *concurrency, w, d, mix.pid).await;
            r["scheme"] = json!(format!("{:?}", cli.scheme));
            r
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("liverec-apibench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(v) => {
            println!("{v}");
            if v.get("error").is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("liverec-apibench: {e}");
            ExitCode::from(2)
        }
    }
}
