//! Length-prefixed NAL units (MP4/FLV) to the Annex B byte stream MPEG-TS carries
//! (ITU-T H.264 / H.265 Annex B): start codes, an access unit delimiter first, and the
//! parameter sets before every keyframe so that any segment decodes on its own.

use bytes::{BufMut, Bytes, BytesMut};
use liverec_media::VideoCodec;

use super::error::MuxError;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const MAX_NAL_LENGTH_SIZE: u8 = 4;
/// H.264 access unit delimiter: NAL type 9, `primary_pic_type` 7 (any slice type).
const H264_AUD: [u8; 2] = [0x09, 0xF0];
/// H.265 access unit delimiter: NAL type 35, layer 0, temporal id 0, `pic_type` 2 (any).
const H265_AUD: [u8; 3] = [0x46, 0x01, 0x50];

/// The NAL unit header flavour of a video codec that MPEG-TS recording supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NalCodec {
    H264,
    H265,
}

impl NalCodec {
    pub fn from_codec(codec: VideoCodec) -> Result<Self, MuxError> {
        match codec {
            VideoCodec::H264 => Ok(NalCodec::H264),
            VideoCodec::H265 => Ok(NalCodec::H265),
            VideoCodec::Av1 => Err(MuxError::UnsupportedVideoCodec(codec)),
        }
    }

