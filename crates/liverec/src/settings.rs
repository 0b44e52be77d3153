//! liverec's settings: embedded defaults, overridden by a TOML file, then by `LIVEREC_*`
//! environment variables (`__` separates sections: `LIVEREC_RECORD__DELAY_SECS=30`), then
//! by command-line flags.

use liverec_api::server;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use liverec_recorder::{Format, FormatSpec, RecordConfig, RecordMode, config as rc};
use serde::{Deserialize, Serialize};

/// The domain of a publish that names none (`default_domain`).
pub const DEFAULT_DOMAIN: &str = "live.liverec.local";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Database, buckets and spool live here.
    pub data_dir: PathBuf,
    pub rtmp_listen: SocketAddr,
    /// The control API (Alibaba-compatible OpenAPI).
    pub api_listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; default `sqlite://{data_dir}/liverec.db`.
    pub database_url: Option<String>,
    /// Domain of a publish that names none (`vhost=`/`domain=` query parameter).
    pub default_domain: String,
    /// Domains whose name in the publish URL's host (tcUrl) selects them.
    pub domains: Vec<String>,
    /// Longest wait for recordings to be finalized at shutdown.
    pub shutdown_timeout_secs: f64,
    pub ingest: IngestSettings,
    pub api: ApiSettings,
    pub hub: HubSettings,
    pub spool: SpoolSettings,
    /// The built-in record config applied to every stream.
    pub record: RecordSettings,
    /// Storage targets by bucket name (a record config's OssBucket). A bucket without a
    /// section is the local directory `{data_dir}/buckets/{name}/`.
    pub buckets: BTreeMap<String, BucketSettings>,
    pub storage: StorageSettings,
    /// Record callbacks and the on-demand query.
    pub notify: NotifySettings,
    /// Pulled streams.
    pub pull: PullSettings,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullSettings {
    /// A triggered pull goes on this long after its last viewer left (unrecorded), so a
    /// viewer coming back finds the stream at once.
    pub grace_secs: f64,
}

/// One `[buckets.NAME]` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    /// `local` (default) or `s3`.
    #[serde(rename = "type", default = "default_bucket_type")]
    pub kind: String,
    /// Local targets: the directory (default `{data_dir}/buckets/{name}`).
    pub path: Option<PathBuf>,
    /// S3: `http(s)://host:port` of an S3-compatible service; absent = AWS.
    pub endpoint: Option<String>,
    /// S3: the real bucket (default: the section's name).
    pub bucket: Option<String>,
    pub region: Option<String>,
    /// S3 credentials; absent: the usual `AWS_*` variables.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// S3: `bucket.host` URLs instead of path-style ones.
    #[serde(default)]
    pub virtual_hosted: bool,
    /// Recordings older than this many days are deleted (objects and index rows).
    pub retention_days: Option<f64>,
}

