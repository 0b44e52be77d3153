//! Crash recovery of a recording file: find the last complete fragment of a file the muxer was
//! writing when the process died, and compute what [`Muxer::finish`](super::Muxer::finish)
//! would have added — the `mfra` and the duration patches.
//!
//! Only box headers, `moov` and the `moof`s are read (about a kilobyte per second of media),
//! never the media data, so recovering an hour-long file reads a few megabytes. The caller
//! truncates the file to [`Recovery::valid_len`], appends [`Recovery::tail`] and applies
//! [`Recovery::patches`]: the same steps, and the same bytes, as a normal finalize.

use std::io::{Read, Seek, SeekFrom};

use bytes::{Bytes, BytesMut};
use liverec_media::TrackKind;

use super::error::RecoverError;
use super::fragment::MAX_FRAGMENT_SAMPLES;
use super::index;
use super::track::{IndexEntry, Track};
use crate::Patch;

/// Largest `moov` read into memory (ours are a few kilobytes).
pub const MAX_MOOV_BYTES: u64 = 16 << 20;
/// Largest `moof` read into memory (ours stay under 2 MB at [`MAX_FRAGMENT_SAMPLES`]).
pub const MAX_MOOF_BYTES: u64 = 16 << 20;

const TFHD_BASE_DATA_OFFSET: u32 = 0x00_0001;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x00_0002;
const TFHD_DEFAULT_SAMPLE_DURATION: u32 = 0x00_0008;
const TFHD_DEFAULT_SAMPLE_SIZE: u32 = 0x00_0010;
const TFHD_DEFAULT_SAMPLE_FLAGS: u32 = 0x00_0020;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x00_0004;
const TRUN_SAMPLE_DURATION: u32 = 0x00_0100;
const TRUN_SAMPLE_SIZE: u32 = 0x00_0200;
const TRUN_SAMPLE_FLAGS: u32 = 0x00_0400;
const TRUN_COMPOSITION_OFFSETS: u32 = 0x00_0800;
/// `sample_is_non_sync_sample` in `sample_flags`.
const NON_SYNC_SAMPLE: u32 = 0x0001_0000;

/// What finalizing a crashed recording takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Length of the file that was scanned.
    pub file_len: u64,
    /// Bytes to keep: `ftyp`, `moov` and every complete `moof` + `mdat`. A torn last
    /// fragment and any old `mfra` lie beyond.
    pub valid_len: u64,
    pub fragment_count: u64,
    /// Media duration of the kept fragments, milliseconds.
    pub duration_ms: u64,
    /// The `mfra` to append at `valid_len`.
    pub tail: Bytes,
    /// Duration fields to overwrite (in `mvhd`, `mehd`, `tkhd`, `mdhd`).
    pub patches: Vec<Patch>,
}

/// Scans a recording file written by [`Muxer`](super::Muxer) in [`Mode::File`](super::Mode)
/// (finished or not) and computes its [`Recovery`]. A finished file yields exactly the
/// `mfra` and patches it already has.
pub fn recover<R: Read + Seek>(source: &mut R) -> Result<Recovery, RecoverError> {
    let file_len = source.seek(SeekFrom::End(0))?;
    let mut scan = Scan {
        source,
        file_len,
        buf: Vec::new(),
    };
    let (mut movie, pos) = read_movie(&mut scan)?;
    let fragments = scan_fragments(&mut scan, pos, &mut movie)?;
    let (valid_len, fragment_count) = (fragments.valid_len, fragments.count);

    let duration_ms = movie
        .tracks
        .iter()
        .map(|t| t.track.duration_ms())
        .max()
        .unwrap_or(0);
    let mut patches = Vec::new();
    if let Some(field) = movie.mvhd_duration {
        patches.push(field.patch(duration_ms));
    }
    if let Some(field) = movie.mehd_duration {
        patches.push(field.patch(duration_ms));
    }
    for info in &movie.tracks {
        if let Some(field) = info.tkhd_duration {
            patches.push(field.patch(info.track.duration_ms()));
        }
        if let Some(field) = info.mdhd_duration {
            patches.push(field.patch(info.track.end));
        }
    }
    let tracks: Vec<Track> = movie.tracks.into_iter().map(|t| t.track).collect();
    let mut tail = BytesMut::new();
    index::write_mfra(&mut tail, &tracks)?;
    Ok(Recovery {
        file_len,
        valid_len,
        fragment_count,
        duration_ms,
        tail: tail.freeze(),
        patches,
    })
}

