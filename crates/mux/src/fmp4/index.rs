//! The movie fragment random access box `mfra` (ISO/IEC 14496-12 §8.8.9–8.8.11), appended when
//! a file is finished: one `tfra` per track listing, for each fragment that holds a random
//! access point of the track, its time and the 64-bit offset of its `moof`, then `mfro`, whose
//! size field lets a reader find `mfra` from the end of the file.

use bytes::{BufMut, BytesMut};

use super::boxes;
use super::error::Fmp4Error;
use super::track::Track;

/// `tfra` length fields: traf_number and trun_number 1 byte, sample_number 4 bytes.
const TFRA_LENGTH_SIZES: u32 = 0b00_00_11;
/// Bytes of the `mfro` box: header, version/flags, size.
const MFRO_LEN: usize = 16;

/// Appends `mfra`; returns its size.
pub(crate) fn write_mfra(out: &mut BytesMut, tracks: &[Track]) -> Result<usize, Fmp4Error> {
    let start = out.len();
    let result = write_boxes(out, tracks);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_boxes(out: &mut BytesMut, tracks: &[Track]) -> Result<usize, Fmp4Error> {
    let mfra = boxes::open(out, *b"mfra");
    for track in tracks {
        let tfra = boxes::open_full(out, *b"tfra", 1, 0);
        out.put_u32(track.id);
        out.put_u32(TFRA_LENGTH_SIZES);
        out.put_u32(u32::try_from(track.index.len()).unwrap_or(u32::MAX));
        for entry in &track.index {
            out.put_u64(entry.time);
            out.put_u64(entry.moof_offset);
            out.put_u8(entry.traf_number);
            out.put_u8(1); // trun_number: one trun per traf
            out.put_u32(entry.sample_number);
        }
        tfra.close(out)?;
    }
    let mfra_size = out
        .len()
        .saturating_sub(mfra.start())
        .saturating_add(MFRO_LEN);
    let mfra_size32 = u32::try_from(mfra_size).map_err(|_| Fmp4Error::BoxTooLarge {
        fourcc: *b"mfra",
        size: mfra_size,
    })?;
    let mfro = boxes::open_full(out, *b"mfro", 0, 0);
    out.put_u32(mfra_size32);
    mfro.close(out)?;
    mfra.close(out)
}

#[cfg(test)]
mod tests {
    use liverec_media::TrackKind;

    use super::super::track::IndexEntry;
    use super::*;

    #[test]
    fn mfra_bytes() -> Result<(), Fmp4Error> {
        let mut track = Track::new(TrackKind::Audio, 2, 44_100);
        track.index.push(IndexEntry {
            time: 0x0102,
            moof_offset: 0x1_0000_0000,
            traf_number: 2,
            sample_number: 1,
        });
        let mut out = BytesMut::new();
        let size = write_mfra(&mut out, &[track])?;
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 70, b'm', b'f', b'r', b'a',
            0, 0, 0, 46, b't', b'f', b'r', b'a', 1, 0, 0, 0,
            0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 1, 2,
            0, 0, 0, 1, 0, 0, 0, 0,
            2, 1, 0, 0, 0, 1,
            0, 0, 0, 16, b'm', b'f', b'r', b'o', 0, 0, 0, 0, 0, 0, 0, 70,
        ];
        assert_eq!(&out[..], expected);
        assert_eq!(size, 70);
        Ok(())
    }

    #[test]
    fn empty_index_still_makes_a_valid_mfra() -> Result<(), Fmp4Error> {
        let mut out = BytesMut::new();
        let size = write_mfra(&mut out, &[Track::new(TrackKind::Video, 1, 90_000)])?;
        assert_eq!(size, 8 + 24 + 16);
        // mfro's last field is the mfra size.
        assert_eq!(&out[size - 4..], &(size as u32).to_be_bytes());
        Ok(())
    }
}
