//! Record callbacks: `AddLiveRecordNotifyConfig`, `UpdateLiveRecordNotifyConfig`,
//! `DeleteLiveRecordNotifyConfig`, `DescribeLiveRecordNotifyConfig` (one config per domain) and
//! `DescribeLiveRecordNotifyRecords` (the callbacks tried so far, from the outbox). Delivery
//! reads the config when an event happens, so a change needs no reload.

use std::ops::RangeInclusive;
use std::time::Duration;

use liverec_catalog::{
    NotifyConfigRow, NotifyOutcome, NotifyRecordQuery, NotifyRecordRow, NotifyStatus,
};
use liverec_notify::url_check::{self, UrlProblem};
use time::OffsetDateTime;

use super::Reply;
use super::common;
use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::{Object, Value};

/// Longest NotifyUrl / OnDemandUrl accepted.
pub const MAX_URL_BYTES: usize = 2048;
/// NotifyAuthKey: 16–32 ASCII letters and digits (SDK doc).
pub const AUTH_KEY_LEN: RangeInclusive<usize> = 16..=32;
/// DescribeLiveRecordNotifyRecords PageSize (SDK doc: 1–500, default 20).
pub const PAGE_SIZE_RANGE: RangeInclusive<i64> = 1..=500;
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// DescribeLiveRecordNotifyRecords PageNumber (SDK doc: 1–100000, default 1).
pub const PAGE_NUMBER_RANGE: RangeInclusive<i64> = 1..=100_000;
/// Longest StartTime–EndTime range of DescribeLiveRecordNotifyRecords (Alibaba keeps 7 days).
pub const MAX_RECORDS_RANGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Every recording is stored in a bucket (local or S3), which Alibaba calls OSS.
pub const STORAGE_TYPE: &str = "oss";
/// `Code` and `Msg` of a DescribeLiveRecordNotifyRecords answer (the model wants both).
pub const RECORDS_CODE: i64 = 200;
pub const RECORDS_MSG: &str = "OK";

/// `NotifyUrl`, required: an `http://` or `https://` URL with a host and no credentials. Whether
/// its host may be private is checked against the settings later ([`check_hosts`]).
fn notify_url(params: &Params) -> Result<String, ApiError> {
    let url = params.required("NotifyUrl")?;
    if url.len() > MAX_URL_BYTES || url_check::check(url, true).is_err() {
        return Err(ApiError::Malformed("NotifyUrl"));
    }
    Ok(url.to_owned())
}

/// `OnDemandUrl`, optional, shaped like NotifyUrl. Alibaba documents no code for it, so a bad
/// one is `InvalidParameter` (API.md "Transport").
fn on_demand_url(params: &Params) -> Result<String, ApiError> {
    match params.optional("OnDemandUrl") {
        None => Ok(String::new()),
        Some(url) if url.len() <= MAX_URL_BYTES && url_check::check(url, true).is_ok() => {
            Ok(url.to_owned())
        }
        Some(_) => Err(ApiError::InvalidParameter("OnDemandUrl".to_owned())),
    }
}

