//! Who is calling: both signature schemes checked against the access key's secret, the
//! timestamp window, and the nonce (kept in the catalog until the request's stamp has
//! expired, so a restart opens no replay window). Secrets are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use liverec_catalog::{AccessKey, Catalog, CatalogError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::signature::{self, Acs3Authorization, Acs3Request};

/// Longest AccessKeyId looked up; real ones are 24 bytes.
pub const MAX_KEY_ID_LEN: usize = 128;
/// Longest signature nonce accepted; the SDKs send 32 hex digits or a UUID.
pub const MAX_NONCE_LEN: usize = 128;
/// Headers an ACS3 signature must cover, besides every other `x-acs-*` header sent.
pub const ACS3_REQUIRED_SIGNED: &[&str] = &[
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// Keys remembered at most; past this the cache starts over (only ids that exist are kept,
/// so this is only reached by an operator with that many keys).
const MAX_CACHED_KEYS: usize = 4096;

/// Access keys as recently read from the catalog, so a signed request costs no key lookup.
/// A key disabled or re-enabled (`liverec keys disable|enable`, possibly from another
/// process) takes effect once its entry is older than the TTL. Ids that do not exist are
/// cached the same way, so a flood of requests naming made-up keys costs no database reads
/// either; a key created a moment ago works within the TTL.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, CachedKey>>,
}

#[derive(Debug)]
struct CachedKey {
    fetched: Instant,
    /// `None`: no such key.
    key: Option<Arc<AccessKey>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key `id`, from the cache if fetched within the TTL, else from the catalog.
    pub async fn get(
        &self,
        catalog: &Catalog,
        id: &str,
    ) -> Result<Option<Arc<AccessKey>>, CatalogError> {
        let now = Instant::now();
        if let Some(hit) = self.lock().get(id)
            && now.duration_since(hit.fetched) < self.ttl
        {
            return Ok(hit.key.clone());
        }
        let fetched = catalog.key(id).await?.map(Arc::new);
        let mut entries = self.lock();
        if self.ttl.is_zero() {
            entries.remove(id);
        } else {
            if entries.len() >= MAX_CACHED_KEYS && !entries.contains_key(id) {
                entries.clear();
            }
            let key = fetched.clone();
            entries.insert(id.to_owned(), CachedKey { fetched: now, key });
        }
        Ok(fetched)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedKey>> {
        // The map holds no invariant a panicking holder could break.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a request is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// Current SDKs: `Authorization: ACS3-HMAC-SHA256 …` with `x-acs-*` headers.
    Acs3(Acs3Authorization),
    /// Older SDKs: `Signature`, `AccessKeyId`, `Timestamp` … as parameters.
    RpcV1,
}

/// Tells the scheme from the `Authorization` header.
pub fn scheme(headers: &HeaderMap) -> Result<Scheme, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(Scheme::RpcV1);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::IncompleteSignature("Authorization is not ASCII"))?;
    signature::parse_acs3_authorization(value)
        .map(Scheme::Acs3)
        .map_err(|_| ApiError::IncompleteSignature("Authorization is malformed"))
}

/// One header's value as text; repeated headers joined with `,`.
pub fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for v in values {
        let text = std::str::from_utf8(v.as_bytes())
            .map_err(|_| ApiError::IncompleteSignature("a signed header is not UTF-8"))?;
        parts.push(text.to_owned());
    }
    Ok(Some(parts.join(",")))
}

/// What authentication needs of a request.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub params: &'a Params,
    pub body: &'a [u8],
    pub now: OffsetDateTime,
}

/// A request's claimed identity and freshness, before the secret is checked.
struct Claim {
    key_id: String,
    nonce: String,
    stamped: OffsetDateTime,
}

/// A request whose signature and timestamp check out; its nonce is not spent yet (the caller
/// throttles first, so a throttled request leaves no nonce behind).
#[derive(Debug)]
pub struct Verified {
    pub key_id: String,
    nonce: String,
    /// Unix ms until which the nonce must be remembered.
    nonce_expires_at: i64,
}

impl Verified {
    /// Records the nonce; `SignatureNonceUsed` if it was used before.
    pub async fn spend_nonce(&self, state: &ApiState) -> Result<(), ApiError> {
        if state
            .catalog
            .use_nonce(&self.key_id, &self.nonce, self.nonce_expires_at)
            .await?
        {
            Ok(())
        } else {
            Err(ApiError::NonceUsed)
        }
    }
}

