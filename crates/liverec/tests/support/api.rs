//! Signed calls of liverec's OpenAPI from tests, as the current SDK makes them
//! (ACS3-HMAC-SHA256, API.md), over a plain HTTP/1.1 connection. The signer is written here
//! from the spec, independently of the crate's `signature` module.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// An access key handed to the server through `LIVEREC_ACCESS_KEY_ID`/`_SECRET`.
pub const KEY_ID: &str = "LTAItestplayback0001";
pub const KEY_SECRET: &str = "playback-test-secret-0001";

/// The environment that gives a [`super::Server`] the test key.
pub fn key_env() -> [(&'static str, &'static str); 2] {
    [
        ("LIVEREC_ACCESS_KEY_ID", KEY_ID),
        ("LIVEREC_ACCESS_KEY_SECRET", KEY_SECRET),
    ]
}

/// RFC 3986 percent-encoding, byte by byte.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `yyyy-MM-ddTHH:mm:ssZ` of a Unix time.
pub fn utc(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap()
}

pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The answer to a call: HTTP status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Calls `action` with `params` (GET, query parameters, signed with the test key).
pub fn call(api: SocketAddr, action: &str, params: &[(&str, &str)]) -> Answer {
    let mut query: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let empty_body = hex::encode(Sha256::digest(b""));
    let mut headers = vec![
        ("host".to_owned(), api.to_string()),
        ("x-acs-action".to_owned(), action.to_owned()),
        ("x-acs-content-sha256".to_owned(), empty_body.clone()),
        ("x-acs-date".to_owned(), utc(now_secs())),
        (
            "x-acs-signature-nonce".to_owned(),
            uuid::Uuid::new_v4().simple().to_string(),
        ),
        ("x-acs-version".to_owned(), "2016-11-01".to_owned()),
    ];
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_request = format!("GET\n/\n{query}\n{canonical_headers}\n{signed}\n{empty_body}");
    let string_to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY_SECRET.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let mut request = format!("GET /?{query} HTTP/1.1\r\n");
    for (k, v) in &headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "authorization: ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders={signed},Signature={signature}\r\naccept: application/json\r\nconnection: close\r\n\r\n"
    ));
    let (status, body) = http(api, &request);
    let body = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{action}: HTTP {status} with a body that is no JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    Answer { status, body }
}

/// Calls `action`, which must succeed; returns its body.
pub fn ok(api: SocketAddr, action: &str, params: &[(&str, &str)]) -> serde_json::Value {
    let answer = call(api, action, params);
    assert_eq!(answer.status, 200, "{action}: {}", answer.body);
    answer.body
}

/// Sends a raw HTTP/1.1 request (which asks for `connection: close`) and reads the answer:
/// status and body (`Content-Length` bodies only, which is what liverec's API sends).
pub fn http(addr: SocketAddr, request: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, raw[split + 4..].to_vec())
}

/// `GET` of a URL on `addr` (a RecordUrl): status and body.
pub fn get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse().expect("host:port");
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n"),
    )
}
