//! End-to-end test helpers: a liverec server in a temp dir on free ports, real ffmpeg
//! publishers, and ffprobe/ffmpeg checks of what was recorded.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod api;
pub mod browser;
pub mod origin;
pub mod receiver;
pub mod s3;

#[allow(unused_imports)]
pub use liverec_testkit::{assert_decodes_cleanly, asset, ffmpeg9, repo_root};

pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub rtmp: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
    /// Every line with the moment it was read (for "how late did the server see X").
    timed: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Extra environment of the server process, kept for [`Server::restart`].
    env: Vec<(String, String)>,
    /// The API port (OpenAPI, `/vod/…` playback, `/metrics`), from the log.
    pub api: SocketAddr,
    /// Open-file limit (soft and hard) of the server process, set through the shell.
    nofile: Option<u64>,
}

impl Server {
    /// Starts `liverec serve` with `extra_toml` appended to a config that binds free ports and
    /// keeps data in a temp dir.
    pub fn start(extra_toml: &str) -> Server {
        Server::start_with_env(extra_toml, &[])
    }

    /// Like [`Server::start`], with extra environment variables for the server process
    /// (`LIVEREC_*` overrides).
    pub fn start_with_env(extra_toml: &str, env: &[(&str, &str)]) -> Server {
        Server::start_with(extra_toml, env, None)
    }

