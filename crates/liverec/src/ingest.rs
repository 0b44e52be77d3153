//! The RTMP session handler: turns an accepted publish into a hub publisher and FLV tag
//! bodies into frames.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use liverec_api::actions::domain_config::{ALIAUTH, auth_keys, stored_args};
use liverec_api::ingest_auth::{self, AuthKeys};
use liverec_catalog::{Catalog, unix_ms};
use liverec_hub::{Hub, HubError, Publisher, StreamKey, validate_domain, validate_name};
use liverec_media::TrackKind;
use liverec_media::flv::FlvError;
use liverec_play::{PlayError, Viewers};
use liverec_rtmp::{
    MediaKind, MediaMessage, PlayRequest, PlaySource, PublishRequest, Refusal, SessionHandler,
};
use tokio::sync::mpsc;

use crate::publishes::PublishNote;

/// How a publish's domain is chosen (DESIGN.md "Domains").
#[derive(Clone, Debug)]
pub struct DomainPolicy {
    pub default_domain: String,
    /// Domains recognised in the tcUrl host.
    pub known: Vec<String>,
    /// Refuse publishes to domains other than `known` and the default one.
    pub strict: bool,
}

/// The domain of a publish as far as the settings tell.
#[derive(Debug, PartialEq, Eq)]
enum DomainOf {
    Decided(String),
    /// The tcUrl host, not a declared domain: it is the domain if the catalog knows it
    /// (outside strict mode), else the default domain is.
    UndeclaredHost(String),
}

impl DomainPolicy {
    /// `vhost=`/`domain=`, else the host the client addressed (tcUrl, `Host`) when it is
    /// declared (or, outside strict mode, known to the catalog), else the default domain
    /// (DESIGN.md "Domains").
    fn domain_of(&self, vhost: Option<&str>, host: Option<&str>) -> DomainOf {
        if let Some(d) = vhost {
            return DomainOf::Decided(d.to_ascii_lowercase());
        }
        match host.map(str::to_ascii_lowercase) {
            Some(h) if self.is_declared(&h) => DomainOf::Decided(h),
            Some(h) if !self.strict && validate_domain(&h).is_ok() => DomainOf::UndeclaredHost(h),
            _ => DomainOf::Decided(self.default_domain.clone()),
        }
    }

    pub(crate) fn is_declared(&self, domain: &str) -> bool {
        domain.eq_ignore_ascii_case(&self.default_domain)
            || self.known.iter().any(|k| k.eq_ignore_ascii_case(domain))
    }

    /// The domain of a publish or play: [`DomainPolicy::domain_of`], with an undeclared host
    /// looked up in the catalog (a domain made through the API or by an earlier publish).
    pub(crate) async fn decide(
        &self,
        catalog: &Catalog,
        vhost: Option<&str>,
        host: Option<&str>,
    ) -> String {
        match self.domain_of(vhost, host) {
            DomainOf::Decided(domain) => domain,
            DomainOf::UndeclaredHost(host) => match catalog.domain_exists(&host).await {
                Ok(true) => host,
                Ok(false) => self.default_domain.clone(),
                Err(err) => {
                    tracing::warn!(%host, %err, "cannot tell whether the host is a known domain: using the default domain");
                    self.default_domain.clone()
                }
            },
        }
    }
}

/// `vhost=` or `domain=` of a publish or play URL.
fn vhost_of(query: &[(String, String)]) -> Option<&str> {
    ["vhost", "domain"].iter().find_map(|name| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    })
}

/// The host of `rtmp://host[:port]/app…`.
pub(crate) fn tc_url_host(tc_url: &str) -> Option<&str> {
    let rest = tc_url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(host.split(':').next().unwrap_or(host))
}

