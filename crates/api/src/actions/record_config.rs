//! Record configs: `AddLiveAppRecordConfig`, `UpdateLiveAppRecordConfig`,
//! `DeleteLiveAppRecordConfig`, `DescribeLiveRecordConfig`. Every change is stored in the
//! catalog and the recorder's view reloaded before the answer, so the next command sees it.

use std::ops::RangeInclusive;
use std::time::Duration;

use liverec_catalog::{CatalogError, Page, RecordConfigRow, RecordFormatRow};
use liverec_recorder::Format;
use liverec_recorder::config::{DEFAULT_OBJECT_PREFIX, DEFAULT_SLICE_OBJECT_PREFIX};

use super::Reply;
use super::common::{self, WILDCARD};
use crate::ApiState;
use crate::error::ApiError;
use crate::params::{Item, Params};
use crate::response::{Object, Value};

/// DelayTime, seconds (Alibaba: 15–21600).
pub const DELAY_TIME_RANGE: RangeInclusive<i64> = 15..=21600;
/// Alibaba's default DelayTime.
pub const DEFAULT_DELAY_TIME: i32 = 180;
/// CycleDuration, seconds (liverec's choice, DESIGN.md "Ranges").
pub const CYCLE_DURATION_RANGE: RangeInclusive<i64> = 300..=21600;
/// Default cycle of m3u8 / cmaf recordings: 6 h.
pub const DEFAULT_SEGMENTED_CYCLE: i64 = 21600;
/// Default cycle of mp4 / flv recordings: 1 h.
pub const DEFAULT_FILE_CYCLE: i64 = 3600;
/// SliceDuration, seconds (m3u8 / cmaf only).
pub const SLICE_DURATION_RANGE: RangeInclusive<i64> = 5..=30;
pub const DEFAULT_SLICE_DURATION: i64 = 30;
/// OnDemand: 0 automatic, 1 HTTP callback, 2 ingest parameters, 7 manual.
pub const ON_DEMAND_VALUES: [i64; 4] = [0, 1, 2, 7];
/// Longest StartTime–EndTime window.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest OssEndpoint stored.
pub const MAX_ENDPOINT_LEN: usize = 255;
/// Longest bucket name (OSS and S3: 63).
pub const MAX_BUCKET_LEN: usize = 63;
/// Most TranscodeTemplates.N, and the longest one.
pub const MAX_TEMPLATES: usize = 20;
pub const MAX_TEMPLATE_LEN: usize = 64;
/// DescribeLiveRecordConfig PageSize (SDK doc: 5–30, default 10).
pub const PAGE_SIZE_RANGE: RangeInclusive<i64> = 5..=30;
pub const DEFAULT_PAGE_SIZE: i64 = 10;

fn object_prefix(value: &str) -> Result<String, ApiError> {
    if liverec_storage::layout::valid_object_prefix(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::Malformed("OssObjectPrefix"))
    }
}

fn slice_prefix(value: &str) -> Result<String, ApiError> {
    if liverec_storage::layout::valid_slice_prefix(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::Malformed("SliceOssObjectPrefix"))
    }
}

fn is_segmented(format: Format) -> bool {
    format.is_segmented()
}

fn default_cycle(format: Format) -> i64 {
    if is_segmented(format) {
        DEFAULT_SEGMENTED_CYCLE
    } else {
        DEFAULT_FILE_CYCLE
    }
}

/// One `RecordFormat.N` as sent, validated, before defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FormatInput {
    format: Format,
    object_prefix: Option<String>,
    slice_prefix: Option<String>,
    cycle: Option<i64>,
    slice: Option<i64>,
}

impl FormatInput {
    fn parse(item: &Item<'_>) -> Result<Self, ApiError> {
        let format = item
            .optional("Format")
            .and_then(Format::parse)
            .ok_or(ApiError::Malformed("Format"))?;
        let cycle = item.int("CycleDuration", || ApiError::Malformed("CycleDuration"))?;
        if cycle.is_some_and(|c| !CYCLE_DURATION_RANGE.contains(&c)) {
            return Err(ApiError::Malformed("CycleDuration"));
        }
        let slice = item.int("SliceDuration", || {
            ApiError::InvalidParameter("SliceDuration".to_owned())
        })?;
        if slice.is_some_and(|s| !SLICE_DURATION_RANGE.contains(&s)) {
            return Err(ApiError::InvalidParameter("SliceDuration".to_owned()));
        }
        Ok(Self {
            format,
            object_prefix: item
                .optional("OssObjectPrefix")
                .map(object_prefix)
                .transpose()?,
            slice_prefix: item
                .optional("SliceOssObjectPrefix")
                .map(slice_prefix)
                .transpose()?,
            cycle,
            slice,
        })
    }

