//! Request signing for Alibaba Cloud's RPC-style OpenAPI, written from the wire description
//! (not shared with liverec's verifier), so the benchmark also cross-checks the server.
//!
//! Two schemes: ACS3-HMAC-SHA256 (current SDKs, headers) and RPC v1 HMAC-SHA1 (older SDKs,
//! query parameters).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// API version every action of product `live` uses.
pub const API_VERSION: &str = "2016-11-01";
/// Hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Which signature scheme to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// ACS3-HMAC-SHA256 (alibabacloud-live20161101, the current SDK).
    Acs3,
    /// RPC v1 HMAC-SHA1 (aliyun-python-sdk-core, the older SDK).
    V1,
}

/// An access key pair.
#[derive(Clone)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A request ready to be written: path + query, and extra headers (besides Host and
/// Content-Length, which the HTTP layer adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
}

/// RFC 3986 percent-encoding: unreserved characters kept, everything else `%XX` upper-case.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Encoded, byte-sorted `k=v&…` of the given pairs.
pub fn canonical_query(pairs: &[(&str, &str)]) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    enc.sort();
    let mut out = String::new();
    for (i, (k, v)) in enc.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// `YYYY-MM-DDThh:mm:ssZ` for a Unix time in seconds (UTC).
pub fn format_timestamp(unix_secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn now_unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Unique signature nonces: process id, start time and a counter, so two runs never collide.
#[derive(Debug)]
pub struct NonceSource {
    prefix: String,
    counter: AtomicU64,
}

impl NonceSource {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            prefix: format!("{:08x}{:016x}", std::process::id(), nanos as u64),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:08x}", self.prefix)
    }
}

impl Default for NonceSource {
    fn default() -> Self {
        Self::new()
    }
}

