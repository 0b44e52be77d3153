//! `liverec status` and `liverec recordings list`: the CLI as a client of a running server,
//! through its API port. It logs in like the dashboard (the key pair in a POST body, once) and
//! then reads the dashboard's overview or runs API actions, so what it prints is what the
//! dashboard and the SDKs see.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use serde_json::Value;

/// How long the CLI waits for the server.
const TIMEOUT: Duration = Duration::from_secs(30);
/// DescribeLiveStreamRecordIndexFiles' largest page and range.
const PAGE_SIZE: u32 = 30;
const MAX_RANGE_SECS: i64 = 4 * 24 * 3600;

/// An access key pair for the API.
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
}

impl Credentials {
    /// The pair given (flags or `LIVEREC_ACCESS_KEY_ID` / `LIVEREC_ACCESS_KEY_SECRET`), else the
    /// bootstrap key the server wrote under `data_dir`.
    pub fn find(
        key_id: Option<String>,
        secret: Option<String>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        if let (Some(key_id), Some(secret)) = (key_id.clone(), secret.clone()) {
            return Ok(Self { key_id, secret });
        }
        if key_id.is_some() || secret.is_some() {
            bail!("give both --key-id and --key-secret (or neither, to use the bootstrap key)");
        }
        let path = crate::keys::bootstrap_key_path(data_dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no key given and cannot read {} (give --key-id and --key-secret, or --data-dir)",
                path.display()
            )
        })?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(|v| v.trim().to_owned())
        };
        match (value("AccessKeyId"), value("AccessKeySecret")) {
            (Some(key_id), Some(secret)) => Ok(Self { key_id, secret }),
            _ => bail!(
                "{} holds no AccessKeyId=… and AccessKeySecret=… lines",
                path.display()
            ),
        }
    }
}

/// A logged-in session with a running server.
pub struct Remote {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Remote {
    pub async fn login(base: &str, credentials: &Credentials) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .context("cannot make an HTTP client")?;
        let response = http
            .post(format!("{base}/ui/api/login"))
            .header("X-Liverec-UI", "1")
            .json(&serde_json::json!({
                "access_key_id": credentials.key_id,
                "access_key_secret": credentials.secret,
            }))
            .send()
            .await
            .with_context(|| format!("cannot reach liverec's API at {base}"))?;
        let status = response.status();
        let cookie = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match cookie {
            Some(cookie) if status.is_success() => Ok(Self { http, base, cookie }),
            _ => bail!(
                "login to {base} refused (HTTP {status}): {}",
                body["error"].as_str().unwrap_or("no reason given")
            ),
        }
    }

    pub async fn overview(&self) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/ui/api/overview", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .context("the overview request failed")?;
        let status = response.status();
        let body: Value = response.json().await.context("the overview is not JSON")?;
        if !status.is_success() {
            bail!("overview: HTTP {status}: {}", body["error"]);
        }
        Ok(body)
    }

    /// Runs an API action; `Err` carries Alibaba's code and message.
    pub async fn action(&self, params: &[(&str, String)]) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/ui/api/action", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("X-Liverec-UI", "1")
            .form(params)
            .send()
            .await
            .context("the API request failed")?;
        let status = response.status();
        let body: Value = response.json().await.context("the answer is not JSON")?;
        if !status.is_success() {
            bail!(
                "{}: {}",
                body["Code"].as_str().unwrap_or("error"),
                body["Message"].as_str().unwrap_or("")
            );
        }
        Ok(body)
    }

    /// Every recording of a stream between `from` and `to` (Unix seconds), oldest first,
    /// paging through DescribeLiveStreamRecordIndexFiles in windows of its largest range.
    pub async fn recordings(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut start = from;
        while start < to {
            let end = (start + MAX_RANGE_SECS).min(to);
            for page in 1u32.. {
                let reply = self
                    .action(&[
                        ("Action", "DescribeLiveStreamRecordIndexFiles".into()),
                        ("DomainName", domain.into()),
                        ("AppName", app.into()),
                        ("StreamName", stream.into()),
                        ("StartTime", utc(start)),
                        ("EndTime", utc(end)),
                        ("PageSize", PAGE_SIZE.to_string()),
                        ("PageNum", page.to_string()),
                        ("Order", "asc".into()),
                    ])
                    .await?;
                let items = reply["RecordIndexInfoList"]["RecordIndexInfo"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let got = items.len();
                all.extend(items);
                let total = reply["TotalNum"].as_u64().unwrap_or(0);
                if got < PAGE_SIZE as usize || u64::from(page) * u64::from(PAGE_SIZE) >= total {
                    break;
                }
            }
            start = end;
        }
        // A recording spanning two windows is listed in both.
        let mut seen = std::collections::HashSet::new();
        all.retain(|r| seen.insert(r["RecordId"].as_str().unwrap_or_default().to_owned()));
        Ok(all)
    }
}

