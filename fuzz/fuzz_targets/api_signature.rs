//! The control API's signature inputs (`liverec_api::signature`): the ACS3 `Authorization`
//! header, the canonical request built from it, and the RPC v1 and ACS3 checks; and the
//! `auth_key` of signed publish URLs (`liverec_api::ingest_auth`).
//!
//! Input: UTF-8 lines — the `Authorization` header, then the secret, the method, the path,
//! one value per signed header, and a few more values used as an app, a stream name and an
//! `auth_key`.
//!
//! Invariants: a parsed header has what the verifier relies on (a key id, non-empty lower-case
//! signed headers within the limit, a signature) and prints back to the same header; a
//! signature verifies exactly when it is the right one; a URL signed with a key passes the
//! check with that key until it expires.

#![no_main]

use libfuzzer_sys::fuzz_target;
use liverec_api::auth::parse_timestamp;
use liverec_api::ingest_auth::{self, AuthKeys};
use liverec_api::signature::{
    ACS3_ALGORITHM, Acs3Request, MAX_SIGNED_HEADERS, acs3_canonical_request, acs3_signature,
    acs3_string_to_sign, acs3_verify, parse_acs3_authorization, rpc_v1_signature,
    rpc_v1_string_to_sign, rpc_v1_verify, sha256_hex,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or_default();
    let header = next();
    let secret = next();
    let method = next();
    let path = next();

    if let Ok(auth) = parse_acs3_authorization(header) {
        assert!(!auth.key_id.is_empty() && !auth.signature.is_empty());
        assert!(!auth.signed_headers.is_empty());
        assert!(auth.signed_headers.len() <= MAX_SIGNED_HEADERS);
        for name in &auth.signed_headers {
            assert!(!name.is_empty() && *name == name.to_ascii_lowercase());
        }
        let printed = format!(
            "{ACS3_ALGORITHM} Credential={},SignedHeaders={},Signature={}",
            auth.key_id,
            auth.signed_headers.join(";"),
            auth.signature
        );
        assert_eq!(parse_acs3_authorization(&printed).as_ref(), Ok(&auth));

        let headers: Vec<(String, String)> = auth
            .signed_headers
            .iter()
            .map(|name| (name.clone(), next().to_owned()))
            .collect();
        let query = [("Action".to_owned(), path.to_owned())];
        let body_sha256 = sha256_hex(secret.as_bytes());
        let canonical = acs3_canonical_request(&Acs3Request {
            method,
            path,
            query: &query,
            headers: &headers,
            body_sha256: &body_sha256,
        });
        let to_sign = acs3_string_to_sign(&canonical);
        let right = acs3_signature(secret, &to_sign);
        assert!(acs3_verify(secret, &to_sign, &right));
        assert_eq!(
            acs3_verify(secret, &to_sign, &auth.signature),
            auth.signature.eq_ignore_ascii_case(&right)
        );
    }

    let pairs = [("AccessKeyId", header), ("Signature", path)];
    let to_sign = rpc_v1_string_to_sign(method, pairs);
    let right = rpc_v1_signature(secret, &to_sign);
    assert!(rpc_v1_verify(secret, &to_sign, &right));
    assert_eq!(rpc_v1_verify(secret, &to_sign, path), path == right);
    let _ = parse_timestamp(method);

    let (app, stream, auth_key) = (next(), next(), next());
    let keys = AuthKeys {
        primary: secret.to_owned(),
        secondary: Some(header.to_owned()).filter(|k| !k.is_empty()),
        delta_secs: 1800,
    };
    let now = 1_700_000_000;
    let _ = ingest_auth::check(app, stream, Some(auth_key), &keys, now);
    let signed = ingest_auth::sign(app, stream, now - 60, auth_key, method, secret);
    let result = ingest_auth::check(app, stream, Some(&signed), &keys, now);
    if signed.len() <= 256 {
        assert_eq!(
            result,
            Ok(()),
            "a URL signed with the primary key is refused: {signed}"
        );
    }
});
