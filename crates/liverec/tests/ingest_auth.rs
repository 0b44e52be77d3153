//! Signed publish URLs (docs/API.md "Ingest URL signing"): the `aliauth` domain function set,
//! read and removed through the API, and real ffmpeg publishes refused or accepted by it.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use liverec_api::ingest_auth::sign;
use support::*;

const DOMAIN: &str = "live.liverec.local";
const KEY1: &str = "primaryKey123";
const KEY2: &str = "secondKey456";
const T: Duration = Duration::from_secs(60);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn functions(args: &[(&str, &str)]) -> String {
    let args: Vec<serde_json::Value> = args
        .iter()
        .map(|(n, v)| serde_json::json!({"argName": n, "argValue": v}))
        .collect();
    serde_json::json!([{"functionName": "aliauth", "functionArgs": args}]).to_string()
}

#[test]
fn a_domain_with_aliauth_takes_only_publishes_signed_by_one_of_its_keys() {
    let server = Server::start_with_env(
        "[record]\ndelay_secs = 1\nformats = [{ format = \"mp4\" }]\n",
        &api::key_env(),
    );
    let set = functions(&[
        ("auth_type", "type_a"),
        ("auth_key1", KEY1),
        ("auth_key2", KEY2),
        ("ali_auth_delta", "1800"),
    ]);
    api::ok(
        server.api_addr(),
        "BatchSetLiveDomainConfigs",
        &[("DomainNames", DOMAIN), ("Functions", &set)],
    );
    let described = api::ok(
        server.api_addr(),
        "DescribeLiveDomainConfigs",
        &[("DomainName", DOMAIN), ("FunctionNames", "aliauth")],
    );
    let config = &described["DomainConfigs"]["DomainConfig"][0];
    assert_eq!(config["FunctionName"], "aliauth", "{described}");
    assert!(config["ConfigId"].as_str().is_some_and(|id| !id.is_empty()));
    let args = config["FunctionArgs"]["FunctionArg"].as_array().unwrap();
    assert!(
        args.iter()
            .any(|a| a["ArgName"] == "auth_key2" && a["ArgValue"] == KEY2)
    );

    let asset = asset("h264_aac.flv");
    let publish_with = |stream: &str, token: Option<String>| {
        let mut url = server.url("live", stream);
        if let Some(token) = token {
            url = format!("{url}?auth_key={token}");
        }
        publish(Path::new("ffmpeg"), &asset, &url)
    };
    let t = now();
    // Refused: unsigned, expired, signed for another stream, signed with another key.
    assert!(!publish_with("nosig", None).success());
    assert!(!publish_with("old", Some(sign("live", "old", t - 4000, "0", "0", KEY1))).success());
    assert!(!publish_with("moved", Some(sign("live", "other", t, "0", "0", KEY1))).success());
    assert!(
        !publish_with(
            "forged",
            Some(sign("live", "forged", t, "0", "0", "guessedKey1"))
        )
        .success()
    );
    let reasons = server.log_lines(&["publish refused: URL signing"]);
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    for (line, reason) in reasons.iter().zip([
        "no auth_key",
        "expired",
        "not signed by this domain's keys",
        "not signed by this domain's keys",
    ]) {
        assert!(line.contains(reason), "{line}");
        assert!(
            !line.contains(KEY1) && !line.contains(KEY2),
            "a key in the log: {line}"
        );
    }
    // Accepted: either key, and the recording is made.
    assert!(publish_with("one", Some(sign("live", "one", t, "477b3bbc", "0", KEY1))).success());
    assert!(publish_with("two", Some(sign("live", "two", t, "0", "0", KEY2))).success());
    server.wait_for_lines(&["recording file complete", "live/two"], 1, T);
    assert_eq!(server.recorded_for("live", "one", "mp4").len(), 1);
    assert!(server.recorded_for("live", "nosig", "mp4").is_empty());

    // Without the function, publishes need no signature again.
    api::ok(
        server.api_addr(),
        "BatchDeleteLiveDomainConfigs",
        &[("DomainNames", DOMAIN), ("FunctionNames", "aliauth")],
    );
    let described = api::ok(
        server.api_addr(),
        "DescribeLiveDomainConfigs",
        &[("DomainName", DOMAIN)],
    );
    assert!(
        described["DomainConfigs"]["DomainConfig"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{described}"
    );
    assert!(publish_with("open", None).success());
}

#[test]
fn bad_domain_functions_are_refused() {
    let server = Server::start_with_env("", &api::key_env());
    for functions in [
        functions(&[("auth_type", "type_b"), ("auth_key1", KEY1)]),
        functions(&[("auth_type", "type_a"), ("auth_key1", "short")]),
        functions(&[("auth_type", "type_a")]),
        r#"[{"functionName":"referer_white_list_set","functionArgs":[]}]"#.to_owned(),
        "not json".to_owned(),
    ] {
        let answer = api::call(
            server.api_addr(),
            "BatchSetLiveDomainConfigs",
            &[("DomainNames", DOMAIN), ("Functions", &functions)],
        );
        assert_eq!(answer.status, 400, "{functions}: {answer:?}");
        assert_eq!(answer.body["Code"], "InvalidParameter", "{functions}");
    }
}
