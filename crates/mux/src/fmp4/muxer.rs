//! [`Muxer`]: frames in, `ftyp`/`moov`, `moof`/`mdat` and `mfra` bytes out.

use bytes::{Bytes, BytesMut};
use liverec_media::{Frame, TrackKind, Tracks, VideoCodec};

use super::boxes::FourCc;
use super::error::Fmp4Error;
use super::fragment::{self, Fragment, MAX_FRAGMENT_BYTES, MAX_FRAGMENT_SAMPLES};
use super::index;
use super::init::{self, InitSpec, InitTrack, SampleEntry, VIDEO_TIMESCALE};
use super::track::Track;
use crate::{MuxOut, Patch};

/// Track ids are fixed per kind, whichever tracks exist, so they never change between the
/// files of one recording.
pub const VIDEO_TRACK_ID: u32 = 1;
pub const AUDIO_TRACK_ID: u32 = 2;
/// Most compatible brands written in `ftyp`.
const MAX_BRANDS: usize = 5;

/// What the bytes are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One recording file written front to back: init, fragments, then at [`Muxer::finish`]
    /// an `mfra` and patches for the durations at the start of the file.
    File,
    /// CMAF / HLS fMP4: the init segment is a file of its own and fragments are grouped into
    /// media segments by the caller. No `mehd`, no `mfra`, no patches.
    Cmaf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `init` not called yet; frames may already be buffered.
    Created,
    Writing,
    Finished,
}

/// Fragmented-MP4 muxer. Pure: it never sees a file, a path or a clock.
///
/// Call order: [`new`](Self::new), [`init`](Self::init), then [`push`](Self::push) frames and
/// [`flush_fragment`](Self::flush_fragment) whenever a fragment should end, and finally
/// [`finish`](Self::finish). Every method appends to the caller's `out`; in [`Mode::File`] all
/// output goes, in order, to one file, and the patches of `finish` are offsets into it.
///
/// A sample's duration is the next frame's DTS minus its own, so a flush writes every buffered
/// sample except the last of each track, which opens the next fragment (only `finish` writes
/// it, with its predecessor's duration). Push the keyframe that should start the next
/// fragment *before* flushing: it is then held back and the fragment ends right before it.
#[derive(Debug)]
pub struct Muxer {
    mode: Mode,
    config: Tracks,
    /// Video first, then audio: the `traf` and `mdat` order.
    tracks: Vec<Track>,
    /// Millisecond time that becomes 0 in the file: the earliest DTS buffered at the first flush.
    origin: Option<i64>,
    state: State,
    next_sequence: u32,
    bytes_written: u64,
    fragment_count: u64,
    buffered_samples: usize,
    buffered_bytes: u64,
    mvhd_duration_at: u64,
    mehd_duration_at: Option<u64>,
}

