//! The "complex" (digest) handshake of Flash Player 9+ and Flash Media Server.
//!
//! C1 and S1 carry an HMAC-SHA256 digest at a position derived from four offset bytes; S2 ends
//! with a digest keyed from C1's digest. Clients that find no valid digest in S1/S2 (old Flash
//! players, some hardware encoders) refuse the server, so liverec answers in kind whenever C1
//! has one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::PACKET_SIZE;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 digest.
pub const DIGEST_LEN: usize = 32;

/// The 32 constant bytes that follow both "Genuine" strings in the full keys.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

/// Key of client digests: "Genuine Adobe Flash Player 001".
pub const GENUINE_FP_KEY: &[u8; 30] = b"Genuine Adobe Flash Player 001";

/// Key of server digests: "Genuine Adobe Flash Media Server 001".
pub const GENUINE_FMS_KEY: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// The full server key (text + constant tail), used to key S2's digest.
pub fn full_fms_key() -> [u8; 68] {
    let mut key = [0u8; 68];
    key[..36].copy_from_slice(GENUINE_FMS_KEY);
    key[36..].copy_from_slice(&KEY_TAIL);
    key
}

/// The full client key (text + constant tail), used to key C2's digest.
pub fn full_fp_key() -> [u8; 62] {
    let mut key = [0u8; 62];
    key[..30].copy_from_slice(GENUINE_FP_KEY);
    key[30..].copy_from_slice(&KEY_TAIL);
    key
}

/// Where the 764-byte digest block sits in a 1536-byte C1/S1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// time, version, key block, digest block (digest block at byte 772).
    Zero,
    /// time, version, digest block, key block (digest block at byte 8).
    One,
}

impl Scheme {
    fn block_start(self) -> usize {
        match self {
            Scheme::Zero => 772,
            Scheme::One => 8,
        }
    }

    /// Position of the digest: the sum of the block's first four bytes modulo 728, past them.
    /// At most 1503, so the digest always fits in the packet.
    pub fn digest_offset(self, packet: &[u8; PACKET_SIZE]) -> usize {
        let start = self.block_start();
        let sum: usize = packet[start..start + 4]
            .iter()
            .map(|b| usize::from(*b))
            .sum();
        sum % 728 + start + 4
    }
}

/// HMAC-SHA256 of `data` with `key`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The digest of a packet whose digest sits at `offset`: HMAC over every other byte.
pub fn packet_digest(packet: &[u8; PACKET_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds C1's digest under either scheme (scheme 0 first, as Flash Media Server does).
pub fn find_client_digest(c1: &[u8; PACKET_SIZE]) -> Option<(Scheme, [u8; DIGEST_LEN])> {
    [Scheme::Zero, Scheme::One].into_iter().find_map(|scheme| {
        let offset = scheme.digest_offset(c1);
        let expected = packet_digest(c1, offset, GENUINE_FP_KEY);
        (c1[offset..offset + DIGEST_LEN] == expected).then_some((scheme, expected))
    })
}

/// Writes the server digest into a randomly filled S1 (time and version already set).
pub fn sign_s1(s1: &mut [u8; PACKET_SIZE], scheme: Scheme) {
    let offset = scheme.digest_offset(s1);
    let digest = packet_digest(s1, offset, GENUINE_FMS_KEY);
    s1[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
}

/// Writes S2's trailing digest into a randomly filled S2: keyed by HMAC(full FMS key, C1 digest).
pub fn sign_s2(s2: &mut [u8; PACKET_SIZE], client_digest: &[u8; DIGEST_LEN]) {
    let key = hmac(&full_fms_key(), &[client_digest]);
    let split = PACKET_SIZE - DIGEST_LEN;
    let digest = hmac(&key, &[&s2[..split]]);
    s2[split..].copy_from_slice(&digest);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A C1 as a Flash Player would build it: random bytes, digest under `scheme`.
    fn client_c1(scheme: Scheme, fill: u8) -> [u8; PACKET_SIZE] {
        let mut c1 = [0u8; PACKET_SIZE];
        for (i, b) in c1.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(fill);
        }
        c1[4..8].copy_from_slice(&[0x80, 0x00, 0x07, 0x02]);
        let offset = scheme.digest_offset(&c1);
        let digest = packet_digest(&c1, offset, GENUINE_FP_KEY);
        c1[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
        c1
    }

    #[test]
    fn offsets_follow_the_offset_bytes() {
        let mut p = [0u8; PACKET_SIZE];
        p[8..12].copy_from_slice(&[1, 2, 3, 4]);
        p[772..776].copy_from_slice(&[255, 255, 255, 255]);
        assert_eq!(Scheme::One.digest_offset(&p), 10 + 12);
        assert_eq!(Scheme::Zero.digest_offset(&p), 1020 % 728 + 776);
    }

    #[test]
    fn finds_digest_under_both_schemes() {
        for scheme in [Scheme::Zero, Scheme::One] {
            let c1 = client_c1(scheme, 7);
            let (found, digest) = find_client_digest(&c1).unwrap();
            assert_eq!(found, scheme);
            let offset = scheme.digest_offset(&c1);
            assert_eq!(&c1[offset..offset + DIGEST_LEN], &digest);
        }
    }

    #[test]
    fn tampered_c1_has_no_digest() {
        let mut c1 = client_c1(Scheme::Zero, 3);
        c1[1535] ^= 0xFF;
        let offset = Scheme::Zero.digest_offset(&c1);
        assert!(
            offset + DIGEST_LEN <= 1535,
            "the flipped byte is outside the digest"
        );
        assert_eq!(find_client_digest(&c1), None);
        assert_eq!(find_client_digest(&[0u8; PACKET_SIZE]), None);
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let digest = hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            digest[..8],
            [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]
        );
    }

    #[test]
    fn s1_and_s2_verify_as_a_client_would() {
        let c1 = client_c1(Scheme::One, 9);
        let (scheme, client_digest) = find_client_digest(&c1).unwrap();
        let mut s1 = [0x5Au8; PACKET_SIZE];
        s1[8..12].copy_from_slice(&[9, 8, 7, 6]);
        sign_s1(&mut s1, scheme);
        let offset = scheme.digest_offset(&s1);
        assert_eq!(
            s1[offset..offset + DIGEST_LEN],
            packet_digest(&s1, offset, GENUINE_FMS_KEY),
        );
        assert_ne!(s1[offset..offset + DIGEST_LEN], [0x5A; DIGEST_LEN]);

        let mut s2 = [0x33u8; PACKET_SIZE];
        sign_s2(&mut s2, &client_digest);
        let key = hmac(&full_fms_key(), &[&client_digest]);
        assert_eq!(
            s2[PACKET_SIZE - DIGEST_LEN..],
            hmac(&key, &[&s2[..PACKET_SIZE - DIGEST_LEN]])
        );
        assert_eq!(full_fp_key()[..30], GENUINE_FP_KEY[..]);
    }
}