    /// Like [`Server::start_with_env`], with the process's open-file limit (soft and hard) at
    /// `nofile` when given.
    pub fn start_with(extra_toml: &str, env: &[(&str, &str)], nofile: Option<u64>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("liverec.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "rtmp_listen = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{extra_toml}\n",
                data.display().to_string()
            ),
        )
        .expect("write config");
        let (_, lines) = mpsc::channel();
        let mut server = Server {
            child: None,
            dir,
            rtmp: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: Arc::new(Mutex::new(Vec::new())),
            lines,
            timed: Arc::new(Mutex::new(Vec::new())),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            nofile,
        };
        server.spawn();
        server
    }

    /// Starts the server process on the config and data of this `Server` and waits until it
    /// listens. Lines of an earlier process stay in the log.
    fn spawn(&mut self) {
        let config = self.dir.path().join("liverec.toml");
        let mut command = match self.nofile {
            // The shell sets the limit and becomes liverec (no unsafe pre_exec here).
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_liverec"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_liverec")),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env("LIVEREC_LOG", "info,liverec_rtmp=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn liverec");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        {
            let log = self.log.clone();
            let timed = self.timed.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[liverec] {line}");
                    timed.lock().unwrap().push((Instant::now(), line.clone()));
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        self.child = Some(child);
        self.lines = lines;
        let api = self.wait_for_log("api listening", Duration::from_secs(20));
        self.api = log_field(&api, "addr")
            .and_then(|a| a.parse().ok())
            .expect("api addr in log");
        let line = self.wait_for_log("rtmp ingest listening", Duration::from_secs(20));
        self.rtmp = log_field(&line, "addr")
            .and_then(|a| a.parse().ok())
            .expect("rtmp addr in log");
    }

    /// Kills the server with SIGKILL (no shutdown handling at all) and waits for it.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same config and data (after [`Server::kill_9`] or
    /// [`Server::terminate`]); its ports are new ones.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("server running")
    }

    /// The API's address (the OpenAPI, `/vod/`, `/metrics`).
    pub fn api_addr(&self) -> SocketAddr {
        self.api
    }

    /// `GET path` on the API port; (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.api_addr();
        let mut conn = std::net::TcpStream::connect(addr).expect("connect to the API");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer)
            .expect("read the API's answer");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://{}/{app}/{stream}", self.rtmp)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Waits for a new log line containing `pattern` (lines already waited for don't count twice).
    pub fn wait_for_log(&mut self, pattern: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(pattern) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {pattern:?} within {timeout:?}"),
            }
        }
    }

    /// Waits until `n` new log lines contain `pattern`.
    pub fn wait_for_logs(&mut self, pattern: &str, n: usize, timeout: Duration) -> Vec<String> {
        (0..n)
            .map(|_| self.wait_for_log(pattern, timeout))
            .collect()
    }

    pub fn log_contains(&self, pattern: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(pattern))
    }

    /// Lines logged so far that contain every one of `patterns`.
    pub fn log_lines(&self, patterns: &[&str]) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| patterns.iter().all(|p| l.contains(p)))
            .cloned()
            .collect()
    }

    /// Waits until at least `n` lines logged since the start contain every one of `patterns`
    /// (unlike [`Server::wait_for_log`] it consumes nothing, so waits for several streams
    /// don't steal each other's lines).
    pub fn wait_for_lines(&self, patterns: &[&str], n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.log_lines(patterns);
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {n} log lines with {patterns:?} within {timeout:?}: {lines:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// When the first line containing every one of `patterns` was read, if one was.
    pub fn logged_at(&self, patterns: &[&str]) -> Option<Instant> {
        self.timed
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| patterns.iter().all(|p| l.contains(p)))
            .map(|(at, _)| *at)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Finished objects of the default bucket with the given extension whose object name
    /// lies under `.../{app}/{stream}/`.
    pub fn recorded_for(&self, app: &str, stream: &str, extension: &str) -> Vec<PathBuf> {
        let needle = format!("/{app}/{stream}/");
        self.recorded(extension)
            .into_iter()
            .filter(|f| f.to_string_lossy().contains(&needle))
            .collect()
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Finished objects of the default bucket with the given extension, sorted (CMAF init
    /// segments left out).
    pub fn recorded(&self, extension: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect(
            &self.data_dir().join("buckets/default/record"),
            extension,
            &mut out,
        );
        out.sort();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of `name=value` in a text log line, or of the top-level string `"name"` in a
/// JSON one (`--log-format json`).
pub fn log_field(line: &str, name: &str) -> Option<String> {
    if line.starts_with('{') {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        return event[name].as_str().map(str::to_owned);
    }
    line.split(&format!("{name}="))
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_owned)
}

fn collect(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension)
            && !path.to_string_lossy().ends_with("_init.mp4")
        {
            out.push(path);
        }
    }
}

/// Publishes `asset` in real time with `-c copy`; returns ffmpeg's exit status.
pub fn publish(ffmpeg: &Path, asset: &Path, url: &str) -> std::process::ExitStatus {
    publish_child(ffmpeg, asset, url, &[])
        .wait()
        .expect("ffmpeg")
}

pub fn publish_child(ffmpeg: &Path, asset: &Path, url: &str, extra_input: &[&str]) -> Child {
    Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re"])
        .args(extra_input)
        .arg("-i")
        .arg(asset)
        .args(["-c", "copy", "-f", "flv", url])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg")
}

/// Packets of a file, per stream, from `ffmpeg -f framecrc` (works with ffmpeg 5.1 and 9,
/// Enhanced FLV included for 9).
#[derive(Debug, Default, Clone)]
pub struct Packets {
    /// (dts, pts, flags-is-key) per stream index, in file order.
    pub streams: Vec<Vec<(i64, i64)>>,
    pub time_bases: Vec<String>,
}

pub fn packets(ffmpeg: &Path, file: &Path) -> Packets {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("ffmpeg framecrc");
    assert!(
        out.status.success(),
        "framecrc of {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut p = Packets::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(tb) = line.strip_prefix("#tb ") {
            p.time_bases
                .push(tb.split(": ").nth(1).unwrap_or("").to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 3 {
            continue;
        }
        let idx: usize = fields[0].parse().expect("stream index");
        while p.streams.len() <= idx {
            p.streams.push(Vec::new());
        }
        p.streams[idx].push((
            fields[1].parse().unwrap_or(0),
            fields[2].parse().unwrap_or(0),
        ));
    }
    p
}

/// What ffprobe (Debian's; not for Enhanced FLV) says of a file.
#[derive(Debug)]
pub struct Probe {
    pub duration: f64,
    pub codecs: Vec<String>,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub first_video_frame_is_key: bool,
}

pub fn probe(file: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "format=duration:stream=codec_name,codec_type,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    let mut p = Probe {
        duration,
        codecs: vec![],
        video_frames: 0,
        audio_frames: 0,
        first_video_frame_is_key: false,
    };
    for s in json["streams"].as_array().into_iter().flatten() {
        let n: u64 = s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        p.codecs
            .push(s["codec_name"].as_str().unwrap_or("").to_owned());
        match s["codec_type"].as_str() {
            Some("video") => p.video_frames = n,
            Some("audio") => p.audio_frames = n,
            _ => {}
        }
    }
    let first = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame",
            "-read_intervals",
            "%+#1",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe first frame");
    p.first_video_frame_is_key = String::from_utf8_lossy(&first.stdout)
        .trim()
        .starts_with('1');
    p
}

/// Duration ffmpeg reports in its `-i` banner (for files Debian's ffprobe cannot read).
pub fn banner_duration(ffmpeg: &Path, file: &Path) -> f64 {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(file)
        .output()
        .expect("ffmpeg -i");
    let text = String::from_utf8_lossy(&out.stderr);
    let d = text
        .split("Duration: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no duration in:\n{text}"));
    let parts: Vec<f64> = d
        .split(':')
        .map(|x| x.trim().parse().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(parts.len(), 3, "no duration for {}: {d}", file.display());
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

pub fn banner(ffmpeg: &Path, file: &Path) -> String {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(file)
        .output()
        .expect("ffmpeg -i");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Packets per stream a recording of `asset` must hold: every video packet, and every audio
/// packet from the first video packet on (a recording starts with a keyframe; audio stamped
/// before it has no picture to go with).
pub fn recordable_counts(ffmpeg: &Path, asset: &Path) -> Vec<usize> {
    let p = packets(ffmpeg, asset);
    if p.streams.len() < 2 {
        return p.streams.iter().map(Vec::len).collect();
    }
    let first_video = p.streams[0].first().map_or(i64::MIN, |(dts, _)| *dts);
    vec![
        p.streams[0].len(),
        p.streams[1]
            .iter()
            .filter(|(dts, _)| *dts >= first_video)
            .count(),
    ]
}

/// One packet as `ffmpeg -f framecrc` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkt {
    pub dts: i64,
    pub pts: i64,
    pub size: u64,
    /// Adler-32 of the payload, as framecrc prints it.
    pub crc: String,
    pub key: bool,
}

/// Every packet of a file with its payload checksum, per stream, and each stream's time base
/// as (numerator, denominator).
#[derive(Debug, Default, Clone)]
pub struct PacketList {
    pub streams: Vec<Vec<Pkt>>,
    pub time_bases: Vec<(i64, i64)>,
}

impl PacketList {
    /// `ts` of stream `stream` in seconds.
    pub fn secs(&self, stream: usize, ts: i64) -> f64 {
        let (num, den) = self.time_bases[stream];
        ts as f64 * num as f64 / den as f64
    }

    /// Smallest and largest pts of a stream, in seconds.
    pub fn pts_range(&self, stream: usize) -> (f64, f64) {
        let pts = self.streams[stream].iter().map(|p| p.pts);
        let (min, max) = (pts.clone().min().unwrap(), pts.max().unwrap());
        (self.secs(stream, min), self.secs(stream, max))
    }
}

pub fn packet_list(ffmpeg: &Path, file: &Path) -> PacketList {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"])
        .output()
        .expect("ffmpeg framecrc");
    assert!(
        out.status.success(),
        "framecrc of {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut list = PacketList::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(tb) = line.strip_prefix("#tb ") {
            let tb = tb.split(": ").nth(1).unwrap_or("1/1");
            let (num, den) = tb.split_once('/').unwrap_or(("1", "1"));
            list.time_bases
                .push((num.trim().parse().unwrap(), den.trim().parse().unwrap()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 6 {
            continue;
        }
        let idx: usize = f[0].parse().expect("stream index");
        while list.streams.len() <= idx {
            list.streams.push(Vec::new());
        }
        // Flags are printed only when they differ from "key" (F=0x1).
        let key = f.get(6).is_none_or(|flags| {
            i64::from_str_radix(flags.trim_start_matches("F=0x"), 16).is_ok_and(|v| v & 1 == 1)
        });
        list.streams[idx].push(Pkt {
            dts: f[1].parse().unwrap(),
            pts: f[2].parse().unwrap(),
            size: f[4].parse().unwrap(),
            crc: f[5].to_owned(),
            key,
        });
    }
    list
}

/// Width and height of the first video stream (Debian's ffprobe).
pub fn video_size(file: &Path) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    // Playlists list the stream once per program and once on its own; any line will do.
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(',').map(|f| f.trim().parse::<u32>());
            match (fields.next(), fields.next()) {
                (Some(Ok(w)), Some(Ok(h))) => Some((w, h)),
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("no video size for {}: {text}", file.display()))
}

/// One FLV tag to publish with the project's own client: what goes on the wire, and when to
/// send it (milliseconds after the first tag), so tests can rewrite timestamps and bodies
/// while keeping real-time pacing.
#[derive(Clone, Debug)]
pub struct Tag {
    pub kind: liverec_rtmp::MediaKind,
    pub timestamp: u32,
    pub body: bytes::Bytes,
    pub send_at_ms: u64,
}

/// The tags of an FLV file, to be sent at their own timestamps.
pub fn read_tags(path: &Path) -> Vec<Tag> {
    use liverec_media::flv::{FileReader, TagKind};
    use liverec_rtmp::MediaKind;
    let data = std::fs::read(path).unwrap();
    FileReader::new(data.into())
        .unwrap()
        .map(|tag| {
            let tag = tag.unwrap();
            Tag {
                kind: match tag.kind {
                    TagKind::Audio => MediaKind::Audio,
                    TagKind::Video => MediaKind::Video,
                    TagKind::Script => MediaKind::Data,
                },
                timestamp: tag.timestamp,
                body: tag.body,
                send_at_ms: u64::from(tag.timestamp),
            }
        })
        .collect()
}

/// What a publish with [`publish_tags`] took.
#[derive(Clone, Copy, Debug)]
pub struct Published {
    /// From the first tag sent to the close.
    pub elapsed: Duration,
    /// Largest delay of a tag's send behind its schedule (real-time publishes).
    pub max_lag: Duration,
    /// When the client closed the connection.
    pub closed_at: std::time::Instant,
}

/// Chunk size the test client publishes with (as OBS and ffmpeg: well above the default 128).
pub const CLIENT_CHUNK_SIZE: u32 = 4096;

/// Publishes `tags` as `app/stream` with the project's RTMP client, paced at `send_at_ms`
/// when `realtime`, then unpublishes and closes.
pub async fn publish_tags(
    addr: SocketAddr,
    app: &str,
    stream: &str,
    tags: &[Tag],
    realtime: bool,
) -> Result<Published, liverec_rtmp::client::ClientError> {
    use liverec_rtmp::client::Client;
    let mut client = Client::connect(addr, app, &format!("rtmp://{addr}/{app}")).await?;
    client.set_chunk_size(CLIENT_CHUNK_SIZE).await?;
    client.publish(stream).await?;
    let start = tokio::time::Instant::now();
    let mut max_lag = Duration::ZERO;
    for tag in tags {
        if realtime {
            let due = start + Duration::from_millis(tag.send_at_ms);
            tokio::time::sleep_until(due).await;
            client
                .send_media(tag.kind, tag.timestamp, &tag.body)
                .await?;
            max_lag = max_lag.max(tokio::time::Instant::now().saturating_duration_since(due));
        } else {
            client
                .send_media(tag.kind, tag.timestamp, &tag.body)
                .await?;
        }
    }
    client.close().await?;
    Ok(Published {
        elapsed: start.elapsed(),
        max_lag,
        closed_at: std::time::Instant::now(),
    })
}

/// A tokio runtime for tests that publish with the project's client.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The record index rows of `domain/app/stream` in the SQLite catalog under `data_dir`, oldest
/// first.
pub fn index_rows(
    data_dir: &Path,
    domain: &str,
    app: &str,
    stream: &str,
) -> Vec<liverec_catalog::RecordingRow> {
    runtime().block_on(async {
        let db = format!("sqlite://{}", data_dir.join("liverec.db").display());
        let catalog = liverec_catalog::Catalog::open(&db)
            .await
            .expect("open the catalog");
        let query = liverec_catalog::RecordingQuery {
            domain: domain.into(),
            app: app.into(),
            stream: stream.into(),
            start: 0,
            end: i64::MAX,
            page: liverec_catalog::Page {
                num: 1,
                size: 100,
                desc: false,
            },
        };
        catalog.recordings(&query).await.expect("query the index").0
    })
}