impl Muxer {
    /// A muxer for `tracks` (at least one). Fails on a config that cannot be written.
    pub fn new(tracks: &Tracks, mode: Mode) -> Result<Self, Fmp4Error> {
        if tracks.is_empty() {
            return Err(Fmp4Error::NoTracks);
        }
        let mut list = Vec::with_capacity(2);
        if let Some(video) = &tracks.video {
            init::check_video(video)?;
            list.push(Track::new(
                TrackKind::Video,
                VIDEO_TRACK_ID,
                VIDEO_TIMESCALE,
            ));
        }
        if let Some(audio) = &tracks.audio {
            init::check_audio(audio)?;
            list.push(Track::new(
                TrackKind::Audio,
                AUDIO_TRACK_ID,
                audio.sample_rate,
            ));
        }
        Ok(Self {
            mode,
            config: tracks.clone(),
            tracks: list,
            origin: None,
            state: State::Created,
            next_sequence: 1,
            bytes_written: 0,
            fragment_count: 0,
            buffered_samples: 0,
            buffered_bytes: 0,
            mvhd_duration_at: 0,
            mehd_duration_at: None,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Appends the init segment (`ftyp` + `moov`). Must be called once, before the first flush.
    pub fn init(&mut self, out: &mut BytesMut) -> Result<(), Fmp4Error> {
        if self.state != State::Created {
            return Err(Fmp4Error::InitOrder);
        }
        let mut init_tracks = Vec::with_capacity(self.tracks.len());
        for track in &self.tracks {
            let entry = match (track.kind, &self.config.video, &self.config.audio) {
                (TrackKind::Video, Some(video), _) => SampleEntry::Video(video),
                (TrackKind::Audio, _, Some(audio)) => SampleEntry::Audio(audio),
                _ => continue, // tracks are built from the config: unreachable
            };
            init_tracks.push(InitTrack {
                id: track.id,
                timescale: track.timescale,
                entry,
            });
        }
        let (brands, brand_count) = self.brands();
        let spec = InitSpec {
            major_brand: match self.mode {
                Mode::File => *b"isom",
                Mode::Cmaf => *b"iso6",
            },
            compatible_brands: brands.get(..brand_count).unwrap_or(&[]),
            tracks: &init_tracks,
            with_mehd: self.mode == Mode::File,
        };
        let start = out.len();
        let layout = match init::write_init(out, &spec) {
            Ok(layout) => layout,
            Err(err) => {
                out.truncate(start);
                return Err(err);
            }
        };
        let base = self.bytes_written;
        let at = |pos: usize| base + (pos - start) as u64;
        self.mvhd_duration_at = at(layout.mvhd_duration);
        self.mehd_duration_at = layout.mehd_duration.map(at);
        for (track, (tkhd, mdhd)) in self.tracks.iter_mut().zip(layout.track_durations) {
            track.duration_fields = Some((at(tkhd), at(mdhd)));
        }
        self.bytes_written += (out.len() - start) as u64;
        self.state = State::Writing;
        Ok(())
    }

    /// `ftyp` compatible brands: ISO base media with movie fragments (`iso6`), MP4 (`mp41`),
    /// the codec brand where one exists; CMAF (`cmfc`) only for a single track, as CMAF tracks
    /// are single-track.
    fn brands(&self) -> ([FourCc; MAX_BRANDS], usize) {
        let mut brands = [[0u8; 4]; MAX_BRANDS];
        let mut n = 0;
        let mut add = |brand: &FourCc| {
            if let Some(slot) = brands.get_mut(n) {
                *slot = *brand;
                n += 1;
            }
        };
        if self.mode == Mode::File {
            add(b"isom");
        }
        add(b"iso6");
        add(b"mp41");
        if self.mode == Mode::Cmaf && self.tracks.len() == 1 {
            add(b"cmfc");
        }
        match self.config.video.as_ref().map(|v| v.codec) {
            Some(VideoCodec::H264) => add(b"avc1"),
            Some(VideoCodec::Av1) => add(b"av01"),
            Some(VideoCodec::H265) | None => {}
        }
        (brands, n)
    }

    /// Buffers a frame for the current fragment (a clone of its `Bytes`, no copy). Refused —
    /// and not buffered — if its track was not configured, its DTS goes backwards or jumps, or
    /// the fragment is full.
    pub fn push(&mut self, frame: &Frame) -> Result<(), Fmp4Error> {
        if self.state == State::Finished {
            return Err(Fmp4Error::Finished);
        }
        let track = self
            .tracks
            .iter_mut()
            .find(|t| t.kind == frame.track)
            .ok_or(Fmp4Error::NoSuchTrack { track: frame.track })?;
        track.check(frame)?;
        let samples = self.buffered_samples + 1;
        if samples > MAX_FRAGMENT_SAMPLES {
            return Err(Fmp4Error::TooManySamples {
                samples,
                max: MAX_FRAGMENT_SAMPLES,
            });
        }
        let bytes = self
            .buffered_bytes
            .saturating_add(u64::try_from(frame.data.len()).unwrap_or(u64::MAX));
        if bytes > MAX_FRAGMENT_BYTES {
            return Err(Fmp4Error::FragmentTooLarge {
                bytes,
                max: MAX_FRAGMENT_BYTES,
            });
        }
        track.push(frame);
        self.buffered_samples = samples;
        self.buffered_bytes = bytes;
        Ok(())
    }

    /// Appends one `moof` + `mdat` with the buffered samples whose duration is known (all but
    /// the last of each track). `None` when there is nothing to write.
    pub fn flush_fragment<O: MuxOut>(
        &mut self,
        out: &mut O,
    ) -> Result<Option<Fragment>, Fmp4Error> {
        self.write_fragment(out, false)
    }

    /// Flushes every buffered sample and, in [`Mode::File`], appends the `mfra` and returns the
    /// patches that fill in the durations at the start of the file. Afterwards the muxer
    /// refuses frames.
    pub fn finish<O: MuxOut>(&mut self, out: &mut O) -> Result<Vec<Patch>, Fmp4Error> {
        self.write_fragment(out, true)?;
        if self.mode == Mode::Cmaf {
            self.state = State::Finished;
            return Ok(Vec::new());
        }
        let size = index::write_mfra(out.head(), &self.tracks)?;
        self.bytes_written += size as u64;
        self.state = State::Finished;

        let duration = self.duration_ms();
        let mut patches = Vec::with_capacity(2 + 2 * self.tracks.len());
        patches.push(patch_u64(self.mvhd_duration_at, duration));
        if let Some(at) = self.mehd_duration_at {
            patches.push(patch_u64(at, duration));
        }
        for track in &self.tracks {
            if let Some((tkhd, mdhd)) = track.duration_fields {
                patches.push(patch_u64(tkhd, track.duration_ms()));
                patches.push(patch_u64(mdhd, track.end));
            }
        }
        Ok(patches)
    }

    fn write_fragment<O: MuxOut>(
        &mut self,
        out: &mut O,
        last: bool,
    ) -> Result<Option<Fragment>, Fmp4Error> {
        match self.state {
            State::Created => return Err(Fmp4Error::InitOrder),
            State::Finished => return Err(Fmp4Error::Finished),
            State::Writing => {}
        }
        let origin = match self.origin {
            Some(origin) => origin,
            None => {
                let earliest = self
                    .tracks
                    .iter()
                    .filter_map(|t| t.samples.first().map(|s| s.dts_ms))
                    .min();
                match earliest {
                    Some(origin) => *self.origin.insert(origin),
                    None => return Ok(None),
                }
            }
        };
        let written = fragment::write_fragment(
            out,
            &mut self.tracks,
            self.next_sequence,
            origin,
            last,
            self.bytes_written,
        )?;
        if let Some(fragment) = &written {
            self.bytes_written += fragment.size;
            self.fragment_count += 1;
            self.next_sequence = self.next_sequence.saturating_add(1);
            self.buffered_samples = self.tracks.iter().map(|t| t.samples.len()).sum();
            self.buffered_bytes = self
                .tracks
                .iter()
                .flat_map(|t| t.samples.iter())
                .map(|s| s.data.len() as u64)
                .sum();
        }
        Ok(written)
    }

    /// Bytes appended to `out` so far, all calls together: the file size in [`Mode::File`].
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Media time written so far (the longest track), milliseconds; the file's duration once
    /// finished.
    pub fn duration_ms(&self) -> u64 {
        self.tracks
            .iter()
            .map(Track::duration_ms)
            .max()
            .unwrap_or(0)
    }

    pub fn fragment_count(&self) -> u64 {
        self.fragment_count
    }

    /// The frame time (ms) that is time 0 in the file, fixed at the first flush.
    pub fn origin_ms(&self) -> Option<i64> {
        self.origin
    }

    /// Frames buffered and not written yet.
    pub fn buffered_samples(&self) -> usize {
        self.buffered_samples
    }
}

fn patch_u64(offset: u64, value: u64) -> Patch {
    Patch {
        offset,
        bytes: Bytes::copy_from_slice(&value.to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use liverec_media::{AudioCodec, AudioConfig, VideoConfig};

    use super::*;

    fn tracks(codec: Option<VideoCodec>, audio: bool) -> Tracks {
        Tracks {
            video: codec.map(|codec| {
                Arc::new(VideoConfig {
                    codec,
                    record: Bytes::from_static(&[1, 2, 3, 4]),
                    width: 640,
                    height: 360,
                    nal_length_size: 4,
                    parameter_sets: Vec::new(),
                })
            }),
            audio: audio.then(|| {
                Arc::new(AudioConfig {
                    codec: AudioCodec::Aac,
                    specific: Bytes::from_static(&[0x11, 0x90]),
                    object_type: 2,
                    sample_rate: 48_000,
                    channels: 2,
                })
            }),
        }
    }

    fn frame(track: TrackKind, dts: i64, len: usize) -> Frame {
        Frame {
            track,
            dts,
            cts: 0,
            keyframe: true,
            data: Bytes::from(vec![0; len]),
        }
    }

    fn ftyp(tracks: &Tracks, mode: Mode) -> Result<Vec<u8>, Fmp4Error> {
        let mut muxer = Muxer::new(tracks, mode)?;
        let mut out = BytesMut::new();
        muxer.init(&mut out)?;
        let size =
            usize::try_from(u32::from_be_bytes([out[0], out[1], out[2], out[3]])).unwrap_or(0);
        Ok(out[8..size].to_vec())
    }

    #[test]
    fn brands_follow_mode_codec_and_track_count() -> Result<(), Fmp4Error> {
        let file = ftyp(&tracks(Some(VideoCodec::H264), true), Mode::File)?;
        assert_eq!(file, b"isom\0\0\x02\0isomiso6mp41avc1");
        let av1 = ftyp(&tracks(Some(VideoCodec::Av1), false), Mode::Cmaf)?;
        assert_eq!(av1, b"iso6\0\0\x02\0iso6mp41cmfcav01");
        let hevc = ftyp(&tracks(Some(VideoCodec::H265), true), Mode::Cmaf)?;
        assert_eq!(hevc, b"iso6\0\0\x02\0iso6mp41");
        Ok(())
    }

    #[test]
    fn full_fragments_refuse_frames_until_flushed() -> Result<(), Fmp4Error> {
        let mut muxer = Muxer::new(&tracks(None, true), Mode::File)?;
        muxer.buffered_samples = MAX_FRAGMENT_SAMPLES;
        assert!(matches!(
            muxer.push(&frame(TrackKind::Audio, 0, 1)),
            Err(Fmp4Error::TooManySamples { .. })
        ));
        muxer.buffered_samples = 0;
        muxer.buffered_bytes = MAX_FRAGMENT_BYTES - 1;
        assert!(matches!(
            muxer.push(&frame(TrackKind::Audio, 0, 2)),
            Err(Fmp4Error::FragmentTooLarge { .. })
        ));
        muxer.push(&frame(TrackKind::Audio, 0, 1))?;
        assert_eq!(muxer.buffered_samples(), 1);
        Ok(())
    }

    #[test]
    fn origin_is_the_earliest_frame_at_the_first_flush() -> Result<(), Fmp4Error> {
        let mut muxer = Muxer::new(&tracks(Some(VideoCodec::H264), true), Mode::File)?;
        let mut out = BytesMut::new();
        muxer.init(&mut out)?;
        // Video arrives first, audio slightly older right after (interleaving jitter).
        muxer.push(&frame(TrackKind::Video, 1000, 1))?;
        muxer.push(&frame(TrackKind::Audio, 990, 1))?;
        muxer.push(&frame(TrackKind::Video, 1040, 1))?;
        muxer.push(&frame(TrackKind::Audio, 1011, 1))?;
        let fragment = muxer.flush_fragment(&mut out)?;
        assert_eq!(muxer.origin_ms(), Some(990));
        assert_eq!(fragment.map(|f| (f.start_ms, f.end_ms)), Some((10, 50)));
        // A later frame before the origin is clamped to it, not refused.
        let mut late = Muxer::new(&tracks(Some(VideoCodec::H264), true), Mode::File)?;
        late.init(&mut out)?;
        late.push(&frame(TrackKind::Video, 1000, 1))?;
        late.push(&frame(TrackKind::Video, 1040, 1))?;
        late.flush_fragment(&mut out)?;
        late.push(&frame(TrackKind::Audio, 900, 1))?;
        late.push(&frame(TrackKind::Audio, 1100, 1))?;
        late.flush_fragment(&mut out)?;
        assert_eq!(late.origin_ms(), Some(1000));
        let patches = late.finish(&mut out)?;
        // Audio: 0 (clamped) then 100 ms, the last repeating the 100 ms step.
        assert_eq!(late.duration_ms(), 200);
        assert_eq!(patches.len(), 6);
        Ok(())
    }
}
