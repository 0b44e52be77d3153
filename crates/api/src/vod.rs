//! Playback of stored recordings: `GET /vod/{bucket}/{object}?Expires=…&Signature=…`.
//!
//! A RecordUrl is minted when an index action answers and is valid for `vod_url_ttl` (an HMAC
//! over the path and the expiry with a secret kept in the database, so URLs survive restarts
//! and work on every node). MP4/FLV/segments are streamed from the storage target with byte
//! ranges, never loaded whole; a playlist is rewritten so each segment URI carries its own
//! signature (same expiry). Answers allow any origin (CORS): the URL itself is the credential.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use liverec_storage::layout::{relative_uri, resolve_uri, sanitize};
use liverec_storage::{ByteRange, StorageError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

use crate::ApiState;

/// Route prefix of playback URLs.
pub const VOD_PREFIX: &str = "/vod/";
/// Largest playlist rewritten in memory.
const MAX_PLAYLIST_BYTES: u64 = 8 * 1024 * 1024;

/// What a path segment keeps unencoded (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Mints and checks playback URLs.
#[derive(Clone)]
pub struct VodSigner {
    key: Hmac<Sha256>,
    /// `http://host:port` (no trailing slash) the URLs start with.
    public_url: String,
    ttl: Duration,
}

impl std::fmt::Debug for VodSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodSigner")
            .field("public_url", &self.public_url)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a playback URL is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    Missing,
    Expired,
    BadSignature,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `/vod/{bucket}/{object}` with every path segment percent-encoded.
fn encoded_path(bucket: &str, object: &str) -> String {
    let mut path = String::from(VOD_PREFIX);
    path.extend(utf8_percent_encode(bucket, SEGMENT));
    for part in object.split('/') {
        path.push('/');
        path.extend(utf8_percent_encode(part, SEGMENT));
    }
    path
}

impl VodSigner {
    /// A signer with `secret` (any length; HMAC refuses none, but the error stays typed).
    pub fn new(
        secret: &[u8],
        public_url: &str,
        ttl: Duration,
    ) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self {
            key: Hmac::<Sha256>::new_from_slice(secret)?,
            public_url: public_url.trim_end_matches('/').to_owned(),
            ttl,
        })
    }

    /// The signature of `bucket`/`object` until `expires` (Unix seconds), hex.
    fn signature(&self, bucket: &str, object: &str, expires: u64) -> String {
        let mut mac = self.key.clone();
        mac.update(format!("{expires}\n{bucket}\n{object}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `?Expires=…&Signature=…` for an object.
    fn query(&self, bucket: &str, object: &str, expires: u64) -> String {
        format!(
            "Expires={expires}&Signature={}",
            self.signature(bucket, object, expires)
        )
    }

    /// A playback URL valid for the configured TTL from now.
    pub fn url(&self, bucket: &str, object: &str) -> String {
        let expires = unix_now() + self.ttl.as_secs();
        format!(
            "{}{}?{}",
            self.public_url,
            encoded_path(bucket, object),
            self.query(bucket, object, expires)
        )
    }

    /// Checks a URL's `Expires` and `Signature` for `bucket`/`object` at `now`; returns the
    /// expiry.
    pub fn verify(
        &self,
        bucket: &str,
        object: &str,
        expires: Option<&str>,
        signature: Option<&str>,
        now: u64,
    ) -> Result<u64, UrlError> {
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err(UrlError::Missing);
        };
        let expires: u64 = expires.parse().map_err(|_| UrlError::BadSignature)?;
        let signature = hex::decode(signature).map_err(|_| UrlError::BadSignature)?;
        let mut mac = self.key.clone();
        mac.update(format!("{expires}\n{bucket}\n{object}").as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| UrlError::BadSignature)?;
        if expires < now {
            return Err(UrlError::Expired);
        }
        Ok(expires)
    }

    /// Rewrites a playlist's URIs (segments, `EXT-X-MAP`) into signed URLs relative to the
    /// playlist, expiring with it. URIs leaving the bucket are dropped.
    pub fn sign_playlist(&self, bucket: &str, playlist: &str, text: &str, expires: u64) -> String {
        let sign = |uri: &str| -> Option<String> {
            let object = resolve_uri(playlist, uri)?;
            let relative = relative_uri(playlist, &object);
            let encoded: Vec<String> = relative
                .split('/')
                .map(|p| {
                    if p == ".." {
                        p.to_owned()
                    } else {
                        utf8_percent_encode(p, SEGMENT).to_string()
                    }
                })
                .collect();
            Some(format!(
                "{}?{}",
                encoded.join("/"),
                self.query(bucket, &object, expires)
            ))
        };
        let mut out = String::with_capacity(text.len() * 2);
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                out.push_str(line);
            } else if let Some(rest) = trimmed.strip_prefix("#EXT-X-MAP:") {
                out.push_str("#EXT-X-MAP:");
                out.push_str(&rewrite_uri_attribute(rest, &sign));
            } else if trimmed.starts_with('#') {
                out.push_str(line);
            } else if let Some(signed) = sign(trimmed) {
                out.push_str(&signed);
            } else {
                continue;
            }
            out.push('\n');
        }
        out
    }
}

