//! Response bodies: an ordered tree ([`Object`]) rendered as JSON (default) or, when an
//! old-style request asks `Format=XML`, as XML, plus Alibaba's error body. [`ApiResponse`] is
//! the single place where a result becomes an HTTP response.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::{SerializeMap, SerializeSeq};

use crate::error::ApiError;

/// Exact Content-Type of JSON answers (API.md).
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=utf-8";
/// Exact Content-Type of XML answers; the older SDK matches this string.
pub const XML_CONTENT_TYPE: &str = "text/xml;charset=utf-8";
const XML_PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// The body format a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Xml,
}

impl Format {
    /// From the `Format` parameter: `XML` (any case) means XML, anything else JSON.
    pub fn from_param(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("xml") => Self::Xml,
            _ => Self::Json,
        }
    }
}

/// One value of a response tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// JSON: an array. XML: one element per item, each named after the field.
    List(Vec<Value>),
    Object(Object),
}

/// Named fields in order. JSON lists of objects are wrapped as the SDK models expect by
/// nesting: `LiveAppRecordList: Object { LiveAppRecord: List[...] }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    fields: Vec<(&'static str, Value)>,
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn value(mut self, name: &'static str, value: Value) -> Self {
        self.fields.push((name, value));
        self
    }

    pub fn str(self, name: &'static str, value: impl Into<String>) -> Self {
        self.value(name, Value::Str(value.into()))
    }

    /// Omitted when `None` (absent fields are omitted, API.md).
    pub fn opt_str(self, name: &'static str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.str(name, v),
            None => self,
        }
    }

    pub fn int(self, name: &'static str, value: i64) -> Self {
        self.value(name, Value::Int(value))
    }

    pub fn opt_int(self, name: &'static str, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.int(name, v),
            None => self,
        }
    }

    pub fn object(self, name: &'static str, value: Object) -> Self {
        self.value(name, Value::Object(value))
    }

    /// `name: { item: [ … ] }`, the wrapper every SDK list model expects.
    pub fn wrapped_list(self, name: &'static str, item: &'static str, items: Vec<Value>) -> Self {
        self.object(name, Object::new().value(item, Value::List(items)))
    }

    pub fn fields(&self) -> &[(&'static str, Value)] {
        &self.fields
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Float(v) => s.serialize_f64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(o) => o.serialize(s),
        }
    }
}

impl serde::Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Text safe for XML 1.0: escaped, and characters XML cannot carry replaced by U+FFFD.
fn push_xml_text(out: &mut String, text: &str) {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    if text.chars().all(allowed) {
        out.push_str(&quick_xml::escape::escape(text));
    } else {
        let cleaned: String = text
            .chars()
            .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
            .collect();
        out.push_str(&quick_xml::escape::escape(cleaned.as_str()));
    }
}

fn push_xml_element(out: &mut String, name: &str, value: &Value) {
    if let Value::List(items) = value {
        for item in items {
            push_xml_element(out, name, item);
        }
        return;
    }
    let _ = write!(out, "<{name}>");
    match value {
        Value::Str(v) => push_xml_text(out, v),
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Bool(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Object(o) => push_xml_fields(out, o),
        Value::List(_) => {}
    }
    let _ = write!(out, "</{name}>");
}

fn push_xml_fields(out: &mut String, object: &Object) {
    for (k, v) in &object.fields {
        push_xml_element(out, k, v);
    }
}

/// `<?xml …?><{root}>fields</{root}>`.
pub fn to_xml(root: &str, object: &Object) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(XML_PROLOG);
    push_xml_element(&mut out, root, &Value::Object(object.clone()));
    out
}

/// `{ fields }`.
pub fn to_json(object: &Object) -> String {
    // Serializing a tree of strings and numbers into a String cannot fail.
    serde_json::to_string(object).unwrap_or_else(|_| "{}".to_owned())
}

/// The one place a result becomes an HTTP response: the action's fields after `RequestId`,
/// or Alibaba's error body.
#[derive(Debug)]
pub struct ApiResponse {
    pub format: Format,
    pub request_id: String,
    pub host_id: String,
    /// Names the XML root (`{Action}Response`); `None` before the action is known.
    pub action: Option<&'static str>,
    pub result: Result<Object, ApiError>,
}

impl ApiResponse {
    pub fn status(&self) -> StatusCode {
        match &self.result {
            Ok(_) => StatusCode::OK,
            Err(e) => e.status(),
        }
    }

