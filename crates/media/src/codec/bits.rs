//! A bit reader over RBSP data for SPS / sequence-header / AudioSpecificConfig fields.
//!
//! Every read returns `None` past the end, so a malformed header ends a parse instead of
//! panicking.

/// Exp-Golomb codes with more leading zeros than this do not fit a `u32`.
const MAX_EXP_GOLOMB_ZEROS: u32 = 31;

pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Index of the byte holding the next bit (for error offsets).
    pub(crate) fn byte_pos(&self) -> usize {
        self.pos / 8
    }

    pub(crate) fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// Reads `n` bits (at most 64), most significant first.
    pub(crate) fn bits(&mut self, n: u32) -> Option<u64> {
        if n > 64 {
            return None;
        }
        let mut value = 0u64;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Some(value)
    }

    pub(crate) fn bits_u32(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        self.bits(n).and_then(|v| u32::try_from(v).ok())
    }

    pub(crate) fn bits_u8(&mut self, n: u32) -> Option<u8> {
        if n > 8 {
            return None;
        }
        self.bits(n).and_then(|v| u8::try_from(v).ok())
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len().checked_mul(8)? {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Unsigned Exp-Golomb (`ue(v)`).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > MAX_EXP_GOLOMB_ZEROS {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        let value = (1u64 << zeros) - 1 + rest;
        u32::try_from(value).ok()
    }

    /// Signed Exp-Golomb (`se(v)`).
    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(value).ok()
    }
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`) from a NAL unit payload.
pub(crate) fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Writes bit fields MSB first; builds SPS / headers in tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct BitWriter {
    bits: Vec<bool>,
}

#[cfg(test)]
impl BitWriter {
    pub(crate) fn put(&mut self, value: u64, n: u32) -> &mut Self {
        for i in (0..n).rev() {
            self.bits.push((value >> i) & 1 == 1);
        }
        self
    }

    pub(crate) fn ue(&mut self, value: u32) -> &mut Self {
        let v = u64::from(value) + 1;
        let n = 64 - v.leading_zeros();
        self.put(0, n - 1).put(v, n)
    }

    /// The bytes written so far, with an RBSP stop bit and zero padding.
    pub(crate) fn finish_rbsp(&mut self) -> Vec<u8> {
        self.bits.push(true);
        self.bits
            .chunks(8)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u8, |b, (i, bit)| if *bit { b | (0x80 >> i) } else { b })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 1...: ue = 0, 1, 2, 3
        let data = [0b1010_0110, 0b0100_1000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.bit(), Some(true));
        assert_eq!(r.bits(3), Some(0));
        assert_eq!(r.bit(), None);
    }

    #[test]
    fn signed_exp_golomb_alternates() {
        // ue 1 → +1, ue 2 → -1: 010 011
        let data = [0b0100_1100];
        let mut r = BitReader::new(&data);
        assert_eq!(r.se(), Some(1));
        assert_eq!(r.se(), Some(-1));
    }

    #[test]
    fn too_long_exp_golomb_is_rejected() {
        let data = [0u8; 8];
        assert_eq!(BitReader::new(&data).ue(), None);
    }

    #[test]
    fn unescape_drops_emulation_prevention() {
        assert_eq!(
            unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
    }
}
