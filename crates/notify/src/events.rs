//! What a callback says: the event names and the JSON bodies of API.md ("Record callbacks").

use std::collections::BTreeMap;

use serde::Serialize;

/// The events a callback announces, as DescribeLiveRecordNotifyRecords names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A recorded file is stored and indexed.
    FileCreated,
    RecordStarted,
    RecordPaused,
    RecordResumed,
    /// A recording lost data (a counted gap, a storage failure).
    RecordError,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FileCreated => "file_created",
            Self::RecordStarted => "record_started",
            Self::RecordPaused => "record_paused",
            Self::RecordResumed => "record_resumed",
            Self::RecordError => "record_error",
        }
    }

    /// Status events go out only with NeedStatusNotify.
    pub fn is_status(self) -> bool {
        self != Self::FileCreated
    }
}

/// The stream an event is about.
#[derive(Clone, Copy, Debug)]
pub struct StreamRef<'a> {
    pub domain: &'a str,
    pub app: &'a str,
    pub stream: &'a str,
}

/// A generated file.
#[derive(Clone, Copy, Debug)]
pub struct FileFacts<'a> {
    /// The object's path in its bucket.
    pub uri: &'a str,
    pub duration_secs: f64,
    /// Unix seconds.
    pub start_time: i64,
    pub stop_time: i64,
    /// The publish URL's `callback_` parameters.
    pub push_args: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct FileBody<'a> {
    domain: &'a str,
    app: &'a str,
    stream: &'a str,
    uri: &'a str,
    duration: f64,
    start_time: i64,
    stop_time: i64,
    push_args: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    domain: &'a str,
    app: &'a str,
    stream: &'a str,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

/// The body of a file callback.
pub fn file_body(stream: StreamRef<'_>, file: FileFacts<'_>) -> String {
    let body = FileBody {
        domain: stream.domain,
        app: stream.app,
        stream: stream.stream,
        uri: file.uri,
        // Milliseconds are what a recording measures; more digits would be noise.
        duration: (file.duration_secs * 1000.0).round() / 1000.0,
        start_time: file.start_time,
        stop_time: file.stop_time,
        push_args: file.push_args,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The body of a status callback; `record_error` says what was lost in `description`.
pub fn status_body(stream: StreamRef<'_>, kind: EventKind, description: Option<&str>) -> String {
    let body = StatusBody {
        domain: stream.domain,
        app: stream.app,
        stream: stream.stream,
        event: kind.as_str(),
        description,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: StreamRef<'static> = StreamRef {
        domain: "example.com",
        app: "live",
        stream: "s1",
    };

    #[test]
    fn file_body_has_api_md_fields() {
        let query: Vec<(String, String)> = [
            ("callback_user", "42"),
            ("vhost", "x"),
            ("callback_user", "43"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let args = liverec_recorder::push_args(&query);
        let body = file_body(
            STREAM,
            FileFacts {
                uri: "record/live/s1/2026-12-07-10-00-00_2026-12-07-10-01-00.mp4",
                duration_secs: 60.0004,
                start_time: 1_796_637_600,
                stop_time: 1_796_637_660,
                push_args: &args,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "domain": "example.com", "app": "live", "stream": "s1",
                "uri": "record/live/s1/2026-12-07-10-00-00_2026-12-07-10-01-00.mp4",
                "duration": 60.0, "start_time": 1_796_637_600, "stop_time": 1_796_637_660,
                "push_args": {"callback_user": "42"}
            })
        );
    }

    #[test]
    fn empty_push_args_are_an_empty_object() {
        let args = BTreeMap::new();
        let facts = FileFacts {
            uri: "a.flv",
            duration_secs: 1.5,
            start_time: 1,
            stop_time: 2,
            push_args: &args,
        };
        assert!(file_body(STREAM, facts).contains(r#""push_args":{}"#));
    }

    #[test]
    fn status_bodies() {
        let v: serde_json::Value =
            serde_json::from_str(&status_body(STREAM, EventKind::RecordStarted, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"domain": "example.com", "app": "live", "stream": "s1", "event": "record_started"})
        );
        let v: serde_json::Value = serde_json::from_str(&status_body(
            STREAM,
            EventKind::RecordError,
            Some("12 frames skipped"),
        ))
        .unwrap();
        assert_eq!(v["event"], "record_error");
        assert_eq!(v["description"], "12 frames skipped");
        assert!(!EventKind::FileCreated.is_status() && EventKind::RecordError.is_status());
    }
}
