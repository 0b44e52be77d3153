//! The dashboard at `/ui/` (issue 14): static files built into the binary, a login with an
//! access key pair that opens a session (an HttpOnly, SameSite=Strict cookie; the secret is
//! sent once, in a POST body, and never put in a URL or a log line), and a small JSON API
//! under `/ui/api/`:
//!
//! - `POST login` `{access_key_id, access_key_secret}` → the session cookie; `POST logout`;
//! - `GET overview`: live streams with their recorder's state, storage backlog, the callback
//!   outbox, recent warnings;
//! - `POST action`: any API action, its parameters form-encoded as for the OpenAPI, run by the
//!   same code (throttled per key the same way) with the session standing in for a signature;
//! - `POST resend` `{event_id}`: sends a callback again (as `liverec notify resend`).
//!
//! Every POST must carry `X-Liverec-UI: 1`: a cross-site form cannot set it, so together with
//! the SameSite cookie no other site can act through a logged-in browser.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use liverec_hub::StreamKey;
use liverec_media::{AudioCodec, VideoCodec};
use liverec_recorder::board::RecordState;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::handler::{Shared, clip};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "liverec_ui";
/// The header every dashboard POST carries.
pub const UI_HEADER: &str = "x-liverec-ui";
/// How long a dashboard session lasts without a new login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past it the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// Largest login or re-send body.
const MAX_LOGIN_BYTES: usize = 4096;
/// Longest wait for the database while building the overview.
const DATABASE_WAIT: Duration = Duration::from_secs(2);
/// Warnings and errors kept for the overview.
pub const RECENT_EVENTS: usize = 200;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");
/// hls.js 1.7.4 (Apache-2.0, ui/vendor/LICENSE.hls.js), as published on npm: HLS and CMAF
/// recordings play in browsers without native HLS.
const HLS_JS: &str = include_str!("../ui/vendor/hls.min.js");

/// Open dashboard sessions, in memory: a restart logs everyone out.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

#[derive(Debug)]
struct Session {
    key_id: String,
    expires: Instant,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // The map holds no invariant a panicking holder could break.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self, key_id: &str, now: Instant) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(t, _)| t.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            token.clone(),
            Session {
                key_id: key_id.to_owned(),
                expires: now + SESSION_TTL,
            },
        );
        token
    }

    fn key_id(&self, token: &str, now: Instant) -> Option<String> {
        let mut sessions = self.lock();
        match sessions.get(token) {
            Some(s) if s.expires > now => Some(s.key_id.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    fn close(&self, token: &str) {
        self.lock().remove(token);
    }
}

/// One warning or error of the process's log, for the overview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub level: &'static str,
    pub message: String,
    /// The event's fields as `name=value` pairs.
    pub fields: String,
}

/// The last [`RECENT_EVENTS`] warnings and errors (the binary's log layer fills it).
#[derive(Debug, Default)]
pub struct RecentEvents {
    inner: Mutex<VecDeque<RecentEvent>>,
}

impl RecentEvents {
    pub fn push(&self, event: RecentEvent) {
        let mut events = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() >= RECENT_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<RecentEvent> {
        let events = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().cloned().collect()
    }
}

pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/ui/vendor/hls.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HLS_JS) }),
        )
        .route("/ui/api/login", post(login))
        .route("/ui/api/logout", post(logout))
        .route("/ui/api/overview", get(overview))
        .route("/ui/api/action", post(action))
        .route("/ui/api/resend", post(resend))
        .with_state(shared)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Reads a dashboard request's body: at most `limit` bytes, within the API's body timeout (the
/// same bounds as an OpenAPI request's).
async fn read_body(shared: &Shared, body: Body, limit: usize) -> Result<Bytes, Response> {
    match tokio::time::timeout(
        shared.state.settings.body_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request is too large.",
        )),
        Err(_) => Err(json_error(
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time.",
        )),
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

/// The key id of the request's session, if it has one and its key is still enabled; a POST
/// must also carry [`UI_HEADER`].
async fn authorize(shared: &Shared, headers: &HeaderMap, post: bool) -> Result<String, Response> {
    let unauthorized = || json_error(StatusCode::UNAUTHORIZED, "Log in first.");
    if post && headers.get(UI_HEADER).is_none() {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "Dashboard requests carry the X-Liverec-UI header.",
        ));
    }
    let token = session_token(headers).ok_or_else(unauthorized)?;
    let key_id = shared
        .ui
        .key_id(token, Instant::now())
        .ok_or_else(unauthorized)?;
    match shared.keys.get(&shared.state.catalog, &key_id).await {
        Ok(Some(key)) if key.enabled => Ok(key_id),
        Ok(_) => {
            shared.ui.close(token);
            Err(unauthorized())
        }
        Err(err) => Err(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The database did not answer: {err}"),
        )),
    }
}

