//! What a subscriber receives, and the bounded, byte-counted queue it receives it through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use liverec_media::{Frame, Tracks};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::registry::{PublishInfo, StreamShared};

/// Default queue of one subscriber, in bytes of frame payload plus per-frame overhead
/// ([`liverec_media::Frame::memory_cost`]; DESIGN.md: 8 MiB).
pub const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// Default longest time the recorder may hold up its own publisher (DESIGN.md: 2 s).
pub const DEFAULT_MAX_BLOCK: Duration = Duration::from_secs(2);

/// What a subscriber does when its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Hold up this stream's publisher for at most `max_wait`, then skip to the next keyframe
    /// with a counted gap. Only the recorder uses this.
    Block { max_wait: Duration },
    /// Skip to the next keyframe at once (live playback).
    Skip,
}

#[derive(Clone, Copy, Debug)]
pub struct SubscribeOptions {
    /// Start with the GOP cache (pre-roll) instead of the next frame.
    pub from_gop: bool,
    pub queue_bytes: usize,
    pub policy: SlowPolicy,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            from_gop: true,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            policy: SlowPolicy::Block {
                max_wait: DEFAULT_MAX_BLOCK,
            },
        }
    }
}

/// A frame handed to a subscriber. Its queue budget is returned when this is dropped.
#[derive(Debug)]
pub struct Delivered {
    /// Hub-wide sequence number: increases by one per frame of any stream, never repeats.
    pub seq: u64,
    pub frame: Frame,
    /// When the frame reached the hub: a frame replayed from the GOP cache, or one that waited
    /// in a subscriber's queue, is older than the moment it is handed over.
    pub arrived: Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Debug)]
pub enum HubEvent {
    /// The stream's tracks; sent first and again whenever a codec configuration changes.
    Tracks(Tracks),
    Frame(Delivered),
    /// Frames were dropped because this subscriber fell behind; the next frame starts a GOP.
    Gap {
        dropped: u64,
    },
    /// The publish session ended; nothing follows.
    PublishEnded,
}

pub(crate) struct SubscriberShared {
    pub(crate) id: u64,
    tx: mpsc::UnboundedSender<HubEvent>,
    budget: Arc<Semaphore>,
    queue_bytes: usize,
    policy: SlowPolicy,
    skipping: AtomicBool,
    dropped: AtomicU64,
    dropped_total: AtomicU64,
    /// `liverec_dropped_frames_total` for this kind of subscriber.
    dropped_counter: metrics::Counter,
}

impl SubscriberShared {
    pub(crate) fn new(
        id: u64,
        opts: &SubscribeOptions,
        counted: bool,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<HubEvent>) {
        // The queue's bound is its byte budget (a semaphore), so the channel itself needs none.
        let (tx, rx) = mpsc::unbounded_channel();
        let queue_bytes = opts.queue_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let shared = Arc::new(Self {
            id,
            tx,
            budget: Arc::new(Semaphore::new(queue_bytes)),
            queue_bytes,
            policy: opts.policy,
            skipping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            dropped_counter: if counted {
                let subscriber = match opts.policy {
                    SlowPolicy::Block { .. } => "recorder",
                    SlowPolicy::Skip => "viewer",
                };
                metrics::counter!(crate::metrics::DROPPED_FRAMES, "subscriber" => subscriber)
            } else {
                metrics::Counter::noop()
            },
        });
        (shared, rx)
    }

    /// Sends a control event (tiny, rare) regardless of the byte budget.
    pub(crate) fn send_control(&self, event: HubEvent) {
        let _ = self.tx.send(event);
    }

    /// Sends a cached frame at subscription time; the cache's memory is already bounded.
    pub(crate) fn send_cached(&self, seq: u64, frame: Frame, arrived: Instant) {
        let _ = self.tx.send(HubEvent::Frame(Delivered {
            seq,
            frame,
            arrived,
            _permit: None,
        }));
    }

    fn permits_for(&self, frame: &Frame) -> u32 {
        let bytes = frame.memory_cost().clamp(1, self.queue_bytes);
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    fn drop_frame(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
        self.dropped_counter.increment(1);
    }

    pub(crate) fn policy(&self) -> SlowPolicy {
        self.policy
    }

    /// Bytes of frames handed over but not yet taken (their queue budget in use).
    pub(crate) fn queued_bytes(&self) -> u64 {
        self.queue_bytes
            .saturating_sub(self.budget.available_permits()) as u64
    }

    fn send_frame(&self, seq: u64, frame: &Frame, arrived: Instant, permit: OwnedSemaphorePermit) {
        if self.skipping.swap(false, Ordering::Relaxed) {
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            let _ = self.tx.send(HubEvent::Gap { dropped });
        }
        let delivered = Delivered {
            seq,
            frame: frame.clone(),
            arrived,
            _permit: Some(permit),
        };
        let _ = self.tx.send(HubEvent::Frame(delivered));
    }

    /// Delivers one live frame, applying the slow-subscriber policy. `starts_gop` says the frame
    /// is a point a skipping subscriber may resume at.
    pub(crate) async fn deliver(
        &self,
        seq: u64,
        frame: &Frame,
        starts_gop: bool,
        arrived: Instant,
    ) {
        if self.tx.is_closed() {
            return;
        }
        let need = self.permits_for(frame);
        if self.skipping.load(Ordering::Relaxed) {
            // Resume only at a GOP start, and only if there is room right now: a subscriber
            // that cannot keep up must not hold the publisher again and again.
            match (starts_gop, self.budget.clone().try_acquire_many_owned(need)) {
                (true, Ok(permit)) => self.send_frame(seq, frame, arrived, permit),
                _ => self.drop_frame(),
            }
            return;
        }
        if let Ok(permit) = self.budget.clone().try_acquire_many_owned(need) {
            self.send_frame(seq, frame, arrived, permit);
            return;
        }
        let acquired = match self.policy {
            SlowPolicy::Skip => None,
            SlowPolicy::Block { max_wait } => {
                tokio::time::timeout(max_wait, self.budget.clone().acquire_many_owned(need))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        match acquired {
            Some(permit) => self.send_frame(seq, frame, arrived, permit),
            None => {
                self.skipping.store(true, Ordering::Relaxed);
                self.drop_frame();
            }
        }
    }

    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }
}

/// A subscriber's end of one publish session of one stream. Dropping it unsubscribes.
pub struct Subscription {
    pub(crate) rx: mpsc::UnboundedReceiver<HubEvent>,
    pub(crate) shared: Arc<SubscriberShared>,
    pub(crate) stream: Arc<StreamShared>,
}

impl Subscription {
    /// The next event. [`HubEvent::PublishEnded`] is the last one of a session.
    pub async fn recv(&mut self) -> Option<HubEvent> {
        self.rx.recv().await
    }

    /// The next event if one is already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<HubEvent> {
        self.rx.try_recv().ok()
    }

    /// Events queued and not received yet.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    pub fn info(&self) -> &Arc<PublishInfo> {
        &self.stream.info
    }

    /// Frames this subscriber lost by falling behind, in total.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped_total()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.remove_subscriber(self.shared.id);
    }
}
