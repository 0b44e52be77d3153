//! The initialization segment: `ftyp` + `moov` (ISO/IEC 14496-12 §8.2–8.8), with an empty
//! sample table per track and `mvex` announcing that the samples come in movie fragments.
//!
//! Durations are written as 0 ("unknown" for a fragmented file) in 64-bit fields (box version 1)
//! and their positions are returned, so finalizing patches them in place whatever the length.

use bytes::{BufMut, BytesMut};
use liverec_media::{AudioConfig, TrackKind, VideoCodec, VideoConfig};

use super::boxes::{self, FourCc};
use super::error::Fmp4Error;

/// Timescale of `mvhd`, `tkhd` durations and `mehd`: milliseconds, the unit of [`Frame`] times.
///
/// [`Frame`]: liverec_media::Frame
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;
/// Timescale of video tracks: the MPEG 90 kHz clock, exact for every integer millisecond.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;
/// Largest decoder configuration record accepted (avcC/hvcC/av1C/AudioSpecificConfig). Real
/// ones are well under a kilobyte; this keeps `moov` small and descriptor lengths in range.
pub const MAX_CODEC_RECORD_BYTES: usize = 1 << 20;
/// Highest audio sample rate accepted; it is the audio timescale, so this bounds tick arithmetic.
pub const MAX_AUDIO_SAMPLE_RATE: u32 = 384_000;
/// `und` (undetermined) as the packed ISO-639-2/T code of `mdhd`.
const LANGUAGE_UND: u16 = 0x55C4;
/// MPEG-4 Audio in an `esds` DecoderConfigDescriptor (ISO/IEC 14496-1 Table 5).
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
/// streamType AudioStream (0x05) << 2 | upStream 0 | reserved 1.
const STREAM_TYPE_AUDIO: u8 = 0x15;
const TAG_ES_DESCRIPTOR: u8 = 0x03;
const TAG_DECODER_CONFIG: u8 = 0x04;
const TAG_DECODER_SPECIFIC_INFO: u8 = 0x05;
const TAG_SL_CONFIG: u8 = 0x06;
/// `tkhd` flags: track_enabled | track_in_movie.
const TKHD_FLAGS: u32 = 0x3;

/// What a track's sample entry is built from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SampleEntry<'a> {
    Video(&'a VideoConfig),
    Audio(&'a AudioConfig),
}

/// One track of the init segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InitTrack<'a> {
    pub(crate) id: u32,
    pub(crate) timescale: u32,
    pub(crate) entry: SampleEntry<'a>,
}

/// Everything `ftyp` + `moov` is made of.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InitSpec<'a> {
    pub(crate) major_brand: FourCc,
    pub(crate) compatible_brands: &'a [FourCc],
    pub(crate) tracks: &'a [InitTrack<'a>],
    /// Write `mehd` (a file whose total duration is patched at the end); CMAF leaves it out.
    pub(crate) with_mehd: bool,
}

/// Positions (in the output buffer) of the 64-bit duration fields written as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InitLayout {
    pub(crate) mvhd_duration: usize,
    pub(crate) mehd_duration: Option<usize>,
    /// `(tkhd, mdhd)` duration positions, in the order of [`InitSpec::tracks`].
    pub(crate) track_durations: Vec<(usize, usize)>,
}

/// Checks a video config can be written: non-empty record of bounded size, 16-bit size.
pub(crate) fn check_video(config: &VideoConfig) -> Result<(), Fmp4Error> {
    check_record(TrackKind::Video, config.record.len())?;
    if u16::try_from(config.width).is_err() || u16::try_from(config.height).is_err() {
        return Err(Fmp4Error::VideoSizeTooLarge {
            width: config.width,
            height: config.height,
        });
    }
    Ok(())
}

/// Checks an audio config can be written: an AudioSpecificConfig and a usable timescale.
pub(crate) fn check_audio(config: &AudioConfig) -> Result<(), Fmp4Error> {
    check_record(TrackKind::Audio, config.specific.len())?;
    if config.sample_rate == 0 || config.sample_rate > MAX_AUDIO_SAMPLE_RATE {
        return Err(Fmp4Error::BadSampleRate {
            rate: config.sample_rate,
            max: MAX_AUDIO_SAMPLE_RATE,
        });
    }
    Ok(())
}

fn check_record(track: TrackKind, len: usize) -> Result<(), Fmp4Error> {
    if len == 0 {
        return Err(Fmp4Error::EmptyCodecRecord { track });
    }
    if len > MAX_CODEC_RECORD_BYTES {
        return Err(Fmp4Error::CodecRecordTooLarge {
            track,
            len,
            max: MAX_CODEC_RECORD_BYTES,
        });
    }
    Ok(())
}

