//! Pulled streams (API.md "Pulled streams"): triggered ("lazy") pull configs —
//! SetLiveLazyPullStreamInfoConfig, DescribeLiveLazyPullStreamConfig,
//! DeleteLiveLazyPullStreamInfoConfig: a play of a stream nobody publishes, on an app with a
//! config, pulls it from the config's origins — and scheduled pulls —
//! AddLivePullStreamInfoConfig, UpdateLivePullStreamInfoConfig, DescribeLivePullStreamConfig,
//! DeleteLivePullStreamInfoConfig: a source pulled and recorded during a time window.

use liverec_catalog::{ALL_APPS, LazyPullConfig, PullConfig};
use liverec_hub::validate_domain;
use time::OffsetDateTime;

use super::Reply;
use super::common;
use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::{Object, Value};

/// Origins one config may list (liverec's bound; Alibaba documents none).
pub const MAX_PULL_ORIGINS: usize = 8;

/// `AppName`: an app, or `ali_all_app` for every app of the domain.
fn app_or_all(params: &Params) -> Result<String, ApiError> {
    let app = params.required("AppName")?;
    if app == ALL_APPS {
        return Ok(app.to_owned());
    }
    common::name("AppName", app, false)
}

/// `PullDomainName`: `host[:port]`, several separated by `;`, tried in order.
fn pull_domains(value: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::InvalidParameter("PullDomainName".to_owned());
    let origins: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() || origins.len() > MAX_PULL_ORIGINS {
        return Err(invalid());
    }
    for origin in &origins {
        let (host, port) = match origin.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (*origin, None),
        };
        validate_domain(host).map_err(|_| invalid())?;
        if let Some(port) = port
            && port.parse::<u16>().ok().filter(|p| *p > 0).is_none()
        {
            return Err(invalid());
        }
    }
    Ok(origins.join(";"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetLiveLazyPullStreamInfoConfig {
    config: LazyPullConfig,
}

impl SetLiveLazyPullStreamInfoConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let app = app_or_all(params)?;
        let pull_domain = pull_domains(params.required("PullDomainName")?)?;
        let pull_app = match params.optional("PullAppName") {
            None | Some("") => String::new(),
            Some(v) => common::name("PullAppName", v, false)?,
        };
        let pull_protocol = match params
            .required("PullProtocol")?
            .to_ascii_lowercase()
            .as_str()
        {
            "rtmp" => "rtmp",
            "httpflv" => "httpflv",
            // Pulling HLS is not implemented: said at once rather than failing at play time.
            _ => return Err(ApiError::InvalidParameter("PullProtocol".to_owned())),
        };
        let transcode_lazy = common::one_of(params, "TranscodeLazy", &["yes", "no"], "no")?;
        Ok(Self {
            config: LazyPullConfig {
                domain,
                app,
                pull_domain,
                pull_app,
                pull_protocol: pull_protocol.to_owned(),
                transcode_lazy: transcode_lazy.to_owned(),
                created_at: 0,
                updated_at: 0,
            },
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.config.domain).await?;
        state.catalog.ensure_domain(&self.config.domain).await?;
        state.catalog.set_lazy_pull_config(&self.config).await?;
        tracing::info!(domain = %self.config.domain, app = %self.config.app,
            origins = %self.config.pull_domain, protocol = %self.config.pull_protocol,
            "triggered pull configured");
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveLazyPullStreamConfig {
    domain: String,
    app: Option<String>,
}

impl DescribeLiveLazyPullStreamConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        let app = match params.optional("AppName") {
            None | Some("") => None,
            Some(_) => Some(app_or_all(params)?),
        };
        Ok(Self { domain, app })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let configs = state
            .catalog
            .lazy_pull_configs(&self.domain, self.app.as_deref())
            .await?;
        let items = configs
            .into_iter()
            .map(|c| {
                Value::Object(
                    Object::new()
                        .str("AppName", c.app)
                        .str("DomainName", c.domain)
                        .str("PullAppName", c.pull_app)
                        .str("PullArgs", "")
                        .str("PullDomainName", c.pull_domain)
                        .str("PullProtocol", c.pull_protocol)
                        .str("TranscodeLazy", c.transcode_lazy),
                )
            })
            .collect();
        Ok(Reply::new().wrapped_list("LiveLazyPullConfigList", "LiveLazyPullConfig", items))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteLiveLazyPullStreamInfoConfig {
    domain: String,
    app: String,
}

impl DeleteLiveLazyPullStreamInfoConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domain: common::domain(params)?,
            app: app_or_all(params)?,
        })
    }

    /// Deleting a config that is not there succeeds (Alibaba documents no error for it).
    /// Pulls already running go on until their last viewer leaves.
    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        if state
            .catalog
            .delete_lazy_pull_config(&self.domain, &self.app)
            .await?
        {
            tracing::info!(domain = %self.domain, app = %self.app, "triggered pull config deleted");
        }
        Ok(Reply::new())
    }
}

