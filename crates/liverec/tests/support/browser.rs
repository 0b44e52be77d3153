//! Browser playback peer for the tests: `tests/browser/play.mjs` plays a URL in Debian's
//! headless Chromium (through playwright-core, with hls.js for HLS) and tells what happened;
//! [`MediaServer`] serves a directory over HTTP with CORS and byte ranges, for media that is
//! not served by liverec. scripts/test.sh installs chromium and the npm packages.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A progressive or fragmented MP4 in a `<video>`: play, seek, play on.
    Mp4,
    /// An HLS playlist, with hls.js (or the browser's own player, [`PlayOpts::native`]), to
    /// its end.
    Hls,
}

#[derive(Clone, Debug)]
pub struct PlayOpts {
    /// Where to seek in MP4 mode (default: the middle).
    pub seek: Option<f64>,
    /// How far from the target the seek may land (default 0.25 s).
    pub seek_tolerance: f64,
    /// The decoded picture size playback must show.
    pub size: Option<(u32, u32)>,
    /// Require decoded audio.
    pub audio: bool,
    /// Playback rate (HLS plays to the end, so 2 halves its time).
    pub rate: f64,
    /// HLS through Chromium's own player instead of hls.js.
    pub native: bool,
    /// For the whole run, browser start included.
    pub timeout: Duration,
}

