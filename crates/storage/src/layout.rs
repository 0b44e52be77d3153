//! Every name and path inside a storage target, in one place (as MediaMTX's `recordstore`):
//! object names rendered from a record config's templates, their collision suffixes and
//! shortening, the spool directory and its file and sidecar names. Nothing else builds them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

/// Longest object name accepted (S3's limit).
pub const MAX_OBJECT_NAME_LEN: usize = 1024;
/// Longest path component (file systems' NAME_MAX); longer ones are shortened.
pub const MAX_COMPONENT_LEN: usize = 255;
/// How many `_1`, `_2` … suffixes are tried for a name that is taken.
pub const MAX_COLLISION_SUFFIX: u32 = 10_000;
/// Name of the in-progress directory inside a target's root.
pub const SPOOL_DIR: &str = ".spool";
/// Beside the spool: files recovery found there that no recording claims.
pub const ORPHANS_DIR: &str = ".orphans";
/// Directory of a data dir holding one root per bucket.
pub const BUCKETS_DIR: &str = "buckets";

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
    pub domain: &'a str,
    pub app: &'a str,
    pub stream: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Start of the segment (`{UnixTimestamp}`).
    pub unix: SystemTime,
    /// A segment's number within its playlist; a file's number within its recording.
    pub sequence: u64,
}

/// An object name before collision handling: a relative path without extension and the
/// extension (`mp4`, `cmaf.m3u8` …), kept apart so a suffix goes between them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectName {
    pub stem: String,
    pub extension: String,
}

impl ObjectName {
    /// `stem.extension`, checked as a safe relative path.
    pub fn new(stem: String, extension: &str) -> Result<Self, NameError> {
        let name = Self {
            stem,
            extension: extension.to_owned(),
        };
        sanitize(&name.candidate(0))?;
        Ok(name)
    }

    /// The name with collision suffix `n` (0: none). The last component is shortened to
    /// [`MAX_COMPONENT_LEN`] bytes by cutting its stem, so a suffix never makes it unwritable.
    pub fn candidate(&self, n: u32) -> String {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("_{n}")
        };
        let (dir, last) = match self.stem.rsplit_once('/') {
            Some((dir, last)) => (Some(dir), last),
            None => (None, self.stem.as_str()),
        };
        let tail = if self.extension.is_empty() {
            suffix
        } else {
            format!("{suffix}.{}", self.extension)
        };
        let last = cut_to(last, MAX_COMPONENT_LEN.saturating_sub(tail.len()));
        match dir {
            Some(dir) => format!("{dir}/{last}{tail}"),
            None => format!("{last}{tail}"),
        }
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.candidate(0))
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut_to(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn plain_time(t: SystemTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]-[hour]:[minute]:[second]");
    OffsetDateTime::from(t).format(&fmt).unwrap_or_default()
}

fn escaped_time(t: SystemTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    OffsetDateTime::from(t).format(&fmt).unwrap_or_default()
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The variables a template may use.
pub const VARIABLES: &[&str] = &[
    "DomainName",
    "AppName",
    "StreamName",
    "StartTime",
    "EscapedStartTime",
    "EndTime",
    "EscapedEndTime",
    "UnixTimestamp",
    "Sequence",
];

/// Renders `template` into a relative path without extension. Directory components longer
/// than [`MAX_COMPONENT_LEN`] are shortened (the last one is shortened with its extension by
/// [`ObjectName::candidate`]).
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
            "DomainName" => out.push_str(vars.domain),
            "AppName" => out.push_str(vars.app),
            "StreamName" => out.push_str(vars.stream),
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
    let shortened: Vec<&str> = out
        .split('/')
        .map(|part| cut_to(part, MAX_COMPONENT_LEN))
        .collect();
    sanitize(&shortened.join("/"))
}

/// Checks that `name` is a relative path that stays inside its target: no leading `/`, no
/// `.`/`..` or empty components, no control characters, no backslashes, at most
/// [`MAX_OBJECT_NAME_LEN`] bytes.
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

/// A recording file's object name: the rendered OssObjectPrefix and the format's extension.
pub fn file_object(
    template: &str,
    vars: &NameVars<'_>,
    extension: &str,
) -> Result<ObjectName, NameError> {
    ObjectName::new(render(template, vars)?, extension)
}