    fn aud(self) -> &'static [u8] {
        match self {
            NalCodec::H264 => &H264_AUD,
            NalCodec::H265 => &H265_AUD,
        }
    }

    fn kind(self, nal: &[u8]) -> NalKind {
        let Some(&first) = nal.first() else {
            return NalKind::Other;
        };
        match self {
            NalCodec::H264 => match first & 0x1F {
                9 => NalKind::Delimiter,
                7 => NalKind::Sps,
                _ => NalKind::Other,
            },
            NalCodec::H265 => match (first >> 1) & 0x3F {
                35 => NalKind::Delimiter,
                33 => NalKind::Sps,
                _ => NalKind::Other,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NalKind {
    Delimiter,
    Sps,
    Other,
}

/// Checks that `size` is a usable NAL length prefix size.
pub fn check_length_size(size: u8) -> Result<(), MuxError> {
    if (1..=MAX_NAL_LENGTH_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(MuxError::NalLengthSize(size))
    }
}

/// What [`scan`] learnt about an access unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes the frame's own NAL units take in Annex B (start codes included), its access
    /// unit delimiters left out.
    pub annexb_len: usize,
    /// NAL units other than access unit delimiters.
    pub nal_count: usize,
    /// The frame carries its own SPS (so its own parameter sets).
    pub has_sps: bool,
}

/// Validates every length prefix of `data` (no byte is read past the end) and sums up
/// what [`write`] will need.
pub fn scan(data: &[u8], length_size: u8, codec: NalCodec) -> Result<Scan, MuxError> {
    let mut scan = Scan::default();
    for nal in NalUnits::new(data, length_size) {
        let nal = nal?;
        match codec.kind(nal) {
            NalKind::Delimiter => continue,
            NalKind::Sps => scan.has_sps = true,
            NalKind::Other => {}
        }
        scan.nal_count += 1;
        scan.annexb_len += START_CODE.len() + nal.len();
    }
    Ok(scan)
}

/// Bytes [`write`] appends for a frame of this [`Scan`].
pub fn written_len(scan: &Scan, codec: NalCodec, parameter_sets: Option<&[Bytes]>) -> usize {
    let params: usize = parameter_sets
        .unwrap_or_default()
        .iter()
        .map(|set| START_CODE.len() + set.len())
        .sum();
    START_CODE.len() + codec.aud().len() + params + scan.annexb_len
}

/// Appends the access unit in Annex B: our delimiter, `parameter_sets` if given, then the
/// frame's NAL units without their own delimiters.
pub fn write(
    out: &mut BytesMut,
    data: &[u8],
    length_size: u8,
    codec: NalCodec,
    parameter_sets: Option<&[Bytes]>,
) -> Result<(), MuxError> {
    out.put_slice(&START_CODE);
    out.put_slice(codec.aud());
    for set in parameter_sets.unwrap_or_default() {
        out.put_slice(&START_CODE);
        out.put_slice(set);
    }
    for nal in NalUnits::new(data, length_size) {
        let nal = nal?;
        if codec.kind(nal) != NalKind::Delimiter {
            out.put_slice(&START_CODE);
            out.put_slice(nal);
        }
    }
    Ok(())
}

/// The NAL units of a length-prefixed access unit; empty units are skipped. Yields one
/// error, then stops, at the first prefix that is cut short or points past the end.
struct NalUnits<'a> {
    data: &'a [u8],
    offset: usize,
    length_size: usize,
    failed: bool,
}

impl<'a> NalUnits<'a> {
    fn new(data: &'a [u8], length_size: u8) -> Self {
        Self {
            data,
            offset: 0,
            length_size: usize::from(length_size),
            failed: false,
        }
    }

    fn fail(&mut self, error: MuxError) -> Option<Result<&'a [u8], MuxError>> {
        self.failed = true;
        Some(Err(error))
    }
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = Result<&'a [u8], MuxError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            let rest = self.data.get(self.offset..)?;
            if rest.is_empty() {
                return None;
            }
            let Some((prefix, body)) = rest.split_at_checked(self.length_size) else {
                return self.fail(MuxError::TruncatedNalLength {
                    offset: self.offset,
                    remaining: rest.len(),
                });
            };
            if prefix.is_empty() {
                return self.fail(MuxError::NalLengthSize(0));
            }
            let len = prefix
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            let Some(nal) = body.get(..len) else {
                return self.fail(MuxError::NalOverrun {
                    offset: self.offset,
                    len,
                    remaining: body.len(),
                });
            };
            self.offset += self.length_size + len;
            if !nal.is_empty() {
                return Some(Ok(nal));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(
        data: &[u8],
        size: u8,
        codec: NalCodec,
        params: Option<&[Bytes]>,
    ) -> Result<Vec<u8>, MuxError> {
        let scan = scan(data, size, codec)?;
        let mut out = BytesMut::new();
        write(&mut out, data, size, codec, params)?;
        assert_eq!(out.len(), written_len(&scan, codec, params));
        Ok(out.to_vec())
    }

    #[test]
    fn four_byte_prefixes_become_start_codes_after_a_delimiter() {
        let data = [0, 0, 0, 2, 0x65, 0xAA, 0, 0, 0, 1, 0x06];
        let out = convert(&data, 4, NalCodec::H264, None);
        assert_eq!(
            out,
            Ok(vec![
                0, 0, 0, 1, 0x09, 0xF0, //
                0, 0, 0, 1, 0x65, 0xAA, //
                0, 0, 0, 1, 0x06,
            ])
        );
    }

    #[test]
    fn parameter_sets_follow_the_delimiter() {
        let params = [
            Bytes::from_static(&[0x67, 1]),
            Bytes::from_static(&[0x68, 2]),
        ];
        let data = [1, 0x65];
        let out = convert(&data, 1, NalCodec::H264, Some(&params));
        assert_eq!(
            out,
            Ok(vec![
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65,
            ])
        );
    }

    #[test]
    fn own_delimiters_are_replaced_and_sps_detected() {
        // H.265: AUD (35), SPS (33), IDR (19), with 2-byte prefixes.
        let data = [
            0, 3, 0x46, 0x01, 0x10, //
            0, 2, 0x42, 0x01, //
            0, 2, 0x26, 0x01,
        ];
        let found = scan(&data, 2, NalCodec::H265);
        assert_eq!(
            found,
            Ok(Scan {
                annexb_len: 12,
                nal_count: 2,
                has_sps: true
            })
        );
        let out = convert(&data, 2, NalCodec::H265, None);
        assert_eq!(
            out,
            Ok(vec![
                0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x42, 0x01, 0, 0, 0, 1, 0x26, 0x01,
            ])
        );
    }

    #[test]
    fn empty_nal_units_are_skipped() {
        let data = [0, 0, 0, 1, 0x41];
        assert_eq!(
            scan(&data, 2, NalCodec::H264),
            Ok(Scan {
                annexb_len: 5,
                nal_count: 1,
                has_sps: false
            })
        );
    }

    #[test]
    fn length_past_the_end_is_an_error() {
        let data = [0, 0, 0, 2, 0x65, 0xAA, 0, 0, 0, 9, 0x06];
        assert_eq!(
            scan(&data, 4, NalCodec::H264),
            Err(MuxError::NalOverrun {
                offset: 6,
                len: 9,
                remaining: 1
            })
        );
        let mut out = BytesMut::new();
        assert!(write(&mut out, &data, 4, NalCodec::H264, None).is_err());
    }

    #[test]
    fn truncated_prefix_is_an_error() {
        let data = [0, 0, 0, 1, 0x65, 0, 0];
        assert_eq!(
            scan(&data, 4, NalCodec::H264),
            Err(MuxError::TruncatedNalLength {
                offset: 5,
                remaining: 2
            })
        );
    }

    #[test]
    fn huge_length_is_an_error_not_an_overflow() {
        let data = [0xFF, 0xFF, 0xFF, 0xFF, 0x65];
        assert!(matches!(
            scan(&data, 4, NalCodec::H264),
            Err(MuxError::NalOverrun { .. })
        ));
    }

    #[test]
    fn length_sizes_outside_one_to_four_are_refused() {
        assert_eq!(check_length_size(0), Err(MuxError::NalLengthSize(0)));
        assert_eq!(check_length_size(5), Err(MuxError::NalLengthSize(5)));
        assert_eq!(check_length_size(3), Ok(()));
    }

    #[test]
    fn av1_has_no_nal_codec() {
        assert_eq!(
            NalCodec::from_codec(VideoCodec::Av1),
            Err(MuxError::UnsupportedVideoCodec(VideoCodec::Av1))
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data: Vec<u8>, size in 0u8..6) {
            let _ = scan(&data, size, NalCodec::H264);
            let mut out = BytesMut::new();
            let _ = write(&mut out, &data, size, NalCodec::H265, None);
        }
    }
}
