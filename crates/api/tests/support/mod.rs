//! A whole API over a real catalog (in-memory SQLite), hub and recorder supervisor, plus
//! test signers for both schemes written independently of the crate's `signature` module.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use liverec_api::{ApiSettings, ApiState, ReloadConfigs};
use liverec_catalog::Catalog;
use liverec_hub::{Hub, HubConfig, Publisher, SlowPolicy, StreamKey, SubscribeOptions};
use liverec_media::{AudioCodec, AudioConfig, CodecConfig, VideoCodec, VideoConfig};
use liverec_recorder::{
    AlwaysRecord, ConfigSource, Format, FormatSpec, NoStatus, RecordConfig, RecordMode,
    RecorderDeps, RecorderHandle, SpoolPolicy, Supervisor,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub const AK: &str = "testAK";
pub const SK: &str = "testSK";
pub const HOST_ID: &str = "test-host";

/// A record config the tests can switch at run time.
pub struct SwitchConfig(pub Mutex<Option<RecordConfig>>);

impl ConfigSource for SwitchConfig {
    fn resolve(&self, _key: &StreamKey) -> Option<RecordConfig> {
        self.0.lock().unwrap().clone()
    }
}

pub fn manual_config() -> RecordConfig {
    RecordConfig {
        mode: RecordMode::Manual,
        delay: Duration::from_secs(180),
        bucket: "default".into(),
        endpoint: String::new(),
        formats: vec![FormatSpec::new(Format::Mp4)],
    }
}

pub struct TestApi {
    pub router: Router,
    pub catalog: Catalog,
    pub hub: Hub,
    pub recorder: RecorderHandle,
    pub configs: Arc<SwitchConfig>,
    pub reloads: Arc<AtomicUsize>,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn settings() -> ApiSettings {
    ApiSettings {
        host_id: HOST_ID.into(),
        ..ApiSettings::default()
    }
}

pub async fn start() -> TestApi {
    start_with(settings()).await
}

pub async fn start_with(settings: ApiSettings) -> TestApi {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open_in_memory().await.unwrap();
    catalog.insert_key(AK, SK).await.unwrap();
    let (lifecycle_tx, lifecycle_rx) = tokio::sync::mpsc::channel(64);
    let hub = Hub::new(HubConfig::default(), lifecycle_tx);
    let configs = Arc::new(SwitchConfig(Mutex::new(Some(manual_config()))));
    let storage = Arc::new(liverec_storage::Storage::new(
        dir.path(),
        Arc::new(|_| Box::pin(async {})),
    ));
    let deps = RecorderDeps {
        hub: hub.clone(),
        configs: configs.clone(),
        storage: storage.clone(),
        policy: SpoolPolicy::default(),
        subscribe: SubscribeOptions {
            from_gop: true,
            queue_bytes: 1 << 20,
            policy: SlowPolicy::Block {
                max_wait: Duration::from_secs(1),
            },
        },
        finalizers: TaskTracker::new(),
        on_demand: Arc::new(AlwaysRecord),
        on_demand_timeout: Duration::from_secs(3),
        status: Arc::new(NoStatus),
        board: Default::default(),
    };
    let cancel = CancellationToken::new();
    let (recorder, _join) =
        Supervisor::spawn(deps, lifecycle_rx, cancel.clone(), Duration::from_secs(5));
    let reloads = Arc::new(AtomicUsize::new(0));
    let reload_configs: ReloadConfigs = {
        let reloads = reloads.clone();
        Arc::new(move || {
            let reloads = reloads.clone();
            Box::pin(async move {
                reloads.fetch_add(1, Ordering::SeqCst);
            })
        })
    };
    let state = Arc::new(ApiState {
        catalog: catalog.clone(),
        recorder: recorder.clone(),
        hub: hub.clone(),
        reload_configs,
        settings,
        storage,
        vod: liverec_api::vod::VodSigner::new(
            b"test secret",
            "http://127.0.0.1:8080",
            Duration::from_secs(86_400),
        )
        .unwrap(),
        index_waiting: Default::default(),
        http: Default::default(),
        viewers: Arc::new(LiveOnDefaultDomain(hub.clone())),
        metrics: None,
        recent: Default::default(),
    });
    TestApi {
        router: liverec_api::router(state),
        catalog,
        hub,
        recorder,
        configs,
        reloads,
        cancel,
        _dir: dir,
    }
}

/// Publishes `domain/app/stream` with H.264 1280x720 video and AAC audio.
pub async fn publish(hub: &Hub, domain: &str, app: &str, stream: &str) -> Publisher {
    let key = StreamKey {
        domain: domain.into(),
        app: app.into(),
        stream: stream.into(),
    };
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let mut p = hub.publish(key, vec![], Some(peer)).await.unwrap();
    p.set_config(CodecConfig::Video(Arc::new(VideoConfig {
        codec: VideoCodec::H264,
        record: bytes::Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
        width: 1280,
        height: 720,
        nal_length_size: 4,
        parameter_sets: vec![],
    })));
    p.set_config(CodecConfig::Audio(Arc::new(AudioConfig {
        codec: AudioCodec::Aac,
        specific: bytes::Bytes::from_static(&[0x12, 0x10]),
        object_type: 2,
        sample_rate: 44100,
        channels: 2,
    })));
    p
}

// ---- independent signers -------------------------------------------------------------

/// RFC 3986, byte by byte.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// As the current Python SDK puts it on the wire: space as `+`.
pub fn encode_plus(s: &str) -> String {
    encode(s).replace("%20", "+")
}

pub fn canonical(params: &[(String, String)]) -> String {
    let mut sorted: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn utc_stamp(offset: time::Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + offset;
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap()
}

pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// An RPC v1 (older SDK) request before signing.
#[derive(Clone, Debug)]
pub struct V1 {
    pub method: Method,
    pub params: Vec<(String, String)>,
    pub secret: String,
    /// Send the parameters as a form body (the older Node client) instead of the query.
    pub form: bool,
}

impl V1 {
    /// Every common parameter the older Python SDK sends, and the action's own.
    pub fn new(action: &str, params: &[(&str, &str)]) -> Self {
        let mut all = owned(&[
            ("AccessKeyId", AK),
            ("Action", action),
            ("Format", "JSON"),
            ("RegionId", "cn-shanghai"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("Version", "2016-11-01"),
        ]);
        all.push(("Timestamp".into(), utc_stamp(time::Duration::ZERO)));
        all.push(("SignatureNonce".into(), nonce()));
        all.extend(owned(params));
        Self {
            method: Method::POST,
            params: all,
            secret: SK.into(),
            form: false,
        }
    }

    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != key);
        self.params.push((key.into(), value.into()));
        self
    }

    pub fn remove(mut self, key: &str) -> Self {
        self.params.retain(|(k, _)| k != key);
        self
    }

    pub fn string_to_sign(&self) -> String {
        let without: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| k != "Signature")
            .cloned()
            .collect();
        format!(
            "{}&{}&{}",
            self.method,
            encode("/"),
            encode(&canonical(&without))
        )
    }

    pub fn signature(&self) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(format!("{}&", self.secret).as_bytes()).unwrap();
        mac.update(self.string_to_sign().as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The signed parameters.
    pub fn signed(&self) -> Vec<(String, String)> {
        let mut p = self.params.clone();
        p.push(("Signature".into(), self.signature()));
        p
    }

    pub fn request(&self) -> Request<Body> {
        self.request_from(&self.signed())
    }

    /// A request carrying `params` as they are (e.g. tampered after signing).
    pub fn request_from(&self, params: &[(String, String)]) -> Request<Body> {
        let qs = query_string(params);
        if self.form {
            Request::builder()
                .method(self.method.clone())
                .uri("/")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(qs))
                .unwrap()
        } else {
            Request::builder()
                .method(self.method.clone())
                .uri(format!("/?{qs}"))
                .body(Body::empty())
                .unwrap()
        }
    }
}

/// An ACS3-HMAC-SHA256 (current SDK) request before signing.
#[derive(Clone, Debug)]
pub struct Acs3 {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub key_id: String,
    pub secret: String,
    /// Every header sent, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Names to sign; `None` = all of `headers`.
    pub signed: Option<Vec<String>>,
}

impl Acs3 {
    /// The header set of the current Python SDK.
    pub fn new(action: &str, query: &[(&str, &str)]) -> Self {
        let headers = owned(&[
            ("accept", "application/json"),
            ("host", "127.0.0.1:18765"),
            (
                "user-agent",
                "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            ),
            ("x-acs-action", action),
            ("x-acs-credentials-provider", "static_ak"),
            ("x-acs-version", "2016-11-01"),
        ]);
        let mut s = Self {
            method: Method::POST,
            query: owned(query),
            body: Vec::new(),
            key_id: AK.into(),
            secret: SK.into(),
            headers,
            signed: None,
        };
        s = s.header("x-acs-date", &utc_stamp(time::Duration::ZERO));
        s = s.header("x-acs-signature-nonce", &nonce());
        s.with_body(Vec::new())
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| k != name);
        self
    }

    /// Sets the body and its `x-acs-content-sha256`.
    pub fn with_body(self, body: Vec<u8>) -> Self {
        let sha = hex::encode(Sha256::digest(&body));
        let mut s = self.header("x-acs-content-sha256", &sha);
        s.body = body;
        s
    }

    pub fn signature(&self) -> (String, String) {
        let mut hs: Vec<(String, String)> = match &self.signed {
            None => self.headers.clone(),
            Some(names) => self
                .headers
                .iter()
                .filter(|(k, _)| names.contains(k))
                .cloned()
                .collect(),
        };
        hs.sort();
        let canonical_headers: String = hs
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let signed: Vec<&str> = hs.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let cr = format!(
            "{}\n/\n{}\n{canonical_headers}\n{signed}\n{}",
            self.method,
            canonical(&self.query),
            hex::encode(Sha256::digest(&self.body))
        );
        let sts = format!(
            "ACS3-HMAC-SHA256\n{}",
            hex::encode(Sha256::digest(cr.as_bytes()))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(sts.as_bytes());
        (signed, hex::encode(mac.finalize().into_bytes()))
    }

    pub fn request(&self) -> Request<Body> {
        let (signed, sig) = self.signature();
        let auth = format!(
            "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={sig}",
            self.key_id
        );
        self.request_with(&self.query, &auth)
    }

    /// A request with the given query and Authorization (e.g. tampered after signing).
    pub fn request_with(&self, query: &[(String, String)], authorization: &str) -> Request<Body> {
        let qs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode_plus(k), encode_plus(v)))
            .collect();
        let uri = if qs.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{}", qs.join("&"))
        };
        let mut b = Request::builder().method(self.method.clone()).uri(uri);
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b.header("authorization", authorization)
            .body(Body::from(self.body.clone()))
            .unwrap()
    }
}

