//! Transport stream packets (ISO/IEC 13818-1 §2.4.3.2): one PES packet or PSI section cut
//! into 188-byte packets, with the adaptation field carrying PCR, the random access flag and
//! the stuffing of the last packet.

use bytes::{BufMut, BytesMut};

pub const PACKET_SIZE: usize = 188;
pub const SYNC_BYTE: u8 = 0x47;
const HEADER_SIZE: usize = 4;
/// Bytes after the 4-byte header: adaptation field plus payload.
const BODY_SIZE: usize = PACKET_SIZE - HEADER_SIZE;
/// `payload_unit_start_indicator` in the second header byte.
const PUSI: u8 = 0x40;
const PID_MAX: u16 = 0x1FFF;
/// `adaptation_field_control` values, already shifted into the fourth header byte.
const AFC_PAYLOAD_ONLY: u8 = 0x10;
const AFC_ADAPTATION_AND_PAYLOAD: u8 = 0x30;
/// Adaptation field length byte plus its flags byte.
const AF_FIXED_SIZE: usize = 2;
const PCR_SIZE: usize = 6;
const AF_FLAG_RANDOM_ACCESS: u8 = 0x40;
const AF_FLAG_PCR: u8 = 0x10;
const STUFFING_BYTE: u8 = 0xFF;
/// PCR base and PTS/DTS are 33-bit counters of a 90 kHz clock.
pub const CLOCK_MODULUS: u64 = 1 << 33;

/// The 4-bit continuity counter of one PID. It counts packets that carry payload, so a
/// demuxer can spot a lost packet; it runs on across segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Continuity(u8);

impl Continuity {
    /// The counter for the next packet; advances it.
    pub fn next(&mut self) -> u8 {
        let current = self.0;
        self.0 = (self.0 + 1) & 0x0F;
        current
    }
}

/// What the adaptation field of the first packet of a PES carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartFlags {
    /// Program clock reference, 90 kHz base (the 27 MHz extension is always 0).
    pub pcr: Option<u64>,
    /// The PES starts a random access point (a keyframe).
    pub random_access: bool,
}

/// How many packets [`write_pes`] makes of `payload_len` bytes: an upper bound used to
/// reserve `out` once per PES.
pub fn packet_count(payload_len: usize, flags: StartFlags) -> usize {
    let first_room = BODY_SIZE - start_fields_size(flags);
    if payload_len <= first_room {
        1
    } else {
        1 + (payload_len - first_room).div_ceil(BODY_SIZE)
    }
}

fn start_fields_size(flags: StartFlags) -> usize {
    match (flags.pcr.is_some(), flags.random_access) {
        (false, false) => 0,
        (has_pcr, _) => AF_FIXED_SIZE + if has_pcr { PCR_SIZE } else { 0 },
    }
}

/// Appends `payload` (one whole PES packet) as packets of `pid`. The first packet sets
/// `payload_unit_start_indicator` and carries `flags`; the last one is filled up with
/// adaptation field stuffing, so every packet is exactly [`PACKET_SIZE`] bytes. Returns the
/// number of bytes appended.
pub fn write_pes(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut Continuity,
    flags: StartFlags,
    payload: &[u8],
) -> usize {
    let packets = packet_count(payload.len(), flags);
    out.reserve(packets * PACKET_SIZE);
    let mut rest = payload;
    let mut first = true;
    loop {
        let start = if first { flags } else { StartFlags::default() };
        let fields = start_fields_size(start);
        let room = BODY_SIZE - fields;
        let (chunk, tail) = rest.split_at(rest.len().min(room));
        let stuffing = room - chunk.len();
        let af_size = fields + stuffing;

        out.put_slice(&header(pid, first, af_size > 0, cc.next()));
        if af_size == 1 {
            // A single byte of stuffing: an adaptation field of length 0, no flags byte.
            out.put_u8(0);
        } else if af_size >= AF_FIXED_SIZE {
            out.put_u8((af_size - 1) as u8);
            let mut af_flags = 0;
            if start.random_access {
                af_flags |= AF_FLAG_RANDOM_ACCESS;
            }
            if start.pcr.is_some() {
                af_flags |= AF_FLAG_PCR;
            }
            out.put_u8(af_flags);
            let mut used = AF_FIXED_SIZE;
            if let Some(pcr) = start.pcr {
                out.put_slice(&encode_pcr(pcr));
                used += PCR_SIZE;
            }
            out.put_bytes(STUFFING_BYTE, af_size - used);
        }
        out.put_slice(chunk);

        rest = tail;
        first = false;
        if rest.is_empty() {
            break;
        }
    }
    packets * PACKET_SIZE
}