/// Appends `ftyp` + `moov`.
pub(crate) fn write_init(out: &mut BytesMut, spec: &InitSpec<'_>) -> Result<InitLayout, Fmp4Error> {
    write_ftyp(out, spec.major_brand, spec.compatible_brands)?;
    let mut layout = InitLayout::default();
    let moov = boxes::open(out, *b"moov");
    let next_track_id = spec
        .tracks
        .iter()
        .map(|t| t.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    layout.mvhd_duration = write_mvhd(out, next_track_id)?;
    for track in spec.tracks {
        layout.track_durations.push(write_trak(out, track)?);
    }
    let mvex = boxes::open(out, *b"mvex");
    if spec.with_mehd {
        let mehd = boxes::open_full(out, *b"mehd", 1, 0);
        layout.mehd_duration = Some(out.len());
        out.put_u64(0);
        mehd.close(out)?;
    }
    for track in spec.tracks {
        write_trex(out, track.id)?;
    }
    mvex.close(out)?;
    moov.close(out)?;
    Ok(layout)
}

pub(crate) fn write_ftyp(
    out: &mut BytesMut,
    major: FourCc,
    compatible: &[FourCc],
) -> Result<(), Fmp4Error> {
    let ftyp = boxes::open(out, *b"ftyp");
    out.put_slice(&major);
    out.put_u32(0x200); // minor version, as ffmpeg and GStreamer write it
    for brand in compatible {
        out.put_slice(brand);
    }
    ftyp.close(out)?;
    Ok(())
}

/// Returns the position of the duration field.
fn write_mvhd(out: &mut BytesMut, next_track_id: u32) -> Result<usize, Fmp4Error> {
    let mvhd = boxes::open_full(out, *b"mvhd", 1, 0);
    out.put_u64(0); // creation_time: muxers read no clock
    out.put_u64(0); // modification_time
    out.put_u32(MOVIE_TIMESCALE);
    let duration = out.len();
    out.put_u64(0);
    out.put_u32(0x0001_0000); // rate 1.0
    out.put_u16(0x0100); // volume 1.0
    out.put_bytes(0, 2 + 8); // reserved
    boxes::put_matrix(out);
    out.put_bytes(0, 6 * 4); // pre_defined
    out.put_u32(next_track_id);
    mvhd.close(out)?;
    Ok(duration)
}

/// Returns the positions of the `tkhd` and `mdhd` duration fields.
fn write_trak(out: &mut BytesMut, track: &InitTrack<'_>) -> Result<(usize, usize), Fmp4Error> {
    let trak = boxes::open(out, *b"trak");
    let tkhd = write_tkhd(out, track)?;
    let mdia = boxes::open(out, *b"mdia");
    let mdhd = write_mdhd(out, track.timescale)?;
    let (handler, name): (FourCc, &[u8]) = match track.entry {
        SampleEntry::Video(_) => (*b"vide", b"VideoHandler\0"),
        SampleEntry::Audio(_) => (*b"soun", b"SoundHandler\0"),
    };
    let hdlr = boxes::open_full(out, *b"hdlr", 0, 0);
    out.put_u32(0); // pre_defined
    out.put_slice(&handler);
    out.put_bytes(0, 3 * 4); // reserved
    out.put_slice(name);
    hdlr.close(out)?;

    let minf = boxes::open(out, *b"minf");
    match track.entry {
        SampleEntry::Video(_) => {
            let vmhd = boxes::open_full(out, *b"vmhd", 0, 1);
            out.put_bytes(0, 2 + 3 * 2); // graphicsmode copy, opcolor
            vmhd.close(out)?;
        }
        SampleEntry::Audio(_) => {
            let smhd = boxes::open_full(out, *b"smhd", 0, 0);
            out.put_bytes(0, 2 + 2); // balance, reserved
            smhd.close(out)?;
        }
    }
    let dinf = boxes::open(out, *b"dinf");
    let dref = boxes::open_full(out, *b"dref", 0, 0);
    out.put_u32(1);
    let url = boxes::open_full(out, *b"url ", 0, 1); // flag 1: media data in this file
    url.close(out)?;
    dref.close(out)?;
    dinf.close(out)?;

    let stbl = boxes::open(out, *b"stbl");
    let stsd = boxes::open_full(out, *b"stsd", 0, 0);
    out.put_u32(1);
    match track.entry {
        SampleEntry::Video(config) => write_visual_entry(out, config)?,
        SampleEntry::Audio(config) => write_audio_entry(out, config, track.id)?,
    }
    stsd.close(out)?;
    // Empty sample tables: every sample is in a movie fragment.
    for fourcc in [*b"stts", *b"stsc", *b"stco"] {
        let table = boxes::open_full(out, fourcc, 0, 0);
        out.put_u32(0);
        table.close(out)?;
    }
    let stsz = boxes::open_full(out, *b"stsz", 0, 0);
    out.put_u32(0); // sample_size
    out.put_u32(0); // sample_count
    stsz.close(out)?;
    stbl.close(out)?;
    minf.close(out)?;
    mdia.close(out)?;
    trak.close(out)?;
    Ok((tkhd, mdhd))
}

fn write_tkhd(out: &mut BytesMut, track: &InitTrack<'_>) -> Result<usize, Fmp4Error> {
    let tkhd = boxes::open_full(out, *b"tkhd", 1, TKHD_FLAGS);
    out.put_u64(0); // creation_time
    out.put_u64(0); // modification_time
    out.put_u32(track.id);
    out.put_u32(0); // reserved
    let duration = out.len();
    out.put_u64(0);
    out.put_bytes(0, 2 * 4); // reserved
    out.put_u16(0); // layer
    out.put_u16(0); // alternate_group
    let (volume, width, height) = match track.entry {
        SampleEntry::Video(config) => (0, config.width, config.height),
        SampleEntry::Audio(_) => (0x0100, 0, 0),
    };
    out.put_u16(volume);
    out.put_u16(0); // reserved
    boxes::put_matrix(out);
    // 16.16 fixed point; check_video keeps both within 16 bits.
    out.put_u32(width.min(0xFFFF) << 16);
    out.put_u32(height.min(0xFFFF) << 16);
    tkhd.close(out)?;
    Ok(duration)
}

fn write_mdhd(out: &mut BytesMut, timescale: u32) -> Result<usize, Fmp4Error> {
    let mdhd = boxes::open_full(out, *b"mdhd", 1, 0);
    out.put_u64(0); // creation_time
    out.put_u64(0); // modification_time
    out.put_u32(timescale);
    let duration = out.len();
    out.put_u64(0);
    out.put_u16(LANGUAGE_UND);
    out.put_u16(0); // pre_defined
    mdhd.close(out)?;
    Ok(duration)
}

fn write_trex(out: &mut BytesMut, track_id: u32) -> Result<(), Fmp4Error> {
    let trex = boxes::open_full(out, *b"trex", 0, 0);
    out.put_u32(track_id);
    out.put_u32(1); // default_sample_description_index
    out.put_u32(0); // default_sample_duration
    out.put_u32(0); // default_sample_size
    out.put_u32(0); // default_sample_flags
    trex.close(out)?;
    Ok(())
}

/// `avc1`/`hvc1`/`av01` VisualSampleEntry (§12.1.3) with its configuration box.
fn write_visual_entry(out: &mut BytesMut, config: &VideoConfig) -> Result<(), Fmp4Error> {
    let (fourcc, config_box): (FourCc, FourCc) = match config.codec {
        VideoCodec::H264 => (*b"avc1", *b"avcC"),
        VideoCodec::H265 => (*b"hvc1", *b"hvcC"),
        VideoCodec::Av1 => (*b"av01", *b"av1C"),
    };
    let entry = boxes::open(out, fourcc);
    out.put_bytes(0, 6); // reserved
    out.put_u16(1); // data_reference_index
    out.put_u16(0); // pre_defined
    out.put_u16(0); // reserved
    out.put_bytes(0, 3 * 4); // pre_defined
    out.put_u16(u16::try_from(config.width).unwrap_or(u16::MAX));
    out.put_u16(u16::try_from(config.height).unwrap_or(u16::MAX));
    out.put_u32(0x0048_0000); // horizresolution 72 dpi
    out.put_u32(0x0048_0000); // vertresolution 72 dpi
    out.put_u32(0); // reserved
    out.put_u16(1); // frame_count
    out.put_bytes(0, 32); // compressorname: empty Pascal string
    out.put_u16(0x0018); // depth
    out.put_i16(-1); // pre_defined
    let record = boxes::open(out, config_box);
    out.put_slice(&config.record);
    record.close(out)?;
    entry.close(out)?;
    Ok(())
}

/// `mp4a` AudioSampleEntry (§12.2.3) with an `esds` (ISO/IEC 14496-14 §5.6).
fn write_audio_entry(
    out: &mut BytesMut,
    config: &AudioConfig,
    es_id: u32,
) -> Result<(), Fmp4Error> {
    let entry = boxes::open(out, *b"mp4a");
    out.put_bytes(0, 6); // reserved
    out.put_u16(1); // data_reference_index
    out.put_bytes(0, 2 * 4); // reserved
    // 0 = channel configuration in a PCE; players read the AudioSpecificConfig anyway.
    out.put_u16(if config.channels == 0 {
        2
    } else {
        u16::from(config.channels)
    });
    out.put_u16(16); // samplesize
    out.put_u16(0); // pre_defined
    out.put_u16(0); // reserved
    // 16.16 fixed point; rates above 16 bits are left to the AudioSpecificConfig.
    let rate = if config.sample_rate <= 0xFFFF {
        config.sample_rate << 16
    } else {
        0
    };
    out.put_u32(rate);
    write_esds(out, &config.specific, u16::try_from(es_id).unwrap_or(0))?;
    entry.close(out)?;
    Ok(())
}

fn write_esds(out: &mut BytesMut, specific: &[u8], es_id: u16) -> Result<(), Fmp4Error> {
    let esds = boxes::open_full(out, *b"esds", 0, 0);
    let specific_len = specific.len();
    // DecoderConfigDescriptor body: 13 fixed bytes + DecoderSpecificInfo.
    let decoder_config_len = 13 + descriptor_len(specific_len);
    // SLConfigDescriptor: tag, length, predefined.
    let sl_config_len = 3;
    let es_len = 3 + descriptor_len(decoder_config_len) + sl_config_len;
    put_descriptor_header(out, TAG_ES_DESCRIPTOR, es_len);
    out.put_u16(es_id);
    out.put_u8(0); // no stream dependence, URL or OCR stream
    put_descriptor_header(out, TAG_DECODER_CONFIG, decoder_config_len);
    out.put_u8(OBJECT_TYPE_MPEG4_AUDIO);
    out.put_u8(STREAM_TYPE_AUDIO);
    out.put_bytes(0, 3); // bufferSizeDB
    out.put_u32(0); // maxBitrate
    out.put_u32(0); // avgBitrate
    put_descriptor_header(out, TAG_DECODER_SPECIFIC_INFO, specific_len);
    out.put_slice(specific);
    put_descriptor_header(out, TAG_SL_CONFIG, 1);
    out.put_u8(0x02); // predefined: reserved for MP4 files
    esds.close(out)?;
    Ok(())
}

/// Bytes of a descriptor with a body of `body` bytes: tag, expandable size, body.
fn descriptor_len(body: usize) -> usize {
    1 + size_field_len(body) + body
}

/// Bytes of the expandable size field (7 bits per byte, ISO/IEC 14496-1 §8.3.3).
fn size_field_len(body: usize) -> usize {
    match body {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        _ => 4,
    }
}

fn put_descriptor_header(out: &mut BytesMut, tag: u8, body: usize) {
    out.put_u8(tag);
    let bytes = size_field_len(body);
    for i in (0..bytes).rev() {
        // Truncation intended: 7 bits per byte, continuation bit on all but the last.
        let bits = ((body >> (7 * i)) & 0x7F) as u8;
        out.put_u8(if i == 0 { bits } else { bits | 0x80 });
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use liverec_media::AudioCodec;

    use super::*;

    fn aac() -> AudioConfig {
        AudioConfig {
            codec: AudioCodec::Aac,
            specific: Bytes::from_static(&[0x12, 0x08]),
            object_type: 2,
            sample_rate: 44_100,
            channels: 1,
        }
    }

    fn avc(width: u32, height: u32) -> VideoConfig {
        VideoConfig {
            codec: VideoCodec::H264,
            record: Bytes::from_static(&[1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0]),
            width,
            height,
            nal_length_size: 4,
            parameter_sets: Vec::new(),
        }
    }

    #[test]
    fn ftyp_bytes() -> Result<(), Fmp4Error> {
        let mut out = BytesMut::new();
        write_ftyp(&mut out, *b"isom", &[*b"isom", *b"iso6"])?;
        assert_eq!(&out[..], b"\0\0\0\x18ftypisom\0\0\x02\0isomiso6");
        Ok(())
    }

    #[test]
    fn esds_bytes_match_the_hand_encoded_descriptor() -> Result<(), Fmp4Error> {
        let mut out = BytesMut::new();
        write_esds(&mut out, &[0x12, 0x08], 2)?;
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 39, b'e', b's', b'd', b's', 0, 0, 0, 0,
            0x03, 25, 0, 2, 0, // ES_Descriptor, ES_ID 2
            0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // DecoderConfig
            0x05, 2, 0x12, 0x08, // DecoderSpecificInfo = AudioSpecificConfig
            0x06, 1, 0x02, // SLConfig
        ];
        assert_eq!(&out[..], expected);
        Ok(())
    }

    #[test]
    fn descriptor_sizes_use_the_expandable_encoding() {
        for (body, expected) in [
            (0x7F_usize, &[0x7F_u8][..]),
            (0x80, &[0x81, 0x00][..]),
            (300, &[0x82, 0x2C][..]),
            (0x20_0000, &[0x81, 0x80, 0x80, 0x00][..]),
        ] {
            let mut out = BytesMut::new();
            put_descriptor_header(&mut out, 9, body);
            assert_eq!(out[0], 9);
            assert_eq!(&out[1..], expected, "body {body}");
            assert_eq!(descriptor_len(body), 1 + expected.len() + body);
        }
    }

    #[test]
    fn mdhd_bytes_and_duration_position() -> Result<(), Fmp4Error> {
        let mut out = BytesMut::new();
        let pos = write_mdhd(&mut out, 44_100)?;
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 44, b'm', b'd', b'h', b'd', 1, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0xAC, 0x44,
            0, 0, 0, 0, 0, 0, 0, 0,
            0x55, 0xC4, 0, 0,
        ];
        assert_eq!(&out[..], expected);
        assert_eq!(pos, 32);
        Ok(())
    }

    #[test]
    fn trex_bytes() -> Result<(), Fmp4Error> {
        let mut out = BytesMut::new();
        write_trex(&mut out, 2)?;
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 32, b't', b'r', b'e', b'x', 0, 0, 0, 0,
            0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(&out[..], expected);
        Ok(())
    }

    #[test]
    fn init_reports_every_duration_field() -> Result<(), Fmp4Error> {
        let video = avc(320, 240);
        let audio = aac();
        let tracks = [
            InitTrack {
                id: 1,
                timescale: VIDEO_TIMESCALE,
                entry: SampleEntry::Video(&video),
            },
            InitTrack {
                id: 2,
                timescale: 44_100,
                entry: SampleEntry::Audio(&audio),
            },
        ];
        let mut out = BytesMut::new();
        out.put_slice(b"prefix");
        let layout = write_init(
            &mut out,
            &InitSpec {
                major_brand: *b"isom",
                compatible_brands: &[*b"isom"],
                tracks: &tracks,
                with_mehd: true,
            },
        )?;
        // Each reported position is 8 zero bytes right after the box's fixed fields.
        let at = |pos: usize, back: usize| &out[pos - back..pos - back + 4];
        assert_eq!(at(layout.mvhd_duration, 4), &1000u32.to_be_bytes());
        let mehd = layout.mehd_duration.ok_or(Fmp4Error::InitOrder)?;
        assert_eq!(at(mehd, 8), b"mehd");
        assert_eq!(layout.track_durations.len(), 2);
        for (i, (tkhd, mdhd)) in layout.track_durations.iter().enumerate() {
            assert_eq!(at(*tkhd, 4), &[0, 0, 0, 0]); // reserved
            assert_eq!(at(*tkhd, 8), &(i as u32 + 1).to_be_bytes()); // track_ID
            assert_eq!(at(*mdhd, 4), &tracks[i].timescale.to_be_bytes());
        }
        for pos in [layout.mvhd_duration, mehd] {
            assert_eq!(&out[pos..pos + 8], &[0; 8]);
        }
        Ok(())
    }

    #[test]
    fn configs_are_checked() {
        assert_eq!(check_video(&avc(320, 240)), Ok(()));
        assert!(matches!(
            check_video(&avc(70_000, 240)),
            Err(Fmp4Error::VideoSizeTooLarge { .. })
        ));
        let mut empty = avc(0, 0);
        empty.record = Bytes::new();
        assert!(matches!(
            check_video(&empty),
            Err(Fmp4Error::EmptyCodecRecord { .. })
        ));
        let mut audio = aac();
        audio.sample_rate = 0;
        assert!(matches!(
            check_audio(&audio),
            Err(Fmp4Error::BadSampleRate { .. })
        ));
        audio.sample_rate = 48_000;
        assert_eq!(check_audio(&audio), Ok(()));
    }
}
