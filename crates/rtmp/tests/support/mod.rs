//! Shared helpers of the integration tests: a test server whose handler records every
//! callback into a channel, peers (ffmpeg 5.1 and 9), and the test media.

#![allow(dead_code)]

#[allow(unused_imports)]
pub use liverec_testkit::{asset, ffmpeg9, repo_root};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use liverec_rtmp::{
    Limits, MediaMessage, PublishRequest, Refusal, RtmpError, SessionHandler, serve_connection,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Publishes under this name are refused with `NetStream.Publish.BadName`.
pub const REFUSED_NAME: &str = "taken";

/// How long a test waits for any one event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handler (or the accept loop, for `Ended`) saw, tagged with the client's address.
#[derive(Debug)]
pub enum Event {
    Published {
        peer: SocketAddr,
        req: PublishRequest,
    },
    Media {
        peer: SocketAddr,
        msg: MediaMessage,
    },
    Unpublished {
        peer: SocketAddr,
    },
    Ended {
        peer: SocketAddr,
        result: Result<(), String>,
        client_closed: bool,
    },
}

impl Event {
    pub fn peer(&self) -> SocketAddr {
        match self {
            Event::Published { peer, .. }
            | Event::Media { peer, .. }
            | Event::Unpublished { peer }
            | Event::Ended { peer, .. } => *peer,
        }
    }
}

pub struct RecordingHandler {
    pub peer: SocketAddr,
    pub events: mpsc::UnboundedSender<Event>,
}

impl SessionHandler for RecordingHandler {
    type Play = liverec_rtmp::NoPlay;

    async fn on_play(&mut self, _req: &liverec_rtmp::PlayRequest) -> Result<Self::Play, Refusal> {
        Err(Refusal::new(
            Refusal::PLAY_NOT_FOUND,
            "this test server serves no play",
        ))
    }

    async fn on_publish(&mut self, req: &PublishRequest) -> Result<(), Refusal> {
        let _ = self.events.send(Event::Published {
            peer: self.peer,
            req: req.clone(),
        });
        if req.stream_name == REFUSED_NAME {
            return Err(Refusal::bad_name("stream is already being published"));
        }
        Ok(())
    }

    async fn on_media(&mut self, msg: MediaMessage) {
        let _ = self.events.send(Event::Media {
            peer: self.peer,
            msg,
        });
    }

    async fn on_unpublish(&mut self) {
        let _ = self.events.send(Event::Unpublished { peer: self.peer });
    }
}

/// A server on 127.0.0.1:0 that serves each connection with `serve_connection` and reports
/// how each one ended.
pub struct TestServer {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub cancel: CancellationToken,
    backlog: Vec<Event>,
}

impl TestServer {
    pub async fn start(limits: Limits) -> Self {
        init_tracing();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                let handler = RecordingHandler {
                    peer,
                    events: tx.clone(),
                };
                let tx = tx.clone();
                let limits = limits.clone();
                let token = token.child_token();
                tokio::spawn(async move {
                    let result = serve_connection(stream, peer, handler, &limits, token).await;
                    let client_closed = result
                        .as_ref()
                        .err()
                        .is_some_and(RtmpError::is_client_closed);
                    let result = result.map_err(|e| format!("{e:?}"));
                    let _ = tx.send(Event::Ended {
                        peer,
                        result,
                        client_closed,
                    });
                });
            }
        });
        Self {
            addr,
            events,
            cancel,
            backlog: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.addr)
    }

    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(EVENT_TIMEOUT, self.events.recv())
            .await
            .expect("timed out waiting for a server event")
            .expect("server gone")
    }

    /// Every event of `peer`'s connection up to its end (events of others stay queued).
    pub async fn events_until_ended(&mut self, peer: SocketAddr) -> Vec<Event> {
        let mut mine = Vec::new();
        loop {
            let event = match self.backlog.iter().position(|e| e.peer() == peer) {
                Some(i) => self.backlog.remove(i),
                None => {
                    let event = self.next_event().await;
                    if event.peer() != peer {
                        self.backlog.push(event);
                        continue;
                    }
                    event
                }
            };
            let ended = matches!(event, Event::Ended { .. });
            mine.push(event);
            if ended {
                return mine;
            }
        }
    }

    /// The peer of the next publish request (queued or new).
    pub async fn next_publisher(&mut self) -> SocketAddr {
        if let Some(Event::Published { peer, .. }) = self
            .backlog
            .iter()
            .find(|e| matches!(e, Event::Published { .. }))
        {
            return *peer;
        }
        loop {
            let event = self.next_event().await;
            let peer = matches!(event, Event::Published { .. }).then(|| event.peer());
            self.backlog.push(event);
            if let Some(peer) = peer {
                return peer;
            }
        }
    }
}

/// What one connection did, summarised from its events.
#[derive(Debug, Default)]
pub struct Summary {
    pub publishes: Vec<PublishRequest>,
    pub media: Vec<MediaMessage>,
    pub unpublishes: usize,
    pub result: Option<Result<(), String>>,
    pub client_closed: bool,
}

impl Summary {
    pub fn of(events: Vec<Event>) -> Self {
        let mut summary = Summary::default();
        for event in events {
            match event {
                Event::Published { req, .. } => summary.publishes.push(req),
                Event::Media { msg, .. } => summary.media.push(msg),
                Event::Unpublished { .. } => summary.unpublishes += 1,
                Event::Ended {
                    result,
                    client_closed,
                    ..
                } => {
                    summary.result = Some(result);
                    summary.client_closed = client_closed;
                }
            }
        }
        summary
    }

    pub fn count(&self, kind: liverec_rtmp::MediaKind) -> usize {
        self.media.iter().filter(|m| m.kind == kind).count()
    }

    /// The error's Debug text (variant names), or panics if the connection ended well.
    pub fn error(&self) -> &str {
        match &self.result {
            Some(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Logs to the test output, filtered by `RUST_LOG` (nothing by default).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

/// Runs `ffmpeg [-re] -i input -c copy [output_args] -f flv url` and returns its exit status and stderr.
pub async fn ffmpeg_publish(
    binary: &Path,
    input: &Path,
    url: &str,
    realtime: bool,
    output_args: &[&str],
) -> (ExitStatus, String) {
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.arg("-i")
        .arg(input)
        .args(["-c", "copy"])
        .args(output_args)
        .args(["-f", "flv", url]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("ffmpeg did not finish")
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Tags of an FLV file by kind: (video, audio, script).
pub fn count_tags(path: &Path) -> (usize, usize, usize) {
    use liverec_media::flv::{FileReader, TagKind};
    let reader = FileReader::new(std::fs::read(path).unwrap().into()).unwrap();
    let mut counts = (0, 0, 0);
    for tag in reader {
        match tag.unwrap().kind {
            TagKind::Video => counts.0 += 1,
            TagKind::Audio => counts.1 += 1,
            TagKind::Script => counts.2 += 1,
        }
    }
    counts
}
