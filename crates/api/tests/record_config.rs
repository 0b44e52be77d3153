//! Record configs through the router: Add → Describe → Update → Delete against a real catalog,
//! with the recorder's view reloaded before each answer.

mod support;

use std::sync::atomic::Ordering;

use support::*;

const ADD: &str = "AddLiveAppRecordConfig";
const UPDATE: &str = "UpdateLiveAppRecordConfig";
const DELETE: &str = "DeleteLiveAppRecordConfig";
const DESCRIBE: &str = "DescribeLiveRecordConfig";

/// The decoded AddLiveAppRecordConfig of API.md ("Parameter flattening").
const API_MD_ADD: &[(&str, &str)] = &[
    ("AppName", "liveApp"),
    ("DelayTime", "180"),
    ("DomainName", "example.com"),
    ("OnDemand", "1"),
    ("OssBucket", "bkt"),
    ("OssEndpoint", "oss-cn-shanghai.aliyuncs.com"),
    ("RecordFormat.1.CycleDuration", "3600"),
    ("RecordFormat.1.Format", "m3u8"),
    (
        "RecordFormat.1.OssObjectPrefix",
        "record/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
    ),
    (
        "RecordFormat.1.SliceOssObjectPrefix",
        "record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}",
    ),
    ("StreamName", "s1"),
];

fn minimal(app: &str, stream: Option<&str>) -> Vec<(String, String)> {
    let mut p = owned(&[
        ("DomainName", "example.com"),
        ("AppName", app),
        ("OssEndpoint", "oss-cn-shanghai.aliyuncs.com"),
        ("OssBucket", "bkt"),
        ("RecordFormat.1.Format", "mp4"),
    ]);
    if let Some(s) = stream {
        p.push(("StreamName".into(), s.into()));
    }
    p
}