/// Signed publish URLs (docs/API.md "Ingest URL signing"): a domain's `aliauth` function is read
/// from the catalog at each publish, so API changes apply at once. The last keys seen per domain
/// are kept for when the database cannot be read (only domains that have keys: bounded by what
/// the API configured).
///
/// Forbidden streams (ForbidLiveStream) are read the same way; streams last seen forbidden are
/// remembered (at most the block list's size) so a database outage does not let them in.
pub struct PublishAuth {
    pub(crate) catalog: Catalog,
    last: Mutex<HashMap<String, AuthKeys>>,
    forbidden: Mutex<HashMap<StreamKey, i64>>,
}

impl PublishAuth {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            last: Mutex::new(HashMap::new()),
            forbidden: Mutex::new(HashMap::new()),
        }
    }

    /// Until when (Unix ms) the stream is forbidden, if it is now.
    async fn forbidden_until(&self, key: &StreamKey) -> Option<i64> {
        let now = unix_ms(std::time::SystemTime::now());
        match self
            .catalog
            .forbidden_until(&key.domain, &key.app, &key.stream)
            .await
        {
            Ok(until) => {
                let mut known = self.forbidden.lock().unwrap_or_else(|p| p.into_inner());
                match until {
                    Some(until) => known.insert(key.clone(), until),
                    None => known.remove(key),
                };
                until
            }
            Err(err) => {
                let known = self.forbidden.lock().unwrap_or_else(|p| p.into_inner());
                let until = known.get(key).copied().filter(|&until| until > now);
                tracing::warn!(stream = %key, %err, forbidden = until.is_some(),
                    "cannot read the block list: using what was last seen for this stream");
                until
            }
        }
    }

    /// The domain's keys, `None` when its publishes need no signature.
    pub(crate) async fn keys(&self, domain: &str) -> Result<Option<AuthKeys>, String> {
        let row = match self.catalog.domain_config(domain, ALIAUTH).await {
            Ok(row) => row,
            Err(err) => {
                let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
                return match last.get(domain) {
                    Some(keys) => Ok(Some(keys.clone())),
                    // Unknown: it may need signing, so nothing is let through unchecked.
                    None => Err(format!(
                        "cannot read the domain's URL signing settings: {err}"
                    )),
                };
            }
        };
        let keys = match row {
            None => None,
            Some(row) => auth_keys(&stored_args(&row))
                .map_err(|_| "the domain's aliauth settings are invalid".to_owned())?,
        };
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match &keys {
            Some(k) => {
                last.insert(domain.to_owned(), k.clone());
            }
            None => {
                last.remove(domain);
            }
        }
        Ok(keys)
    }
}

/// Longest wait to queue the note of a publish's end.
const NOTE_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A viewer's RTMP play: the tags its hub subscription gives.
pub struct RtmpViewer(liverec_play::Viewer);

impl PlaySource for RtmpViewer {
    async fn next_batch(
        &mut self,
        out: &mut Vec<liverec_mux::flv::live::LiveTag>,
    ) -> Result<(), String> {
        self.0.next_batch(out).await
    }
}

pub struct Ingest {
    hub: Hub,
    viewers: Arc<dyn Viewers>,
    domains: Arc<DomainPolicy>,
    auth: Arc<PublishAuth>,
    /// Publish starts and stops, for the catalog (a bounded queue: a busy database costs a
    /// missed note, never a stalled publish).
    published: mpsc::Sender<PublishNote>,
    publisher: Option<Publisher>,
    /// The publish-history id of the accepted publish.
    publish_id: Option<String>,
    key: Option<StreamKey>,
    /// Unsupported-codec warnings already logged, per track (once per session).
    warned: [bool; 2],
    malformed: u64,
}

impl Ingest {
    pub fn new(
        hub: Hub,
        viewers: Arc<dyn Viewers>,
        domains: Arc<DomainPolicy>,
        auth: Arc<PublishAuth>,
        published: mpsc::Sender<PublishNote>,
    ) -> Self {
        Self {
            hub,
            viewers,
            domains,
            auth,
            published,
            publisher: None,
            publish_id: None,
            key: None,
            warned: [false; 2],
            malformed: 0,
        }
    }

