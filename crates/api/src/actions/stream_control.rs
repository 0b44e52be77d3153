//! ForbidLiveStream, ResumeLiveStream and DescribeLiveStreamsBlockList: stopping a publisher
//! and keeping its stream off the air (API.md; DESIGN.md "Ingest auth").

use std::ops::RangeInclusive;
use std::time::Duration;

use liverec_catalog::ForbidOutcome;
use liverec_hub::StreamKey;
use time::OffsetDateTime;

use super::Reply;
use super::common;
use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::Value;

/// Alibaba: at most 10,000 streams can be forbidden.
pub const MAX_FORBIDDEN_STREAMS: u64 = 10_000;
/// How long a stream forbidden without a ResumeTime stays forbidden (Alibaba: 6 months).
pub const DEFAULT_FORBID_DURATION: Duration = Duration::from_secs(183 * 86_400);
/// DescribeLiveStreamsBlockList PageSize (liverec's choice, as DescribeLiveStreamsOnlineList).
pub const BLOCK_LIST_PAGE_SIZE_RANGE: RangeInclusive<i64> = 1..=3000;
pub const DEFAULT_BLOCK_LIST_PAGE_SIZE: i64 = 2000;
/// What the publisher's connection is told when its stream is forbidden.
const FORBIDDEN_REASON: &str = "the stream was forbidden (ForbidLiveStream)";