/// Checks the signature and timestamp; the nonce is spent by [`Verified::spend_nonce`].
pub async fn authenticate(
    state: &ApiState,
    keys: &KeyCache,
    scheme: &Scheme,
    req: &Incoming<'_>,
) -> Result<Verified, ApiError> {
    let window = state.settings.timestamp_window;
    let claim = match scheme {
        Scheme::Acs3(auth) => acs3_claim(auth, req)?,
        Scheme::RpcV1 => v1_claim(req.params)?,
    };
    check_window(claim.stamped, req.now, window)?;
    if claim.key_id.len() > MAX_KEY_ID_LEN {
        return Err(ApiError::AccessKeyNotFound);
    }
    let key = keys
        .get(&state.catalog, &claim.key_id)
        .await?
        .filter(|k| k.enabled)
        .ok_or(ApiError::AccessKeyNotFound)?;
    match scheme {
        Scheme::Acs3(auth) => verify_acs3(auth, req, &key.secret)?,
        Scheme::RpcV1 => verify_v1(req, &key.secret)?,
    }
    Ok(Verified {
        nonce_expires_at: unix_ms(claim.stamped) + millis(window),
        key_id: claim.key_id,
        nonce: claim.nonce,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// ISO 8601 / RFC 3339 (`2026-11-25T18:37:24Z`, fractions and offsets allowed).
pub fn parse_timestamp(s: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| ApiError::TimestampFormat)
}

fn check_window(
    stamped: OffsetDateTime,
    now: OffsetDateTime,
    window: Duration,
) -> Result<(), ApiError> {
    let skew = (now - stamped).unsigned_abs();
    if skew > window {
        return Err(ApiError::TimestampExpired);
    }
    Ok(())
}

fn nonce(value: Option<&str>) -> Result<String, ApiError> {
    match value {
        Some(n) if !n.is_empty() && n.len() <= MAX_NONCE_LEN => Ok(n.to_owned()),
        _ => Err(ApiError::IncompleteSignature(
            "signature nonce missing or too long",
        )),
    }
}

fn v1_claim(params: &Params) -> Result<Claim, ApiError> {
    if params.optional("Signature").is_none() {
        return Err(ApiError::IncompleteSignature("Signature missing"));
    }
    if params.get("SignatureMethod") != Some("HMAC-SHA1") {
        return Err(ApiError::IncompleteSignature(
            "SignatureMethod is not HMAC-SHA1",
        ));
    }
    if params.get("SignatureVersion") != Some("1.0") {
        return Err(ApiError::IncompleteSignature("SignatureVersion is not 1.0"));
    }
    let key_id = params
        .optional("AccessKeyId")
        .ok_or(ApiError::IncompleteSignature("AccessKeyId missing"))?
        .to_owned();
    let nonce = nonce(params.get("SignatureNonce"))?;
    let stamped = parse_timestamp(params.required("Timestamp")?)?;
    Ok(Claim {
        key_id,
        nonce,
        stamped,
    })
}

fn verify_v1(req: &Incoming<'_>, secret: &str) -> Result<(), ApiError> {
    let given = req.params.optional("Signature").unwrap_or_default();
    let sts = signature::rpc_v1_string_to_sign(req.method, req.params.pairs());
    if signature::rpc_v1_verify(secret, &sts, given) {
        Ok(())
    } else {
        Err(ApiError::SignatureMismatch {
            string_to_sign: sts,
        })
    }
}

fn acs3_claim(auth: &Acs3Authorization, req: &Incoming<'_>) -> Result<Claim, ApiError> {
    for required in ACS3_REQUIRED_SIGNED {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(ApiError::IncompleteSignature(
                "a required header is not signed",
            ));
        }
    }
    for name in req.headers.keys() {
        if name.as_str().starts_with("x-acs-")
            && !auth.signed_headers.iter().any(|h| h == name.as_str())
        {
            return Err(ApiError::IncompleteSignature(
                "an x-acs-* header is not signed",
            ));
        }
    }
    let date = header_text(req.headers, "x-acs-date")?
        .ok_or(ApiError::IncompleteSignature("x-acs-date missing"))?;
    let stamped = parse_timestamp(&date)?;
    let nonce = nonce(header_text(req.headers, "x-acs-signature-nonce")?.as_deref())?;
    Ok(Claim {
        key_id: auth.key_id.clone(),
        nonce,
        stamped,
    })
}

fn verify_acs3(auth: &Acs3Authorization, req: &Incoming<'_>, secret: &str) -> Result<(), ApiError> {
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = header_text(req.headers, name)?
            .ok_or(ApiError::IncompleteSignature("a signed header is missing"))?;
        headers.push((name.clone(), value));
    }
    let body_sha256 = signature::sha256_hex(req.body);
    let req_for_sig = Acs3Request {
        method: req.method,
        path: req.path,
        query: req.params.query_pairs(),
        headers: &headers,
        body_sha256: &body_sha256,
    };
    let sts = signature::acs3_string_to_sign(&signature::acs3_canonical_request(&req_for_sig));
    let claimed_body = header_text(req.headers, "x-acs-content-sha256")?.unwrap_or_default();
    let body_ok = claimed_body.eq_ignore_ascii_case(&body_sha256);
    // Both checks run, so timing says nothing about which failed.
    let sig_ok = signature::acs3_verify(secret, &sts, &auth.signature);
    if body_ok && sig_ok {
        Ok(())
    } else {
        Err(ApiError::SignatureMismatch {
            string_to_sign: sts,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn timestamps() {
        assert!(parse_timestamp("2026-11-25T18:37:24Z").is_ok());
        assert!(parse_timestamp("2026-11-25T18:37:24.123Z").is_ok());
        assert!(parse_timestamp("2026-11-25T18:37:24+08:00").is_ok());
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25 18:37:24",
            "yesterday",
            "2026-13-25T18:37:24Z",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(ApiError::TimestampFormat),
                "{bad}"
            );
        }
        let now = parse_timestamp("2026-11-25T18:37:24Z").unwrap();
        let window = Duration::from_secs(900);
        let early = parse_timestamp("2026-11-25T18:22:24Z").unwrap();
        let late = parse_timestamp("2026-11-25T18:52:24Z").unwrap();
        assert!(check_window(early, now, window).is_ok());
        assert!(check_window(late, now, window).is_ok());
        let too_early = parse_timestamp("2026-11-25T18:22:23Z").unwrap();
        let too_late = parse_timestamp("2026-11-25T18:52:25Z").unwrap();
        assert_eq!(
            check_window(too_early, now, window),
            Err(ApiError::TimestampExpired)
        );
        assert_eq!(
            check_window(too_late, now, window),
            Err(ApiError::TimestampExpired)
        );
    }

    #[test]
    fn scheme_detection() {
        let mut h = HeaderMap::new();
        assert_eq!(scheme(&h).unwrap(), Scheme::RpcV1);
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=00",
            ),
        );
        assert!(matches!(scheme(&h).unwrap(), Scheme::Acs3(_)));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert!(matches!(scheme(&h), Err(ApiError::IncompleteSignature(_))));
        h.insert(
            "authorization",
            HeaderValue::from_bytes(b"ACS3-HMAC-SHA256 \xff").unwrap(),
        );
        assert!(matches!(scheme(&h), Err(ApiError::IncompleteSignature(_))));
    }

    #[test]
    fn v1_claim_requires_every_signature_field() {
        let full = "AccessKeyId=AK&Signature=x&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2026-11-25T18:37:24Z";
        let p = Params::parse(full.as_bytes(), None, 4096).unwrap();
        let claim = v1_claim(&p).unwrap();
        assert_eq!(claim.key_id, "AK");
        assert_eq!(claim.nonce, "n");
        for (drop, expected) in [
            ("AccessKeyId", "IncompleteSignature"),
            ("Signature", "IncompleteSignature"),
            ("SignatureMethod", "IncompleteSignature"),
            ("SignatureVersion", "IncompleteSignature"),
            ("SignatureNonce", "IncompleteSignature"),
            ("Timestamp", "MissingTimestamp"),
        ] {
            let q: Vec<&str> = full
                .split('&')
                .filter(|kv| kv.split('=').next() != Some(drop))
                .collect();
            let p = Params::parse(q.join("&").as_bytes(), None, 4096).unwrap();
            let err = v1_claim(&p).err().unwrap();
            assert_eq!(err.code(), expected, "{drop}");
        }
        let p = Params::parse(
            full.replace("HMAC-SHA1", "HMAC-SHA256").as_bytes(),
            None,
            4096,
        )
        .unwrap();
        assert!(matches!(
            v1_claim(&p),
            Err(ApiError::IncompleteSignature(_))
        ));
        let p = Params::parse(
            full.replace("Timestamp=2026", "Timestamp=x2026").as_bytes(),
            None,
            4096,
        )
        .unwrap();
        assert!(matches!(v1_claim(&p), Err(ApiError::TimestampFormat)));
        let long_nonce = full.replace(
            "SignatureNonce=n",
            &format!("SignatureNonce={}", "n".repeat(MAX_NONCE_LEN + 1)),
        );
        let p = Params::parse(long_nonce.as_bytes(), None, 4096).unwrap();
        assert!(matches!(
            v1_claim(&p),
            Err(ApiError::IncompleteSignature(_))
        ));
    }
}
