//! A minimal HTTP/1.1 keep-alive client: exactly what the benchmark needs (POST with an empty
//! body, a `Content-Length` response), with as little client CPU as possible so the server, not
//! the load generator, is what gets measured on a small machine.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sign::SignedRequest;

/// Largest response head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest response body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Time allowed for connecting and for one whole exchange.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Read chunk size.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("i/o with the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection before a full response")]
    Closed,
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("response body of {0} bytes exceeds {MAX_BODY_BYTES}")]
    BodyTooLarge(usize),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// One response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
    /// The server asked to close after the last response.
    pub closed: bool,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Self, HttpError> {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| HttpError::Timeout(IO_TIMEOUT))?
            .map_err(|source| HttpError::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
            buf: Vec::with_capacity(READ_CHUNK),
            closed: false,
        })
    }

    /// `host:port` as the `Host` header (and the ACS3 signature) must carry it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends a `POST` with an empty body and reads the whole response.
    pub async fn post(&mut self, req: &SignedRequest) -> Result<Response, HttpError> {
        tokio::time::timeout(IO_TIMEOUT, self.exchange(req))
            .await
            .map_err(|_| HttpError::Timeout(IO_TIMEOUT))?
    }

    async fn exchange(&mut self, req: &SignedRequest) -> Result<Response, HttpError> {
        let mut out = String::with_capacity(512);
        out.push_str("POST ");
        out.push_str(&req.path_and_query);
        out.push_str(" HTTP/1.1\r\nhost: ");
        out.push_str(&self.host);
        out.push_str("\r\ncontent-length: 0\r\naccept: application/json\r\n");
        for (k, v) in &req.headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        self.stream.write_all(out.as_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Response, HttpError> {
        self.buf.clear();
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::HeadTooLarge);
            }
            self.fill().await?;
        };
        let head = parse_head(&self.buf[..head_end])?;
        if head.content_length > MAX_BODY_BYTES {
            return Err(HttpError::BodyTooLarge(head.content_length));
        }
        let total = head_end + head.content_length;
        while self.buf.len() < total {
            self.fill().await?;
        }
        self.closed = head.close;
        Ok(Response {
            status: head.status,
            body: self.buf[head_end..total].to_vec(),
        })
    }

    async fn fill(&mut self) -> Result<(), HttpError> {
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let n = self.stream.read(&mut self.buf[len..]).await?;
        self.buf.truncate(len + n);
        if n == 0 {
            return Err(HttpError::Closed);
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    content_length: usize,
    close: bool,
}

fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or(HttpError::Malformed("empty head"))?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HttpError::Malformed("bad status code"))?;
    let mut content_length = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed("bad content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed("chunked bodies are not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Head {
        status,
        content_length: content_length.ok_or(HttpError::Malformed("no content-length"))?,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_typical_head() {
        let h = parse_head(b"HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\nContent-Length: 12\r\n\r\n")
            .unwrap();
        assert_eq!(
            h,
            Head {
                status: 409,
                content_length: 12,
                close: false
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc\r\ncontent-length: 1\r\n\r\n").is_err());
        assert!(parse_head(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn notes_connection_close() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        assert!(h.close);
    }
}
