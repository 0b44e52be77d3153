//! liverec's control API: the recording part of Alibaba Cloud ApsaraVideo Live's OpenAPI
//! (product `live`, version `2016-11-01`), wire-compatible so the official SDKs work with only
//! the endpoint changed (`/work/shared/API.md`).
//!
//! - [`signature`]: ACS3-HMAC-SHA256 and RPC v1 HMAC-SHA1, pure.
//! - [`params`]: query + form body, `Foo.N.Bar` flattening, limits.
//! - [`auth`]: timestamp window, access keys, signatures, nonces.
//! - [`throttle`]: QPS per (AccessKeyId, Action).
//! - [`actions`]: one request struct per action, one file per family.
//! - [`error`] / [`response`]: Alibaba's codes and bodies, JSON or XML.
//!
//! ```no_run
//! # async fn run(state: std::sync::Arc<liverec_api::ApiState>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, liverec_api::router(state)).await
//! # }
//! ```

pub mod actions;
pub mod auth;
pub mod error;
mod handler;
pub mod ingest_auth;
mod live;
pub mod metrics;
pub mod ui;

pub use ui::{RecentEvent, RecentEvents};
pub mod params;
pub mod response;
pub mod server;
pub mod signature;
pub mod throttle;
pub mod vod;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use actions::Action;
pub use error::ApiError;

/// The only API version liverec speaks.
pub const API_VERSION: &str = "2016-11-01";
/// Alibaba's accepted clock skew of a signed request.
pub const DEFAULT_TIMESTAMP_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long an access key read from the catalog is used before it is read again: a key
/// disabled with `liverec keys disable` is refused at most this much later.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Default `HostId` of error bodies.
pub const DEFAULT_HOST_ID: &str = "liverec";

/// What the operator configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// `HostId` of error bodies.
    pub host_id: String,
    /// Query + body limit; beyond it `InvalidParameter`.
    pub max_request_bytes: usize,
    /// Accepted skew of request timestamps; nonces are kept this long past their stamp.
    pub timestamp_window: Duration,
    /// Per-action QPS overrides (0 = unlimited).
    pub qps: HashMap<String, u32>,
    /// QPS of actions without a built-in or configured limit (0 = unlimited).
    pub default_qps: u32,
    /// Only declared domains exist (`InvalidDomain.NotFound` otherwise).
    pub strict_domains: bool,
    /// The declared domains, lowercase: the config's `domains` and `default_domain`
    /// (DESIGN.md "Domains"). In strict mode they are the only ones.
    pub declared_domains: Vec<String>,
    /// How long a looked-up access key is reused (zero: every request reads the catalog).
    pub key_cache_ttl: Duration,
    /// `None`: any bucket name is accepted (a local directory); `Some(list)`: only those.
    pub buckets: Option<Vec<String>>,
    /// NotifyUrl / OnDemandUrl may name loopback and private hosts (`[notify]
    /// allow_private_hosts`); when false such URLs are refused as unsafe.
    pub allow_private_notify_hosts: bool,
    /// Time a request's body may take to arrive (`RequestTimeout` beyond).
    pub body_timeout: Duration,
    /// How long a callback sent again from the dashboard is retried (`[notify] retry_hours`).
    pub notify_retry_window: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            host_id: DEFAULT_HOST_ID.to_owned(),
            max_request_bytes: params::DEFAULT_MAX_REQUEST_BYTES,
            timestamp_window: DEFAULT_TIMESTAMP_WINDOW,
            qps: HashMap::new(),
            default_qps: throttle::DEFAULT_QPS,
            strict_domains: false,
            declared_domains: Vec::new(),
            key_cache_ttl: DEFAULT_KEY_CACHE_TTL,
            buckets: None,
            allow_private_notify_hosts: true,
            body_timeout: server::DEFAULT_BODY_TIMEOUT,
            notify_retry_window: Duration::from_secs(24 * 3600),
        }
    }
}

/// Re-reads the record configs into the recorder's view; awaited after every config change,
/// before the API answers.
pub type ReloadConfigs = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the actions act on.
pub struct ApiState {
    pub catalog: liverec_catalog::Catalog,
    pub recorder: liverec_recorder::RecorderHandle,
    pub hub: liverec_hub::Hub,
    pub reload_configs: ReloadConfigs,
    pub settings: ApiSettings,
    /// Storage targets by bucket name: playback, generated indexes, deleted files.
    pub storage: Arc<liverec_storage::Storage>,
    /// Mints and checks RecordUrls (`/vod/…`).
    pub vod: vod::VodSigner,
    /// Finished files whose index row is waiting for the database (busy or down).
    pub index_waiting: Arc<std::sync::atomic::AtomicU64>,
    /// What the API port's connection limits refused ([`server::serve`] counts, `/metrics`
    /// shows).
    pub http: Arc<server::HttpCounters>,
    /// Opens live viewers (HTTP-FLV `/{AppName}/{StreamName}.flv`).
    pub viewers: Arc<dyn liverec_play::Viewers>,
    /// Renders `/metrics`: the process's installed Prometheus recorder (`None`: 503).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The log's recent warnings and errors, for the dashboard.
    pub recent: Arc<RecentEvents>,
}

/// The API port's routes: `/vod/…` playback of recordings, `GET /metrics` (Prometheus text,
/// [`metrics`]), `GET /{AppName}/{StreamName}.flv` live HTTP-FLV, `/ui/` the dashboard and its
/// JSON API ([`ui`]); every other path and method reach the OpenAPI handler, which answers
/// `InvalidApi.NotFound` for anything but `GET /` and `POST /`.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    handler::router(state)
}