/// `URI="…"` inside an attribute list, rewritten with `sign`.
fn rewrite_uri_attribute(attributes: &str, sign: &dyn Fn(&str) -> Option<String>) -> String {
    let Some(start) = attributes.find("URI=\"") else {
        return attributes.to_owned();
    };
    let value_start = start + 5;
    let Some(len) = attributes[value_start..].find('"') else {
        return attributes.to_owned();
    };
    let uri = &attributes[value_start..value_start + len];
    match sign(uri) {
        Some(signed) => format!(
            "{}{}{}",
            &attributes[..value_start],
            signed,
            &attributes[value_start + len..]
        ),
        None => attributes.to_owned(),
    }
}

/// A `Range` header: one range of bytes (several ranges are answered with the whole object).
fn parse_range(headers: &HeaderMap) -> Result<Option<ByteRange>, ()> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?.trim();
    let Some(spec) = value.strip_prefix("bytes=") else {
        return Err(());
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        let n: u64 = end.parse().map_err(|_| ())?;
        return Ok(Some(ByteRange::Suffix(n)));
    }
    let start: u64 = start.parse().map_err(|_| ())?;
    let end = if end.is_empty() {
        None
    } else {
        let last: u64 = end.parse().map_err(|_| ())?;
        if last < start {
            return Err(());
        }
        Some(last.saturating_add(1))
    };
    Ok(Some(ByteRange::From { start, end }))
}

fn content_type(object: &str) -> &'static str {
    let ext = object.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "mp4" => "video/mp4",
        "flv" => "video/x-flv",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        _ => "application/octet-stream",
    }
}

fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    cors((status, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
}

/// Splits `/vod/{bucket}/{object}` (percent-encoded) into its decoded parts.
fn split_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix(VOD_PREFIX)?;
    let (bucket, object) = rest.split_once('/')?;
    let bucket = percent_decode_str(bucket).decode_utf8().ok()?.into_owned();
    let object: Vec<String> = object
        .split('/')
        .map(|p| percent_decode_str(p).decode_utf8().map(|s| s.into_owned()))
        .collect::<Result<_, _>>()
        .ok()?;
    let object = sanitize(&object.join("/")).ok()?;
    (!bucket.is_empty() && !bucket.contains('/') && sanitize(&bucket).is_ok())
        .then_some((bucket, object))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `GET`/`HEAD`/`OPTIONS /vod/…`.
pub(crate) async fn serve(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let method = request.method().clone();
    if method == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Range"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return cors(response);
    }
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n");
    }
    let Some((bucket, object)) = split_path(request.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "no such recording\n");
    };
    let query = request.uri().query().unwrap_or("");
    let expires = match state.vod.verify(
        &bucket,
        &object,
        query_param(query, "Expires"),
        query_param(query, "Signature"),
        unix_now(),
    ) {
        Ok(expires) => expires,
        Err(UrlError::Expired) => return plain(StatusCode::FORBIDDEN, "this URL has expired\n"),
        Err(UrlError::Missing | UrlError::BadSignature) => {
            return plain(
                StatusCode::FORBIDDEN,
                "this URL is not signed by this server\n",
            );
        }
    };
    let target = state.storage.target(&bucket);
    if object.ends_with(".m3u8") {
        let text = match liverec_storage::read_to_vec(target.as_ref(), &object, MAX_PLAYLIST_BYTES)
            .await
        {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => return storage_failure(&bucket, &object, &err),
        };
        let body = state.vod.sign_playlist(&bucket, &object, &text, expires);
        let mut response = Response::new(if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(body.clone())
        });
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&object)),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        return cors(response);
    }
    // A Range header that does not parse is ignored (RFC 9110 §14.2): the whole object.
    let range = parse_range(request.headers()).unwrap_or(None);
    let read = match target.read(&object, range).await {
        Ok(read) => read,
        Err(StorageError::Range { size, .. }) => {
            let mut response = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return response;
        }
        Err(err) => return storage_failure(&bucket, &object, &err),
    };
    let length = read.range.end - read.range.start;
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = Response::new(if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(read.body)
    });
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&object)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if range.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            read.range.start,
            read.range.end.saturating_sub(1),
            read.size
        ))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    cors(response)
}