/// Appends one packet holding a PSI `section` (PAT or PMT): `pointer_field` 0, the section,
/// then 0xFF filler (PSI packets pad after the section, not in an adaptation field).
/// Sections longer than one packet are not needed here: ours are a few dozen bytes.
pub fn write_section(out: &mut [u8; PACKET_SIZE], pid: u16, section: &[u8]) {
    out.fill(STUFFING_BYTE);
    out[..HEADER_SIZE].copy_from_slice(&header(pid, true, false, 0));
    out[HEADER_SIZE] = 0; // pointer_field
    let body = &mut out[HEADER_SIZE + 1..];
    let len = section.len().min(body.len());
    body[..len].copy_from_slice(&section[..len]);
}

/// Sets the continuity counter of a packet made by [`write_section`].
pub fn set_continuity(packet: &mut [u8; PACKET_SIZE], cc: u8) {
    packet[3] = (packet[3] & 0xF0) | (cc & 0x0F);
}

fn header(pid: u16, unit_start: bool, adaptation: bool, cc: u8) -> [u8; HEADER_SIZE] {
    let pid = pid & PID_MAX;
    let afc = if adaptation {
        AFC_ADAPTATION_AND_PAYLOAD
    } else {
        AFC_PAYLOAD_ONLY
    };
    [
        SYNC_BYTE,
        if unit_start { PUSI } else { 0 } | (pid >> 8) as u8,
        pid as u8,
        afc | (cc & 0x0F),
    ]
}

