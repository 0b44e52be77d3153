//! Triggered ("lazy") pulls (API.md "Pulled streams"): a play of a stream nobody publishes, on
//! an app with a lazy-pull config, pulls it from the config's origins; later viewers share the
//! pull; it stops when the last viewer has been gone for a grace period.
//!
//! Recording only while played: the pulled stream lives in a hub of its own (the pull hub),
//! which viewers subscribe to and which nothing records. While at least one viewer watches, a
//! relay republishes it into the main hub, where the recorder sees an ordinary publisher. The
//! last viewer leaving ends the relay — to the recorder, the publisher dropped (the recording
//! pauses at once); a viewer arriving starts a new relay — the publisher returned — and
//! DESIGN.md's transition table decides the rest (DelayTime, automatic mode). So
//! RealTimeRecordCommand on a pulled stream nobody plays finds no publisher, as API.md says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use liverec_catalog::Catalog;
use liverec_hub::{Hub, HubConfig, HubEvent, StreamKey, SubscribeOptions};
use liverec_media::CodecConfig;
use liverec_play::{PlayError, Viewer};
use liverec_pull::{Protocol, PumpEnd};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Tags after which a pull without a video keyframe counts as live (an audio-only stream).
const LIVE_WITHOUT_KEYFRAME_AFTER: u32 = 100;

/// Where a pull is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Connecting,
    Live,
    /// It ended or failed; the reason is for viewers still waiting.
    Over(String),
}

struct Pull {
    key: StreamKey,
    status: watch::Receiver<Status>,
    /// Stops the pull.
    cancel: CancellationToken,
    state: Mutex<PullState>,
}

#[derive(Default)]
struct PullState {
    viewers: usize,
    /// Stops the relay into the main hub (there is one while viewers > 0).
    relay: Option<CancellationToken>,
    /// The last relay's task: a new relay waits for it to end its publish, so a viewer coming
    /// right back is not refused as a second publisher of the stream.
    last_relay: Option<tokio::task::JoinHandle<()>>,
    /// Bumped whenever viewers come or go, so a grace timer knows it is stale.
    generation: u64,
}

impl Pull {
    fn state(&self) -> MutexGuard<'_, PullState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct LazyPulls {
    /// The main hub: what the recorder records.
    hub: Hub,
    /// Pulled streams, as viewers see them.
    pull_hub: Hub,
    catalog: Catalog,
    grace: Duration,
    /// Fires at shutdown: every pull stops.
    shutdown: CancellationToken,
    pulls: Mutex<HashMap<StreamKey, Arc<Pull>>>,
}

impl LazyPulls {
    pub fn new(
        hub: Hub,
        catalog: Catalog,
        grace: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        // Nothing records the pull hub: its lifecycle events are let go at once.
        let (lifecycle, mut events) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        Arc::new(Self {
            hub,
            // Counted once, in the main hub, when relayed there.
            pull_hub: Hub::new(
                HubConfig {
                    metrics: false,
                    ..HubConfig::default()
                },
                lifecycle,
            ),
            catalog,
            grace,
            shutdown,
            pulls: Mutex::new(HashMap::new()),
        })
    }