fn default_bucket_type() -> String {
    "local".to_owned()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// How often the retention sweep looks for expired recordings.
    pub retention_sweep_secs: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Longest time one callback attempt may take (Alibaba: 5 s).
    pub timeout_secs: f64,
    /// How long a callback that cannot be delivered is retried before it is given up.
    pub retry_hours: f64,
    /// After the five quick retries, the wait between attempts doubles from 30 s up to this.
    pub retry_max_interval_secs: f64,
    /// Callback attempts in flight, all domains together.
    pub concurrency: u32,
    /// Callback attempts in flight for one domain.
    pub per_domain_concurrency: u32,
    /// Delivered and given-up callbacks are kept this long (DescribeLiveRecordNotifyRecords).
    pub keep_days: f64,
    /// NotifyUrl / OnDemandUrl may name loopback and private hosts; false refuses them
    /// (`InvalidNotifyUrl.Unsafe`), so API users cannot aim callbacks at the internal network.
    pub allow_private_hosts: bool,
    /// Longest wait for an OnDemandUrl's answer before recording anyway.
    pub on_demand_timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    pub max_publishers: usize,
    /// RTMP viewers at once (HTTP-FLV viewers count against the API port's connections).
    pub max_viewers: usize,
    pub handshake_timeout_secs: f64,
    /// A publisher silent this long is gone (and may be replaced by a new one).
    pub idle_timeout_secs: f64,
    /// Threads running RTMP connections and their recorders, each a single-threaded event
    /// loop (0: one per core).
    pub threads: usize,
    /// A publishing connection reads at most once per this many milliseconds once its socket
    /// is drained, so one wake-up takes several frames (0: read as soon as data arrives).
    pub merge_reads_ms: u64,
    /// Time from connecting to an accepted publish.
    pub publish_deadline_secs: f64,
    /// Connections per client IP that have not published yet; more are closed at once.
    pub max_pending_connections_per_ip: usize,
    /// Connections that have not published yet, all addresses together; more wait in the
    /// listen backlog (publishers never wait behind them).
    pub max_pending_connections: usize,
    /// Bytes the half-received RTMP messages of all connections may hold together.
    pub partial_budget_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// `HostId` of error bodies.
    pub host_id: String,
    /// Query string + body limit.
    pub max_request_bytes: usize,
    /// Accepted clock skew of signed requests.
    pub timestamp_window_secs: u64,
    /// QPS per access key of actions without a built-in limit (0 = unlimited).
    pub default_qps: u32,
    /// Per-action QPS per access key, overriding the built-in ones
    /// (RealTimeRecordCommand 50, record-config actions 30).
    pub qps: std::collections::HashMap<String, u32>,
    /// Only domains made through the API exist; others get `InvalidDomain.NotFound`.
    pub strict_domains: bool,
    /// When set, only these OssBucket names are accepted (each a directory under
    /// `data/buckets/`); otherwise any valid name is.
    pub buckets: Option<Vec<String>>,
    /// Where clients reach the API port: RecordUrls start with it (default
    /// `http://127.0.0.1:{api port}`).
    pub public_url: Option<String>,
    /// How long a RecordUrl stays valid.
    pub vod_url_ttl_secs: u64,
    /// Time to send a request head (from its first byte; from the connection's start for the
    /// first request).
    pub header_read_timeout_secs: f64,
    /// Time to send a request body.
    pub body_timeout_secs: f64,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout_secs: f64,
    /// Connections per client IP with no request being answered; more are closed at once.
    pub max_pending_connections_per_ip: usize,
    /// Connections in all; more are closed at once.
    pub max_connections: usize,
    /// Requests per second per client IP before authentication (HTTP 429 `Throttling`
    /// beyond; 0: no limit).
    pub requests_per_ip: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSettings {
    pub gop_cache_bytes: usize,
    pub recorder_queue_bytes: usize,
    /// Longest time the recorder may hold up its own publisher before skipping.
    pub recorder_max_block_secs: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSettings {
    pub flush_interval_secs: f64,
    pub fsync_interval_secs: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSettings {
    /// `false` disables the built-in config: nothing is recorded.
    pub enabled: bool,
    /// `automatic`, `on_demand_url` (ask the domain's OnDemandUrl), `on_demand_param`
    /// (record publishes with `record=1`) or `manual`.
    pub mode: String,
    pub delay_secs: f64,
    pub bucket: String,
    pub formats: Vec<FormatSettings>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatSettings {
    /// `mp4`, `flv`, `m3u8` or `cmaf`.
    pub format: String,
    #[serde(default = "default_cycle")]
    pub cycle_secs: f64,
    #[serde(default = "default_slice")]
    pub slice_secs: f64,
    #[serde(default = "default_object_prefix")]
    pub object_prefix: String,
    #[serde(default = "default_slice_object_prefix")]
    pub slice_object_prefix: String,
}

fn default_cycle() -> f64 {
    rc::DEFAULT_CYCLE.as_secs_f64()
}
fn default_slice() -> f64 {
    rc::DEFAULT_SLICE.as_secs_f64()
}
fn default_object_prefix() -> String {
    rc::DEFAULT_OBJECT_PREFIX.to_owned()
}
fn default_slice_object_prefix() -> String {
    rc::DEFAULT_SLICE_OBJECT_PREFIX.to_owned()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            rtmp_listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            api_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            database_url: None,
            default_domain: DEFAULT_DOMAIN.to_owned(),
            domains: Vec::new(),
            shutdown_timeout_secs: 10.0,
            ingest: IngestSettings {
                max_publishers: 1000,
                max_viewers: liverec_rtmp::DEFAULT_MAX_VIEWERS,
                handshake_timeout_secs: 5.0,
                idle_timeout_secs: 5.0,
                threads: 0,
                merge_reads_ms: 40,
                publish_deadline_secs: liverec_rtmp::DEFAULT_PUBLISH_DEADLINE.as_secs_f64(),
                max_pending_connections_per_ip: liverec_rtmp::DEFAULT_MAX_PENDING_PER_IP,
                max_pending_connections: liverec_rtmp::DEFAULT_MAX_PENDING_CONNECTIONS,
                partial_budget_bytes: liverec_rtmp::chunk::DEFAULT_PARTIAL_BUDGET_BYTES,
            },
            api: ApiSettings {
                host_id: liverec_api::DEFAULT_HOST_ID.to_owned(),
                max_request_bytes: liverec_api::ApiSettings::default().max_request_bytes,
                timestamp_window_secs: liverec_api::DEFAULT_TIMESTAMP_WINDOW.as_secs(),
                default_qps: liverec_api::ApiSettings::default().default_qps,
                qps: std::collections::HashMap::new(),
                strict_domains: false,
                buckets: None,
                public_url: None,
                vod_url_ttl_secs: 86_400,
                header_read_timeout_secs: server::DEFAULT_HEADER_READ_TIMEOUT.as_secs_f64(),
                body_timeout_secs: server::DEFAULT_BODY_TIMEOUT.as_secs_f64(),
                idle_timeout_secs: server::DEFAULT_IDLE_TIMEOUT.as_secs_f64(),
                max_pending_connections_per_ip: server::DEFAULT_MAX_PENDING_PER_IP,
                max_connections: server::DEFAULT_MAX_CONNECTIONS,
                requests_per_ip: server::DEFAULT_REQUESTS_PER_IP,
            },
            hub: HubSettings {
                gop_cache_bytes: 16 * 1024 * 1024,
                recorder_queue_bytes: 8 * 1024 * 1024,
                recorder_max_block_secs: 2.0,
            },
            spool: SpoolSettings {
                flush_interval_secs: 1.0,
                fsync_interval_secs: 5.0,
            },
            record: RecordSettings {
                enabled: true,
                mode: "automatic".to_owned(),
                delay_secs: rc::DEFAULT_DELAY.as_secs_f64(),
                bucket: rc::DEFAULT_BUCKET.to_owned(),
                formats: vec![FormatSettings {
                    format: "mp4".to_owned(),
                    cycle_secs: default_cycle(),
                    slice_secs: default_slice(),
                    object_prefix: default_object_prefix(),
                    slice_object_prefix: default_slice_object_prefix(),
                }],
            },
            buckets: BTreeMap::new(),
            storage: StorageSettings {
                retention_sweep_secs: 3600.0,
            },
            notify: NotifySettings {
                timeout_secs: 5.0,
                retry_hours: 24.0,
                retry_max_interval_secs: 300.0,
                concurrency: 64,
                per_domain_concurrency: 8,
                keep_days: 7.0,
                allow_private_hosts: true,
                on_demand_timeout_ms: 3000,
            },
            pull: PullSettings { grace_secs: 10.0 },
        }
    }
}

/// Top-level keys of [`Settings`], the only ones `LIVEREC_*` variables may set.
const SETTING_KEYS: &[&str] = &[
    "data_dir",
    "rtmp_listen",
    "api_listen",
    "database_url",
    "default_domain",
    "domains",
    "shutdown_timeout_secs",
    "ingest",
    "api",
    "hub",
    "spool",
    "record",
    "buckets",
    "storage",
    "notify",
];

/// A positive, finite number of seconds.
pub fn secs(what: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{what} must be a positive number of seconds, not {value}");
    }
    Duration::try_from_secs_f64(value).with_context(|| format!("{what} is out of range"))
}

impl Settings {
    /// Defaults ← `file` (if given) ← `LIVEREC_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only variables naming a setting: LIVEREC_LOG, LIVEREC_ACCESS_KEY_ID and the like are
        // read elsewhere, and an unrelated LIVEREC_* variable must not stop the server.
        figment = figment.merge(
            Env::prefixed("LIVEREC_")
                .filter(|key| {
                    let top = key.as_str().split("__").next().unwrap_or_default();
                    SETTING_KEYS.iter().any(|k| top.eq_ignore_ascii_case(k))
                })
                .split("__"),
        );
        let settings: Settings = figment.extract().context("invalid settings")?;
        settings.record_config()?;
        settings.qps_by_action()?;
        settings.check_buckets()?;
        Ok(settings)
    }

    /// `[api] qps` keyed by the exact action names. Keys match action names in any case, so
    /// `LIVEREC_API__QPS__REALTIMERECORDCOMMAND=0` works although env keys arrive lower-cased;
    /// a key naming no action is an error rather than a limit silently not applied.
    pub fn qps_by_action(&self) -> anyhow::Result<std::collections::HashMap<String, u32>> {
        let actions = liverec_api::Action::names();
        self.api
            .qps
            .iter()
            .map(|(key, &qps)| {
                let action = actions
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(key))
                    .with_context(|| {
                        format!(
                            "[api] qps names no action: {key:?} (actions: {})",
                            actions.join(", ")
                        )
                    })?;
                Ok(((*action).to_owned(), qps))
            })
            .collect()
    }

    /// Checks every `[buckets.NAME]` section.
    pub fn check_buckets(&self) -> anyhow::Result<()> {
        for (name, b) in &self.buckets {
            liverec_hub::validate_name("bucket name", name)
                .with_context(|| format!("[buckets.{name}]"))?;
            let s3_only = [
                ("endpoint", b.endpoint.is_some()),
                ("bucket", b.bucket.is_some()),
                ("region", b.region.is_some()),
                ("access_key_id", b.access_key_id.is_some()),
                ("secret_access_key", b.secret_access_key.is_some()),
                ("virtual_hosted", b.virtual_hosted),
            ];
            match b.kind.as_str() {
                "local" => {
                    if let Some((key, _)) = s3_only.iter().find(|(_, set)| *set) {
                        bail!("[buckets.{name}] {key} is for type = \"s3\"; this bucket is local");
                    }
                }
                "s3" => {
                    if b.path.is_some() {
                        bail!("[buckets.{name}] path is for type = \"local\"");
                    }
                    if let Some(endpoint) = &b.endpoint
                        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                    {
                        bail!(
                            "[buckets.{name}] endpoint must be an http:// or https:// URL, not {endpoint:?}"
                        );
                    }
                    if b.access_key_id.is_some() != b.secret_access_key.is_some() {
                        bail!(
                            "[buckets.{name}] set both access_key_id and secret_access_key, or neither"
                        );
                    }
                }
                other => bail!("[buckets.{name}] type must be \"local\" or \"s3\", not {other:?}"),
            }
            if let Some(days) = b.retention_days
                && !(days.is_finite() && days > 0.0)
            {
                bail!("[buckets.{name}] retention_days must be a positive number, not {days}");
            }
        }
        secs(
            "storage.retention_sweep_secs",
            self.storage.retention_sweep_secs,
        )?;
        if let Some(url) = &self.api.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("api.public_url must be an http:// or https:// URL, not {url:?}");
        }
        if self.api.vod_url_ttl_secs == 0 {
            bail!("api.vod_url_ttl_secs must be positive");
        }
        self.http_limits()?;
        secs("api.body_timeout_secs", self.api.body_timeout_secs)?;
        Ok(())
    }

    /// The API port's connection limits.
    pub fn http_limits(&self) -> anyhow::Result<server::HttpLimits> {
        if self.api.max_pending_connections_per_ip == 0 || self.api.max_connections == 0 {
            bail!("api.max_pending_connections_per_ip and api.max_connections must be positive");
        }
        Ok(server::HttpLimits {
            header_read_timeout: secs(
                "api.header_read_timeout_secs",
                self.api.header_read_timeout_secs,
            )?,
            idle_timeout: secs("api.idle_timeout_secs", self.api.idle_timeout_secs)?,
            max_pending_per_ip: self.api.max_pending_connections_per_ip,
            max_connections: self.api.max_connections,
            requests_per_ip: self.api.requests_per_ip,
        })
    }

    /// The base of RecordUrls, given the API's bound address.
    pub fn public_url(&self, api_addr: SocketAddr) -> String {
        match &self.api.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://127.0.0.1:{}", api_addr.port()),
        }
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("liverec.db").display()))
    }

    /// The API's settings.
    pub fn api_settings(&self) -> liverec_api::ApiSettings {
        liverec_api::ApiSettings {
            host_id: self.api.host_id.clone(),
            max_request_bytes: self.api.max_request_bytes,
            timestamp_window: Duration::from_secs(self.api.timestamp_window_secs),
            // Checked by `load`; settings built otherwise keep only the keys naming an action.
            qps: self.qps_by_action().unwrap_or_else(|_| {
                let actions = liverec_api::Action::names();
                self.api
                    .qps
                    .iter()
                    .filter(|(k, _)| actions.contains(&k.as_str()))
                    .map(|(k, &v)| (k.clone(), v))
                    .collect()
            }),
            default_qps: self.api.default_qps,
            strict_domains: self.api.strict_domains,
            declared_domains: self
                .domains
                .iter()
                .chain(std::iter::once(&self.default_domain))
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            key_cache_ttl: liverec_api::DEFAULT_KEY_CACHE_TTL,
            buckets: self.api.buckets.clone(),
            allow_private_notify_hosts: self.notify.allow_private_hosts,
            // Checked by `load`.
            body_timeout: secs("api.body_timeout_secs", self.api.body_timeout_secs)
                .unwrap_or(server::DEFAULT_BODY_TIMEOUT),
            // Checked by `load`.
            notify_retry_window: secs("notify.retry_hours", self.notify.retry_hours * 3600.0)
                .unwrap_or(Duration::from_secs(24 * 3600)),
        }
    }

    /// The built-in record config, or `None` when disabled.
    pub fn record_config(&self) -> anyhow::Result<Option<RecordConfig>> {
        let r = &self.record;
        if !r.enabled {
            return Ok(None);
        }
        let mode = match r.mode.as_str() {
            "automatic" => RecordMode::Automatic,
            "on_demand_url" => RecordMode::OnDemandUrl,
            "on_demand_param" => RecordMode::OnDemandParam,
            "manual" => RecordMode::Manual,
            other => bail!(
                "record.mode must be \"automatic\", \"on_demand_url\", \"on_demand_param\" or \"manual\", not {other:?}"
            ),
        };
        liverec_hub::validate_name("record.bucket", &r.bucket).context("record.bucket")?;
        if r.formats.is_empty() {
            bail!(
                "record.formats is empty: list at least one format, or set record.enabled = false"
            );
        }
        let mut formats = Vec::new();
        for f in &r.formats {
            let format = Format::parse(&f.format).with_context(|| {
                format!(
                    "unknown record format {:?} (mp4, flv, m3u8, cmaf)",
                    f.format
                )
            })?;
            let mut spec = FormatSpec::new(format);
            spec.cycle = secs("record.formats.cycle_secs", f.cycle_secs)?;
            spec.slice = secs("record.formats.slice_secs", f.slice_secs)?;
            if !liverec_storage::layout::valid_object_prefix(&f.object_prefix) {
                bail!(
                    "record.formats: object_prefix {:?} of {} is not a valid object-name template: a \
                     relative path of at most 255 bytes with {{StartTime}} or {{EscapedStartTime}}, \
                     {{EndTime}} or {{EscapedEndTime}}, and otherwise only {{AppName}}, {{StreamName}}, \
                     {{DomainName}}, {{Sequence}}",
                    f.object_prefix,
                    f.format
                );
            }
            if format.is_segmented()
                && !liverec_storage::layout::valid_slice_prefix(&f.slice_object_prefix)
            {
                bail!(
                    "record.formats: slice_object_prefix {:?} of {} is not a valid object-name \
                     template: a relative path of at most 255 bytes with {{UnixTimestamp}} and \
                     {{Sequence}}, and otherwise only {{AppName}}, {{StreamName}}, {{DomainName}}",
                    f.slice_object_prefix,
                    f.format
                );
            }
            spec.object_prefix = f.object_prefix.clone();
            spec.slice_object_prefix = f.slice_object_prefix.clone();
            formats.push(spec);
        }
        Ok(Some(RecordConfig {
            mode,
            delay: secs("record.delay_secs", r.delay_secs)?,
            bucket: r.bucket.clone(),
            endpoint: String::new(),
            formats,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::default();
        assert_eq!(s.rtmp_listen.port(), 1935);
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        let rc = s.record_config().unwrap().unwrap();
        assert_eq!(rc.mode, RecordMode::Automatic);
        assert_eq!(rc.delay, Duration::from_secs(180));
        assert_eq!(rc.formats.len(), 1);
        assert_eq!(rc.formats[0].format, Format::Mp4);
        assert_eq!(rc.formats[0].cycle, Duration::from_secs(3600));
        // README: one media thread per core, publishers read at most every 40 ms.
        assert_eq!(s.ingest.threads, 0);
        assert_eq!(s.ingest.merge_reads_ms, 40);
    }

    #[test]
    fn toml_overrides_and_bad_values_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liverec.toml");
        std::fs::write(
            &path,
            "[record]\ndelay_secs = 2.5\nformats = [{ format = \"flv\", cycle_secs = 5 }]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        let rc = s.record_config().unwrap().unwrap();
        assert_eq!(rc.delay, Duration::from_millis(2500));
        assert_eq!(rc.formats[0].format, Format::Flv);

        std::fs::write(&path, "[record]\nformats = [{ format = \"avi\" }]\n").unwrap();
        let err = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
        assert!(err.contains("unknown record format"), "{err}");
        std::fs::write(&path, "[record]\ndelay_secs = -1\n").unwrap();
        assert!(Settings::load(Some(&path)).is_err());
        // Object-name templates are checked as the API checks them.
        std::fs::write(
            &path,
            "[record]\nformats = [{ format = \"mp4\", object_prefix = \"r/{StreamName}/{StartTime}\" }]\n",
        )
        .unwrap();
        let err = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
        assert!(
            err.contains("object_prefix") && err.contains("not a valid"),
            "{err}"
        );
        std::fs::write(
            &path,
            "[record]\nformats = [{ format = \"m3u8\", slice_object_prefix = \"../{UnixTimestamp}_{Sequence}\" }]\n",
        )
        .unwrap();
        let err = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
        assert!(err.contains("slice_object_prefix"), "{err}");
        std::fs::write(&path, "nonsense = 1\n").unwrap();
        assert!(Settings::load(Some(&path)).is_err());
        std::fs::write(&path, "[api]\nqps = { RealTimeRecordComand = 5 }\n").unwrap();
        let err = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
        assert!(
            err.contains("RealTimeRecordComand") && err.contains("names no action"),
            "{err}"
        );
    }

    #[test]
    fn bucket_sections_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liverec.toml");
        std::fs::write(
            &path,
            "[buckets.archive]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"rec-archive\"\nregion = \"us-east-1\"\naccess_key_id = \"a\"\nsecret_access_key = \"b\"\nretention_days = 30\n[buckets.disk]\npath = \"/srv/rec\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        let archive = &s.buckets["archive"];
        assert_eq!(archive.kind, "s3");
        assert_eq!(archive.bucket.as_deref(), Some("rec-archive"));
        assert_eq!(archive.retention_days, Some(30.0));
        assert_eq!(s.buckets["disk"].kind, "local");
        for (bad, why) in [
            ("[buckets.x]\ntype = \"ftp\"\n", "type must be"),
            (
                "[buckets.x]\nendpoint = \"http://h\"\n",
                "is for type = \"s3\"",
            ),
            (
                "[buckets.x]\ntype = \"s3\"\nendpoint = \"h:9000\"\n",
                "http:// or https://",
            ),
            (
                "[buckets.x]\ntype = \"s3\"\naccess_key_id = \"a\"\n",
                "or neither",
            ),
            ("[buckets.x]\nretention_days = 0\n", "positive"),
            ("[buckets.\"../x\"]\n", "bucket name"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn notify_section() {
        let s = Settings::default();
        assert!(s.notify.allow_private_hosts);
        assert!(s.api_settings().allow_private_notify_hosts);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liverec.toml");
        std::fs::write(&path, "[notify]\nallow_private_hosts = false\n").unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        assert!(!s.api_settings().allow_private_notify_hosts);
        std::fs::write(&path, "[notify]\n").unwrap();
        assert!(
            Settings::load(Some(&path))
                .unwrap()
                .notify
                .allow_private_hosts
        );
        std::fs::write(&path, "[notify]\nallow_private = false\n").unwrap();
        assert!(Settings::load(Some(&path)).is_err());
    }

    #[test]
    fn qps_keys_match_action_names_in_any_case() {
        let mut s = Settings::default();
        s.api.qps.insert("realtimerecordcommand".into(), 0);
        s.api.qps.insert("DescribeLiveRecordConfig".into(), 7);
        let qps = s.api_settings().qps;
        assert_eq!(qps.get("RealTimeRecordCommand"), Some(&0));
        assert_eq!(qps.get("DescribeLiveRecordConfig"), Some(&7));
        assert_eq!(qps.len(), 2);
    }
}