/// What is left of a CMAF media segment the muxer was writing when the process died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRecovery {
    /// Bytes to keep: every complete `moof` + `mdat` (a CMAF chunk); beyond is torn.
    pub valid_len: u64,
    pub fragment_count: u64,
    /// Media time the kept fragments span, milliseconds (the longest track).
    pub duration_ms: u64,
}

/// Scans a CMAF media segment (`moof` + `mdat` pairs, as [`Mode::Cmaf`](super::Mode) writes
/// them) against its initialization segment `init` (`ftyp` + `moov`), finding the complete
/// fragments of a segment cut short by a crash.
pub fn recover_segment<I: Read + Seek, S: Read + Seek>(
    init: &mut I,
    segment: &mut S,
) -> Result<SegmentRecovery, RecoverError> {
    let init_len = init.seek(SeekFrom::End(0))?;
    let (mut movie, _) = read_movie(&mut Scan {
        source: init,
        file_len: init_len,
        buf: Vec::new(),
    })?;
    let file_len = segment.seek(SeekFrom::End(0))?;
    let mut scan = Scan {
        source: segment,
        file_len,
        buf: Vec::new(),
    };
    let fragments = scan_fragments(&mut scan, 0, &mut movie)?;
    let duration_ms = movie
        .tracks
        .iter()
        .zip(&fragments.first_time)
        .filter_map(|(info, first)| {
            let first = (*first)?;
            Some(info.track.ms(info.track.end.saturating_sub(first)))
        })
        .max()
        .unwrap_or(0);
    Ok(SegmentRecovery {
        valid_len: fragments.valid_len,
        fragment_count: fragments.count,
        duration_ms,
    })
}

/// The `ftyp` (and `free`/`skip`) and `moov` at the start of a file; returns the movie and
/// the offset after the `moov`.
fn read_movie<R: Read + Seek>(scan: &mut Scan<'_, R>) -> Result<(Movie, u64), RecoverError> {
    let mut pos = 0u64;
    loop {
        let header = scan.header(pos)?.ok_or(RecoverError::NoInit)?;
        match &header.fourcc {
            b"ftyp" | b"free" | b"skip" => {}
            b"moov" => {
                let body = scan.body(&header, MAX_MOOV_BYTES)?;
                return Ok((parse_moov(body, header.body_start())?, header.end()));
            }
            _ => return Err(RecoverError::NoInit),
        }
        pos = header.end();
    }
}

/// The complete fragments from `pos` on, committed to `movie`'s tracks.
struct Fragments {
    valid_len: u64,
    count: u64,
    /// Per track of the movie: decode time of its first sample in these fragments.
    first_time: Vec<Option<u64>>,
}

fn scan_fragments<R: Read + Seek>(
    scan: &mut Scan<'_, R>,
    mut pos: u64,
    movie: &mut Movie,
) -> Result<Fragments, RecoverError> {
    let mut found = Fragments {
        valid_len: pos,
        count: 0,
        first_time: vec![None; movie.tracks.len()],
    };
    while let Some(header) = scan.header(pos)? {
        match &header.fourcc {
            b"free" | b"skip" | b"styp" => {
                pos = header.end();
                found.valid_len = pos;
            }
            b"moof" => {
                let Some(mdat) = scan.header(header.end())? else {
                    break;
                };
                if &mdat.fourcc != b"mdat" {
                    break;
                }
                let body = scan.body(&header, MAX_MOOF_BYTES)?;
                let fragment = parse_moof(body, &header, &mdat, movie)?;
                for traf in &fragment.trafs {
                    if let Some(first @ None) = found.first_time.get_mut(traf.track) {
                        *first = Some(traf.start);
                    }
                }
                fragment.commit(movie);
                found.count += 1;
                pos = mdat.end();
                found.valid_len = pos;
            }
            // An old mfra, a torn box, or zeros a crashed filesystem left: the end.
            _ => break,
        }
    }
    Ok(found)
}

/// Reads box headers and bodies at absolute offsets.
struct Scan<'a, R> {
    source: &'a mut R,
    file_len: u64,
    buf: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct Header {
    fourcc: [u8; 4],
    start: u64,
    header_len: u64,
    size: u64,
}

