//! Transport, signatures, timestamps, nonces, limits and throttling, through the router.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use liverec_api::ApiSettings;

use axum::body::Body;
use axum::http::{Method, Request};
use support::*;

const ONLINE: &str = "DescribeLiveStreamsOnlineList";
const DOMAIN: (&str, &str) = ("DomainName", "example.com");
/// A short key cache, so the test of disabling a key need not wait the default second.
const KEY_CACHE_TTL: Duration = Duration::from_millis(200);

#[tokio::test]
async fn older_sdk_get_post_and_form_body_are_accepted() {
    let api = start().await;
    let v = send(&api.router, V1::new(ONLINE, &[DOMAIN]).request())
        .await
        .assert_ok();
    assert_eq!(v["TotalNum"], 0);
    let mut get = V1::new(ONLINE, &[DOMAIN]);
    get.method = Method::GET;
    send(&api.router, get.request()).await.assert_ok();
    // The older Node client: everything in a form body, no SignatureType.
    let mut form = V1::new(ONLINE, &[DOMAIN]).remove("SignatureType");
    form.form = true;
    send(&api.router, form.request()).await.assert_ok();
}

#[tokio::test]
async fn current_sdk_signatures_of_python_and_node_are_accepted() {
    let api = start().await;
    let python = Acs3::new(ONLINE, &[DOMAIN, ("RegionId", "cn-shanghai")]);
    send(&api.router, python.request()).await.assert_ok();
    // Node signs only host;x-acs-*.
    let mut node = Acs3::new(ONLINE, &[DOMAIN]);
    node.signed = Some(
        node.headers
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k == "host" || k.starts_with("x-acs-"))
            .collect(),
    );
    send(&api.router, node.request()).await.assert_ok();
}

#[tokio::test]
async fn spaces_sent_as_plus_or_percent_20_verify() {
    let api = start().await;
    // Both clients sign `%20`; the current one sends `+`, the older one `%20`.
    let acs3 = Acs3::new(ONLINE, &[DOMAIN, ("StreamName", "a b")]);
    send(&api.router, acs3.request()).await.assert_ok();
    let v1 = V1::new(ONLINE, &[DOMAIN, ("StreamName", "a b")]);
    send(&api.router, v1.request()).await.assert_ok();
}

