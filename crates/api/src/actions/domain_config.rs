//! Domain functions: `BatchSetLiveDomainConfigs`, `DescribeLiveDomainConfigs`,
//! `BatchDeleteLiveDomainConfigs`. liverec implements one function, `aliauth` (signed publish
//! URLs, docs/API.md "Ingest URL signing"); ingest reads it at every publish, so a change needs
//! no reload.

use std::ops::RangeInclusive;

use liverec_catalog::DomainConfigRow;
use serde::{Deserialize, Serialize};

use super::Reply;
use super::common;
use crate::ApiState;
use crate::error::ApiError;
use crate::ingest_auth::AuthKeys;
use crate::params::Params;
use crate::response::{Object, Value};

/// The one function liverec implements.
pub const ALIAUTH: &str = "aliauth";
/// Auth keys: 6–32 ASCII letters and digits.
pub const AUTH_KEY_LEN: RangeInclusive<usize> = 6..=32;
/// `ali_auth_delta` (seconds a signed URL stays valid), default and bounds.
pub const DEFAULT_AUTH_DELTA_SECS: u64 = 1800;
pub const AUTH_DELTA_RANGE: RangeInclusive<u64> = 1..=31_536_000;
/// Domains in one DomainNames list.
pub const MAX_DOMAINS: usize = 50;
/// Longest Functions JSON accepted.
pub const MAX_FUNCTIONS_BYTES: usize = 8192;

/// One `{"argName", "argValue"}`, as the API takes and gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionArg {
    #[serde(rename = "argName")]
    pub name: String,
    #[serde(rename = "argValue")]
    pub value: String,
}

#[derive(Debug, Deserialize)]
struct Function {
    #[serde(rename = "functionName")]
    name: String,
    #[serde(rename = "functionArgs", default)]
    args: Vec<FunctionArg>,
}

