//! `DescribeLiveStreamsOnlineList`: the streams being published now, from the hub;
//! `DescribeLiveStreamsPublishList`: the publish history, from the catalog.

use std::ops::RangeInclusive;
use std::sync::Arc;

use liverec_catalog::{PublishOrder, PublishQuery, PublishRow};
use liverec_hub::PublishInfo;
use liverec_media::Tracks;
use time::OffsetDateTime;

use super::Reply;
use super::common;
use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::{Object, Value};

/// PageSize (Alibaba: 1–3000, default 2000).
pub const PAGE_SIZE_RANGE: RangeInclusive<i64> = 1..=3000;
pub const DEFAULT_PAGE_SIZE: i64 = 2000;
/// Longest AppName / StreamName filter.
pub const MAX_FILTER_LEN: usize = 255;
/// FLV sound format id of AAC.
pub const AAC_CODEC_ID: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryType {
    /// Substring match.
    Fuzzy,
    /// Exact match.
    Strict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveStreamsOnlineList {
    domain: String,
    app: Option<String>,
    stream: Option<String>,
    query_type: QueryType,
    /// `trans`: transcoded streams only, of which liverec has none.
    transcoded_only: bool,
    only_stream: bool,
    page_num: u32,
    page_size: u32,
}

fn filter(params: &Params, name: &'static str) -> Result<Option<String>, ApiError> {
    match params.optional(name) {
        Some(v) if v.len() > MAX_FILTER_LEN => Err(ApiError::InvalidParameter(name.to_owned())),
        v => Ok(v.map(str::to_owned)),
    }
}

impl DescribeLiveStreamsOnlineList {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let app = filter(params, "AppName")?;
        let stream = filter(params, "StreamName")?;
        let query_type = match common::one_of(params, "QueryType", &["fuzzy", "strict"], "fuzzy")? {
            "strict" => QueryType::Strict,
            _ => QueryType::Fuzzy,
        };
        let stream_type = common::one_of(params, "StreamType", &["all", "raw", "trans"], "all")?;
        let only_stream = common::one_of(params, "OnlyStream", &["yes", "no"], "no")? == "yes";
        let page_num = common::int_in(params, "PageNum", 1..=common::MAX_PAGE_NUM, 1)?;
        let page_size = common::int_in(params, "PageSize", PAGE_SIZE_RANGE, DEFAULT_PAGE_SIZE)?;
        Ok(Self {
            domain,
            app,
            stream,
            query_type,
            transcoded_only: stream_type == "trans",
            only_stream,
            page_num: common::to_u32(page_num, "PageNum")?,
            page_size: common::to_u32(page_size, "PageSize")?,
        })
    }

    fn matches(&self, wanted: Option<&str>, actual: &str) -> bool {
        match (wanted, self.query_type) {
            (None, _) => true,
            (Some(w), QueryType::Fuzzy) => actual.contains(w),
            (Some(w), QueryType::Strict) => actual == w,
        }
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let mut online: Vec<(Arc<PublishInfo>, Tracks)> = if self.transcoded_only {
            Vec::new()
        } else {
            state
                .hub
                .online()
                .into_iter()
                .filter(|(info, _)| {
                    info.key.domain == self.domain
                        && self.matches(self.app.as_deref(), &info.key.app)
                        && self.matches(self.stream.as_deref(), &info.key.stream)
                })
                .collect()
        };
        online.sort_by(|(a, _), (b, _)| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.key.cmp(&b.key))
        });
        let total = online.len() as u64;
        let size = self.page_size as usize;
        let skip = (self.page_num as usize)
            .saturating_sub(1)
            .saturating_mul(size);
        let items: Vec<Value> = online
            .iter()
            .skip(skip)
            .take(size)
            .map(|(info, tracks)| self.item(info, tracks))
            .collect();
        let total_num = i64::try_from(total).unwrap_or(i64::MAX);
        let total_page =
            i64::try_from(common::total_pages(total, self.page_size)).unwrap_or(i64::MAX);
        Ok(Reply::new()
            .wrapped_list("OnlineInfo", "LiveStreamOnlineInfo", items)
            .int("PageNum", i64::from(self.page_num))
            .int("PageSize", i64::from(self.page_size))
            .int("TotalNum", total_num)
            .int("TotalPage", total_page))
    }

    fn item(&self, info: &PublishInfo, tracks: &Tracks) -> Value {
        let key = &info.key;
        let mut o = Object::new()
            .str("AppName", key.app.clone())
            .str("DomainName", key.domain.clone())
            .str("StreamName", key.stream.clone());
        if self.only_stream {
            return Value::Object(o);
        }
        if tracks.audio.is_some() {
            o = o.int("AudioCodecId", AAC_CODEC_ID);
        }
        o = o.opt_str("ClientIp", info.peer.map(|p| p.ip().to_string()));
        if let Some(video) = &tracks.video {
            o = o.int("VideoCodecId", i64::from(video.codec.flv_id()));
            if video.width > 0 && video.height > 0 {
                o = o
                    .int("Width", i64::from(video.width))
                    .int("Height", i64::from(video.height));
            }
        }
        Value::Object(
            o.str("PublishDomain", key.domain.clone())
                .str(
                    "PublishTime",
                    common::format_utc(OffsetDateTime::from(info.started_at)),
                )
                .str("PublishType", "edge")
                .str(
                    "PublishUrl",
                    format!("rtmp://{}/{}/{}", key.domain, key.app, key.stream),
                )
                .str("Transcoded", "no"),
        )
    }
}

