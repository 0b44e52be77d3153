//! The on-demand question of OnDemand = 1 (API.md "Record callbacks"): a GET to the domain's
//! OnDemandUrl with `app`, `domain`, `stream`, `vbitrate` and `codec`, answered with
//! `{"NeedRecord": bool, "Format": [...], "Interval": {"Mp4": secs, ...}}`.
//!
//! [`parse_answer`] is pure; [`HttpOnDemand`] asks over HTTP. Every failure is an [`AskError`],
//! which the recorder answers by recording (DESIGN.md "Modes").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use liverec_catalog::Catalog;
use liverec_media::VideoCodec;
use liverec_recorder::{
    AskError, AskFuture, Format, OnDemand, RecordAnswer, RecordQuestion, SessionFormats,
};
use serde::Deserialize;

/// Interval bounds of an answer, seconds (API.md).
const INTERVAL_SECS: std::ops::RangeInclusive<u64> = 5..=21_600;
/// Largest answer read; a JSON answer is a few hundred bytes.
const ANSWER_LIMIT: usize = 64 * 1024;

/// The codec name of the question (`h264|h265|av1`, empty for audio only).
pub fn codec_name(codec: Option<VideoCodec>) -> &'static str {
    match codec {
        Some(VideoCodec::H264) => "h264",
        Some(VideoCodec::H265) => "h265",
        Some(VideoCodec::Av1) => "av1",
        None => "",
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "NeedRecord")]
    need_record: bool,
    #[serde(rename = "Format", default)]
    format: Vec<String>,
    #[serde(rename = "Interval", default)]
    interval: serde_json::Map<String, serde_json::Value>,
}

/// Reads an answer. Anything Alibaba's docs do not allow (no `NeedRecord`, an unknown format,
/// an interval out of 5–21600 s) makes the whole answer invalid.
pub fn parse_answer(body: &[u8]) -> Result<RecordAnswer, AskError> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| AskError(format!("the answer is not valid JSON with NeedRecord: {e}")))?;
    if !answer.need_record {
        return Ok(RecordAnswer::Skip);
    }
    let mut formats = Vec::new();
    for name in &answer.format {
        let format = Format::parse(name)
            .ok_or_else(|| AskError(format!("the answer names an unknown format {name:?}")))?;
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    let mut intervals = Vec::new();
    for (name, value) in &answer.interval {
        let format = Format::parse(name).ok_or_else(|| {
            AskError(format!(
                "the answer's Interval names an unknown format {name:?}"
            ))
        })?;
        let secs = value
            .as_u64()
            .filter(|s| INTERVAL_SECS.contains(s))
            .ok_or_else(|| {
                AskError(format!(
                    "the answer's Interval of {name} is {value}, not 5 to 21600 seconds"
                ))
            })?;
        intervals.push((format, Duration::from_secs(secs)));
    }
    Ok(RecordAnswer::Record(SessionFormats { formats, intervals }))
}

/// Asks each domain's OnDemandUrl (from its notify config in the catalog).
pub struct HttpOnDemand {
    catalog: Catalog,
    client: reqwest::Client,
}