/// What a domain's `aliauth` arguments mean: `None` for `auth_type=no_auth` (signing off).
pub fn auth_keys(args: &[FunctionArg]) -> Result<Option<AuthKeys>, ApiError> {
    let invalid = || ApiError::InvalidParameter("Functions".to_owned());
    let get = |name: &str| {
        args.iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    };
    if let Some(unknown) = args.iter().find(|a| {
        !matches!(
            a.name.as_str(),
            "auth_type" | "auth_key1" | "auth_key2" | "ali_auth_delta"
        )
    }) {
        tracing::debug!(arg = %unknown.name.chars().take(64).collect::<String>(), "unknown aliauth argument");
        return Err(invalid());
    }
    match get("auth_type") {
        Some("no_auth") => return Ok(None),
        Some("type_a") => {}
        _ => return Err(invalid()),
    }
    let key = |value: &str| {
        AUTH_KEY_LEN.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let primary = get("auth_key1").filter(|k| key(k)).ok_or_else(invalid)?;
    let secondary = match get("auth_key2") {
        None | Some("") => None,
        Some(k) if key(k) => Some(k.to_owned()),
        Some(_) => return Err(invalid()),
    };
    let delta_secs = match get("ali_auth_delta") {
        None => DEFAULT_AUTH_DELTA_SECS,
        Some(v) => v
            .parse()
            .ok()
            .filter(|d| AUTH_DELTA_RANGE.contains(d))
            .ok_or_else(invalid)?,
    };
    Ok(Some(AuthKeys {
        primary: primary.to_owned(),
        secondary,
        delta_secs,
    }))
}

/// The stored arguments of a row (written by [`BatchSetLiveDomainConfigs`]).
pub fn stored_args(row: &DomainConfigRow) -> Vec<FunctionArg> {
    serde_json::from_str(&row.args).unwrap_or_default()
}

/// `DomainNames`: comma-separated host names, lower-cased, at most [`MAX_DOMAINS`].
fn domain_names(params: &Params) -> Result<Vec<String>, ApiError> {
    let list = params.required("DomainNames")?;
    let mut domains = Vec::new();
    for d in list.split(',').map(str::trim) {
        liverec_hub::validate_domain(d)
            .map_err(|_| ApiError::InvalidParameter("DomainNames".to_owned()))?;
        let d = d.to_ascii_lowercase();
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    if domains.len() > MAX_DOMAINS {
        return Err(ApiError::InvalidParameter("DomainNames".to_owned()));
    }
    Ok(domains)
}

/// `FunctionNames`: comma-separated; only `aliauth` exists.
fn function_names(params: &Params, required: bool) -> Result<Vec<String>, ApiError> {
    let list = if required {
        Some(params.required("FunctionNames")?)
    } else {
        params.optional("FunctionNames")
    };
    let Some(list) = list else {
        return Ok(vec![ALIAUTH.to_owned()]);
    };
    let mut names = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name != ALIAUTH {
            return Err(ApiError::InvalidParameter("FunctionNames".to_owned()));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSetLiveDomainConfigs {
    domains: Vec<String>,
    /// The `aliauth` arguments, checked.
    args: Vec<FunctionArg>,
}

impl BatchSetLiveDomainConfigs {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domains = domain_names(params)?;
        let json = params.required("Functions")?;
        let invalid = || ApiError::InvalidParameter("Functions".to_owned());
        if json.len() > MAX_FUNCTIONS_BYTES {
            return Err(invalid());
        }
        let functions: Vec<Function> = serde_json::from_str(json).map_err(|_| invalid())?;
        let [function] = functions.as_slice() else {
            return Err(invalid());
        };
        if function.name != ALIAUTH {
            return Err(invalid());
        }
        auth_keys(&function.args)?;
        Ok(Self {
            domains,
            args: function.args.clone(),
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        for domain in &self.domains {
            common::check_domain(state, domain).await?;
        }
        let args = serde_json::to_string(&self.args)
            .map_err(|_| ApiError::InvalidParameter("Functions".to_owned()))?;
        state
            .catalog
            .set_domain_configs(&self.domains, ALIAUTH, &args)
            .await?;
        tracing::info!(domains = ?self.domains, function = ALIAUTH, "domain function set");
        Ok(Reply::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeLiveDomainConfigs {
    domain: String,
    functions: Vec<String>,
}

impl DescribeLiveDomainConfigs {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domain: common::domain(params)?,
            functions: function_names(params, false)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.domain).await?;
        let rows = state.catalog.domain_configs(&self.domain).await?;
        let configs: Vec<Value> = rows
            .iter()
            .filter(|r| self.functions.contains(&r.function_name))
            .map(|row| {
                let args: Vec<Value> = stored_args(row)
                    .into_iter()
                    .map(|a| {
                        Value::Object(
                            Object::new()
                                .str("ArgName", a.name)
                                .str("ArgValue", a.value),
                        )
                    })
                    .collect();
                Value::Object(
                    Object::new()
                        .str("ConfigId", row.config_id.to_string())
                        .str("FunctionName", row.function_name.clone())
                        .str("Status", "success")
                        .wrapped_list("FunctionArgs", "FunctionArg", args),
                )
            })
            .collect();
        Ok(Reply::new().wrapped_list("DomainConfigs", "DomainConfig", configs))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDeleteLiveDomainConfigs {
    domains: Vec<String>,
    functions: Vec<String>,
}

impl BatchDeleteLiveDomainConfigs {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        Ok(Self {
            domains: domain_names(params)?,
            functions: function_names(params, true)?,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        for domain in &self.domains {
            common::check_domain(state, domain).await?;
        }
        let deleted = state
            .catalog
            .delete_domain_configs(&self.domains, &self.functions)
            .await?;
        tracing::info!(domains = ?self.domains, functions = ?self.functions, deleted, "domain functions deleted");
        Ok(Reply::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[(&str, &str)]) -> Vec<FunctionArg> {
        list.iter()
            .map(|(n, v)| FunctionArg {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect()
    }

    #[test]
    fn aliauth_arguments_are_checked() {
        let keys = auth_keys(&args(&[
            ("auth_type", "type_a"),
            ("auth_key1", "primaryKey1"),
            ("auth_key2", "second2"),
            ("ali_auth_delta", "600"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(keys.primary, "primaryKey1");
        assert_eq!(keys.secondary.as_deref(), Some("second2"));
        assert_eq!(keys.delta_secs, 600);
        let one = auth_keys(&args(&[("auth_type", "type_a"), ("auth_key1", "abcdef")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (one.secondary, one.delta_secs),
            (None, DEFAULT_AUTH_DELTA_SECS)
        );
        assert_eq!(auth_keys(&args(&[("auth_type", "no_auth")])).unwrap(), None);
        for bad in [
            vec![("auth_type", "type_b"), ("auth_key1", "abcdef")],
            vec![("auth_key1", "abcdef")],
            vec![("auth_type", "type_a")],
            vec![("auth_type", "type_a"), ("auth_key1", "short")],
            vec![("auth_type", "type_a"), ("auth_key1", "has-dash1")],
            vec![("auth_type", "type_a"), ("auth_key1", &"a".repeat(33))],
            vec![
                ("auth_type", "type_a"),
                ("auth_key1", "abcdef"),
                ("ali_auth_delta", "0"),
            ],
            vec![
                ("auth_type", "type_a"),
                ("auth_key1", "abcdef"),
                ("ali_auth_delta", "x"),
            ],
            vec![
                ("auth_type", "type_a"),
                ("auth_key1", "abcdef"),
                ("auth_key3", "abcdef"),
            ],
        ] {
            assert!(auth_keys(&args(&bad)).is_err(), "{bad:?}");
        }
    }
}
