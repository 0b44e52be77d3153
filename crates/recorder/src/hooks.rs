//! What the recorder asks of and tells the rest of the server: the on-demand question (whether
//! to record a publish, and how) and status announcements (a recording started, paused,
//! resumed, lost data). The HTTP and callback sides live elsewhere (`liverec-notify`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use liverec_hub::StreamKey;
use liverec_media::VideoCodec;

use crate::config::{Format, FormatSpec, RecordConfig};

/// What the on-demand question says about a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordQuestion {
    pub key: StreamKey,
    /// `None` for an audio-only stream.
    pub codec: Option<VideoCodec>,
    /// `videodatarate` of the publisher's onMetaData, kbit/s; 0 when unknown.
    pub video_kbps: u32,
}

/// The answer to a [`RecordQuestion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordAnswer {
    /// Record this publish session, with the config changed as given.
    Record(SessionFormats),
    /// Do not record it (a command can still start a recording).
    Skip,
}

/// How an on-demand answer changes the record config for one publish session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFormats {
    /// The formats to record; empty keeps the config's. A format the config lacks is recorded
    /// with the default object names.
    pub formats: Vec<Format>,
    /// File cycle per format.
    pub intervals: Vec<(Format, Duration)>,
}

impl SessionFormats {
    /// `config` as this session records it.
    pub fn apply(&self, config: &mut RecordConfig) {
        if !self.formats.is_empty() {
            config.formats = self
                .formats
                .iter()
                .map(|format| {
                    config
                        .formats
                        .iter()
                        .find(|spec| spec.format == *format)
                        .cloned()
                        .unwrap_or_else(|| FormatSpec::new(*format))
                })
                .collect();
        }
        for spec in &mut config.formats {
            if let Some((_, cycle)) = self.intervals.iter().find(|(f, _)| *f == spec.format) {
                spec.cycle = *cycle;
            }
        }
    }
}

/// Why a question got no usable answer; the recorder then records (DESIGN.md "Modes").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AskError(pub String);

pub type AskFuture = Pin<Box<dyn Future<Output = Result<RecordAnswer, AskError>> + Send>>;

/// Answers on-demand questions (OnDemand = 1). The recorder bounds the wait itself.
pub trait OnDemand: Send + Sync + 'static {
    fn ask(&self, question: RecordQuestion) -> AskFuture;
}

/// Records everything: for servers (and tests) without on-demand URLs.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysRecord;

impl OnDemand for AlwaysRecord {
    fn ask(&self, _question: RecordQuestion) -> AskFuture {
        Box::pin(async { Ok(RecordAnswer::Record(SessionFormats::default())) })
    }
}

/// A change in a recording that status callbacks report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordStatus {
    Started,
    Paused,
    Resumed,
    /// The recording lost data (a gap, a storage failure) but goes on.
    Error {
        description: String,
    },
}

/// Hears status changes. Called on the recorder's task: it must not block.
pub trait StatusSink: Send + Sync + 'static {
    fn announce(&self, key: &StreamKey, status: RecordStatus);
}

/// Discards status changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoStatus;

impl StatusSink for NoStatus {
    fn announce(&self, _key: &StreamKey, _status: RecordStatus) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_formats_replace_the_list_and_set_cycles() {
        let mut config = RecordConfig::builtin();
        let mut m3u8 = FormatSpec::new(Format::M3u8);
        m3u8.object_prefix = "custom/{StreamName}".into();
        config.formats.push(m3u8.clone());
        SessionFormats {
            formats: vec![Format::Flv, Format::M3u8],
            intervals: vec![
                (Format::M3u8, Duration::from_secs(120)),
                (Format::Mp4, Duration::from_secs(5)),
            ],
        }
        .apply(&mut config);
        let formats: Vec<Format> = config.formats.iter().map(|s| s.format).collect();
        assert_eq!(formats, [Format::Flv, Format::M3u8]);
        assert_eq!(config.formats[1].object_prefix, m3u8.object_prefix);
        assert_eq!(config.formats[1].cycle, Duration::from_secs(120));
        assert_eq!(config.formats[0].cycle, crate::config::DEFAULT_CYCLE);
    }

    #[test]
    fn empty_session_formats_keep_the_config() {
        let mut config = RecordConfig::builtin();
        let before = config.clone();
        SessionFormats::default().apply(&mut config);
        assert_eq!(config, before);
    }
}