    fn on_tag_error(&mut self, track: TrackKind, err: FlvError) {
        let key = self
            .key
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        if err.is_unsupported_codec() {
            let idx = usize::from(track == TrackKind::Video);
            if !self.warned[idx] {
                self.warned[idx] = true;
                tracing::warn!(stream = %key, %err, "track not recorded: unsupported codec");
            }
        } else {
            self.malformed += 1;
            if self.malformed.is_power_of_two() {
                tracing::warn!(stream = %key, %err, count = self.malformed, "malformed media tag dropped");
            }
        }
    }
}

/// Counts a publish refused by the ingest gate (`liverec_publishes_refused_total{reason}`).
fn refused(reason: &'static str, refusal: Refusal) -> Refusal {
    liverec_rtmp::metrics::publish_refused(reason);
    refusal
}

impl SessionHandler for Ingest {
    type Play = RtmpViewer;

    async fn on_play(&mut self, req: &PlayRequest) -> Result<RtmpViewer, Refusal> {
        let play = liverec_play::PlayRequest {
            vhost: vhost_of(&req.query).map(str::to_owned),
            host: req
                .tc_url
                .as_deref()
                .and_then(tc_url_host)
                .map(str::to_owned),
            app: req.app.clone(),
            stream: req.stream_name.clone(),
            auth_key: req.query_value("auth_key").map(str::to_owned),
            signed_name: req.stream_name.clone(),
            peer: Some(req.peer),
        };
        match self.viewers.open(&play).await {
            Ok(viewer) => Ok(RtmpViewer(viewer)),
            Err(PlayError::NotFound(reason)) => Err(Refusal::new(Refusal::PLAY_NOT_FOUND, reason)),
            Err(PlayError::Forbidden(reason) | PlayError::Unavailable(reason)) => {
                Err(Refusal::new(Refusal::PLAY_FAILED, reason))
            }
        }
    }

    async fn on_publish(&mut self, req: &PublishRequest) -> Result<(), Refusal> {
        let host = req.tc_url.as_deref().and_then(tc_url_host);
        let domain = self
            .domains
            .decide(&self.auth.catalog, vhost_of(&req.query), host)
            .await;
        let bad_name =
            |e: liverec_hub::NameError| refused("bad_name", Refusal::bad_name(e.to_string()));
        validate_domain(&domain).map_err(bad_name)?;
        if self.domains.strict && !self.domains.is_declared(&domain) {
            tracing::warn!(%domain, peer = %req.peer, "publish refused: domain is not declared (strict_domains)");
            return Err(refused(
                "unknown_domain",
                Refusal::new(Refusal::DENIED, format!("domain {domain} is not declared")),
            ));
        }
        validate_name("app name", &req.app).map_err(bad_name)?;
        validate_name("stream name", &req.stream_name).map_err(bad_name)?;
        match self.auth.keys(&domain).await {
            Ok(None) => {}
            Ok(Some(keys)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if let Err(refusal) = ingest_auth::check(
                    &req.app,
                    &req.stream_name,
                    req.query_value("auth_key"),
                    &keys,
                    now,
                ) {
                    tracing::warn!(%domain, app = %req.app, stream = %req.stream_name, peer = %req.peer,
                        reason = %refusal, "publish refused: URL signing");
                    return Err(refused(
                        "url_signature",
                        Refusal::new(Refusal::REJECTED, refusal.to_string()),
                    ));
                }
            }
            Err(reason) => {
                tracing::warn!(%domain, peer = %req.peer, %reason, "publish refused: URL signing cannot be checked now");
                return Err(refused(
                    "url_signature_unavailable",
                    Refusal::new(Refusal::FAILED, reason),
                ));
            }
        }
        let key = StreamKey {
            domain,
            app: req.app.clone(),
            stream: req.stream_name.clone(),
        };
        if let Some(until) = self.auth.forbidden_until(&key).await {
            let until = liverec_api::actions::format_unix_ms(until);
            tracing::warn!(stream = %key, peer = %req.peer, %until, "publish refused: the stream is forbidden");
            return Err(refused(
                "forbidden",
                Refusal::new(
                    Refusal::REJECTED,
                    format!("stream {key} is forbidden until {until}"),
                ),
            ));
        }
        match self
            .hub
            .publish(key.clone(), req.query.clone(), Some(req.peer))
            .await
        {
            Ok(publisher) => {
                tracing::info!(stream = %key, peer = %req.peer, "publish started");
                metrics::counter!(liverec_rtmp::metrics::PUBLISHES).increment(1);
                let publish_id = crate::publishes::new_publish_id();
                let note = PublishNote::Started {
                    key: key.clone(),
                    publish_id: publish_id.clone(),
                    client_addr: req.peer.to_string(),
                    at_ms: unix_ms(std::time::SystemTime::now()),
                };
                if self.published.try_send(note).is_err() {
                    tracing::debug!(stream = %key, "publish not noted in the catalog (queue full)");
                }
                self.publish_id = Some(publish_id);
                self.publisher = Some(publisher);
                self.key = Some(key);
                Ok(())
            }
            Err(HubError::AlreadyPublishing(key)) => {
                tracing::warn!(stream = %key, peer = %req.peer, "publish refused: stream is already being published");
                Err(refused(
                    "already_publishing",
                    Refusal::bad_name(format!("stream {key} is already being published")),
                ))
            }
            Err(HubError::Closed) => Err(refused(
                "shutting_down",
                Refusal::new(Refusal::FAILED, "server is shutting down"),
            )),
        }
    }

