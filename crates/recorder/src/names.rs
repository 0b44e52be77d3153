//! Object names from templates (`{AppName}`, `{EscapedStartTime}` …), made safe to use as
//! relative paths.

use std::time::{SystemTime, UNIX_EPOCH};

use liverec_hub::StreamKey;
use time::OffsetDateTime;
use time::macros::format_description;

/// Longest object name accepted (S3's limit).
pub const MAX_OBJECT_NAME_LEN: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("object name template {template:?} has an unknown variable {{{variable}}}")]
    UnknownVariable { template: String, variable: String },
    #[error("object name {name:?} is not a safe relative path")]
    Unsafe { name: String },
    #[error("object name is longer than {MAX_OBJECT_NAME_LEN} bytes")]
    TooLong,
}

/// Values a template may refer to.
#[derive(Clone, Debug)]
pub struct NameVars<'a> {
    pub key: &'a StreamKey,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Start of the segment (`{UnixTimestamp}`).
    pub unix: SystemTime,
    pub sequence: u64,
}

fn utc(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

fn plain_time(t: SystemTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]-[hour]:[minute]:[second]");
    utc(t).format(&fmt).unwrap_or_default()
}

fn escaped_time(t: SystemTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    utc(t).format(&fmt).unwrap_or_default()
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Renders `template` (without extension).
pub fn render(template: &str, vars: &NameVars<'_>) -> Result<String, NameError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let variable = &after[..close];
        match variable {
            "DomainName" => out.push_str(&vars.key.domain),
            "AppName" => out.push_str(&vars.key.app),
            "StreamName" => out.push_str(&vars.key.stream),
            "StartTime" => out.push_str(&plain_time(vars.start)),
            "EscapedStartTime" => out.push_str(&escaped_time(vars.start)),
            "EndTime" => out.push_str(&plain_time(vars.end)),
            "EscapedEndTime" => out.push_str(&escaped_time(vars.end)),
            "UnixTimestamp" => out.push_str(&unix_seconds(vars.unix).to_string()),
            "Sequence" => out.push_str(&vars.sequence.to_string()),
            _ => {
                return Err(NameError::UnknownVariable {
                    template: template.to_owned(),
                    variable: variable.to_owned(),
                });
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    sanitize(&out)
}

/// Checks that `name` is a relative path that stays inside its target: no leading `/`, no
/// `.`/`..` or empty components, no control characters, no backslashes.
pub fn sanitize(name: &str) -> Result<String, NameError> {
    if name.len() > MAX_OBJECT_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let unsafe_name = || NameError::Unsafe {
        name: name.to_owned(),
    };
    if name.is_empty() || name.starts_with('/') {
        return Err(unsafe_name());
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(unsafe_name());
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(unsafe_name());
    }
    Ok(name.to_owned())
}

/// `target` as seen from the directory of `from` (both object names).
pub fn relative_uri(from: &str, target: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').collect::<Vec<_>>();
    let from_dir = &from_dir[..from_dir.len().saturating_sub(1)];
    let target_parts: Vec<&str> = target.split('/').collect();
    let common = from_dir
        .iter()
        .zip(target_parts.iter())
        .take_while(|(a, b)| a == b)
        .count()
        .min(target_parts.len().saturating_sub(1));
    let mut uri = String::new();
    for _ in common..from_dir.len() {
        uri.push_str("../");
    }
    uri.push_str(&target_parts[common..].join("/"));
    uri
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key() -> StreamKey {
        StreamKey {
            domain: "live.example.com".into(),
            app: "app".into(),
            stream: "s1".into(),
        }
    }

    #[test]
    fn renders_default_templates() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let end = start + Duration::from_secs(3661);
        let k = key();
        let vars = NameVars {
            key: &k,
            start,
            end,
            unix: start,
            sequence: 7,
        };
        assert_eq!(
            render(crate::config::DEFAULT_OBJECT_PREFIX, &vars).unwrap(),
            "record/live.example.com/app/s1/2025-11-24-16-00-00_2025-11-24-17-01-01"
        );
        assert_eq!(
            render(crate::config::DEFAULT_SLICE_OBJECT_PREFIX, &vars).unwrap(),
            "record/live.example.com/app/s1/1764000000_7"
        );
        assert_eq!(render("{StartTime}", &vars).unwrap(), "2025-11-24-16:00:00");
    }

    #[test]
    fn refuses_unknown_variables_and_escapes() {
        let k = key();
        let vars = NameVars {
            key: &k,
            start: UNIX_EPOCH,
            end: UNIX_EPOCH,
            unix: UNIX_EPOCH,
            sequence: 0,
        };
        assert!(matches!(
            render("a/{Nope}", &vars),
            Err(NameError::UnknownVariable { .. })
        ));
        for bad in ["/abs", "a/../b", "a//b", "./a", "a\0b", "a\\b", ""] {
            assert!(render(bad, &vars).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_uris() {
        assert_eq!(relative_uri("r/a/s/x.m3u8", "r/a/s/1_0.ts"), "1_0.ts");
        assert_eq!(relative_uri("r/a/s/x.m3u8", "r/a/t/1_0.ts"), "../t/1_0.ts");
        assert_eq!(relative_uri("x.m3u8", "seg/1.ts"), "seg/1.ts");
        assert_eq!(relative_uri("p/x.m3u8", "1.ts"), "../1.ts");
    }
}
