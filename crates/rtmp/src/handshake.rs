//! Server side of the RTMP handshake (sans-IO): C0+C1 in, S0+S1+S2 out, then C2 in.
//!
//! With a C1 that carries a valid Flash Player digest (scheme 0 or 1) the server answers with
//! the complex handshake; otherwise with the simple one (S2 echoes C1).

pub mod digest;
mod error;

use bytes::{Buf, BufMut, BytesMut};
use rand::RngCore;

pub use error::HandshakeError;

/// The only RTMP version spoken (plain RTMP; 6 would be RTMPE).
pub const RTMP_VERSION: u8 = 3;

/// Length of C1, C2, S1 and S2.
pub const PACKET_SIZE: usize = 1536;

/// Version field of a complex S1: a non-zero value tells the client "digest inside".
/// Same bytes as nginx-rtmp sends.
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];

/// Which handshake the client asked for, decided from C1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Simple,
    Complex(digest::Scheme),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingC0C1,
    AwaitingC2,
    Done,
}

/// The handshake state machine. Feed it the read buffer; it consumes only its own bytes, so
/// chunk data that arrives in the same read as C2 stays in the buffer.
#[derive(Debug)]
pub struct Handshake {
    state: State,
    kind: Option<Kind>,
}

impl Default for Handshake {
    fn default() -> Self {
        Self::new()
    }
}

impl Handshake {
    pub fn new() -> Self {
        Self {
            state: State::AwaitingC0C1,
            kind: None,
        }
    }

    /// The kind chosen from C1, once C1 has arrived.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes what it can from `input` and appends to `output` what must be sent.
    /// Returns `Ok(true)` once the handshake is complete.
    pub fn advance(
        &mut self,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Result<bool, HandshakeError> {
        loop {
            match self.state {
                State::AwaitingC0C1 => {
                    let Some(&version) = input.first() else {
                        return Ok(false);
                    };
                    if version != RTMP_VERSION {
                        return Err(HandshakeError::UnsupportedVersion { version });
                    }
                    if input.len() < 1 + PACKET_SIZE {
                        return Ok(false);
                    }
                    input.advance(1);
                    let mut c1 = [0u8; PACKET_SIZE];
                    input.copy_to_slice(&mut c1);
                    self.kind = Some(respond(&c1, output));
                    self.state = State::AwaitingC2;
                }
                State::AwaitingC2 => {
                    if input.len() < PACKET_SIZE {
                        return Ok(false);
                    }
                    // C2 should echo S1 (or carry a digest); clients in the wild do not agree on
                    // it and no server checks it, so it is skipped.
                    input.advance(PACKET_SIZE);
                    self.state = State::Done;
                }
                State::Done => return Ok(true),
            }
        }
    }
}

/// Writes S0, S1 and S2 for `c1`.
fn respond(c1: &[u8; PACKET_SIZE], output: &mut BytesMut) -> Kind {
    let mut rng = rand::rng();
    output.reserve(1 + 2 * PACKET_SIZE);
    output.put_u8(RTMP_VERSION);
    let mut s1 = [0u8; PACKET_SIZE];
    rng.fill_bytes(&mut s1[8..]);
    // Time 0: the epoch of the server's timestamps.
    match digest::find_client_digest(c1) {
        Some((scheme, client_digest)) => {
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            digest::sign_s1(&mut s1, scheme);
            let mut s2 = [0u8; PACKET_SIZE];
            rng.fill_bytes(&mut s2);
            digest::sign_s2(&mut s2, &client_digest);
            output.put_slice(&s1);
            output.put_slice(&s2);
            Kind::Complex(scheme)
        }
        None => {
            output.put_slice(&s1);
            output.put_slice(c1);
            Kind::Simple
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::digest::{DIGEST_LEN, GENUINE_FMS_KEY, GENUINE_FP_KEY, Scheme, packet_digest};
    use super::*;

    #[test]
    fn simple_handshake_echoes_c1_and_keeps_trailing_bytes() {
        let mut hs = Handshake::new();
        let mut input = BytesMut::new();
        let mut output = BytesMut::new();
        input.put_u8(3);
        assert!(!hs.advance(&mut input, &mut output).unwrap());
        let c1: Vec<u8> = (0..PACKET_SIZE).map(|i| (i % 251) as u8).collect();
        input.put_slice(&c1[..100]);
        assert!(!hs.advance(&mut input, &mut output).unwrap());
        assert!(output.is_empty());
        input.put_slice(&c1[100..]);
        assert!(!hs.advance(&mut input, &mut output).unwrap());
        assert_eq!(hs.kind(), Some(Kind::Simple));
        assert_eq!(output.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(output[0], 3);
        assert_eq!(&output[1 + PACKET_SIZE..], &c1[..]);
        input.put_slice(&[0u8; PACKET_SIZE]);
        input.put_slice(b"chunk");
        assert!(hs.advance(&mut input, &mut output).unwrap());
        assert!(hs.is_done());
        assert_eq!(&input[..], b"chunk");
    }

    #[test]
    fn wrong_version_is_refused_at_once() {
        let mut hs = Handshake::new();
        let mut input = BytesMut::from(&[6u8][..]);
        let err = hs.advance(&mut input, &mut BytesMut::new()).unwrap_err();
        assert_eq!(err, HandshakeError::UnsupportedVersion { version: 6 });
    }

    #[test]
    fn complex_handshake_answers_with_digests() {
        let mut c1 = [0u8; PACKET_SIZE];
        for (i, b) in c1.iter_mut().enumerate() {
            *b = (i * 7 % 256) as u8;
        }
        let offset = Scheme::Zero.digest_offset(&c1);
        let digest = packet_digest(&c1, offset, GENUINE_FP_KEY);
        c1[offset..offset + DIGEST_LEN].copy_from_slice(&digest);

        let mut input = BytesMut::new();
        input.put_u8(3);
        input.put_slice(&c1);
        let mut output = BytesMut::new();
        let mut hs = Handshake::new();
        assert!(!hs.advance(&mut input, &mut output).unwrap());
        assert_eq!(hs.kind(), Some(Kind::Complex(Scheme::Zero)));

        let s1: [u8; PACKET_SIZE] = output[1..1 + PACKET_SIZE].try_into().unwrap();
        let s2: [u8; PACKET_SIZE] = output[1 + PACKET_SIZE..].try_into().unwrap();
        assert_eq!(s1[4..8], SERVER_VERSION);
        let s1_offset = Scheme::Zero.digest_offset(&s1);
        assert_eq!(
            s1[s1_offset..s1_offset + DIGEST_LEN],
            packet_digest(&s1, s1_offset, GENUINE_FMS_KEY)
        );
        let key = digest::hmac(&digest::full_fms_key(), &[&digest]);
        let split = PACKET_SIZE - DIGEST_LEN;
        assert_eq!(s2[split..], digest::hmac(&key, &[&s2[..split]]));
        assert_ne!(s2[..], c1[..], "complex S2 is not an echo");
    }
}