/// `2026-12-08T10:00:00Z`.
pub fn utc(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Parses `2026-12-08T10:00:00Z` (or any RFC 3339 time) into Unix seconds.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .with_context(|| format!("{s:?} is not a time like 2026-12-08T10:00:00Z"))
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs_text(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// Prints `value` to stdout as JSON with `json`, else as `table` writes it.
pub fn print(
    value: &impl serde::Serialize,
    json: bool,
    table: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
    } else {
        table(&mut out)?;
    }
    Ok(())
}

/// The overview as a table: one line per stream, then storage and callbacks.
pub fn write_status(overview: &Value, out: &mut impl Write) -> std::io::Result<()> {
    let streams = overview["streams"].as_array().cloned().unwrap_or_default();
    if streams.is_empty() {
        writeln!(out, "nothing is live or being recorded")?;
    } else {
        writeln!(
            out,
            "{:<40} {:<5} {:<18} {:>10} {:>8} {:>7}  RECORDING",
            "STREAM", "LIVE", "VIDEO", "BITRATE", "UPTIME", "VIEWERS"
        )?;
    }
    for s in &streams {
        let id = format!(
            "{}/{}/{}",
            s["domain"].as_str().unwrap_or(""),
            s["app"].as_str().unwrap_or(""),
            s["stream"].as_str().unwrap_or("")
        );
        let live = s["live"].as_bool().unwrap_or(false);
        let video = match &s["video"] {
            Value::Object(v) => format!(
                "{} {}x{}",
                v["codec"].as_str().unwrap_or("?"),
                v["width"],
                v["height"]
            ),
            _ => "-".to_owned(),
        };
        let recorder = &s["recorder"];
        let recording = match recorder["state"].as_str() {
            Some("recording") => format!("recording #{}", recorder["recording"]),
            Some("paused") => format!(
                "paused ({}), files in {}",
                if recorder["by_stop"].as_bool() == Some(true) {
                    "stopped"
                } else {
                    "publisher gone"
                },
                secs_text(recorder["delay_remaining_secs"].as_f64().unwrap_or(0.0))
            ),
            Some(other) => other.to_owned(),
            None => "not recorded".to_owned(),
        };
        let (bitrate, uptime, viewers) = if live {
            (
                format!("{} kb/s", s["kbps"]),
                secs_text(s["uptime_secs"].as_f64().unwrap_or(0.0)),
                s["viewers"].to_string(),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        writeln!(
            out,
            "{id:<40} {:<5} {video:<18} {bitrate:>10} {uptime:>8} {viewers:>7}  {recording}",
            if live { "yes" } else { "no" }
        )?;
    }
    for u in overview["uploads"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "uploads to {}: {} waiting ({} failing), {} bytes, oldest {}",
            u["bucket"].as_str().unwrap_or("?"),
            u["pending"],
            u["failing"],
            u["bytes"],
            secs_text(u["oldest_age_secs"].as_f64().unwrap_or(0.0))
        )?;
    }
    match &overview["callbacks"] {
        Value::Object(c) => writeln!(
            out,
            "callbacks: {} waiting ({} retrying), {} given up",
            c["pending"], c["retrying"], c["failed"]
        )?,
        _ => writeln!(out, "callbacks: unknown (the database did not answer)")?,
    }
    Ok(())
}

/// Recordings as a table.
pub fn write_recordings(items: &[Value], out: &mut impl Write) -> std::io::Result<()> {
    if items.is_empty() {
        return writeln!(out, "no recordings in this range");
    }
    writeln!(
        out,
        "{:<21} {:<21} {:>9} {:<6} OBJECT",
        "START", "END", "DURATION", "FORMAT"
    )?;
    for r in items {
        let duration = r["Duration"]
            .as_f64()
            .or_else(|| r["Duration"].as_str().and_then(|d| d.parse().ok()))
            .unwrap_or(0.0);
        writeln!(
            out,
            "{:<21} {:<21} {:>8.1}s {:<6} {}",
            r["StartTime"].as_str().unwrap_or(""),
            r["EndTime"].as_str().unwrap_or(""),
            duration,
            r["Format"].as_str().unwrap_or(""),
            r["OssObject"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_streams_with_their_recorder() {
        let overview = serde_json::json!({
            "streams": [
                {"domain": "d", "app": "live", "stream": "a", "live": true,
                 "video": {"codec": "H.264", "width": 1280, "height": 720}, "kbps": 2500,
                 "uptime_secs": 3700, "viewers": 3,
                 "recorder": {"state": "recording", "recording": 2}},
                {"domain": "d", "app": "live", "stream": "b", "live": false, "video": null,
                 "recorder": {"state": "paused", "by_stop": false, "delay_remaining_secs": 75.2}}
            ],
            "uploads": [{"bucket": "archive", "pending": 2, "failing": 1, "bytes": 100, "oldest_age_secs": 30}],
            "callbacks": {"pending": 0, "retrying": 0, "failed": 1}
        });
        let mut out = Vec::new();
        write_status(&overview, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("STREAM"), "{text}");
        assert!(
            lines[1].contains("d/live/a")
                && lines[1].contains("H.264 1280x720")
                && lines[1].contains("2500 kb/s")
                && lines[1].contains("1h01m")
                && lines[1].ends_with("recording #2"),
            "{text}"
        );
        assert!(
            lines[2].contains("d/live/b")
                && lines[2].ends_with("paused (publisher gone), files in 1m15s"),
            "{text}"
        );
        assert_eq!(
            lines[3],
            "uploads to archive: 2 waiting (1 failing), 100 bytes, oldest 30s"
        );
        assert_eq!(lines[4], "callbacks: 0 waiting (0 retrying), 1 given up");
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_time("2026-12-08T10:00:00Z").unwrap(), 1_796_724_000);
        assert_eq!(utc(1_796_724_000), "2026-12-08T10:00:00Z");
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn the_bootstrap_key_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bootstrap-access-key"),
            "AccessKeyId=LTAIabc\nAccessKeySecret=s3cr3t\n",
        )
        .unwrap();
        let c = Credentials::find(None, None, dir.path()).unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.secret.as_str()),
            ("LTAIabc", "s3cr3t")
        );
        let given = Credentials::find(Some("K".into()), Some("S".into()), dir.path()).unwrap();
        assert_eq!(given.key_id, "K");
        assert!(Credentials::find(Some("K".into()), None, dir.path()).is_err());
        assert!(Credentials::find(None, None, &dir.path().join("nothing")).is_err());
    }
}
