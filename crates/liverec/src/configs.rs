//! Which record config applies to a stream: the API-made configs (a snapshot of the catalog,
//! reloaded after every change) and the built-in one.
//!
//! DESIGN.md: precedence (D, A, S) > (D, A, `*`) > (D, `*`, S) > (D, `*`, `*`); a config with a
//! StartTime/EndTime window applies only inside it (outside, the next in precedence applies);
//! any API-made config for a domain replaces the built-in config for that domain.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use liverec_catalog::{Catalog, RecordConfigRow, RecordFormatRow};
use liverec_hub::StreamKey;
use liverec_recorder::config::{
    DEFAULT_CYCLE, DEFAULT_OBJECT_PREFIX, DEFAULT_SLICE, DEFAULT_SLICE_OBJECT_PREFIX,
};
use liverec_recorder::{ConfigSource, Format, FormatSpec, RecordConfig, RecordMode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Alibaba's default cycle of segmented formats (m3u8, cmaf): 6 hours.
const DEFAULT_SEGMENTED_CYCLE: Duration = Duration::from_secs(6 * 3600);

pub struct CatalogConfigs {
    catalog: Catalog,
    builtin: Option<RecordConfig>,
    rows: RwLock<Arc<Vec<RecordConfigRow>>>,
}

impl CatalogConfigs {
    pub fn new(catalog: Catalog, builtin: Option<RecordConfig>) -> Self {
        Self {
            catalog,
            builtin,
            rows: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// Reads every config from the catalog. On a database error the previous snapshot stays.
    pub async fn reload(&self) {
        match self.catalog.all_record_configs().await {
            Ok(rows) => {
                let mut guard = self.rows.write().unwrap_or_else(|p| p.into_inner());
                *guard = Arc::new(rows);
            }
            Err(err) => {
                tracing::error!(%err, "cannot reload record configs; keeping the previous ones")
            }
        }
    }

    fn snapshot(&self) -> Arc<Vec<RecordConfigRow>> {
        self.rows.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ConfigSource for CatalogConfigs {
    fn resolve(&self, key: &StreamKey) -> Option<RecordConfig> {
        resolve(
            &self.snapshot(),
            self.builtin.as_ref(),
            key,
            SystemTime::now(),
        )
    }
}

/// The config that applies to `key` at `now`.
pub fn resolve(
    rows: &[RecordConfigRow],
    builtin: Option<&RecordConfig>,
    key: &StreamKey,
    now: SystemTime,
) -> Option<RecordConfig> {
    let of_domain: Vec<&RecordConfigRow> = rows
        .iter()
        .filter(|r| r.domain.eq_ignore_ascii_case(&key.domain))
        .collect();
    if of_domain.is_empty() {
        return builtin.cloned();
    }
    let candidates = [
        (key.app.as_str(), key.stream.as_str()),
        (key.app.as_str(), "*"),
        ("*", key.stream.as_str()),
        ("*", "*"),
    ];
    candidates
        .iter()
        .filter_map(|(app, stream)| {
            of_domain
                .iter()
                .find(|r| r.app == *app && r.stream == *stream)
        })
        .find(|r| in_window(r, now))
        .map(|r| to_record_config(r))
}

fn parse_time(value: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

fn in_window(row: &RecordConfigRow, now: SystemTime) -> bool {
    let after_start = row
        .start_time
        .as_deref()
        .and_then(parse_time)
        .is_none_or(|s| now >= s);
    let before_end = row
        .end_time
        .as_deref()
        .and_then(parse_time)
        .is_none_or(|e| now < e);
    after_start && before_end
}

fn format_spec(f: &RecordFormatRow) -> Option<FormatSpec> {
    let format = Format::parse(&f.format)?;
    let segmented = format.is_segmented();
    let secs = |v: Option<i64>| {
        v.and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
    };
    Some(FormatSpec {
        format,
        object_prefix: f
            .oss_object_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_OBJECT_PREFIX.to_owned()),
        slice_object_prefix: f
            .slice_oss_object_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_SLICE_OBJECT_PREFIX.to_owned()),
        cycle: secs(f.cycle_duration).unwrap_or(if segmented {
            DEFAULT_SEGMENTED_CYCLE
        } else {
            DEFAULT_CYCLE
        }),
        slice: secs(f.slice_duration).unwrap_or(DEFAULT_SLICE),
    })
}

fn to_record_config(row: &RecordConfigRow) -> RecordConfig {
    RecordConfig {
        mode: RecordMode::from_on_demand(row.on_demand),
        delay: Duration::from_secs(u64::try_from(row.delay_time).unwrap_or(0).max(1)),
        bucket: row.oss_bucket.clone(),
        endpoint: row.oss_endpoint.clone(),
        formats: row.formats.iter().filter_map(format_spec).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, stream: &str, bucket: &str) -> RecordConfigRow {
        RecordConfigRow {
            domain: "d.example".into(),
            app: app.into(),
            stream: stream.into(),
            oss_endpoint: "e".into(),
            oss_bucket: bucket.into(),
            on_demand: 7,
            delay_time: 30,
            start_time: None,
            end_time: None,
            formats: vec![RecordFormatRow {
                format: "m3u8".into(),
                oss_object_prefix: None,
                slice_oss_object_prefix: None,
                cycle_duration: None,
                slice_duration: Some(10),
            }],
            transcode_formats: vec![],
            transcode_templates: vec![],
            created_at: 0,
        }
    }

    fn key(domain: &str, app: &str, stream: &str) -> StreamKey {
        StreamKey {
            domain: domain.into(),
            app: app.into(),
            stream: stream.into(),
        }
    }

    #[test]
    fn most_specific_config_wins() {
        let rows = vec![
            row("*", "*", "any"),
            row("*", "s", "star-s"),
            row("a", "*", "a-star"),
            row("a", "s", "a-s"),
        ];
        let now = SystemTime::now();
        let bucket = |k: StreamKey| resolve(&rows, None, &k, now).map(|c| c.bucket);
        assert_eq!(bucket(key("d.example", "a", "s")).as_deref(), Some("a-s"));
        assert_eq!(
            bucket(key("d.example", "a", "x")).as_deref(),
            Some("a-star")
        );
        assert_eq!(
            bucket(key("d.example", "b", "s")).as_deref(),
            Some("star-s")
        );
        assert_eq!(bucket(key("d.example", "b", "x")).as_deref(), Some("any"));
    }

    #[test]
    fn api_config_replaces_builtin_for_its_domain_only() {
        let builtin = RecordConfig::builtin();
        let rows = vec![row("a", "*", "mine")];
        let now = SystemTime::now();
        assert_eq!(
            resolve(&rows, Some(&builtin), &key("d.example", "other", "s"), now),
            None
        );
        assert_eq!(
            resolve(&rows, Some(&builtin), &key("other.example", "a", "s"), now),
            Some(builtin.clone())
        );
        let c = resolve(&rows, Some(&builtin), &key("D.EXAMPLE", "a", "s"), now).unwrap();
        assert_eq!(c.mode, RecordMode::Manual);
        assert_eq!(c.delay, Duration::from_secs(30));
        assert_eq!(c.formats[0].format, Format::M3u8);
        assert_eq!(c.formats[0].cycle, DEFAULT_SEGMENTED_CYCLE);
        assert_eq!(c.formats[0].slice, Duration::from_secs(10));
    }

    #[test]
    fn time_window_falls_back_to_the_next_config() {
        let mut windowed = row("a", "s", "windowed");
        windowed.start_time = Some("2030-01-01T00:00:00Z".into());
        windowed.end_time = Some("2030-01-02T00:00:00Z".into());
        let rows = vec![windowed, row("a", "*", "fallback")];
        let inside = parse_time("2030-01-01T12:00:00Z").unwrap();
        let outside = parse_time("2030-01-03T00:00:00Z").unwrap();
        let k = key("d.example", "a", "s");
        assert_eq!(resolve(&rows, None, &k, inside).unwrap().bucket, "windowed");
        assert_eq!(
            resolve(&rows, None, &k, outside).unwrap().bucket,
            "fallback"
        );
    }
}