    fn body(&self) -> Object {
        match &self.result {
            Ok(fields) => {
                let mut body = Object::new().str("RequestId", self.request_id.clone());
                body.fields.extend(fields.fields.iter().cloned());
                body
            }
            Err(e) => Object::new()
                .str("RequestId", self.request_id.clone())
                .str("HostId", self.host_id.clone())
                .str("Code", e.code())
                .str("Message", e.message())
                .str("Recommend", e.recommend()),
        }
    }
}

impl IntoResponse for ApiResponse {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.body();
        let (content_type, text) = match self.format {
            Format::Json => (JSON_CONTENT_TYPE, to_json(&body)),
            Format::Xml => {
                let root = match (&self.result, self.action) {
                    (Ok(_), Some(action)) => format!("{action}Response"),
                    (Ok(_), None) => "Response".to_owned(),
                    (Err(_), _) => "Error".to_owned(),
                };
                (XML_CONTENT_TYPE, to_xml(&root, &body))
            }
        };
        let mut response = (status, text).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Object {
        Object::new()
            .str("Order", "asc")
            .int("PageNum", 1)
            .wrapped_list(
                "LiveAppRecordList",
                "LiveAppRecord",
                vec![
                    Value::Object(
                        Object::new()
                            .str("AppName", "a<&>\"'")
                            .int("DelayTime", 180),
                    ),
                    Value::Object(Object::new().str("AppName", "b")),
                ],
            )
    }

    #[test]
    fn json_keeps_order_and_wraps_lists() {
        let json = to_json(&sample());
        assert_eq!(
            json,
            r#"{"Order":"asc","PageNum":1,"LiveAppRecordList":{"LiveAppRecord":[{"AppName":"a<&>\"'","DelayTime":180},{"AppName":"b"}]}}"#
        );
        let empty = to_json(&Object::new().wrapped_list("L", "I", vec![]));
        assert_eq!(empty, r#"{"L":{"I":[]}}"#);
    }

    #[test]
    fn xml_repeats_list_items_and_escapes() {
        let xml = to_xml("DescribeLiveRecordConfigResponse", &sample());
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeLiveRecordConfigResponse><Order>asc</Order><PageNum>1</PageNum>\
             <LiveAppRecordList><LiveAppRecord><AppName>a&lt;&amp;&gt;&quot;&apos;</AppName><DelayTime>180</DelayTime></LiveAppRecord>\
             <LiveAppRecord><AppName>b</AppName></LiveAppRecord></LiveAppRecordList></DescribeLiveRecordConfigResponse>"
        );
        let odd = to_xml("R", &Object::new().str("M", "a\u{1}b"));
        assert!(odd.contains("<M>a\u{FFFD}b</M>"));
    }

    #[test]
    fn format_parameter() {
        assert_eq!(Format::from_param(Some("XML")), Format::Xml);
        assert_eq!(Format::from_param(Some("xml")), Format::Xml);
        assert_eq!(Format::from_param(Some("JSON")), Format::Json);
        assert_eq!(Format::from_param(None), Format::Json);
    }

    #[tokio::test]
    async fn error_and_success_responses() {
        let r = ApiResponse {
            format: Format::Json,
            request_id: "RID".into(),
            host_id: "host".into(),
            action: Some("RealTimeRecordCommand"),
            result: Err(ApiError::TaskAlreadyStarted),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON_CONTENT_TYPE);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Code"], "TaskAlreadyStarted");
        assert_eq!(v["HostId"], "host");
        assert_eq!(v["RequestId"], "RID");
        assert_eq!(v["Message"], "Task has already started.");
        assert!(v["Recommend"].is_string());

        let r = ApiResponse {
            format: Format::Xml,
            request_id: "RID".into(),
            host_id: "host".into(),
            action: Some("RealTimeRecordCommand"),
            result: Ok(Object::new()),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], XML_CONTENT_TYPE);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><RealTimeRecordCommandResponse><RequestId>RID</RequestId></RealTimeRecordCommandResponse>"
        );

        let r = ApiResponse {
            format: Format::Xml,
            request_id: "RID".into(),
            host_id: "host".into(),
            action: None,
            result: Err(ApiError::UnknownAction),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains(
            "<Error><RequestId>RID</RequestId><HostId>host</HostId><Code>InvalidApi.NotFound</Code>"
        ));
    }
}