impl Header {
    fn body_start(&self) -> u64 {
        self.start + self.header_len
    }

    fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

impl<R: Read + Seek> Scan<'_, R> {
    /// The header of the box at `pos`, if the whole box lies within the file.
    fn header(&mut self, pos: u64) -> Result<Option<Header>, RecoverError> {
        let left = self.file_len.saturating_sub(pos);
        if left < 8 {
            return Ok(None);
        }
        let mut head = [0u8; 16];
        self.source.seek(SeekFrom::Start(pos))?;
        let head_len = if left >= 16 { 16 } else { 8 };
        self.source
            .read_exact(head.get_mut(..head_len).unwrap_or(&mut []))?;
        let mut reader = Reader::new(&head);
        let size32 = reader.u32().unwrap_or(0);
        let mut fourcc = [0u8; 4];
        fourcc.copy_from_slice(reader.bytes(4).unwrap_or(&[0; 4]));
        let (size, header_len) = match size32 {
            // "To the end of the file": never written by the muxer, so not trusted.
            0 => return Ok(None),
            1 if head_len == 16 => (reader.u64().unwrap_or(0), 16),
            1 => return Ok(None),
            n => (u64::from(n), 8),
        };
        if size < header_len || size > left {
            return Ok(None);
        }
        Ok(Some(Header {
            fourcc,
            start: pos,
            header_len,
            size,
        }))
    }

    fn body(&mut self, header: &Header, max: u64) -> Result<&[u8], RecoverError> {
        let len = header.size - header.header_len;
        if len > max {
            return Err(RecoverError::BoxTooLarge {
                fourcc: header.fourcc,
                offset: header.start,
                size: header.size,
                max,
            });
        }
        self.buf.clear();
        self.buf.resize(usize::try_from(len).unwrap_or(0), 0);
        self.source.seek(SeekFrom::Start(header.body_start()))?;
        self.source.read_exact(&mut self.buf)?;
        Ok(&self.buf)
    }
}

/// Bounds-checked big-endian reads over a box body.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let bytes = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.bytes(4)?);
        Some(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Option<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.bytes(8)?);
        Some(u64::from_be_bytes(b))
    }

    /// A 32- or 64-bit field depending on a full box's version.
    fn uint(&mut self, wide: bool) -> Option<u64> {
        if wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// The duration field at the current position of a box whose body starts at file offset
    /// `body_at`, or `None` if the box ends before it: a patch must never write past its box.
    fn duration_field(&self, body_at: u64, wide: bool) -> Option<Field> {
        let len = if wide { 8 } else { 4 };
        self.data.get(self.pos..self.pos.checked_add(len)?)?;
        Some(Field {
            offset: body_at + self.pos as u64,
            wide,
        })
    }

    /// Version and flags of a full box.
    fn version_flags(&mut self) -> Option<(u8, u32)> {
        let word = self.u32()?;
        Some(((word >> 24) as u8, word & 0x00FF_FFFF))
    }

    /// Child boxes: `(fourcc, body, offset of the body within the data)`.
    fn boxes(data: &'a [u8]) -> impl Iterator<Item = ([u8; 4], &'a [u8], usize)> + 'a {
        let mut pos = 0usize;
        std::iter::from_fn(move || {
            let mut r = Reader { data, pos };
            let size = usize::try_from(r.u32()?).ok()?;
            let mut fourcc = [0u8; 4];
            fourcc.copy_from_slice(r.bytes(4)?);
            let end = pos.checked_add(size)?;
            let body = data.get(pos.checked_add(8)?..end)?;
            let body_at = pos + 8;
            pos = end;
            Some((fourcc, body, body_at))
        })
    }
}

/// A duration field to patch: its file offset and whether it is 64-bit.
#[derive(Clone, Copy, Debug)]
struct Field {
    offset: u64,
    wide: bool,
}

impl Field {
    fn patch(self, value: u64) -> Patch {
        let bytes = if self.wide {
            Bytes::copy_from_slice(&value.to_be_bytes())
        } else {
            let value = u32::try_from(value).unwrap_or(u32::MAX);
            Bytes::copy_from_slice(&value.to_be_bytes())
        };
        Patch {
            offset: self.offset,
            bytes,
        }
    }
}

#[derive(Debug)]
struct TrackInfo {
    track: Track,
    tkhd_duration: Option<Field>,
    mdhd_duration: Option<Field>,
    default_duration: u32,
    default_flags: u32,
}