    /// The stored row: given values, else the previous row of the same format (prefixes
    /// only; DESIGN.md "Config updates"), else the defaults. On Add, a segmented format
    /// must name its SliceOssObjectPrefix (API.md).
    fn resolve(
        &self,
        previous: Option<&RecordFormatRow>,
        require_slice_prefix: bool,
    ) -> Result<RecordFormatRow, ApiError> {
        let segmented = is_segmented(self.format);
        let object_prefix = self
            .object_prefix
            .clone()
            .or_else(|| previous.and_then(|p| p.oss_object_prefix.clone()))
            .unwrap_or_else(|| DEFAULT_OBJECT_PREFIX.to_owned());
        let slice_prefix = if segmented {
            let kept = self
                .slice_prefix
                .clone()
                .or_else(|| previous.and_then(|p| p.slice_oss_object_prefix.clone()));
            match kept {
                Some(p) => Some(p),
                None if require_slice_prefix => {
                    return Err(ApiError::Missing("SliceOssObjectPrefix"));
                }
                None => Some(DEFAULT_SLICE_OBJECT_PREFIX.to_owned()),
            }
        } else {
            None
        };
        Ok(RecordFormatRow {
            format: self.format.as_str().to_owned(),
            oss_object_prefix: Some(object_prefix),
            slice_oss_object_prefix: slice_prefix,
            cycle_duration: Some(self.cycle.unwrap_or_else(|| default_cycle(self.format))),
            slice_duration: segmented.then(|| self.slice.unwrap_or(DEFAULT_SLICE_DURATION)),
        })
    }
}

/// `RecordFormat.N.*` (or `TranscodeRecordFormat.N.*`); `None` when the list was not sent.
/// A format may appear once per list.
fn parse_formats(params: &Params, list: &str) -> Result<Option<Vec<FormatInput>>, ApiError> {
    let items = params.objects(list)?;
    if items.is_empty() {
        return Ok(None);
    }
    let mut formats: Vec<FormatInput> = Vec::with_capacity(items.len());
    for item in &items {
        let input = FormatInput::parse(item)?;
        if formats.iter().any(|f| f.format == input.format) {
            return Err(ApiError::Malformed("Format"));
        }
        formats.push(input);
    }
    Ok(Some(formats))
}

fn resolve_all(
    inputs: &[FormatInput],
    previous: &[RecordFormatRow],
    require_slice_prefix: bool,
) -> Result<Vec<RecordFormatRow>, ApiError> {
    inputs
        .iter()
        .map(|input| {
            let prev = previous.iter().find(|p| p.format == input.format.as_str());
            input.resolve(prev, require_slice_prefix)
        })
        .collect()
}

