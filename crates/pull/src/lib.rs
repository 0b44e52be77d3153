//! Pulling a live stream from another server into the hub, the way a viewer would watch it:
//! RTMP play (`rtmp://host[:port]/app/stream`) or HTTP-FLV (`http://host[:port]/app/stream.flv`).
//!
//! [`connect_first`] tries a stream's origins in order, each within [`CONNECT_TIMEOUT`], so a
//! dead origin costs seconds, not a hang; [`pump`] hands what the origin sends to a hub
//! publisher until the origin ends the stream, falls silent or `cancel` fires.

mod flv_stream;

use std::time::Duration;

use bytes::Bytes;
use liverec_hub::Publisher;
use liverec_media::TrackKind;
use liverec_media::flv::TagKind;
use liverec_rtmp::MediaKind;
use liverec_rtmp::client::{Client, ClientError};
use tokio_util::sync::CancellationToken;

pub use flv_stream::{FlvStream, FlvStreamError, StreamTag};

/// Longest time to reach an origin and have its stream start (connect, handshake, play).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An origin that sends nothing for this long has lost the stream.
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a stream is pulled (API.md: PullProtocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
}

impl Protocol {
    /// `rtmp`, `httpflv`; `None` for anything else (`hls` included: liverec does not pull HLS).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "rtmp" => Some(Self::Rtmp),
            "httpflv" | "flv" => Some(Self::HttpFlv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rtmp => "rtmp",
            Self::HttpFlv => "httpflv",
        }
    }
}

/// The source URLs of a triggered pull (API.md): one per origin of `pull_domains`
/// (`host[:port]`, several separated by `;`), in order.
pub fn lazy_source_urls(
    pull_domains: &str,
    app: &str,
    stream: &str,
    protocol: Protocol,
) -> Vec<String> {
    pull_domains
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|domain| match protocol {
            Protocol::Rtmp => format!("rtmp://{domain}/{app}/{stream}"),
            Protocol::HttpFlv => format!("http://{domain}/{app}/{stream}.flv"),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{url}: not an rtmp:// or http(s):// URL of a stream")]
    BadUrl { url: String },
    #[error("{url}: cannot resolve or reach the origin: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: the origin did not start the stream within {CONNECT_TIMEOUT:?}")]
    Timeout { url: String },
    #[error("{url}: the origin refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("the origin's stream broke off: {0}")]
    Broken(String),
    #[error("no origin could be pulled: {0}")]
    AllFailed(String),
}

/// One tag from an origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledTag {
    pub kind: TagKind,
    pub timestamp: u32,
    pub body: Bytes,
}

/// A connected origin whose stream has started.
pub enum Source {
    Rtmp(Box<Client>),
    HttpFlv {
        response: reqwest::Response,
        stream: FlvStream,
    },
}

impl Source {
    /// Connects to `url` and starts its stream, within [`CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, PullError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_now(url)).await {
            Ok(result) => result,
            Err(_) => Err(PullError::Timeout {
                url: url.to_owned(),
            }),
        }
    }

    async fn connect_now(url: &str) -> Result<Self, PullError> {
        let bad = || PullError::BadUrl {
            url: url.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("rtmp://") {
            let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
            let (app, name) = path.split_once('/').ok_or_else(bad)?;
            if authority.is_empty() || app.is_empty() || name.is_empty() {
                return Err(bad());
            }
            let target = if authority.contains(':') {
                authority.to_owned()
            } else {
                format!("{authority}:1935")
            };
            let unreachable = |reason: String| PullError::Unreachable {
                url: url.to_owned(),
                reason,
            };
            let addr = tokio::net::lookup_host(&target)
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .next()
                .ok_or_else(|| unreachable("no address".to_owned()))?;
            let tc_url = format!("rtmp://{authority}/{app}");
            let mut client = Client::connect(addr, app, &tc_url)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            client.play(name).await.map_err(|e| match e {
                ClientError::Refused { code, description } => PullError::Refused {
                    url: url.to_owned(),
                    reason: format!("{code} ({description})"),
                },
                other => unreachable(other.to_string()),
            })?;
            return Ok(Self::Rtmp(Box::new(client)));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            let response = reqwest::Client::new().get(url).send().await.map_err(|e| {
                PullError::Unreachable {
                    url: url.to_owned(),
                    reason: e.to_string(),
                }
            })?;
            if !response.status().is_success() {
                return Err(PullError::Refused {
                    url: url.to_owned(),
                    reason: format!("HTTP {}", response.status()),
                });
            }
            return Ok(Self::HttpFlv {
                response,
                stream: FlvStream::new(),
            });
        }
        Err(bad())
    }

    /// The next tag; `None` when the origin ended the stream.
    pub async fn next_tag(&mut self) -> Result<Option<PulledTag>, PullError> {
        match self {
            Self::Rtmp(client) => {
                let media = client
                    .next_media()
                    .await
                    .map_err(|e| PullError::Broken(e.to_string()))?;
                Ok(media.map(|m| PulledTag {
                    kind: match m.kind {
                        MediaKind::Audio => TagKind::Audio,
                        MediaKind::Video => TagKind::Video,
                        MediaKind::Data => TagKind::Script,
                    },
                    timestamp: m.timestamp,
                    body: m.body,
                }))
            }
            Self::HttpFlv { response, stream } => loop {
                if let Some(tag) = stream
                    .next_tag()
                    .map_err(|e| PullError::Broken(e.to_string()))?
                {
                    return Ok(Some(PulledTag {
                        kind: tag.kind,
                        timestamp: tag.timestamp,
                        body: tag.body,
                    }));
                }
                let chunk = tokio::time::timeout(SILENCE_TIMEOUT, response.chunk())
                    .await
                    .map_err(|_| PullError::Broken(format!("nothing for {SILENCE_TIMEOUT:?}")))?
                    .map_err(|e| PullError::Broken(e.to_string()))?;
                match chunk {
                    Some(bytes) => stream.push(&bytes),
                    None => return Ok(None),
                }
            },
        }
    }
}

