//! RealTimeRecordCommand against a real hub and recorder supervisor, and
//! DescribeLiveStreamsOnlineList from the hub.

mod support;

use std::time::Duration;

use support::*;

const RTRC: &str = "RealTimeRecordCommand";
const ONLINE: &str = "DescribeLiveStreamsOnlineList";

fn command(stream: &str, command: &str) -> Vec<(String, String)> {
    owned(&[
        ("DomainName", "example.com"),
        ("AppName", "live"),
        ("StreamName", stream),
        ("Command", command),
    ])
}

async fn rtrc(api: &TestApi, stream: &str, cmd: &str) -> Reply {
    let p = command(stream, cmd);
    let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    call(api, RTRC, &p).await
}

/// The publish reaches the recorder through the supervisor's queue; wait until a `start`
/// no longer says "not publishing" (bounded).
async fn start_when_seen(api: &TestApi, stream: &str) -> Reply {
    for _ in 0..100 {
        let r = rtrc(api, stream, "start").await;
        if r.status != 404 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the recorder never saw the publish");
}

#[tokio::test]
async fn start_stop_cancel_restart_on_a_publishing_stream() {
    let api = start().await;
    let _publisher = publish(&api.hub, "example.com", "live", "cam").await;
    start_when_seen(&api, "cam").await.assert_ok();
    let r = rtrc(&api, "cam", "start").await;
    r.assert_error(409, "TaskAlreadyStarted");
    assert_eq!(r.message(), "Task has already started.");
    rtrc(&api, "cam", "stop").await.assert_ok();
    rtrc(&api, "cam", "stop").await.assert_ok();
    rtrc(&api, "cam", "start").await.assert_ok();
    rtrc(&api, "cam", "restart").await.assert_ok();
    rtrc(&api, "cam", "cancel_delay").await.assert_ok();
    rtrc(&api, "cam", "restart").await.assert_ok();
}

#[tokio::test]
async fn start_on_a_stream_that_is_not_publishing() {
    let api = start().await;
    let r = rtrc(&api, "ghost", "start").await;
    r.assert_error(404, "InvalidStream.NotFound");
    assert_eq!(r.message(), "Stream does not exist.");
    rtrc(&api, "ghost", "restart")
        .await
        .assert_error(404, "InvalidStream.NotFound");
    // stop and cancel_delay never need a publisher (DESIGN.md transition table).
    rtrc(&api, "ghost", "stop").await.assert_ok();
    rtrc(&api, "ghost", "cancel_delay").await.assert_ok();
}

#[tokio::test]
async fn start_without_a_record_config() {
    let api = start().await;
    *api.configs.0.lock().unwrap() = None;
    let _publisher = publish(&api.hub, "example.com", "live", "cam").await;
    let r = rtrc(&api, "cam", "start").await;
    r.assert_error(404, "InvalidConfig.NotFound");
    assert_eq!(r.message(), "Config does not exist.");
}

#[tokio::test]
async fn strict_domains_refuse_undeclared_ones() {
    let api = start_with(liverec_api::ApiSettings {
        strict_domains: true,
        declared_domains: vec!["other.example".into()],
        ..settings()
    })
    .await;
    rtrc(&api, "cam", "stop")
        .await
        .assert_error(404, "InvalidDomain.NotFound");
    // A domain in the catalog (made before strict mode was on) is still not declared.
    api.catalog.ensure_domain("example.com").await.unwrap();
    rtrc(&api, "cam", "stop")
        .await
        .assert_error(404, "InvalidDomain.NotFound");
    let api = start_with(liverec_api::ApiSettings {
        strict_domains: true,
        declared_domains: vec!["example.com".into()],
        ..settings()
    })
    .await;
    api.catalog.ensure_domain("example.com").await.unwrap();
    rtrc(&api, "cam", "stop").await.assert_ok();
}

#[tokio::test]
async fn parameter_matrix() {
    let api = start().await;
    for (drop, code) in [
        ("DomainName", "MissingDomainName"),
        ("AppName", "MissingAppName"),
        ("StreamName", "MissingStreamName"),
        ("Command", "MissingCommand"),
    ] {
        let p: Vec<_> = command("cam", "start")
            .into_iter()
            .filter(|(k, _)| k != drop)
            .collect();
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = call(&api, RTRC, &p).await;
        r.assert_error(400, code);
        if drop == "Command" {
            assert_eq!(r.message(), "Command is mandatory for this Command.");
        }
    }
    for bad in ["pause", "START", " start"] {
        let r = rtrc(&api, "cam", bad).await;
        r.assert_error(400, "InvalidCommand.Malformed");
        assert_eq!(r.message(), "Specified parameter Command is not valid.");
    }
    for bad in ["*", "cam*", "a/b", ".."] {
        rtrc(&api, bad, "start")
            .await
            .assert_error(400, "InvalidParameter");
    }
}

#[tokio::test]
async fn current_sdk_request_and_xml_answer() {
    let api = start().await;
    let acs3 = Acs3::new(
        RTRC,
        &[
            ("AppName", "live"),
            ("Command", "stop"),
            ("DomainName", "example.com"),
            ("RegionId", "cn-shanghai"),
            ("StreamName", "s1"),
        ],
    );
    let v = send(&api.router, acs3.request()).await.assert_ok();
    assert_eq!(v.as_object().unwrap().len(), 1, "only RequestId: {v}");

    let v1 = V1::new(
        RTRC,
        &[
            ("AppName", "live"),
            ("Command", "stop"),
            ("DomainName", "example.com"),
            ("StreamName", "s1"),
        ],
    )
    .set("Format", "XML");
    let r = send(&api.router, v1.request()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/xml;charset=utf-8");
    assert!(
        r.body.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><RealTimeRecordCommandResponse><RequestId>"
        ),
        "{}",
        r.body
    );
    assert!(
        r.body
            .ends_with("</RequestId></RealTimeRecordCommandResponse>")
    );
}

#[tokio::test]
async fn online_list_reports_streams_with_codecs() {
    let api = start().await;
    let _a = publish(&api.hub, "example.com", "live", "cam1").await;
    let _b = publish(&api.hub, "example.com", "live", "cam2").await;
    let _c = publish(&api.hub, "example.com", "other", "xcam").await;
    let _d = publish(&api.hub, "elsewhere.com", "live", "cam1").await;

    let v = call(&api, ONLINE, &[("DomainName", "Example.com")])
        .await
        .assert_ok();
    assert_eq!(v["TotalNum"], 3);
    assert_eq!(v["TotalPage"], 1);
    assert_eq!(v["PageNum"], 1);
    assert_eq!(v["PageSize"], 2000);
    let items = v["OnlineInfo"]["LiveStreamOnlineInfo"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let cam1 = items.iter().find(|i| i["StreamName"] == "cam1").unwrap();
    assert_eq!(cam1["AppName"], "live");
    assert_eq!(cam1["DomainName"], "example.com");
    assert_eq!(cam1["PublishDomain"], "example.com");
    assert_eq!(cam1["VideoCodecId"], 7);
    assert_eq!(cam1["AudioCodecId"], 10);
    assert_eq!(cam1["Width"], 1280);
    assert_eq!(cam1["Height"], 720);
    assert_eq!(cam1["ClientIp"], "127.0.0.1");
    assert_eq!(cam1["PublishType"], "edge");
    assert_eq!(cam1["Transcoded"], "no");
    assert_eq!(cam1["PublishUrl"], "rtmp://example.com/live/cam1");
    let t = cam1["PublishTime"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{t}"
    );

    // Fuzzy (default) is a substring match; strict is exact.
    let v = call(
        &api,
        ONLINE,
        &[("DomainName", "example.com"), ("StreamName", "cam")],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 3);
    let v = call(
        &api,
        ONLINE,
        &[
            ("DomainName", "example.com"),
            ("StreamName", "cam"),
            ("QueryType", "strict"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 0);
    let v = call(
        &api,
        ONLINE,
        &[("DomainName", "example.com"), ("AppName", "other")],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 1);
    assert_eq!(
        v["OnlineInfo"]["LiveStreamOnlineInfo"][0]["StreamName"],
        "xcam"
    );

    // Paging.
    let v = call(
        &api,
        ONLINE,
        &[
            ("DomainName", "example.com"),
            ("PageSize", "2"),
            ("PageNum", "2"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 3);
    assert_eq!(v["TotalPage"], 2);
    assert_eq!(
        v["OnlineInfo"]["LiveStreamOnlineInfo"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // No transcoded streams exist; OnlyStream trims the fields.
    let v = call(
        &api,
        ONLINE,
        &[("DomainName", "example.com"), ("StreamType", "trans")],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 0);
    let v = call(
        &api,
        ONLINE,
        &[("DomainName", "example.com"), ("OnlyStream", "yes")],
    )
    .await
    .assert_ok();
    let first = &v["OnlineInfo"]["LiveStreamOnlineInfo"][0];
    assert!(first["StreamName"].is_string());
    assert!(first.get("VideoCodecId").is_none());

    call(
        &api,
        ONLINE,
        &[("DomainName", "example.com"), ("PageSize", "3001")],
    )
    .await
    .assert_error(400, "InvalidParameter");
    call(&api, ONLINE, &[])
        .await
        .assert_error(400, "MissingDomainName");
}

#[tokio::test]
async fn online_list_forgets_ended_streams() {
    let api = start().await;
    let p = publish(&api.hub, "example.com", "live", "cam").await;
    let v = call(&api, ONLINE, &[("DomainName", "example.com")])
        .await
        .assert_ok();
    assert_eq!(v["TotalNum"], 1);
    p.end().await;
    let v = call(&api, ONLINE, &[("DomainName", "example.com")])
        .await
        .assert_ok();
    assert_eq!(v["TotalNum"], 0);
}