/// A segment's object name: the rendered SliceOssObjectPrefix and `ts` / `m4s`.
pub fn segment_object(
    template: &str,
    vars: &NameVars<'_>,
    extension: &str,
) -> Result<ObjectName, NameError> {
    ObjectName::new(render(template, vars)?, extension)
}

/// A CMAF init segment: `{SliceOssObjectPrefix of the first slice}_init.mp4`.
pub fn init_object(template: &str, vars: &NameVars<'_>) -> Result<ObjectName, NameError> {
    ObjectName::new(format!("{}_init", render(template, vars)?), "mp4")
}

/// `target` as seen from the directory of `from` (both object names): a playlist's URI of a
/// segment.
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

/// Resolves a playlist entry `uri` against the playlist's object name (inverse of
/// [`relative_uri`]); `None` if it leaves the bucket.
pub fn resolve_uri(from: &str, uri: &str) -> Option<String> {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in uri.split('/') {
        match part {
            ".." => {
                parts.pop()?;
            }
            "." | "" => {}
            p => parts.push(p),
        }
    }
    sanitize(&parts.join("/")).ok()
}

/// The root of a bucket's local directory (a local target's objects; every target's spool).
pub fn bucket_root(data_dir: &Path, bucket: &str) -> PathBuf {
    data_dir.join(BUCKETS_DIR).join(bucket)
}