/// DomainName, AppName and StreamName of one stream (no wildcards), and
/// `LiveStreamType=publisher`, the only value Alibaba accepts.
fn stream_key(params: &Params) -> Result<StreamKey, ApiError> {
    let domain = common::domain(params)?;
    let app = common::name("AppName", params.required("AppName")?, false)?;
    let stream = common::name("StreamName", params.required("StreamName")?, false)?;
    if params.required("LiveStreamType")? != "publisher" {
        return Err(ApiError::InvalidParameter("LiveStreamType".to_owned()));
    }
    Ok(StreamKey {
        domain,
        app,
        stream,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbidLiveStream {
    key: StreamKey,
    /// `Oneshot=yes`: only cut the current publish.
    oneshot: bool,
    /// Unix ms; `None`: the default duration from now.
    resume_at: Option<i64>,
}

impl ForbidLiveStream {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let key = stream_key(params)?;
        let oneshot = common::one_of(params, "Oneshot", &["yes", "no"], "no")? == "yes";
        let resume_at = match params.optional("ResumeTime") {
            None => None,
            Some(v) => {
                let t = common::parse_utc(v).ok_or(ApiError::Malformed("ResumeTime"))?;
                Some(
                    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                        .map_err(|_| ApiError::Malformed("ResumeTime"))?,
                )
            }
        };
        Ok(Self {
            key,
            oneshot,
            resume_at,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.key.domain).await?;
        let key = &self.key;
        if !self.oneshot {
            let now = OffsetDateTime::now_utc();
            let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            let resume_at = match self.resume_at {
                // A ResumeTime already past would forbid nothing.
                Some(at) if at <= now_ms => return Err(ApiError::Malformed("ResumeTime")),
                Some(at) => at,
                None => now_ms.saturating_add(DEFAULT_FORBID_DURATION.as_millis() as i64),
            };
            match state
                .catalog
                .forbid_stream(
                    &key.domain,
                    &key.app,
                    &key.stream,
                    resume_at,
                    MAX_FORBIDDEN_STREAMS,
                )
                .await?
            {
                ForbidOutcome::Forbidden => {}
                ForbidOutcome::AlreadyForbidden => return Err(ApiError::ConfigAlreadyExists),
                ForbidOutcome::LimitReached => {
                    return Err(ApiError::ForbiddenStreamsFull {
                        limit: MAX_FORBIDDEN_STREAMS,
                    });
                }
            }
            tracing::info!(stream = %key, until = %common::format_unix_ms(resume_at), "stream forbidden");
        }
        if state.hub.stop_publisher(key, FORBIDDEN_REASON) {
            tracing::info!(stream = %key, oneshot = self.oneshot, "publisher dropped: the stream was forbidden");
        }
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeLiveStream {
    key: StreamKey,
}

impl ResumeLiveStream {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            key: stream_key(params)?,
        })
    }

    /// Alibaba documents no error for a stream that is not forbidden: resuming it succeeds.
    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.key.domain).await?;
        let key = &self.key;
        if state
            .catalog
            .resume_stream(&key.domain, &key.app, &key.stream)
            .await?
        {
            tracing::info!(stream = %key, "stream resumed");
        }
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveStreamsBlockList {
    domain: String,
    page_num: u32,
    page_size: u32,
}

impl DescribeLiveStreamsBlockList {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let page_num = common::int_in(params, "PageNum", 1..=common::MAX_PAGE_NUM, 1)?;
        let page_size = common::int_in(
            params,
            "PageSize",
            BLOCK_LIST_PAGE_SIZE_RANGE,
            DEFAULT_BLOCK_LIST_PAGE_SIZE,
        )?;
        Ok(Self {
            domain,
            page_num: common::to_u32(page_num, "PageNum")?,
            page_size: common::to_u32(page_size, "PageSize")?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let (rows, total) = state
            .catalog
            .forbidden_streams(&self.domain, self.page_num, self.page_size)
            .await?;
        let urls = rows
            .into_iter()
            .map(|r| Value::Str(format!("{}/{}/{}", r.domain, r.app, r.stream)))
            .collect();
        Ok(Reply::new()
            .str("DomainName", self.domain)
            .wrapped_list("StreamUrls", "StreamUrl", urls)
            .int("PageNum", i64::from(self.page_num))
            .int("PageSize", i64::from(self.page_size))
            .int("TotalNum", i64::try_from(total).unwrap_or(i64::MAX))
            .int(
                "TotalPage",
                i64::try_from(common::total_pages(total, self.page_size)).unwrap_or(i64::MAX),
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes(), None, 4096).unwrap()
    }

    const STREAM: &str = "DomainName=D.example&AppName=live&StreamName=s1&LiveStreamType=publisher";

    #[test]
    fn forbid_parameters() {
        let f = ForbidLiveStream::parse(&params(STREAM)).unwrap();
        assert_eq!(f.key.domain, "d.example");
        assert!(!f.oneshot);
        assert_eq!(f.resume_at, None);
        let f = ForbidLiveStream::parse(&params(&format!(
            "{STREAM}&Oneshot=yes&ResumeTime=2030-01-02T03:04:05Z"
        )))
        .unwrap();
        assert!(f.oneshot);
        assert_eq!(f.resume_at, Some(1_893_553_445_000));
        for (q, code) in [
            (
                "DomainName=d.example&AppName=live&StreamName=s1",
                "MissingLiveStreamType",
            ),
            (
                "DomainName=d.example&AppName=live&StreamName=s1&LiveStreamType=player",
                "InvalidParameter",
            ),
            (
                "DomainName=d.example&AppName=live&StreamName=*&LiveStreamType=publisher",
                "InvalidParameter",
            ),
            (
                "DomainName=d.example&StreamName=s1&LiveStreamType=publisher",
                "MissingAppName",
            ),
        ] {
            assert_eq!(
                ForbidLiveStream::parse(&params(q)).unwrap_err().code(),
                code,
                "{q}"
            );
        }
        for bad in [
            "&Oneshot=true",
            "&ResumeTime=2030-01-02 03:04:05",
            "&ResumeTime=x",
        ] {
            let err = ForbidLiveStream::parse(&params(&format!("{STREAM}{bad}"))).unwrap_err();
            assert!(err.code().starts_with("Invalid"), "{bad}: {}", err.code());
        }
        let err = ForbidLiveStream::parse(&params(&format!("{STREAM}&ResumeTime=x"))).unwrap_err();
        assert_eq!(err.code(), "InvalidResumeTime.Malformed");
        assert_eq!(
            err.message(),
            "Specified parameter ResumeTime is not valid."
        );
    }

    #[test]
    fn resume_and_block_list_parameters() {
        assert_eq!(
            ResumeLiveStream::parse(&params(STREAM)).unwrap().key.stream,
            "s1"
        );
        let b = DescribeLiveStreamsBlockList::parse(&params("DomainName=d.example")).unwrap();
        assert_eq!((b.page_num, b.page_size), (1, 2000));
        for q in [
            "DomainName=d.example&PageSize=0",
            "DomainName=d.example&PageSize=3001",
            "DomainName=d.example&PageNum=0",
        ] {
            assert_eq!(
                DescribeLiveStreamsBlockList::parse(&params(q))
                    .unwrap_err()
                    .code(),
                "InvalidParameter",
                "{q}"
            );
        }
    }
}