fn valid_auth_key(key: &str) -> bool {
    AUTH_KEY_LEN.contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Every parameter of Add/Update, checked in the documented order, as the row to store.
fn config_params(params: &Params) -> Result<NotifyConfigRow, ApiError> {
    let domain = common::domain(params)?;
    let notify_url = notify_url(params)?;
    let on_demand_url = on_demand_url(params)?;
    let need_status_notify = common::bool_param(params, "NeedStatusNotify")?.unwrap_or(false);
    let notify_req_auth = common::bool_param(params, "NotifyReqAuth")?.unwrap_or(false);
    let notify_auth_key = match params.optional("NotifyAuthKey") {
        Some(key) if valid_auth_key(key) => key.to_owned(),
        Some(_) => return Err(ApiError::InvalidParameter("NotifyAuthKey".to_owned())),
        None if notify_req_auth => return Err(ApiError::Missing("NotifyAuthKey")),
        None => String::new(),
    };
    Ok(NotifyConfigRow {
        domain,
        notify_url,
        on_demand_url,
        need_status_notify,
        notify_req_auth,
        notify_auth_key,
        created_at: 0,
        updated_at: 0,
    })
}

/// With `allow_private` off, a URL naming a loopback or private host is refused: NotifyUrl as
/// `InvalidNotifyUrl.Unsafe` (ERRORS.md), OnDemandUrl as `InvalidParameter`.
fn check_hosts(config: &NotifyConfigRow, allow_private: bool) -> Result<(), ApiError> {
    match url_check::check(&config.notify_url, allow_private) {
        Ok(()) => {}
        Err(UrlProblem::Unsafe) => return Err(ApiError::Unsafe("NotifyUrl")),
        Err(UrlProblem::Malformed) => return Err(ApiError::Malformed("NotifyUrl")),
    }
    if !config.on_demand_url.is_empty()
        && url_check::check(&config.on_demand_url, allow_private).is_err()
    {
        return Err(ApiError::InvalidParameter("OnDemandUrl".to_owned()));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddLiveRecordNotifyConfig {
    config: NotifyConfigRow,
}

impl AddLiveRecordNotifyConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            config: config_params(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        check_hosts(&self.config, state.settings.allow_private_notify_hosts)?;
        common::check_domain(state, &self.config.domain).await?;
        state.catalog.ensure_domain(&self.config.domain).await?;
        if !state.catalog.insert_notify_config(&self.config).await? {
            return Err(ApiError::ConfigAlreadyExists);
        }
        Ok(Reply::new())
    }
}

/// Replaces the whole config: a parameter left out takes its default, as on Add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLiveRecordNotifyConfig {
    config: NotifyConfigRow,
}

impl UpdateLiveRecordNotifyConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            config: config_params(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        check_hosts(&self.config, state.settings.allow_private_notify_hosts)?;
        common::check_domain(state, &self.config.domain).await?;
        if !state.catalog.update_notify_config(&self.config).await? {
            return Err(ApiError::ConfigNotFound);
        }
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteLiveRecordNotifyConfig {
    domain: String,
}

impl DeleteLiveRecordNotifyConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domain: common::domain(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        if !state.catalog.delete_notify_config(&self.domain).await? {
            return Err(ApiError::ConfigNotFound);
        }
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveRecordNotifyConfig {
    domain: String,
}

/// `LiveRecordNotifyConfig`; OnDemandUrl and NotifyAuthKey only when the config has them.
fn config_value(row: &NotifyConfigRow) -> Object {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Object::new()
        .str("DomainName", row.domain.clone())
        .value("NeedStatusNotify", Value::Bool(row.need_status_notify))
        .opt_str("NotifyAuthKey", some(&row.notify_auth_key))
        .value("NotifyReqAuth", Value::Bool(row.notify_req_auth))
        .str("NotifyUrl", row.notify_url.clone())
        .opt_str("OnDemandUrl", some(&row.on_demand_url))
}

impl DescribeLiveRecordNotifyConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domain: common::domain(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let row = state
            .catalog
            .notify_config(&self.domain)
            .await?
            .ok_or(ApiError::ConfigNotFound)?;
        Ok(Reply::new().object("LiveRecordNotifyConfig", config_value(&row)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveRecordNotifyRecords {
    query: NotifyRecordQuery,
    /// `StorageType=vod`: nothing is recorded to VOD, so nothing matches.
    vod_only: bool,
}

fn unix_ms(t: OffsetDateTime) -> Option<i64> {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `StartTime`, `EndTime` (required, end after start, at most 7 days apart) as the half-open
/// range of Unix milliseconds `[start, end + 1 s)`: NotifyTime is shown to the second, so a
/// record shown at EndTime is in the range.
fn records_range(params: &Params) -> Result<(i64, i64), ApiError> {
    let start = common::parse_utc(params.required("StartTime")?)
        .ok_or(ApiError::MalformedValue("StartTime"))?;
    let end = common::parse_utc(params.required("EndTime")?)
        .ok_or(ApiError::MalformedValue("EndTime"))?;
    if end <= start || (end - start) > MAX_RECORDS_RANGE {
        return Err(ApiError::EndTimeMismatch);
    }
    match (unix_ms(start), unix_ms(end)) {
        (Some(s), Some(e)) => Ok((s, e.saturating_add(1000))),
        _ => Err(ApiError::EndTimeMismatch),
    }
}

fn optional_name(params: &Params, what: &'static str) -> Result<Option<String>, ApiError> {
    params
        .optional(what)
        .map(|v| common::name(what, v, false))
        .transpose()
}

fn plural(n: i32, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// What happened to the callback so far, in words.
fn description(row: &NotifyRecordRow) -> String {
    match row.status {
        NotifyStatus::Success => format!("delivered on attempt {}", row.attempts),
        NotifyStatus::Pending => format!(
            "attempt {} failed; retrying until {}",
            row.attempts,
            common::format_unix_ms(row.retry_until)
        ),
        NotifyStatus::Failed => format!("gave up after {}", plural(row.attempts, "attempt")),
    }
}

/// One `CallbackList` item.
fn record_value(row: &NotifyRecordRow) -> Value {
    let result = if row.status == NotifyStatus::Success {
        "success"
    } else {
        "failed"
    };
    Value::Object(
        Object::new()
            .str("AppName", row.app.clone())
            .str("Description", description(row))
            .str("DomainName", row.domain.clone())
            .str("NotifyContent", row.body.clone())
            .opt_str("NotifyHeader", row.last_headers.clone())
            .opt_str("NotifyResponse", row.last_response.clone())
            .str("NotifyResult", result)
            .str("NotifyTime", common::format_unix_ms(row.last_attempt_at))
            .str("NotifyType", row.event.clone())
            .str("NotifyUrl", row.url.clone())
            .str("StorageType", STORAGE_TYPE)
            .str("StreamName", row.stream.clone()),
    )
}

impl DescribeLiveRecordNotifyRecords {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let app = optional_name(params, "AppName")?;
        let stream = optional_name(params, "StreamName")?;
        let (start, end) = records_range(params)?;
        let outcome = match params.optional("Status") {
            None => None,
            Some("success") => Some(NotifyOutcome::Success),
            Some("failed") => Some(NotifyOutcome::Failed),
            Some(_) => return Err(ApiError::InvalidParameter("Status".to_owned())),
        };
        let storage = common::one_of(params, "StorageType", &["oss", "vod", "all"], "all")?;
        let page_num = common::int_in(params, "PageNumber", PAGE_NUMBER_RANGE, 1)?;
        let page_size = common::int_in(params, "PageSize", PAGE_SIZE_RANGE, DEFAULT_PAGE_SIZE)?;
        let to_u32 = |v: i64, name: &str| {
            u32::try_from(v).map_err(|_| ApiError::InvalidParameter(name.to_owned()))
        };
        Ok(Self {
            query: NotifyRecordQuery {
                domain,
                app,
                stream,
                start,
                end,
                outcome,
                page_num: to_u32(page_num, "PageNumber")?,
                page_size: to_u32(page_size, "PageSize")?,
            },
            vod_only: storage == "vod",
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.query.domain).await?;
        let (rows, total) = if self.vod_only {
            (Vec::new(), 0)
        } else {
            state.catalog.notify_records(&self.query).await?
        };
        let size = self.query.page_size;
        Ok(Reply::new()
            // A bare list, not wrapped: the SDK model reads `CallbackList` as an array.
            .value(
                "CallbackList",
                Value::List(rows.iter().map(record_value).collect()),
            )
            .int("Code", RECORDS_CODE)
            .str("Msg", RECORDS_MSG)
            .int("PageNum", i64::from(self.query.page_num))
            .int("PageSize", i64::from(size))
            .int("TotalNum", i64::try_from(total).unwrap_or(i64::MAX))
            .int(
                "TotalPage",
                i64::try_from(common::total_pages(total, size)).unwrap_or(i64::MAX),
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes(), None, 1 << 16).unwrap()
    }

    fn add(q: &str) -> Result<NotifyConfigRow, ApiError> {
        AddLiveRecordNotifyConfig::parse(&params(q)).map(|a| a.config)
    }

    fn add_code(q: &str) -> String {
        add(q).unwrap_err().code()
    }

    const BASE: &str = "DomainName=Notify.Example.com&NotifyUrl=http%3A%2F%2Fcb.example.com%2Frec";

    #[test]
    fn minimal_config_gets_the_defaults() {
        let row = add(BASE).unwrap();
        assert_eq!(
            row,
            NotifyConfigRow {
                domain: "notify.example.com".into(),
                notify_url: "http://cb.example.com/rec".into(),
                on_demand_url: String::new(),
                need_status_notify: false,
                notify_req_auth: false,
                notify_auth_key: String::new(),
                created_at: 0,
                updated_at: 0,
            }
        );
    }

    #[test]
    fn every_field_is_taken() {
        let row = add(&format!(
            "{BASE}&OnDemandUrl=https://od.example.com/q?x=1&NeedStatusNotify=true\
             &NotifyReqAuth=True&NotifyAuthKey=abcdefgh12345678"
        ))
        .unwrap();
        assert_eq!(row.on_demand_url, "https://od.example.com/q?x=1");
        assert!(row.need_status_notify && row.notify_req_auth);
        assert_eq!(row.notify_auth_key, "abcdefgh12345678");
        // A key may be stored without auth on (Describe shows it; callbacks are unsigned).
        let row = add(&format!("{BASE}&NotifyAuthKey={}", "K".repeat(32))).unwrap();
        assert!(!row.notify_req_auth);
        assert_eq!(row.notify_auth_key.len(), 32);
        // Update takes the same parameters.
        let q = format!("{BASE}&NeedStatusNotify=false");
        let row = UpdateLiveRecordNotifyConfig::parse(&params(&q))
            .unwrap()
            .config;
        assert!(!row.need_status_notify);
    }

    #[test]
    fn missing_and_invalid_parameters() {
        let cases = [
            ("NotifyUrl=http://a.example/", "MissingDomainName"),
            (
                "DomainName=a..b&NotifyUrl=http://a.example/",
                "InvalidParameter",
            ),
            ("DomainName=d.example", "MissingNotifyUrl"),
            (
                "DomainName=d.example&NotifyUrl=cb.example.com/rec",
                "InvalidNotifyUrl.Malformed",
            ),
            (
                "DomainName=d.example&NotifyUrl=ftp://cb.example.com/rec",
                "InvalidNotifyUrl.Malformed",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://user:pw@cb.example.com/rec",
                "InvalidNotifyUrl.Malformed",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://a.example/&OnDemandUrl=nope",
                "InvalidParameter",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://a.example/&NeedStatusNotify=yes",
                "InvalidParameter",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://a.example/&NotifyReqAuth=1",
                "InvalidParameter",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://a.example/&NotifyReqAuth=true",
                "MissingNotifyAuthKey",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://a.example/&NotifyReqAuth=true&NotifyAuthKey=short",
                "InvalidParameter",
            ),
            (
                "DomainName=d.example&NotifyUrl=http://a.example/&NotifyReqAuth=true&NotifyAuthKey=abcdefgh-2345678",
                "InvalidParameter",
            ),
        ];
        for (q, code) in cases {
            assert_eq!(add_code(q), code, "{q}");
            if let Ok(update) = UpdateLiveRecordNotifyConfig::parse(&params(q)) {
                panic!("update accepted {q}: {update:?}");
            }
        }
        let long = format!(
            "DomainName=d.example&NotifyUrl=http://a.example/{}",
            "x".repeat(MAX_URL_BYTES)
        );
        assert_eq!(add_code(&long), "InvalidNotifyUrl.Malformed");
        let key33 = format!("{BASE}&NotifyReqAuth=true&NotifyAuthKey={}", "k".repeat(33));
        let err = add(&key33).unwrap_err();
        assert_eq!(err, ApiError::InvalidParameter("NotifyAuthKey".into()));
    }

    #[test]
    fn private_hosts_only_when_allowed() {
        let private = add("DomainName=d.example&NotifyUrl=http://127.0.0.1:9000/cb").unwrap();
        assert_eq!(check_hosts(&private, true), Ok(()));
        let err = check_hosts(&private, false).unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                "InvalidNotifyUrl.Unsafe".to_owned(),
                "Specified NotifyUrl is not safe.".to_owned()
            )
        );
        let public_od_private = add(
            "DomainName=d.example&NotifyUrl=http://cb.example.com/&OnDemandUrl=http://10.0.0.1/od",
        )
        .unwrap();
        assert_eq!(check_hosts(&public_od_private, true), Ok(()));
        assert_eq!(
            check_hosts(&public_od_private, false),
            Err(ApiError::InvalidParameter("OnDemandUrl".into()))
        );
        let public = add("DomainName=d.example&NotifyUrl=https://cb.example.com/").unwrap();
        assert_eq!(check_hosts(&public, false), Ok(()));
    }

    #[test]
    fn delete_and_describe_need_only_the_domain() {
        let d = DescribeLiveRecordNotifyConfig::parse(&params("DomainName=A.example")).unwrap();
        assert_eq!(d.domain, "a.example");
        let d = DeleteLiveRecordNotifyConfig::parse(&params("DomainName=A.example")).unwrap();
        assert_eq!(d.domain, "a.example");
        assert_eq!(
            DeleteLiveRecordNotifyConfig::parse(&params("")).unwrap_err(),
            ApiError::Missing("DomainName")
        );
        assert_eq!(
            DescribeLiveRecordNotifyConfig::parse(&params("")).unwrap_err(),
            ApiError::Missing("DomainName")
        );
    }

    #[test]
    fn describe_shape_matches_the_sdk_model() {
        let mut row = add(BASE).unwrap();
        let json = crate::response::to_json(&config_value(&row));
        assert_eq!(
            json,
            r#"{"DomainName":"notify.example.com","NeedStatusNotify":false,"NotifyReqAuth":false,"NotifyUrl":"http://cb.example.com/rec"}"#
        );
        row.on_demand_url = "http://od.example/".into();
        row.notify_req_auth = true;
        row.notify_auth_key = "abcdefgh12345678".into();
        let v: serde_json::Value =
            serde_json::from_str(&crate::response::to_json(&config_value(&row))).unwrap();
        assert_eq!(v["OnDemandUrl"], "http://od.example/");
        assert_eq!(v["NotifyAuthKey"], "abcdefgh12345678");
        assert_eq!(v["NotifyReqAuth"], true);
    }

    const RANGE: &str =
        "DomainName=d.example&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02T00:00:00Z";

    fn records(q: &str) -> Result<DescribeLiveRecordNotifyRecords, ApiError> {
        DescribeLiveRecordNotifyRecords::parse(&params(q))
    }

    #[test]
    fn records_defaults_and_range() {
        let r = records(RANGE).unwrap();
        // 2026-12-01T00:00:00Z.
        let start = 1_796_083_200_000;
        assert_eq!(r.query.start, start);
        // EndTime is inclusive to the second.
        assert_eq!(r.query.end, start + 86_400_000 + 1000);
        assert_eq!((r.query.page_num, r.query.page_size), (1, 20));
        assert_eq!(
            (r.query.app.as_deref(), r.query.stream.as_deref()),
            (None, None)
        );
        assert_eq!(r.query.outcome, None);
        assert!(!r.vod_only);

        let r = records(&format!(
            "{RANGE}&AppName=live&StreamName=cam1&Status=failed&StorageType=oss&PageNumber=100000&PageSize=500&RegionId=cn-shanghai"
        ))
        .unwrap();
        assert_eq!(r.query.app.as_deref(), Some("live"));
        assert_eq!(r.query.stream.as_deref(), Some("cam1"));
        assert_eq!(r.query.outcome, Some(NotifyOutcome::Failed));
        assert_eq!((r.query.page_num, r.query.page_size), (100_000, 500));
        assert_eq!(
            records(&format!("{RANGE}&Status=success"))
                .unwrap()
                .query
                .outcome,
            Some(NotifyOutcome::Success)
        );
        assert!(
            records(&format!("{RANGE}&StorageType=vod"))
                .unwrap()
                .vod_only
        );
        // Exactly seven days is allowed.
        records("DomainName=d.example&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-08T00:00:00Z")
            .unwrap();
    }

    #[test]
    fn records_parameter_errors() {
        let cases = [
            (
                "StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02T00:00:00Z",
                "MissingDomainName",
            ),
            (
                "DomainName=d.example&EndTime=2026-12-02T00:00:00Z",
                "MissingStartTime",
            ),
            (
                "DomainName=d.example&StartTime=2026-12-01T00:00:00Z",
                "MissingEndTime",
            ),
            (
                "DomainName=d.example&StartTime=2026-12-01&EndTime=2026-12-02T00:00:00Z",
                "InvalidStartTime.Malformed",
            ),
            (
                "DomainName=d.example&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02 00:00:00",
                "InvalidEndTime.Malformed",
            ),
            (
                "DomainName=d.example&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-01T00:00:00Z",
                "InvalidEndTime.Mismatch",
            ),
            (
                "DomainName=d.example&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-08T00:00:01Z",
                "InvalidEndTime.Mismatch",
            ),
        ];
        for (q, code) in cases {
            assert_eq!(records(q).unwrap_err().code(), code, "{q}");
        }
        for extra in [
            "Status=Success",
            "Status=pending",
            "StorageType=s3",
            "PageNumber=0",
            "PageNumber=100001",
            "PageSize=0",
            "PageSize=501",
            "PageSize=ten",
            "AppName=*",
            "StreamName=a%2Fb",
        ] {
            let err = records(&format!("{RANGE}&{extra}")).unwrap_err();
            assert_eq!(err.code(), "InvalidParameter", "{extra}");
        }
        assert_eq!(
            records("DomainName=d.example&StartTime=x&EndTime=y")
                .unwrap_err()
                .message(),
            "Specified StartTime is malformed."
        );
    }

    fn row(status: NotifyStatus, attempts: i32) -> NotifyRecordRow {
        NotifyRecordRow {
            event_id: "e1".into(),
            domain: "d.example".into(),
            app: "live".into(),
            stream: "cam1".into(),
            event: "file_created".into(),
            url: "http://cb.example/rec".into(),
            body: r#"{"domain":"d.example"}"#.into(),
            status,
            attempts,
            retry_until: 1_764_633_600_000,
            created_at: 1_764_547_200_000,
            last_attempt_at: 1_764_547_201_999,
            last_headers: Some(r#"{"Idempotency-Key":"e1"}"#.into()),
            last_response: Some("HTTP 200: ok".into()),
        }
    }

    #[test]
    fn record_fields_as_the_sdk_model_names_them() {
        let v = serde_json::to_value(record_value(&row(NotifyStatus::Success, 2))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "AppName": "live",
                "Description": "delivered on attempt 2",
                "DomainName": "d.example",
                "NotifyContent": r#"{"domain":"d.example"}"#,
                "NotifyHeader": r#"{"Idempotency-Key":"e1"}"#,
                "NotifyResponse": "HTTP 200: ok",
                "NotifyResult": "success",
                "NotifyTime": "2025-12-01T00:00:01Z",
                "NotifyType": "file_created",
                "NotifyUrl": "http://cb.example/rec",
                "StorageType": "oss",
                "StreamName": "cam1",
            })
        );
        let pending = serde_json::to_value(record_value(&row(NotifyStatus::Pending, 3))).unwrap();
        assert_eq!(pending["NotifyResult"], "failed");
        assert_eq!(
            pending["Description"],
            "attempt 3 failed; retrying until 2025-12-02T00:00:00Z"
        );
        let failed = serde_json::to_value(record_value(&row(NotifyStatus::Failed, 9))).unwrap();
        assert_eq!(failed["NotifyResult"], "failed");
        assert_eq!(failed["Description"], "gave up after 9 attempts");
        assert_eq!(
            description(&row(NotifyStatus::Failed, 1)),
            "gave up after 1 attempt"
        );
        let mut bare = row(NotifyStatus::Pending, 1);
        bare.last_headers = None;
        bare.last_response = None;
        let v = serde_json::to_value(record_value(&bare)).unwrap();
        assert!(v.get("NotifyHeader").is_none() && v.get("NotifyResponse").is_none());
    }
}
