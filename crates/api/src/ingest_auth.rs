//! Alibaba's type-A URL signing of publish URLs (docs/API.md, "Ingest URL signing"; the domain
//! function `aliauth`). Pure: the caller passes the clock.
//!
//! `auth_key={timestamp}-{rand}-{uid}-{md5hash}`, where `md5hash` is the lowercase hex MD5 of
//! `/{AppName}/{StreamName}-{timestamp}-{rand}-{uid}-{PrivateKey}`; the URL is valid until
//! `timestamp + ali_auth_delta`. Either of two keys may sign, so keys can be rotated.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// The `aliauth` settings of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKeys {
    pub primary: String,
    /// The second key (rotation); `None` when only one is set.
    pub secondary: Option<String>,
    /// Seconds a signed URL stays valid after its timestamp (`ali_auth_delta`).
    pub delta_secs: u64,
}

/// Why a publish URL was refused. Never names a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the publish URL has no auth_key")]
    Missing,
    #[error("auth_key is malformed: expected timestamp-rand-uid-md5hash")]
    Malformed,
    #[error("auth_key expired {0} s ago")]
    Expired(u64),
    #[error("auth_key is not signed by this domain's keys")]
    WrongSignature,
}

/// Longest `auth_key` looked at (a timestamp, a UUID, a uid and a hash fit many times over).
const MAX_TOKEN_BYTES: usize = 256;

/// Checks the `auth_key` of a publish to `/{app}/{stream}` at Unix time `now`.
pub fn check(
    app: &str,
    stream: &str,
    auth_key: Option<&str>,
    keys: &AuthKeys,
    now: u64,
) -> Result<(), Refusal> {
    let token = auth_key.ok_or(Refusal::Missing)?;
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Malformed);
    }
    // `{timestamp}-{rand}-{uid}` is signed as it stands; only the hash is split off.
    let (signed, hash) = token.rsplit_once('-').ok_or(Refusal::Malformed)?;
    let mut parts = signed.splitn(3, '-');
    let (Some(timestamp), Some(_rand), Some(_uid)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let timestamp: u64 = match timestamp.parse() {
        Ok(t) if timestamp.bytes().all(|b| b.is_ascii_digit()) => t,
        _ => return Err(Refusal::Malformed),
    };
    let given = decode_hash(hash).ok_or(Refusal::Malformed)?;
    let valid_until = timestamp.saturating_add(keys.delta_secs);
    if now > valid_until {
        return Err(Refusal::Expired(now - valid_until));
    }
    let signed_by = |key: &str| -> bool {
        let digest = Md5::new()
            .chain_update(format!("/{app}/{stream}-{signed}-{key}"))
            .finalize();
        bool::from(digest.as_slice().ct_eq(&given))
    };
    // Both keys are always tried, so the time taken does not tell which one matched.
    let primary = signed_by(&keys.primary);
    let secondary = keys.secondary.as_deref().is_some_and(signed_by);
    if primary | secondary {
        Ok(())
    } else {
        Err(Refusal::WrongSignature)
    }
}

