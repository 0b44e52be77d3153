//! FLV file reader: header, then `PreviousTagSize` + tag repeated.

use bytes::Bytes;

use super::{
    FILE_HEADER_LEN, FlvError, TAG_HEADER_LEN, TAG_TYPE_AUDIO, TAG_TYPE_SCRIPT, TAG_TYPE_VIDEO,
};

/// Bytes of each `PreviousTagSize` field.
const PREVIOUS_TAG_SIZE_LEN: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagKind {
    Audio,
    Video,
    Script,
}

/// One tag of an FLV file. `body` is a slice of the file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTag {
    pub kind: TagKind,
    /// Milliseconds: 24-bit timestamp plus the extended (upper) byte.
    pub timestamp: u32,
    pub body: Bytes,
    /// Byte offset of the tag header in the file.
    pub offset: u64,
}

/// Iterates over the tags of a whole FLV file in memory. Tags of unknown type are skipped;
/// a truncated file ends with one error item. The file header's flags are not trusted
/// (publishers get them wrong), only its data offset.
#[derive(Debug)]
pub struct FileReader {
    data: Bytes,
    pos: usize,
    done: bool,
}

impl FileReader {
    pub fn new(data: Bytes) -> Result<FileReader, FlvError> {
        let header = data.get(..FILE_HEADER_LEN).ok_or(FlvError::NotFlv)?;
        if &header[..3] != b"FLV" {
            return Err(FlvError::NotFlv);
        }
        let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        let offset = usize::try_from(offset).map_err(|_| FlvError::NotFlv)?;
        if offset < FILE_HEADER_LEN {
            return Err(FlvError::NotFlv);
        }
        Ok(FileReader {
            data,
            // The first PreviousTagSize (always 0) follows the header.
            pos: offset.saturating_add(PREVIOUS_TAG_SIZE_LEN),
            done: false,
        })
    }

    fn next_tag(&mut self) -> Option<Result<FileTag, FlvError>> {
        loop {
            if self.pos >= self.data.len() {
                return None;
            }
            let start = self.pos;
            let truncated = FlvError::TruncatedFile {
                offset: u64::try_from(start).unwrap_or(u64::MAX),
            };
            let Some(h) = self.data.get(start..start.saturating_add(TAG_HEADER_LEN)) else {
                return Some(Err(truncated));
            };
            let tag_type = h[0] & 0x1f;
            let size =
                usize::try_from(u32::from_be_bytes([0, h[1], h[2], h[3]])).unwrap_or(usize::MAX);
            let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let body_start = start + TAG_HEADER_LEN;
            let Some(body_end) = body_start.checked_add(size) else {
                return Some(Err(truncated));
            };
            if body_end > self.data.len() {
                return Some(Err(truncated));
            }
            // A missing final PreviousTagSize is tolerated (a file cut just after a tag).
            self.pos = body_end.saturating_add(PREVIOUS_TAG_SIZE_LEN);
            let kind = match tag_type {
                TAG_TYPE_AUDIO => TagKind::Audio,
                TAG_TYPE_VIDEO => TagKind::Video,
                TAG_TYPE_SCRIPT => TagKind::Script,
                _ => continue,
            };
            return Some(Ok(FileTag {
                kind,
                timestamp,
                body: self.data.slice(body_start..body_end),
                offset: u64::try_from(start).unwrap_or(u64::MAX),
            }));
        }
    }
}

impl Iterator for FileReader {
    type Item = Result<FileTag, FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_tag();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Reads the tags of an FLV file held in memory (copied once into a shared buffer; tag bodies
/// are slices of it). A bad header is the first and only item.
pub fn read_file_tags(data: &[u8]) -> impl Iterator<Item = Result<FileTag, FlvError>> {
    let mut header_error = None;
    let reader = match FileReader::new(Bytes::copy_from_slice(data)) {
        Ok(r) => Some(r),
        Err(e) => {
            header_error = Some(Err(e));
            None
        }
    };
    header_error.into_iter().chain(reader.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
        let ts_b = ts.to_be_bytes();
        let mut out = vec![
            kind, size[1], size[2], size[3], ts_b[1], ts_b[2], ts_b[3], ts_b[0], 0, 0, 0,
        ];
        out.extend_from_slice(body);
        let prev = u32::try_from(out.len()).unwrap_or(0).to_be_bytes();
        out.extend_from_slice(&prev);
        out
    }

    fn file(tags: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for t in tags {
            out.extend_from_slice(t);
        }
        out
    }

    #[test]
    fn reads_tags_with_extended_timestamp() {
        let data = file(&[
            tag(18, 0, b"meta"),
            tag(9, 0x0123_4567, &[0x17, 1]),
            tag(7, 5, b"unknown"),
            tag(8, 40, &[0xaf, 1, 2]),
        ]);
        let tags: Vec<_> = read_file_tags(&data)
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].kind, TagKind::Script);
        assert_eq!(tags[1].kind, TagKind::Video);
        assert_eq!(tags[1].timestamp, 0x0123_4567);
        assert_eq!(&tags[1].body[..], &[0x17, 1]);
        assert_eq!(tags[1].offset, 13 + 15 + 4);
        assert_eq!(tags[2].kind, TagKind::Audio);
        assert_eq!(tags[2].timestamp, 40);
    }

    #[test]
    fn truncated_file_ends_with_one_error() {
        let data = file(&[tag(9, 0, &[0x17, 1, 2, 3]), tag(8, 1, &[0xaf, 1, 2])]);
        let full = read_file_tags(&data).count();
        assert_eq!(full, 2);
        for cut in 14..data.len() - 4 {
            let items: Vec<_> = read_file_tags(&data[..cut]).collect();
            let errors = items.iter().filter(|i| i.is_err()).count();
            assert!(errors <= 1, "cut {cut}");
            if errors == 1 {
                let last = items.last();
                assert!(matches!(last, Some(Err(FlvError::TruncatedFile { .. }))));
            }
        }
        // Cut inside the second tag: one good tag then the error.
        let cut = 13 + 15 + 4 + 5;
        let items: Vec<_> = read_file_tags(&data[..cut]).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(FlvError::TruncatedFile { offset: 32 }));
    }

    #[test]
    fn bad_header_is_an_error() {
        let items: Vec<_> = read_file_tags(b"FLX\x01\x05\0\0\0\x09").collect();
        assert_eq!(items, vec![Err(FlvError::NotFlv)]);
        let items: Vec<_> = read_file_tags(b"FLV").collect();
        assert_eq!(items, vec![Err(FlvError::NotFlv)]);
    }

    proptest! {
        #[test]
        fn random_files_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut with_header = b"FLV\x01\x05\x00\x00\x00\x09".to_vec();
            with_header.extend_from_slice(&data);
            let errors = read_file_tags(&with_header).filter(|i| i.is_err()).count();
            prop_assert!(errors <= 1);
            let _ = read_file_tags(&data).count();
        }
    }
}