fn borrowed(p: &[(String, String)]) -> Vec<(&str, &str)> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn add_describe_update_delete_round_trip() {
    let api = start().await;
    call(&api, ADD, API_MD_ADD).await.assert_ok();
    assert_eq!(
        api.reloads.load(Ordering::SeqCst),
        1,
        "reloaded before answering"
    );
    assert!(api.catalog.domain_exists("example.com").await.unwrap());

    let v = call(&api, DESCRIBE, &[("DomainName", "example.com")])
        .await
        .assert_ok();
    assert_eq!(v["TotalNum"], 1);
    assert_eq!(v["TotalPage"], 1);
    assert_eq!(v["PageNum"], 1);
    assert_eq!(v["PageSize"], 10);
    assert_eq!(v["Order"], "asc");
    let rec = &v["LiveAppRecordList"]["LiveAppRecord"][0];
    assert_eq!(rec["AppName"], "liveApp");
    assert_eq!(rec["StreamName"], "s1");
    assert_eq!(rec["DomainName"], "example.com");
    assert_eq!(rec["OssBucket"], "bkt");
    assert_eq!(rec["OssEndpoint"], "oss-cn-shanghai.aliyuncs.com");
    assert_eq!(rec["OnDemond"], 1);
    assert_eq!(rec["DelayTime"], 180);
    let created = rec["CreateTime"].as_str().unwrap();
    assert_eq!(created.len(), 20, "{created}");
    assert!(created.ends_with('Z'));
    let fmt = &rec["RecordFormatList"]["RecordFormat"][0];
    assert_eq!(fmt["Format"], "m3u8");
    assert_eq!(fmt["CycleDuration"], 3600);
    assert_eq!(fmt["SliceDuration"], 30);
    assert_eq!(
        fmt["OssObjectPrefix"],
        "record/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}"
    );
    assert_eq!(
        fmt["SliceOssObjectPrefix"],
        "record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}"
    );

    // Update: new DelayTime and a new format list; m3u8 keeps its prefixes.
    call(
        &api,
        UPDATE,
        &[
            ("DomainName", "example.com"),
            ("AppName", "liveApp"),
            ("StreamName", "s1"),
            ("OssEndpoint", "new.endpoint"),
            ("DelayTime", "60"),
            ("OnDemand", "7"),
            ("RecordFormat.1.Format", "mp4"),
            ("RecordFormat.2.Format", "m3u8"),
            ("RecordFormat.2.SliceDuration", "10"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(api.reloads.load(Ordering::SeqCst), 2);
    let row = api
        .catalog
        .record_config("example.com", "liveApp", "s1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.delay_time, 60);
    assert_eq!(row.on_demand, 7);
    assert_eq!(row.oss_endpoint, "new.endpoint");
    assert_eq!(row.oss_bucket, "bkt");
    assert_eq!(row.formats.len(), 2);
    assert_eq!(row.formats[0].format, "mp4");
    assert_eq!(row.formats[1].format, "m3u8");
    assert_eq!(row.formats[1].slice_duration, Some(10));
    assert_eq!(
        row.formats[1].slice_oss_object_prefix.as_deref(),
        Some("record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}")
    );

    call(
        &api,
        DELETE,
        &[
            ("DomainName", "example.com"),
            ("AppName", "liveApp"),
            ("StreamName", "s1"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(api.reloads.load(Ordering::SeqCst), 3);
    let v = call(&api, DESCRIBE, &[("DomainName", "example.com")])
        .await
        .assert_ok();
    assert_eq!(v["TotalNum"], 0);
    assert_eq!(
        v["LiveAppRecordList"]["LiveAppRecord"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn duplicates_and_missing_configs() {
    let api = start().await;
    let p = minimal("app", None);
    call(&api, ADD, &borrowed(&p)).await.assert_ok();
    let r = call(&api, ADD, &borrowed(&p)).await;
    r.assert_error(400, "ConfigAlreadyExists");
    assert_eq!(r.message(), "Config has already exist.");
    // An app-level config is StreamName `*`; the same triple given explicitly is a duplicate.
    call(&api, ADD, &borrowed(&minimal("app", Some("*"))))
        .await
        .assert_error(400, "ConfigAlreadyExists");
    // A stream-level config beside it is fine.
    call(&api, ADD, &borrowed(&minimal("app", Some("s"))))
        .await
        .assert_ok();

    let missing = [
        ("DomainName", "example.com"),
        ("AppName", "nope"),
        ("OssEndpoint", "e"),
    ];
    let r = call(&api, UPDATE, &missing).await;
    r.assert_error(404, "InvalidConfig.NotFound");
    assert_eq!(r.message(), "Config does not exist.");
    call(&api, DELETE, &missing[..2])
        .await
        .assert_error(404, "InvalidConfig.NotFound");
    // Failed changes do not reload.
    assert_eq!(api.reloads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn parameter_matrix_over_http() {
    let api = start().await;
    for drop in [
        "DomainName",
        "AppName",
        "OssEndpoint",
        "OssBucket",
        "RecordFormat.1.Format",
    ] {
        let p: Vec<_> = minimal("app", None)
            .into_iter()
            .filter(|(k, _)| k != drop)
            .collect();
        let code = if drop.starts_with("RecordFormat") {
            "MissingRecordFormat".to_owned()
        } else {
            format!("Missing{drop}")
        };
        let r = call(&api, ADD, &borrowed(&p)).await;
        r.assert_error(400, &code);
        if drop == "DomainName" {
            assert_eq!(r.message(), "DomainName is mandatory for this action.");
        }
    }
    let bad: &[(&str, &str, &str)] = &[
        ("RecordFormat.1.Format", "avi", "InvalidFormat.Malformed"),
        (
            "RecordFormat.1.CycleDuration",
            "100",
            "InvalidCycleDuration.Malformed",
        ),
        (
            "RecordFormat.1.OssObjectPrefix",
            "no-vars",
            "InvalidOssObjectPrefix.Malformed",
        ),
        ("OssBucket", "../etc", "InvalidOssBucket.Malformed"),
        ("DelayTime", "5", "InvalidParameter"),
        ("OnDemand", "4", "InvalidParameter"),
        ("StartTime", "2026-11-25", "InvalidStartTime.Malformed"),
        ("AppName", "a/b", "InvalidParameter"),
        ("RecordFormat.0.Format", "mp4", "InvalidParameter"),
    ];
    for (key, value, code) in bad {
        let mut p: Vec<_> = minimal("app", Some("s"))
            .into_iter()
            .filter(|(k, _)| k != key)
            .collect();
        p.push(((*key).into(), (*value).into()));
        let r = call(&api, ADD, &borrowed(&p)).await;
        r.assert_error(400, code);
    }
    let r = call(
        &api,
        ADD,
        &borrowed(&{
            let mut p = minimal("app", Some("s"));
            p.push(("RecordFormat.1.CycleDuration".into(), "1".into()));
            p
        }),
    )
    .await;
    assert_eq!(r.message(), "Specified CycleDuration Format is not valid.");
    let mut p = minimal("app", Some("s"));
    p.push(("StartTime".into(), "2026-11-25T00:00:00Z".into()));
    p.push(("EndTime".into(), "2026-12-09T00:00:00Z".into()));
    let r = call(&api, ADD, &borrowed(&p)).await;
    r.assert_error(400, "InvalidEndTime.Mismatch");
    assert_eq!(
        r.message(),
        "Specified end time does not math the specified start time."
    );
    assert_eq!(api.reloads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn declared_buckets_and_strict_domains() {
    let strict = |declared: &str| liverec_api::ApiSettings {
        buckets: Some(vec!["default".into(), "archive".into()]),
        strict_domains: true,
        declared_domains: vec![declared.into()],
        ..settings()
    };
    let api = start_with(strict("other.example")).await;
    let p = minimal("app", None);
    let r = call(&api, ADD, &borrowed(&p)).await;
    r.assert_error(404, "InvalidDomain.NotFound");
    assert_eq!(
        r.message(),
        "The domain provided does not exist in our records."
    );
    let api = start_with(strict("example.com")).await;
    let r = call(&api, ADD, &borrowed(&p)).await;
    r.assert_error(400, "InvalidOssBucket.NotFound");
    assert_eq!(r.message(), "The parameter OssBucket does not exist.");
    let p: Vec<_> = p
        .into_iter()
        .map(|(k, v)| {
            if k == "OssBucket" {
                (k, "archive".into())
            } else {
                (k, v)
            }
        })
        .collect();
    call(&api, ADD, &borrowed(&p)).await.assert_ok();
    call(&api, DESCRIBE, &[("DomainName", "other.com")])
        .await
        .assert_error(404, "InvalidDomain.NotFound");
}

#[tokio::test]
async fn describe_filters_pages_and_orders() {
    let api = start().await;
    for i in 0..7 {
        let stream = format!("s{i}");
        call(&api, ADD, &borrowed(&minimal("app", Some(&stream))))
            .await
            .assert_ok();
        // Distinct creation times, so the order is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    call(&api, ADD, &borrowed(&minimal("other", None)))
        .await
        .assert_ok();
    let v = call(
        &api,
        DESCRIBE,
        &[("DomainName", "example.com"), ("PageSize", "5")],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 8);
    assert_eq!(v["TotalPage"], 2);
    assert_eq!(
        v["LiveAppRecordList"]["LiveAppRecord"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        v["LiveAppRecordList"]["LiveAppRecord"][0]["StreamName"],
        "s0"
    );
    let v = call(
        &api,
        DESCRIBE,
        &[
            ("DomainName", "example.com"),
            ("PageSize", "5"),
            ("PageNum", "2"),
            ("AppName", "app"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 7);
    assert_eq!(v["PageNum"], 2);
    assert_eq!(
        v["LiveAppRecordList"]["LiveAppRecord"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let v = call(
        &api,
        DESCRIBE,
        &[
            ("DomainName", "example.com"),
            ("AppName", "app"),
            ("Order", "desc"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(v["Order"], "desc");
    assert_eq!(
        v["LiveAppRecordList"]["LiveAppRecord"][0]["StreamName"],
        "s6"
    );
    let v = call(
        &api,
        DESCRIBE,
        &[
            ("DomainName", "example.com"),
            ("AppName", "app"),
            ("StreamName", "s3"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(v["TotalNum"], 1);
    call(
        &api,
        DESCRIBE,
        &[("DomainName", "example.com"), ("PageSize", "50")],
    )
    .await
    .assert_error(400, "InvalidParameter");
}

#[tokio::test]
async fn describe_in_xml_repeats_elements() {
    let api = start().await;
    call(&api, ADD, &borrowed(&minimal("a1", None)))
        .await
        .assert_ok();
    call(&api, ADD, &borrowed(&minimal("a2", None)))
        .await
        .assert_ok();
    let v1 = V1::new(DESCRIBE, &[("DomainName", "example.com")]).set("Format", "XML");
    let r = send(&api.router, v1.request()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/xml;charset=utf-8");
    assert!(
        r.body
            .contains("<DescribeLiveRecordConfigResponse><RequestId>")
    );
    assert_eq!(r.body.matches("<LiveAppRecord>").count(), 2, "{}", r.body);
    assert_eq!(r.body.matches("<LiveAppRecordList>").count(), 1);
    assert!(r.body.contains("<RecordFormatList><RecordFormat><CycleDuration>3600</CycleDuration><Format>mp4</Format>"), "{}", r.body);
    // Template braces survive; nothing needs escaping there but it must not break the XML.
    assert!(r.body.contains("{EscapedStartTime}"));
}
