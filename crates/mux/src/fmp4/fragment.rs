//! One movie fragment: `moof` (`mfhd`, one `traf` per track with samples) + `mdat`
//! (ISO/IEC 14496-12 §8.8).
//!
//! Layout choices: `tfhd` sets default-base-is-moof (offsets are relative to the `moof`, so a
//! fragment is position-independent and CMAF-compatible), `tfdt` is 64-bit, and `trun` carries
//! every sample's duration and size — plus flags and a signed (version 1) composition offset
//! for video; audio samples take their flags from `tfhd`. The `mdat` holds the video samples,
//! then the audio samples.

use bytes::{BufMut, BytesMut};
use liverec_media::TrackKind;

use super::boxes::{self, BOX_HEADER_LEN};
use super::error::Fmp4Error;
use super::track::{IndexEntry, SYNC_SAMPLE_FLAGS, Track};
use crate::MuxOut;

/// Largest `mdat` payload of one fragment. Keeps the 32-bit `mdat` size and the signed 32-bit
/// `trun` data offsets in range with a wide margin; a one-second fragment is a few megabytes.
pub const MAX_FRAGMENT_BYTES: u64 = 1 << 30;
/// Most samples buffered for one fragment (12 bytes or more of `moof` each).
pub const MAX_FRAGMENT_SAMPLES: usize = 100_000;

const TFHD_DEFAULT_SAMPLE_FLAGS: u32 = 0x00_0020;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_SAMPLE_DURATION: u32 = 0x00_0100;
const TRUN_SAMPLE_SIZE: u32 = 0x00_0200;
const TRUN_SAMPLE_FLAGS: u32 = 0x00_0400;
const TRUN_COMPOSITION_OFFSETS: u32 = 0x00_0800;
/// At most one video and one audio track.
const MAX_TRACKS: usize = 2;

/// A fragment the muxer wrote: what the caller needs to place it (CMAF segment boundaries,
/// HLS `EXTINF`, progress).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// `mfhd` sequence number, from 1.
    pub sequence: u32,
    /// Decode time span of the fragment's main track (video if it has samples here, else
    /// audio), milliseconds from the file's origin.
    pub start_ms: u64,
    pub end_ms: u64,
    /// The main track's first sample is a random access point (always true for audio only).
    pub starts_with_keyframe: bool,
    /// Offset of the `moof` among all bytes the muxer produced.
    pub offset: u64,
    /// Bytes of `moof` + `mdat`.
    pub size: u64,
}

/// Writes `moof` + `mdat` for the writable samples of `tracks` (all of them when `last`, else
/// all but each track's last) and removes them from the tracks. `None` if there was nothing
/// to write. `moof_offset` is where the fragment starts among all bytes produced.
pub(crate) fn write_fragment<O: MuxOut>(
    out: &mut O,
    tracks: &mut [Track],
    sequence: u32,
    origin: i64,
    last: bool,
    moof_offset: u64,
) -> Result<Option<Fragment>, Fmp4Error> {
    let mut counts = [0usize; MAX_TRACKS];
    for (count, track) in counts.iter_mut().zip(tracks.iter()) {
        *count = track.writable(last);
    }
    if counts.iter().all(|&n| n == 0) {
        return Ok(None);
    }
    let start = out.head().len();
    let result = write_boxes(out.head(), tracks, &counts, sequence, origin, moof_offset);
    let (written, mdat_size) = match result {
        Ok(written) => written,
        Err(err) => {
            out.head().truncate(start);
            return Err(err);
        }
    };
    // moof + mdat: the headers written so far and the payload that follows.
    let size = (out.head().len() - start) as u64 + mdat_size - BOX_HEADER_LEN as u64;
    // Everything that can fail is written: now the samples, by reference where `out` can.
    out.reserve_payload(usize::try_from(mdat_size).unwrap_or(0));
    for (k, track) in tracks.iter().enumerate() {
        let n = counts.get(k).copied().unwrap_or(0);
        for sample in track.samples.iter().take(n) {
            out.payload(&sample.data);
        }
    }
    // Commit: index entries, track timelines, drop the written samples.
    let mut main: Option<(usize, u64, u64, bool)> = None;
    for (k, track) in tracks.iter_mut().enumerate() {
        let (Some(&n), Some(w)) = (counts.get(k), written.get(k)) else {
            continue;
        };
        if n == 0 {
            continue;
        }
        if let Some(entry) = w.index {
            track.index.push(entry);
        }
        track.end = w.end;
        track.last_duration = Some(w.last_duration);
        track.samples.drain(..n);
        if main.is_none() {
            main = Some((k, w.start, w.end, w.starts_with_sync));
        }
    }
    let (main_track, start_ticks, end_ticks, starts_with_keyframe) = main.unwrap_or_default();
    let (start_ms, end_ms) = tracks
        .get(main_track)
        .map(|t| (t.ms(start_ticks), t.ms(end_ticks)))
        .unwrap_or_default();
    Ok(Some(Fragment {
        sequence,
        start_ms,
        end_ms,
        starts_with_keyframe,
        offset: moof_offset,
        size,
    }))
}

