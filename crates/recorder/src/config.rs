//! What to record and how: record configs as the recorder uses them.

use std::time::Duration;

use liverec_hub::StreamKey;

/// Alibaba's default DelayTime.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(180);
/// Default cycle of a recording file (DESIGN.md "Defaults").
pub const DEFAULT_CYCLE: Duration = Duration::from_secs(3600);
/// Default HLS / CMAF segment duration.
pub const DEFAULT_SLICE: Duration = Duration::from_secs(30);
/// Default object name of a recording file; the extension is appended.
pub const DEFAULT_OBJECT_PREFIX: &str =
    "record/{DomainName}/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}";
/// Default object name of a segment (`.ts`, `.m4s`).
pub const DEFAULT_SLICE_OBJECT_PREFIX: &str =
    "record/{DomainName}/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}";
/// The storage target of the built-in config.
pub const DEFAULT_BUCKET: &str = "default";

/// A recording format, named as Alibaba's API names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// HLS: MPEG-TS segments and a playlist.
    M3u8,
    Mp4,
    Flv,
    /// HLS with fMP4 (CMAF) segments and an init segment.
    Cmaf,
}

impl Format {
    /// The format of an API or config name, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::M3u8 => "m3u8",
            Self::Mp4 => "mp4",
            Self::Flv => "flv",
            Self::Cmaf => "cmaf",
        }
    }

    /// Extension of the recording file (the playlist for segmented formats). The two playlist
    /// formats differ, so both formats of one recording can be told apart (DESIGN.md "Object
    /// names").
    pub fn extension(self) -> &'static str {
        match self {
            Self::M3u8 => "m3u8",
            Self::Cmaf => "cmaf.m3u8",
            Self::Mp4 => "mp4",
            Self::Flv => "flv",
        }
    }

    /// Extension of a segment, for the segmented formats.
    pub fn segment_extension(self) -> Option<&'static str> {
        match self {
            Self::M3u8 => Some("ts"),
            Self::Cmaf => Some("m4s"),
            Self::Mp4 | Self::Flv => None,
        }
    }

    /// HLS-style formats: segments and a playlist.
    pub fn is_segmented(self) -> bool {
        self.segment_extension().is_some()
    }

    /// Every format, in the order the API lists them.
    pub const ALL: [Format; 4] = [Self::M3u8, Self::Mp4, Self::Flv, Self::Cmaf];
}

/// One output format of a record config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatSpec {
    pub format: Format,
    pub object_prefix: String,
    pub slice_object_prefix: String,
    /// Media time after which the file is cut at the next keyframe.
    pub cycle: Duration,
    /// Target segment duration (m3u8, cmaf).
    pub slice: Duration,
}

impl FormatSpec {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            object_prefix: DEFAULT_OBJECT_PREFIX.to_owned(),
            slice_object_prefix: DEFAULT_SLICE_OBJECT_PREFIX.to_owned(),
            cycle: DEFAULT_CYCLE,
            slice: DEFAULT_SLICE,
        }
    }
}

/// When a stream is recorded: the record config's `OnDemand`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordMode {
    /// 0: whenever the stream is published.
    Automatic,
    /// 1: when the on-demand URL says so (asked when a publish starts; records when there is no
    /// URL or no valid answer).
    OnDemandUrl,
    /// 2: when the publish URL carries `record=1`.
    OnDemandParam,
    /// 7: only on RealTimeRecordCommand.
    Manual,
}

impl RecordMode {
    /// The mode of an `OnDemand` value; values Alibaba does not define record automatically.
    pub fn from_on_demand(on_demand: i32) -> Self {
        match on_demand {
            1 => Self::OnDemandUrl,
            2 => Self::OnDemandParam,
            7 => Self::Manual,
            _ => Self::Automatic,
        }
    }
}

/// A record config resolved for one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    pub mode: RecordMode,
    pub delay: Duration,
    /// Names the storage target.
    pub bucket: String,
    /// OssEndpoint of the config, echoed in the record index (local targets ignore it).
    pub endpoint: String,
    pub formats: Vec<FormatSpec>,
}

impl RecordConfig {
    /// DESIGN.md's built-in config: automatic, MP4 cut every hour, DelayTime 180 s.
    pub fn builtin() -> Self {
        Self {
            mode: RecordMode::Automatic,
            delay: DEFAULT_DELAY,
            bucket: DEFAULT_BUCKET.to_owned(),
            endpoint: String::new(),
            formats: vec![FormatSpec::new(Format::Mp4)],
        }
    }
}

/// Where the recorder looks up which config applies to a stream.
pub trait ConfigSource: Send + Sync + 'static {
    /// The config that applies to `key` now, or `None` when nothing records it.
    fn resolve(&self, key: &StreamKey) -> Option<RecordConfig>;
}

/// The same config for every stream (the built-in one, or one from the config file).
#[derive(Clone, Debug)]
pub struct FixedConfig(pub Option<RecordConfig>);

impl ConfigSource for FixedConfig {
    fn resolve(&self, _key: &StreamKey) -> Option<RecordConfig> {
        self.0.clone()
    }
}
