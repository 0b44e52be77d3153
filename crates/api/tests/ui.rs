//! The dashboard's JSON API (`/ui/api/*`) at its edges: login, sessions, the cross-site
//! header, body limits, actions run for a session, logout; the browser test
//! (crates/liverec/tests/dashboard.rs) covers what a person does with it.
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use support::*;
use tower::ServiceExt;

/// Sends a request; returns status, the Set-Cookie header and the body as JSON (or Null).
async fn ui(
    api: &TestApi,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    header: bool,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, serde_json::Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if header {
        request = request.header("x-liverec-ui", "1");
    }
    let response = api
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, set_cookie, json)
}

fn login_body(id: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({ "access_key_id": id, "access_key_secret": secret })
        .to_string()
        .into_bytes()
}

async fn login(api: &TestApi) -> String {
    let (status, cookie, _) = ui(
        api,
        "POST",
        "/ui/api/login",
        None,
        true,
        "application/json",
        login_body(AK, SK),
    )
    .await;
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_is_opened_only_by_the_right_key_pair() {
    let api = start().await;
    let json = "application/json";
    for (id, secret) in [(AK, "wrong"), ("nobody", SK), (AK, "")] {
        let (status, cookie, body) = ui(
            &api,
            "POST",
            "/ui/api/login",
            None,
            true,
            json,
            login_body(id, secret),
        )
        .await;
        assert_eq!(status, 401, "{id}");
        assert!(cookie.is_none());
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("Wrong AccessKeyId")
        );
    }
    // No cross-site header, a body that is not JSON, a body too large.
    let (status, _, _) = ui(
        &api,
        "POST",
        "/ui/api/login",
        None,
        false,
        json,
        login_body(AK, SK),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = ui(
        &api,
        "POST",
        "/ui/api/login",
        None,
        true,
        json,
        b"AK:SK".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = ui(
        &api,
        "POST",
        "/ui/api/login",
        None,
        true,
        json,
        vec![b' '; 8192],
    )
    .await;
    assert_eq!(status, 413);
    // A disabled key cannot log in.
    api.catalog.insert_key("offAK", "offSK").await.unwrap();
    api.catalog.set_key_enabled("offAK", false).await.unwrap();
    let (status, _, _) = ui(
        &api,
        "POST",
        "/ui/api/login",
        None,
        true,
        json,
        login_body("offAK", "offSK"),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_session_reads_the_overview_runs_actions_and_ends_at_logout() {
    let api = start().await;
    let (status, _, _) = ui(
        &api,
        "GET",
        "/ui/api/overview",
        None,
        false,
        "text/plain",
        vec![],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = ui(
        &api,
        "GET",
        "/ui/api/overview",
        Some("liverec_ui=made-up"),
        false,
        "text/plain",
        vec![],
    )
    .await;
    assert_eq!(status, 401);

    let cookie = login(&api).await;
    let _publisher = publish(&api.hub, "live.example.com", "live", "s").await;
    let (status, _, overview) = ui(
        &api,
        "GET",
        "/ui/api/overview",
        Some(&cookie),
        false,
        "text/plain",
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(overview["access_key_id"], AK);
    let stream = &overview["streams"][0];
    assert_eq!(stream["stream"], "s", "{overview}");
    assert_eq!(stream["live"], true);
    assert_eq!(stream["video"]["width"], 1280);
    assert!(
        overview["domains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "live.example.com")
    );

    let form = "application/x-www-form-urlencoded";
    let action = |body: &str, header: bool| {
        ui(
            &api,
            "POST",
            "/ui/api/action",
            Some(&cookie),
            header,
            form,
            body.as_bytes().to_vec(),
        )
    };
    // Without the cross-site header: refused before anything runs.
    let (status, _, _) = action(
        "Action=DescribeLiveStreamsOnlineList&DomainName=live.example.com",
        false,
    )
    .await;
    assert_eq!(status, 403);
    // An action answers as through the OpenAPI, errors included.
    let (status, _, reply) = action(
        "Action=DescribeLiveStreamsOnlineList&DomainName=live.example.com",
        true,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["OnlineInfo"]["LiveStreamOnlineInfo"][0]["StreamName"],
        "s"
    );
    assert_eq!(reply["RequestId"].as_str().map(str::len), Some(36));
    let (status, _, reply) = action("Action=RealTimeRecordCommand&DomainName=live.example.com&AppName=live&StreamName=s&Command=pause", true).await;
    assert_eq!(status, 400);
    assert_eq!(reply["Code"], "InvalidCommand.Malformed");
    let (status, _, reply) = action("Action=NoSuchThing", true).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["Code"], "InvalidApi.NotFound");
    let (status, _, reply) = action("DomainName=live.example.com", true).await;
    assert_eq!(reply["Code"], "MissingAction", "{status} {reply}");
    let huge = format!(
        "Action=DescribeLiveStreamsOnlineList&x={}",
        "a".repeat(128 * 1024)
    );
    let (status, _, _) = action(&huge, true).await;
    assert_eq!(status, 413);

    // Disabling the key ends its session.
    api.catalog.set_key_enabled(AK, false).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, _) = ui(
        &api,
        "GET",
        "/ui/api/overview",
        Some(&cookie),
        false,
        "text/plain",
        vec![],
    )
    .await;
    assert_eq!(status, 401);
    api.catalog.set_key_enabled(AK, true).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // Logout forgets the session.
    let cookie = login(&api).await;
    let (status, cleared, _) = ui(
        &api,
        "POST",
        "/ui/api/logout",
        Some(&cookie),
        true,
        form,
        vec![],
    )
    .await;
    assert_eq!(status, 204);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    let (status, _, _) = ui(
        &api,
        "GET",
        "/ui/api/overview",
        Some(&cookie),
        false,
        "text/plain",
        vec![],
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_page_and_its_files_are_served() {
    let api = start().await;
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/vendor/hls.min.js", "text/javascript"),
    ] {
        let reply = send(&api.router, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply.content_type.starts_with(kind),
            "{path}: {}",
            reply.content_type
        );
    }
    let reply = send(
        &api.router,
        Request::get("/ui").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 308);
}