impl Default for PlayOpts {
    fn default() -> Self {
        PlayOpts {
            seek: None,
            seek_tolerance: 0.25,
            size: None,
            audio: false,
            rate: 1.0,
            native: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What play.mjs printed; `json` has everything (network requests, console, events).
#[derive(Clone, Debug)]
pub struct PlayResult {
    pub ok: bool,
    pub error: Option<String>,
    /// Set when the browser refused a media response for lack of CORS headers.
    pub cors_error: Option<String>,
    /// "video" (MP4), "hls.js" or "native".
    pub engine: String,
    pub current_time: f64,
    pub duration: Option<f64>,
    pub ended: bool,
    /// Decoded picture size.
    pub video_size: (u32, u32),
    pub decoded_frames: u64,
    pub audio_decoded_bytes: u64,
    /// Where the seek landed (MP4 mode).
    pub seek_landed: Option<f64>,
    /// Media fragments loaded and listed in the playlist (HLS mode).
    pub fragments_loaded: Option<u64>,
    pub fragments_in_playlist: Option<u64>,
    /// Media responses with status 206.
    pub partial_responses: u64,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl PlayResult {
    /// Panics with everything play.mjs reported unless the playback succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.ok,
            "playback failed: {}\n{}\nstderr: {}",
            self.error.as_deref().unwrap_or("?"),
            serde_json::to_string_pretty(&self.json).unwrap_or_default(),
            self.stderr
        );
        self
    }
}

/// Panics, telling to run ./scripts/test.sh, unless node, Debian's chromium and the npm
/// packages of tests/browser are installed.
pub fn require_browser() -> PathBuf {
    let dir = super::repo_root().join("tests/browser");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is not runnable ({node:?}): the browser tests need Node.js >= 20; run ./scripts/test.sh"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run ./scripts/test.sh (it installs Debian's chromium)"
    );
    for package in ["playwright-core", "hls.js"] {
        assert!(
            dir.join("node_modules").join(package).exists(),
            "tests/browser/node_modules/{package} is missing: run ./scripts/test.sh (npm ci in tests/browser)"
        );
    }
    dir.join("play.mjs")
}

/// Plays `url` in headless Chromium with `node tests/browser/play.mjs`.
pub fn play(mode: Mode, url: &str, opts: &PlayOpts) -> PlayResult {
    let script = require_browser();
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .arg(match mode {
            Mode::Mp4 => "mp4",
            Mode::Hls => "hls",
        })
        .arg(url)
        .args(["--timeout", &opts.timeout.as_secs_f64().to_string()])
        .args(["--rate", &opts.rate.to_string()])
        .args(["--seek-tolerance", &opts.seek_tolerance.to_string()]);
    if let Some(seek) = opts.seek {
        cmd.args(["--seek", &seek.to_string()]);
    }
    if let Some((w, h)) = opts.size {
        cmd.args(["--size", &format!("{w}x{h}")]);
    }
    if opts.audio {
        cmd.arg("--audio");
    }
    if opts.native {
        cmd.arg("--native");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // play.mjs keeps its own timeout; this only guards against a hung node. SIGTERM first,
    // so playwright closes the browser it launched.
    let deadline = Instant::now() + opts.timeout + Duration::from_secs(30);
    let mut termed = false;
    loop {
        if child.try_wait().expect("wait node").is_some() {
            break;
        }
        if Instant::now() > deadline {
            if termed {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            termed = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let json: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!("play.mjs printed no JSON result:\nstdout: {stdout}\nstderr: {stderr}")
        });
    eprintln!("[play.mjs] {json}");
    let state = &json["state"];
    let f = |v: &serde_json::Value| v.as_f64();
    let u = |v: &serde_json::Value| v.as_u64();
    PlayResult {
        ok: json["ok"].as_bool() == Some(true),
        error: json["error"].as_str().map(str::to_owned),
        cors_error: json["cors_error"].as_str().map(str::to_owned),
        engine: state["engine"].as_str().unwrap_or("").to_owned(),
        current_time: f(&state["currentTime"]).unwrap_or(0.0),
        duration: f(&state["duration"]),
        ended: state["ended"].as_bool() == Some(true),
        video_size: (
            u(&state["videoWidth"]).unwrap_or(0) as u32,
            u(&state["videoHeight"]).unwrap_or(0) as u32,
        ),
        decoded_frames: u(&state["decodedFrames"]).unwrap_or(0),
        audio_decoded_bytes: u(&state["audioDecodedBytes"]).unwrap_or(0),
        seek_landed: f(&json["seek"]["landed"]),
        fragments_loaded: u(&state["fragmentsLoaded"]),
        fragments_in_playlist: u(&state["fragmentsInPlaylist"]),
        partial_responses: u(&json["partial_responses"]).unwrap_or(0),
        stderr,
        json,
    }
}

/// One request a [`MediaServer`] answered.
#[derive(Clone, Debug)]
pub struct Served {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
}

/// A small HTTP server for a directory: GET and HEAD with single byte ranges (206, 416),
/// CORS headers (unless started without) and OPTIONS preflights, on 127.0.0.1:0 in a thread
/// of its own; stopped on Drop.
pub struct MediaServer {
    addr: SocketAddr,
    served: Arc<Mutex<Vec<Served>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct MediaState {
    root: PathBuf,
    cors: bool,
    served: Arc<Mutex<Vec<Served>>>,
}

impl MediaServer {
    pub fn start(root: &Path) -> MediaServer {
        MediaServer::start_with(root, true)
    }

    /// Without CORS headers, to see what a browser says of a server that forgets them.
    pub fn start_without_cors(root: &Path) -> MediaServer {
        MediaServer::start_with(root, false)
    }

    fn start_with(root: &Path, cors: bool) -> MediaServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind media server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let served = Arc::new(Mutex::new(Vec::new()));
        let state = MediaState {
            root: root.to_owned(),
            cors,
            served: served.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(serve_file).with_state(state);
                tokio::select! {
                    r = axum::serve(listener, app) => r.expect("media server"),
                    _ = stopped => {}
                }
            });
        });
        MediaServer {
            addr,
            served,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn served(&self) -> Vec<Served> {
        self.served.lock().unwrap().clone()
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve_file(
    axum::extract::State(st): axum::extract::State<MediaState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::{Method, StatusCode, header};
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut b = axum::http::Response::builder();
    if st.cors {
        b = b.header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*").header(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            "Content-Length, Content-Range, Accept-Ranges",
        );
    }
    let (status, body) = if method == Method::OPTIONS {
        if st.cors {
            b = b
                .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS")
                .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "Range, Content-Type")
                .header(header::ACCESS_CONTROL_MAX_AGE, "600");
        }
        (StatusCode::NO_CONTENT, Vec::new())
    } else if method != Method::GET && method != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, Vec::new())
    } else {
        let rel = path.trim_start_matches('/');
        let file = (!rel.split('/').any(|c| c == ".." || c.is_empty()))
            .then(|| st.root.join(rel))
            .and_then(|p| std::fs::read(p).ok());
        match file {
            None => (StatusCode::NOT_FOUND, Vec::new()),
            Some(data) => {
                let len = data.len() as u64;
                let kind = match Path::new(rel).extension().and_then(|e| e.to_str()) {
                    Some("mp4") => "video/mp4",
                    Some("m4s") => "video/iso.segment",
                    Some("ts") => "video/mp2t",
                    Some("m3u8") => "application/vnd.apple.mpegurl",
                    _ => "application/octet-stream",
                };
                b = b
                    .header(header::CONTENT_TYPE, kind)
                    .header(header::ACCEPT_RANGES, "bytes");
                match range.as_deref().map(|r| parse_range(r, len)) {
                    None | Some(RangeAsk::Ignore) => {
                        b = b.header(header::CONTENT_LENGTH, len);
                        (StatusCode::OK, data)
                    }
                    Some(RangeAsk::Unsatisfiable) => {
                        b = b.header(header::CONTENT_RANGE, format!("bytes */{len}"));
                        (StatusCode::RANGE_NOT_SATISFIABLE, Vec::new())
                    }
                    Some(RangeAsk::Bytes(start, end)) => {
                        b = b
                            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                            .header(header::CONTENT_LENGTH, end - start + 1);
                        let part = data[start as usize..=end as usize].to_vec();
                        (StatusCode::PARTIAL_CONTENT, part)
                    }
                }
            }
        }
    };
    st.served.lock().unwrap().push(Served {
        method: method.to_string(),
        path,
        range,
        status: status.as_u16(),
    });
    let body = if method == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    b.status(status)
        .body(axum::body::Body::from(body))
        .expect("response")
}

enum RangeAsk {
    /// Multiple ranges or a malformed header: answer with the whole file (RFC 9110 allows it).
    Ignore,
    Unsatisfiable,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
}

fn parse_range(header: &str, len: u64) -> RangeAsk {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAsk::Ignore;
    };
    if spec.contains(',') {
        return RangeAsk::Ignore;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(s), Ok(e)) if s <= e => (s, e.min(len.saturating_sub(1))),
        (Ok(s), Err(_)) if b.is_empty() => (s, len.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        _ => return RangeAsk::Ignore,
    };
    if len == 0 || start >= len {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Bytes(start, end)
}