    async fn on_media(&mut self, msg: MediaMessage) {
        let Some(publisher) = self.publisher.as_mut() else {
            return;
        };
        match msg.kind {
            MediaKind::Video | MediaKind::Audio => {
                let track = if msg.kind == MediaKind::Video {
                    TrackKind::Video
                } else {
                    TrackKind::Audio
                };
                if let Err(err) = publisher.push_tag(track, msg.timestamp, &msg.body).await {
                    self.on_tag_error(track, err);
                }
            }
            // Sizes and codecs come from the sequence headers; onMetaData gives only the
            // video bitrate the on-demand question reports.
            MediaKind::Data => {
                if let Some(kbps) = metadata_video_kbps(&msg.body) {
                    publisher
                        .info()
                        .video_kbps
                        .store(kbps, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    fn publish_stopper(&self) -> Option<tokio_util::sync::CancellationToken> {
        self.publisher.as_ref().map(|p| p.info().cancel.clone())
    }

    fn stop_status(&self) -> Refusal {
        let reason = self
            .publisher
            .as_ref()
            .and_then(|p| p.info().stop_reason.get().cloned())
            .unwrap_or_else(|| "the server stopped this publish".to_owned());
        Refusal::new(Refusal::REJECTED, reason)
    }

    async fn on_unpublish(&mut self) {
        if let Some(publish_id) = self.publish_id.take() {
            let note = PublishNote::Stopped {
                publish_id,
                at_ms: unix_ms(std::time::SystemTime::now()),
            };
            // The end of a publish is worth a short wait (its row would stay open until the
            // next start); never longer.
            if tokio::time::timeout(NOTE_STOP_TIMEOUT, self.published.send(note))
                .await
                .map_or(true, |sent| sent.is_err())
            {
                tracing::debug!("end of publish not noted in the catalog (queue full)");
            }
        }
        if let Some(publisher) = self.publisher.take() {
            let discontinuities = publisher.discontinuities();
            tracing::info!(stream = %publisher.info().key, discontinuities, malformed_tags = self.malformed, "publish ended");
            publisher.end().await;
        }
    }
}

/// `videodatarate` (kbit/s) of an `onMetaData` script body, rounded; `None` for other data
/// messages, a missing or absurd value, or a body that does not decode.
fn metadata_video_kbps(body: &[u8]) -> Option<u32> {
    let values = liverec_rtmp::amf0::decode_all(body).ok()?;
    let mut values = values.iter();
    if values.next()?.as_str()? != "onMetaData" {
        return None;
    }
    let rate = values.next()?.get("videodatarate")?.as_number()?;
    (rate.is_finite() && rate >= 0.0 && rate < f64::from(u32::MAX)).then(|| rate.round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(values: &[liverec_rtmp::amf0::Value]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        liverec_rtmp::amf0::encode_all(values, &mut out);
        out.to_vec()
    }

    #[test]
    fn video_bitrate_comes_from_on_metadata() {
        use liverec_rtmp::amf0::Value;
        let meta = |rate: Value| {
            script(&[
                Value::String("onMetaData".into()),
                Value::EcmaArray(vec![
                    ("width".into(), Value::Number(1280.0)),
                    ("videodatarate".into(), rate),
                ]),
            ])
        };
        assert_eq!(
            metadata_video_kbps(&meta(Value::Number(1953.125))),
            Some(1953)
        );
        assert_eq!(metadata_video_kbps(&meta(Value::Number(-1.0))), None);
        assert_eq!(metadata_video_kbps(&meta(Value::Number(f64::NAN))), None);
        assert_eq!(
            metadata_video_kbps(&meta(Value::String("2000".into()))),
            None
        );
        let other = script(&[
            Value::String("onTextData".into()),
            Value::EcmaArray(vec![("videodatarate".into(), Value::Number(5.0))]),
        ]);
        assert_eq!(metadata_video_kbps(&other), None);
        assert_eq!(metadata_video_kbps(&[0x02, 0x00]), None);
        assert_eq!(metadata_video_kbps(&[]), None);
    }

    #[test]
    fn the_domain_follows_design_rule() {
        let policy = |strict| DomainPolicy {
            default_domain: "live.liverec.local".into(),
            known: vec!["Declared.example".into()],
            strict,
        };
        let req = |tc_url: &str, query: &[(&str, &str)]| {
            let query: Vec<(String, String)> = query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let vhost = vhost_of(&query).map(str::to_owned);
            (vhost, tc_url_host(tc_url).map(str::to_owned))
        };
        let domain_of = |policy: &DomainPolicy, (vhost, host): (Option<String>, Option<String>)| {
            policy.domain_of(vhost.as_deref(), host.as_deref())
        };
        let open = policy(false);
        assert_eq!(
            domain_of(&open, req("rtmp://h/live", &[("vhost", "V.example")])),
            DomainOf::Decided("v.example".into())
        );
        assert_eq!(
            domain_of(&open, req("rtmp://declared.EXAMPLE:1935/live", &[])),
            DomainOf::Decided("declared.example".into())
        );
        assert_eq!(
            domain_of(&open, req("rtmp://api-made.example/live", &[])),
            DomainOf::UndeclaredHost("api-made.example".into())
        );
        assert_eq!(
            domain_of(&open, req("rtmp://127.0.0.1:1935/live", &[])),
            DomainOf::UndeclaredHost("127.0.0.1".into()),
            "an address the catalog does not know falls back to the default domain"
        );
        // Strict: only declared domains, never the catalog's.
        assert_eq!(
            domain_of(&policy(true), req("rtmp://api-made.example/live", &[])),
            DomainOf::Decided("live.liverec.local".into())
        );
        assert!(policy(true).is_declared("LIVE.liverec.local"));
        assert!(!policy(true).is_declared("api-made.example"));
    }

    #[test]
    fn tc_url_host_is_extracted() {
        assert_eq!(
            tc_url_host("rtmp://live.example.com:1935/app"),
            Some("live.example.com")
        );
        assert_eq!(tc_url_host("rtmp://u:p@h/app?x=1"), Some("h"));
        assert_eq!(tc_url_host("nonsense"), None);
    }
}