#[derive(serde::Deserialize)]
struct Login {
    access_key_id: String,
    access_key_secret: String,
}

async fn login(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if headers.get(UI_HEADER).is_none() {
        return json_error(
            StatusCode::FORBIDDEN,
            "Dashboard requests carry the X-Liverec-UI header.",
        );
    }
    let body = match read_body(&shared, body, MAX_LOGIN_BYTES).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "Send {\"access_key_id\": …, \"access_key_secret\": …}.",
        );
    };
    let key = match shared
        .keys
        .get(&shared.state.catalog, &login.access_key_id)
        .await
    {
        Ok(key) => key,
        Err(err) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The database did not answer: {err}"),
            );
        }
    };
    let matches = key.as_ref().is_some_and(|k| {
        k.enabled
            && bool::from(
                k.secret
                    .as_bytes()
                    .ct_eq(login.access_key_secret.as_bytes()),
            )
    });
    if !matches {
        tracing::warn!(key_id = ?clip(&login.access_key_id), "dashboard login refused: unknown or disabled key, or wrong secret");
        return json_error(
            StatusCode::UNAUTHORIZED,
            "Wrong AccessKeyId or AccessKeySecret, or the key is disabled.",
        );
    }
    tracing::info!(key_id = ?clip(&login.access_key_id), "dashboard login");
    let token = shared.ui.open(&login.access_key_id, Instant::now());
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = axum::Json(json!({ "access_key_id": login.access_key_id })).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        shared.ui.close(token);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("liverec_ui=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn action(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let key_id = match authorize(&shared, &headers, true).await {
        Ok(k) => k,
        Err(response) => return response,
    };
    let body = match read_body(&shared, body, shared.state.settings.max_request_bytes).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    crate::handler::ui_action(&shared, &key_id, &body).await
}

#[derive(serde::Deserialize)]
struct Resend {
    event_id: String,
}

async fn resend(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let key_id = match authorize(&shared, &headers, true).await {
        Ok(k) => k,
        Err(response) => return response,
    };
    let body = match read_body(&shared, body, MAX_LOGIN_BYTES).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let Ok(resend) = serde_json::from_slice::<Resend>(&body) else {
        return json_error(StatusCode::BAD_REQUEST, "Send {\"event_id\": …}.");
    };
    let until = unix_ms(SystemTime::now() + shared.state.settings.notify_retry_window);
    let filter = liverec_catalog::ResendFilter::Events(vec![resend.event_id.clone()]);
    match shared
        .state
        .catalog
        .resend_notify_events(&filter, until)
        .await
    {
        Ok(n) => {
            tracing::info!(key_id = ?clip(&key_id), event_id = ?clip(&resend.event_id), resent = n, "dashboard: callback queued again");
            axum::Json(json!({ "resent": n })).into_response()
        }
        Err(err) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The database did not answer: {err}"),
        ),
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn video_codec_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "H.264",
        VideoCodec::H265 => "HEVC",
        VideoCodec::Av1 => "AV1",
    }
}

fn audio_codec_name(codec: AudioCodec) -> &'static str {
    match codec {
        AudioCodec::Aac => "AAC",
    }
}

