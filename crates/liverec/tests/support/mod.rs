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

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A pre-encoded test asset (made by scripts/make-test-assets.sh, which the test script runs).
pub fn asset(name: &str) -> PathBuf {
    let path = repo_root().join("tests/.assets").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/make-test-assets.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// ffmpeg 9 from imageio-ffmpeg (Enhanced RTMP/FLV, HEVC, AV1).
pub fn ffmpeg9() -> PathBuf {
    if let Ok(p) = std::env::var("LIVEREC_FFMPEG9") {
        return PathBuf::from(p);
    }
    let python = repo_root().join(".venv/bin/python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} not runnable ({e}): run scripts/test.sh to set up the venv",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "imageio-ffmpeg is not installed in .venv"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub rtmp: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `liverec serve` with `extra_toml` appended to a config that binds free ports and
    /// keeps data in a temp dir.
    pub fn start(extra_toml: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("liverec.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "rtmp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{extra_toml}\n",
                data.display().to_string()
            ),
        )
        .expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_liverec"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("LIVEREC_LOG", "info,liverec_rtmp=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn liverec");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[liverec] {line}");
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server {
            child: Some(child),
            dir,
            rtmp: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            lines,
        };
        let line = server.wait_for_log("rtmp ingest listening", Duration::from_secs(20));
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("addr in log");
        server.rtmp = addr.parse().expect("rtmp addr");
        server
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

/// Decodes the whole file and asserts ffmpeg reports no error at all.
pub fn assert_decodes_cleanly(ffmpeg: &Path, file: &Path) {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg decode");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "decoding {} reported errors:\n{stderr}",
        file.display()
    );
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
