//! PES packet headers (ISO/IEC 13818-1 §2.4.3.6) with PTS and DTS.

use bytes::{BufMut, BytesMut};

use super::packet::CLOCK_MODULUS;

/// `stream_id` of the first video / audio elementary stream.
pub const STREAM_ID_VIDEO: u8 = 0xE0;
pub const STREAM_ID_AUDIO: u8 = 0xC0;
/// The longest header written here: 9 fixed bytes plus PTS and DTS.
pub const MAX_HEADER_SIZE: usize = 9 + 2 * TIMESTAMP_SIZE;
const TIMESTAMP_SIZE: usize = 5;
/// Bytes of the header after `PES_packet_length`, before the optional fields.
const FLAGS_SIZE: usize = 3;
/// `PES_packet_length` is 16 bits; a longer video PES says 0 ("unbounded"), which
/// ISO/IEC 13818-1 allows for video in transport streams.
const MAX_PES_PACKET_LENGTH: usize = 0xFFFF;
/// '10' marker bits, not scrambled, no priority, `data_alignment_indicator` set: every PES
/// starts with an access unit.
const FLAGS1: u8 = 0x84;
const PTS_ONLY: u8 = 0x80;
const PTS_AND_DTS: u8 = 0xC0;
/// The 4-bit prefixes of the timestamp fields.
const PREFIX_PTS_ALONE: u8 = 0x2;
const PREFIX_PTS_WITH_DTS: u8 = 0x3;
const PREFIX_DTS: u8 = 0x1;

/// Appends a PES header for `payload_len` bytes of elementary stream data. Timestamps are
/// 90 kHz ticks, taken modulo 2^33; `dts` is written only when it differs from `pts`.
pub fn write_header(
    out: &mut BytesMut,
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: usize,
) {
    let dts = dts.filter(|&dts| dts % CLOCK_MODULUS != pts % CLOCK_MODULUS);
    let header_data_len = if dts.is_some() {
        2 * TIMESTAMP_SIZE
    } else {
        TIMESTAMP_SIZE
    };
    let packet_len = FLAGS_SIZE + header_data_len + payload_len;
    let packet_len = if packet_len > MAX_PES_PACKET_LENGTH {
        0
    } else {
        packet_len as u16
    };
    out.put_slice(&[0, 0, 1, stream_id]);
    out.put_u16(packet_len);
    out.put_u8(FLAGS1);
    match dts {
        Some(dts) => {
            out.put_u8(PTS_AND_DTS);
            out.put_u8(header_data_len as u8);
            out.put_slice(&encode_timestamp(PREFIX_PTS_WITH_DTS, pts));
            out.put_slice(&encode_timestamp(PREFIX_DTS, dts));
        }
        None => {
            out.put_u8(PTS_ONLY);
            out.put_u8(header_data_len as u8);
            out.put_slice(&encode_timestamp(PREFIX_PTS_ALONE, pts));
        }
    }
}

/// A 33-bit timestamp as 3 + 15 + 15 bits, each group followed by a marker bit.
fn encode_timestamp(prefix: u8, ts: u64) -> [u8; TIMESTAMP_SIZE] {
    let ts = ts % CLOCK_MODULUS;
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8 & 0x7F) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8 & 0x7F) << 1) | 1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_with_pts_and_dts() {
        let mut out = BytesMut::new();
        // PTS 1.48 s + 1.4 s offset style values: 259_200 and 255_600 ticks.
        write_header(&mut out, STREAM_ID_VIDEO, 259_200, Some(255_600), 1000);
        assert_eq!(out.len(), MAX_HEADER_SIZE);
        // 259_200 = 0x3_F480: bits 32..30 = 0, 29..15 = 0x7 (0x3F480 >> 15 = 7),
        // 14..0 = 0x3F480 & 0x7FFF = 0x7480.
        // byte0 = 0011 000 1, byte1 = 0x7>>7 = 0x00, byte2 = (0x7 & 0x7F) << 1 | 1 = 0x0F,
        // byte3 = 0x7480 >> 7 = 0xE9, byte4 = (0x7480 & 0x7F) << 1 | 1 = 0x01.
        // 255_600 = 0x3_E670: 29..15 = 7, 14..0 = 0x6670 → 0xCC, 0xE1.
        let len = (3 + 10 + 1000) as u16;
        assert_eq!(
            &out[..],
            &[
                0x00,
                0x00,
                0x01,
                0xE0, // start code, stream id
                (len >> 8) as u8,
                len as u8, // PES_packet_length
                0x84,
                0xC0,
                10, // flags, PTS+DTS, header data length
                0x31,
                0x00,
                0x0F,
                0xE9,
                0x01, // PTS
                0x11,
                0x00,
                0x0F,
                0xCC,
                0xE1, // DTS
            ]
        );
    }

    #[test]
    fn header_with_pts_only_when_dts_is_equal() {
        let mut out = BytesMut::new();
        write_header(&mut out, STREAM_ID_AUDIO, 126_000, Some(126_000), 20);
        // 126_000 = 0x1_EC30: 29..15 = 3, 14..0 = 0x6C30.
        assert_eq!(
            &out[..],
            &[
                0x00, 0x00, 0x01, 0xC0, 0x00, 28, 0x84, 0x80, 5, //
                0x21, 0x00, 0x07, 0xD8, 0x61,
            ]
        );
    }

    #[test]
    fn top_bit_of_a_33_bit_timestamp() {
        let ts = (1u64 << 32) | 1;
        assert_eq!(
            encode_timestamp(PREFIX_DTS, ts),
            [0x19, 0x00, 0x01, 0x00, 0x03]
        );
        // Values past 2^33 wrap instead of spilling into the prefix.
        assert_eq!(
            encode_timestamp(PREFIX_DTS, ts + CLOCK_MODULUS),
            encode_timestamp(PREFIX_DTS, ts)
        );
    }

    #[test]
    fn oversized_video_pes_is_unbounded() {
        let mut out = BytesMut::new();
        write_header(&mut out, STREAM_ID_VIDEO, 0, None, 70_000);
        assert_eq!(&out[4..6], &[0, 0]);
        out.clear();
        write_header(&mut out, STREAM_ID_VIDEO, 0, None, 0xFFFF - 8);
        assert_eq!(&out[4..6], &[0xFF, 0xFF]);
    }
}
