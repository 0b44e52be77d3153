//! The control API's request parameters (`liverec_api::params::Params`): a query string and
//! a form body, then every action's parameter parsing and the RPC v1 / ACS3 canonical query.
//!
//! Input: the query, then optionally a NUL byte and the form body.
//!
//! Invariants: every parsed pair is found by its name; `Foo.N` lists only see their own
//! prefix; the canonical query (what a signature covers) parses back to exactly the signed
//! pairs, so two different requests never share a signature.

#![no_main]

use libfuzzer_sys::fuzz_target;
use liverec_api::Action;
use liverec_api::actions::parse_only;
use liverec_api::params::{DEFAULT_MAX_REQUEST_BYTES, Params};
use liverec_api::signature::{canonical_query, rpc_v1_string_to_sign};

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], data.get(nul + 1..)),
        None => (data, None),
    };
    let Ok(params) = Params::parse(query, body, DEFAULT_MAX_REQUEST_BYTES) else {
        return;
    };
    for (name, value) in params.pairs() {
        assert_eq!(params.get(name), Some(value));
        if let Some((prefix, _)) = name.split_once('.') {
            assert!(params.has_prefix(prefix));
            let _ = params.list(prefix);
            let _ = params.objects(prefix);
        }
    }
    for &action in Action::ALL {
        let _ = parse_only(action, &params);
    }

    let _ = rpc_v1_string_to_sign("POST", params.pairs());
    let signed = params.query_pairs();
    let canonical = canonical_query(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert!(
        canonical
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)),
        "canonical query has unescaped characters: {canonical}"
    );
    let reparsed = match Params::parse(canonical.as_bytes(), None, usize::MAX) {
        Ok(reparsed) => reparsed,
        Err(err) => panic!("the canonical query does not parse: {err}"),
    };
    let mut expected = signed.to_vec();
    expected.sort();
    let mut got = reparsed.query_pairs().to_vec();
    got.sort();
    assert_eq!(got, expected, "the canonical query is not what was signed");
});
