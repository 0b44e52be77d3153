//! One request from bytes to answer: limits → parameters → action and version →
//! authentication (signature, timestamp) → throttle → nonce → the action. Every request gets a RequestId and exactly one
//! log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tower_http::catch_panic::CatchPanicLayer;

use crate::actions::{self, Action};
use crate::auth::{self, Incoming, Scheme};
use crate::error::ApiError;
use crate::params::Params;
use crate::response::{ApiResponse, Format, Object};
use crate::throttle::Throttle;
use crate::{API_VERSION, ApiState};

/// How often expired nonces are purged and idle throttle buckets dropped.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// Longest client-supplied value (action name, key id) put in a log line.
pub const MAX_LOGGED_LEN: usize = 64;

/// The router's state: the caller's [`ApiState`] plus what the API keeps for itself.
pub(crate) struct Shared {
    pub(crate) state: Arc<ApiState>,
    throttle: Throttle,
    pub(crate) keys: auth::KeyCache,
    /// Unix ms of the last housekeeping.
    last_housekeeping: AtomicI64,
    /// The dashboard's sessions.
    pub(crate) ui: crate::ui::Sessions,
}

pub(crate) fn router(state: Arc<ApiState>) -> Router {
    let throttle = Throttle::new(
        &Action::names(),
        &state.settings.qps,
        state.settings.default_qps,
    );
    let host_id = state.settings.host_id.clone();
    let keys = auth::KeyCache::new(state.settings.key_cache_ttl);
    let vod = Router::new()
        .route("/vod/{*object}", axum::routing::any(crate::vod::serve))
        .route("/metrics", axum::routing::get(crate::metrics::serve))
        .route("/{app}/{name}", axum::routing::get(crate::live::serve))
        .with_state(state.clone());
    let shared = Arc::new(Shared {
        state,
        throttle,
        keys,
        last_housekeeping: AtomicI64::new(0),
        ui: crate::ui::Sessions::default(),
    });
    Router::new()
        .fallback(handle)
        .with_state(shared.clone())
        .merge(crate::ui::routes(shared))
        .merge(vod)
        .layer(CatchPanicLayer::custom(move |_| panic_response(&host_id)))
}

/// A panic is a bug; the client still gets Alibaba's InternalError body.
fn panic_response(host_id: &str) -> Response {
    let request_id = new_request_id();
    tracing::error!(request_id, "api handler panicked");
    ApiResponse {
        format: Format::Json,
        request_id,
        host_id: host_id.to_owned(),
        action: None,
        result: Err(ApiError::Internal("panic".to_owned())),
    }
    .into_response()
}

/// A fresh upper-case UUID.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_upper(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}

/// What the log line and the response need to know, filled in as the request is understood.
#[derive(Default)]
struct Trace {
    format: Format,
    action: Option<Action>,
    action_name: Option<String>,
    key_id: Option<String>,
}

/// Longest error detail put in a log line.
pub const MAX_LOGGED_DETAIL_LEN: usize = 128;

/// `detail` cut to [`MAX_LOGGED_DETAIL_LEN`] characters, saying how long it was.
fn clip_detail(detail: &str) -> String {
    match detail.char_indices().nth(MAX_LOGGED_DETAIL_LEN) {
        Some((i, _)) => format!("{}… ({} bytes)", &detail[..i], detail.len()),
        None => detail.to_owned(),
    }
}

