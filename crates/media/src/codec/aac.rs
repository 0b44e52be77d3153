//! AAC: the `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1).
//!
//! For HE-AAC (SBR, PS) the config keeps the *core* object type and sampling rate, which is
//! what ADTS headers carry and what makes 1024 samples the frame duration; with explicit
//! signalling (object type 5 or 29) the core type follows the extension rate, with implicit
//! signalling the core fields are the only ones read.

use bytes::Bytes;

use super::bits::BitReader;
use super::{AudioCodec, AudioConfig, CodecError, RecordKind};

/// `samplingFrequencyIndex` → Hz (13 and 14 reserved, 15 explicit).
pub const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
/// An explicit sampling frequency above this is not audio liverec can record.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
const EXPLICIT_RATE_INDEX: u8 = 15;
const AOT_ESCAPE: u8 = 31;
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;
/// Object types with a GASpecificConfig (the AAC family) (§1.6.2.1, table 1.15).
const GA_OBJECT_TYPES: [u8; 12] = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23];

impl AudioConfig {
    /// Parses an AAC AudioSpecificConfig (FLV AAC sequence header / MP4 `esds` DSI).
    pub fn from_aac_specific_config(specific: Bytes) -> Result<AudioConfig, CodecError> {
        let truncated = |r: &BitReader<'_>| CodecError::Truncated {
            record: RecordKind::Aac,
            offset: r.byte_pos(),
            needed: 1,
        };
        let mut r = BitReader::new(&specific);
        let mut object_type = object_type(&mut r).ok_or_else(|| truncated(&r))?;
        let sample_rate = sample_rate(&mut r)?;
        let channel_config = r.bits_u8(4).ok_or_else(|| truncated(&r))?;
        if object_type == AOT_SBR || object_type == AOT_PS {
            // Explicit hierarchical signalling: extension rate, then the core object type.
            let _extension_rate = self::sample_rate(&mut r)?;
            object_type = self::object_type(&mut r).ok_or_else(|| truncated(&r))?;
        }
        if !GA_OBJECT_TYPES.contains(&object_type) {
            return Err(CodecError::UnsupportedObjectType(object_type));
        }
        let channels = match channel_config {
            0 => program_config_channels(&mut r).ok_or_else(|| truncated(&r))?,
            1..=6 => channel_config,
            7 | 12 | 14 => 8,
            11 => 7,
            13 => 24,
            other => return Err(CodecError::InvalidChannelConfig(other)),
        };
        Ok(AudioConfig {
            codec: AudioCodec::Aac,
            specific,
            object_type,
            sample_rate,
            channels,
        })
    }
}

/// `GetAudioObjectType()`; 0 (null) is rejected.
fn object_type(r: &mut BitReader<'_>) -> Option<u8> {
    let ty = r.bits_u8(5)?;
    let ty = if ty == AOT_ESCAPE {
        32 + r.bits_u8(6)?
    } else {
        ty
    };
    Some(ty)
}

/// `samplingFrequencyIndex`, with the explicit 24-bit frequency when it is 15.
fn sample_rate(r: &mut BitReader<'_>) -> Result<u32, CodecError> {
    let truncated = |r: &BitReader<'_>| CodecError::Truncated {
        record: RecordKind::Aac,
        offset: r.byte_pos(),
        needed: 1,
    };
    let index = r.bits_u8(4).ok_or_else(|| truncated(r))?;
    if index == EXPLICIT_RATE_INDEX {
        let rate = r.bits_u32(24).ok_or_else(|| truncated(r))?;
        if rate == 0 || rate > MAX_SAMPLE_RATE {
            return Err(CodecError::InvalidSampleRate(rate));
        }
        return Ok(rate);
    }
    SAMPLE_RATES
        .get(usize::from(index))
        .copied()
        .ok_or(CodecError::InvalidSampleRateIndex(index))
}

