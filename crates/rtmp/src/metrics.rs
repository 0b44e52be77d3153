//! Metrics of RTMP sessions (docs/OPERATIONS.md lists every metric of the process).

/// Counter: publishes accepted.
pub const PUBLISHES: &str = "liverec_publishes_total";
/// Counter, by `reason`: publishes refused, here (`max_publishers`) or by the
/// [`crate::SessionHandler`] (liverec's ingest gate: `unknown_domain`, `bad_name`,
/// `url_signature`, `url_signature_unavailable`, `forbidden`, `already_publishing`,
/// `shutting_down`).
pub const PUBLISHES_REFUSED: &str = "liverec_publishes_refused_total";
/// Counter, by `reason` (`not_found`, `forbidden`, `unavailable`, `max_viewers`): plays
/// refused, RTMP and HTTP-FLV.
pub const PLAYS_REFUSED: &str = "liverec_plays_refused_total";

pub fn describe() {
    metrics::describe_counter!(PUBLISHES, "Publishes accepted.");
    metrics::describe_counter!(
        PUBLISHES_REFUSED,
        "Publishes refused, by reason: max_publishers, unknown_domain, bad_name, url_signature, url_signature_unavailable, forbidden, already_publishing, shutting_down."
    );
    metrics::describe_counter!(
        PLAYS_REFUSED,
        "Plays refused (RTMP and HTTP-FLV), by reason: not_found, forbidden, unavailable, max_viewers."
    );
}

/// Counts a refused publish and hands the refusal on.
pub fn publish_refused(reason: &'static str) {
    metrics::counter!(PUBLISHES_REFUSED, "reason" => reason).increment(1);
}

/// Counts a refused play.
pub fn play_refused(reason: &'static str) {
    metrics::counter!(PLAYS_REFUSED, "reason" => reason).increment(1);
}