/// Longest StartTime–EndTime range of DescribeLiveStreamsPublishList (Alibaba: 30 days).
pub const PUBLISH_LIST_MAX_RANGE: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveStreamsPublishList {
    query: PublishQuery,
    /// `trans`: transcoded streams only, of which liverec has none.
    transcoded_only: bool,
}

impl DescribeLiveStreamsPublishList {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let (start, end) = common::time_range(params, PUBLISH_LIST_MAX_RANGE)?;
        let app = filter(params, "AppName")?;
        let stream = filter(params, "StreamName")?;
        let fuzzy = common::one_of(params, "QueryType", &["fuzzy", "strict"], "fuzzy")? == "fuzzy";
        let stream_type = common::one_of(params, "StreamType", &["all", "raw", "trans"], "all")?;
        let order = match common::one_of(
            params,
            "OrderBy",
            &[
                "publish_time_asc",
                "publish_time_desc",
                "stream_name_asc",
                "stream_name_desc",
            ],
            "publish_time_asc",
        )? {
            "publish_time_desc" => PublishOrder::PublishTimeDesc,
            "stream_name_asc" => PublishOrder::StreamNameAsc,
            "stream_name_desc" => PublishOrder::StreamNameDesc,
            _ => PublishOrder::PublishTimeAsc,
        };
        let page_num = common::int_in(params, "PageNumber", 1..=common::MAX_PAGE_NUM, 1)?;
        let page_size = common::int_in(params, "PageSize", PAGE_SIZE_RANGE, DEFAULT_PAGE_SIZE)?;
        Ok(Self {
            query: PublishQuery {
                domain,
                app,
                stream,
                fuzzy,
                start,
                end,
                order,
                page_num: common::to_u32(page_num, "PageNumber")?,
                page_size: common::to_u32(page_size, "PageSize")?,
            },
            transcoded_only: stream_type == "trans",
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        let q = &self.query;
        common::check_domain(state, &q.domain).await?;
        let (rows, total) = if self.transcoded_only {
            (Vec::new(), 0)
        } else {
            state.catalog.publish_history(q).await?
        };
        let items = rows.iter().map(publish_item).collect();
        Ok(Reply::new()
            .int("PageNum", i64::from(q.page_num))
            .int("PageSize", i64::from(q.page_size))
            .wrapped_list("PublishInfo", "LiveStreamPublishInfo", items)
            .int("TotalNum", i64::try_from(total).unwrap_or(i64::MAX))
            .int(
                "TotalPage",
                i64::try_from(common::total_pages(total, q.page_size)).unwrap_or(i64::MAX),
            ))
    }
}

/// One publish as `LiveStreamPublishInfo`; `StopTime` is absent while it goes on.
fn publish_item(row: &PublishRow) -> Value {
    // The publisher's IP, as DescribeLiveStreamsOnlineList's ClientIp.
    let client = row
        .client_addr
        .parse::<std::net::SocketAddr>()
        .map_or_else(|_| row.client_addr.clone(), |a| a.ip().to_string());
    Value::Object(
        Object::new()
            .str("AppName", row.app.clone())
            .str("ClientAddr", client)
            .str("DomainName", row.domain.clone())
            .str("PublishDomain", row.domain.clone())
            .str("PublishTime", common::format_unix_ms(row.started_at))
            .str("PublishType", "edge")
            .str("PublishUrl", row.publish_url.clone())
            .opt_str("StopTime", row.stopped_at.map(common::format_unix_ms))
            .str("StreamName", row.stream.clone())
            .str(
                "StreamUrl",
                format!("{}/{}/{}", row.domain, row.app, row.stream),
            )
            .str("Transcoded", "no"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<DescribeLiveStreamsOnlineList, ApiError> {
        DescribeLiveStreamsOnlineList::parse(&Params::parse(q.as_bytes(), None, 4096).unwrap())
    }

    #[test]
    fn defaults_and_bad_values() {
        let p = parse("DomainName=Example.com").unwrap();
        assert_eq!(p.domain, "example.com");
        assert_eq!((p.page_num, p.page_size), (1, 2000));
        assert_eq!(p.query_type, QueryType::Fuzzy);
        assert!(!p.only_stream && !p.transcoded_only);
        for (q, code) in [
            ("", "MissingDomainName"),
            ("DomainName=d.com&PageSize=0", "InvalidParameter"),
            ("DomainName=d.com&PageSize=3001", "InvalidParameter"),
            ("DomainName=d.com&PageNum=0", "InvalidParameter"),
            ("DomainName=d.com&QueryType=exact", "InvalidParameter"),
            ("DomainName=d.com&StreamType=x", "InvalidParameter"),
            ("DomainName=d.com&OnlyStream=true", "InvalidParameter"),
        ] {
            assert_eq!(parse(q).unwrap_err().code(), code, "{q}");
        }
        let long = format!("DomainName=d.com&StreamName={}", "s".repeat(256));
        assert_eq!(parse(&long).unwrap_err().code(), "InvalidParameter");
    }

    #[test]
    fn publish_list_parameters() {
        let p = |q: &str| {
            DescribeLiveStreamsPublishList::parse(&Params::parse(q.as_bytes(), None, 4096).unwrap())
        };
        const RANGE: &str = "StartTime=2026-11-01T00:00:00Z&EndTime=2026-12-01T00:00:00Z";
        let list = p(&format!("DomainName=D.com&{RANGE}")).unwrap();
        assert_eq!(list.query.domain, "d.com");
        assert_eq!(list.query.order, PublishOrder::PublishTimeAsc);
        assert!(list.query.fuzzy && !list.transcoded_only);
        assert_eq!((list.query.page_num, list.query.page_size), (1, 2000));
        let list = p(&format!(
            "DomainName=d.com&{RANGE}&OrderBy=stream_name_desc&QueryType=strict&StreamName=s&PageNumber=3&PageSize=5"
        ))
        .unwrap();
        assert_eq!(list.query.order, PublishOrder::StreamNameDesc);
        assert_eq!(list.query.stream.as_deref(), Some("s"));
        assert_eq!((list.query.page_num, list.query.page_size), (3, 5));
        for (q, code) in [
            (RANGE.to_owned(), "MissingDomainName"),
            ("DomainName=d.com".to_owned(), "MissingStartTime"),
            (
                "DomainName=d.com&StartTime=2026-11-01T00:00:00Z&EndTime=2026-12-01T00:00:01Z"
                    .to_owned(),
                "InvalidEndTime.Mismatch",
            ),
            (
                format!("DomainName=d.com&{RANGE}&OrderBy=newest"),
                "InvalidParameter",
            ),
            (
                format!("DomainName=d.com&{RANGE}&PageSize=3001"),
                "InvalidParameter",
            ),
        ] {
            assert_eq!(p(&q).unwrap_err().code(), code, "{q}");
        }
    }

    #[test]
    fn fuzzy_and_strict_matching() {
        let fuzzy = parse("DomainName=d.com&StreamName=cam").unwrap();
        assert!(fuzzy.matches(Some("cam"), "mycam1"));
        assert!(!fuzzy.matches(Some("cam"), "camera".get(..2).unwrap_or_default()));
        let strict = parse("DomainName=d.com&QueryType=strict").unwrap();
        assert!(strict.matches(Some("cam"), "cam"));
        assert!(!strict.matches(Some("cam"), "cam1"));
        assert!(strict.matches(None, "anything"));
    }
}