/// Channel count from the `program_config_element` of a GASpecificConfig whose
/// channelConfiguration is 0 (§4.4.1.1). Returns `None` on truncation.
fn program_config_channels(r: &mut BitReader<'_>) -> Option<u8> {
    // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder (+14 bits), extensionFlag.
    r.skip(1)?;
    if r.bit()? {
        r.skip(14)?;
    }
    r.skip(1)?;
    // program_config_element
    r.skip(4 + 2 + 4)?; // element_instance_tag, object_type, sampling_frequency_index
    let front = r.bits_u32(4)?;
    let side = r.bits_u32(4)?;
    let back = r.bits_u32(4)?;
    let lfe = r.bits_u32(2)?;
    r.skip(3 + 4)?; // num_assoc_data_elements, num_valid_cc_elements
    for _ in 0..3 {
        // mono / stereo mixdown (4 bits), matrix mixdown (3 bits)
        if r.bit()? {
            r.skip(4)?;
        }
    }
    let mut channels = lfe;
    for _ in 0..front + side + back {
        let is_cpe = r.bit()?;
        r.skip(4)?;
        channels += if is_cpe { 2 } else { 1 };
    }
    u8::try_from(channels).ok().filter(|c| *c > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &'static [u8]) -> Result<AudioConfig, CodecError> {
        AudioConfig::from_aac_specific_config(Bytes::from_static(bytes))
    }

    #[test]
    fn aac_lc_44100_mono() {
        // ffmpeg's: 0x12 0x08 (+ GASpecificConfig tail from tests/.assets/*.flv)
        let cfg = parse(&[0x12, 0x08, 0x56, 0xe5, 0x00]).expect("valid");
        assert_eq!(cfg.object_type, 2);
        assert_eq!(cfg.sample_rate, 44_100);
        assert_eq!(cfg.channels, 1);
        assert_eq!(cfg.codec, AudioCodec::Aac);
    }

    #[test]
    fn aac_lc_48000_stereo() {
        let cfg = parse(&[0x11, 0x90]).expect("valid");
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (2, 48_000, 2)
        );
    }

    #[test]
    fn explicit_frequency() {
        // AOT 2, index 15, 0x00_AC44 (44100), channels 2:
        // 00010 1111 000000001010110001000100 0010 000
        let cfg = parse(&[0x17, 0x80, 0x56, 0x22, 0x10]).expect("valid");
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (2, 44_100, 2)
        );
        assert!(matches!(
            parse(&[0x17, 0x80, 0x00, 0x00, 0x10]),
            Err(CodecError::InvalidSampleRate(0))
        ));
    }

    #[test]
    fn explicit_sbr_keeps_core_type_and_rate() {
        // AOT 5, index 6 (24000), ch 2, ext index 3 (48000), AOT 2:
        // 00101 0110 0010 0011 00010 00
        let cfg = parse(&[0x2b, 0x11, 0x88, 0x00]).expect("valid");
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (2, 24_000, 2)
        );
    }

    #[test]
    fn explicit_ps_mono_core() {
        // AOT 29, index 6 (24000), ch 1, ext index 3, AOT 2:
        // 11101 0110 0001 0011 00010 00
        let cfg = parse(&[0xeb, 0x09, 0x88, 0x00]).expect("valid");
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (2, 24_000, 1)
        );
    }

    #[test]
    fn reserved_values_are_errors() {
        // index 13
        assert!(matches!(
            parse(&[0x16, 0x88]),
            Err(CodecError::InvalidSampleRateIndex(13))
        ));
        // channel config 8
        assert!(matches!(
            parse(&[0x12, 0x40]),
            Err(CodecError::InvalidChannelConfig(8))
        ));
        // object type 0
        assert!(matches!(
            parse(&[0x02, 0x08]),
            Err(CodecError::UnsupportedObjectType(0))
        ));
        assert!(parse(&[0x12]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn program_config_element_channels() {
        // AOT 2, idx 4, ch 0; GASpecificConfig 0 0 0; PCE: tag 0, obj 1, idx 4,
        // front 2 (1 SCE, 1 CPE), side 0, back 1 (CPE), lfe 1, assoc 0, cc 0, 3x no mixdown,
        // front: 0 0000, 1 0000; back: 1 0001 → 1 + 2 + 2 + 1 = 6
        let bits =
            "00010 0100 0000 000 0000 01 0100 0010 0000 0001 01 000 0000 000 0 0000 1 0000 1 0001";
        let bits: String = bits.chars().filter(|c| !c.is_whitespace()).collect();
        let mut bytes = Vec::new();
        for chunk in bits.as_bytes().chunks(8) {
            let mut b = 0u8;
            for (i, c) in chunk.iter().enumerate() {
                if *c == b'1' {
                    b |= 0x80 >> i;
                }
            }
            bytes.push(b);
        }
        let cfg = AudioConfig::from_aac_specific_config(Bytes::from(bytes)).expect("valid");
        assert_eq!(cfg.channels, 6);
    }

    proptest! {
        #[test]
        fn random_configs_never_panic(data in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Ok(cfg) = AudioConfig::from_aac_specific_config(Bytes::from(data)) {
                prop_assert!(cfg.channels > 0);
                prop_assert!(cfg.sample_rate > 0 && cfg.sample_rate <= MAX_SAMPLE_RATE);
            }
        }
    }
}