pub(crate) fn clip(s: &str) -> &str {
    match s.char_indices().nth(MAX_LOGGED_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let mut trace = Trace::default();
    // Whatever an action logs carries the request's id.
    let span = tracing::info_span!("api", request_id = %request_id);
    let result = tracing::Instrument::instrument(process(&shared, request, &mut trace), span).await;
    let format = trace.format;
    answer(&shared, format, request_id, &trace, result, started)
}

/// The response to one request, logged once (the single log point of every API request).
fn answer(
    shared: &Shared,
    format: Format,
    request_id: String,
    trace: &Trace,
    result: Result<Object, ApiError>,
    started: Instant,
) -> Response {
    let response = ApiResponse {
        format,
        request_id,
        host_id: shared.state.settings.host_id.clone(),
        action: trace.action.map(Action::name),
        result,
    };
    log(&response, trace, started.elapsed());
    response.into_response()
}

fn log(response: &ApiResponse, trace: &Trace, latency: Duration) {
    let status = response.status().as_u16();
    // The detail can carry a client's parameter name: clipped like the other client values
    // (the fields are logged quoted, with control characters escaped).
    let (code, detail) = match &response.result {
        Ok(_) => (String::new(), String::new()),
        Err(e) => (e.code(), clip_detail(&e.to_string())),
    };
    let action = trace.action_name.as_deref().map(clip).unwrap_or_default();
    let key_id = trace.key_id.as_deref().map(clip).unwrap_or_default();
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let request_id = response.request_id.as_str();
    crate::metrics::count_request(response.action, &code, latency);
    if matches!(&response.result, Err(e) if e.is_server_fault()) {
        tracing::error!(
            request_id,
            ?action,
            ?key_id,
            status,
            code,
            detail,
            latency_us,
            "api request"
        );
    } else {
        tracing::info!(
            request_id,
            ?action,
            ?key_id,
            status,
            code,
            detail,
            latency_us,
            "api request"
        );
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

async fn process(shared: &Shared, request: Request, trace: &mut Trace) -> Result<Object, ApiError> {
    let (parts, body) = request.into_parts();
    if parts.uri.path() != "/" || !(parts.method == Method::GET || parts.method == Method::POST) {
        return Err(ApiError::UnknownAction);
    }
    let settings = &shared.state.settings;
    let limit = settings.max_request_bytes;
    let too_large = ApiError::TooLarge { limit };
    let query = parts.uri.query().unwrap_or_default();
    let remaining = limit
        .checked_sub(query.len())
        .ok_or_else(|| too_large.clone())?;
    if content_length(&parts.headers).is_some_and(|n| n > remaining as u64) {
        return Err(too_large);
    }
    let body = tokio::time::timeout(settings.body_timeout, axum::body::to_bytes(body, remaining))
        .await
        .map_err(|_| ApiError::BodyTimeout)?
        .map_err(|_| too_large)?;
    let form = is_form(&parts.headers).then_some(body.as_ref());
    let params = Params::parse(query.as_bytes(), form, limit)?;
    trace.format = Format::from_param(params.get("Format"));

    let scheme = auth::scheme(&parts.headers)?;
    let (action_name, version) = match &scheme {
        Scheme::Acs3(a) => {
            trace.key_id = Some(a.key_id.clone());
            (
                auth::header_text(&parts.headers, "x-acs-action")?,
                auth::header_text(&parts.headers, "x-acs-version")?,
            )
        }
        Scheme::RpcV1 => {
            trace.key_id = params.optional("AccessKeyId").map(str::to_owned);
            (
                params.optional("Action").map(str::to_owned),
                params.optional("Version").map(str::to_owned),
            )
        }
    };
    let action_name = non_empty(action_name).ok_or(ApiError::Missing("Action"))?;
    trace.action_name = Some(action_name.clone());
    let version = non_empty(version).ok_or(ApiError::Missing("Version"))?;
    if version != API_VERSION {
        return Err(ApiError::NoSuchVersion);
    }
    let action = Action::from_name(&action_name).ok_or(ApiError::UnknownAction)?;
    trace.action = Some(action);

    let now = OffsetDateTime::now_utc();
    let incoming = Incoming {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        headers: &parts.headers,
        params: &params,
        body: &body,
        now,
    };
    let verified = auth::authenticate(&shared.state, &shared.keys, &scheme, &incoming).await?;
    // Throttled before the nonce is spent: a refused request can be sent again as it was.
    shared.throttle.check(&verified.key_id, action.name())?;
    verified.spend_nonce(&shared.state).await?;
    shared.housekeeping(now);
    actions::dispatch(action, &params, &shared.state).await
}

/// Runs an action for the dashboard (`POST /ui/api/action`): `body` holds the action's
/// parameters form-encoded as for the OpenAPI; the session of `key_id` stands in for a
/// signature. Throttled, answered (JSON) and logged like any API request.
pub(crate) async fn ui_action(shared: &Shared, key_id: &str, body: &[u8]) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let mut trace = Trace {
        key_id: Some(key_id.to_owned()),
        ..Trace::default()
    };
    let span = tracing::info_span!("api", request_id = %request_id);
    let run = async {
        let params = Params::parse(b"", Some(body), shared.state.settings.max_request_bytes)?;
        let action_name = params
            .optional("Action")
            .filter(|a| !a.is_empty())
            .ok_or(ApiError::Missing("Action"))?;
        trace.action_name = Some(format!("{action_name} (dashboard)"));
        let action = Action::from_name(action_name).ok_or(ApiError::UnknownAction)?;
        trace.action = Some(action);
        shared.throttle.check(key_id, action.name())?;
        actions::dispatch(action, &params, &shared.state).await
    };
    let result = tracing::Instrument::instrument(run, span).await;
    answer(shared, Format::Json, request_id, &trace, result, started)
}

impl Shared {
    /// At most once per [`HOUSEKEEPING_INTERVAL`]: purge expired nonces (in the background)
    /// and forget idle throttle buckets.
    fn housekeeping(&self, now: OffsetDateTime) {
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let interval = i64::try_from(HOUSEKEEPING_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        let last = self.last_housekeeping.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < interval
            || self
                .last_housekeeping
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.throttle.retain_recent();
        let catalog = self.state.catalog.clone();
        tokio::spawn(async move {
            match catalog.purge_nonces(now_ms).await {
                Ok(n) => tracing::debug!(purged = n, "expired signature nonces purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired signature nonces failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_upper_case_uuids() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a, a.to_uppercase());
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn clip_respects_char_boundaries() {
        let s = "é".repeat(100);
        assert_eq!(clip(&s).chars().count(), MAX_LOGGED_LEN);
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn long_details_are_clipped_with_their_size() {
        let long = format!("invalid parameter {}", "x".repeat(5000));
        let clipped = clip_detail(&long);
        assert!(
            clipped.chars().count() < MAX_LOGGED_DETAIL_LEN + 20,
            "{clipped}"
        );
        assert!(clipped.ends_with(&format!("({} bytes)", long.len())));
        assert_eq!(clip_detail("short"), "short");
    }

    #[test]
    fn form_detection() {
        let mut h = HeaderMap::new();
        assert!(!is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        );
        assert!(is_form(&h));
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_form(&h));
    }
}
