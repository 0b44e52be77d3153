//! H.264: the `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3) and the picture size
//! from its SPS (ITU-T H.264 §7.3.2.1.1).
//!
//! Parsed in-house with a small bit reader rather than scuffle-h264: only the fields up to
//! the frame cropping are needed, and the reader can be made total (no panic on any input).

use bytes::Bytes;

use super::bits::{BitReader, unescape_rbsp};
use super::cursor::Cursor;
use super::{CodecError, RecordKind, VideoCodec, VideoConfig};

/// More parameter sets than this in one record is not a real encoder.
pub const MAX_PARAMETER_SETS: usize = 64;
/// Largest picture dimension accepted from an SPS (pixels); larger is treated as unparsable.
pub const MAX_DIMENSION: u32 = 16_384;
/// `num_ref_frames_in_pic_order_cnt_cycle` is at most 255 (§7.4.2.1.1).
const MAX_POC_CYCLE: u32 = 255;
/// `seq_parameter_set_id` is at most 31.
const MAX_SPS_ID: u32 = 31;

const NAL_TYPE_SPS: u8 = 7;
const NAL_TYPE_PPS: u8 = 8;

impl VideoConfig {
    /// Parses an avcC record (the body of an FLV AVC sequence header / MP4 `avcC` box).
    ///
    /// The parameter sets are zero-copy slices of `record`. A record whose SPS cannot be
    /// parsed still yields a config, with width and height 0.
    pub fn from_avc_record(record: Bytes) -> Result<VideoConfig, CodecError> {
        let kind = RecordKind::Avc;
        let mut c = Cursor::new(kind, &record);
        let version = c.u8()?;
        if version != 1 {
            return Err(CodecError::UnsupportedVersion {
                record: kind,
                version,
            });
        }
        c.skip(3)?; // profile, compatibility, level
        let nal_length_size = (c.u8()? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(CodecError::InvalidNalLengthSize {
                record: kind,
                size: nal_length_size,
            });
        }
        let sps_count = usize::from(c.u8()? & 0x1f);
        let mut parameter_sets = Vec::with_capacity(sps_count + 1);
        for _ in 0..sps_count {
            let len = usize::from(c.u16()?);
            parameter_sets.push(c.take(len)?);
        }
        let pps_count = usize::from(c.u8()?);
        if sps_count + pps_count > MAX_PARAMETER_SETS {
            return Err(CodecError::TooManyParameterSets {
                record: kind,
                count: sps_count + pps_count,
                limit: MAX_PARAMETER_SETS,
            });
        }
        for _ in 0..pps_count {
            let len = usize::from(c.u16()?);
            parameter_sets.push(c.take(len)?);
        }
        // High-profile records may carry chroma/bit-depth/SPS-ext fields after this; they
        // repeat what the SPS says and are not needed.
        let sps = parameter_sets
            .iter()
            .take(sps_count)
            .find(|n| n.first().map(|b| b & 0x1f) == Some(NAL_TYPE_SPS))
            .ok_or(CodecError::Missing {
                record: kind,
                what: "SPS",
            })?;
        let (width, height) = sps_dimensions(sps).unwrap_or((0, 0));
        Ok(VideoConfig {
            codec: VideoCodec::H264,
            record,
            width,
            height,
            nal_length_size,
            parameter_sets,
        })
    }
}

/// The NAL unit type of an H.264 NAL unit (first byte).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// Whether `nal` is an SPS or PPS NAL unit.
pub fn is_parameter_set(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(NAL_TYPE_SPS | NAL_TYPE_PPS))
}

