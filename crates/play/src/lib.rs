//! Live viewers: what RTMP play and HTTP-FLV serve from the hub.
//!
//! A [`Viewer`] is a hub subscription that starts at the GOP cache's keyframe (the picture
//! appears at once) and skips ahead to the next keyframe when it falls behind
//! ([`SlowPolicy::Skip`]): a slow viewer never holds up the publisher, the recorder or other
//! viewers, and its queue is bounded in bytes and frames. Its events become FLV tags
//! ([`liverec_mux::flv::live`]) whose payloads are the frames' own bytes.
//!
//! [`Viewers`] is the one door both play paths go through (domain, URL signing, pulling a
//! stream nobody publishes), so RTMP and HTTP-FLV cannot drift apart.

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use liverec_hub::{Hub, HubEvent, SlowPolicy, StreamKey, SubscribeOptions, Subscription};
use liverec_mux::flv::live::{LiveTag, LiveTags, write_file_header};

/// Bytes (payload plus per-frame overhead) a viewer's queue holds before it skips ahead: a
/// couple of seconds of a high-bitrate stream.
pub const VIEWER_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Events taken into one batch at most (one socket write each batch).
const MAX_BATCH_EVENTS: usize = 64;

/// Why a play was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlayError {
    /// No such live stream, and nothing to pull it from (RTMP `NetStream.Play.StreamNotFound`,
    /// HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A missing, malformed, expired or wrong `auth_key`, an undeclared domain (RTMP
    /// `NetStream.Play.Failed`, HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The stream's origin or the server cannot serve it now (RTMP `NetStream.Play.Failed`,
    /// HTTP 502).
    #[error("{0}")]
    Unavailable(String),
}

/// A play request, from either protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayRequest {
    /// `?vhost=` (or `domain=`) if given.
    pub vhost: Option<String>,
    /// The host the client addressed (RTMP tcUrl host, HTTP `Host`), without a port.
    pub host: Option<String>,
    pub app: String,
    pub stream: String,
    /// The `auth_key` query parameter, if any.
    pub auth_key: Option<String>,
    /// The name the URL signature covers after the app: the stream for RTMP, `{stream}.flv` for
    /// HTTP-FLV (Alibaba signs the URL path).
    pub signed_name: String,
    /// The client, for logs.
    pub peer: Option<std::net::SocketAddr>,
}

/// Opens viewers: the policy of who may play what, implemented by the server.
pub trait Viewers: Send + Sync {
    fn open<'a>(
        &'a self,
        req: &'a PlayRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Viewer, PlayError>> + Send + 'a>>;
}

/// One viewer of one live stream.
pub struct Viewer {
    key: StreamKey,
    subscription: Subscription,
    tags: LiveTags,
    /// The stream ended after the last batch was taken: the next call says so.
    ended: Option<String>,
    /// Frames that could not become tags (a frame before its track's configuration).
    unusable: u64,
    /// Dropped with the viewer: how whoever opened it learns it left (a pull counts its
    /// viewers so).
    _guard: Option<Box<dyn Send + Sync>>,
    _counted: Counted,
}

/// Gauge: viewers connected, RTMP and HTTP-FLV, of published and pulled streams.
pub const VIEWERS_METRIC: &str = "liverec_viewers";

pub fn describe_metrics() {
    metrics::describe_gauge!(
        VIEWERS_METRIC,
        "Viewers connected (RTMP play and HTTP-FLV), of published and pulled streams."
    );
}

/// One viewer in [`VIEWERS_METRIC`] while it lives.
struct Counted;

impl Counted {
    fn new() -> Self {
        metrics::gauge!(VIEWERS_METRIC).increment(1.0);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!(VIEWERS_METRIC).decrement(1.0);
    }
}

impl Viewer {
    /// Subscribes to the live stream `key`, if it is live.
    pub fn subscribe(hub: &Hub, key: &StreamKey) -> Option<Self> {
        let subscription = hub.subscribe(key, Self::options())?;
        Some(Self {
            key: key.clone(),
            subscription,
            tags: LiveTags::new(),
            ended: None,
            unusable: 0,
            _guard: None,
            _counted: Counted::new(),
        })
    }

    /// Keeps `guard` until the viewer is dropped.
    pub fn hold(mut self, guard: Box<dyn Send + Sync>) -> Self {
        self._guard = Some(guard);
        self
    }

    /// How viewers subscribe: from the cached keyframe, skipping when behind.
    pub fn options() -> SubscribeOptions {
        SubscribeOptions {
            from_gop: true,
            queue_bytes: VIEWER_QUEUE_BYTES,
            policy: SlowPolicy::Skip,
        }
    }

    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// Frames this viewer skipped by falling behind.
    pub fn skipped(&self) -> u64 {
        self.subscription.dropped_total()
    }

    /// Waits for the stream's next events and appends their tags to `out` (what is already
    /// queued too, up to a batch). `Err` with a reason for the player once the stream ended.
    ///
    /// Cancel-safe: it awaits only before taking the first event.
    pub async fn next_batch(&mut self, out: &mut Vec<LiveTag>) -> Result<(), String> {
        if let Some(reason) = self.ended.take() {
            return Err(reason);
        }
        let first = self.subscription.recv().await;
        self.take(first, out);
        for _ in 1..MAX_BATCH_EVENTS {
            if self.ended.is_some() {
                break;
            }
            match self.subscription.try_recv() {
                Some(event) => self.take(Some(event), out),
                None => break,
            }
        }
        if out.is_empty()
            && let Some(reason) = self.ended.take()
        {
            return Err(reason);
        }
        Ok(())
    }