/// hex(HMAC-SHA256(secret, data)).
pub fn hmac_sha256_hex(secret: &str, data: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// base64(HMAC-SHA1(secret + "&", data)).
pub fn hmac_sha1_b64(secret: &str, data: &str) -> String {
    let key = format!("{secret}&");
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// ACS3 string to sign from the parts of a request. `headers` are the signed headers (any case,
/// any order); they are lower-cased, trimmed and sorted here.
pub fn acs3_string_to_sign(
    method: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body_sha256_hex: &str,
) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    hs.sort();
    let mut canonical_headers = String::new();
    let mut signed = String::new();
    for (i, (k, v)) in hs.iter().enumerate() {
        canonical_headers.push_str(k);
        canonical_headers.push(':');
        canonical_headers.push_str(v);
        canonical_headers.push('\n');
        if i > 0 {
            signed.push(';');
        }
        signed.push_str(k);
    }
    let canonical_request = format!(
        "{method}\n/\n{}\n{canonical_headers}\n{signed}\n{body_sha256_hex}",
        canonical_query(query)
    );
    let hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    (format!("ACS3-HMAC-SHA256\n{hash}"), signed)
}

/// Signs one `POST /` RPC call with an empty body. `params` are the action's parameters;
/// `host` is the `host:port` the request goes to.
pub fn sign(
    scheme: Scheme,
    creds: &Credentials,
    host: &str,
    action: &str,
    params: &[(&str, &str)],
    nonce: &str,
    unix_secs: Option<i64>,
) -> SignedRequest {
    let date = format_timestamp(unix_secs.unwrap_or_else(now_unix_secs));
    match scheme {
        Scheme::Acs3 => {
            let headers = [
                ("host", host),
                ("x-acs-action", action),
                ("x-acs-content-sha256", EMPTY_SHA256),
                ("x-acs-date", date.as_str()),
                ("x-acs-signature-nonce", nonce),
                ("x-acs-version", API_VERSION),
            ];
            let (sts, signed) = acs3_string_to_sign("POST", params, &headers, EMPTY_SHA256);
            let signature = hmac_sha256_hex(&creds.secret, &sts);
            let mut out: Vec<(String, String)> = headers
                .iter()
                .filter(|(k, _)| *k != "host")
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            out.push((
                "Authorization".to_owned(),
                format!(
                    "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={signature}",
                    creds.id
                ),
            ));
            SignedRequest {
                path_and_query: format!("/?{}", canonical_query(params)),
                headers: out,
            }
        }
        Scheme::V1 => {
            let mut all: Vec<(&str, &str)> = params.to_vec();
            all.extend_from_slice(&[
                ("AccessKeyId", creds.id.as_str()),
                ("Action", action),
                ("Format", "JSON"),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureNonce", nonce),
                ("SignatureType", ""),
                ("SignatureVersion", "1.0"),
                ("Timestamp", date.as_str()),
                ("Version", API_VERSION),
            ]);
            let canon = canonical_query(&all);
            let sts = format!("POST&%2F&{}", percent_encode(&canon));
            let signature = hmac_sha1_b64(&creds.secret, &sts);
            SignedRequest {
                path_and_query: format!("/?{canon}&Signature={}", percent_encode(&signature)),
                headers: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked example of ACS3-HMAC-SHA256 in the wire spec (AK testAK, SK testSK).
    #[test]
    fn acs3_matches_worked_example() {
        let query = [
            ("AppName", "liveApp"),
            ("Command", "start"),
            ("DomainName", "example.com"),
            ("RegionId", "cn-shanghai"),
            ("StreamName", "s1"),
        ];
        let headers = [
            ("accept", "application/json"),
            ("host", "127.0.0.1:18765"),
            (
                "user-agent",
                "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            ),
            ("x-acs-action", "RealTimeRecordCommand"),
            ("x-acs-content-sha256", EMPTY_SHA256),
            ("x-acs-credentials-provider", "static_ak"),
            ("x-acs-date", "2026-11-25T18:36:36Z"),
            ("x-acs-signature-nonce", "607aa77ea8cc3bad5b3e5e5129fb0d78"),
            ("x-acs-version", "2016-11-01"),
        ];
        let (sts, signed) = acs3_string_to_sign("POST", &query, &headers, EMPTY_SHA256);
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\n2faf9c5a9776446d97d4851770c4cf38a4ddc5d5270dbb84d555395a35de221e"
        );
        assert_eq!(
            signed,
            "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            hmac_sha256_hex("testSK", &sts),
            "a8bed9c5be2adb96fb39b77d7fa1caf6992a3ceb7c708385edf1323909ce81d6"
        );
    }

    /// Worked example of RPC v1 HMAC-SHA1 in the wire spec.
    #[test]
    fn v1_matches_worked_example() {
        let creds = Credentials {
            id: "testAK".into(),
            secret: "testSK".into(),
        };
        let params = [
            ("AppName", "liveApp"),
            ("Command", "start"),
            ("DomainName", "example.com"),
            ("RegionId", "cn-shanghai"),
            ("StreamName", "s1"),
        ];
        // 2026-11-25T18:37:24Z
        let unix = 1_795_631_844;
        assert_eq!(format_timestamp(unix), "2026-11-25T18:37:24Z");
        let req = sign(
            Scheme::V1,
            &creds,
            "h",
            "RealTimeRecordCommand",
            &params,
            "a7b18df42380fd43e5aeb56faa0ff00e",
            Some(unix),
        );
        let expected = "AccessKeyId=testAK&Action=RealTimeRecordCommand&AppName=liveApp&Command=start&DomainName=example.com&Format=JSON&RegionId=cn-shanghai&SignatureMethod=HMAC-SHA1&SignatureNonce=a7b18df42380fd43e5aeb56faa0ff00e&SignatureType=&SignatureVersion=1.0&StreamName=s1&Timestamp=2026-11-25T18%3A37%3A24Z&Version=2016-11-01";
        assert_eq!(
            req.path_and_query,
            format!(
                "/?{expected}&Signature={}",
                percent_encode("TZtEbLAEvv3mZFi0JhiKK96ImXs=")
            )
        );
        assert!(req.headers.is_empty());
    }

    #[test]
    fn acs3_request_carries_every_signed_header() {
        let creds = Credentials {
            id: "AK".into(),
            secret: "SK".into(),
        };
        let req = sign(
            Scheme::Acs3,
            &creds,
            "127.0.0.1:8080",
            "RealTimeRecordCommand",
            &[("StreamName", "a b"), ("AppName", "live")],
            "n1",
            Some(0),
        );
        assert_eq!(req.path_and_query, "/?AppName=live&StreamName=a%20b");
        let auth = &req.headers.last().unwrap().1;
        assert!(auth.starts_with("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="));
        let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
        for h in [
            "x-acs-action",
            "x-acs-content-sha256",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-version",
        ] {
            assert!(names.contains(&h), "{h} missing");
        }
    }

    #[test]
    fn percent_encoding_is_rfc3986() {
        assert_eq!(percent_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(percent_encode(" +*/:"), "%20%2B%2A%2F%3A");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn nonces_are_unique() {
        let n = NonceSource::new();
        let a = n.next();
        let b = n.next();
        assert_ne!(a, b);
        assert!(a.len() <= 128);
    }

    #[test]
    fn debug_hides_secret() {
        let c = Credentials {
            id: "AK".into(),
            secret: "hush".into(),
        };
        assert!(!format!("{c:?}").contains("hush"));
    }
}
