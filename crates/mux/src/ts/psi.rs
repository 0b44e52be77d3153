//! Program specific information (ISO/IEC 13818-1 §2.4.4): the PAT and the PMT of the one
//! program a recording holds. Both are fixed for the life of a muxer, so they are built once.

use bytes::{BufMut, BytesMut};

pub const PAT_PID: u16 = 0x0000;
const TABLE_ID_PAT: u8 = 0x00;
const TABLE_ID_PMT: u8 = 0x02;
const TRANSPORT_STREAM_ID: u16 = 1;
const PROGRAM_NUMBER: u16 = 1;
/// `section_syntax_indicator` 1, '0', two reserved bits; the high nibble of section_length.
const SECTION_SYNTAX: u16 = 0xB000;
/// Reserved bits, `version_number` 0, `current_next_indicator` 1.
const VERSION_CURRENT: u8 = 0xC1;
/// Three reserved bits set above a 13-bit PID.
const RESERVED_PID: u16 = 0xE000;
/// Four reserved bits set above a 12-bit length.
const RESERVED_LENGTH: u16 = 0xF000;
const CRC_SIZE: usize = 4;

/// One elementary stream of the PMT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    pub stream_type: u8,
    pub pid: u16,
}

/// Appends the PAT section: program 1 at `pmt_pid`.
pub fn write_pat(out: &mut BytesMut, pmt_pid: u16) {
    let start = out.len();
    // After section_length: ts id (2), version (1), section numbers (2), one program (4), CRC.
    let section_length = 5 + 4 + CRC_SIZE;
    out.put_u8(TABLE_ID_PAT);
    out.put_u16(SECTION_SYNTAX | section_length as u16);
    out.put_u16(TRANSPORT_STREAM_ID);
    out.put_u8(VERSION_CURRENT);
    out.put_u8(0); // section_number
    out.put_u8(0); // last_section_number
    out.put_u16(PROGRAM_NUMBER);
    out.put_u16(RESERVED_PID | pmt_pid);
    let crc = crc32_mpeg2(&out[start..]);
    out.put_u32(crc);
}

/// Appends the PMT section of program 1: `pcr_pid`, then `streams` without descriptors.
pub fn write_pmt(out: &mut BytesMut, pcr_pid: u16, streams: &[Stream]) {
    let start = out.len();
    // After section_length: program (2), version (1), section numbers (2), PCR PID (2),
    // program_info_length (2), 5 bytes per stream, CRC.
    let section_length = 9 + 5 * streams.len() + CRC_SIZE;
    out.put_u8(TABLE_ID_PMT);
    out.put_u16(SECTION_SYNTAX | section_length as u16);
    out.put_u16(PROGRAM_NUMBER);
    out.put_u8(VERSION_CURRENT);
    out.put_u8(0);
    out.put_u8(0);
    out.put_u16(RESERVED_PID | pcr_pid);
    out.put_u16(RESERVED_LENGTH); // program_info_length 0
    for stream in streams {
        out.put_u8(stream.stream_type);
        out.put_u16(RESERVED_PID | stream.pid);
        out.put_u16(RESERVED_LENGTH); // ES_info_length 0
    }
    let crc = crc32_mpeg2(&out[start..]);
    out.put_u32(crc);
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial value all ones, no reflection, no final
/// XOR (ISO/IEC 13818-1 Annex A).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &byte| {
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ byte)]
    })
}

const CRC_POLY: u32 = 0x04C1_1DB7;
const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ CRC_POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The catalogue check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn pat_matches_ffmpeg() {
        let mut out = BytesMut::new();
        write_pat(&mut out, 0x1000);
        // The PAT section ffmpeg writes for one program with its PMT at 0x1000.
        assert_eq!(
            &out[..],
            &[
                0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x2A, 0xB1,
                0x04, 0xB2
            ]
        );
        // A section including its CRC has a CRC of zero.
        assert_eq!(crc32_mpeg2(&out), 0);
    }

    #[test]
    fn pmt_lists_streams_with_reserved_bits() {
        let mut out = BytesMut::new();
        let streams = [
            Stream {
                stream_type: 0x1B,
                pid: 0x100,
            },
            Stream {
                stream_type: 0x0F,
                pid: 0x101,
            },
        ];
        write_pmt(&mut out, 0x100, &streams);
        assert_eq!(
            &out[..out.len() - 4],
            &[
                0x02, 0xB0, 0x17, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1, 0x00, 0xF0, 0x00, //
                0x1B, 0xE1, 0x00, 0xF0, 0x00, //
                0x0F, 0xE1, 0x01, 0xF0, 0x00,
            ]
        );
        assert_eq!(crc32_mpeg2(&out), 0);
    }
}
