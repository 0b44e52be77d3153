//! Stream identity and name validation.

use std::fmt;

/// Longest app or stream name accepted.
pub const MAX_NAME_LEN: usize = 255;
/// Longest domain name accepted (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;

/// `(DomainName, AppName, StreamName)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub domain: String,
    pub app: String,
    pub stream: String,
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.domain, self.app, self.stream)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} contains a character outside [A-Za-z0-9_.-]")]
    BadCharacter { what: &'static str },
    #[error("{what} may not start with '.'")]
    DotName { what: &'static str },
}

/// Validates an app or stream name: `[A-Za-z0-9_.-]{1,255}`, not starting with `.`, so a name
/// can be used as a path component without escaping its directory or hiding in it (`.spool`
/// and other dot-names belong to liverec).
pub fn validate_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            what,
            max: MAX_NAME_LEN,
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(NameError::BadCharacter { what });
    }
    if name.starts_with('.') {
        return Err(NameError::DotName { what });
    }
    Ok(())
}

/// Validates a domain (host name): labels of `[A-Za-z0-9-]` separated by dots.
pub fn validate_domain(domain: &str) -> Result<(), NameError> {
    const WHAT: &str = "domain";
    if domain.is_empty() {
        return Err(NameError::Empty { what: WHAT });
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(NameError::TooLong {
            what: WHAT,
            max: MAX_DOMAIN_LEN,
        });
    }
    let ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err(NameError::BadCharacter { what: WHAT })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        assert!(validate_name("stream", "cam-01_a.b").is_ok());
        assert!(validate_domain("live.example.com").is_ok());
    }

    #[test]
    fn refuses_path_escapes_and_control_characters() {
        for bad in [
            "", "..", ".", ".spool", ".hidden", "a/b", "../x", "a\0b", "a b", "é", "a\nb",
        ] {
            assert!(validate_name("stream", bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("stream", &"a".repeat(256)).is_err());
        for bad in ["", "a..b", "a/b", ".a", "a.", "a b"] {
            assert!(validate_domain(bad).is_err(), "{bad:?}");
        }
    }
}
