//! H.265: the `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3) and the picture size
//! from its SPS (ITU-T H.265 §7.3.2.2), conformance window applied.
//!
//! In-house for the same reason as [`super::avc`]: a handful of fields, a total parser.

use bytes::Bytes;

use super::avc::MAX_DIMENSION;
use super::bits::{BitReader, unescape_rbsp};
use super::cursor::Cursor;
use super::{CodecError, RecordKind, VideoCodec, VideoConfig};

/// More parameter sets (VPS + SPS + PPS) than this in one record is not a real encoder.
pub const MAX_PARAMETER_SETS: usize = 64;
/// More NAL arrays than this in one hvcC is not a real encoder (there are 64 NAL types).
const MAX_ARRAYS: usize = 64;
/// Bytes of the fixed part of an hvcC, up to and including `numOfArrays`.
const FIXED_HEADER_LEN: usize = 23;

pub const NAL_TYPE_VPS: u8 = 32;
pub const NAL_TYPE_SPS: u8 = 33;
pub const NAL_TYPE_PPS: u8 = 34;

impl VideoConfig {
    /// Parses an hvcC record (FLV HEVC sequence header / MP4 `hvcC` box).
    ///
    /// `parameter_sets` holds the VPS, SPS and PPS NAL units in that order (other arrays,
    /// such as SEI, are kept only in `record`). A record whose SPS cannot be parsed still
    /// yields a config, with width and height 0.
    pub fn from_hevc_record(record: Bytes) -> Result<VideoConfig, CodecError> {
        let kind = RecordKind::Hevc;
        let mut c = Cursor::new(kind, &record);
        let version = c.u8()?;
        // Version 0 was written by pre-standard muxers with the same layout; `00 00` is an
        // Annex B start code, not a record.
        if version > 1 || (version == 0 && record.get(1) == Some(&0)) {
            return Err(CodecError::UnsupportedVersion {
                record: kind,
                version,
            });
        }
        c.skip(FIXED_HEADER_LEN - 3)?;
        let nal_length_size = (c.u8()? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(CodecError::InvalidNalLengthSize {
                record: kind,
                size: nal_length_size,
            });
        }
        let arrays = usize::from(c.u8()?);
        if arrays > MAX_ARRAYS {
            return Err(CodecError::TooManyParameterSets {
                record: kind,
                count: arrays,
                limit: MAX_ARRAYS,
            });
        }
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..arrays {
            let nal_type = c.u8()? & 0x3f;
            let count = usize::from(c.u16()?);
            for _ in 0..count {
                let len = usize::from(c.u16()?);
                let nal = c.take(len)?;
                let list = match nal_type {
                    NAL_TYPE_VPS => &mut vps,
                    NAL_TYPE_SPS => &mut sps,
                    NAL_TYPE_PPS => &mut pps,
                    _ => continue,
                };
                list.push(nal);
                if vps.len() + sps.len() + pps.len() > MAX_PARAMETER_SETS {
                    return Err(CodecError::TooManyParameterSets {
                        record: kind,
                        count: vps.len() + sps.len() + pps.len(),
                        limit: MAX_PARAMETER_SETS,
                    });
                }
            }
        }
        let (width, height) = sps
            .first()
            .ok_or(CodecError::Missing {
                record: kind,
                what: "SPS",
            })
            .map(|s| sps_dimensions(s).unwrap_or((0, 0)))?;
        let mut parameter_sets = vps;
        parameter_sets.append(&mut sps);
        parameter_sets.append(&mut pps);
        Ok(VideoConfig {
            codec: VideoCodec::H265,
            record,
            width,
            height,
            nal_length_size,
            parameter_sets,
        })
    }
}

/// The NAL unit type of an H.265 NAL unit (first header byte).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

/// Whether `nal` is a VPS, SPS or PPS NAL unit.
pub fn is_parameter_set(nal: &[u8]) -> bool {
    matches!(
        nal_type(nal),
        Some(NAL_TYPE_VPS | NAL_TYPE_SPS | NAL_TYPE_PPS)
    )
}

/// Display size (conformance window applied) from an SPS NAL unit, 2-byte header included.
pub fn sps_dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape_rbsp(sps.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = usize::from(r.bits_u8(3)?);
    r.skip(1)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return None;
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    let mut width = u64::from(r.ue()?);
    let mut height = u64::from(r.ue()?);
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        width = width.checked_sub(sub_w * (u64::from(left) + u64::from(right)))?;
        height = height.checked_sub(sub_h * (u64::from(top) + u64::from(bottom)))?;
    }
    let width = u32::try_from(width).ok()?;
    let height = u32::try_from(height).ok()?;
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return None;
    }
    Some((width, height))
}

