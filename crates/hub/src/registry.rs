//! The registry of live streams, publishers and their fan-out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use liverec_media::flv::{AudioTag, FlvError, VideoTag, parse_audio_tag, parse_video_tag};
use liverec_media::timestamp::Normalizer;
use liverec_media::{CodecConfig, Frame, TrackKind, Tracks};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::gop::{DEFAULT_GOP_CACHE_BYTES, GopCache};
use crate::key::StreamKey;
use crate::subscription::{HubEvent, SlowPolicy, SubscribeOptions, SubscriberShared, Subscription};

/// Longest wait for the recorder to handle a publish announcement before frames flow anyway.
pub const PUBLISH_READY_TIMEOUT: Duration = Duration::from_secs(2);

/// DESIGN.md: a first publisher silent this long is gone, so a reconnecting encoder is accepted.
pub const DEFAULT_STALE_PUBLISHER_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub gop_cache_bytes: usize,
    pub stale_publisher_after: Duration,
    /// Whether this hub's streams count in the process's metrics (`liverec_ingest_bytes_total`,
    /// dropped frames). Off for a hub whose frames are relayed into another one (lazy pulls),
    /// so nothing is counted twice.
    pub metrics: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            gop_cache_bytes: DEFAULT_GOP_CACHE_BYTES,
            stale_publisher_after: DEFAULT_STALE_PUBLISHER_AFTER,
            metrics: true,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HubError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(StreamKey),
    #[error("the hub is shutting down")]
    Closed,
}

/// One publish session of a stream.
#[derive(Debug)]
pub struct PublishInfo {
    pub key: StreamKey,
    /// Unique per publish session, hub-wide.
    pub session: u64,
    /// Query parameters of the publish URL (`vhost`, `callback_*`, …).
    pub query: Vec<(String, String)>,
    pub peer: Option<SocketAddr>,
    pub started_at: SystemTime,
    /// Cancelled when the publish must stop: the hub evicted it (a newer publisher replaced a
    /// silent one) or the stream was forbidden ([`Hub::stop_publisher`]); the reason is in
    /// `stop_reason`.
    pub cancel: CancellationToken,
    /// Why `cancel` fired (set once, before it fires).
    pub stop_reason: std::sync::OnceLock<String>,
    /// The runtime the publisher runs on. The stream's recorder is started there too, so
    /// handing it a frame wakes no other thread.
    pub runtime: Option<tokio::runtime::Handle>,
    /// `videodatarate` of the publisher's onMetaData, kbit/s (0 until known): the on-demand
    /// question's `vbitrate`.
    pub video_kbps: AtomicU32,
    /// Media payload bytes received so far (the dashboard's bitrate).
    pub bytes_in: AtomicU64,
}

impl PublishInfo {
    /// Asks the publisher's connection to end the publish; the first reason given stays.
    pub fn stop(&self, reason: &str) {
        let _ = self.stop_reason.set(reason.to_owned());
        self.cancel.cancel();
    }
}

/// Publish starts and ends, for the recorder's supervisor.
#[derive(Debug)]
pub enum Lifecycle {
    /// A publish started. Its first frame waits until `ready` is dropped (or a timeout), so a
    /// recorder that subscribes when it handles this event misses nothing, even from a
    /// publisher that sends faster than real time.
    Published {
        info: Arc<PublishInfo>,
        ready: PublishReady,
    },
    Unpublished {
        key: StreamKey,
        session: u64,
    },
}

/// Dropping it tells the publisher that the publish announcement was handled.
#[derive(Debug)]
pub struct PublishReady(#[allow(dead_code)] oneshot::Sender<()>);

pub(crate) struct StreamShared {
    pub(crate) info: Arc<PublishInfo>,
    state: Mutex<StreamState>,
    /// `liverec_ingest_bytes_total` of this stream (a no-op counter when the hub is not counted).
    bytes_in: metrics::Counter,
    counted: bool,
}

struct StreamState {
    tracks: Tracks,
    gop: GopCache,
    /// Copy-on-write, so the per-frame path clones one `Arc` rather than a list.
    subscribers: Arc<[Arc<SubscriberShared>]>,
    ended: bool,
    last_activity: Instant,
}

impl StreamShared {
    fn state(&self) -> MutexGuard<'_, StreamState> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters more than losing the stream, so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn remove_subscriber(&self, id: u64) {
        let mut state = self.state();
        if state.subscribers.iter().any(|s| s.id == id) {
            state.subscribers = state
                .subscribers
                .iter()
                .filter(|s| s.id != id)
                .cloned()
                .collect();
        }
    }

    /// Ends the session once: subscribers get `PublishEnded` and are let go.
    fn end(&self) -> bool {
        let mut state = self.state();
        if state.ended {
            return false;
        }
        state.ended = true;
        for sub in state.subscribers.iter() {
            sub.send_control(HubEvent::PublishEnded);
        }
        state.subscribers = Arc::new([]);
        state.gop.clear();
        true
    }
}

