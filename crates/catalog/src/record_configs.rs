//! Record configs made through the API, one per (domain, app, stream). Format lists and
//! transcode templates are stored as JSON text so both backends share one schema.

use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::{Catalog, Page, RecordConfigRow, RecordFormatRow};

/// Column list of `ConfigRecord` (a macro so queries stay `&'static str` literals).
macro_rules! columns {
    () => {
        "domain, app, stream, oss_endpoint, oss_bucket, on_demand, delay_time, start_time, \
         end_time, formats, transcode_formats, transcode_templates, created_at"
    };
}
/// `$2`/`$3` NULL means "any app" / "any stream".
macro_rules! filter {
    () => {
        "WHERE domain = $1 AND ($2 IS NULL OR app = $2) AND ($3 IS NULL OR stream = $3)"
    };
}
/// Creation time, then the (unique) natural key, so pages never overlap or skip.
macro_rules! order_asc {
    () => {
        "ORDER BY created_at ASC, domain ASC, app ASC, stream ASC"
    };
}
macro_rules! order_desc {
    () => {
        "ORDER BY created_at DESC, domain DESC, app DESC, stream DESC"
    };
}

const INSERT_CONFIG: &str = "INSERT INTO record_configs (domain, app, stream, oss_endpoint, \
     oss_bucket, on_demand, delay_time, start_time, end_time, formats, transcode_formats, \
     transcode_templates, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
/// `created_at` is kept: an update does not make a config new.
const UPDATE_CONFIG: &str = "UPDATE record_configs SET oss_endpoint = $4, oss_bucket = $5, \
     on_demand = $6, delay_time = $7, start_time = $8, end_time = $9, formats = $10, \
     transcode_formats = $11, transcode_templates = $12 \
     WHERE domain = $1 AND app = $2 AND stream = $3";
const DELETE_CONFIG: &str =
    "DELETE FROM record_configs WHERE domain = $1 AND app = $2 AND stream = $3";
const SELECT_CONFIG: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM record_configs ",
    "WHERE domain = $1 AND app = $2 AND stream = $3"
);
const SELECT_PAGE_ASC: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM record_configs ",
    filter!(),
    " ",
    order_asc!(),
    " LIMIT $4 OFFSET $5"
);
const SELECT_PAGE_DESC: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM record_configs ",
    filter!(),
    " ",
    order_desc!(),
    " LIMIT $4 OFFSET $5"
);
const COUNT_PAGE: &str = concat!("SELECT COUNT(*) FROM record_configs ", filter!());
const SELECT_ALL: &str = concat!("SELECT ", columns!(), " FROM record_configs ", order_asc!());

/// The JSON form of one format item (private: the column format is ours, not the API's).
#[derive(Serialize, Deserialize)]
struct FormatJson {
    format: String,
    #[serde(default)]
    oss_object_prefix: Option<String>,
    #[serde(default)]
    slice_oss_object_prefix: Option<String>,
    #[serde(default)]
    cycle_duration: Option<i64>,
    #[serde(default)]
    slice_duration: Option<i64>,
}

impl From<&RecordFormatRow> for FormatJson {
    fn from(f: &RecordFormatRow) -> Self {
        Self {
            format: f.format.clone(),
            oss_object_prefix: f.oss_object_prefix.clone(),
            slice_oss_object_prefix: f.slice_oss_object_prefix.clone(),
            cycle_duration: f.cycle_duration,
            slice_duration: f.slice_duration,
        }
    }
}

