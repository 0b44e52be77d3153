//! AV1: the `AV1CodecConfigurationRecord` (av1C, AV1-ISOBMFF §2.3) and the maximum frame size
//! from the sequence header OBU in its `configOBUs` (AV1 spec §5.5).

use bytes::Bytes;

use super::avc::MAX_DIMENSION;
use super::bits::BitReader;
use super::cursor::Cursor;
use super::{CodecError, RecordKind, VideoCodec, VideoConfig};

/// `marker` (1) and `version` (1) in the first byte of an av1C.
const AV1C_MARKER_VERSION: u8 = 0x81;
/// Bytes of the fixed part of an av1C before `configOBUs`.
const FIXED_HEADER_LEN: usize = 4;
/// `OBU_SEQUENCE_HEADER`.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// `OBU_TEMPORAL_DELIMITER`.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// leb128 values use at most 8 bytes (AV1 spec §4.10.5).
const MAX_LEB128_BYTES: usize = 8;

impl VideoConfig {
    /// Parses an av1C record. Width and height come from a sequence header OBU in
    /// `configOBUs` if there is one, else they are 0. `parameter_sets` is empty.
    pub fn from_av1_record(record: Bytes) -> Result<VideoConfig, CodecError> {
        let kind = RecordKind::Av1;
        let mut c = Cursor::new(kind, &record);
        let first = c.u8()?;
        if first != AV1C_MARKER_VERSION {
            return Err(CodecError::UnsupportedVersion {
                record: kind,
                version: first & 0x7f,
            });
        }
        c.skip(FIXED_HEADER_LEN - 1)?;
        let obus = c.rest();
        let (width, height) = sequence_header(&obus)
            .and_then(|seq| max_frame_size(&seq))
            .unwrap_or((0, 0));
        Ok(VideoConfig {
            codec: VideoCodec::Av1,
            record,
            width,
            height,
            nal_length_size: 0,
            parameter_sets: Vec::new(),
        })
    }
}

/// One OBU of a low-overhead bitstream: its type and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    pub obu_type: u8,
    pub payload: &'a [u8],
}

/// Splits low-overhead OBUs (`obu_has_size_field`; the last may omit its size). Stops at the
/// first malformed OBU.
pub fn obus(mut data: &[u8]) -> impl Iterator<Item = Obu<'_>> {
    std::iter::from_fn(move || {
        let (&header, rest) = data.split_first()?;
        let obu_type = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let rest = if has_extension { rest.get(1..)? } else { rest };
        let (payload, next) = if has_size {
            let (size, used) = leb128(rest)?;
            let start = used;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            (rest.get(start..end)?, rest.get(end..)?)
        } else {
            (rest, &[][..])
        };
        data = next;
        Some(Obu { obu_type, payload })
    })
}

/// Reads a leb128 value; returns it and the bytes used.
fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in data.iter().take(MAX_LEB128_BYTES).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn sequence_header(obus_data: &[u8]) -> Option<Vec<u8>> {
    obus(obus_data)
        .find(|o| o.obu_type == OBU_SEQUENCE_HEADER)
        .map(|o| o.payload.to_vec())
}

/// `max_frame_width_minus_1 + 1`, `max_frame_height_minus_1 + 1` of a sequence header OBU
/// payload (§5.5.1).
pub fn max_frame_size(seq: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(seq);
    r.skip(3)?; // seq_profile
    r.skip(1)?; // still_picture
    let reduced_still_picture_header = r.bit()?;
    if reduced_still_picture_header {
        r.skip(5)?; // seq_level_idx[0]
    } else {
        let timing_info_present = r.bit()?;
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0u32;
        if timing_info_present {
            r.skip(64)?; // num_units_in_display_tick, time_scale
            if r.bit()? {
                uvlc(&mut r)?; // num_ticks_per_picture_minus_1
            }
            decoder_model_info_present = r.bit()?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits_u32(5)? + 1;
                r.skip(32)?; // num_units_in_decoding_tick
                r.skip(10)?; // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay_present = r.bit()?;
        let operating_points = r.bits_u32(5)? + 1;
        for _ in 0..operating_points {
            r.skip(12)?; // operating_point_idc
            let seq_level_idx = r.bits_u32(5)?;
            if seq_level_idx > 7 {
                r.skip(1)?; // seq_tier
            }
            if decoder_model_info_present && r.bit()? {
                // decoder_buffer_delay, encoder_buffer_delay, low_delay_mode_flag
                r.skip(usize::try_from(2 * buffer_delay_length + 1).ok()?)?;
            }
            if initial_display_delay_present && r.bit()? {
                r.skip(4)?;
            }
        }
    }
    let width_bits = r.bits_u32(4)? + 1;
    let height_bits = r.bits_u32(4)? + 1;
    let width = r.bits_u32(width_bits)?.checked_add(1)?;
    let height = r.bits_u32(height_bits)?.checked_add(1)?;
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return None;
    }
    Some((width, height))
}

/// `uvlc()` (§4.10.3); values that do not fit 32 bits are rejected.
fn uvlc(r: &mut BitReader<'_>) -> Option<u32> {
    let mut zeros = 0u32;
    while !r.bit()? {
        zeros += 1;
        if zeros >= 32 {
            return None;
        }
    }
    let rest = r.bits(zeros)?;
    u32::try_from((1u64 << zeros) - 1 + rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// av1C written by ffmpeg 9 / SVT-AV1 for 320x240 (tests/.assets/av1_aac.flv).
    const AV1C_320X240: &[u8] = &[
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x21, 0xe7, 0xfd, 0xe0, 0x17,
        0xc0, 0x02,
    ];

    #[test]
    fn parses_svt_av1_record() {
        let cfg = VideoConfig::from_av1_record(Bytes::from_static(AV1C_320X240)).expect("valid");
        assert_eq!(cfg.codec, VideoCodec::Av1);
        assert_eq!((cfg.width, cfg.height), (320, 240));
        assert_eq!(cfg.nal_length_size, 0);
        assert!(cfg.parameter_sets.is_empty());
    }

    #[test]
    fn record_without_obus_has_zero_size() {
        let cfg =
            VideoConfig::from_av1_record(Bytes::from_static(&AV1C_320X240[..4])).expect("valid");
        assert_eq!((cfg.width, cfg.height), (0, 0));
    }

    #[test]
    fn bad_marker_and_truncation_are_errors() {
        assert!(VideoConfig::from_av1_record(Bytes::from_static(&[0x01, 0, 0, 0])).is_err());
        for len in 0..FIXED_HEADER_LEN {
            assert!(
                VideoConfig::from_av1_record(Bytes::copy_from_slice(&AV1C_320X240[..len])).is_err()
            );
        }
    }

    #[test]
    fn splits_obus() {
        // temporal delimiter (size 0), then a sequence header without size field.
        let data = [0x12, 0x00, 0x08, 0xaa, 0xbb];
        let list: Vec<_> = obus(&data).collect();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].obu_type, OBU_TEMPORAL_DELIMITER);
        assert_eq!(list[1].obu_type, OBU_SEQUENCE_HEADER);
        assert_eq!(list[1].payload, &[0xaa, 0xbb]);
        assert_eq!(obus(&[0x0a, 0x05, 0x01]).count(), 0);
    }

    proptest! {
        #[test]
        fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = VideoConfig::from_av1_record(Bytes::from(data));
        }

        #[test]
        fn random_obus_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            for o in obus(&data) {
                let _ = max_frame_size(o.payload);
            }
        }
    }
}