struct HubInner {
    config: HubConfig,
    streams: Mutex<HashMap<StreamKey, Arc<StreamShared>>>,
    lifecycle: mpsc::Sender<Lifecycle>,
    next_seq: AtomicU64,
    next_id: AtomicU64,
}

/// The stream registry. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// `lifecycle` receives publish starts and ends; it should be drained promptly.
    pub fn new(config: HubConfig, lifecycle: mpsc::Sender<Lifecycle>) -> Self {
        Self {
            inner: Arc::new(HubInner {
                config,
                streams: Mutex::new(HashMap::new()),
                lifecycle,
                next_seq: AtomicU64::new(1),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<StreamShared>>> {
        self.inner
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a publish session. A second publisher of a live stream is refused unless the
    /// first has been silent for `stale_publisher_after` (then the first is evicted).
    pub async fn publish(
        &self,
        key: StreamKey,
        query: Vec<(String, String)>,
        peer: Option<SocketAddr>,
    ) -> Result<Publisher, HubError> {
        let (stream, evicted) = {
            let mut streams = self.streams();
            let mut evicted = None;
            if let Some(existing) = streams.get(&key) {
                let silent_for = existing.state().last_activity.elapsed();
                if silent_for < self.inner.config.stale_publisher_after {
                    return Err(HubError::AlreadyPublishing(key));
                }
                existing
                    .info
                    .stop("a newer publisher replaced this silent one");
                existing.end();
                evicted = Some(existing.info.session);
            }
            let info = Arc::new(PublishInfo {
                key: key.clone(),
                session: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
                query,
                peer,
                started_at: SystemTime::now(),
                cancel: CancellationToken::new(),
                stop_reason: std::sync::OnceLock::new(),
                runtime: tokio::runtime::Handle::try_current().ok(),
                video_kbps: AtomicU32::new(0),
                bytes_in: AtomicU64::new(0),
            });
            let counted = self.inner.config.metrics;
            let bytes_in = if counted {
                metrics::counter!(crate::metrics::INGEST_BYTES, key.labels().to_vec())
            } else {
                metrics::Counter::noop()
            };
            let stream = Arc::new(StreamShared {
                bytes_in,
                counted,
                info,
                state: Mutex::new(StreamState {
                    tracks: Tracks::default(),
                    gop: GopCache::new(self.inner.config.gop_cache_bytes),
                    subscribers: Arc::new([]),
                    ended: false,
                    last_activity: Instant::now(),
                }),
            });
            streams.insert(key.clone(), stream.clone());
            (stream, evicted)
        };
        if let Some(session) = evicted {
            tracing::warn!(stream = %key, session, "evicted a silent publisher for a new one");
            self.announce(Lifecycle::Unpublished {
                key: key.clone(),
                session,
            })
            .await?;
        }
        let (ready, handled) = oneshot::channel();
        let info = stream.info.clone();
        self.announce(Lifecycle::Published {
            info,
            ready: PublishReady(ready),
        })
        .await?;
        // Sent or dropped, either way the announcement was handled.
        let _ = tokio::time::timeout(PUBLISH_READY_TIMEOUT, handled).await;
        Ok(Publisher {
            hub: self.clone(),
            stream,
            normalizer: Normalizer::new(),
            ended: false,
        })
    }

    /// Stops the live publish of `key`, if there is one: its connection ends the publish with
    /// `reason` (the recorder sees an ordinary end of publish). Returns whether one was live.
    pub fn stop_publisher(&self, key: &StreamKey, reason: &str) -> bool {
        let stream = self.streams().get(key).cloned();
        match stream {
            Some(stream) if !stream.state().ended => {
                stream.info.stop(reason);
                true
            }
            _ => false,
        }
    }

    async fn announce(&self, event: Lifecycle) -> Result<(), HubError> {
        self.inner
            .lifecycle
            .send(event)
            .await
            .map_err(|_| HubError::Closed)
    }

    /// Subscribes to the live session of `key`, if there is one. With `from_gop`, the GOP
    /// cache comes first; either way the current tracks come first of all.
    pub fn subscribe(&self, key: &StreamKey, opts: SubscribeOptions) -> Option<Subscription> {
        let stream = self.streams().get(key).cloned()?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (shared, rx) = SubscriberShared::new(id, &opts, stream.counted);
        {
            let mut state = stream.state();
            if state.ended {
                return None;
            }
            shared.send_control(HubEvent::Tracks(state.tracks.clone()));
            if opts.from_gop {
                for (seq, frame, arrived) in state.gop.iter() {
                    shared.send_cached(*seq, frame.clone(), *arrived);
                }
            }
            let mut subs = state.subscribers.to_vec();
            subs.push(shared.clone());
            state.subscribers = subs.into();
        }
        Some(Subscription { rx, shared, stream })
    }

    /// The live publish sessions and their tracks.
    pub fn online(&self) -> Vec<(Arc<PublishInfo>, Tracks)> {
        let streams: Vec<_> = self.streams().values().cloned().collect();
        streams
            .into_iter()
            .map(|s| {
                let tracks = s.state().tracks.clone();
                (s.info.clone(), tracks)
            })
            .collect()
    }

    /// What the hub holds now, for metrics and the dashboard: walks every stream (cheap; once
    /// per scrape, never per frame).
    pub fn stats(&self) -> HubStats {
        let streams: Vec<_> = self.streams().values().cloned().collect();
        let mut stats = HubStats {
            streams: streams.len() as u64,
            ..HubStats::default()
        };
        for stream in streams {
            let state = stream.state();
            for sub in state.subscribers.iter() {
                let queued = sub.queued_bytes();
                match sub.policy() {
                    SlowPolicy::Skip => {
                        stats.viewers += 1;
                        stats.viewer_queue_bytes += queued;
                    }
                    SlowPolicy::Block { .. } => {
                        stats.recorder_queue_bytes += queued;
                        stats.recorder_queue_bytes_max = stats.recorder_queue_bytes_max.max(queued);
                    }
                }
            }
        }
        stats
    }

    /// Viewers (subscribers that skip when slow: players and relays) of each live stream.
    pub fn viewers(&self) -> HashMap<StreamKey, u64> {
        let streams: Vec<_> = self.streams().values().cloned().collect();
        streams
            .into_iter()
            .map(|s| {
                let viewers = s
                    .state()
                    .subscribers
                    .iter()
                    .filter(|sub| sub.policy() == SlowPolicy::Skip)
                    .count() as u64;
                (s.info.key.clone(), viewers)
            })
            .collect()
    }

    pub fn is_publishing(&self, key: &StreamKey) -> bool {
        self.streams().contains_key(key)
    }

    fn remove(&self, stream: &Arc<StreamShared>) {
        let mut streams = self.streams();
        if streams
            .get(&stream.info.key)
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            streams.remove(&stream.info.key);
        }
    }
}

/// A snapshot of the hub ([`Hub::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Live publish sessions.
    pub streams: u64,
    /// Subscribers that skip when slow (viewers, relays of lazy pulls).
    pub viewers: u64,
    /// Bytes waiting in recorders' queues (payload plus per-frame overhead), all streams.
    pub recorder_queue_bytes: u64,
    /// The fullest recorder queue.
    pub recorder_queue_bytes_max: u64,
    /// Bytes waiting in viewers' queues, all streams.
    pub viewer_queue_bytes: u64,
}

/// The publishing side of one session. Ending it (or dropping it) ends the session.
pub struct Publisher {
    hub: Hub,
    stream: Arc<StreamShared>,
    normalizer: Normalizer,
    ended: bool,
}

impl Publisher {
    pub fn info(&self) -> &Arc<PublishInfo> {
        &self.stream.info
    }

    pub fn tracks(&self) -> Tracks {
        self.stream.state().tracks.clone()
    }

    /// Sets a track's codec configuration; subscribers hear of it only if it changed.
    pub fn set_config(&mut self, config: CodecConfig) {
        let mut state = self.stream.state();
        let changed = match &config {
            CodecConfig::Video(v) => {
                let changed = state.tracks.video.as_ref() != Some(v);
                if changed {
                    state.tracks.video = Some(v.clone());
                    // Cached frames need the old configuration.
                    state.gop.clear();
                }
                changed
            }
            CodecConfig::Audio(a) => {
                let changed = state.tracks.audio.as_ref() != Some(a);
                if changed {
                    state.tracks.audio = Some(a.clone());
                }
                changed
            }
        };
        if changed {
            tracing::debug!(stream = %self.stream.info.key, ?config, "codec configuration set");
            for sub in state.subscribers.iter() {
                sub.send_control(HubEvent::Tracks(state.tracks.clone()));
            }
        }
    }

    /// Pushes one frame with its raw RTMP timestamp. Returns `false` (and drops the frame) if
    /// its track has no configuration yet. May wait while the recorder catches up.
    pub async fn push(
        &mut self,
        track: TrackKind,
        raw_timestamp: u32,
        cts: i32,
        keyframe: bool,
        data: Bytes,
    ) -> bool {
        let dts = self.normalizer.normalize(track, raw_timestamp);
        self.stream.bytes_in.increment(data.len() as u64);
        self.stream
            .info
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let frame = Frame {
            track,
            dts,
            cts,
            keyframe,
            data,
        };
        let seq = self.hub.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let (subscribers, starts_gop, arrived) = {
            let mut state = self.stream.state();
            let has_video = state.tracks.video.is_some();
            let configured = match track {
                TrackKind::Video => has_video,
                TrackKind::Audio => state.tracks.audio.is_some(),
            };
            if !configured || state.ended {
                return false;
            }
            let now = Instant::now();
            state.last_activity = now;
            state.gop.push(seq, &frame, has_video, now);
            let starts_gop = keyframe && (track == TrackKind::Video || !has_video);
            (state.subscribers.clone(), starts_gop, now)
        };
        for sub in subscribers.iter() {
            sub.deliver(seq, &frame, starts_gop, arrived).await;
        }
        true
    }

    /// Hands on one FLV audio or video tag body (legacy or Enhanced RTMP), as an RTMP
    /// publish or a pull receives them: a sequence header sets the track's configuration, a
    /// coded frame is pushed, anything else is ignored. `Err` for a body that does not parse
    /// (an unsupported codec, a malformed header): the caller decides how loudly to say so.
    pub async fn push_tag(
        &mut self,
        track: TrackKind,
        raw_timestamp: u32,
        body: &Bytes,
    ) -> Result<(), FlvError> {
        match track {
            TrackKind::Video => match parse_video_tag(body)? {
                VideoTag::SequenceHeader(config) => {
                    self.set_config(CodecConfig::Video(Arc::new(config)));
                }
                VideoTag::Frame {
                    keyframe,
                    cts,
                    data,
                    ..
                } => {
                    self.push(TrackKind::Video, raw_timestamp, cts, keyframe, data)
                        .await;
                }
                VideoTag::EndOfSequence { .. } | VideoTag::Ignored(_) => {}
            },
            TrackKind::Audio => match parse_audio_tag(body)? {
                AudioTag::SequenceHeader(config) => {
                    self.set_config(CodecConfig::Audio(Arc::new(config)));
                }
                AudioTag::Frame { data, .. } => {
                    self.push(TrackKind::Audio, raw_timestamp, 0, true, data)
                        .await;
                }
                AudioTag::EndOfSequence { .. } | AudioTag::Ignored(_) => {}
            },
        }
        Ok(())
    }

    /// Timestamp discontinuities bridged so far in this session.
    pub fn discontinuities(&self) -> u64 {
        self.normalizer.discontinuities()
    }

    /// Ends the session and announces it.
    pub async fn end(mut self) {
        if let Some(event) = self.finish() {
            let _ = self.hub.announce(event).await;
        }
    }

    fn finish(&mut self) -> Option<Lifecycle> {
        if self.ended {
            return None;
        }
        self.ended = true;
        self.hub.remove(&self.stream);
        // An evicted session was already ended and announced by the hub.
        self.stream.end().then(|| Lifecycle::Unpublished {
            key: self.stream.info.key.clone(),
            session: self.stream.info.session,
        })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let Some(event) = self.finish() else { return };
        if let Err(
            mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event),
        ) = self.hub.inner.lifecycle.try_send(event)
        {
            // Never lose an end of session: hand it to the runtime if the channel is full.
            tracing::debug!("lifecycle channel full; announcing unpublish later");
            let hub = self.hub.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = hub.announce(event).await;
                });
            }
        }
    }
}