/// Longest window of a scheduled pull (API.md: StartTime and EndTime at most 7 days apart).
pub const MAX_PULL_WINDOW_MS: i64 = 7 * 86_400 * 1000;
/// Longest SourceUrl (all sources together).
const MAX_SOURCE_URL_LEN: usize = 2048;

/// `SourceUrl`: `rtmp://` or `http(s)://` URLs of a stream, several separated by `;`.
fn source_urls(value: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::InvalidParameter("SourceUrl".to_owned());
    if value.len() > MAX_SOURCE_URL_LEN {
        return Err(invalid());
    }
    let urls: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() || urls.len() > MAX_PULL_ORIGINS {
        return Err(invalid());
    }
    for url in &urls {
        let rest = ["rtmp://", "http://", "https://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(invalid)?;
        let (authority, path) = rest.split_once('/').ok_or_else(invalid)?;
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        validate_domain(host).map_err(|_| invalid())?;
        if path.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid());
        }
    }
    Ok(urls.join(";"))
}

/// A UTC time parameter as Unix milliseconds, else `Invalid{name}.Malformed`.
fn utc_ms(params: &Params, name: &'static str) -> Result<i64, ApiError> {
    let t = common::parse_utc(params.required(name)?).ok_or(ApiError::Malformed(name))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| ApiError::Malformed(name))
}

/// The parameters of Add/UpdateLivePullStreamInfoConfig.
fn pull_config(params: &Params) -> Result<PullConfig, ApiError> {
    let domain = common::domain(params)?;
    let app = common::name("AppName", params.required("AppName")?, false)?;
    let stream = common::name("StreamName", params.required("StreamName")?, false)?;
    let source_url = source_urls(params.required("SourceUrl")?)?;
    let start_at = utc_ms(params, "StartTime")?;
    let end_at = utc_ms(params, "EndTime")?;
    if end_at <= start_at || end_at - start_at > MAX_PULL_WINDOW_MS {
        return Err(ApiError::Malformed("EndTime"));
    }
    Ok(PullConfig {
        domain,
        app,
        stream,
        source_url,
        start_at,
        end_at,
        source_using: String::new(),
        created_at: 0,
        updated_at: 0,
    })
}