    fn take(&mut self, event: Option<HubEvent>, out: &mut Vec<LiveTag>) {
        match event {
            Some(HubEvent::Tracks(tracks)) => self.tags.tracks(&tracks, out),
            Some(HubEvent::Frame(delivered)) => match self.tags.frame(&delivered.frame) {
                Ok(tag) => out.push(tag),
                Err(err) => {
                    self.unusable += 1;
                    if self.unusable.is_power_of_two() {
                        tracing::debug!(stream = %self.key, %err, count = self.unusable,
                            "a frame a viewer cannot be sent was skipped");
                    }
                }
            },
            // The next frame starts a GOP: nothing to do but go on.
            Some(HubEvent::Gap { .. }) => {}
            Some(HubEvent::PublishEnded) | None => {
                self.ended = Some("The stream ended.".to_owned());
            }
        }
    }

    /// The stream as an HTTP-FLV body: the FLV header, then the tags as they come. Ends when
    /// the stream ends.
    pub fn into_flv(self) -> FlvBody {
        FlvBody {
            viewer: self,
            header_sent: false,
            tags: Vec::new(),
            done: false,
        }
    }
}

/// A viewer's FLV bytes, batch by batch.
pub struct FlvBody {
    viewer: Viewer,
    header_sent: bool,
    tags: Vec<LiveTag>,
    done: bool,
}

impl FlvBody {
    /// The next bytes of the file; `None` once the stream ended.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = BytesMut::new();
        if !self.header_sent {
            self.header_sent = true;
            write_file_header(&mut out);
        }
        self.tags.clear();
        match self.viewer.next_batch(&mut self.tags).await {
            Ok(()) => {}
            Err(_) => {
                self.done = true;
                return (!out.is_empty()).then(|| out.freeze());
            }
        }
        for tag in &self.tags {
            tag.write_flv(&mut out);
        }
        Some(out.freeze())
    }

    pub fn key(&self) -> &StreamKey {
        self.viewer.key()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use liverec_hub::HubConfig;
    use liverec_media::flv::read_file_frames;
    use liverec_media::{AudioConfig, CodecConfig, TrackKind, VideoConfig};

    use super::*;

    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb,
    ];

    fn key() -> StreamKey {
        StreamKey {
            domain: "live.example.com".into(),
            app: "live".into(),
            stream: "s".into(),
        }
    }

    async fn publisher(hub: &Hub) -> liverec_hub::Publisher {
        let mut p = hub.publish(key(), vec![], None).await.unwrap();
        p.set_config(CodecConfig::Video(Arc::new(
            VideoConfig::from_avc_record(Bytes::from_static(AVCC)).unwrap(),
        )));
        p.set_config(CodecConfig::Audio(Arc::new(
            AudioConfig::from_aac_specific_config(Bytes::from_static(&[0x12, 0x10])).unwrap(),
        )));
        p
    }

    fn hub() -> Hub {
        // Nobody records here: the lifecycle receiver is dropped, announcements fail quietly.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        std::mem::forget(rx);
        Hub::new(HubConfig::default(), tx)
    }

    async fn push(p: &mut liverec_hub::Publisher, from: u32, to: u32, size: usize) {
        for i in from..to {
            let keyframe = i % 25 == 0;
            let mut data = vec![0u8; size.max(6)];
            data[..6].copy_from_slice(&[0, 0, 0, 2, if keyframe { 0x65 } else { 0x41 }, 0x88]);
            p.push(TrackKind::Video, i * 40, 0, keyframe, Bytes::from(data))
                .await;
        }
    }

    /// A viewer joining mid-GOP starts at the cached keyframe, with the configs first, and its
    /// FLV reads back as those frames from 0.
    #[tokio::test]
    async fn a_viewer_starts_at_the_cached_keyframe() {
        let hub = hub();
        let mut p = publisher(&hub).await;
        push(&mut p, 0, 35, 6).await;
        let viewer = Viewer::subscribe(&hub, &key()).unwrap();
        let mut body = viewer.into_flv();
        push(&mut p, 35, 40, 6).await;
        p.end().await;
        let mut file = Vec::new();
        while let Some(chunk) = body.next_chunk().await {
            file.extend_from_slice(&chunk);
        }
        let media = read_file_frames(&file).unwrap();
        assert!(media.tracks.video.is_some() && media.tracks.audio.is_some());
        // Frames 25..40: the GOP cached when the viewer came, then live ones.
        assert_eq!(media.frames.len(), 15);
        assert!(media.frames[0].keyframe);
        assert_eq!(media.frames[0].dts, 0);
        assert_eq!(media.frames[14].dts, 14 * 40);
    }

    /// A viewer that does not read holds up nobody: the publisher goes on at once, the
    /// viewer skips ahead and its queue stays within its budget.
    #[tokio::test]
    async fn a_viewer_that_does_not_read_skips_and_never_slows_the_publisher() {
        let hub = hub();
        let mut p = publisher(&hub).await;
        push(&mut p, 0, 1, 6).await;
        let mut viewer = Viewer::subscribe(&hub, &key()).unwrap();
        // 1000 frames of 64 KiB: 62 MiB, far beyond the viewer's queue.
        tokio::time::timeout(Duration::from_secs(10), push(&mut p, 1, 1001, 64 * 1024))
            .await
            .expect("the publisher is never held up by a viewer");
        assert!(viewer.skipped() > 900, "{} skipped", viewer.skipped());
        let mut tags = Vec::new();
        viewer.next_batch(&mut tags).await.unwrap();
        assert!(!tags.is_empty());
    }
}
