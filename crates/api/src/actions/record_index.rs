//! The record index: `DescribeLiveStreamRecordIndexFiles`, `DescribeLiveStreamRecordIndexFile`,
//! `DescribeLiveStreamRecordContent`, `CreateLiveStreamRecordIndexFiles`,
//! `DeleteLiveStreamRecordIndexFiles`. Rows come from the catalog; RecordUrls are signed
//! playback URLs minted as the answer is made (`crate::vod`).

use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use liverec_catalog::{
    ObjectKind, Page, RecordingObject, RecordingQuery, RecordingRow, SegmentRow, unix_ms,
};
use liverec_mux::hls::MediaPlaylist;
use liverec_storage::layout::{relative_uri, sanitize};

use super::Reply;
use super::common;
use super::record_config::{check_bucket, oss_bucket};
use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::{Object, Value};

/// Longest StartTime–EndTime range of the index queries (Alibaba: 4 days).
pub const MAX_RANGE: Duration = Duration::from_secs(4 * 24 * 3600);
/// DescribeLiveStreamRecordIndexFiles PageSize (Alibaba: 5–30, default 10).
pub const PAGE_SIZE_RANGE: RangeInclusive<i64> = 5..=30;
pub const DEFAULT_PAGE_SIZE: i64 = 10;
/// Most `RecordId.N` of one DeleteLiveStreamRecordIndexFiles.
pub const MAX_DELETE_IDS: usize = 20;
/// Longest RecordId accepted.
const MAX_RECORD_ID_LEN: usize = 64;
/// Longest OssEndpoint accepted by CreateLiveStreamRecordIndexFiles.
const MAX_ENDPOINT_LEN: usize = 255;

/// `(DomainName, AppName, StreamName)`, all required, no wildcards.
fn stream_key(params: &Params) -> Result<(String, String, String), ApiError> {
    let domain = common::domain(params)?;
    let app = common::name("AppName", params.required("AppName")?, false)?;
    let stream = common::name("StreamName", params.required("StreamName")?, false)?;
    Ok((domain, app, stream))
}

/// `StartTime` and `EndTime` of the index queries (see [`common::time_range`]).
fn time_range(params: &Params) -> Result<(i64, i64), ApiError> {
    common::time_range(params, MAX_RANGE)
}

