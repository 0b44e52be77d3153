//! The headers that let a receiver check a callback came from its liverec (NotifyReqAuth):
//! `ALI-LIVE-SIGNATURE` = md5 hex of `{host}|{timestamp}|{NotifyAuthKey}`, where `host` is the
//! callback URL's host without its port.

use md5::{Digest, Md5};

pub const TIMESTAMP_HEADER: &str = "ALI-LIVE-TIMESTAMP";
pub const SIGNATURE_HEADER: &str = "ALI-LIVE-SIGNATURE";

/// The signature of a request to `host` (no port) made at `timestamp` (Unix seconds).
pub fn signature(host: &str, timestamp: i64, auth_key: &str) -> String {
    let digest = Md5::digest(format!("{host}|{timestamp}|{auth_key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The two auth headers for a request to `url` at `timestamp`, or `None` when the URL has no
/// host (the config actions refuse such URLs).
pub fn auth_headers(
    url: &str,
    timestamp: i64,
    auth_key: &str,
) -> Option<[(&'static str, String); 2]> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    // IPv6 hosts come bracketed from `host_str`; the signature uses the bare address.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some([
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature(host, timestamp, auth_key)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_md5_of_host_time_key() {
        // md5("example.com|1700000000|abcdefghijklmnop"), computed with coreutils' md5sum.
        assert_eq!(
            signature("example.com", 1_700_000_000, "abcdefghijklmnop"),
            "ec794a70eccee076f1c70cbe63939396"
        );
    }

    #[test]
    fn headers_use_the_host_without_port() {
        let [(t, ts), (s, sig)] = auth_headers(
            "http://example.com:8080/cb?x=1",
            1_700_000_000,
            "abcdefghijklmnop",
        )
        .unwrap();
        assert_eq!((t, ts.as_str()), (TIMESTAMP_HEADER, "1700000000"));
        assert_eq!(s, SIGNATURE_HEADER);
        assert_eq!(
            sig,
            signature("example.com", 1_700_000_000, "abcdefghijklmnop")
        );
        assert!(auth_headers("not a url", 1, "k").is_none());
    }
}