    fn pulls(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<Pull>>> {
        self.pulls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A viewer of the pull of `key` if one runs.
    pub async fn join(self: &Arc<Self>, key: &StreamKey) -> Option<Result<Viewer, PlayError>> {
        let pull = self.pulls().get(key).cloned()?;
        Some(self.viewer_of(pull).await)
    }

    /// Starts pulling `key` if its app has a lazy-pull config, and returns its first viewer;
    /// `None` when there is no config.
    pub async fn start(self: &Arc<Self>, key: &StreamKey) -> Option<Result<Viewer, PlayError>> {
        let config = match self.catalog.lazy_pull_for(&key.domain, &key.app).await {
            Ok(Some(config)) => config,
            Ok(None) => return None,
            Err(err) => {
                return Some(Err(PlayError::Unavailable(format!(
                    "cannot read the lazy-pull configs: {err}"
                ))));
            }
        };
        let protocol = Protocol::parse(&config.pull_protocol).unwrap_or(Protocol::Rtmp);
        let app = if config.pull_app.is_empty() {
            key.app.as_str()
        } else {
            config.pull_app.as_str()
        };
        let urls = liverec_pull::lazy_source_urls(&config.pull_domain, app, &key.stream, protocol);
        let pull = {
            let mut pulls = self.pulls();
            match pulls.get(key) {
                // Another viewer started it meanwhile.
                Some(pull) => pull.clone(),
                None => {
                    let (status_tx, status) = watch::channel(Status::Connecting);
                    let pull = Arc::new(Pull {
                        key: key.clone(),
                        status,
                        cancel: self.shutdown.child_token(),
                        state: Mutex::new(PullState::default()),
                    });
                    pulls.insert(key.clone(), pull.clone());
                    tokio::spawn(self.clone().run(pull.clone(), urls, status_tx));
                    pull
                }
            }
        };
        Some(self.viewer_of(pull).await)
    }

    /// Waits for the pull to go live, then subscribes a viewer to it.
    async fn viewer_of(self: &Arc<Self>, pull: Arc<Pull>) -> Result<Viewer, PlayError> {
        let mut status = pull.status.clone();
        let live = status
            .wait_for(|s| *s != Status::Connecting)
            .await
            .map(|s| s.clone())
            .unwrap_or_else(|_| Status::Over("the pull stopped".to_owned()));
        if let Status::Over(reason) = live {
            return Err(PlayError::Unavailable(reason));
        }
        let viewer = Viewer::subscribe(&self.pull_hub, &pull.key)
            .ok_or_else(|| PlayError::Unavailable("the pulled stream just ended".to_owned()))?;
        self.viewer_joined(&pull);
        Ok(viewer.hold(Box::new(ViewerGuard {
            pulls: self.clone(),
            pull,
        })))
    }

    fn viewer_joined(self: &Arc<Self>, pull: &Arc<Pull>) {
        let mut state = pull.state();
        state.viewers += 1;
        state.generation += 1;
        if state.relay.is_none() {
            let cancel = pull.cancel.child_token();
            state.relay = Some(cancel.clone());
            tracing::info!(stream = %pull.key, "pulled stream played: recording it");
            let previous = state.last_relay.take();
            let (pull_hub, hub, key) = (self.pull_hub.clone(), self.hub.clone(), pull.key.clone());
            state.last_relay = Some(tokio::spawn(async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                relay(pull_hub, hub, key, cancel).await;
            }));
        }
    }

    fn viewer_left(self: &Arc<Self>, pull: &Arc<Pull>) {
        let generation = {
            let mut state = pull.state();
            state.viewers = state.viewers.saturating_sub(1);
            state.generation += 1;
            if state.viewers > 0 {
                return;
            }
            if let Some(relay) = state.relay.take() {
                relay.cancel();
            }
            state.generation
        };
        tracing::info!(stream = %pull.key, grace = ?self.grace,
            "the last viewer of a pulled stream left: recording paused");
        let pull = pull.clone();
        let grace = self.grace;
        // A viewer dropped outside the runtime (at shutdown) has nothing to wait for.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            pull.cancel.cancel();
            return;
        };
        runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            let idle = {
                let state = pull.state();
                state.viewers == 0 && state.generation == generation
            };
            if idle {
                tracing::info!(stream = %pull.key, "pull stopped: no viewer for the grace period");
                pull.cancel.cancel();
            }
        });
    }

    /// Pulls from the first origin that works until the stream ends, fails or is stopped.
    async fn run(
        self: Arc<Self>,
        pull: Arc<Pull>,
        urls: Vec<String>,
        status: watch::Sender<Status>,
    ) {
        let key = pull.key.clone();
        let over = match liverec_pull::connect_first(&urls).await {
            Err(err) => {
                tracing::warn!(stream = %key, %err, "triggered pull failed");
                err.to_string()
            }
            Ok((mut source, url)) => {
                match self.pull_hub.publish(key.clone(), Vec::new(), None).await {
                    Err(err) => err.to_string(),
                    Ok(mut publisher) => {
                        tracing::info!(stream = %key, %url, "triggered pull started");
                        let mut tags = 0u32;
                        let end =
                            liverec_pull::pump(&mut source, &mut publisher, &pull.cancel, |tag| {
                                // Live at the first keyframe, when the sequence headers are
                                // known (a viewer or recording starting earlier would see the
                                // tracks change), or after a while for streams without video.
                                tags = tags.saturating_add(1);
                                if *status.borrow() == Status::Connecting
                                    && (tags >= LIVE_WITHOUT_KEYFRAME_AFTER
                                        || liverec_pull::is_video_keyframe(tag))
                                {
                                    let _ = status.send(Status::Live);
                                }
                            })
                            .await;
                        publisher.end().await;
                        match end {
                            PumpEnd::Ended => "the origin ended the stream".to_owned(),
                            PumpEnd::Cancelled => "the pull stopped".to_owned(),
                            PumpEnd::Failed(err) => {
                                tracing::warn!(stream = %key, %url, %err, "triggered pull broke off");
                                err.to_string()
                            }
                        }
                    }
                }
            }
        };
        self.pulls().retain(|_, p| !Arc::ptr_eq(p, &pull));
        pull.cancel.cancel();
        tracing::info!(stream = %key, reason = %over, "triggered pull over");
        let _ = status.send(Status::Over(over));
    }
}

/// Tells the pull its viewer left.
struct ViewerGuard {
    pulls: Arc<LazyPulls>,
    pull: Arc<Pull>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.pulls.viewer_left(&self.pull);
    }
}

/// Republishes the pulled stream into the main hub until `cancel` fires or the pull ends: the
/// recorder sees a publisher for as long as someone plays.
async fn relay(pull_hub: Hub, hub: Hub, key: StreamKey, cancel: CancellationToken) {
    // Like the recorder: from the GOP cache, and holding the pull up rather than skipping (its
    // frames are the recording's).
    let Some(mut subscription) = pull_hub.subscribe(&key, SubscribeOptions::default()) else {
        return;
    };
    let mut publisher = match hub.publish(key.clone(), Vec::new(), None).await {
        Ok(publisher) => publisher,
        Err(err) => {
            tracing::warn!(stream = %key, %err, "a played pulled stream cannot be recorded");
            return;
        }
    };
    loop {
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            event = subscription.recv() => event,
        };
        match event {
            Some(HubEvent::Tracks(tracks)) => {
                if let Some(video) = tracks.video {
                    publisher.set_config(CodecConfig::Video(video));
                }
                if let Some(audio) = tracks.audio {
                    publisher.set_config(CodecConfig::Audio(audio));
                }
            }
            Some(HubEvent::Frame(delivered)) => {
                let frame = &delivered.frame;
                // The pull hub's timestamps start near 0 and only grow: RTMP's 32-bit clock
                // carries them (wrapping after 49 days, which the normalizer bridges).
                publisher
                    .push(
                        frame.track,
                        frame.dts as u32,
                        frame.cts,
                        frame.keyframe,
                        frame.data.clone(),
                    )
                    .await;
            }
            Some(HubEvent::Gap { .. }) => {}
            Some(HubEvent::PublishEnded) | None => break,
        }
    }
    publisher.end().await;
}