static SPOOL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A target's spool: recordings in progress (and, for remote targets, files waiting to be
/// uploaded), each with a JSON sidecar while it is being written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool of the target rooted at `root`.
    pub fn in_root(root: &Path) -> Self {
        Self {
            dir: root.join(SPOOL_DIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where recovery moves spool files no recording claims (beside the spool; object names
    /// never start with `.`, so no stored object can be there).
    pub fn orphans_dir(&self) -> PathBuf {
        self.dir.with_file_name(ORPHANS_DIR)
    }

    /// A fresh, unique spool path with the given extension.
    pub fn new_path(&self, extension: &str) -> PathBuf {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let n = SPOOL_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{now:x}-{}-{n}.{extension}", std::process::id()))
    }

    /// Whether `path` is a spool file's recovery sidecar.
    pub fn is_sidecar(path: &Path) -> bool {
        path.extension().is_some_and(|e| e == "json")
    }

    /// The spool file a sidecar belongs to.
    pub fn file_of_sidecar(sidecar: &Path) -> PathBuf {
        sidecar.with_extension("")
    }

    /// Whether `path` is a segmented recording's journal ([`journal_path`]).
    pub fn is_journal(path: &Path) -> bool {
        path.extension().is_some_and(|e| e == JOURNAL_EXTENSION)
    }

    /// The spool file a journal belongs to.
    pub fn file_of_journal(journal: &Path) -> PathBuf {
        journal.with_extension("")
    }

    /// Whether `path` is a local target's note of a stored file whose completion is not
    /// delivered yet ([`stored_note_path`]).
    pub fn is_stored_note(path: &Path) -> bool {
        path.extension().is_some_and(|e| e == STORED_NOTE_EXTENSION)
    }
}

const STORED_NOTE_EXTENSION: &str = "stored";
const JOURNAL_EXTENSION: &str = "journal";

/// The recovery sidecar of a spool file: `<file>.json`.
pub fn sidecar_path(spool_file: &Path) -> PathBuf {
    let mut name = spool_file.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// The append-only journal beside a segmented recording's sidecar: `<file>.journal`, one line
/// per segment event, so the sidecar need not be rewritten as the recording grows.
pub fn journal_path(spool_file: &Path) -> PathBuf {
    let mut name = spool_file.as_os_str().to_owned();
    name.push(".");
    name.push(JOURNAL_EXTENSION);
    PathBuf::from(name)
}

/// Where a local target notes the object name and completion of a spool file it has put in
/// place, until the completion is delivered: `<file>.stored`. A crash in between leaves the
/// note, and the next start delivers it.
pub fn stored_note_path(spool_file: &Path) -> PathBuf {
    let mut name = spool_file.as_os_str().to_owned();
    name.push(".");
    name.push(STORED_NOTE_EXTENSION);
    PathBuf::from(name)
}

/// Longest OssObjectPrefix / SliceOssObjectPrefix, bytes.
pub const MAX_PREFIX_BYTES: usize = 255;

/// Variables of OssObjectPrefix (Alibaba's, plus liverec's `{DomainName}`).
const OBJECT_VARS: &[&str] = &[
    "AppName",
    "StreamName",
    "Sequence",
    "StartTime",
    "EndTime",
    "EscapedStartTime",
    "EscapedEndTime",
    "DomainName",
];
/// Variables of SliceOssObjectPrefix.
const SLICE_VARS: &[&str] = &[
    "AppName",
    "StreamName",
    "UnixTimestamp",
    "Sequence",
    "DomainName",
];

/// The `{…}` variables of a template, or `None` if its braces do not pair up.
fn template_vars(template: &str) -> Option<Vec<&str>> {
    let mut vars = Vec::new();
    let mut rest = template;
    loop {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (None, None) => return Some(vars),
            (Some(o), Some(c)) if o < c => {
                let var = &rest[o + 1..c];
                if var.contains('{') {
                    return None;
                }
                vars.push(var);
                rest = &rest[c + 1..];
            }
            _ => return None,
        }
    }
}

/// A prefix is short, a safe relative path, uses only `allowed` variables and has at least
/// one of each group in `required`.
fn valid_template(prefix: &str, allowed: &[&str], required: &[&[&str]]) -> bool {
    if prefix.len() > MAX_PREFIX_BYTES {
        return false;
    }
    if sanitize(prefix).is_err() {
        return false;
    }
    let Some(vars) = template_vars(prefix) else {
        return false;
    };
    vars.iter().all(|v| allowed.contains(v))
        && required
            .iter()
            .all(|group| vars.iter().any(|v| group.contains(v)))
}

/// An OssObjectPrefix liverec can name files with: a safe relative path of at most
/// [`MAX_PREFIX_BYTES`], using only its variables, with a start and an end time. The API and
/// the config file check templates with this.
pub fn valid_object_prefix(prefix: &str) -> bool {
    let required: &[&[&str]] = &[
        &["StartTime", "EscapedStartTime"],
        &["EndTime", "EscapedEndTime"],
    ];
    valid_template(prefix, OBJECT_VARS, required)
}

/// A SliceOssObjectPrefix liverec can name segments with (needs `{UnixTimestamp}` and
/// `{Sequence}`).
pub fn valid_slice_prefix(prefix: &str) -> bool {
    valid_template(prefix, SLICE_VARS, &[&["UnixTimestamp"], &["Sequence"]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn vars(sequence: u64) -> NameVars<'static> {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        NameVars {
            domain: "live.example.com",
            app: "app",
            stream: "s1",
            start,
            end: start + Duration::from_secs(3661),
            unix: start,
            sequence,
        }
    }

    #[test]
    fn renders_default_templates() {
        let v = vars(7);
        assert_eq!(
            render(
                "record/{DomainName}/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}",
                &v
            )
            .unwrap(),
            "record/live.example.com/app/s1/2025-11-24-16-00-00_2025-11-24-17-01-01"
        );
        assert_eq!(
            render(
                "record/{DomainName}/{AppName}/{StreamName}/{UnixTimestamp}_{Sequence}",
                &v
            )
            .unwrap(),
            "record/live.example.com/app/s1/1764000000_7"
        );
        assert_eq!(render("{StartTime}", &v).unwrap(), "2025-11-24-16:00:00");
    }

    #[test]
    fn refuses_unknown_variables_and_escapes() {
        let v = vars(0);
        assert!(matches!(
            render("a/{Nope}", &v),
            Err(NameError::UnknownVariable { .. })
        ));
        for bad in ["/abs", "a/../b", "a//b", "./a", "a\0b", "a\\b", ""] {
            assert!(render(bad, &v).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn suffixes_go_before_compound_extensions() {
        let name = ObjectName::new("r/a/x".into(), "cmaf.m3u8").unwrap();
        assert_eq!(name.candidate(0), "r/a/x.cmaf.m3u8");
        assert_eq!(name.candidate(1), "r/a/x_1.cmaf.m3u8");
        let bare = ObjectName::new("r/a/x".into(), "").unwrap();
        assert_eq!(bare.candidate(2), "r/a/x_2");
    }

    #[test]
    fn long_components_are_shortened_not_refused() {
        let long = "é".repeat(200); // 400 bytes
        let v = NameVars {
            stream: &long,
            ..vars(0)
        };
        let name = file_object("rec/{StreamName}/{StreamName}", &v, "cmaf.m3u8").unwrap();
        for n in [0, 1, 9999, MAX_COLLISION_SUFFIX] {
            let candidate = name.candidate(n);
            for part in candidate.split('/') {
                assert!(part.len() <= MAX_COMPONENT_LEN, "{} bytes", part.len());
            }
            assert!(candidate.ends_with(".cmaf.m3u8"));
            if n > 0 {
                assert!(candidate.ends_with(&format!("_{n}.cmaf.m3u8")));
            }
        }
        // The directory component is cut to 255 bytes on a character boundary.
        let dir = name.candidate(0);
        let dir = dir.split('/').nth(1).unwrap();
        assert_eq!(dir.len(), 254);
    }

    #[test]
    fn relative_uris_round_trip() {
        for (from, target, uri) in [
            ("r/a/s/x.m3u8", "r/a/s/1_0.ts", "1_0.ts"),
            ("r/a/s/x.m3u8", "r/a/t/1_0.ts", "../t/1_0.ts"),
            ("x.m3u8", "seg/1.ts", "seg/1.ts"),
            ("p/x.m3u8", "1.ts", "../1.ts"),
        ] {
            assert_eq!(relative_uri(from, target), uri);
            assert_eq!(resolve_uri(from, uri).as_deref(), Some(target));
        }
        assert_eq!(resolve_uri("x.m3u8", "../../etc/passwd"), None);
    }

    #[test]
    fn spool_paths_are_unique_and_sidecars_recognised() {
        let spool = Spool::in_root(Path::new("/data/buckets/b"));
        let a = spool.new_path("mp4");
        let b = spool.new_path("mp4");
        assert_ne!(a, b);
        assert!(a.starts_with("/data/buckets/b/.spool"));
        let sidecar = sidecar_path(&a);
        assert!(Spool::is_sidecar(&sidecar));
        assert_eq!(Spool::file_of_sidecar(&sidecar), a);
        let journal = journal_path(&a);
        assert!(Spool::is_journal(&journal) && !Spool::is_journal(&a));
        assert!(!Spool::is_sidecar(&journal));
        assert_eq!(Spool::file_of_journal(&journal), a);
    }

    proptest! {
        #[test]
        fn every_candidate_is_safe_and_fits(stem in "[a-zé_]{1,600}", ext in "(mp4|flv|m3u8|cmaf\\.m3u8)", n in 0u32..=MAX_COLLISION_SUFFIX) {
            let name = ObjectName::new(format!("d/{stem}"), &ext).unwrap();
            let c = name.candidate(n);
            prop_assert!(sanitize(&c).is_ok());
            prop_assert!(c.split('/').all(|p| p.len() <= MAX_COMPONENT_LEN));
            let expected_tail = format!(".{ext}");
            prop_assert!(c.ends_with(&expected_tail));
        }
    }

    #[test]
    fn template_variables() {
        assert_eq!(template_vars("a/{X}_{Y}").unwrap(), ["X", "Y"]);
        assert_eq!(template_vars("plain").unwrap(), Vec::<&str>::new());
        assert!(template_vars("a{").is_none());
        assert!(template_vars("a}").is_none());
        assert!(template_vars("}{").is_none());
        assert!(template_vars("{{X}}").is_none());
    }

    #[test]
    fn object_and_slice_templates() {
        assert!(valid_object_prefix(
            "record/{DomainName}/{AppName}/{StreamName}/{EscapedStartTime}_{EscapedEndTime}"
        ));
        assert!(valid_object_prefix(
            "r/{AppName}/{StreamName}/{StartTime}_{EndTime}"
        ));
        assert!(
            !valid_object_prefix("r/{StreamName}/{StartTime}"),
            "no end time"
        );
        assert!(
            !valid_object_prefix("r/{Nope}/{StartTime}_{EndTime}"),
            "unknown variable"
        );
        assert!(!valid_object_prefix("../{StartTime}_{EndTime}"), "escapes");
        assert!(!valid_object_prefix(&format!(
            "{}{{StartTime}}{{EndTime}}",
            "a".repeat(250)
        )));
        assert!(valid_slice_prefix(
            "r/{StreamName}/{UnixTimestamp}_{Sequence}"
        ));
        assert!(
            !valid_slice_prefix("r/{StreamName}/{UnixTimestamp}"),
            "no sequence"
        );
        assert!(!valid_slice_prefix(
            "r/{StartTime}_{UnixTimestamp}_{Sequence}"
        ));
    }
}