/// `profile_tier_level(1, sps_max_sub_layers_minus1)` (§7.3.3).
fn skip_profile_tier_level(r: &mut BitReader<'_>, max_sub_layers_minus1: usize) -> Option<()> {
    // general profile space..general_level_idc: 2+1+5+32+4+43+1 bits + 8 bits.
    r.skip(96)?;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        profile_present[i] = r.bit()?;
        level_present[i] = r.bit()?;
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip(2)?; // reserved_zero_2bits
        }
    }
    for i in 0..max_sub_layers_minus1 {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::bits::BitWriter;
    use proptest::prelude::*;

    // Parameter sets written by ffmpeg 9 / x265 for 320x240 (tests/.assets/hevc_aac.flv).
    const VPS: &str = "40010c01ffff01600000030090000003000003003c959009";
    const SPS: &str =
        "42010101600000030090000003000003003ca00a080f16595912930bc05a020000030002000003003210";
    const PPS: &str = "4401c073c189";
    const HEADER: &str = "0101600000009000000000003cf000fcfdf8f800000f";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    /// An hvcC with arrays in the order given (plus an SEI array to be skipped).
    pub(crate) fn record(order: &[(u8, &str)]) -> Vec<u8> {
        let mut out = hex(HEADER);
        out.push(u8::try_from(order.len()).unwrap_or(0));
        for (ty, nal) in order {
            let nal = hex(nal);
            out.push(0x80 | ty);
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&u16::try_from(nal.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&nal);
        }
        out
    }

    #[test]
    fn parses_x265_record() {
        let rec = record(&[
            (NAL_TYPE_VPS, VPS),
            (NAL_TYPE_SPS, SPS),
            (NAL_TYPE_PPS, PPS),
            (39, "4e01050102"),
        ]);
        let cfg = VideoConfig::from_hevc_record(Bytes::from(rec)).expect("valid");
        assert_eq!(cfg.codec, VideoCodec::H265);
        assert_eq!((cfg.width, cfg.height), (320, 240));
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.parameter_sets.len(), 3);
        let types: Vec<_> = cfg.parameter_sets.iter().map(|n| nal_type(n)).collect();
        assert_eq!(
            types,
            vec![Some(NAL_TYPE_VPS), Some(NAL_TYPE_SPS), Some(NAL_TYPE_PPS)]
        );
    }

    #[test]
    fn parameter_sets_are_reordered_vps_sps_pps() {
        let rec = record(&[
            (NAL_TYPE_PPS, PPS),
            (NAL_TYPE_SPS, SPS),
            (NAL_TYPE_VPS, VPS),
        ]);
        let cfg = VideoConfig::from_hevc_record(Bytes::from(rec)).expect("valid");
        let types: Vec<_> = cfg.parameter_sets.iter().map(|n| nal_type(n)).collect();
        assert_eq!(
            types,
            vec![Some(NAL_TYPE_VPS), Some(NAL_TYPE_SPS), Some(NAL_TYPE_PPS)]
        );
    }

    #[test]
    fn annex_b_is_not_a_record() {
        let mut data = vec![0, 0, 0, 1];
        data.extend(hex(VPS));
        assert!(matches!(
            VideoConfig::from_hevc_record(Bytes::from(data)),
            Err(CodecError::UnsupportedVersion { version: 0, .. })
        ));
    }

    #[test]
    fn record_without_sps_is_an_error() {
        let rec = record(&[(NAL_TYPE_VPS, VPS), (NAL_TYPE_PPS, PPS)]);
        assert!(matches!(
            VideoConfig::from_hevc_record(Bytes::from(rec)),
            Err(CodecError::Missing { what: "SPS", .. })
        ));
    }

    #[test]
    fn truncated_record_is_an_error() {
        let rec = record(&[
            (NAL_TYPE_VPS, VPS),
            (NAL_TYPE_SPS, SPS),
            (NAL_TYPE_PPS, PPS),
        ]);
        for len in 0..rec.len() {
            let r = VideoConfig::from_hevc_record(Bytes::copy_from_slice(&rec[..len]));
            assert!(r.is_err(), "len {len} accepted");
        }
    }

    /// A Main-profile SPS, 4:2:0, one sub-layer, with the given size and window.
    fn build_sps(width: u32, height: u32, window: Option<(u32, u32, u32, u32)>) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(0, 4).put(0, 3).put(1, 1); // vps id, max_sub_layers_minus1 0, nesting
        w.put(0x01, 8)
            .put(0x6000_0000, 32)
            .put(0x90, 8)
            .put(0, 40)
            .put(93, 8); // PTL
        w.ue(0).ue(1).ue(width).ue(height); // sps id, chroma 4:2:0, size
        match window {
            Some((l, r, t, b)) => {
                w.put(1, 1).ue(l).ue(r).ue(t).ue(b);
            }
            None => {
                w.put(0, 1);
            }
        }
        let mut out = vec![0x42, 0x01];
        out.extend(w.finish_rbsp());
        out
    }

    #[test]
    fn conformance_window_is_applied() {
        assert_eq!(sps_dimensions(&hex(SPS)), Some((320, 240)));
        assert_eq!(sps_dimensions(&hex(&SPS[..20])), None);
        // 1920x1088 coded, bottom offset 4 chroma rows (x2) → 1080 lines.
        let sps = build_sps(1920, 1088, Some((0, 0, 0, 4)));
        assert_eq!(sps_dimensions(&sps), Some((1920, 1080)));
        assert_eq!(
            sps_dimensions(&build_sps(1280, 720, None)),
            Some((1280, 720))
        );
        // A window larger than the picture is rejected, not wrapped.
        assert_eq!(
            sps_dimensions(&build_sps(64, 64, Some((40, 0, 0, 0)))),
            None
        );
    }

    proptest! {
        #[test]
        fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = VideoConfig::from_hevc_record(Bytes::from(data));
        }

        #[test]
        fn random_sps_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = sps_dimensions(&data);
        }
    }
}
