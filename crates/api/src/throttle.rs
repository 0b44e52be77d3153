//! Per-account, per-action QPS limits: a token bucket per (AccessKeyId, Action) whose burst is
//! one second's quota. A request under the limit is never delayed; one over it is refused with
//! `Throttling.User` at once.

use std::collections::HashMap;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

/// Alibaba's limit for RealTimeRecordCommand (ERRORS.md: 50/s per account).
pub const REAL_TIME_RECORD_COMMAND_QPS: u32 = 50;
/// Alibaba's limit for the record-config actions (API.md: 30/s).
pub const RECORD_CONFIG_QPS: u32 = 30;
/// Alibaba's limit for DescribeLiveStreamsPublishList (3/s per account).
pub const PUBLISH_LIST_QPS: u32 = 3;
/// Limit of actions Alibaba gives no number for, unless configured.
pub const DEFAULT_QPS: u32 = 100;

/// The built-in limit of `action`, if Alibaba documents one.
pub fn builtin_qps(action: &str) -> Option<u32> {
    match action {
        "RealTimeRecordCommand" => Some(REAL_TIME_RECORD_COMMAND_QPS),
        "AddLiveAppRecordConfig"
        | "UpdateLiveAppRecordConfig"
        | "DeleteLiveAppRecordConfig"
        | "DescribeLiveRecordConfig" => Some(RECORD_CONFIG_QPS),
        "DescribeLiveStreamsPublishList" => Some(PUBLISH_LIST_QPS),
        _ => None,
    }
}

type Limiter<C> =
    RateLimiter<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One keyed limiter per action, keyed by AccessKeyId.
pub struct Throttle<C: Clock = DefaultClock> {
    /// `None`: the action is configured with 0, meaning unlimited.
    limiters: HashMap<&'static str, Option<Limiter<C>>>,
}

impl Throttle<DefaultClock> {
    /// Limits for `actions`: `overrides` (per action) first, then [`builtin_qps`], then
    /// `default_qps`. A limit of 0 means unlimited.
    pub fn new(
        actions: &[&'static str],
        overrides: &HashMap<String, u32>,
        default_qps: u32,
    ) -> Self {
        Self::with_clock(actions, overrides, default_qps, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> Throttle<C> {
    /// As [`Throttle::new`], on `clock` (tests use a fake one).
    pub fn with_clock(
        actions: &[&'static str],
        overrides: &HashMap<String, u32>,
        default_qps: u32,
        clock: &C,
    ) -> Self {
        let limiters = actions
            .iter()
            .map(|&action| {
                let qps = overrides
                    .get(action)
                    .copied()
                    .or_else(|| builtin_qps(action))
                    .unwrap_or(default_qps);
                let limiter = NonZeroU32::new(qps).map(|qps| {
                    RateLimiter::dashmap_with_clock(Quota::per_second(qps), clock.clone())
                });
                (action, limiter)
            })
            .collect();
        Self { limiters }
    }

    /// Takes one token of (`key_id`, `action`), or answers `Throttling.User`. Never waits.
    pub fn check(&self, key_id: &str, action: &str) -> Result<(), ApiError> {
        match self.limiters.get(action) {
            Some(Some(limiter)) => limiter
                .check_key(&key_id.to_owned())
                .map_err(|_| ApiError::Throttled),
            Some(None) => Ok(()),
            None => Err(ApiError::Internal(format!(
                "no rate limiter for action {action}"
            ))),
        }
    }

    /// Forgets keys whose bucket is full again, so the maps only hold active accounts.
    pub fn retain_recent(&self) {
        for limiter in self.limiters.values().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    const ACTIONS: &[&str] = &["RealTimeRecordCommand", "AddLiveAppRecordConfig", "Other"];

    fn throttle(
        overrides: &[(&str, u32)],
        default_qps: u32,
    ) -> (Throttle<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let overrides = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        (
            Throttle::with_clock(ACTIONS, &overrides, default_qps, &clock),
            clock,
        )
    }

    fn passes(t: &Throttle<FakeRelativeClock>, key: &str, action: &str, n: usize) -> usize {
        (0..n).filter(|_| t.check(key, action).is_ok()).count()
    }

    #[test]
    fn burst_is_one_seconds_quota_then_throttled() {
        let (t, _) = throttle(&[], 7);
        assert_eq!(passes(&t, "AK", "RealTimeRecordCommand", 60), 50);
        assert_eq!(
            t.check("AK", "RealTimeRecordCommand"),
            Err(ApiError::Throttled)
        );
        assert_eq!(passes(&t, "AK", "AddLiveAppRecordConfig", 40), 30);
        assert_eq!(passes(&t, "AK", "Other", 10), 7);
    }

    #[test]
    fn keys_and_actions_have_separate_buckets() {
        let (t, _) = throttle(&[], 5);
        assert_eq!(passes(&t, "AK1", "Other", 10), 5);
        assert_eq!(passes(&t, "AK2", "Other", 10), 5);
        assert_eq!(passes(&t, "AK1", "RealTimeRecordCommand", 10), 10);
    }

    #[test]
    fn tokens_come_back_at_the_quota_rate() {
        let (t, clock) = throttle(&[("Other", 10)], 5);
        assert_eq!(passes(&t, "AK", "Other", 20), 10);
        clock.advance(Duration::from_millis(100));
        assert_eq!(passes(&t, "AK", "Other", 5), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(passes(&t, "AK", "Other", 20), 10);
        t.retain_recent();
    }

    #[test]
    fn overrides_win_and_zero_is_unlimited() {
        let (t, _) = throttle(&[("RealTimeRecordCommand", 2), ("Other", 0)], 5);
        assert_eq!(passes(&t, "AK", "RealTimeRecordCommand", 10), 2);
        assert_eq!(passes(&t, "AK", "Other", 1000), 1000);
    }

    #[test]
    fn unknown_action_is_a_server_fault() {
        let (t, _) = throttle(&[], 5);
        assert!(matches!(t.check("AK", "Nope"), Err(ApiError::Internal(_))));
    }
}
