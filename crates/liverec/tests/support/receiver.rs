//! A callback receiver for tests: a real HTTP server (axum, on its own runtime thread) that
//! records every request and answers as the test tells it to: fail the first N callbacks,
//! answer slowly, go down and come back on the same port, answer on-demand queries with a
//! given body, or never answer them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    /// Header names lowercase.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status it was answered with (0: not answered yet).
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// How on-demand queries (GET) are answered.
#[derive(Clone, Debug)]
pub enum OnDemandAnswer {
    /// 200 with this body.
    Json(String),
    /// This status, empty body.
    Status(u16),
    /// Never answer (the connection stays open until the client gives up).
    Never,
}

/// How callbacks (POST) and queries (GET) are answered.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// The first N POSTs get 500.
    pub fail_first: usize,
    /// Every request waits this long before its answer.
    pub delay: Duration,
    pub on_demand: OnDemandAnswer,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            fail_first: 0,
            delay: Duration::ZERO,
            on_demand: OnDemandAnswer::Json(r#"{"ApiVersion":"1.0","NeedRecord":true}"#.into()),
        }
    }
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    posts: Mutex<usize>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub fn start(behaviour: Behaviour) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::default());
        *shared.behaviour.lock().unwrap() = behaviour;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut receiver = Receiver {
            addr,
            shared,
            runtime,
            server: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.shared.clone());
        self.server = Some(self.runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Stops listening and drops every open connection: the receiver is down.
    pub fn go_down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = self.runtime.block_on(server);
        }
    }

    /// Listens again on the same port.
    pub fn come_back(&mut self) {
        assert!(self.server.is_none(), "the receiver is up");
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match self
                .runtime
                .block_on(tokio::net::TcpListener::bind(self.addr))
            {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {}: {e}", self.addr);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The POSTs (callbacks) received so far.
    pub fn callbacks(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// Waits until `done` holds for what was received; panics after `timeout`.
    /// The status callbacks (event name → body) delivered so far for `stream`, in arrival
    /// order.
    pub fn status_events(&self, stream: &str) -> Vec<(String, serde_json::Value)> {
        self.callbacks()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.json())
            .filter(|b| b["stream"] == stream && b.get("event").is_some())
            .map(|b| (b["event"].as_str().unwrap_or_default().to_owned(), b))
            .collect()
    }

    /// Waits until `count` status callbacks `event` of `stream` were delivered.
    pub fn wait_for_status(&self, timeout: Duration, stream: &str, event: &str, count: usize) {
        self.wait_until(timeout, event, |_| {
            self.status_events(stream)
                .iter()
                .filter(|(e, _)| e == event)
                .count()
                >= count
        });
    }

    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver: {what} not seen within {timeout:?}; got {:#?}",
                got.iter()
                    .map(|r| format!(
                        "{} {} {}",
                        r.method,
                        r.path,
                        String::from_utf8_lossy(&r.body)
                    ))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.go_down();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> impl IntoResponse {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let behaviour = shared.behaviour.lock().unwrap().clone();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url_decode_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let received = Received {
        at,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        headers,
        body: body.to_vec(),
        status: 0,
    };
    // Recorded on arrival, so a test sees a request that is still waiting for its answer.
    let index = {
        let mut all = shared.received.lock().unwrap();
        all.push(received);
        all.len() - 1
    };
    let (status, answer) = if parts.method == Method::POST {
        let n = {
            let mut posts = shared.posts.lock().unwrap();
            *posts += 1;
            *posts
        };
        if n <= behaviour.fail_first {
            (500, "failing on purpose".to_owned())
        } else {
            (200, "ok".to_owned())
        }
    } else {
        match &behaviour.on_demand {
            OnDemandAnswer::Json(body) => (200, body.clone()),
            OnDemandAnswer::Status(status) => (*status, String::new()),
            OnDemandAnswer::Never => std::future::pending().await,
        }
    };
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    if let Some(r) = shared.received.lock().unwrap().get_mut(index) {
        r.status = status;
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer,
    )
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded.
fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len()
                    && bytes[i + 1].is_ascii_hexdigit()
                    && bytes[i + 2].is_ascii_hexdigit() =>
                {
                    let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                    out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}