/// The 16 bytes of a 32-digit hex hash (either case), or `None`.
fn decode_hash(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Signs `/{app}/{stream}` as a publisher would (for tests, tools and docs).
pub fn sign(app: &str, stream: &str, timestamp: u64, rand: &str, uid: &str, key: &str) -> String {
    let hash = Md5::new()
        .chain_update(format!("/{app}/{stream}-{timestamp}-{rand}-{uid}-{key}"))
        .finalize();
    format!("{timestamp}-{rand}-{uid}-{}", hex::encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> AuthKeys {
        AuthKeys {
            primary: "aliyuncdnexp1234".into(),
            secondary: Some("rotatedKey5678".into()),
            delta_secs: 1800,
        }
    }

    #[test]
    fn the_documented_example_signs_as_alibaba_computes_it() {
        // Alibaba's type-A example, signing "/video/standard/1K.html-1444435200-0-0-aliyuncdnexp1234"
        // (the hash computed independently, with Python's hashlib).
        assert_eq!(
            sign(
                "video/standard",
                "1K.html",
                1_444_435_200,
                "0",
                "0",
                "aliyuncdnexp1234"
            ),
            "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f"
        );
        let token = "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f";
        assert_eq!(
            check(
                "video/standard",
                "1K.html",
                Some(token),
                &keys(),
                1_444_435_200
            ),
            Ok(())
        );
    }

    #[test]
    fn the_example_of_docs_api_md_holds() {
        assert_eq!(
            sign("live", "cam1", 1_765_000_000, "0", "0", "primaryKey1"),
            "1765000000-0-0-9dd44fb2fb9c4840d19ad7315285f94a"
        );
    }

    #[test]
    fn either_key_signs_until_the_delta_runs_out() {
        let k = keys();
        let now = 1_800_000_000;
        let by_primary = sign(
            "live",
            "s1",
            now,
            "477b3bbc253f467b8def6711128c7bec",
            "0",
            &k.primary,
        );
        let by_secondary = sign("live", "s1", now - 100, "0", "0", "rotatedKey5678");
        assert_eq!(check("live", "s1", Some(&by_primary), &k, now), Ok(()));
        assert_eq!(check("live", "s1", Some(&by_secondary), &k, now), Ok(()));
        assert_eq!(
            check("live", "s1", Some(&by_primary), &k, now + 1800),
            Ok(())
        );
        assert_eq!(
            check("live", "s1", Some(&by_primary), &k, now + 1805),
            Err(Refusal::Expired(5))
        );
        let one_key = AuthKeys {
            secondary: None,
            ..k.clone()
        };
        assert_eq!(
            check("live", "s1", Some(&by_secondary), &one_key, now),
            Err(Refusal::WrongSignature)
        );
    }

    #[test]
    fn a_token_for_another_stream_or_key_is_refused() {
        let k = keys();
        let now = 1_800_000_000;
        let token = sign("live", "s1", now, "0", "0", &k.primary);
        assert_eq!(
            check("live", "s2", Some(&token), &k, now),
            Err(Refusal::WrongSignature)
        );
        assert_eq!(
            check("other", "s1", Some(&token), &k, now),
            Err(Refusal::WrongSignature)
        );
        let forged = sign("live", "s1", now, "0", "0", "notTheKey123");
        assert_eq!(
            check("live", "s1", Some(&forged), &k, now),
            Err(Refusal::WrongSignature)
        );
        // The hash is compared whatever its case.
        let upper = token.to_uppercase();
        assert_eq!(check("live", "s1", Some(&upper), &k, now), Ok(()));
    }

    #[test]
    fn malformed_tokens_say_so() {
        let k = keys();
        for bad in [
            "",
            "1800000000",
            "1800000000-0-0",
            "x800000000-0-0-80cd3862d699b7118eed99103f2a3a4f",
            "+800000000-0-0-80cd3862d699b7118eed99103f2a3a4f",
            "1800000000-0-0-80cd3862d699b7118eed99103f2a3a4",
            "1800000000-0-0-80cd3862d699b7118eed99103f2a3a4g",
            "1800000000-0-0-80cd3862d699b7118eed99103f2a3a4f0",
            "99999999999999999999999-0-0-80cd3862d699b7118eed99103f2a3a4f",
        ] {
            assert_eq!(
                check("live", "s1", Some(bad), &k, 0),
                Err(Refusal::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(check("live", "s1", None, &k, 0), Err(Refusal::Missing));
        let long = format!("1-0-0-{}", "a".repeat(300));
        assert_eq!(
            check("live", "s1", Some(&long), &k, 0),
            Err(Refusal::Malformed)
        );
    }

    proptest! {
        #[test]
        fn what_is_signed_is_accepted_and_nothing_else_panics(
            app in "[a-z0-9_.-]{1,20}",
            stream in "[a-z0-9_.-]{1,40}",
            t in 0u64..4_000_000_000,
            rand in "[a-f0-9]{0,32}",
            junk in ".{0,80}",
        ) {
            let k = keys();
            let token = sign(&app, &stream, t, &rand, "0", &k.primary);
            prop_assert_eq!(check(&app, &stream, Some(&token), &k, t), Ok(()));
            let _ = check(&app, &stream, Some(&junk), &k, t);
        }
    }
}