/// One index row as `RecordIndexInfo` / `RecordInfo` (the latter has no `Format`).
fn index_info(state: &ApiState, row: &RecordingRow, with_format: bool) -> Object {
    let mut o = Object::new()
        .str("AppName", row.app.clone())
        .str("CreateTime", common::format_unix_ms(row.created_at))
        .str("DomainName", row.domain.clone())
        .value("Duration", Value::Float(row.duration_secs))
        .str("EndTime", common::format_unix_ms(row.end_time));
    if with_format {
        o = o.str("Format", row.format.clone());
    }
    o.int("Height", i64::from(row.height))
        .str("OssBucket", row.oss_bucket.clone())
        .str("OssEndpoint", row.oss_endpoint.clone())
        .str("OssObject", row.oss_object.clone())
        .str("RecordId", row.record_id.clone())
        .str("RecordUrl", state.vod.url(&row.oss_bucket, &row.oss_object))
        .str("StartTime", common::format_unix_ms(row.start_time))
        .str("StreamName", row.stream.clone())
        .int("Width", i64::from(row.width))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveStreamRecordIndexFiles {
    domain: String,
    app: String,
    stream: String,
    start: i64,
    end: i64,
    page: Page,
}

impl DescribeLiveStreamRecordIndexFiles {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = stream_key(params)?;
        let (start, end) = time_range(params)?;
        let size = common::int_in(params, "PageSize", PAGE_SIZE_RANGE, DEFAULT_PAGE_SIZE)?;
        let num = common::int_in(params, "PageNum", 1..=common::MAX_PAGE_NUM, 1)?;
        let desc = common::one_of(params, "Order", &["asc", "desc"], "asc")? == "desc";
        Ok(Self {
            domain,
            app,
            stream,
            start,
            end,
            page: Page {
                num: u32::try_from(num).unwrap_or(1),
                size: u32::try_from(size).unwrap_or(10),
                desc,
            },
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let query = RecordingQuery {
            domain: self.domain,
            app: self.app,
            stream: self.stream,
            start: self.start,
            end: self.end,
            page: self.page,
        };
        let (rows, total) = state.catalog.recordings(&query).await?;
        let items = rows
            .iter()
            .map(|row| Value::Object(index_info(state, row, true)))
            .collect();
        Ok(Reply::new()
            .str("Order", if self.page.desc { "desc" } else { "asc" })
            .int("PageNum", i64::from(self.page.num))
            .int("PageSize", i64::from(self.page.size))
            .wrapped_list("RecordIndexInfoList", "RecordIndexInfo", items)
            .int("TotalNum", i64::try_from(total).unwrap_or(i64::MAX))
            .int(
                "TotalPage",
                i64::try_from(common::total_pages(total, self.page.size)).unwrap_or(i64::MAX),
            ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveStreamRecordIndexFile {
    domain: String,
    app: String,
    stream: String,
    record_id: String,
}

impl DescribeLiveStreamRecordIndexFile {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = stream_key(params)?;
        let record_id = params.required("RecordId")?;
        if record_id.len() > MAX_RECORD_ID_LEN {
            return Err(ApiError::RecordIdNotFound);
        }
        Ok(Self {
            domain,
            app,
            stream,
            record_id: record_id.to_owned(),
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let row = state
            .catalog
            .recording(&self.domain, &self.app, &self.stream, &self.record_id)
            .await?
            .ok_or(ApiError::RecordIdNotFound)?;
        Ok(Reply::new().object("RecordIndexInfo", index_info(state, &row, true)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveStreamRecordContent {
    domain: String,
    app: String,
    stream: String,
    start: i64,
    end: i64,
}

impl DescribeLiveStreamRecordContent {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = stream_key(params)?;
        let (start, end) = time_range(params)?;
        Ok(Self {
            domain,
            app,
            stream,
            start,
            end,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let periods = state
            .catalog
            .record_content(&self.domain, &self.app, &self.stream, self.start, self.end)
            .await?;
        let items = periods
            .into_iter()
            .map(|p| {
                Value::Object(
                    Object::new()
                        .value("Duration", Value::Float(p.duration_secs))
                        .str("EndTime", common::format_unix_ms(p.end_time))
                        .str("OssBucket", p.oss_bucket)
                        .str("OssEndpoint", p.oss_endpoint)
                        .str("OssObjectPrefix", p.object_prefix)
                        .str("StartTime", common::format_unix_ms(p.start_time)),
                )
            })
            .collect();
        Ok(Reply::new().wrapped_list("RecordContentInfoList", "RecordContentInfo", items))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateLiveStreamRecordIndexFiles {
    domain: String,
    app: String,
    stream: String,
    start: i64,
    end: i64,
    end_included: bool,
    bucket: String,
    endpoint: String,
    object: String,
}

/// Extension of a generated index: playback serves `.m3u8` objects as playlists, signing
/// their segment URIs; under any other name the index would not play.
const INDEX_EXTENSION: &str = ".m3u8";

/// The OssObject of a generated index: a safe relative name ending in `.m3u8`, with no
/// component starting with `.` (the spool is the target's `.spool/`, and hidden names are
/// never recordings).
fn index_object(value: &str) -> Result<String, ApiError> {
    let object = sanitize(value).map_err(|_| ApiError::MalformedValue("OssObject"))?;
    if object.split('/').any(|part| part.starts_with('.')) || !object.ends_with(INDEX_EXTENSION) {
        return Err(ApiError::MalformedValue("OssObject"));
    }
    Ok(object)
}

impl CreateLiveStreamRecordIndexFiles {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = stream_key(params)?;
        let (start, end) = time_range(params)?;
        let end_included = common::bool_param(params, "EndTimeIncluded")?.unwrap_or(false);
        let bucket = oss_bucket(params).map_err(|e| match e {
            ApiError::Malformed(name) => ApiError::MalformedValue(name),
            e => e,
        })?;
        let endpoint = params.required("OssEndpoint")?;
        if endpoint.len() > MAX_ENDPOINT_LEN || endpoint.chars().any(char::is_control) {
            return Err(ApiError::InvalidParameter("OssEndpoint".to_owned()));
        }
        let object = index_object(params.required("OssObject")?)?;
        Ok(Self {
            domain,
            app,
            stream,
            start,
            end,
            end_included,
            bucket,
            endpoint: endpoint.to_owned(),
            object,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        check_bucket(state, &self.bucket)?;
        let live = state.hub.online().iter().any(|(info, _)| {
            info.key.domain == self.domain
                && info.key.app == self.app
                && info.key.stream == self.stream
        });
        if !live
            && !state
                .catalog
                .stream_seen(&self.domain, &self.app, &self.stream)
                .await?
        {
            return Err(ApiError::StreamNeverIngested);
        }
        // TS segments where the range has any, else CMAF ones.
        let mut segments = Vec::new();
        for format in ["m3u8", "cmaf"] {
            segments = state
                .catalog
                .segments_in_range(
                    &self.domain,
                    &self.app,
                    &self.stream,
                    format,
                    self.start,
                    self.end,
                    self.end_included,
                )
                .await?;
            if !segments.is_empty() {
                break;
            }
        }
        let Some(first) = segments.first() else {
            return Err(ApiError::NoRecordContent);
        };
        if segments.iter().any(|s| s.bucket != self.bucket) {
            return Err(ApiError::ConfigChanged);
        }
        let format = if first.init_object.is_some() {
            "cmaf"
        } else {
            "m3u8"
        };
        // Overwriting a generated index is Alibaba's behaviour; a recording's own file is
        // never overwritten (its row would point at a playlist).
        if state
            .catalog
            .rows_naming(&self.bucket, &self.object)
            .await?
            .iter()
            .any(|(_, generated)| !generated)
        {
            return Err(ApiError::MalformedValue("OssObject"));
        }
        let text = vod_playlist(&self.object, &segments);
        let target = state.storage.target(&self.bucket);
        target
            .write(&self.object, Bytes::from(text.clone()))
            .await
            .map_err(|e| ApiError::Internal(format!("storing the index {}: {e}", self.object)))?;
        let (width, height) = match state
            .catalog
            .recording(&self.domain, &self.app, &self.stream, &first.record_id)
            .await?
        {
            Some(source) => (source.width, source.height),
            None => (0, 0),
        };
        let start_time = first.start_time;
        let end_time = segments
            .iter()
            .map(|s| s.start_time + s.duration_ms)
            .max()
            .unwrap_or(start_time);
        let duration_ms: i64 = segments.iter().map(|s| s.duration_ms).sum();
        let now = unix_ms(std::time::SystemTime::now());
        let row = RecordingRow {
            record_id: uuid::Uuid::new_v4().to_string(),
            domain: self.domain.clone(),
            app: self.app.clone(),
            stream: self.stream.clone(),
            format: format.to_owned(),
            oss_bucket: self.bucket.clone(),
            oss_endpoint: self.endpoint.clone(),
            oss_object: self.object.clone(),
            start_time,
            end_time,
            duration_secs: duration_ms as f64 / 1000.0,
            size: i64::try_from(text.len()).unwrap_or(i64::MAX),
            width,
            height,
            created_at: now,
            session_id: String::new(),
            object_prefix: String::new(),
            generated: true,
        };
        // Only the playlist belongs to the new row: its segments stay the recordings' own.
        let objects = [RecordingObject {
            seq: 0,
            bucket: self.bucket.clone(),
            object: self.object.clone(),
            kind: ObjectKind::Playlist,
            start_time,
            duration_ms,
            size: row.size,
        }];
        // The object was overwritten: rows that named it now name the new index.
        state
            .catalog
            .replace_generated_index(&row, &objects)
            .await?;
        Ok(Reply::new().object("RecordInfo", index_info(state, &row, false)))
    }
}

/// A VOD playlist over `segments` (in order), relative to `object`: a discontinuity wherever
/// one recording's segments end and another's begin, with its init segment for CMAF.
fn vod_playlist(object: &str, segments: &[SegmentRow]) -> String {
    let mut playlist = MediaPlaylist::new();
    let mut previous: Option<&SegmentRow> = None;
    for segment in segments {
        let init = segment
            .init_object
            .as_deref()
            .map(|i| relative_uri(object, i));
        let uri = relative_uri(object, &segment.object);
        let seconds = segment.duration_ms as f64 / 1000.0;
        match previous {
            None => {
                playlist.map_uri = init;
                playlist.push(uri, seconds);
            }
            Some(p) => {
                let new_recording = p.record_id != segment.record_id;
                let new_init = (p.init_object != segment.init_object)
                    .then_some(init)
                    .flatten();
                playlist.push_after_break(uri, seconds, new_recording, new_init);
            }
        }
        previous = Some(segment);
    }
    playlist.ended = true;
    playlist.to_m3u8()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteLiveStreamRecordIndexFiles {
    domain: String,
    app: String,
    stream: String,
    record_ids: Vec<String>,
    remove_file: bool,
}

impl DeleteLiveStreamRecordIndexFiles {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let (domain, app, stream) = stream_key(params)?;
        let ids = params.list("RecordId")?;
        if ids.is_empty() {
            return Err(ApiError::Missing("RecordId"));
        }
        if ids.len() > MAX_DELETE_IDS {
            return Err(ApiError::InvalidParameter("RecordId".to_owned()));
        }
        let remove_file = match common::bool_param(params, "RemoveFile")? {
            Some(v) => v,
            None => return Err(ApiError::Missing("RemoveFile")),
        };
        Ok(Self {
            domain,
            app,
            stream,
            record_ids: ids.into_iter().map(str::to_owned).collect(),
            remove_file,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let mut results = Vec::new();
        for id in &self.record_ids {
            let message = self.delete_one(state, id).await?;
            results.push(Value::Object(
                Object::new()
                    .str("Message", message)
                    .str("RecordId", id.clone()),
            ));
        }
        Ok(Reply::new()
            .str("Code", "OK")
            .str("Message", "OK")
            .wrapped_list("RecordDeleteInfoList", "RecordDeleteInfo", results))
    }

    /// `OK`, `FileNotFound` (no such row of this stream) or `AccessDenied` (the storage
    /// target refused to delete; the row stays).
    async fn delete_one(&self, state: &ApiState, id: &str) -> Result<&'static str, ApiError> {
        if id.len() > MAX_RECORD_ID_LEN
            || state
                .catalog
                .recording(&self.domain, &self.app, &self.stream, id)
                .await?
                .is_none()
        {
            return Ok("FileNotFound");
        }
        if self.remove_file {
            let objects = state.catalog.recording_objects(id).await?;
            let row = state
                .catalog
                .recording(&self.domain, &self.app, &self.stream, id)
                .await?;
            let mut names: Vec<(String, String)> =
                objects.into_iter().map(|o| (o.bucket, o.object)).collect();
            if names.is_empty()
                && let Some(row) = row
            {
                // Rows indexed before objects were listed name their file only.
                names.push((row.oss_bucket, row.oss_object));
            }
            for (bucket, object) in names {
                if let Err(err) = state.storage.target(&bucket).delete(&object).await {
                    tracing::warn!(bucket, object, %err, record_id = id, "cannot delete a recording's object; the index row stays");
                    return Ok("AccessDenied");
                }
            }
        }
        state.catalog.delete_recording(id).await?;
        Ok("OK")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes(), None, 4096).unwrap()
    }

    const KEY: &str = "DomainName=example.com&AppName=live&StreamName=s1";

    #[test]
    fn time_ranges() {
        let p = |range: &str| time_range(&params(range));
        assert!(p("StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-05T00:00:00Z").is_ok());
        assert_eq!(
            p("StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-05T00:00:01Z"),
            Err(ApiError::EndTimeMismatch)
        );
        assert_eq!(
            p("StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-01T00:00:00Z"),
            Err(ApiError::EndTimeMismatch)
        );
        assert_eq!(
            p("StartTime=2026-12-01&EndTime=2026-12-05T00:00:00Z"),
            Err(ApiError::MalformedValue("StartTime"))
        );
        assert_eq!(
            p("StartTime=2026-12-01T00:00:00Z&EndTime=x"),
            Err(ApiError::MalformedValue("EndTime"))
        );
        assert_eq!(
            p("EndTime=2026-12-01T00:00:00Z"),
            Err(ApiError::Missing("StartTime"))
        );
    }

    #[test]
    fn index_files_paging() {
        let q = format!(
            "{KEY}&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02T00:00:00Z&PageSize=5&PageNum=3&Order=desc"
        );
        let a = DescribeLiveStreamRecordIndexFiles::parse(&params(&q)).unwrap();
        assert_eq!(
            a.page,
            Page {
                num: 3,
                size: 5,
                desc: true
            }
        );
        for bad in ["PageSize=4", "PageSize=31", "PageNum=0", "Order=up"] {
            let q =
                format!("{KEY}&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02T00:00:00Z&{bad}");
            assert!(
                DescribeLiveStreamRecordIndexFiles::parse(&params(&q)).is_err(),
                "{bad}"
            );
        }
        let q = "DomainName=example.com&AppName=live&StreamName=*&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02T00:00:00Z";
        assert!(DescribeLiveStreamRecordIndexFiles::parse(&params(q)).is_err());
    }

    #[test]
    fn create_checks_bucket_object_and_flags() {
        let base = format!(
            "{KEY}&StartTime=2026-12-01T00:00:00Z&EndTime=2026-12-02T00:00:00Z&OssEndpoint=e"
        );
        let ok = format!("{base}&OssBucket=b&OssObject=idx/a.m3u8&EndTimeIncluded=true");
        let a = CreateLiveStreamRecordIndexFiles::parse(&params(&ok)).unwrap();
        assert!(a.end_included);
        assert_eq!(a.object, "idx/a.m3u8");
        assert_eq!(
            CreateLiveStreamRecordIndexFiles::parse(&params(&format!(
                "{base}&OssBucket=../x&OssObject=a.m3u8"
            ))),
            Err(ApiError::MalformedValue("OssBucket"))
        );
        assert_eq!(
            CreateLiveStreamRecordIndexFiles::parse(&params(&format!(
                "{base}&OssBucket=b&OssObject=../a.m3u8"
            ))),
            Err(ApiError::MalformedValue("OssObject"))
        );
        for bad in [
            ".spool/a.m3u8",
            "idx/.a.m3u8",
            "idx/a.mp4",
            "idx/a",
            "a/./b.m3u8",
        ] {
            assert_eq!(
                CreateLiveStreamRecordIndexFiles::parse(&params(&format!(
                    "{base}&OssBucket=b&OssObject={bad}"
                ))),
                Err(ApiError::MalformedValue("OssObject")),
                "{bad}"
            );
        }
        assert_eq!(
            CreateLiveStreamRecordIndexFiles::parse(&params(&format!("{base}&OssBucket=b"))),
            Err(ApiError::Missing("OssObject"))
        );
    }

    #[test]
    fn delete_needs_ids_and_remove_file() {
        let q = format!("{KEY}&RecordId.1=a&RecordId.2=b&RemoveFile=true");
        let a = DeleteLiveStreamRecordIndexFiles::parse(&params(&q)).unwrap();
        assert_eq!(a.record_ids, vec!["a", "b"]);
        assert!(a.remove_file);
        assert_eq!(
            DeleteLiveStreamRecordIndexFiles::parse(&params(&format!("{KEY}&RemoveFile=true"))),
            Err(ApiError::Missing("RecordId"))
        );
        assert_eq!(
            DeleteLiveStreamRecordIndexFiles::parse(&params(&format!("{KEY}&RecordId.1=a"))),
            Err(ApiError::Missing("RemoveFile"))
        );
        let many: String = (1..=21).map(|i| format!("&RecordId.{i}=x{i}")).collect();
        assert!(
            DeleteLiveStreamRecordIndexFiles::parse(&params(&format!(
                "{KEY}{many}&RemoveFile=false"
            )))
            .is_err()
        );
    }

    #[test]
    fn vod_playlists_mark_discontinuities_and_inits() {
        let seg = |record: &str, object: &str, init: Option<&str>| SegmentRow {
            record_id: record.into(),
            bucket: "b".into(),
            endpoint: String::new(),
            object: object.into(),
            start_time: 0,
            duration_ms: 4000,
            init_object: init.map(str::to_owned),
        };
        let text = vod_playlist(
            "idx/all.m3u8",
            &[
                seg("r1", "rec/1_0.ts", None),
                seg("r1", "rec/1_1.ts", None),
                seg("r2", "rec/2_0.ts", None),
            ],
        );
        assert!(text.contains("../rec/1_0.ts"), "{text}");
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1, "{text}");
        assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"));
        let text = vod_playlist(
            "rec/all.m3u8",
            &[
                seg("r1", "rec/1_0.m4s", Some("rec/1_0_init.mp4")),
                seg("r2", "rec/2_0.m4s", Some("rec/2_0_init.mp4")),
            ],
        );
        assert_eq!(text.matches("#EXT-X-MAP:URI=").count(), 2, "{text}");
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1, "{text}");
    }
}