/// What writing one track's samples yields, applied to the track once the whole fragment is
/// written.
#[derive(Clone, Copy, Debug, Default)]
struct WrittenTrack {
    start: u64,
    end: u64,
    last_duration: u32,
    starts_with_sync: bool,
    index: Option<IndexEntry>,
}

/// Writes `moof` and the `mdat` header (not its samples); returns the `mdat` size.
fn write_boxes(
    out: &mut BytesMut,
    tracks: &[Track],
    counts: &[usize; MAX_TRACKS],
    sequence: u32,
    origin: i64,
    moof_offset: u64,
) -> Result<([WrittenTrack; MAX_TRACKS], u64), Fmp4Error> {
    let mut written = [WrittenTrack::default(); MAX_TRACKS];
    // Position of each traf's trun data_offset field, and the bytes of its samples.
    let mut data_offsets = [(None::<usize>, 0u64); MAX_TRACKS];

    let moof = boxes::open(out, *b"moof");
    let mfhd = boxes::open_full(out, *b"mfhd", 0, 0);
    out.put_u32(sequence);
    mfhd.close(out)?;
    let mut traf_number = 0u8;
    for (k, track) in tracks.iter().enumerate().take(MAX_TRACKS) {
        let n = counts.get(k).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        traf_number = traf_number.saturating_add(1);
        let (offset_pos, bytes, w) = write_traf(out, track, n, origin, moof_offset, traf_number)?;
        if let (Some(slot), Some(wt)) = (data_offsets.get_mut(k), written.get_mut(k)) {
            *slot = (Some(offset_pos), bytes);
            *wt = w;
        }
    }
    let moof_size = moof.close(out)?;

    let payload: u64 = data_offsets.iter().map(|(_, bytes)| bytes).sum();
    let mdat_size = payload.saturating_add(BOX_HEADER_LEN as u64);
    let mdat_size32 = u32::try_from(mdat_size).map_err(|_| Fmp4Error::BoxTooLarge {
        fourcc: *b"mdat",
        size: usize::try_from(mdat_size).unwrap_or(usize::MAX),
    })?;
    // Data offsets are relative to the moof: past it and the mdat header, then earlier tracks.
    let mut data_start = (moof_size + BOX_HEADER_LEN) as u64;
    for (pos, bytes) in data_offsets.iter() {
        if let Some(pos) = pos {
            let offset = u32::try_from(data_start).map_err(|_| Fmp4Error::BoxTooLarge {
                fourcc: *b"moof",
                size: moof_size,
            })?;
            boxes::patch_u32(out, *pos, offset);
        }
        data_start = data_start.saturating_add(*bytes);
    }
    out.put_u32(mdat_size32);
    out.put_slice(b"mdat");
    Ok((written, mdat_size))
}

