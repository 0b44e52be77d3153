//! A byte cursor over a decoder configuration record that hands out zero-copy slices.

use bytes::Bytes;

use super::{CodecError, RecordKind};

pub(crate) struct Cursor<'a> {
    record: RecordKind,
    data: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(record: RecordKind, data: &'a Bytes) -> Self {
        Cursor {
            record,
            data,
            pos: 0,
        }
    }

    fn truncated(&self, needed: usize) -> CodecError {
        CodecError::Truncated {
            record: self.record,
            offset: self.pos,
            needed,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.truncated(1))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CodecError> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), CodecError> {
        if self.remaining() < n {
            return Err(self.truncated(n));
        }
        self.pos += n;
        Ok(())
    }

    /// The next `n` bytes as a slice of the record (no copy).
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, CodecError> {
        if self.remaining() < n {
            return Err(self.truncated(n));
        }
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Everything after the cursor.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.data.slice(self.pos.min(self.data.len())..);
        self.pos = self.data.len();
        out
    }
}