fn storage_failure(bucket: &str, object: &str, err: &StorageError) -> Response {
    if err.is_not_found() {
        return plain(StatusCode::NOT_FOUND, "no such recording\n");
    }
    tracing::warn!(bucket, object, %err, "playback: storage read failed");
    plain(
        StatusCode::BAD_GATEWAY,
        "the storage target is unavailable\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> VodSigner {
        VodSigner::new(b"secret", "http://127.0.0.1:8080/", Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn urls_verify_and_tampering_is_refused() {
        let s = signer();
        let url = s.url("default", "record/d/a/s/2026-01-01-00:00:00_x y.mp4");
        assert!(url.starts_with("http://127.0.0.1:8080/vod/default/record/d/a/s/2026-01-01-00%3A00%3A00_x%20y.mp4?Expires="));
        let (path, query) = url
            .strip_prefix("http://127.0.0.1:8080")
            .unwrap()
            .split_once('?')
            .unwrap();
        let (bucket, object) = split_path(path).unwrap();
        assert_eq!(object, "record/d/a/s/2026-01-01-00:00:00_x y.mp4");
        let expires = query_param(query, "Expires");
        let signature = query_param(query, "Signature");
        let now = unix_now();
        assert!(s.verify(&bucket, &object, expires, signature, now).is_ok());
        assert_eq!(
            s.verify(&bucket, "record/other.mp4", expires, signature, now),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            s.verify("other", &object, expires, signature, now),
            Err(UrlError::BadSignature)
        );
        let later = Some("99999999999");
        assert_eq!(
            s.verify(&bucket, &object, later, signature, now),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            s.verify(&bucket, &object, expires, signature, now + 61),
            Err(UrlError::Expired)
        );
        assert_eq!(
            s.verify(&bucket, &object, None, signature, now),
            Err(UrlError::Missing)
        );
        let other = VodSigner::new(b"other", "http://x", Duration::from_secs(60)).unwrap();
        assert_eq!(
            other.verify(&bucket, &object, expires, signature, now),
            Err(UrlError::BadSignature)
        );
    }

    #[test]
    fn paths_that_leave_the_bucket_are_refused() {
        assert!(split_path("/vod/b/a/../../x").is_none());
        assert!(split_path("/vod/b/%2e%2e/x").is_none());
        assert!(split_path("/vod/../x").is_none());
        assert!(split_path("/vod/b").is_none());
        assert_eq!(
            split_path("/vod/b/a%2Fb.mp4"),
            Some(("b".into(), "a/b.mp4".into()))
        );
    }

    #[test]
    fn playlists_get_signed_segment_uris() {
        let s = signer();
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"1_0_init.mp4\"\n#EXTINF:4.000,\n1_0.m4s\n#EXTINF:4.0,\n../t/1_1.m4s\n../../../../escape.ts\n#EXT-X-ENDLIST\n";
        let out = s.sign_playlist("b", "r/a/s/x.cmaf.m3u8", text, 100);
        let lines: Vec<&str> = out.lines().collect();
        let sig = |object: &str| s.signature("b", object, 100);
        assert_eq!(
            lines[1],
            format!(
                "#EXT-X-MAP:URI=\"1_0_init.mp4?Expires=100&Signature={}\"",
                sig("r/a/s/1_0_init.mp4")
            )
        );
        assert_eq!(
            lines[3],
            format!("1_0.m4s?Expires=100&Signature={}", sig("r/a/s/1_0.m4s"))
        );
        assert_eq!(
            lines[5],
            format!(
                "../t/1_1.m4s?Expires=100&Signature={}",
                sig("r/a/t/1_1.m4s")
            )
        );
        assert!(!out.contains("escape"));
        assert!(out.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            parse_range(&m)
        };
        assert_eq!(parse_range(&HeaderMap::new()), Ok(None));
        assert_eq!(
            h("bytes=0-99"),
            Ok(Some(ByteRange::From {
                start: 0,
                end: Some(100)
            }))
        );
        assert_eq!(
            h("bytes=5-"),
            Ok(Some(ByteRange::From {
                start: 5,
                end: None
            }))
        );
        assert_eq!(h("bytes=-10"), Ok(Some(ByteRange::Suffix(10))));
        assert_eq!(h("bytes=0-1,5-6"), Ok(None));
        assert_eq!(h("bytes=9-3"), Err(()));
        assert_eq!(h("items=0-1"), Err(()));
        assert_eq!(h("bytes=a-b"), Err(()));
    }
}