/// Writes one `traf`; returns the position of its `trun` data offset field, the bytes of its
/// samples, and what to commit to the track.
fn write_traf(
    out: &mut BytesMut,
    track: &Track,
    n: usize,
    origin: i64,
    moof_offset: u64,
    traf_number: u8,
) -> Result<(usize, u64, WrittenTrack), Fmp4Error> {
    let video = track.kind == TrackKind::Video;
    let mut w = WrittenTrack::default();
    let traf = boxes::open(out, *b"traf");

    let mut tfhd_flags = TFHD_DEFAULT_BASE_IS_MOOF;
    if !video {
        tfhd_flags |= TFHD_DEFAULT_SAMPLE_FLAGS;
    }
    let tfhd = boxes::open_full(out, *b"tfhd", 0, tfhd_flags);
    out.put_u32(track.id);
    if !video {
        out.put_u32(SYNC_SAMPLE_FLAGS);
    }
    tfhd.close(out)?;

    let first = track.entry(0, origin).unwrap_or_default();
    w.start = first.dts;
    w.starts_with_sync = first.flags == SYNC_SAMPLE_FLAGS;
    let tfdt = boxes::open_full(out, *b"tfdt", 1, 0);
    out.put_u64(first.dts);
    tfdt.close(out)?;

    let entries = || (0..n).filter_map(|i| track.entry(i, origin));
    let with_composition = video || entries().any(|e| e.composition_offset != 0);
    let mut trun_flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE;
    if video {
        trun_flags |= TRUN_SAMPLE_FLAGS;
    }
    if with_composition {
        trun_flags |= TRUN_COMPOSITION_OFFSETS;
    }
    let trun = boxes::open_full(out, *b"trun", u8::from(with_composition), trun_flags);
    out.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
    let offset_pos = out.len();
    out.put_u32(0); // data_offset, patched once the moof size is known
    let mut bytes = 0u64;
    for (i, entry) in entries().enumerate() {
        out.put_u32(entry.duration);
        out.put_u32(entry.size);
        if video {
            out.put_u32(entry.flags);
        }
        if with_composition {
            out.put_i32(entry.composition_offset);
        }
        bytes += u64::from(entry.size);
        w.end = entry.dts.saturating_add(u64::from(entry.duration));
        w.last_duration = entry.duration;
        if w.index.is_none() && entry.flags == SYNC_SAMPLE_FLAGS {
            let pts = i128::from(entry.dts) + i128::from(entry.composition_offset);
            w.index = Some(IndexEntry {
                time: u64::try_from(pts).unwrap_or(0),
                moof_offset,
                traf_number,
                sample_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            });
        }
    }
    trun.close(out)?;
    traf.close(out)?;
    Ok((offset_pos, bytes, w))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use liverec_media::Frame;

    use super::*;

    fn frame(dts: i64, cts: i32, keyframe: bool, data: &'static [u8]) -> Frame {
        Frame {
            track: TrackKind::Video,
            dts,
            cts,
            keyframe,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn fragment_bytes_hold_back_the_last_sample() -> Result<(), Fmp4Error> {
        let mut tracks = [Track::new(TrackKind::Video, 1, 90_000)];
        tracks[0].push(&frame(1000, 40, true, b"ab"));
        tracks[0].push(&frame(1040, 0, false, b"c"));
        let mut out = BytesMut::new();
        let fragment = write_fragment(&mut out, &mut tracks, 7, 1000, false, 100)?;
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 104, b'm', b'o', b'o', b'f',
            0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 7,
            0, 0, 0, 80, b't', b'r', b'a', b'f',
            0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 0x02, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 36, b't', b'r', b'u', b'n', 1, 0, 0x0F, 0x01,
            0, 0, 0, 1, // sample_count
            0, 0, 0, 112, // data_offset: moof (104) + mdat header (8)
            0, 0, 0x0E, 0x10, // duration 3600 = 40 ms at 90 kHz
            0, 0, 0, 2, // size
            0x02, 0, 0, 0, // flags: sync
            0, 0, 0x0E, 0x10, // composition offset 3600
            0, 0, 0, 10, b'm', b'd', b'a', b't', b'a', b'b',
        ];
        assert_eq!(&out[..], expected);
        assert_eq!(
            fragment,
            Some(Fragment {
                sequence: 7,
                start_ms: 0,
                end_ms: 40,
                starts_with_keyframe: true,
                offset: 100,
                size: 114,
            })
        );
        let track = &tracks[0];
        assert_eq!(
            track.samples.len(),
            1,
            "the last sample waits for its duration"
        );
        assert_eq!(track.end, 3600);
        assert_eq!(
            track.index,
            vec![IndexEntry {
                time: 3600,
                moof_offset: 100,
                traf_number: 1,
                sample_number: 1,
            }]
        );
        // Nothing writable: no empty moof.
        assert_eq!(
            write_fragment(&mut out, &mut tracks, 8, 1000, false, 214)?,
            None
        );
        assert_eq!(out.len(), 114);
        // Finishing writes it, with its predecessor's duration, and a non-sync sample adds no
        // index entry.
        let last = write_fragment(&mut out, &mut tracks, 8, 1000, true, 214)?;
        assert_eq!(
            last.map(|f| (f.start_ms, f.end_ms, f.starts_with_keyframe)),
            Some((40, 80, false))
        );
        assert_eq!(tracks[0].index.len(), 1);
        assert!(tracks[0].samples.is_empty());
        Ok(())
    }

    #[test]
    fn audio_traf_takes_flags_from_tfhd_and_skips_zero_composition() -> Result<(), Fmp4Error> {
        let mut tracks = [Track::new(TrackKind::Audio, 2, 48_000)];
        for dts in [0, 21, 43] {
            let mut f = frame(dts, 0, false, b"x");
            f.track = TrackKind::Audio;
            tracks[0].push(&f);
        }
        let mut out = BytesMut::new();
        write_fragment(&mut out, &mut tracks, 1, 0, true, 0)?;
        // tfhd: flags default-base-is-moof | default-sample-flags, track 2, sync flags.
        let tfhd = [
            0, 0, 0, 20, b't', b'f', b'h', b'd', 0, 2, 0, 0x20, 0, 0, 0, 2, 2, 0, 0, 0,
        ];
        assert!(out.windows(tfhd.len()).any(|w| w == tfhd));
        // trun version 0, duration + size only; durations from the rounded absolute times
        // (21 ms = 1008 ticks, 43 ms = 2064) and the last repeats the previous one.
        #[rustfmt::skip]
        let trun: &[u8] = &[
            0, 0, 0, 44, b't', b'r', b'u', b'n', 0, 0, 0x03, 0x01, 0, 0, 0, 3, 0, 0, 0, 0,
            0, 0, 0x03, 0xF0, 0, 0, 0, 1,
            0, 0, 0x04, 0x20, 0, 0, 0, 1,
            0, 0, 0x04, 0x20, 0, 0, 0, 1,
        ];
        let at = out
            .windows(8)
            .position(|w| &w[4..] == b"trun")
            .ok_or(Fmp4Error::InitOrder)?;
        // data_offset is patched, so compare around it.
        assert_eq!(&out[at..at + 16], &trun[..16]);
        assert_eq!(&out[at + 20..at + 44], &trun[20..]);
        assert_eq!(tracks[0].end, 2064 + 1056);
        Ok(())
    }

    /// Headers and payloads kept apart, as a spool file keeps them.
    #[derive(Default)]
    struct Parts {
        head: BytesMut,
        parts: Vec<Bytes>,
    }

    impl MuxOut for Parts {
        fn head(&mut self) -> &mut BytesMut {
            &mut self.head
        }

        fn payload(&mut self, data: &Bytes) {
            if !self.head.is_empty() {
                self.parts.push(self.head.split().freeze());
            }
            self.parts.push(data.clone());
        }
    }

    #[test]
    fn payloads_by_reference_give_the_same_bytes_without_copies() -> Result<(), Fmp4Error> {
        let frames = [
            frame(0, 0, true, b"key"),
            frame(40, 0, false, b"p1"),
            frame(80, 0, false, b"x"),
        ];
        let mut copied_tracks = [Track::new(TrackKind::Video, 1, 90_000)];
        let mut parts_tracks = [Track::new(TrackKind::Video, 1, 90_000)];
        for f in &frames {
            copied_tracks[0].push(f);
            parts_tracks[0].push(f);
        }
        let mut copied = BytesMut::new();
        let a = write_fragment(&mut copied, &mut copied_tracks, 1, 0, false, 0)?;
        let mut parts = Parts::default();
        let b = write_fragment(&mut parts, &mut parts_tracks, 1, 0, false, 0)?;
        assert_eq!(a, b);
        let mut joined = BytesMut::new();
        for p in &parts.parts {
            joined.extend_from_slice(p);
        }
        joined.extend_from_slice(&parts.head);
        assert_eq!(joined, copied);
        assert_eq!(b.map(|f| f.size), Some(copied.len() as u64));
        // moof + mdat header, then the two samples whose duration is known, as the frames' own bytes.
        assert_eq!(parts.parts.len(), 3);
        assert_eq!(parts.parts[1].as_ptr(), frames[0].data.as_ptr());
        assert_eq!(parts.parts[2].as_ptr(), frames[1].data.as_ptr());
        Ok(())
    }
}