impl HttpOnDemand {
    /// `timeout` is the recorder's wait for an answer: the HTTP client gives up a second
    /// later, so the recorder's own deadline (and its log line) is the one that counts.
    pub fn new(catalog: Catalog, timeout: Duration) -> Result<Self, reqwest::Error> {
        let timeout = timeout + Duration::from_secs(1);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("liverec/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { catalog, client })
    }
}

impl OnDemand for HttpOnDemand {
    fn ask(&self, question: RecordQuestion) -> AskFuture {
        let (catalog, client) = (self.catalog.clone(), self.client.clone());
        Box::pin(async move {
            let config = catalog
                .notify_config(&question.key.domain)
                .await
                .map_err(|e| AskError(format!("cannot read the notify config: {e}")))?;
            let Some(config) = config.filter(|c| !c.on_demand_url.is_empty()) else {
                // Until an OnDemandUrl exists the stream is recorded (DESIGN.md "Modes").
                tracing::debug!(stream = %question.key, "no OnDemandUrl for the domain: recording");
                return Ok(RecordAnswer::Record(SessionFormats::default()));
            };
            let mut url = url::Url::parse(&config.on_demand_url)
                .map_err(|e| AskError(format!("the OnDemandUrl is not a URL: {e}")))?;
            url.query_pairs_mut()
                .append_pair("app", &question.key.app)
                .append_pair("domain", &question.key.domain)
                .append_pair("stream", &question.key.stream)
                .append_pair("vbitrate", &question.video_kbps.to_string())
                .append_pair("codec", codec_name(question.codec));
            let mut request = client.get(url.as_str());
            if config.notify_req_auth && !config.notify_auth_key.is_empty() {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                if let Some(headers) =
                    crate::sign::auth_headers(url.as_str(), now, &config.notify_auth_key)
                {
                    for (name, value) in headers {
                        request = request.header(name, value);
                    }
                }
            }
            let mut response = request
                .send()
                .await
                .map_err(|e| AskError(format!("the OnDemandUrl cannot be reached: {e}")))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(AskError(format!(
                    "the OnDemandUrl answered HTTP {}",
                    response.status().as_u16()
                )));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| AskError(format!("the OnDemandUrl's answer broke off: {e}")))?
            {
                if body.len() + chunk.len() > ANSWER_LIMIT {
                    return Err(AskError(format!(
                        "the OnDemandUrl's answer is larger than {ANSWER_LIMIT} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            parse_answer(&body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alibabas_example_answer() {
        let answer = parse_answer(
            br#"{"ApiVersion":"1.0","NeedRecord":true,"Interval":{"Mp4":300,"Flv":120,"M3U8":180},"Format":["mp4","flv"]}"#,
        )
        .expect("valid");
        let RecordAnswer::Record(formats) = answer else {
            panic!("records");
        };
        assert_eq!(formats.formats, [Format::Mp4, Format::Flv]);
        let mut intervals = formats.intervals.clone();
        intervals.sort_by_key(|(f, _)| f.as_str());
        assert_eq!(
            intervals,
            [
                (Format::Flv, Duration::from_secs(120)),
                (Format::M3u8, Duration::from_secs(180)),
                (Format::Mp4, Duration::from_secs(300)),
            ]
        );
    }

    #[test]
    fn no_record_and_minimal_answers() {
        assert_eq!(
            parse_answer(br#"{"NeedRecord":false,"Format":["nonsense"]}"#),
            Ok(RecordAnswer::Skip)
        );
        assert_eq!(
            parse_answer(br#"{"NeedRecord":true}"#),
            Ok(RecordAnswer::Record(SessionFormats::default()))
        );
        let RecordAnswer::Record(f) =
            parse_answer(br#"{"NeedRecord":true,"Format":["CMAF","cmaf"]}"#).expect("valid")
        else {
            panic!("records");
        };
        assert_eq!(f.formats, [Format::Cmaf]);
    }

    #[test]
    fn invalid_answers_are_errors() {
        for body in [
            &b""[..],
            b"yes",
            br#"{"Format":["mp4"]}"#,
            br#"{"NeedRecord":"true"}"#,
            br#"{"NeedRecord":true,"Format":["mkv"]}"#,
            br#"{"NeedRecord":true,"Interval":{"Mp4":4}}"#,
            br#"{"NeedRecord":true,"Interval":{"Mp4":21601}}"#,
            br#"{"NeedRecord":true,"Interval":{"Mp4":"300"}}"#,
            br#"{"NeedRecord":true,"Interval":{"Avi":300}}"#,
        ] {
            assert!(
                parse_answer(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn codec_names() {
        assert_eq!(codec_name(Some(VideoCodec::H264)), "h264");
        assert_eq!(codec_name(Some(VideoCodec::H265)), "h265");
        assert_eq!(codec_name(Some(VideoCodec::Av1)), "av1");
        assert_eq!(codec_name(None), "");
    }
}
