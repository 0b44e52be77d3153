//! A byte cursor over one tag body that hands out zero-copy slices.

use bytes::Bytes;

use super::FlvError;
use crate::TrackKind;

pub(super) struct Cursor<'a> {
    track: TrackKind,
    data: &'a Bytes,
    pos: usize,
    /// Exclusive end of the readable region (a multitrack entry may end before the body).
    end: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(track: TrackKind, data: &'a Bytes) -> Self {
        Cursor {
            track,
            data,
            pos: 0,
            end: data.len(),
        }
    }

    fn truncated(&self, needed: usize) -> FlvError {
        FlvError::Truncated {
            track: self.track,
            offset: self.pos,
            needed,
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    pub(super) fn u8(&mut self) -> Result<u8, FlvError> {
        if self.remaining() < 1 {
            return Err(self.truncated(1));
        }
        let b = *self.data.get(self.pos).ok_or_else(|| self.truncated(1))?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn u16(&mut self) -> Result<u16, FlvError> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    pub(super) fn u24(&mut self) -> Result<u32, FlvError> {
        Ok(u32::from_be_bytes([0, self.u8()?, self.u8()?, self.u8()?]))
    }

    /// A signed 24-bit big-endian value (composition time offset).
    pub(super) fn si24(&mut self) -> Result<i32, FlvError> {
        let v = self.u24()?;
        // Sign-extend from bit 23.
        Ok(((v << 8) as i32) >> 8)
    }

    pub(super) fn fourcc(&mut self) -> Result<[u8; 4], FlvError> {
        Ok([self.u8()?, self.u8()?, self.u8()?, self.u8()?])
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<(), FlvError> {
        if self.remaining() < n {
            return Err(self.truncated(n));
        }
        self.pos += n;
        Ok(())
    }

    /// Restricts the readable region to the next `n` bytes and returns the old end.
    pub(super) fn limit(&mut self, n: usize) -> Result<usize, FlvError> {
        if self.remaining() < n {
            return Err(self.truncated(n));
        }
        let old = self.end;
        self.end = self.pos + n;
        Ok(old)
    }

    /// Moves past the limited region and restores the end saved by [`Cursor::limit`].
    pub(super) fn unlimit(&mut self, old_end: usize) {
        self.pos = self.end;
        self.end = old_end;
    }

    /// Everything up to the end of the readable region, as a slice of the body.
    pub(super) fn rest(&mut self) -> Bytes {
        let start = self.pos.min(self.end);
        let out = self.data.slice(start..self.end);
        self.pos = self.end;
        out
    }

    /// Skips an E-RTMP ModEx block: size (UI8 + 1, or UI16 + 1 when that is 256), data.
    /// Returns the byte that follows it (modifier type, packet type).
    pub(super) fn skip_mod_ex(&mut self) -> Result<u8, FlvError> {
        let mut size = usize::from(self.u8()?) + 1;
        if size == 256 {
            size = usize::from(self.u16()?) + 1;
        }
        self.skip(size)?;
        self.u8()
    }
}