/// EndTime must be in the future (API.md).
fn check_future(config: &PullConfig) -> Result<(), ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    if i128::from(config.end_at) <= now {
        return Err(ApiError::Malformed("EndTime"));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddLivePullStreamInfoConfig {
    config: PullConfig,
}

impl AddLivePullStreamInfoConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            config: pull_config(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        check_future(&self.config)?;
        common::check_domain(state, &self.config.domain).await?;
        state.catalog.ensure_domain(&self.config.domain).await?;
        if !state.catalog.add_pull_config(&self.config).await? {
            return Err(ApiError::ConfigAlreadyExists);
        }
        let c = &self.config;
        tracing::info!(domain = %c.domain, app = %c.app, stream = %c.stream,
            start = %common::format_unix_ms(c.start_at), end = %common::format_unix_ms(c.end_at),
            "scheduled pull added");
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLivePullStreamInfoConfig {
    config: PullConfig,
}

impl UpdateLivePullStreamInfoConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            config: pull_config(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        check_future(&self.config)?;
        common::check_domain(state, &self.config.domain).await?;
        if !state.catalog.update_pull_config(&self.config).await? {
            return Err(ApiError::ConfigNotFound);
        }
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLivePullStreamConfig {
    domain: String,
}

impl DescribeLivePullStreamConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domain: common::domain(params)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let items = state
            .catalog
            .pull_configs(&self.domain)
            .await?
            .into_iter()
            .map(|c| {
                Value::Object(
                    Object::new()
                        .str("AppName", c.app)
                        .str("DomainName", c.domain)
                        .str("EndTime", common::format_unix_ms(c.end_at))
                        .str("SourceUrl", c.source_url)
                        .str("SourceUsing", c.source_using)
                        .str("StartTime", common::format_unix_ms(c.start_at))
                        .str("StreamName", c.stream),
                )
            })
            .collect();
        Ok(Reply::new().wrapped_list("LiveAppRecordList", "LiveAppRecord", items))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteLivePullStreamInfoConfig {
    domain: String,
    app: String,
    stream: String,
}

impl DeleteLivePullStreamInfoConfig {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domain: common::domain(params)?,
            app: common::name("AppName", params.required("AppName")?, false)?,
            stream: common::name("StreamName", params.required("StreamName")?, false)?,
        })
    }

    /// Deleting a pull that is not there succeeds; a running one stops within seconds.
    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        if state
            .catalog
            .delete_pull_config(&self.domain, &self.app, &self.stream)
            .await?
        {
            tracing::info!(domain = %self.domain, app = %self.app, stream = %self.stream,
                "scheduled pull deleted");
        }
        Ok(Reply::new())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes(), None, 4096).unwrap()
    }

    fn code(q: &str) -> String {
        SetLiveLazyPullStreamInfoConfig::parse(&params(q))
            .unwrap_err()
            .code()
            .to_owned()
    }

    const BASE: &str = "DomainName=Play.example&AppName=live&PullProtocol=rtmp";

    #[test]
    fn set_parameters() {
        let s = SetLiveLazyPullStreamInfoConfig::parse(&params(&format!(
            "{BASE}&PullDomainName=a.example%3B%20b.example%3A1936&PullAppName=origin&TranscodeLazy=yes"
        )))
        .unwrap();
        assert_eq!(s.config.domain, "play.example");
        assert_eq!(s.config.pull_domain, "a.example;b.example:1936");
        assert_eq!(s.config.pull_app, "origin");
        assert_eq!(s.config.transcode_lazy, "yes");
        let all = SetLiveLazyPullStreamInfoConfig::parse(&params(
            "DomainName=p.example&AppName=ali_all_app&PullDomainName=o.example&PullProtocol=HTTPFLV",
        ))
        .unwrap();
        assert_eq!(all.config.app, ALL_APPS);
        assert_eq!(all.config.pull_protocol, "httpflv");
    }

    #[test]
    fn set_refuses_what_it_cannot_pull() {
        assert_eq!(code(BASE), "MissingPullDomainName");
        for bad in ["a.example:0", "a.example:99999", "a..example", "x/y", ";"] {
            assert_eq!(
                code(&format!("{BASE}&PullDomainName={bad}")),
                "InvalidParameter",
                "{bad}"
            );
        }
        let nine = ["o.example"; 9].join("%3B");
        assert_eq!(
            code(&format!("{BASE}&PullDomainName={nine}")),
            "InvalidParameter"
        );
        assert_eq!(
            code("DomainName=p.example&AppName=live&PullDomainName=o.example&PullProtocol=hls"),
            "InvalidParameter"
        );
        assert_eq!(
            code("DomainName=p.example&AppName=*&PullDomainName=o.example&PullProtocol=rtmp"),
            "InvalidParameter"
        );
    }

    #[test]
    fn scheduled_pull_parameters() {
        let base = "DomainName=p.example&AppName=live&StreamName=s";
        let ok = AddLivePullStreamInfoConfig::parse(&params(&format!(
            "{base}&SourceUrl=rtmp%3A%2F%2Fa.example%2Flive%2Fs%3Bhttp%3A%2F%2Fb.example%3A8080%2Flive%2Fs.flv\
             &StartTime=2030-01-01T00:00:00Z&EndTime=2030-01-02T00:00:00Z"
        )))
        .unwrap();
        assert_eq!(
            ok.config.source_url,
            "rtmp://a.example/live/s;http://b.example:8080/live/s.flv"
        );
        assert_eq!(ok.config.end_at - ok.config.start_at, 86_400_000);
        let code = |q: &str| {
            AddLivePullStreamInfoConfig::parse(&params(&format!("{base}&{q}")))
                .unwrap_err()
                .code()
        };
        let window = "StartTime=2030-01-01T00:00:00Z&EndTime=2030-01-02T00:00:00Z";
        assert_eq!(
            code(&format!("SourceUrl=ftp%3A%2F%2Fa.example%2Fs&{window}")),
            "InvalidParameter"
        );
        assert_eq!(
            code(&format!("SourceUrl=rtmp%3A%2F%2Fa.example&{window}")),
            "InvalidParameter"
        );
        let url = "SourceUrl=rtmp%3A%2F%2Fa.example%2Flive%2Fs";
        assert_eq!(
            code(&format!(
                "{url}&StartTime=2030-01-01&EndTime=2030-01-02T00:00:00Z"
            )),
            "InvalidStartTime.Malformed"
        );
        assert_eq!(
            code(&format!(
                "{url}&StartTime=2030-01-02T00:00:00Z&EndTime=2030-01-01T00:00:00Z"
            )),
            "InvalidEndTime.Malformed"
        );
        assert_eq!(
            code(&format!(
                "{url}&StartTime=2030-01-01T00:00:00Z&EndTime=2030-01-09T00:00:01Z"
            )),
            "InvalidEndTime.Malformed"
        );
        assert!(check_future(&ok.config).is_ok());
        let past = AddLivePullStreamInfoConfig::parse(&params(&format!(
            "{base}&{url}&StartTime=2020-01-01T00:00:00Z&EndTime=2020-01-02T00:00:00Z"
        )))
        .unwrap();
        assert!(check_future(&past.config).is_err());
    }
}
