//! ADTS headers (ISO/IEC 13818-7 §6.2 / 14496-3 §1.A.2): MPEG-TS carries AAC as ADTS
//! (stream type 0x0F), so each raw AAC frame gets a 7-byte header without CRC.

use liverec_media::AudioConfig;

use super::error::MuxError;

pub const HEADER_SIZE: usize = 7;
/// `frame_length` is 13 bits and counts the header.
pub const MAX_FRAME_SIZE: usize = (1 << 13) - 1 - HEADER_SIZE;
/// Sampling frequencies by `sampling_frequency_index` (ISO/IEC 14496-3 Table 1.18).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
/// Audio object types 1–4 (Main, LC, SSR, LTP) fit ADTS's 2-bit profile field directly.
const MAX_DIRECT_OBJECT_TYPE: u8 = 4;
const OBJECT_TYPE_LC: u8 = 2;
/// HE-AAC (SBR) and HE-AACv2 (PS) are signalled implicitly: the header says AAC-LC and
/// the decoder finds the SBR/PS data in the frames.
const OBJECT_TYPE_SBR: u8 = 5;
const OBJECT_TYPE_PS: u8 = 29;
/// `channel_configuration` 7 is 7.1: eight channels.
const CHANNEL_CONFIG_7_1: u8 = 7;
const CHANNELS_7_1: u8 = 8;
const MAX_DIRECT_CHANNELS: u8 = 6;
/// `adts_buffer_fullness` 0x7FF: variable bit rate.
const BUFFER_FULLNESS_VBR: u16 = 0x7FF;

/// The fields of the ADTS header that are the same for every frame of a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adts {
    profile: u8,
    frequency_index: u8,
    channel_config: u8,
}

impl Adts {
    pub fn new(config: &AudioConfig) -> Result<Self, MuxError> {
        let object_type = match config.object_type {
            ot @ 1..=MAX_DIRECT_OBJECT_TYPE => ot,
            OBJECT_TYPE_SBR | OBJECT_TYPE_PS => OBJECT_TYPE_LC,
            other => return Err(MuxError::AdtsObjectType(other)),
        };
        let frequency_index = SAMPLE_RATES
            .iter()
            .position(|&rate| rate == config.sample_rate)
            .ok_or(MuxError::AdtsSampleRate(config.sample_rate))?;
        let channel_config = match config.channels {
            ch @ 1..=MAX_DIRECT_CHANNELS => ch,
            CHANNELS_7_1 => CHANNEL_CONFIG_7_1,
            other => return Err(MuxError::AdtsChannels(other)),
        };
        Ok(Self {
            profile: object_type - 1,
            frequency_index: frequency_index as u8,
            channel_config,
        })
    }

    /// The header of a frame of `payload_len` raw AAC bytes.
    pub fn header(&self, payload_len: usize) -> Result<[u8; HEADER_SIZE], MuxError> {
        if payload_len > MAX_FRAME_SIZE {
            return Err(MuxError::AacFrameTooLarge {
                len: payload_len,
                max: MAX_FRAME_SIZE,
            });
        }
        let frame_len = (payload_len + HEADER_SIZE) as u16;
        Ok([
            0xFF,
            0xF1, // syncword end, MPEG-4, layer 0, protection_absent
            (self.profile << 6) | (self.frequency_index << 2) | (self.channel_config >> 2),
            ((self.channel_config & 0x3) << 6) | (frame_len >> 11) as u8,
            (frame_len >> 3) as u8,
            (((frame_len & 0x7) as u8) << 5) | (BUFFER_FULLNESS_VBR >> 6) as u8,
            (((BUFFER_FULLNESS_VBR & 0x3F) as u8) << 2), // one raw data block
        ])
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use liverec_media::AudioCodec;

    use super::*;

    fn config(object_type: u8, sample_rate: u32, channels: u8) -> AudioConfig {
        AudioConfig {
            codec: AudioCodec::Aac,
            specific: Bytes::new(),
            object_type,
            sample_rate,
            channels,
        }
    }

    #[test]
    fn lc_44100_mono() {
        let adts = Adts::new(&config(2, 44_100, 1)).map(|a| a.header(200));
        // profile 1, index 4, channels 1, frame length 207 = 0b0_0000_1100_1111.
        assert_eq!(adts, Ok(Ok([0xFF, 0xF1, 0x50, 0x40, 0x19, 0xFF, 0xFC])));
    }

    #[test]
    fn lc_48000_stereo_long_frame() {
        let adts = Adts::new(&config(2, 48_000, 2)).map(|a| a.header(4000));
        // frame length 4007 = 0b0_1111_1010_0111.
        assert_eq!(adts, Ok(Ok([0xFF, 0xF1, 0x4C, 0x81, 0xF4, 0xFF, 0xFC])));
    }

    #[test]
    fn seven_one_and_he_aac() {
        let adts = Adts::new(&config(5, 24_000, 8)).map(|a| a.header(0));
        // LC, index 6, channel config 7 (high bit in byte 2), length 7.
        assert_eq!(adts, Ok(Ok([0xFF, 0xF1, 0x59, 0xC0, 0x00, 0xFF, 0xFC])));
    }

    #[test]
    fn unsupported_parameters_are_errors() {
        assert_eq!(
            Adts::new(&config(42, 44_100, 2)),
            Err(MuxError::AdtsObjectType(42))
        );
        assert_eq!(
            Adts::new(&config(2, 44_000, 2)),
            Err(MuxError::AdtsSampleRate(44_000))
        );
        assert_eq!(
            Adts::new(&config(2, 44_100, 0)),
            Err(MuxError::AdtsChannels(0))
        );
        assert_eq!(
            Adts::new(&config(2, 44_100, 7)),
            Err(MuxError::AdtsChannels(7))
        );
    }

    #[test]
    fn frame_length_limit() {
        let adts = Adts::new(&config(2, 44_100, 2));
        assert!(adts.is_ok_and(|a| a.header(MAX_FRAME_SIZE).is_ok()
            && a.header(MAX_FRAME_SIZE + 1)
                == Err(MuxError::AacFrameTooLarge {
                    len: MAX_FRAME_SIZE + 1,
                    max: MAX_FRAME_SIZE
                })));
    }
}
