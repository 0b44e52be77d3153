//! Pulled streams (API.md "Pulled streams"): triggered ("lazy") pull configs —
//! SetLiveLazyPullStreamInfoConfig, DescribeLiveLazyPullStreamConfig,
//! DeleteLiveLazyPullStreamInfoConfig. A play of a stream nobody publishes, on an app with a
//! config, pulls it from the config's origins.

use liverec_catalog::{ALL_APPS, LazyPullConfig};
use liverec_hub::validate_domain;

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
}