// ---- sending ---------------------------------------------------------------------------

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn code(&self) -> String {
        self.json()["Code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn message(&self) -> String {
        self.json()["Message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Asserts an Alibaba error body with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.body
        );
        let v = self.json();
        assert_eq!(v["HostId"], HOST_ID);
        assert!(v["Message"].is_string());
        assert!(v["Recommend"].is_string());
        assert_request_id(&v);
    }

    #[track_caller]
    pub fn assert_ok(&self) -> serde_json::Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.content_type, "application/json;charset=utf-8");
        let v = self.json();
        assert_request_id(&v);
        v
    }
}

#[track_caller]
pub fn assert_request_id(v: &serde_json::Value) {
    let id = v["RequestId"].as_str().expect("RequestId");
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id, id.to_uppercase());
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    Reply {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Signs (v1, query) and sends one call.
pub async fn call(api: &TestApi, action: &str, params: &[(&str, &str)]) -> Reply {
    send(&api.router, V1::new(action, params).request()).await
}

/// Viewers of any live stream (of `?vhost=`, else live.example.com), unsigned (the server's own policy is
/// tested with the binary).
struct LiveOnDefaultDomain(liverec_hub::Hub);

impl liverec_play::Viewers for LiveOnDefaultDomain {
    fn open<'a>(
        &'a self,
        req: &'a liverec_play::PlayRequest,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<liverec_play::Viewer, liverec_play::PlayError>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            let key = liverec_hub::StreamKey {
                domain: req
                    .vhost
                    .clone()
                    .unwrap_or_else(|| "live.example.com".to_owned()),
                app: req.app.clone(),
                stream: req.stream.clone(),
            };
            liverec_play::Viewer::subscribe(&self.0, &key)
                .ok_or_else(|| liverec_play::PlayError::NotFound(format!("{key} is not live")))
        })
    }
}
