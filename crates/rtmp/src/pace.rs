//! Whether a publisher is ahead of real time, from the media timestamps it sends (pure: the
//! caller passes the clock).
//!
//! A publisher that is ahead (a file pushed at full speed, or a backlog being read after the
//! recorder held the connection up) has data waiting in the socket buffers on both sides, and
//! may already have closed its socket after writing the last of it. Anything the server sends
//! then reaches a closed socket, whose kernel answers with a reset, and a reset throws away
//! everything the server has not read yet: seconds of media. So the connection sends nothing
//! unsolicited (Acknowledgements) while the publisher is ahead; publishers do not wait for
//! them (ffmpeg, OBS and GStreamer ignore them).

use std::time::{Duration, Instant};

/// Length of one measuring window.
const WINDOW: Duration = Duration::from_secs(1);
/// Media may run this far ahead of the wall clock within a window (encoder bursts, jitter).
const SLACK_MS: u64 = 500;

#[derive(Debug, Default)]
pub struct Pace {
    /// Start of the current window: when, and the first timestamp seen then.
    anchor: Option<(Instant, u32)>,
    ahead_now: bool,
    ahead_before: bool,
}

impl Pace {
    /// Notes a media message with RTMP timestamp `timestamp` (ms, wrapping) read at `now`.
    pub fn observe(&mut self, now: Instant, timestamp: u32) {
        let (start, first) = *self.anchor.get_or_insert((now, timestamp));
        let wall_ms =
            u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX);
        // Tracks interleave a little out of order; a timestamp behind the window's first one
        // counts as no progress (a jump back is a new timeline, not speed).
        let delta = timestamp.wrapping_sub(first);
        let media_ms = if delta > u32::MAX / 2 {
            0
        } else {
            u64::from(delta)
        };
        if media_ms > wall_ms.saturating_add(SLACK_MS) {
            self.ahead_now = true;
        }
        if wall_ms >= WINDOW.as_millis() as u64 {
            self.ahead_before = self.ahead_now;
            self.ahead_now = false;
            self.anchor = Some((now, timestamp));
        }
    }

    /// The publisher ran ahead of real time in this window or the last one.
    pub fn ahead(&self) -> bool {
        self.ahead_now || self.ahead_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_real_time_publisher_is_never_ahead() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        // 25 fps video and 43 Hz audio, a little out of order, with 200 ms of burst.
        for i in 0..2_000u64 {
            let at = t0 + ms(i * 10);
            let ts = (i * 10) as u32;
            pace.observe(at, ts + 200);
            pace.observe(at, ts.saturating_sub(20));
            assert!(!pace.ahead(), "at {i}");
        }
    }

    #[test]
    fn a_file_pushed_at_full_speed_is_ahead_until_it_slows_down() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.observe(t0, 0);
        // 10 s of media within 50 ms.
        pace.observe(t0 + ms(50), 10_000);
        assert!(pace.ahead());
        // Right after a new window opens the last one still counts.
        pace.observe(t0 + ms(1_050), 20_000);
        pace.observe(t0 + ms(1_060), 20_010);
        assert!(pace.ahead());
        // Back to real time: ahead for at most two windows more.
        let mut at = 1_060;
        let mut ts = 20_010u32;
        while at < 4_100 {
            at += 40;
            ts += 40;
            pace.observe(t0 + ms(at), ts);
        }
        assert!(!pace.ahead());
    }

    #[test]
    fn timestamps_that_jump_or_wrap_do_not_stick() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.observe(t0, u32::MAX - 100);
        // Wraps: +200 ms of media in 200 ms.
        pace.observe(t0 + ms(200), 99);
        assert!(!pace.ahead());
        // A jump back (encoder restart) is not speed.
        pace.observe(t0 + ms(400), 5);
        assert!(!pace.ahead());
        // A jump forward looks fast for a while, then passes.
        pace.observe(t0 + ms(600), 3_600_000);
        assert!(pace.ahead());
        let mut at = 600;
        let mut ts = 3_600_000u32;
        while at < 3_700 {
            at += 40;
            ts += 40;
            pace.observe(t0 + ms(at), ts);
        }
        assert!(!pace.ahead());
    }
}