#[derive(Debug, Default)]
struct Movie {
    mvhd_duration: Option<Field>,
    mehd_duration: Option<Field>,
    tracks: Vec<TrackInfo>,
}

fn malformed(fourcc: &[u8; 4], offset: u64, what: &'static str) -> RecoverError {
    RecoverError::Malformed {
        fourcc: *fourcc,
        offset,
        what,
    }
}

/// `body_at` is the file offset of the `moov` body.
fn parse_moov(body: &[u8], body_at: u64) -> Result<Movie, RecoverError> {
    let mut movie = Movie::default();
    let at = |rel: usize| body_at + rel as u64;
    for (fourcc, child, child_at) in Reader::boxes(body) {
        match &fourcc {
            b"mvhd" => {
                let mut r = Reader::new(child);
                let (version, _) =
                    r.version_flags()
                        .ok_or(malformed(&fourcc, at(child_at), "short"))?;
                let wide = version == 1;
                // creation, modification, timescale
                let skip = if wide { 8 + 8 + 4 } else { 4 + 4 + 4 };
                r.skip(skip)
                    .ok_or(malformed(&fourcc, at(child_at), "short"))?;
                let field = r.duration_field(at(child_at), wide);
                movie.mvhd_duration =
                    Some(field.ok_or(malformed(&fourcc, at(child_at), "short"))?);
            }
            b"trak" => {
                if let Some(info) = parse_trak(child, at(child_at))? {
                    movie.tracks.push(info);
                }
            }
            b"mvex" => {
                for (kind, grandchild, grandchild_at) in Reader::boxes(child) {
                    let offset = at(child_at + grandchild_at);
                    let mut r = Reader::new(grandchild);
                    match &kind {
                        b"mehd" => {
                            let (version, _) =
                                r.version_flags().ok_or(malformed(&kind, offset, "short"))?;
                            let field = r.duration_field(offset, version == 1);
                            movie.mehd_duration =
                                Some(field.ok_or(malformed(&kind, offset, "short"))?);
                        }
                        b"trex" => {
                            r.skip(4).ok_or(malformed(&kind, offset, "short"))?;
                            let track_id = r.u32().ok_or(malformed(&kind, offset, "short"))?;
                            r.skip(4).ok_or(malformed(&kind, offset, "short"))?;
                            let duration = r.u32().ok_or(malformed(&kind, offset, "short"))?;
                            r.skip(4).ok_or(malformed(&kind, offset, "short"))?;
                            let flags = r.u32().ok_or(malformed(&kind, offset, "short"))?;
                            if let Some(info) =
                                movie.tracks.iter_mut().find(|t| t.track.id == track_id)
                            {
                                info.default_duration = duration;
                                info.default_flags = flags;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if movie.tracks.is_empty() {
        return Err(RecoverError::NoInit);
    }
    Ok(movie)
}

fn parse_trak(body: &[u8], body_at: u64) -> Result<Option<TrackInfo>, RecoverError> {
    let mut id = None;
    let mut tkhd_duration = None;
    let mut timescale = None;
    let mut mdhd_duration = None;
    let mut kind = TrackKind::Video;
    for (fourcc, child, child_at) in Reader::boxes(body) {
        let offset = body_at + child_at as u64;
        match &fourcc {
            b"tkhd" => {
                let mut r = Reader::new(child);
                let (version, _) = r
                    .version_flags()
                    .ok_or(malformed(&fourcc, offset, "short"))?;
                let wide = version == 1;
                r.skip(if wide { 16 } else { 8 })
                    .ok_or(malformed(&fourcc, offset, "short"))?;
                id = Some(r.u32().ok_or(malformed(&fourcc, offset, "short"))?);
                r.skip(4).ok_or(malformed(&fourcc, offset, "short"))?;
                let field = r.duration_field(offset, wide);
                tkhd_duration = Some(field.ok_or(malformed(&fourcc, offset, "short"))?);
            }
            b"mdia" => {
                for (kind_cc, grandchild, grandchild_at) in Reader::boxes(child) {
                    let offset = offset + grandchild_at as u64;
                    let mut r = Reader::new(grandchild);
                    match &kind_cc {
                        b"mdhd" => {
                            let (version, _) = r
                                .version_flags()
                                .ok_or(malformed(&kind_cc, offset, "short"))?;
                            let wide = version == 1;
                            r.skip(if wide { 16 } else { 8 })
                                .ok_or(malformed(&kind_cc, offset, "short"))?;
                            timescale = Some(r.u32().ok_or(malformed(&kind_cc, offset, "short"))?);
                            let field = r.duration_field(offset, wide);
                            mdhd_duration =
                                Some(field.ok_or(malformed(&kind_cc, offset, "short"))?);
                        }
                        b"hdlr" => {
                            r.skip(8).ok_or(malformed(&kind_cc, offset, "short"))?;
                            if r.bytes(4) == Some(b"soun") {
                                kind = TrackKind::Audio;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (Some(id), Some(timescale)) = (id, timescale) else {
        return Ok(None);
    };
    if timescale == 0 {
        return Err(malformed(b"mdhd", body_at, "timescale 0"));
    }
    Ok(Some(TrackInfo {
        track: Track::new(kind, id, timescale),
        tkhd_duration,
        mdhd_duration,
        default_duration: 0,
        default_flags: 0,
    }))
}

/// What one complete fragment adds to the tracks.
#[derive(Debug, Default)]
struct ParsedFragment {
    trafs: Vec<ParsedTraf>,
}

#[derive(Debug)]
struct ParsedTraf {
    /// Index of the track in the movie.
    track: usize,
    /// Decode time of the first sample and the end of the last one, track ticks.
    start: u64,
    end: u64,
    /// The first random access point, for the `mfra`.
    entry: Option<IndexEntry>,
}

impl ParsedFragment {
    fn commit(self, movie: &mut Movie) {
        for traf in self.trafs {
            if let Some(info) = movie.tracks.get_mut(traf.track) {
                info.track.end = info.track.end.max(traf.end);
                if let Some(entry) = traf.entry {
                    info.track.index.push(entry);
                }
            }
        }
    }
}

fn parse_moof(
    body: &[u8],
    moof: &Header,
    mdat: &Header,
    movie: &Movie,
) -> Result<ParsedFragment, RecoverError> {
    let mut fragment = ParsedFragment::default();
    let mut traf_number = 0u8;
    for (fourcc, traf, traf_at) in Reader::boxes(body) {
        if &fourcc != b"traf" {
            continue;
        }
        traf_number = traf_number.saturating_add(1);
        let offset = moof.body_start() + traf_at as u64;
        let mut tfhd = None;
        let mut base_decode_time = None;
        let mut trun = None;
        for (kind, child, _) in Reader::boxes(traf) {
            match &kind {
                b"tfhd" => tfhd = Some(child),
                b"tfdt" => {
                    let mut r = Reader::new(child);
                    let (version, _) =
                        r.version_flags().ok_or(malformed(&kind, offset, "short"))?;
                    base_decode_time = Some(
                        r.uint(version == 1)
                            .ok_or(malformed(&kind, offset, "short"))?,
                    );
                }
                b"trun" if trun.is_none() => trun = Some(child),
                b"trun" => return Err(malformed(&kind, offset, "more than one trun")),
                _ => {}
            }
        }
        let tfhd = tfhd.ok_or(malformed(b"traf", offset, "no tfhd"))?;
        let trun = trun.ok_or(malformed(b"traf", offset, "no trun"))?;
        let base_decode_time = base_decode_time.ok_or(malformed(b"traf", offset, "no tfdt"))?;

        let mut r = Reader::new(tfhd);
        let short = || malformed(b"tfhd", offset, "short");
        let (_, tfhd_flags) = r.version_flags().ok_or_else(short)?;
        let track_id = r.u32().ok_or_else(short)?;
        let k = movie
            .tracks
            .iter()
            .position(|t| t.track.id == track_id)
            .ok_or(RecoverError::UnknownTrack {
                offset: moof.start,
                track_id,
            })?;
        let info = movie.tracks.get(k).ok_or(RecoverError::UnknownTrack {
            offset: moof.start,
            track_id,
        })?;
        let base = if tfhd_flags & TFHD_BASE_DATA_OFFSET != 0 {
            r.u64().ok_or_else(short)?
        } else if tfhd_flags & TFHD_DEFAULT_BASE_IS_MOOF != 0 {
            moof.start
        } else {
            return Err(malformed(b"tfhd", offset, "no data base"));
        };
        if tfhd_flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
            r.skip(4).ok_or_else(short)?;
        }
        let mut default_duration = info.default_duration;
        if tfhd_flags & TFHD_DEFAULT_SAMPLE_DURATION != 0 {
            default_duration = r.u32().ok_or_else(short)?;
        }
        let mut default_size = 0;
        if tfhd_flags & TFHD_DEFAULT_SAMPLE_SIZE != 0 {
            default_size = r.u32().ok_or_else(short)?;
        }
        let mut default_flags = info.default_flags;
        if tfhd_flags & TFHD_DEFAULT_SAMPLE_FLAGS != 0 {
            default_flags = r.u32().ok_or_else(short)?;
        }

        let mut r = Reader::new(trun);
        let short = || malformed(b"trun", offset, "short");
        let (version, flags) = r.version_flags().ok_or_else(short)?;
        let count = usize::try_from(r.u32().ok_or_else(short)?).unwrap_or(usize::MAX);
        if count > MAX_FRAGMENT_SAMPLES {
            return Err(malformed(b"trun", offset, "too many samples"));
        }
        if flags & TRUN_DATA_OFFSET == 0 {
            return Err(malformed(b"trun", offset, "no data offset"));
        }
        let data_offset = r.u32().ok_or_else(short)? as i32;
        let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
            Some(r.u32().ok_or_else(short)?)
        } else {
            None
        };
        let mut time = base_decode_time;
        let mut bytes = 0u64;
        let mut entry = None;
        for i in 0..count {
            let field = |r: &mut Reader<'_>, bit: u32| -> Result<Option<u32>, RecoverError> {
                if flags & bit != 0 {
                    r.u32().map(Some).ok_or_else(short)
                } else {
                    Ok(None)
                }
            };
            let duration = field(&mut r, TRUN_SAMPLE_DURATION)?.unwrap_or(default_duration);
            let size = field(&mut r, TRUN_SAMPLE_SIZE)?.unwrap_or(default_size);
            let sample_flags = field(&mut r, TRUN_SAMPLE_FLAGS)?
                .or(if i == 0 { first_flags } else { None })
                .unwrap_or(default_flags);
            let composition = field(&mut r, TRUN_COMPOSITION_OFFSETS)?.map_or(0i64, |v| {
                if version == 0 {
                    i64::from(v)
                } else {
                    i64::from(v as i32)
                }
            });
            if entry.is_none() && sample_flags & NON_SYNC_SAMPLE == 0 {
                entry = Some(IndexEntry {
                    time: u64::try_from(i128::from(time) + i128::from(composition)).unwrap_or(0),
                    moof_offset: moof.start,
                    traf_number,
                    sample_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                });
            }
            time = time.saturating_add(u64::from(duration));
            bytes = bytes.saturating_add(u64::from(size));
        }
        // The samples must lie in this fragment's mdat.
        let start = i128::from(base) + i128::from(data_offset);
        let end = start + i128::from(bytes);
        if start < i128::from(mdat.body_start()) || end > i128::from(mdat.end()) {
            return Err(malformed(b"trun", offset, "samples outside the mdat"));
        }
        fragment.trafs.push(ParsedTraf {
            track: k,
            start: base_decode_time,
            end: time,
            entry,
        });
    }
    Ok(fragment)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn garbage_and_empty_inputs_are_refused_without_panicking() {
        for data in [
            &b""[..],
            &b"\0\0\0\x08ftyp"[..],
            &b"\0\0\0\x10moov\0\0\0\x08trak"[..],
            &[0u8; 64][..],
            &[0xFFu8; 64][..],
        ] {
            let result = recover(&mut Cursor::new(data));
            assert!(
                matches!(result, Err(RecoverError::NoInit)),
                "{data:?}: {result:?}"
            );
        }
    }

    #[test]
    fn reader_refuses_reads_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), None);
        assert_eq!(r.bytes(1), Some(&[1u8][..]));
        assert_eq!(r.skip(3), None);
        assert_eq!(r.skip(2), Some(()));
        assert_eq!(r.bytes(1), None);
        let children: Vec<_> = Reader::boxes(b"\0\0\0\x09abcdX\0\0\0\xFFefgh").collect();
        assert_eq!(
            children.len(),
            1,
            "the second box overflows and ends the walk"
        );
        assert_eq!(&children[0].0, b"abcd");
        assert_eq!(children[0].1, b"X");
    }
}
