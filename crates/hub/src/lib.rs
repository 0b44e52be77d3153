//! The stream hub: one publisher and many subscribers per stream, a GOP cache per stream,
//! bounded queues with explicit back-pressure.
//!
//! - A [`Publisher`] normalises timestamps, keeps the GOP cache and fans frames out.
//! - A [`Subscription`] receives [`HubEvent`]s. Its queue is bounded in bytes; when full, a
//!   [`SlowPolicy::Block`] subscriber (the recorder) slows its own stream's publisher for a
//!   bounded time, then skips to the next keyframe with a counted gap; a [`SlowPolicy::Skip`]
//!   subscriber skips at once. Other streams never notice either.
//! - Publish starts and ends are announced on a bounded lifecycle channel ([`Lifecycle`]),
//!   which the recorder's supervisor consumes.

mod gop;
mod key;
pub mod metrics;
mod registry;
mod subscription;

pub use gop::GopCache;
pub use key::{NameError, StreamKey, validate_domain, validate_name};
pub use registry::{
    Hub, HubConfig, HubError, HubStats, Lifecycle, PublishInfo, PublishReady, Publisher,
};
pub use subscription::{Delivered, HubEvent, SlowPolicy, SubscribeOptions, Subscription};
