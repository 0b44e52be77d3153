//! When a failed callback is tried again: Alibaba's five quick retries (100 ms to 10 s,
//! jittered), then a backoff that doubles from 30 s up to 5 min, for as long as the retry window
//! lasts (API.md "Record callbacks").

use std::time::Duration;

/// Quick retries after the first attempt.
pub const QUICK_RETRIES: u32 = 5;
const QUICK_BASE_MS: [u64; QUICK_RETRIES as usize] = [100, 400, 1_500, 4_000, 10_000];
const QUICK_MIN_MS: u64 = 100;
const QUICK_MAX_MS: u64 = 10_000;
const SLOW_FIRST_MS: u64 = 30_000;
const SLOW_MAX_MS: u64 = 300_000;

/// The wait before the next attempt after `failures` failed attempts (1 = the first attempt
/// failed). `jitter` in [0, 1) spreads retries of many events apart.
pub fn retry_delay(failures: u32, jitter: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let ms = if failures == 0 {
        0
    } else if failures <= QUICK_RETRIES {
        let base = QUICK_BASE_MS[(failures - 1) as usize] as f64;
        // ±50 %, inside Alibaba's 100 ms – 10 s.
        ((base * (0.5 + jitter)) as u64).clamp(QUICK_MIN_MS, QUICK_MAX_MS)
    } else {
        let doublings = (failures - QUICK_RETRIES - 1).min(16);
        let base = (SLOW_FIRST_MS << doublings).min(SLOW_MAX_MS) as f64;
        // −20 % … +0 %: never above the cap.
        (base * (0.8 + 0.2 * jitter)) as u64
    };
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn five_quick_then_slow() {
        let d = |f| retry_delay(f, 0.5).as_millis();
        assert_eq!(
            [d(1), d(2), d(3), d(4), d(5)],
            [100, 400, 1_500, 4_000, 10_000]
        );
        assert_eq!([d(6), d(7), d(8)], [27_000, 54_000, 108_000]);
        assert_eq!(d(40), 270_000);
    }

    proptest! {
        #[test]
        fn delays_stay_in_their_ranges(failures in 1u32..1000, jitter in -1.0f64..2.0) {
            let ms = retry_delay(failures, jitter).as_millis() as u64;
            if failures <= QUICK_RETRIES {
                prop_assert!((QUICK_MIN_MS..=QUICK_MAX_MS).contains(&ms));
            } else {
                prop_assert!((SLOW_FIRST_MS * 8 / 10..=SLOW_MAX_MS).contains(&ms));
            }
        }
    }
}
