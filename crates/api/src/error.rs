//! Every error the API answers, with Alibaba's code, message and HTTP status (API.md's table,
//! ERRORS.md's messages verbatim, typos included: SDK callers match on them).

use axum::http::StatusCode;

/// An API failure. Each variant maps to one Alibaba error code; rendering (JSON or XML, with
/// RequestId and HostId) happens in [`crate::response`], the single place errors become bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A required parameter is absent or empty.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// A parameter with a documented `Invalid{Name}.Malformed` code has a bad value.
    #[error("malformed parameter {0}")]
    Malformed(&'static str),
    /// `Invalid{Name}.Malformed` with the message "Specified {Name} is malformed." (the
    /// wording of the index actions, ERRORS.md).
    #[error("malformed parameter {0}")]
    MalformedValue(&'static str),
    /// `Invalid{Name}.Unsafe`: a callback URL naming a private or loopback host while
    /// `[notify] allow_private_hosts` is off.
    #[error("unsafe parameter {0}")]
    Unsafe(&'static str),
    /// A parameter without a documented code has a bad value.
    #[error("invalid parameter {0}")]
    InvalidParameter(String),
    /// Query plus body exceed the configured limit.
    #[error("request parameters exceed {limit} bytes")]
    TooLarge { limit: usize },
    /// Too many parameters, or a list index beyond the limit.
    #[error("too many parameters (limit {limit})")]
    TooManyParameters { limit: usize },
    /// A parameter name or value is not UTF-8 after percent-decoding.
    #[error("parameter {name:?} is not valid UTF-8")]
    NotUtf8 {
        /// The parameter's name when the name itself decoded.
        name: Option<String>,
    },
    /// The same parameter appears twice (in the query, the body, or both).
    #[error("duplicate parameter {0}")]
    Duplicate(String),
    #[error("unknown action")]
    UnknownAction,
    #[error("unsupported version")]
    NoSuchVersion,
    #[error("unknown or disabled access key")]
    AccessKeyNotFound,
    /// The message carries the server's StringToSign so the older SDK can tell a wrong secret.
    #[error("signature mismatch")]
    SignatureMismatch { string_to_sign: String },
    #[error("incomplete signature: {0}")]
    IncompleteSignature(&'static str),
    #[error("signature nonce reused")]
    NonceUsed,
    #[error("malformed timestamp")]
    TimestampFormat,
    #[error("timestamp outside the accepted window")]
    TimestampExpired,
    #[error("throttled")]
    Throttled,
    /// Too many requests from one IP, before authentication (HTTP 429).
    #[error("too many requests from this address")]
    ThrottledIp,
    /// The request body did not arrive within the body timeout.
    #[error("request body not received in time")]
    BodyTimeout,
    #[error("domain not found")]
    DomainNotFound,
    #[error("stream not publishing")]
    StreamNotFound,
    #[error("no record config")]
    ConfigNotFound,
    #[error("recording already started")]
    TaskAlreadyStarted,
    #[error("config already exists")]
    ConfigAlreadyExists,
    #[error("unknown bucket")]
    OssBucketNotFound,
    /// EndTime before StartTime, or the range too long.
    #[error("end time does not match start time")]
    EndTimeMismatch,
    /// DescribeLiveStreamRecordIndexFile: no such record of that stream.
    #[error("record id not found")]
    RecordIdNotFound,
    /// CreateLiveStreamRecordIndexFiles: the stream never ingested (400, ERRORS.md's message).
    #[error("stream never ingested")]
    StreamNeverIngested,
    /// CreateLiveStreamRecordIndexFiles: nothing recorded in the range.
    #[error("no record content")]
    NoRecordContent,
    /// CreateLiveStreamRecordIndexFiles: the range's segments are in another bucket.
    #[error("bucket changed within the range")]
    ConfigChanged,
    /// ForbidLiveStream: the block list is full (Alibaba documents the limit, not a code).
    #[error("at most {limit} streams can be forbidden")]
    ForbiddenStreamsFull { limit: u64 },
    /// A server fault; the context is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status (API.md "Transport").
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownAction
            | Self::AccessKeyNotFound
            | Self::DomainNotFound
            | Self::StreamNotFound
            | Self::ConfigNotFound
            | Self::RecordIdNotFound => StatusCode::NOT_FOUND,
            Self::TaskAlreadyStarted => StatusCode::CONFLICT,
            Self::ThrottledIp => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Alibaba's error code.
    pub fn code(&self) -> String {
        match self {
            Self::Missing(name) => format!("Missing{name}"),
            Self::Malformed(name) | Self::MalformedValue(name) => {
                format!("Invalid{name}.Malformed")
            }
            Self::Unsafe(name) => format!("Invalid{name}.Unsafe"),
            Self::InvalidParameter(_)
            | Self::TooLarge { .. }
            | Self::TooManyParameters { .. }
            | Self::NotUtf8 { .. }
            | Self::Duplicate(_) => "InvalidParameter".to_owned(),
            Self::UnknownAction => "InvalidApi.NotFound".to_owned(),
            Self::NoSuchVersion => "NoSuchVersion".to_owned(),
            Self::AccessKeyNotFound => "InvalidAccessKeyId.NotFound".to_owned(),
            Self::SignatureMismatch { .. } => "SignatureDoesNotMatch".to_owned(),
            Self::IncompleteSignature(_) => "IncompleteSignature".to_owned(),
            Self::NonceUsed => "SignatureNonceUsed".to_owned(),
            Self::TimestampFormat => "InvalidTimeStamp.Format".to_owned(),
            Self::TimestampExpired => "InvalidTimeStamp.Expired".to_owned(),
            Self::Throttled => "Throttling.User".to_owned(),
            Self::ThrottledIp => "Throttling".to_owned(),
            Self::BodyTimeout => "RequestTimeout".to_owned(),
            Self::DomainNotFound => "InvalidDomain.NotFound".to_owned(),
            Self::StreamNotFound => "InvalidStream.NotFound".to_owned(),
            Self::ConfigNotFound => "InvalidConfig.NotFound".to_owned(),
            Self::TaskAlreadyStarted => "TaskAlreadyStarted".to_owned(),
            Self::ConfigAlreadyExists => "ConfigAlreadyExists".to_owned(),
            Self::OssBucketNotFound => "InvalidOssBucket.NotFound".to_owned(),
            Self::EndTimeMismatch => "InvalidEndTime.Mismatch".to_owned(),
            Self::RecordIdNotFound => "InvalidRecordId.NotFound".to_owned(),
            Self::StreamNeverIngested => "InvalidStream.NotFound".to_owned(),
            Self::NoRecordContent => "NoRecordContent".to_owned(),
            Self::ConfigChanged => "InvalidConfig.Changed".to_owned(),
            Self::ForbiddenStreamsFull { .. } => "QuotaExceeded.ForbiddenStreams".to_owned(),
            Self::Internal(_) => "InternalError".to_owned(),
        }
    }

    /// Alibaba's message, verbatim where ERRORS.md gives one.
    pub fn message(&self) -> String {
        match self {
            // ERRORS.md, RealTimeRecordCommand A: "for this Command" (sic).
            Self::Missing("Command") => "Command is mandatory for this Command.".to_owned(),
            Self::Missing(name) => format!("{name} is mandatory for this action."),
            Self::Malformed("CycleDuration") => {
                "Specified CycleDuration Format is not valid.".to_owned()
            }
            Self::Malformed(name @ ("StartTime" | "EndTime")) | Self::MalformedValue(name) => {
                format!("Specified {name} is malformed.")
            }
            // ERRORS.md, Add/UpdateLiveRecordNotifyConfig.
            Self::Malformed("NotifyUrl") => "Specified NotifyUrl is invalid.".to_owned(),
            Self::Malformed(name) => format!("Specified parameter {name} is not valid."),
            Self::Unsafe(name) => format!("Specified {name} is not safe."),
            Self::InvalidParameter(name) | Self::Duplicate(name) => {
                format!("The specified value of parameter \"{name}\" is not valid.")
            }
            Self::TooLarge { limit } => {
                format!("The request parameters exceed the limit of {limit} bytes.")
            }
            Self::TooManyParameters { limit } => {
                format!("The request has too many parameters or list items (limit {limit}).")
            }
            Self::NotUtf8 { name: Some(name) } => {
                format!("The specified value of parameter \"{name}\" is not valid UTF-8.")
            }
            Self::NotUtf8 { name: None } => {
                "The request has a parameter name that is not valid UTF-8.".to_owned()
            }
            Self::UnknownAction => {
                "Specified api is not found,please check your url and method.".to_owned()
            }
            Self::NoSuchVersion => "The specified version does not exist.".to_owned(),
            Self::AccessKeyNotFound => "Specified access key is not found.".to_owned(),
            Self::SignatureMismatch { string_to_sign } => format!(
                "Specified signature does not match our calculation. server string to sign is:{string_to_sign}"
            ),
            Self::IncompleteSignature(_) => {
                "The request signature does not conform to Aliyun standards.".to_owned()
            }
            Self::NonceUsed => "Specified signature nonce was used already.".to_owned(),
            Self::TimestampFormat => {
                "Specified time stamp or date value is not well formatted.".to_owned()
            }
            Self::TimestampExpired => "Specified time stamp or date value is expired.".to_owned(),
            Self::Throttled => "Request was denied due to user flow control.".to_owned(),
            Self::ThrottledIp => "Request was denied due to request throttling.".to_owned(),
            Self::BodyTimeout => "The request body was not received in time.".to_owned(),
            Self::DomainNotFound => "The domain provided does not exist in our records.".to_owned(),
            Self::StreamNotFound => "Stream does not exist.".to_owned(),
            Self::ConfigNotFound => "Config does not exist.".to_owned(),
            Self::TaskAlreadyStarted => "Task has already started.".to_owned(),
            Self::ConfigAlreadyExists => "Config has already exist.".to_owned(),
            Self::OssBucketNotFound => "The parameter OssBucket does not exist.".to_owned(),
            Self::EndTimeMismatch => {
                "Specified end time does not math the specified start time.".to_owned()
            }
            Self::RecordIdNotFound => "The specified RecordId does not exist.".to_owned(),
            // ERRORS.md, CreateLiveStreamRecordIndexFiles: "Speicified" (sic).
            Self::StreamNeverIngested => "Speicified stream does not exist.".to_owned(),
            Self::NoRecordContent => {
                "The record content between StartTime and EndTime is empty.".to_owned()
            }
            Self::ConfigChanged => {
                "The oss bucket info between StartTime and EndTime has changed.".to_owned()
            }
            Self::ForbiddenStreamsFull { limit } => {
                format!("At most {limit} streams can be forbidden; resume some first.")
            }
            Self::Internal(_) => {
                "The request processing has failed due to some unknown error.".to_owned()
            }
        }
    }

    /// The `Recommend` field: where Alibaba's troubleshooting page would be; here a pointer to
    /// the code, since there is no portal.
    pub fn recommend(&self) -> String {
        format!("liverec docs/API.md, error code {}", self.code())
    }

    /// Server faults are logged at error level; client mistakes are not.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Internal(_))
    }
}

impl From<liverec_catalog::CatalogError> for ApiError {
    fn from(e: liverec_catalog::CatalogError) -> Self {
        Self::Internal(format!("catalog: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_messages_and_statuses() {
        let cases = [
            (
                ApiError::Missing("DomainName"),
                400,
                "MissingDomainName",
                "DomainName is mandatory for this action.",
            ),
            (
                ApiError::Missing("Command"),
                400,
                "MissingCommand",
                "Command is mandatory for this Command.",
            ),
            (
                ApiError::Malformed("Command"),
                400,
                "InvalidCommand.Malformed",
                "Specified parameter Command is not valid.",
            ),
            (
                ApiError::Malformed("CycleDuration"),
                400,
                "InvalidCycleDuration.Malformed",
                "Specified CycleDuration Format is not valid.",
            ),
            (
                ApiError::Malformed("StartTime"),
                400,
                "InvalidStartTime.Malformed",
                "Specified StartTime is malformed.",
            ),
            (
                ApiError::Malformed("NotifyUrl"),
                400,
                "InvalidNotifyUrl.Malformed",
                "Specified NotifyUrl is invalid.",
            ),
            (
                ApiError::Unsafe("NotifyUrl"),
                400,
                "InvalidNotifyUrl.Unsafe",
                "Specified NotifyUrl is not safe.",
            ),
            (
                ApiError::InvalidParameter("DelayTime".into()),
                400,
                "InvalidParameter",
                "The specified value of parameter \"DelayTime\" is not valid.",
            ),
            (
                ApiError::UnknownAction,
                404,
                "InvalidApi.NotFound",
                "Specified api is not found,please check your url and method.",
            ),
            (
                ApiError::NoSuchVersion,
                400,
                "NoSuchVersion",
                "The specified version does not exist.",
            ),
            (
                ApiError::AccessKeyNotFound,
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ),
            (
                ApiError::IncompleteSignature("x"),
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            ),
            (
                ApiError::NonceUsed,
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ),
            (
                ApiError::TimestampExpired,
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ),
            (
                ApiError::Throttled,
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
            (
                ApiError::StreamNotFound,
                404,
                "InvalidStream.NotFound",
                "Stream does not exist.",
            ),
            (
                ApiError::ConfigNotFound,
                404,
                "InvalidConfig.NotFound",
                "Config does not exist.",
            ),
            (
                ApiError::TaskAlreadyStarted,
                409,
                "TaskAlreadyStarted",
                "Task has already started.",
            ),
            (
                ApiError::ConfigAlreadyExists,
                400,
                "ConfigAlreadyExists",
                "Config has already exist.",
            ),
            (
                ApiError::EndTimeMismatch,
                400,
                "InvalidEndTime.Mismatch",
                "Specified end time does not math the specified start time.",
            ),
            (
                ApiError::Internal("db down".into()),
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            ),
        ];
        for (err, status, code, message) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            assert_eq!(err.message(), message, "{err:?}");
        }
    }

    #[test]
    fn signature_mismatch_message_splits_on_colon() {
        let err = ApiError::SignatureMismatch {
            string_to_sign: "POST&%2F&a%3Db".into(),
        };
        // The older SDK takes `message.split(':')[1]` and compares it with its own.
        let message = err.message();
        assert_eq!(message.split(':').nth(1), Some("POST&%2F&a%3Db"));
    }

    #[test]
    fn internal_context_is_never_in_the_message() {
        let err = ApiError::Internal("secret path /var/x".into());
        assert!(!err.message().contains("/var/x"));
    }
}