async fn overview(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let key_id = match authorize(&shared, &headers, false).await {
        Ok(k) => k,
        Err(response) => return response,
    };
    let state = &shared.state;
    let wall_now = SystemTime::now();
    let viewers = state.hub.viewers();
    let board: HashMap<StreamKey, _> = state.recorder.board().snapshot().into_iter().collect();
    let mut streams: Vec<(StreamKey, Value)> = Vec::new();
    let recorder_json = |key: &StreamKey| {
        board.get(key).map(|status| {
            let (name, by_stop) = match status.state {
                RecordState::Idle => ("idle", false),
                RecordState::Recording => ("recording", false),
                RecordState::Paused { by_stop, .. } => ("paused", by_stop),
            };
            json!({
                "state": name,
                "by_stop": by_stop,
                "recording": status.recording,
                "delay_remaining_secs": status.state.remaining(wall_now).map(|d| d.as_secs_f64()),
            })
        })
    };
    for (info, tracks) in state.hub.online() {
        let key = &info.key;
        let uptime = wall_now
            .duration_since(info.started_at)
            .unwrap_or_default()
            .as_secs_f64();
        let bytes = info.bytes_in.load(std::sync::atomic::Ordering::Relaxed);
        let kbps = if uptime > 0.5 {
            (bytes as f64 * 8.0 / 1000.0 / uptime).round()
        } else {
            0.0
        };
        streams.push((
            key.clone(),
            json!({
                "domain": key.domain, "app": key.app, "stream": key.stream, "live": true,
                "video": tracks.video.as_ref().map(|v| json!({
                    "codec": video_codec_name(v.codec), "width": v.width, "height": v.height,
                })),
                "audio": tracks.audio.as_ref().map(|a| audio_codec_name(a.codec)),
                "kbps": kbps,
                "uptime_secs": uptime.floor(),
                "viewers": viewers.get(key).copied().unwrap_or(0),
                "client": info.peer.map(|p| p.ip().to_string()),
                "recorder": recorder_json(key),
            }),
        ));
    }
    // Recordings that outlive their publisher (paused, waiting out DelayTime).
    for (key, status) in &board {
        if status.state != RecordState::Idle && !streams.iter().any(|(k, _)| k == key) {
            streams.push((
                key.clone(),
                json!({
                    "domain": key.domain, "app": key.app, "stream": key.stream, "live": false,
                    "video": null, "audio": null, "kbps": 0, "uptime_secs": 0, "viewers": 0,
                    "client": null, "recorder": recorder_json(key),
                }),
            ));
        }
    }
    streams.sort_by(|a, b| a.0.cmp(&b.0));

    let mut uploads = Vec::new();
    let now_ms = unix_ms(wall_now);
    for target in state.storage.configured() {
        if let Ok(Ok(b)) = tokio::time::timeout(DATABASE_WAIT, target.backlog()).await {
            uploads.push(json!({
                "bucket": target.bucket(),
                "pending": b.pending,
                "failing": b.failing,
                "bytes": b.bytes,
                "oldest_age_secs": b.oldest_created_at.map_or(0, |t| now_ms.saturating_sub(t) / 1000),
                "last_error": b.last_error,
            }));
        }
    }
    let callbacks = match tokio::time::timeout(DATABASE_WAIT, state.catalog.notify_backlog()).await
    {
        Ok(Ok(b)) => json!({ "pending": b.pending, "retrying": b.retrying, "failed": b.failed }),
        _ => Value::Null,
    };
    let mut domains: Vec<String> =
        match tokio::time::timeout(DATABASE_WAIT, state.catalog.domains()).await {
            Ok(Ok(d)) => d,
            _ => Vec::new(),
        };
    domains.extend(streams.iter().map(|(k, _)| k.domain.clone()));
    domains.sort();
    domains.dedup();
    let recent: Vec<Value> = state
        .recent
        .snapshot()
        .into_iter()
        .map(|e| json!({ "at": e.at, "level": e.level, "message": e.message, "fields": e.fields }))
        .collect();
    axum::Json(json!({
        "access_key_id": key_id,
        "now": now_ms,
        "domains": domains,
        "streams": streams.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "uploads": uploads,
        "callbacks": callbacks,
        "recent": recent,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let token = sessions.open("K1", now);
        assert_eq!(token.len(), 64);
        assert_eq!(sessions.key_id(&token, now).as_deref(), Some("K1"));
        assert_eq!(sessions.key_id("nope", now), None);
        assert_eq!(sessions.key_id(&token, now + SESSION_TTL), None);
        let again = sessions.open("K1", now);
        assert_ne!(again, token);
        sessions.close(&again);
        assert_eq!(sessions.key_id(&again, now), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; liverec_ui=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(session_token(&headers), Some("abc"));
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn recent_events_keep_the_last_ones() {
        let recent = RecentEvents::default();
        for i in 0..RECENT_EVENTS + 5 {
            recent.push(RecentEvent {
                at: i as i64,
                level: "WARN",
                message: format!("m{i}"),
                fields: String::new(),
            });
        }
        let all = recent.snapshot();
        assert_eq!(all.len(), RECENT_EVENTS);
        assert_eq!(all[0].at, 5);
    }
}