/// `program_clock_reference_base` (33 bits), 6 reserved bits set, extension (9 bits) 0.
pub fn encode_pcr(base: u64) -> [u8; PCR_SIZE] {
    let base = base % CLOCK_MODULUS;
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        (((base & 1) as u8) << 7) | 0x7E,
        0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(bytes: &[u8]) -> Vec<&[u8]> {
        assert_eq!(
            bytes.len() % PACKET_SIZE,
            0,
            "not a whole number of packets"
        );
        bytes.chunks(PACKET_SIZE).collect()
    }

    /// The payload of a packet, after its header and adaptation field.
    fn payload_of(packet: &[u8]) -> &[u8] {
        match packet[3] & 0x30 {
            0x10 => &packet[4..],
            0x30 => &packet[5 + usize::from(packet[4])..],
            _ => &[],
        }
    }

    #[test]
    fn pcr_encoding_matches_the_bit_layout() {
        // base = 0x1_2345_6789 (33 bits): 1 0010 0011 0100 0101 0110 0111 1000 1001
        let pcr = encode_pcr(0x1_2345_6789);
        assert_eq!(pcr, [0x91, 0xA2, 0xB3, 0xC4, 0xFE, 0x00]);
        assert_eq!(encode_pcr(0), [0, 0, 0, 0, 0x7E, 0]);
        assert_eq!(encode_pcr(1), [0, 0, 0, 0, 0xFE, 0]);
        // Wraps at 2^33.
        assert_eq!(encode_pcr(CLOCK_MODULUS + 1), encode_pcr(1));
    }

    #[test]
    fn small_pes_is_one_stuffed_packet() {
        let mut out = BytesMut::new();
        let mut cc = Continuity::default();
        let n = write_pes(&mut out, 0x101, &mut cc, StartFlags::default(), &[1, 2, 3]);
        assert_eq!(n, PACKET_SIZE);
        assert_eq!(out.len(), PACKET_SIZE);
        assert_eq!(&out[..4], &[0x47, 0x41, 0x01, 0x30]);
        // 184 - 3 payload = 181 adaptation field bytes: length 180, flags 0, 179 stuffing.
        assert_eq!(out[4], 180);
        assert_eq!(out[5], 0);
        assert!(out[6..185].iter().all(|&b| b == 0xFF));
        assert_eq!(&out[185..], &[1, 2, 3]);
    }

    #[test]
    fn one_byte_of_stuffing_is_an_empty_adaptation_field() {
        let mut out = BytesMut::new();
        let mut cc = Continuity::default();
        let payload = vec![0xAB; BODY_SIZE - 1];
        write_pes(&mut out, 0x100, &mut cc, StartFlags::default(), &payload);
        assert_eq!(out.len(), PACKET_SIZE);
        assert_eq!(out[3] & 0x30, 0x30);
        assert_eq!(out[4], 0);
        assert_eq!(&out[5..], &payload[..]);
    }

    #[test]
    fn exact_fit_has_no_adaptation_field() {
        let mut out = BytesMut::new();
        let mut cc = Continuity::default();
        let payload = vec![0xAB; BODY_SIZE];
        write_pes(&mut out, 0x100, &mut cc, StartFlags::default(), &payload);
        assert_eq!(out.len(), PACKET_SIZE);
        assert_eq!(out[3], 0x10);
        assert_eq!(&out[4..], &payload[..]);
    }

    #[test]
    fn pcr_and_random_access_go_in_the_first_packet_only() {
        let mut out = BytesMut::new();
        let mut cc = Continuity::default();
        let payload: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
        let flags = StartFlags {
            pcr: Some(90_000),
            random_access: true,
        };
        let n = write_pes(&mut out, 0x100, &mut cc, flags, &payload);
        assert_eq!(n, packet_count(payload.len(), flags) * PACKET_SIZE);
        let pkts = packets(&out);
        assert_eq!(pkts.len(), 3); // 176 + 184 + 140
        let first = pkts[0];
        assert_eq!(&first[..4], &[0x47, 0x41, 0x00, 0x30]);
        assert_eq!(first[4], 7); // flags + 6 PCR bytes
        assert_eq!(first[5], 0x50); // random_access | PCR
        assert_eq!(&first[6..12], &encode_pcr(90_000));
        // Later packets: no PUSI, CC increments, only the last one stuffed.
        assert_eq!(&pkts[1][..4], &[0x47, 0x01, 0x00, 0x11]);
        assert_eq!(&pkts[2][..4], &[0x47, 0x01, 0x00, 0x32]);
        assert_eq!(pkts[2][5], 0, "stuffing-only adaptation field has no flags");
        let rebuilt: Vec<u8> = pkts.iter().flat_map(|p| payload_of(p).to_vec()).collect();
        assert_eq!(rebuilt, payload);
    }

    #[test]
    fn continuity_wraps_after_fifteen() {
        let mut cc = Continuity::default();
        let seen: Vec<u8> = (0..18).map(|_| cc.next()).collect();
        assert_eq!(&seen[..3], &[0, 1, 2]);
        assert_eq!(&seen[15..], &[15, 0, 1]);
    }

    #[test]
    fn section_packet_is_padded_with_ff() {
        let mut packet = [0u8; PACKET_SIZE];
        write_section(&mut packet, 0x1000, &[0x02, 0xB0, 0x00]);
        set_continuity(&mut packet, 5);
        assert_eq!(
            &packet[..8],
            &[0x47, 0x50, 0x00, 0x15, 0x00, 0x02, 0xB0, 0x00]
        );
        assert!(packet[8..].iter().all(|&b| b == 0xFF));
    }
}
