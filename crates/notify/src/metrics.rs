//! Callback delivery metrics (docs/OPERATIONS.md). The outbox's backlog (pending, retrying,
//! given up) is read from the database when `/metrics` is scraped; these count attempts.

/// Counter, by `event`: callbacks delivered (a 2xx from the receiver).
pub const CALLBACKS_SENT: &str = "liverec_callbacks_sent_total";
/// Counter, by `event`: delivery attempts that failed (refused, timed out, non-2xx).
pub const CALLBACK_ATTEMPTS_FAILED: &str = "liverec_callback_attempts_failed_total";
/// Counter, by `event`: failed callbacks scheduled for another attempt.
pub const CALLBACKS_RETRIED: &str = "liverec_callbacks_retried_total";
/// Counter, by `event`: callbacks given up after their retry window.
pub const CALLBACKS_GIVEN_UP: &str = "liverec_callbacks_given_up_total";

pub fn describe() {
    metrics::describe_counter!(
        CALLBACKS_SENT,
        "Callbacks delivered: the receiver answered 2xx (label event)."
    );
    metrics::describe_counter!(
        CALLBACK_ATTEMPTS_FAILED,
        "Callback delivery attempts that failed: refused, timed out or not 2xx (label event)."
    );
    metrics::describe_counter!(
        CALLBACKS_RETRIED,
        "Failed callback attempts scheduled to be tried again (label event)."
    );
    metrics::describe_counter!(
        CALLBACKS_GIVEN_UP,
        "Callbacks given up after notify.retry_hours; `liverec notify resend --failed` sends them again (label event)."
    );
}
