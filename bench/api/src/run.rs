//! The two load shapes: a steady open-loop rate (latency), and closed-loop workers as fast as
//! the server answers (throughput).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Client;
use crate::cpu::{self, Mark, Proc};
use crate::plan::{Plan, Planned};
use crate::stats::{Outcomes, Summary};

/// The action every load request makes.
pub const ACTION: &str = "RealTimeRecordCommand";
/// Connections opened before a steady run starts.
const STEADY_WARM_CONNS: usize = 4;

/// Where the streams live.
#[derive(Debug, Clone)]
pub struct Target {
    pub domain: String,
    pub app: String,
}

/// One measured request.
#[derive(Debug, Clone)]
struct Sample {
    key: String,
    outcome: String,
    /// From writing the request to the last response byte.
    latency: Duration,
    /// How late the request left against its schedule (client timer and scheduling; a large
    /// value means the client, not the server, was the limit).
    send_lag: Duration,
}

async fn command(client: &Client, target: &Target, p: &Planned) -> crate::client::Call {
    let params = [
        ("AppName", target.app.as_str()),
        ("Command", p.command),
        ("DomainName", target.domain.as_str()),
        ("StreamName", p.stream.as_str()),
    ];
    client.call(ACTION, &params).await
}

fn sample_key(p: &Planned) -> String {
    format!("{}:{}", p.kind, p.command)
}

/// Summaries per command key and overall, plus outcome counts.
fn report(samples: &[Sample]) -> serde_json::Value {
    let mut outcomes = Outcomes::default();
    let mut by_key: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for s in samples {
        outcomes.add(&s.key, &s.outcome);
        by_key.entry(&s.key).or_default().push(s.latency);
    }
    let all: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    let lag: Vec<Duration> = samples.iter().map(|s| s.send_lag).collect();
    let per: serde_json::Map<String, serde_json::Value> = by_key
        .into_iter()
        .filter_map(|(k, v)| Summary::of(&v).map(|s| (k.to_owned(), s.to_json())))
        .collect();
    json!({
        "latency": Summary::of(&all).map(|s| s.to_json()),
        "send_lag": Summary::of(&lag).map(|s| s.to_json()),
        "latency_by_command": per,
        "outcomes": outcomes.to_json(),
        "failures": outcomes.failures(),
    })
}

fn cpu_json(before: Option<Mark>, after: Option<Mark>) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) => Some((a.cores_since(&b) * 1e4).round() / 1e4),
        _ => None,
    }
}

/// Steady open-loop load: request k is due at `start + k / rate`, whatever the previous ones
/// are doing, so a slow answer cannot hold back later requests (no coordinated omission). Each
/// request's latency runs from its write to its last response byte; how late it left against
/// its schedule is reported apart (`send_lag`), so client timer jitter (tokio's timer has 1 ms
/// resolution) is not billed to the server.
pub async fn steady(
    client: Arc<Client>,
    target: Target,
    mut plan: Plan,
    rate: f64,
    duration: Duration,
    server: Option<u32>,
) -> serde_json::Value {
    if let Err(e) = client.warm(STEADY_WARM_CONNS).await {
        return json!({"error": e.to_string()});
    }
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let target = Arc::new(target);
    let load_before = cpu::loadavg();
    let srv_before = server.and_then(|p| Mark::take(Proc::Pid(p)).ok());
    let me_before = Mark::take(Proc::Myself).ok();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let Some(planned) = plan.next_request() else {
            break;
        };
        let client = Arc::clone(&client);
        let target = Arc::clone(&target);
        handles.push(tokio::spawn(async move {
            let call = command(&client, &target, &planned).await;
            Sample {
                key: sample_key(&planned),
                outcome: call.outcome,
                latency: call.service,
                send_lag: call.sent.saturating_duration_since(due),
            }
        }));
    }
    let mut samples = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(s) = h.await {
            samples.push(s);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let srv_after = server.and_then(|p| Mark::take(Proc::Pid(p)).ok());
    let me_after = Mark::take(Proc::Myself).ok();
    let mut out = report(&samples);
    out["mode"] = json!("steady");
    out["rate_target"] = json!(rate);
    out["requests"] = json!(samples.len());
    out["wall_secs"] = json!((wall * 1000.0).round() / 1000.0);
    out["rate_achieved"] = json!(((samples.len() as f64 / wall) * 10.0).round() / 10.0);
    out["server_cpu_cores"] = json!(cpu_json(srv_before, srv_after));
    out["client_cpu_cores"] = json!(cpu_json(me_before, me_after));
    out["loadavg_before"] = json!(load_before);
    out["loadavg_after"] = json!(cpu::loadavg());
    out
}

/// Closed loop: `concurrency` connections, each sending its next request as soon as the
/// previous answer arrives. Requests finishing during `warmup` are not counted.
pub async fn max(
    client: Arc<Client>,
    target: Target,
    plan: Plan,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    server: Option<u32>,
) -> serde_json::Value {
    if let Err(e) = client.warm(concurrency).await {
        return json!({"error": e.to_string()});
    }
    let target = Arc::new(target);
    let plan = Arc::new(Mutex::new(plan));
    let t0 = Instant::now();
    let measure_from = t0 + warmup;
    let deadline = measure_from + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = Arc::clone(&client);
        let target = Arc::clone(&target);
        let plan = Arc::clone(&plan);
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let next = plan.lock().ok().and_then(|mut p| p.next_request());
                let Some(planned) = next else { break };
                let begin = Instant::now();
                if begin >= deadline {
                    break;
                }
                let call = command(&client, &target, &planned).await;
                if begin >= measure_from && call.done <= deadline {
                    samples.push(Sample {
                        key: sample_key(&planned),
                        outcome: call.outcome,
                        latency: call.service,
                        send_lag: Duration::ZERO,
                    });
                }
            }
            samples
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let load_before = cpu::loadavg();
    let srv_before = server.and_then(|p| Mark::take(Proc::Pid(p)).ok());
    let me_before = Mark::take(Proc::Myself).ok();
    tokio::time::sleep_until(deadline.into()).await;
    let srv_after = server.and_then(|p| Mark::take(Proc::Pid(p)).ok());
    let me_after = Mark::take(Proc::Myself).ok();
    let load_after = cpu::loadavg();
    let mut samples = Vec::new();
    for w in workers {
        if let Ok(s) = w.await {
            samples.extend(s);
        }
    }
    let secs = duration.as_secs_f64();
    let ok = samples.iter().filter(|s| s.outcome == "OK").count();
    let server_cores = cpu_json(srv_before, srv_after);
    let mut out = report(&samples);
    out["mode"] = json!("max");
    out["concurrency"] = json!(concurrency);
    out["measure_secs"] = json!(secs);
    out["requests"] = json!(samples.len());
    out["rate"] = json!(((samples.len() as f64 / secs) * 10.0).round() / 10.0);
    out["ok_rate"] = json!(((ok as f64 / secs) * 10.0).round() / 10.0);
    out["server_cpu_cores"] = json!(server_cores);
    out["ok_per_server_core"] = json!(
        server_cores
            .filter(|c| *c > 0.0)
            .map(|c| ((ok as f64 / secs / c) * 10.0).round() / 10.0)
    );
    out["client_cpu_cores"] = json!(cpu_json(me_before, me_after));
    out["loadavg_before"] = json!(load_before);
    out["loadavg_after"] = json!(load_after);
    out
}