#[tokio::test]
async fn wrong_secret_gives_the_string_to_sign_the_older_sdk_compares() {
    let api = start().await;
    let mut v1 = V1::new(ONLINE, &[DOMAIN]);
    v1.secret = "wrong".into();
    let r = send(&api.router, v1.request()).await;
    r.assert_error(400, "SignatureDoesNotMatch");
    let message = r.message();
    assert!(message.starts_with(
        "Specified signature does not match our calculation. server string to sign is:"
    ));
    // aliyunsdkcore: message.split(':')[1] == its own string to sign → "wrong secret".
    assert_eq!(
        message.split(':').nth(1),
        Some(v1.string_to_sign().as_str())
    );

    let mut acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    acs3.secret = "wrong".into();
    send(&api.router, acs3.request())
        .await
        .assert_error(400, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn tampered_requests_are_refused() {
    let api = start().await;
    // v1: a parameter changed after signing.
    let v1 = V1::new(ONLINE, &[DOMAIN]);
    let mut tampered = v1.signed();
    tampered.push(("AppName".into(), "other".into()));
    send(&api.router, v1.request_from(&tampered))
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    let mut tampered = v1.signed();
    for (k, v) in &mut tampered {
        if k == "DomainName" {
            *v = "evil.com".into();
        }
    }
    send(&api.router, v1.request_from(&tampered))
        .await
        .assert_error(400, "SignatureDoesNotMatch");

    // ACS3: query changed after signing.
    let acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    let (signed, sig) = acs3.signature();
    let auth = format!("ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={signed},Signature={sig}");
    let query = owned(&[("DomainName", "evil.com")]);
    send(&api.router, acs3.request_with(&query, &auth))
        .await
        .assert_error(400, "SignatureDoesNotMatch");

    // ACS3: a body that does not match x-acs-content-sha256.
    let mut body_tampered = Acs3::new(ONLINE, &[DOMAIN]).with_body(b"a=1".to_vec());
    body_tampered.body = b"a=2".to_vec();
    send(&api.router, body_tampered.request())
        .await
        .assert_error(400, "SignatureDoesNotMatch");

    // ACS3: a signed header changed after signing.
    let acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    let (signed, sig) = acs3.signature();
    let auth = format!("ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={signed},Signature={sig}");
    let moved = acs3.clone().header("host", "elsewhere:1");
    send(&api.router, moved.request_with(&moved.query, &auth))
        .await
        .assert_error(400, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn incomplete_signatures() {
    let api = start().await;
    for drop in [
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "AccessKeyId",
    ] {
        let v1 = V1::new(ONLINE, &[DOMAIN]);
        let params: Vec<_> = v1.signed().into_iter().filter(|(k, _)| k != drop).collect();
        send(&api.router, v1.request_from(&params))
            .await
            .assert_error(400, "IncompleteSignature");
    }
    let v1 = V1::new(ONLINE, &[DOMAIN]).set("SignatureMethod", "HMAC-SHA256");
    send(&api.router, v1.request())
        .await
        .assert_error(400, "IncompleteSignature");

    let acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    for auth in [
        "ACS3-HMAC-SHA256 Credential=testAK",
        "ACS3-HMAC-SM3 Credential=testAK,SignedHeaders=host,Signature=00",
        "Bearer x",
    ] {
        send(&api.router, acs3.request_with(&acs3.query, auth))
            .await
            .assert_error(400, "IncompleteSignature");
    }
    // An x-acs-* header left out of the signature.
    let mut unsigned = Acs3::new(ONLINE, &[DOMAIN]).header("x-acs-extra", "1");
    unsigned.signed = Some(
        unsigned
            .headers
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "x-acs-extra")
            .collect(),
    );
    send(&api.router, unsigned.request())
        .await
        .assert_error(400, "IncompleteSignature");
    // The date must be signed.
    let mut no_date = Acs3::new(ONLINE, &[DOMAIN]);
    no_date.signed = Some(vec![
        "host".into(),
        "x-acs-action".into(),
        "x-acs-version".into(),
    ]);
    send(&api.router, no_date.request())
        .await
        .assert_error(400, "IncompleteSignature");
}

#[tokio::test]
async fn unknown_or_disabled_access_keys() {
    let api = start_with(ApiSettings {
        key_cache_ttl: KEY_CACHE_TTL,
        ..settings()
    })
    .await;
    let v1 = V1::new(ONLINE, &[DOMAIN]).set("AccessKeyId", "nobody");
    send(&api.router, v1.request())
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
    let mut acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    acs3.key_id = "nobody".into();
    send(&api.router, acs3.request())
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
    let r = send(
        &api.router,
        V1::new(ONLINE, &[DOMAIN])
            .set("AccessKeyId", &"k".repeat(500))
            .request(),
    )
    .await;
    r.assert_error(404, "InvalidAccessKeyId.NotFound");

    // The key was looked up (and cached) by the requests above; a change in the catalog
    // takes effect once the cached entry is older than the TTL.
    assert!(api.catalog.set_key_enabled(AK, false).await.unwrap());
    tokio::time::sleep(KEY_CACHE_TTL).await;
    send(&api.router, V1::new(ONLINE, &[DOMAIN]).request())
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
    assert!(api.catalog.set_key_enabled(AK, true).await.unwrap());
    tokio::time::sleep(KEY_CACHE_TTL).await;
    send(&api.router, V1::new(ONLINE, &[DOMAIN]).request())
        .await
        .assert_ok();
}

#[tokio::test]
async fn without_a_key_cache_a_disabled_key_is_refused_at_once() {
    let api = start_with(ApiSettings {
        key_cache_ttl: Duration::ZERO,
        ..settings()
    })
    .await;
    send(&api.router, V1::new(ONLINE, &[DOMAIN]).request())
        .await
        .assert_ok();
    assert!(api.catalog.set_key_enabled(AK, false).await.unwrap());
    send(&api.router, V1::new(ONLINE, &[DOMAIN]).request())
        .await
        .assert_error(404, "InvalidAccessKeyId.NotFound");
}

#[tokio::test]
async fn timestamps_outside_the_window_or_malformed() {
    let api = start().await;
    for offset in [time::Duration::minutes(-16), time::Duration::minutes(16)] {
        let v1 = V1::new(ONLINE, &[DOMAIN]).set("Timestamp", &utc_stamp(offset));
        send(&api.router, v1.request())
            .await
            .assert_error(400, "InvalidTimeStamp.Expired");
        let acs3 = Acs3::new(ONLINE, &[DOMAIN]).header("x-acs-date", &utc_stamp(offset));
        send(&api.router, acs3.request())
            .await
            .assert_error(400, "InvalidTimeStamp.Expired");
    }
    for offset in [time::Duration::minutes(-14), time::Duration::minutes(14)] {
        let v1 = V1::new(ONLINE, &[DOMAIN]).set("Timestamp", &utc_stamp(offset));
        send(&api.router, v1.request()).await.assert_ok();
    }
    let v1 = V1::new(ONLINE, &[DOMAIN]).set("Timestamp", "2026-11-25 18:00:00");
    send(&api.router, v1.request())
        .await
        .assert_error(400, "InvalidTimeStamp.Format");
    let acs3 = Acs3::new(ONLINE, &[DOMAIN]).header("x-acs-date", "yesterday");
    send(&api.router, acs3.request())
        .await
        .assert_error(400, "InvalidTimeStamp.Format");
    let v1 = V1::new(ONLINE, &[DOMAIN]).remove("Timestamp");
    send(&api.router, v1.request())
        .await
        .assert_error(400, "MissingTimestamp");
}

#[tokio::test]
async fn replayed_nonces_are_refused() {
    let api = start().await;
    let v1 = V1::new(ONLINE, &[DOMAIN]);
    let request = v1.signed();
    send(&api.router, v1.request_from(&request))
        .await
        .assert_ok();
    send(&api.router, v1.request_from(&request))
        .await
        .assert_error(400, "SignatureNonceUsed");
    // The same nonce with a fresh signature (e.g. other parameters) is still a replay.
    let again = V1::new(ONLINE, &[DOMAIN, ("AppName", "x")]).set(
        "SignatureNonce",
        &v1.params
            .iter()
            .find(|(k, _)| k == "SignatureNonce")
            .unwrap()
            .1,
    );
    send(&api.router, again.request())
        .await
        .assert_error(400, "SignatureNonceUsed");

    let acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    send(&api.router, acs3.request()).await.assert_ok();
    send(&api.router, acs3.request())
        .await
        .assert_error(400, "SignatureNonceUsed");
}

#[tokio::test]
async fn a_failed_signature_does_not_burn_the_nonce() {
    let api = start().await;
    let mut bad = V1::new(ONLINE, &[DOMAIN]);
    bad.secret = "wrong".into();
    send(&api.router, bad.request())
        .await
        .assert_error(400, "SignatureDoesNotMatch");
    let mut good = bad.clone();
    good.secret = SK.into();
    send(&api.router, good.request()).await.assert_ok();
}

#[tokio::test]
async fn unknown_action_version_path_and_method() {
    let api = start().await;
    send(&api.router, V1::new("DescribeNothing", &[]).request())
        .await
        .assert_error(404, "InvalidApi.NotFound");
    send(&api.router, Acs3::new("DescribeNothing", &[]).request())
        .await
        .assert_error(404, "InvalidApi.NotFound");
    let r = send(
        &api.router,
        V1::new(ONLINE, &[DOMAIN])
            .set("Version", "2017-01-01")
            .request(),
    )
    .await;
    r.assert_error(400, "NoSuchVersion");
    assert_eq!(r.message(), "The specified version does not exist.");
    send(
        &api.router,
        Acs3::new(ONLINE, &[DOMAIN])
            .header("x-acs-version", "2020-01-01")
            .request(),
    )
    .await
    .assert_error(400, "NoSuchVersion");
    send(
        &api.router,
        V1::new(ONLINE, &[DOMAIN]).remove("Action").request(),
    )
    .await
    .assert_error(400, "MissingAction");
    send(
        &api.router,
        V1::new(ONLINE, &[DOMAIN]).remove("Version").request(),
    )
    .await
    .assert_error(400, "MissingVersion");

    let v1 = V1::new(ONLINE, &[DOMAIN]);
    let qs = query_string(&v1.signed());
    for (method, uri) in [
        (Method::POST, format!("/other?{qs}")),
        (Method::PUT, format!("/?{qs}")),
        (Method::DELETE, format!("/?{qs}")),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        send(&api.router, req)
            .await
            .assert_error(404, "InvalidApi.NotFound");
    }
    // Unsigned garbage is answered properly too.
    let req = Request::builder().uri("/").body(Body::empty()).unwrap();
    send(&api.router, req)
        .await
        .assert_error(400, "MissingAction");
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let api = start().await;
    let big = "x".repeat(70 * 1024);
    // Query and body count together: 40 KiB + 30 KiB is over 64 KiB. (A query alone cannot
    // exceed 64 KiB here: the http crate refuses such a URI before it reaches the router.)
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/?Pad={}", "q".repeat(40 * 1024)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("Pad2={}", "b".repeat(30 * 1024))))
        .unwrap();
    send(&api.router, req)
        .await
        .assert_error(400, "InvalidParameter");
    let mut form = V1::new(ONLINE, &[DOMAIN, ("Pad", big.as_str())]);
    form.form = true;
    send(&api.router, form.request())
        .await
        .assert_error(400, "InvalidParameter");
    let acs3 = Acs3::new(ONLINE, &[DOMAIN]).with_body(vec![b'a'; 70 * 1024]);
    send(&api.router, acs3.request())
        .await
        .assert_error(400, "InvalidParameter");
    // A lying Content-Length is refused before reading.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("content-length", "999999999")
        .body(Body::from("a=1"))
        .unwrap();
    send(&api.router, req)
        .await
        .assert_error(400, "InvalidParameter");

    // The limit is configurable; just under it works.
    let small = start_with(liverec_api::ApiSettings {
        max_request_bytes: 1024,
        ..settings()
    })
    .await;
    let pad = "x".repeat(300);
    send(
        &small.router,
        V1::new(ONLINE, &[DOMAIN, ("Pad", pad.as_str())]).request(),
    )
    .await
    .assert_ok();
    let pad = "x".repeat(1024);
    send(
        &small.router,
        V1::new(ONLINE, &[DOMAIN, ("Pad", pad.as_str())]).request(),
    )
    .await
    .assert_error(400, "InvalidParameter");
}

#[tokio::test]
async fn non_utf8_and_duplicate_parameters_are_clear_400s() {
    let api = start().await;
    let v1 = V1::new(ONLINE, &[DOMAIN]);
    let qs = format!("{}&AppName=%FF%FE", query_string(&v1.signed()));
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/?{qs}"))
        .body(Body::empty())
        .unwrap();
    let r = send(&api.router, req).await;
    r.assert_error(400, "InvalidParameter");
    assert!(r.message().contains("AppName"), "{}", r.message());

    let req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(&b"Action=\xff\xfe&Version=2016-11-01"[..]))
        .unwrap();
    send(&api.router, req)
        .await
        .assert_error(400, "InvalidParameter");

    let qs = format!("{}&DomainName=again.com", query_string(&v1.signed()));
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/?{qs}"))
        .body(Body::empty())
        .unwrap();
    send(&api.router, req)
        .await
        .assert_error(400, "InvalidParameter");

    // Non-UTF-8 bytes in a header value of an ACS3 request.
    let acs3 = Acs3::new(ONLINE, &[DOMAIN]);
    let (signed, sig) = acs3.signature();
    let mut req = acs3.request_with(
        &acs3.query,
        &format!("ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={signed},Signature={sig}"),
    );
    req.headers_mut().insert(
        "user-agent",
        axum::http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
    );
    send(&api.router, req)
        .await
        .assert_error(400, "IncompleteSignature");
}

#[tokio::test]
async fn xml_is_answered_when_asked() {
    let api = start().await;
    let r = send(
        &api.router,
        V1::new(ONLINE, &[DOMAIN]).set("Format", "XML").request(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/xml;charset=utf-8");
    assert!(
        r.body
            .contains("<DescribeLiveStreamsOnlineListResponse><RequestId>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<OnlineInfo></OnlineInfo>"), "{}", r.body);

    let r = send(
        &api.router,
        V1::new(ONLINE, &[]).set("Format", "XML").request(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, "text/xml;charset=utf-8");
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>"),
        "{}",
        r.body
    );
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let from = r.body.find(&open).unwrap() + open.len();
        let to = from + r.body[from..].find(&close).unwrap();
        quick_xml::escape::unescape(&r.body[from..to])
            .unwrap()
            .into_owned()
    };
    let fields: HashMap<String, String> = ["Code", "HostId", "Message", "RequestId"]
        .iter()
        .map(|t| (format!("Error/{t}"), field(t)))
        .collect();
    assert_eq!(fields["Error/Code"], "MissingDomainName");
    assert_eq!(fields["Error/HostId"], HOST_ID);
    assert_eq!(
        fields["Error/Message"],
        "DomainName is mandatory for this action."
    );
    assert!(fields.contains_key("Error/RequestId"));
}

#[tokio::test]
async fn throttling_per_key_and_action_without_delay() {
    let mut qps = HashMap::new();
    qps.insert(ONLINE.to_owned(), 3);
    let api = start_with(liverec_api::ApiSettings { qps, ..settings() }).await;
    api.catalog.insert_key("otherAK", "otherSK").await.unwrap();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        send(&api.router, V1::new(ONLINE, &[DOMAIN]).request())
            .await
            .assert_ok();
    }
    let r = send(&api.router, V1::new(ONLINE, &[DOMAIN]).request()).await;
    r.assert_error(400, "Throttling.User");
    assert_eq!(r.message(), "Request was denied due to user flow control.");
    // Under the limit nothing waited.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // Another key has its own bucket; another action too.
    let mut other = V1::new(ONLINE, &[DOMAIN]).set("AccessKeyId", "otherAK");
    other.secret = "otherSK".into();
    send(&api.router, other.request()).await.assert_ok();
    let r = call(&api, "DescribeLiveRecordConfig", &[DOMAIN]).await;
    r.assert_ok();
}

#[tokio::test]
async fn real_time_record_command_allows_a_burst_of_fifty() {
    let api = start().await;
    let params = [
        DOMAIN,
        ("AppName", "live"),
        ("StreamName", "s"),
        ("Command", "stop"),
    ];
    for i in 0..50 {
        let r = call(&api, "RealTimeRecordCommand", &params).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    // The 51st within the same second (tokens return at 50/s, one per 20 ms, so allow a
    // few refills while the burst ran).
    let mut throttled = false;
    for _ in 0..10 {
        let r = call(&api, "RealTimeRecordCommand", &params).await;
        if r.status == 400 {
            r.assert_error(400, "Throttling.User");
            throttled = true;
            break;
        }
    }
    assert!(throttled);
}

#[tokio::test]
async fn every_response_has_a_fresh_request_id() {
    let api = start().await;
    let a = call(&api, ONLINE, &[DOMAIN]).await.assert_ok();
    let b = call(&api, ONLINE, &[DOMAIN]).await.assert_ok();
    assert_ne!(a["RequestId"], b["RequestId"]);
}

#[tokio::test]
async fn over_a_real_socket() {
    let api = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let v1 = V1::new(ONLINE, &[DOMAIN]);
    let qs = query_string(&v1.signed());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("POST /?{qs} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("content-type: application/json;charset=utf-8"),
        "{response}"
    );
    assert!(response.contains("\"RequestId\""), "{response}");
    server.abort();
}