/// `TranscodeTemplates.N`; `None` when not sent.
fn parse_templates(params: &Params) -> Result<Option<Vec<String>>, ApiError> {
    if !params.has_prefix("TranscodeTemplates") {
        return Ok(None);
    }
    let invalid = || ApiError::InvalidParameter("TranscodeTemplates".to_owned());
    let list = params.list("TranscodeTemplates")?;
    if list.len() > MAX_TEMPLATES {
        return Err(invalid());
    }
    list.into_iter()
        .map(|t| {
            if t.len() <= MAX_TEMPLATE_LEN && t.bytes().all(|b| b.is_ascii_graphic()) {
                Ok(t.to_owned())
            } else {
                Err(invalid())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn time_param(params: &Params, name: &'static str) -> Result<Option<String>, ApiError> {
    match params.optional(name) {
        None => Ok(None),
        Some(v) if common::parse_utc(v).is_some() => Ok(Some(v.to_owned())),
        Some(_) => Err(ApiError::Malformed(name)),
    }
}

/// StartTime and EndTime come together, only on stream-level configs, at most 7 days apart.
fn check_window(start: Option<&str>, end: Option<&str>, stream: &str) -> Result<(), ApiError> {
    let (start, end) = match (start, end) {
        (None, None) => return Ok(()),
        (Some(_), None) => return Err(ApiError::Missing("EndTime")),
        (None, Some(_)) => return Err(ApiError::Missing("StartTime")),
        (Some(s), Some(e)) => (s, e),
    };
    let s = common::parse_utc(start).ok_or(ApiError::Malformed("StartTime"))?;
    let e = common::parse_utc(end).ok_or(ApiError::Malformed("EndTime"))?;
    if stream == WILDCARD {
        return Err(ApiError::InvalidParameter("StartTime".to_owned()));
    }
    if e <= s || (e - s).unsigned_abs() > MAX_WINDOW {
        return Err(ApiError::EndTimeMismatch);
    }
    Ok(())
}

fn small_int(
    params: &Params,
    name: &'static str,
    valid: impl Fn(i64) -> bool,
) -> Result<Option<i32>, ApiError> {
    match params.int(name)? {
        None => Ok(None),
        Some(v) if valid(v) => i32::try_from(v)
            .map(Some)
            .map_err(|_| ApiError::InvalidParameter(name.to_owned())),
        Some(_) => Err(ApiError::InvalidParameter(name.to_owned())),
    }
}

fn on_demand(params: &Params) -> Result<Option<i32>, ApiError> {
    small_int(params, "OnDemand", |v| ON_DEMAND_VALUES.contains(&v))
}

fn delay_time(params: &Params) -> Result<Option<i32>, ApiError> {
    small_int(params, "DelayTime", |v| DELAY_TIME_RANGE.contains(&v))
}

fn oss_endpoint(params: &Params) -> Result<String, ApiError> {
    let v = params.required("OssEndpoint")?;
    if v.len() <= MAX_ENDPOINT_LEN && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(v.to_owned())
    } else {
        Err(ApiError::InvalidParameter("OssEndpoint".to_owned()))
    }
}

/// A bucket names a directory under `data/buckets/`, so it must be one safe path component.
pub(super) fn oss_bucket(params: &Params) -> Result<String, ApiError> {
    let v = params.required("OssBucket")?;
    let ok = v.len() <= MAX_BUCKET_LEN
        && !v.starts_with('.')
        && liverec_hub::validate_name("OssBucket", v).is_ok();
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ApiError::Malformed("OssBucket"))
    }
}

/// `(DomainName, AppName, StreamName)` of a config; an absent StreamName is `*`.
fn config_key(params: &Params) -> Result<(String, String, String), ApiError> {
    let domain = common::domain(params)?;
    let app = common::name("AppName", params.required("AppName")?, true)?;
    let stream = match params.optional("StreamName") {
        None => WILDCARD.to_owned(),
        Some(s) => common::name("StreamName", s, true)?,
    };
    Ok((domain, app, stream))
}

pub(super) fn check_bucket(state: &ApiState, bucket: &str) -> Result<(), ApiError> {
    match &state.settings.buckets {
        Some(known) if !known.iter().any(|b| b == bucket) => Err(ApiError::OssBucketNotFound),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddLiveAppRecordConfig {
    config: RecordConfigRow,
}

impl AddLiveAppRecordConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = config_key(params)?;
        let oss_endpoint = oss_endpoint(params)?;
        let oss_bucket = oss_bucket(params)?;
        let formats = parse_formats(params, "RecordFormat")?;
        let transcode = parse_formats(params, "TranscodeRecordFormat")?;
        if formats.is_none() && transcode.is_none() {
            return Err(ApiError::Missing("RecordFormat"));
        }
        let formats = resolve_all(formats.as_deref().unwrap_or_default(), &[], true)?;
        let transcode_formats = resolve_all(transcode.as_deref().unwrap_or_default(), &[], true)?;
        let on_demand = on_demand(params)?.unwrap_or(0);
        let delay_time = delay_time(params)?.unwrap_or(DEFAULT_DELAY_TIME);
        let start_time = time_param(params, "StartTime")?;
        let end_time = time_param(params, "EndTime")?;
        check_window(start_time.as_deref(), end_time.as_deref(), &stream)?;
        let transcode_templates = parse_templates(params)?.unwrap_or_default();
        Ok(Self {
            config: RecordConfigRow {
                domain,
                app,
                stream,
                oss_endpoint,
                oss_bucket,
                on_demand,
                delay_time,
                start_time,
                end_time,
                formats,
                transcode_formats,
                transcode_templates,
                created_at: 0,
            },
        })
    }

    pub async fn handle(mut self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.config.domain).await?;
        check_bucket(state, &self.config.oss_bucket)?;
        state.catalog.ensure_domain(&self.config.domain).await?;
        self.config.created_at = liverec_catalog::unix_ms(std::time::SystemTime::now());
        match state.catalog.add_record_config(&self.config).await {
            Ok(()) => {}
            Err(CatalogError::AlreadyExists) => return Err(ApiError::ConfigAlreadyExists),
            Err(e) => return Err(e.into()),
        }
        (state.reload_configs)().await;
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLiveAppRecordConfig {
    domain: String,
    app: String,
    stream: String,
    oss_endpoint: String,
    on_demand: Option<i32>,
    delay_time: Option<i32>,
    start_time: Option<String>,
    end_time: Option<String>,
    formats: Option<Vec<FormatInput>>,
    transcode_formats: Option<Vec<FormatInput>>,
    transcode_templates: Option<Vec<String>>,
}

impl UpdateLiveAppRecordConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = config_key(params)?;
        Ok(Self {
            domain,
            app,
            stream,
            oss_endpoint: oss_endpoint(params)?,
            formats: parse_formats(params, "RecordFormat")?,
            transcode_formats: parse_formats(params, "TranscodeRecordFormat")?,
            on_demand: on_demand(params)?,
            delay_time: delay_time(params)?,
            start_time: time_param(params, "StartTime")?,
            end_time: time_param(params, "EndTime")?,
            transcode_templates: parse_templates(params)?,
        })
    }

    /// The stored config with the given fields replaced.
    fn apply(self, existing: RecordConfigRow) -> Result<RecordConfigRow, ApiError> {
        let mut row = existing;
        row.oss_endpoint = self.oss_endpoint;
        if let Some(v) = self.on_demand {
            row.on_demand = v;
        }
        if let Some(v) = self.delay_time {
            row.delay_time = v;
        }
        if self.start_time.is_some() {
            row.start_time = self.start_time;
        }
        if self.end_time.is_some() {
            row.end_time = self.end_time;
        }
        check_window(
            row.start_time.as_deref(),
            row.end_time.as_deref(),
            &row.stream,
        )?;
        if let Some(inputs) = self.formats {
            row.formats = resolve_all(&inputs, &row.formats, false)?;
        }
        if let Some(inputs) = self.transcode_formats {
            row.transcode_formats = resolve_all(&inputs, &row.transcode_formats, false)?;
        }
        if let Some(templates) = self.transcode_templates {
            row.transcode_templates = templates;
        }
        Ok(row)
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let existing = state
            .catalog
            .record_config(&self.domain, &self.app, &self.stream)
            .await?
            .ok_or(ApiError::ConfigNotFound)?;
        let row = self.apply(existing)?;
        if !state.catalog.update_record_config(&row).await? {
            return Err(ApiError::ConfigNotFound);
        }
        (state.reload_configs)().await;
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteLiveAppRecordConfig {
    domain: String,
    app: String,
    stream: String,
}

impl DeleteLiveAppRecordConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = config_key(params)?;
        Ok(Self {
            domain,
            app,
            stream,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        if !state
            .catalog
            .delete_record_config(&self.domain, &self.app, &self.stream)
            .await?
        {
            return Err(ApiError::ConfigNotFound);
        }
        (state.reload_configs)().await;
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveRecordConfig {
    domain: String,
    app: Option<String>,
    stream: Option<String>,
    order: &'static str,
    page_num: u32,
    page_size: u32,
}

fn format_value(row: &RecordFormatRow) -> Value {
    Value::Object(
        Object::new()
            .opt_int("CycleDuration", row.cycle_duration)
            .str("Format", row.format.clone())
            .opt_str("OssObjectPrefix", row.oss_object_prefix.clone())
            .opt_int("SliceDuration", row.slice_duration)
            .opt_str("SliceOssObjectPrefix", row.slice_oss_object_prefix.clone()),
    )
}

fn config_value(row: &RecordConfigRow) -> Value {
    Value::Object(
        Object::new()
            .str("AppName", row.app.clone())
            .str("CreateTime", common::format_unix_ms(row.created_at))
            .int("DelayTime", i64::from(row.delay_time))
            .str("DomainName", row.domain.clone())
            .opt_str("EndTime", row.end_time.clone())
            // Sic: the real API and the SDK models spell it "OnDemond".
            .int("OnDemond", i64::from(row.on_demand))
            .str("OssBucket", row.oss_bucket.clone())
            .str("OssEndpoint", row.oss_endpoint.clone())
            .wrapped_list(
                "RecordFormatList",
                "RecordFormat",
                row.formats.iter().map(format_value).collect(),
            )
            .opt_str("StartTime", row.start_time.clone())
            .str("StreamName", row.stream.clone())
            .wrapped_list(
                "TranscodeRecordFormatList",
                "RecordFormat",
                row.transcode_formats.iter().map(format_value).collect(),
            )
            .wrapped_list(
                "TranscodeTemplates",
                "Templates",
                row.transcode_templates
                    .iter()
                    .map(|t| Value::Str(t.clone()))
                    .collect(),
            ),
    )
}

impl DescribeLiveRecordConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let app = params
            .optional("AppName")
            .map(|a| common::name("AppName", a, true))
            .transpose()?;
        let stream = params
            .optional("StreamName")
            .map(|s| common::name("StreamName", s, true))
            .transpose()?;
        let order = common::one_of(params, "Order", &["asc", "desc"], "asc")?;
        let page_num = common::int_in(params, "PageNum", 1..=common::MAX_PAGE_NUM, 1)?;
        let page_size = common::int_in(params, "PageSize", PAGE_SIZE_RANGE, DEFAULT_PAGE_SIZE)?;
        let to_u32 = |v: i64, name: &str| {
            u32::try_from(v).map_err(|_| ApiError::InvalidParameter(name.to_owned()))
        };
        Ok(Self {
            domain,
            app,
            stream,
            order,
            page_num: to_u32(page_num, "PageNum")?,
            page_size: to_u32(page_size, "PageSize")?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let page = Page {
            num: self.page_num,
            size: self.page_size,
            desc: self.order == "desc",
        };
        let (rows, total) = state
            .catalog
            .record_configs(
                &self.domain,
                self.app.as_deref(),
                self.stream.as_deref(),
                page,
            )
            .await?;
        let total_num = i64::try_from(total).unwrap_or(i64::MAX);
        let total_page =
            i64::try_from(common::total_pages(total, self.page_size)).unwrap_or(i64::MAX);
        Ok(Reply::new()
            .wrapped_list(
                "LiveAppRecordList",
                "LiveAppRecord",
                rows.iter().map(config_value).collect(),
            )
            .str("Order", self.order)
            .int("PageNum", i64::from(self.page_num))
            .int("PageSize", i64::from(self.page_size))
            .int("TotalNum", total_num)
            .int("TotalPage", total_page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "DomainName=example.com&AppName=liveApp&OssEndpoint=oss-cn-shanghai.aliyuncs.com&OssBucket=bkt";

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes(), None, 1 << 16).unwrap()
    }

    fn add(extra: &str) -> Result<RecordConfigRow, ApiError> {
        AddLiveAppRecordConfig::parse(&params(&format!("{BASE}&{extra}"))).map(|a| a.config)
    }

    fn add_code(extra: &str) -> String {
        add(extra).unwrap_err().code()
    }

    #[test]
    fn api_md_example_is_accepted_with_defaults_filled() {
        let q = "AppName=liveApp&DelayTime=180&DomainName=example.com&OnDemand=1&OssBucket=bkt&OssEndpoint=oss-cn-shanghai.aliyuncs.com&RecordFormat.1.CycleDuration=3600&RecordFormat.1.Format=m3u8&RecordFormat.1.OssObjectPrefix=record/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}&RecordFormat.1.SliceOssObjectPrefix=record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}&StreamName=s1";
        let row = AddLiveAppRecordConfig::parse(&params(q)).unwrap().config;
        assert_eq!(row.domain, "example.com");
        assert_eq!(row.stream, "s1");
        assert_eq!(row.on_demand, 1);
        assert_eq!(row.delay_time, 180);
        assert_eq!(
            row.formats,
            vec![RecordFormatRow {
                format: "m3u8".into(),
                oss_object_prefix: Some(
                    "record/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}".into()
                ),
                slice_oss_object_prefix: Some(
                    "record/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}".into()
                ),
                cycle_duration: Some(3600),
                slice_duration: Some(30),
            }]
        );

        let row = add("RecordFormat.1.Format=MP4").unwrap();
        assert_eq!(row.stream, "*");
        assert_eq!(row.on_demand, 0);
        assert_eq!(row.delay_time, 180);
        assert_eq!(row.formats[0].format, "mp4");
        assert_eq!(row.formats[0].cycle_duration, Some(3600));
        assert_eq!(row.formats[0].slice_duration, None);
        assert_eq!(row.formats[0].slice_oss_object_prefix, None);
        assert_eq!(
            row.formats[0].oss_object_prefix.as_deref(),
            Some(DEFAULT_OBJECT_PREFIX)
        );
        let row = add(
            "RecordFormat.1.Format=cmaf&RecordFormat.1.SliceOssObjectPrefix=s/{UnixTimestamp}-{Sequence}",
        )
        .unwrap();
        assert_eq!(row.formats[0].cycle_duration, Some(21600));
    }

    #[test]
    fn missing_parameters() {
        let q =
            "DomainName=example.com&AppName=a&OssEndpoint=e&OssBucket=b&RecordFormat.1.Format=mp4";
        for (drop, code) in [
            ("DomainName", "MissingDomainName"),
            ("AppName", "MissingAppName"),
            ("OssEndpoint", "MissingOssEndpoint"),
            ("OssBucket", "MissingOssBucket"),
            ("RecordFormat.1.Format", "MissingRecordFormat"),
        ] {
            let q: Vec<&str> = q
                .split('&')
                .filter(|kv| kv.split('=').next() != Some(drop))
                .collect();
            let err = AddLiveAppRecordConfig::parse(&params(&q.join("&"))).unwrap_err();
            assert_eq!(err.code(), code, "{drop}");
        }
        assert_eq!(
            add_code("RecordFormat.1.Format=m3u8"),
            "MissingSliceOssObjectPrefix"
        );
        assert_eq!(
            add_code("RecordFormat.1.Format=mp4&StartTime=2026-11-25T00:00:00Z&StreamName=s"),
            "MissingEndTime"
        );
    }

    #[test]
    fn invalid_values_get_documented_codes() {
        let cases = [
            ("RecordFormat.1.Format=avi", "InvalidFormat.Malformed"),
            (
                "RecordFormat.1.CycleDuration=300",
                "InvalidFormat.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.2.Format=mp4",
                "InvalidFormat.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.CycleDuration=299",
                "InvalidCycleDuration.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.CycleDuration=21601",
                "InvalidCycleDuration.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.CycleDuration=1h",
                "InvalidCycleDuration.Malformed",
            ),
            (
                "RecordFormat.1.Format=m3u8&RecordFormat.1.SliceDuration=4&RecordFormat.1.SliceOssObjectPrefix={UnixTimestamp}{Sequence}",
                "InvalidParameter",
            ),
            (
                "RecordFormat.1.Format=m3u8&RecordFormat.1.SliceDuration=31&RecordFormat.1.SliceOssObjectPrefix={UnixTimestamp}{Sequence}",
                "InvalidParameter",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=rec/{StartTime}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=rec/{EndTime}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=rec/{StartTime}{EndTime}{Foo}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=rec/{UnixTimestamp}{StartTime}{EndTime}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=../{StartTime}{EndTime}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=/abs/{StartTime}{EndTime}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix={StartTime{EndTime}}",
                "InvalidOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=m3u8&RecordFormat.1.SliceOssObjectPrefix=s/{UnixTimestamp}",
                "InvalidSliceOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=m3u8&RecordFormat.1.SliceOssObjectPrefix=s/{Sequence}",
                "InvalidSliceOssObjectPrefix.Malformed",
            ),
            (
                "RecordFormat.1.Format=m3u8&RecordFormat.1.SliceOssObjectPrefix=s/{UnixTimestamp}{Sequence}{StartTime}",
                "InvalidSliceOssObjectPrefix.Malformed",
            ),
            ("RecordFormat.1.Format=mp4&OnDemand=3", "InvalidParameter"),
            ("RecordFormat.1.Format=mp4&OnDemand=x", "InvalidParameter"),
            ("RecordFormat.1.Format=mp4&DelayTime=14", "InvalidParameter"),
            (
                "RecordFormat.1.Format=mp4&DelayTime=21601",
                "InvalidParameter",
            ),
            (
                "RecordFormat.1.Format=mp4&StreamName=s&StartTime=2026-11-25&EndTime=2026-11-26T00:00:00Z",
                "InvalidStartTime.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&StreamName=s&StartTime=2026-11-25T00:00:00Z&EndTime=tomorrow",
                "InvalidEndTime.Malformed",
            ),
            (
                "RecordFormat.1.Format=mp4&StreamName=s&StartTime=2026-11-25T00:00:00Z&EndTime=2026-11-25T00:00:00Z",
                "InvalidEndTime.Mismatch",
            ),
            (
                "RecordFormat.1.Format=mp4&StreamName=s&StartTime=2026-11-25T00:00:00Z&EndTime=2026-12-02T00:00:01Z",
                "InvalidEndTime.Mismatch",
            ),
            (
                "RecordFormat.1.Format=mp4&StartTime=2026-11-25T00:00:00Z&EndTime=2026-11-26T00:00:00Z",
                "InvalidParameter",
            ),
            (
                "RecordFormat.1.Format=mp4&StreamName=a%20b",
                "InvalidParameter",
            ),
            (
                "RecordFormat.1.Format=mp4&TranscodeTemplates.1=a%20b",
                "InvalidParameter",
            ),
        ];
        for (extra, code) in cases {
            assert_eq!(add_code(extra), code, "{extra}");
        }
        let long = format!(
            "RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix={}{{StartTime}}{{EndTime}}",
            "a".repeat(240)
        );
        assert_eq!(add_code(&long), "InvalidOssObjectPrefix.Malformed");
        for bucket in ["a/b", "..", ".spool", &"b".repeat(64)] {
            let q = format!(
                "DomainName=d.com&AppName=a&OssEndpoint=e&OssBucket={bucket}&RecordFormat.1.Format=mp4"
            );
            assert_eq!(
                AddLiveAppRecordConfig::parse(&params(&q))
                    .unwrap_err()
                    .code(),
                "InvalidOssBucket.Malformed",
                "{bucket}"
            );
        }
    }

    #[test]
    fn accepted_edges() {
        let row = add("RecordFormat.1.Format=mp4&StreamName=s&StartTime=2026-11-25T00:00:00Z&EndTime=2026-12-02T00:00:00Z&DelayTime=15&OnDemand=7&TranscodeTemplates.1=sd&TranscodeTemplates.2=hd")
            .unwrap();
        assert_eq!(row.delay_time, 15);
        assert_eq!(row.on_demand, 7);
        assert_eq!(row.transcode_templates, ["sd", "hd"]);
        assert_eq!(row.start_time.as_deref(), Some("2026-11-25T00:00:00Z"));
        let q = "DomainName=d.com&AppName=*&OssEndpoint=e&OssBucket=b&TranscodeRecordFormat.1.Format=flv";
        let row = AddLiveAppRecordConfig::parse(&params(q)).unwrap().config;
        assert_eq!(row.app, "*");
        assert!(row.formats.is_empty());
        assert_eq!(row.transcode_formats[0].format, "flv");
        let row = add("RecordFormat.1.Format=mp4&RecordFormat.1.OssObjectPrefix=r/{DomainName}/{Sequence}_{StartTime}_{EscapedEndTime}").unwrap();
        assert_eq!(
            row.formats[0].oss_object_prefix.as_deref(),
            Some("r/{DomainName}/{Sequence}_{StartTime}_{EscapedEndTime}")
        );
    }

    fn existing() -> RecordConfigRow {
        add("StreamName=s&RecordFormat.1.Format=m3u8&RecordFormat.1.OssObjectPrefix=m/{StartTime}{EndTime}&RecordFormat.1.SliceOssObjectPrefix=m/{UnixTimestamp}{Sequence}&RecordFormat.1.CycleDuration=600&RecordFormat.2.Format=mp4&RecordFormat.2.OssObjectPrefix=p/{StartTime}{EndTime}&DelayTime=60")
            .unwrap()
    }

    fn update(extra: &str, row: RecordConfigRow) -> Result<RecordConfigRow, ApiError> {
        let q = format!(
            "DomainName=example.com&AppName=liveApp&StreamName=s&OssEndpoint=new-endpoint&{extra}"
        );
        UpdateLiveAppRecordConfig::parse(&params(&q))?.apply(row)
    }

    #[test]
    fn update_replaces_only_given_fields() {
        let old = existing();
        let new = update("DelayTime=30", old.clone()).unwrap();
        assert_eq!(new.delay_time, 30);
        assert_eq!(new.oss_endpoint, "new-endpoint");
        assert_eq!(new.formats, old.formats);
        assert_eq!(new.on_demand, old.on_demand);
        assert_eq!(new.oss_bucket, old.oss_bucket);
    }

    #[test]
    fn update_format_list_keeps_each_formats_prefixes() {
        let old = existing();
        let new = update(
            "RecordFormat.1.Format=m3u8&RecordFormat.1.SliceDuration=10&RecordFormat.2.Format=flv",
            old.clone(),
        )
        .unwrap();
        assert_eq!(new.formats.len(), 2);
        let m3u8 = &new.formats[0];
        assert_eq!(
            m3u8.oss_object_prefix.as_deref(),
            Some("m/{StartTime}{EndTime}")
        );
        assert_eq!(
            m3u8.slice_oss_object_prefix.as_deref(),
            Some("m/{UnixTimestamp}{Sequence}")
        );
        assert_eq!(m3u8.slice_duration, Some(10));
        assert_eq!(m3u8.cycle_duration, Some(DEFAULT_SEGMENTED_CYCLE));
        let flv = &new.formats[1];
        assert_eq!(flv.format, "flv");
        assert_eq!(
            flv.oss_object_prefix.as_deref(),
            Some(DEFAULT_OBJECT_PREFIX)
        );
        // A new segmented format gets the default slice prefix on Update (it cannot carry one).
        let new = update("RecordFormat.1.Format=cmaf", old).unwrap();
        assert_eq!(
            new.formats[0].slice_oss_object_prefix.as_deref(),
            Some(DEFAULT_SLICE_OBJECT_PREFIX)
        );
    }

    #[test]
    fn update_validates_the_resulting_window() {
        let mut old = existing();
        assert_eq!(
            update("StartTime=2026-11-25T00:00:00Z", old.clone()).unwrap_err(),
            ApiError::Missing("EndTime")
        );
        old.start_time = Some("2026-11-25T00:00:00Z".into());
        old.end_time = Some("2026-11-26T00:00:00Z".into());
        let new = update("EndTime=2026-11-27T00:00:00Z", old.clone()).unwrap();
        assert_eq!(new.start_time.as_deref(), Some("2026-11-25T00:00:00Z"));
        assert_eq!(new.end_time.as_deref(), Some("2026-11-27T00:00:00Z"));
        assert_eq!(
            update("EndTime=2026-11-24T00:00:00Z", old).unwrap_err(),
            ApiError::EndTimeMismatch
        );
        let q = "DomainName=example.com&AppName=liveApp&StreamName=s";
        assert_eq!(
            UpdateLiveAppRecordConfig::parse(&params(q)).unwrap_err(),
            ApiError::Missing("OssEndpoint")
        );
    }

    #[test]
    fn describe_parameters() {
        let d = DescribeLiveRecordConfig::parse(&params("DomainName=example.com")).unwrap();
        assert_eq!((d.order, d.page_num, d.page_size), ("asc", 1, 10));
        assert_eq!(d.app, None);
        for (q, code) in [
            ("", "MissingDomainName"),
            ("DomainName=example.com&PageSize=4", "InvalidParameter"),
            ("DomainName=example.com&PageSize=31", "InvalidParameter"),
            ("DomainName=example.com&PageNum=0", "InvalidParameter"),
            ("DomainName=example.com&Order=up", "InvalidParameter"),
            ("DomainName=example.com&AppName=a%2Fb", "InvalidParameter"),
        ] {
            assert_eq!(
                DescribeLiveRecordConfig::parse(&params(q))
                    .unwrap_err()
                    .code(),
                code,
                "{q}"
            );
        }
    }

    #[test]
    fn describe_shape_matches_the_sdk_model() {
        let mut row = existing();
        row.created_at = 0;
        row.transcode_templates = vec!["t1".into()];
        let json = crate::response::to_json(&Object::new().value("X", config_value(&row)));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let x = &v["X"];
        assert_eq!(x["OnDemond"], 0);
        assert!(x.get("OnDemand").is_none());
        assert_eq!(x["CreateTime"], "1970-01-01T00:00:00Z");
        assert_eq!(x["DelayTime"], 60);
        assert_eq!(x["StreamName"], "s");
        assert_eq!(x["RecordFormatList"]["RecordFormat"][0]["Format"], "m3u8");
        assert_eq!(
            x["RecordFormatList"]["RecordFormat"][0]["SliceDuration"],
            30
        );
        assert_eq!(x["RecordFormatList"]["RecordFormat"][1]["Format"], "mp4");
        assert!(
            x["RecordFormatList"]["RecordFormat"][1]
                .get("SliceDuration")
                .is_none()
        );
        assert_eq!(
            x["TranscodeRecordFormatList"]["RecordFormat"],
            serde_json::json!([])
        );
        assert_eq!(
            x["TranscodeTemplates"]["Templates"],
            serde_json::json!(["t1"])
        );
        assert!(x.get("StartTime").is_none());
    }
}
