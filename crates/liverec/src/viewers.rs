//! Who may play what: the server's [`Viewers`], shared by RTMP play and HTTP-FLV.
//!
//! The domain is decided as for a publish (DESIGN.md "Domains"); a domain with `aliauth` needs
//! a signed `auth_key` whose hashed path is the URL path (docs/API.md "Pulled streams": play
//! URLs); then the viewer joins a triggered pull of the stream, or the live stream, or starts a
//! triggered pull if the app has a config ([`crate::lazy`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use liverec_api::ingest_auth;
use liverec_hub::{Hub, StreamKey, validate_domain, validate_name};
use liverec_play::{PlayError, PlayRequest, Viewer, Viewers};

use crate::ingest::{DomainPolicy, PublishAuth};
use crate::lazy::LazyPulls;

pub struct PlayGate {
    hub: Hub,
    domains: Arc<DomainPolicy>,
    auth: Arc<PublishAuth>,
    lazy: Arc<LazyPulls>,
}

impl PlayGate {
    pub fn new(
        hub: Hub,
        domains: Arc<DomainPolicy>,
        auth: Arc<PublishAuth>,
        lazy: Arc<LazyPulls>,
    ) -> Self {
        Self {
            hub,
            domains,
            auth,
            lazy,
        }
    }

    async fn open_viewer(&self, req: &PlayRequest) -> Result<Viewer, PlayError> {
        let domain = self
            .domains
            .decide(
                &self.auth.catalog,
                req.vhost.as_deref(),
                req.host.as_deref(),
            )
            .await;
        let not_found = |e: liverec_hub::NameError| PlayError::NotFound(e.to_string());
        validate_domain(&domain).map_err(not_found)?;
        if self.domains.strict && !self.domains.is_declared(&domain) {
            return Err(PlayError::Forbidden(format!(
                "domain {domain} is not declared"
            )));
        }
        validate_name("app name", &req.app).map_err(not_found)?;
        validate_name("stream name", &req.stream).map_err(not_found)?;
        let key = StreamKey {
            domain,
            app: req.app.clone(),
            stream: req.stream.clone(),
        };
        match self.auth.keys(&key.domain).await {
            Ok(None) => {}
            Ok(Some(keys)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if let Err(refusal) = ingest_auth::check(
                    &req.app,
                    &req.signed_name,
                    req.auth_key.as_deref(),
                    &keys,
                    now,
                ) {
                    tracing::warn!(stream = %key, peer = ?req.peer, reason = %refusal,
                        "play refused: URL signing");
                    return Err(PlayError::Forbidden(refusal.to_string()));
                }
            }
            Err(reason) => return Err(PlayError::Unavailable(reason)),
        }
        // A running pull first: while it is played, its relay is live in the main hub too,
        // and a viewer of the relay would lose the stream when the others leave.
        if let Some(viewer) = self.lazy.join(&key).await {
            return viewer;
        }
        if let Some(viewer) = Viewer::subscribe(&self.hub, &key) {
            return Ok(viewer);
        }
        match self.lazy.start(&key).await {
            Some(viewer) => viewer,
            None => Err(PlayError::NotFound(format!("stream {key} is not live"))),
        }
    }
}

impl Viewers for PlayGate {
    fn open<'a>(
        &'a self,
        req: &'a PlayRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Viewer, PlayError>> + Send + 'a>> {
        Box::pin(async move {
            let opened = self.open_viewer(req).await;
            if let Err(err) = &opened {
                liverec_rtmp::metrics::play_refused(match err {
                    PlayError::NotFound(_) => "not_found",
                    PlayError::Forbidden(_) => "forbidden",
                    PlayError::Unavailable(_) => "unavailable",
                });
            }
            opened
        })
    }
}