impl From<FormatJson> for RecordFormatRow {
    fn from(f: FormatJson) -> Self {
        Self {
            format: f.format,
            oss_object_prefix: f.oss_object_prefix,
            slice_oss_object_prefix: f.slice_oss_object_prefix,
            cycle_duration: f.cycle_duration,
            slice_duration: f.slice_duration,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ConfigRecord {
    domain: String,
    app: String,
    stream: String,
    oss_endpoint: String,
    oss_bucket: String,
    on_demand: i32,
    delay_time: i32,
    start_time: Option<String>,
    end_time: Option<String>,
    formats: String,
    transcode_formats: String,
    transcode_templates: String,
    created_at: i64,
}

impl TryFrom<ConfigRecord> for RecordConfigRow {
    type Error = CatalogError;

    fn try_from(r: ConfigRecord) -> Result<Self> {
        Ok(Self {
            formats: decode_formats("record_configs.formats", &r.formats)?,
            transcode_formats: decode_formats(
                "record_configs.transcode_formats",
                &r.transcode_formats,
            )?,
            transcode_templates: serde_json::from_str(&r.transcode_templates)
                .map_err(|e| CatalogError::corrupt("record_configs.transcode_templates", e))?,
            domain: r.domain,
            app: r.app,
            stream: r.stream,
            oss_endpoint: r.oss_endpoint,
            oss_bucket: r.oss_bucket,
            on_demand: r.on_demand,
            delay_time: r.delay_time,
            start_time: r.start_time,
            end_time: r.end_time,
            created_at: r.created_at,
        })
    }
}

fn decode_formats(column: &'static str, json: &str) -> Result<Vec<RecordFormatRow>> {
    let items: Vec<FormatJson> =
        serde_json::from_str(json).map_err(|e| CatalogError::corrupt(column, e))?;
    Ok(items.into_iter().map(RecordFormatRow::from).collect())
}

/// The JSON columns of a config, encoded once before binding.
struct EncodedLists {
    formats: String,
    transcode_formats: String,
    transcode_templates: String,
}

impl EncodedLists {
    fn of(config: &RecordConfigRow) -> Result<Self> {
        let encode_formats = |formats: &[RecordFormatRow]| {
            let items: Vec<FormatJson> = formats.iter().map(FormatJson::from).collect();
            serde_json::to_string(&items)
        };
        let encode_err =
            |e: serde_json::Error| CatalogError::Database(format!("encode record config: {e}"));
        Ok(Self {
            formats: encode_formats(&config.formats).map_err(encode_err)?,
            transcode_formats: encode_formats(&config.transcode_formats).map_err(encode_err)?,
            transcode_templates: serde_json::to_string(&config.transcode_templates)
                .map_err(encode_err)?,
        })
    }
}

fn decode_all(records: Vec<ConfigRecord>) -> Result<Vec<RecordConfigRow>> {
    records.into_iter().map(RecordConfigRow::try_from).collect()
}

impl Catalog {
    /// `AlreadyExists` if (domain, app, stream) has a config.
    pub async fn add_record_config(&self, config: &RecordConfigRow) -> Result<()> {
        let lists = EncodedLists::of(config)?;
        on_pool!(self, |pool| sqlx::query(INSERT_CONFIG)
            .bind(&config.domain)
            .bind(&config.app)
            .bind(&config.stream)
            .bind(&config.oss_endpoint)
            .bind(&config.oss_bucket)
            .bind(config.on_demand)
            .bind(config.delay_time)
            .bind(config.start_time.as_deref())
            .bind(config.end_time.as_deref())
            .bind(&lists.formats)
            .bind(&lists.transcode_formats)
            .bind(&lists.transcode_templates)
            .bind(config.created_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| CatalogError::from_sqlx("insert record config", e))
    }

    /// Replaces the config of (domain, app, stream); false if there is none. Every field but
    /// the key and `created_at` (the stored creation time is kept) is replaced.
    pub async fn update_record_config(&self, config: &RecordConfigRow) -> Result<bool> {
        let lists = EncodedLists::of(config)?;
        let affected = on_pool!(self, |pool| sqlx::query(UPDATE_CONFIG)
            .bind(&config.domain)
            .bind(&config.app)
            .bind(&config.stream)
            .bind(&config.oss_endpoint)
            .bind(&config.oss_bucket)
            .bind(config.on_demand)
            .bind(config.delay_time)
            .bind(config.start_time.as_deref())
            .bind(config.end_time.as_deref())
            .bind(&lists.formats)
            .bind(&lists.transcode_formats)
            .bind(&lists.transcode_templates)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("update record config", e))?;
        Ok(affected > 0)
    }

    /// False if there was no such config.
    pub async fn delete_record_config(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
    ) -> Result<bool> {
        let affected = on_pool!(self, |pool| sqlx::query(DELETE_CONFIG)
            .bind(domain)
            .bind(app)
            .bind(stream)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("delete record config", e))?;
        Ok(affected > 0)
    }

    /// The config of exactly (domain, app, stream); `*` is matched literally, not as a wildcard.
    pub async fn record_config(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
    ) -> Result<Option<RecordConfigRow>> {
        let record = on_pool!(self, |pool| sqlx::query_as::<_, ConfigRecord>(
            SELECT_CONFIG
        )
        .bind(domain)
        .bind(app)
        .bind(stream)
        .fetch_optional(pool)
        .await)
        .map_err(|e| CatalogError::from_sqlx("select record config", e))?;
        record.map(RecordConfigRow::try_from).transpose()
    }

    /// Configs of `domain` (optionally exactly `app` / `stream`), paged by creation time;
    /// returns the page and the total count.
    pub async fn record_configs(
        &self,
        domain: &str,
        app: Option<&str>,
        stream: Option<&str>,
        page: Page,
    ) -> Result<(Vec<RecordConfigRow>, u64)> {
        let select = if page.desc {
            SELECT_PAGE_DESC
        } else {
            SELECT_PAGE_ASC
        };
        let (records, total): (Vec<ConfigRecord>, i64) = on_pool!(self, |pool| {
            let records = sqlx::query_as::<_, ConfigRecord>(select)
                .bind(domain)
                .bind(app)
                .bind(stream)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(pool)
                .await;
            match records {
                Ok(records) => sqlx::query_scalar(COUNT_PAGE)
                    .bind(domain)
                    .bind(app)
                    .bind(stream)
                    .fetch_one(pool)
                    .await
                    .map(|total| (records, total)),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| CatalogError::from_sqlx("select record configs", e))?;
        Ok((decode_all(records)?, u64::try_from(total).unwrap_or(0)))
    }

    /// Every config (the recorder's snapshot), oldest first.
    pub async fn all_record_configs(&self) -> Result<Vec<RecordConfigRow>> {
        let records = on_pool!(self, |pool| sqlx::query_as::<_, ConfigRecord>(SELECT_ALL)
            .fetch_all(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select all record configs", e))?;
        decode_all(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_json_is_a_database_error_not_a_panic() {
        let err = decode_formats("record_configs.formats", "{not json").unwrap_err();
        assert!(
            matches!(err, CatalogError::Database(ref m) if m.contains("record_configs.formats"))
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn missing_optional_fields_decode_as_none() {
        let formats = decode_formats("f", r#"[{"format":"mp4"}]"#).unwrap();
        assert_eq!(formats[0].format, "mp4");
        assert_eq!(formats[0].cycle_duration, None);
        assert_eq!(formats[0].oss_object_prefix, None);
    }
}
