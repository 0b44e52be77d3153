//! Record notify configs (AddLiveRecordNotifyConfig & co.): one per domain.

use crate::error::{CatalogError, Result};
use crate::{Catalog, now_ms};

/// A domain's callback settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfigRow {
    /// Lowercase.
    pub domain: String,
    pub notify_url: String,
    /// `""` when the config has none.
    pub on_demand_url: String,
    pub need_status_notify: bool,
    pub notify_req_auth: bool,
    /// `""` when the config has none.
    pub notify_auth_key: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT domain, notify_url, on_demand_url, need_status_notify, \
     notify_req_auth, notify_auth_key, created_at, updated_at FROM notify_configs WHERE domain = $1";
const INSERT: &str = "INSERT INTO notify_configs (domain, notify_url, on_demand_url, \
     need_status_notify, notify_req_auth, notify_auth_key, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (domain) DO NOTHING";
const UPDATE: &str = "UPDATE notify_configs SET notify_url = $2, on_demand_url = $3, \
     need_status_notify = $4, notify_req_auth = $5, notify_auth_key = $6, updated_at = $7 \
     WHERE domain = $1";
const DELETE: &str = "DELETE FROM notify_configs WHERE domain = $1";

#[derive(sqlx::FromRow)]
struct Record {
    domain: String,
    notify_url: String,
    on_demand_url: String,
    need_status_notify: bool,
    notify_req_auth: bool,
    notify_auth_key: String,
    created_at: i64,
    updated_at: i64,
}

impl From<Record> for NotifyConfigRow {
    fn from(r: Record) -> Self {
        Self {
            domain: r.domain,
            notify_url: r.notify_url,
            on_demand_url: r.on_demand_url,
            need_status_notify: r.need_status_notify,
            notify_req_auth: r.notify_req_auth,
            notify_auth_key: r.notify_auth_key,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl Catalog {
    /// Adds the notify config of `config.domain` (`created_at`/`updated_at` are set to now).
    /// Returns false, changing nothing, when the domain has one already.
    pub async fn insert_notify_config(&self, config: &NotifyConfigRow) -> Result<bool> {
        self.write_notify_config(INSERT, config, "insert notify config")
            .await
    }

    /// Replaces the settings of the domain's notify config. Returns false when it has none.
    pub async fn update_notify_config(&self, config: &NotifyConfigRow) -> Result<bool> {
        self.write_notify_config(UPDATE, config, "update notify config")
            .await
    }

    async fn write_notify_config(
        &self,
        sql: &'static str,
        c: &NotifyConfigRow,
        operation: &'static str,
    ) -> Result<bool> {
        let now = now_ms();
        let affected = on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.domain)
            .bind(&c.notify_url)
            .bind(&c.on_demand_url)
            .bind(c.need_status_notify)
            .bind(c.notify_req_auth)
            .bind(&c.notify_auth_key)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx(operation, e))?;
        Ok(affected == 1)
    }

    /// Deletes the domain's notify config. Returns false when it had none. Callbacks already
    /// queued are still delivered (they carry their URL).
    pub async fn delete_notify_config(&self, domain: &str) -> Result<bool> {
        let affected = on_pool!(self, |pool| sqlx::query(DELETE)
            .bind(domain)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| CatalogError::from_sqlx("delete notify config", e))?;
        Ok(affected == 1)
    }

    /// The domain's notify config, if it has one.
    pub async fn notify_config(&self, domain: &str) -> Result<Option<NotifyConfigRow>> {
        let record = on_pool!(self, |pool| sqlx::query_as::<_, Record>(SELECT)
            .bind(domain)
            .fetch_optional(pool)
            .await)
        .map_err(|e| CatalogError::from_sqlx("select notify config", e))?;
        Ok(record.map(NotifyConfigRow::from))
    }
}