/// Connects to the first of `urls` that starts its stream; the error names why each failed.
pub async fn connect_first(urls: &[String]) -> Result<(Source, String), PullError> {
    let mut failures = Vec::new();
    for url in urls {
        match Source::connect(url).await {
            Ok(source) => return Ok((source, url.clone())),
            Err(err) => {
                tracing::info!(%url, %err, "origin not pulled");
                failures.push(err.to_string());
            }
        }
    }
    if failures.is_empty() {
        failures.push("no origin configured".to_owned());
    }
    Err(PullError::AllFailed(failures.join("; ")))
}

/// How a pump ended.
#[derive(Debug)]
pub enum PumpEnd {
    /// The origin ended the stream.
    Ended,
    Cancelled,
    Failed(PullError),
}

/// Longest time the first frames are held back, until both sequence headers are known:
/// origins often send one track's header after the other track's first frames (nginx-rtmp
/// sends the video header with the first keyframe), and a recording that started before it
/// would see the tracks change and cut a new file. Wall time, as origins' first timestamps
/// are not to be trusted.
pub const PRIME_TIME: Duration = Duration::from_millis(1500);
/// Tags held back at most while priming.
const PRIME_MAX_TAGS: usize = 1024;

/// Hands the origin's tags to `publisher` until the stream ends, breaks or `cancel` fires.
/// Sequence headers go on at once; the first frames wait (see [`PRIME_TIME`]) until both tracks
/// are configured. `on_tag` sees each tag after it was handed on (a waiting viewer is told the
/// stream started at its first keyframe).
pub async fn pump(
    source: &mut Source,
    publisher: &mut Publisher,
    cancel: &CancellationToken,
    mut on_tag: impl FnMut(&PulledTag),
) -> PumpEnd {
    let mut malformed = 0u64;
    let mut held: Option<Vec<PulledTag>> = Some(Vec::new());
    let mut holding_since: Option<tokio::time::Instant> = None;
    loop {
        let tag = tokio::select! {
            biased;
            () = cancel.cancelled() => return PumpEnd::Cancelled,
            tag = source.next_tag() => tag,
        };
        let tag = match tag {
            Ok(Some(tag)) => tag,
            Ok(None) => return PumpEnd::Ended,
            Err(err) => return PumpEnd::Failed(err),
        };
        if let Some(queue) = &mut held
            && !is_sequence_header(&tag)
        {
            {
                queue.push(tag);
                let since = *holding_since.get_or_insert_with(tokio::time::Instant::now);
                let tracks = publisher.tracks();
                let primed = (tracks.video.is_some() && tracks.audio.is_some())
                    || since.elapsed() >= PRIME_TIME
                    || queue.len() >= PRIME_MAX_TAGS;
                if primed {
                    for tag in held.take().unwrap_or_default() {
                        hand_on(publisher, &tag, &mut malformed).await;
                        on_tag(&tag);
                    }
                }
                continue;
            }
        }
        hand_on(publisher, &tag, &mut malformed).await;
        on_tag(&tag);
    }
}

/// Hands one tag to the publisher (script tags carry nothing it needs).
async fn hand_on(publisher: &mut Publisher, tag: &PulledTag, malformed: &mut u64) {
    let track = match tag.kind {
        TagKind::Video => TrackKind::Video,
        TagKind::Audio => TrackKind::Audio,
        TagKind::Script => return,
    };
    if let Err(err) = publisher.push_tag(track, tag.timestamp, &tag.body).await {
        *malformed += 1;
        if malformed.is_power_of_two() {
            tracing::warn!(stream = %publisher.info().key, %err, count = *malformed,
                "a pulled tag was dropped");
        }
    }
}

/// Whether `tag` configures a track (a sequence header), which is never held back.
fn is_sequence_header(tag: &PulledTag) -> bool {
    match tag.kind {
        TagKind::Video => matches!(
            liverec_media::flv::parse_video_tag(&tag.body),
            Ok(liverec_media::flv::VideoTag::SequenceHeader(_))
        ),
        TagKind::Audio => matches!(
            liverec_media::flv::parse_audio_tag(&tag.body),
            Ok(liverec_media::flv::AudioTag::SequenceHeader(_))
        ),
        TagKind::Script => false,
    }
}

/// Whether `tag` is a video keyframe (not a sequence header): where a viewer or a recording of
/// a pulled stream can start, with every sequence header before it.
pub fn is_video_keyframe(tag: &PulledTag) -> bool {
    tag.kind == TagKind::Video
        && matches!(
            liverec_media::flv::parse_video_tag(&tag.body),
            Ok(liverec_media::flv::VideoTag::Frame { keyframe: true, .. })
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_sources_follow_api_md() {
        assert_eq!(
            lazy_source_urls("a.example; b.example:1936;", "live", "s", Protocol::Rtmp),
            vec!["rtmp://a.example/live/s", "rtmp://b.example:1936/live/s"]
        );
        assert_eq!(
            lazy_source_urls("o.example", "app", "s", Protocol::HttpFlv),
            vec!["http://o.example/app/s.flv"]
        );
        assert_eq!(Protocol::parse("HTTPFLV"), Some(Protocol::HttpFlv));
        assert_eq!(Protocol::parse("hls"), None);
    }
}
