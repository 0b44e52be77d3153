//! An FLV byte stream read as it arrives (HTTP-FLV): bytes in, tags out. Pure.

use bytes::{Buf, Bytes, BytesMut};
use liverec_media::flv::{
    FILE_HEADER_LEN, TAG_HEADER_LEN, TAG_TYPE_AUDIO, TAG_TYPE_SCRIPT, TAG_TYPE_VIDEO, TagKind,
};

/// `PreviousTagSize` after the file header and each tag.
const PREVIOUS_TAG_SIZE_LEN: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlvStreamError {
    #[error("the stream does not start with an FLV header")]
    NotFlv,
    #[error("unknown FLV tag type {0} (the stream is out of step)")]
    UnknownTag(u8),
}

/// One tag of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTag {
    pub kind: TagKind,
    /// Milliseconds (the extended byte included).
    pub timestamp: u32,
    pub body: Bytes,
}

/// Splits an FLV byte stream into tags, whatever the sizes of the pieces it arrives in. Holds
/// at most one tag (≤ 16 MiB) beyond what was taken.
#[derive(Debug, Default)]
pub struct FlvStream {
    buf: BytesMut,
    header_read: bool,
}

impl FlvStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole tag, if one has arrived.
    pub fn next_tag(&mut self) -> Result<Option<StreamTag>, FlvStreamError> {
        if !self.header_read {
            let Some(header) = self.buf.get(..FILE_HEADER_LEN) else {
                return Ok(None);
            };
            if &header[..3] != b"FLV" {
                return Err(FlvStreamError::NotFlv);
            }
            let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
            let skip = offset.max(FILE_HEADER_LEN) + PREVIOUS_TAG_SIZE_LEN;
            if self.buf.len() < skip {
                return Ok(None);
            }
            self.buf.advance(skip);
            self.header_read = true;
        }
        let Some(header) = self.buf.get(..TAG_HEADER_LEN) else {
            return Ok(None);
        };
        // The low 5 bits are the type; bit 5 (filter) is never set by live servers.
        let kind = match header[0] & 0x1f {
            TAG_TYPE_AUDIO => TagKind::Audio,
            TAG_TYPE_VIDEO => TagKind::Video,
            TAG_TYPE_SCRIPT => TagKind::Script,
            other => return Err(FlvStreamError::UnknownTag(other)),
        };
        let size =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        let timestamp = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
        let total = TAG_HEADER_LEN + size + PREVIOUS_TAG_SIZE_LEN;
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut tag = self.buf.split_to(total).freeze();
        tag.advance(TAG_HEADER_LEN);
        tag.truncate(size);
        Ok(Some(StreamTag {
            kind,
            timestamp,
            body: tag,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(tag_type: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let len = body.len() as u32;
        let t = ts.to_be_bytes();
        let mut out = vec![
            tag_type,
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            t[1],
            t[2],
            t[3],
            t[0],
            0,
            0,
            0,
        ];
        out.extend_from_slice(body);
        out.extend_from_slice(&(11 + len).to_be_bytes());
        out
    }

    fn file(tags: &[(u8, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (ty, ts, body) in tags {
            out.extend(tag(*ty, *ts, body));
        }
        out
    }

    proptest! {
        /// However the bytes are cut into pieces, the same tags come out.
        #[test]
        fn any_split_gives_the_same_tags(cuts in proptest::collection::vec(1usize..40, 1..30)) {
            let tags = vec![
                (18u8, 0u32, b"meta".to_vec()),
                (9, 0, vec![0x17, 0, 0, 0, 0, 1, 2]),
                (8, 23, vec![0xaf, 1, 9]),
                (9, 0x0100_0001, vec![0x27, 1, 0, 0, 0]),
            ];
            let bytes = file(&tags);
            let mut stream = FlvStream::new();
            let mut got = Vec::new();
            let mut pos = 0;
            for cut in cuts.iter().cycle() {
                if pos >= bytes.len() { break; }
                let end = (pos + cut).min(bytes.len());
                stream.push(&bytes[pos..end]);
                pos = end;
                while let Some(t) = stream.next_tag().unwrap() {
                    got.push((t.timestamp, t.body.to_vec()));
                }
            }
            let want: Vec<(u32, Vec<u8>)> = tags.iter().map(|(_, ts, b)| (*ts, b.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn what_is_not_flv_is_an_error() {
        let mut stream = FlvStream::new();
        stream.push(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(stream.next_tag(), Err(FlvStreamError::NotFlv));
        let mut stream = FlvStream::new();
        let mut bytes = file(&[]);
        bytes.extend(tag(7, 0, b"x"));
        stream.push(&bytes);
        assert_eq!(stream.next_tag(), Err(FlvStreamError::UnknownTag(7)));
    }
}