/// Display size (after frame cropping) from an SPS NAL unit, header byte included.
pub fn sps_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape_rbsp(sps.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits_u8(8)?;
    r.skip(16)?; // constraint flags, level_idc
    if r.ue()? > MAX_SPS_ID {
        return None;
    }
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > MAX_POC_CYCLE {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_map_units * 16 * field_factor;
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_x, crop_y) = match chroma_array_type {
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let crop_w = crop_x * (u64::from(left) + u64::from(right));
        let crop_h = crop_y * (u64::from(top) + u64::from(bottom));
        width = width.checked_sub(crop_w)?;
        height = height.checked_sub(crop_h)?;
    }
    let width = u32::try_from(width).ok()?;
    let height = u32::try_from(height).ok()?;
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return None;
    }
    Some((width, height))
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.se()?);
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::bits::BitWriter;
    use proptest::prelude::*;

    /// avcC written by ffmpeg 5.1 / x264 for 320x240 High profile (tests/.assets/h264_aac.flv).
    pub(crate) const AVCC_320X240: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x04, 0x68, 0xef, 0x8f, 0xcb, 0xfd, 0xf8, 0xf8, 0x00,
    ];

    #[test]
    fn parses_x264_record() {
        let cfg =
            VideoConfig::from_avc_record(Bytes::from_static(AVCC_320X240)).expect("valid record");
        assert_eq!(cfg.codec, VideoCodec::H264);
        assert_eq!((cfg.width, cfg.height), (320, 240));
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.parameter_sets.len(), 2);
        assert_eq!(nal_type(&cfg.parameter_sets[0]), Some(NAL_TYPE_SPS));
        assert_eq!(nal_type(&cfg.parameter_sets[1]), Some(NAL_TYPE_PPS));
        assert_eq!(cfg.parameter_sets[1].len(), 4);
    }

    #[test]
    fn cropping_is_applied_for_1080p() {
        // Baseline SPS 1920x1080: 120x68 MBs, crop bottom 4 (x2 = 8 lines).
        // Built with a bit writer to exercise frame_cropping.
        let sps = build_baseline_sps(120, 68, Some((0, 0, 0, 4)));
        assert_eq!(sps_dimensions(&sps), Some((1920, 1080)));
        let sps = build_baseline_sps(20, 15, None);
        assert_eq!(sps_dimensions(&sps), Some((320, 240)));
    }

    #[test]
    fn truncated_record_is_an_error() {
        for len in 0..AVCC_320X240.len() - 4 {
            let r = VideoConfig::from_avc_record(Bytes::copy_from_slice(&AVCC_320X240[..len]));
            assert!(r.is_err(), "len {len} accepted");
        }
    }

    #[test]
    fn wrong_version_and_length_size_are_errors() {
        let mut rec = AVCC_320X240.to_vec();
        rec[0] = 0;
        assert!(matches!(
            VideoConfig::from_avc_record(Bytes::from(rec)),
            Err(CodecError::UnsupportedVersion { version: 0, .. })
        ));
        let mut rec = AVCC_320X240.to_vec();
        rec[4] = 0xfe;
        assert!(matches!(
            VideoConfig::from_avc_record(Bytes::from(rec)),
            Err(CodecError::InvalidNalLengthSize { size: 3, .. })
        ));
    }

    #[test]
    fn broken_sps_gives_zero_size() {
        let mut rec = AVCC_320X240.to_vec();
        // Keep the NAL header, make the SPS body all ones after profile: ue overflow.
        for b in &mut rec[12..33] {
            *b = 0;
        }
        let cfg = VideoConfig::from_avc_record(Bytes::from(rec)).expect("structure is valid");
        assert_eq!((cfg.width, cfg.height), (0, 0));
    }

    /// Writes a Baseline-profile SPS (profile 66) with the given size in macroblocks.
    fn build_baseline_sps(w_mbs: u32, h_mbs: u32, crop: Option<(u32, u32, u32, u32)>) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(66, 8).put(0, 8).put(40, 8);
        w.ue(0).ue(0).ue(2).ue(1); // sps id, log2_max_frame_num, poc type 2, max refs
        w.put(0, 1).ue(w_mbs - 1).ue(h_mbs - 1);
        w.put(1, 1).put(1, 1); // frame_mbs_only, direct_8x8
        match crop {
            Some((l, r, t, b)) => {
                w.put(1, 1).ue(l).ue(r).ue(t).ue(b);
            }
            None => {
                w.put(0, 1);
            }
        }
        w.put(0, 1); // vui
        let mut out = vec![0x67];
        out.extend(w.finish_rbsp());
        out
    }

    proptest! {
        #[test]
        fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = VideoConfig::from_avc_record(Bytes::from(data));
        }

        #[test]
        fn random_sps_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Some((w, h)) = sps_dimensions(&data) {
                prop_assert!(w > 0 && h > 0 && w <= MAX_DIMENSION && h <= MAX_DIMENSION);
            }
        }

        #[test]
        fn valid_records_with_random_tail_parse(tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut rec = AVCC_320X240.to_vec();
            rec.extend_from_slice(&tail);
            let cfg = VideoConfig::from_avc_record(Bytes::from(rec));
            prop_assert!(cfg.is_ok());
        }
    }
}
