//! Parameters and checks shared by several actions: stream names, the strict-domain check,
//! paging, and Alibaba's `yyyy-MM-ddTHH:mm:ssZ` time format.

use liverec_hub::{validate_domain, validate_name};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;

/// The wildcard of AppName / StreamName in record configs.
pub const WILDCARD: &str = "*";
/// Highest page number accepted (keeps offsets far from overflow).
pub const MAX_PAGE_NUM: i64 = 1_000_000;

/// Alibaba's UTC time format.
const UTC_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// `DomainName`, required, a host name, lower-cased as ingest does.
pub fn domain(params: &Params) -> Result<String, ApiError> {
    let d = params.required("DomainName")?;
    validate_domain(d).map_err(|_| ApiError::InvalidParameter("DomainName".to_owned()))?;
    Ok(d.to_ascii_lowercase())
}

/// An app or stream name: `[A-Za-z0-9_.-]{1,255}`, or `*` where `wildcard` allows it.
pub fn name(what: &'static str, value: &str, wildcard: bool) -> Result<String, ApiError> {
    if wildcard && value == WILDCARD {
        return Ok(value.to_owned());
    }
    validate_name(what, value).map_err(|_| ApiError::InvalidParameter(what.to_owned()))?;
    Ok(value.to_owned())
}

/// In strict mode only the declared domains exist (DESIGN.md "Domains"): the config's
/// `domains` and `default_domain`, whatever the catalog holds.
pub async fn check_domain(state: &ApiState, domain: &str) -> Result<(), ApiError> {
    let settings = &state.settings;
    if settings.strict_domains && !settings.declared_domains.iter().any(|d| d == domain) {
        return Err(ApiError::DomainNotFound);
    }
    Ok(())
}

/// An optional integer parameter within `range`, else `InvalidParameter`.
pub fn int_in(
    params: &Params,
    name: &'static str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ApiError> {
    match params.int(name)? {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(v),
        Some(_) => Err(ApiError::InvalidParameter(name.to_owned())),
    }
}

/// An optional parameter that must be one of `allowed` (exact), else `InvalidParameter`.
pub fn one_of(
    params: &Params,
    name: &'static str,
    allowed: &[&'static str],
    default: &'static str,
) -> Result<&'static str, ApiError> {
    match params.optional(name) {
        None => Ok(default),
        Some(v) => allowed
            .iter()
            .copied()
            .find(|a| *a == v)
            .ok_or_else(|| ApiError::InvalidParameter(name.to_owned())),
    }
}

/// An optional boolean parameter: `true`/`false` in any case (the older SDK sends Python's
/// `True`/`False`); anything else is `InvalidParameter`.
pub fn bool_param(params: &Params, name: &'static str) -> Result<Option<bool>, ApiError> {
    match params.optional(name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::InvalidParameter(name.to_owned())),
    }
}

/// A paging value already range-checked by [`int_in`], as `u32`.
pub fn to_u32(value: i64, name: &'static str) -> Result<u32, ApiError> {
    u32::try_from(value).map_err(|_| ApiError::InvalidParameter(name.to_owned()))
}

/// Pages needed for `total` items, `size` per page.
pub fn total_pages(total: u64, size: u32) -> u64 {
    if size == 0 {
        0
    } else {
        total.div_ceil(u64::from(size))
    }
}

/// `StartTime` and `EndTime` (required, `yyyy-MM-ddTHH:mm:ssZ`, end after start, at most
/// `max_range` apart) as Unix milliseconds.
pub fn time_range(params: &Params, max_range: std::time::Duration) -> Result<(i64, i64), ApiError> {
    let start =
        parse_utc(params.required("StartTime")?).ok_or(ApiError::MalformedValue("StartTime"))?;
    let end = parse_utc(params.required("EndTime")?).ok_or(ApiError::MalformedValue("EndTime"))?;
    if end <= start || (end - start) > max_range {
        return Err(ApiError::EndTimeMismatch);
    }
    let ms = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok();
    match (ms(start), ms(end)) {
        (Some(s), Some(e)) => Ok((s, e)),
        _ => Err(ApiError::EndTimeMismatch),
    }
}

/// Parses `yyyy-MM-ddTHH:mm:ssZ` exactly.
pub fn parse_utc(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, UTC_FORMAT)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Formats as `yyyy-MM-ddTHH:mm:ssZ`.
pub fn format_utc(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(UTC_FORMAT)
        .unwrap_or_default()
}

/// Formats Unix milliseconds as `yyyy-MM-ddTHH:mm:ssZ`.
pub fn format_unix_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_utc(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format_round_trips_and_is_strict() {
        let t = parse_utc("2026-11-25T18:37:24Z").unwrap();
        assert_eq!(format_utc(t), "2026-11-25T18:37:24Z");
        for bad in [
            "2026-11-25T18:37:24",
            "2026-11-25 18:37:24Z",
            "2026-11-25T18:37:24.5Z",
            "2026-11-25T18:37:24+08:00",
            "2026-02-30T00:00:00Z",
            "",
        ] {
            assert!(parse_utc(bad).is_none(), "{bad}");
        }
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_ms(1_764_095_844_999), "2025-11-25T18:37:24Z");
        assert_eq!(format_unix_ms(i64::MAX), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn names_and_domains() {
        assert_eq!(name("AppName", "*", true).unwrap(), "*");
        assert!(name("StreamName", "*", false).is_err());
        assert!(name("StreamName", "a/b", true).is_err());
        assert!(name("StreamName", "..", true).is_err());
        let p = Params::parse(b"DomainName=Live.Example.COM", None, 1024).unwrap();
        assert_eq!(domain(&p).unwrap(), "live.example.com");
        let p = Params::parse(b"DomainName=a..b", None, 1024).unwrap();
        assert_eq!(
            domain(&p),
            Err(ApiError::InvalidParameter("DomainName".into()))
        );
        let p = Params::parse(b"", None, 1024).unwrap();
        assert_eq!(domain(&p), Err(ApiError::Missing("DomainName")));
    }

    #[test]
    fn paging_helpers() {
        assert_eq!(total_pages(0, 10), 0);
        assert_eq!(total_pages(10, 10), 1);
        assert_eq!(total_pages(11, 10), 2);
        let p = Params::parse(b"PageSize=31&Order=up", None, 1024).unwrap();
        assert!(int_in(&p, "PageSize", 5..=30, 10).is_err());
        assert_eq!(int_in(&p, "PageNum", 1..=10, 1).unwrap(), 1);
        assert!(one_of(&p, "Order", &["asc", "desc"], "asc").is_err());
        assert_eq!(
            one_of(&p, "Missing", &["asc", "desc"], "asc").unwrap(),
            "asc"
        );
    }

    #[test]
    fn booleans() {
        let p = Params::parse(b"A=true&B=False&C=TRUE&D=1&E=", None, 1024).unwrap();
        assert_eq!(bool_param(&p, "A"), Ok(Some(true)));
        assert_eq!(bool_param(&p, "B"), Ok(Some(false)));
        assert_eq!(bool_param(&p, "C"), Ok(Some(true)));
        assert_eq!(
            bool_param(&p, "D"),
            Err(ApiError::InvalidParameter("D".into()))
        );
        assert_eq!(bool_param(&p, "E"), Ok(None));
        assert_eq!(bool_param(&p, "F"), Ok(None));
    }
}
